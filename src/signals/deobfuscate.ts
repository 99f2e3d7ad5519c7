/**
 * What a reader sees in a text that a pattern does not: a key with a zero-width space or a soft hyphen in it, typed
 * in full-width letters, percent-escaped in a URL, or split over two or three lines still reads as the key. The
 * secret detector also looks at these views of a text and maps what it finds back to the original, so the redaction
 * covers the original characters (the invisible ones too). Pure.
 */

/**
 * Characters that render as nothing: every format character (Unicode Cf: U+200B–U+200F, U+00AD soft hyphen, U+FEFF,
 * U+2060–U+2064 word joiner and invisible operators, bidi controls, tags…), the combining grapheme joiner, variation
 * selectors and the Hangul fillers.
 */
const INVISIBLE = /\p{Cf}|\u034f|\u115f|\u1160|\u3164|\uffa0|[\ufe00-\ufe0f]|[\u{e0100}-\u{e01ef}]/gu
/** A line break, with the indentation around it: what joining two lines removes. */
const LINE_BREAK = /[ \t]*(?:(?:\r\n|[\r\n\u0085\u2028\u2029])[ \t]*)+/g
const HAS_LINE_BREAK = /[\r\n\u0085\u2028\u2029]/
/** Characters on both sides of a line break that splits a key rather than ends a sentence. */
const TOKEN = /[A-Za-z0-9_+/=@-]/
const NON_ASCII = /[^\u0000-\u007f]/
/** A percent-escape of a printable ASCII character. */
const PERCENT_ESCAPE = /%(?:[2-7][0-9A-Fa-f])/
const PERCENT_ESCAPES = /%([2-7][0-9A-Fa-f])/g
// A code point and the combining marks after it: NFKC is applied per such cluster, so each output character maps
// back to the cluster it came from.
const CLUSTER = /\P{M}\p{M}*|\p{M}+/gu

/**
 * A view of a text: `text[i]` comes from the original's `[start[i], end[i])`. `joins` are the indexes of `text` where
 * a line break was removed just before (empty for a view that joins no lines).
 */
export interface TextView {
  readonly text: string
  readonly start: readonly number[]
  readonly end: readonly number[]
  readonly joins: readonly number[]
}

/** The original span of the view's `[start, end)` (end exclusive, end > start). */
export function originalSpan(view: TextView, start: number, end: number): { start: number; end: number } {
  return { start: view.start[start] ?? 0, end: view.end[end - 1] ?? 0 }
}

/** Whether the view's `[start, end)` crosses a joined line break. */
export function crossesJoin(view: TextView, start: number, end: number): boolean {
  return view.joins.some((j) => start < j && j < end)
}

/**
 * The views of `text` worth a second look: its printable percent-escapes decoded (when it has any); NFKC with
 * invisible characters removed (when that changes anything: never for plain ASCII); and, for each line break inside
 * what looks like one token (a letter, digit or one of `_+/=@-` on both sides), its two lines joined there, or three
 * when the next break is such a one too. Empty for a one-line ASCII text without `%`, which is most of them. A break
 * next to a space, a dot or a comma ends a sentence, not a key.
 */
export function textViews(text: string): TextView[] {
  const views: TextView[] = []
  // a URL or a path with its printable characters percent-escaped (`my%20AKIA…`, `%41KIA…`)
  if (PERCENT_ESCAPE.test(text)) views.push(percentDecodedView(text))
  const normalised = NON_ASCII.test(text) ? normalisedView(text) : null
  if (normalised !== null) views.push(normalised)
  const base = normalised?.text ?? text
  if (HAS_LINE_BREAK.test(base)) views.push(...joinedViews(normalised ?? identity(text)))
  return views
}

/**
 * A secret as its reader sees it: printable percent-escapes decoded, NFKC, without invisible characters and line
 * breaks (what the keyed hash takes).
 */
export function deobfuscate(secret: string): string {
  return secret
    .replace(PERCENT_ESCAPES, (m, hex: string) =>
      hex.toLowerCase() === '7f' ? m : String.fromCharCode(Number.parseInt(hex, 16)),
    )
    .normalize('NFKC')
    .replace(INVISIBLE, '')
    .replace(LINE_BREAK, '')
}

function identity(text: string): TextView {
  const start = Array.from({ length: text.length }, (_, i) => i)
  return { text, start, end: start.map((i) => i + 1), joins: [] }
}

function percentDecodedView(text: string): TextView {
  let out = ''
  const start: number[] = []
  const end: number[] = []
  let at = 0
  const keep = (until: number) => {
    out += text.slice(at, until)
    for (let i = at; i < until; i++) {
      start.push(i)
      end.push(i + 1)
    }
  }
  PERCENT_ESCAPES.lastIndex = 0
  for (let m = PERCENT_ESCAPES.exec(text); m !== null; m = PERCENT_ESCAPES.exec(text)) {
    const code = Number.parseInt(m[1] ?? '20', 16)
    if (code === 0x7f) continue
    keep(m.index)
    out += String.fromCharCode(code)
    start.push(m.index)
    end.push(m.index + 3)
    at = m.index + 3
  }
  keep(text.length)
  return { text: out, start, end, joins: [] }
}

function normalisedView(text: string): TextView | null {
  let out = ''
  const start: number[] = []
  const end: number[] = []
  CLUSTER.lastIndex = 0
  for (let m = CLUSTER.exec(text); m !== null; m = CLUSTER.exec(text)) {
    const from = m.index
    const to = from + m[0].length
    const n = m[0].normalize('NFKC').replace(INVISIBLE, '')
    out += n
    for (let i = 0; i < n.length; i++) {
      start.push(from)
      end.push(to)
    }
  }
  return out === text ? null : { text: out, start, end, joins: [] }
}

interface Break {
  /** The break (with the indentation around it) is `[from, to)` of the text. */
  readonly from: number
  readonly to: number
  readonly inToken: boolean
}

function joinedViews(base: TextView): TextView[] {
  const t = base.text
  const breaks: Break[] = []
  LINE_BREAK.lastIndex = 0
  for (let m = LINE_BREAK.exec(t); m !== null; m = LINE_BREAK.exec(t)) {
    const from = m.index
    const to = from + m[0].length
    breaks.push({ from, to, inToken: TOKEN.test(t[from - 1] ?? ' ') && TOKEN.test(t[to] ?? ' ') })
  }
  const views: TextView[] = []
  breaks.forEach((b, k) => {
    if (!b.inToken) return
    const lineStart = breaks[k - 1]?.to ?? 0
    const next = breaks[k + 1]
    views.push(joinAt(base, lineStart, [b], next?.from ?? t.length))
    if (next?.inToken) views.push(joinAt(base, lineStart, [b, next], breaks[k + 2]?.from ?? t.length))
  })
  return views
}

/** `base`'s `[from, to)` with the given breaks (inside it, in order) removed. */
function joinAt(base: TextView, from: number, cut: readonly Break[], to: number): TextView {
  let text = ''
  const start: number[] = []
  const end: number[] = []
  const joins: number[] = []
  let at = from
  const keep = (until: number) => {
    text += base.text.slice(at, until)
    for (let i = at; i < until; i++) {
      start.push(base.start[i] ?? 0)
      end.push(base.end[i] ?? 0)
    }
  }
  for (const b of cut) {
    keep(b.from)
    joins.push(text.length)
    at = b.to
  }
  keep(to)
  return { text, start, end, joins }
}

/**
 * Text → sparse TF-IDF features: word uni- and bigrams plus character 2–5-grams inside word boundaries, each
 * family with sublinear term frequency, weighted by IDF and L2-normalised on its own, then concatenated.
 * N-grams are identified by a 32-bit FNV-1a hash of the n-gram string, so a model stores integers, not words.
 */

export interface FeatureOptions {
  readonly wordNgrams: readonly [number, number]
  readonly charNgrams: readonly [number, number]
  /** Weight of the character block against the word block (each block has unit L2 norm before weighting). */
  readonly charWeight: number
  /** Character n-grams over the whole text (spanning word boundaries) instead of inside each word. */
  readonly charAcrossWords?: boolean | undefined
}

export const DEFAULT_FEATURES: FeatureOptions = {
  wordNgrams: [1, 2],
  charNgrams: [2, 5],
  charWeight: 1.5,
  charAcrossWords: true,
}

/** A sparse vector: parallel arrays of feature keys (hashes) and values. */
export interface SparseTerms {
  readonly keys: Uint32Array
  readonly values: Float64Array
  /** Which block each entry belongs to: 0 word, 1 character. */
  readonly blocks: Uint8Array
}

/** Lower case, Unicode-normalised, digits folded to 0 (an amount or an order number says little about intent). */
export function normalizeText(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/[0-9]/g, '0')
}

const WORD = /[\p{L}\p{N}]+(?:'[\p{L}]+)?/gu

export function words(text: string): string[] {
  return normalizeText(text).match(WORD) ?? []
}

const WORD_SEED = 0x811c9dc5
const CHAR_SEED = 0x9e3779b9

const PRIME = 0x01000193

/**
 * Calls `add(block, key)` for every n-gram of the text, word block first, in text order; keys are 30 bits of the
 * FNV-1a hash of the n-gram string (V8 keeps such numbers as small integers), computed incrementally over the
 * characters without building the strings.
 */
function eachTerm(text: string, opts: FeatureOptions, add: (block: 0 | 1, key: number) => void): void {
  const ws = words(text)
  const [wLo, wHi] = opts.wordNgrams
  for (let i = 0; i < ws.length; i++) {
    let h = WORD_SEED
    for (let n = 1; n <= wHi && i + n <= ws.length; n++) {
      if (n > 1) h = Math.imul(h ^ 0x20, PRIME)
      const w = ws[i + n - 1]!
      for (let j = 0; j < w.length; j++) h = Math.imul(h ^ w.charCodeAt(j), PRIME)
      if (n >= wLo) add(0, h >>> 2)
    }
  }
  const [cLo, cHi] = opts.charNgrams
  for (const w of opts.charAcrossWords ? [ws.join(' ')] : ws) {
    const padded = ` ${w} `
    for (let i = 0; i < padded.length; i++) {
      let h = CHAR_SEED
      for (let n = 1; n <= cHi && i + n <= padded.length; n++) {
        h = Math.imul(h ^ padded.charCodeAt(i + n - 1), PRIME)
        if (n >= cLo) add(1, h >>> 2)
      }
    }
  }
}

/** Raw term counts of one text, before IDF: key → count, per block, in order of first occurrence. */
export function termCounts(
  text: string,
  opts: FeatureOptions = DEFAULT_FEATURES,
): [Map<number, number>, Map<number, number>] {
  const blocks: [Map<number, number>, Map<number, number>] = [new Map(), new Map()]
  eachTerm(text, opts, (b, k) => {
    const m = blocks[b]
    m.set(k, (m.get(k) ?? 0) + 1)
  })
  return blocks
}

/**
 * The same counts as `termCounts`, in the same order, kept in reused typed arrays instead of two new Maps per text
 * (the intake classifies every message: the Maps were most of the classifier's time and garbage). `visit` sees
 * each block's keys in order of first occurrence; the arrays are reused by the next call.
 */
export function visitTermCounts(
  text: string,
  opts: FeatureOptions,
  visit: (block: 0 | 1, keys: Int32Array, counts: Int32Array, n: number) => void,
): void {
  const counters = [scratch[0], scratch[1]] as const
  for (const c of counters) reset(c)
  eachTerm(text, opts, (b, k) => count(counters[b], k))
  visit(0, counters[0].keys, counters[0].counts, counters[0].n)
  visit(1, counters[1].keys, counters[1].counts, counters[1].n)
}

/** Open-addressing counter: `slots` holds entry index + 1 (0 = empty); entries stay in insertion order. */
interface Counter {
  slots: Int32Array
  shift: number
  keys: Int32Array
  counts: Int32Array
  slotOfEntry: Int32Array
  n: number
}

function counter(bits: number): Counter {
  const size = 1 << (bits - 1)
  return {
    slots: new Int32Array(1 << bits),
    shift: 32 - bits,
    keys: new Int32Array(size),
    counts: new Int32Array(size),
    slotOfEntry: new Int32Array(size),
    n: 0,
  }
}

const scratch = [counter(10), counter(12)] as const

function reset(c: Counter): void {
  for (let e = 0; e < c.n; e++) c.slots[c.slotOfEntry[e]!] = 0
  c.n = 0
}

function count(c: Counter, key: number): void {
  const mask = c.slots.length - 1
  let i = Math.imul(key, 0x9e3779b1) >>> c.shift
  for (let e = c.slots[i]!; e !== 0; e = c.slots[i]!) {
    if (c.keys[e - 1] === key) {
      c.counts[e - 1]!++
      return
    }
    i = (i + 1) & mask
  }
  if (c.n === c.keys.length) {
    grow(c)
    count(c, key)
    return
  }
  c.keys[c.n] = key
  c.counts[c.n] = 1
  c.slotOfEntry[c.n] = i
  c.n++
  c.slots[i] = c.n
}

/** Doubles the table (at most half full), keeping the entries and their order. */
function grow(c: Counter): void {
  const bigger = counter(32 - c.shift + 1)
  for (let e = 0; e < c.n; e++) {
    const key = c.keys[e]!
    const mask = bigger.slots.length - 1
    let i = Math.imul(key, 0x9e3779b1) >>> bigger.shift
    while (bigger.slots[i] !== 0) i = (i + 1) & mask
    bigger.keys[e] = key
    bigger.counts[e] = c.counts[e]!
    bigger.slotOfEntry[e] = i
    bigger.slots[i] = e + 1
  }
  bigger.n = c.n
  Object.assign(c, bigger)
}

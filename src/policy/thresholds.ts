import { isMap, isScalar, isSeq, parseDocument } from 'yaml'
import { BatonError } from '../errors.js'

/**
 * The class thresholds of a policy: the constants of comparisons `signals.intent_class.<class> >= <number>` in its
 * routing rules and overrides. `baton intents calibrate` sets them in place (the rest of the file, comments and
 * layout included, is left as it was) and raises `metadata.version`.
 */
const COMPARISON = /signals\.intent_class\.([a-z][a-z0-9_]*)\s*>=\s*(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)/g

interface Edit {
  readonly start: number
  readonly end: number
  readonly text: string
}

function conditionRanges(source: string, file: string): { start: number; end: number }[] {
  const doc = parseDocument(source)
  if (doc.errors.length > 0) {
    throw new BatonError('POLICY_INVALID', `${file}: ${doc.errors[0]!.message}`)
  }
  const out: { start: number; end: number }[] = []
  for (const list of ['rules', 'overrides']) {
    const seq = doc.getIn(['routing', list], true)
    if (!isSeq(seq)) continue
    for (const item of seq.items) {
      if (!isMap(item)) continue
      const when = item.get('when', true)
      if (isScalar(when) && when.range !== undefined && when.range !== null) {
        out.push({ start: when.range[0], end: when.range[1] })
      }
    }
  }
  return out
}

/** Class → the thresholds its comparisons use now (in file order). */
export function classThresholds(source: string, file: string): Map<string, number[]> {
  const out = new Map<string, number[]>()
  for (const r of conditionRanges(source, file)) {
    for (const m of source.slice(r.start, r.end).matchAll(COMPARISON)) {
      const list = out.get(m[1]!) ?? []
      out.set(m[1]!, list)
      list.push(Number(m[2]))
    }
  }
  return out
}

/**
 * The source with every comparison of a class in `thresholds` set to its threshold and `metadata.version` raised by
 * one. `POLICY_INVALID` when a class has no comparison to set.
 */
export function setClassThresholds(
  source: string,
  file: string,
  thresholds: Readonly<Record<string, number>>,
): { source: string; version: number | null } {
  const edits: Edit[] = []
  const seen = new Set<string>()
  for (const r of conditionRanges(source, file)) {
    const text = source.slice(r.start, r.end)
    for (const m of text.matchAll(COMPARISON)) {
      const t = thresholds[m[1]!]
      if (t === undefined) continue
      seen.add(m[1]!)
      const at = r.start + m.index! + m[0].length - m[2]!.length
      edits.push({ start: at, end: at + m[2]!.length, text: formatThreshold(t) })
    }
  }
  const missing = Object.keys(thresholds).filter((c) => !seen.has(c))
  if (missing.length > 0) {
    throw new BatonError(
      'POLICY_INVALID',
      `${file}: no routing rule compares ${missing.map((c) => `signals.intent_class.${c} >= …`).join(', ')}: nothing to set (write the rule, e.g. when: signals.intent_class.${missing[0]} >= 0.05)`,
    )
  }
  const doc = parseDocument(source)
  const version = doc.getIn(['metadata', 'version'], true)
  let next: number | null = null
  if (isScalar(version) && typeof version.value === 'number' && version.range) {
    next = version.value + 1
    edits.push({ start: version.range[0], end: version.range[1], text: String(next) })
  }
  let out = source
  for (const e of edits.sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.text + out.slice(e.end)
  return { source: out, version: next }
}

/** Plain decimal notation (CEL reads `1e-4` too, but people read this). */
export function formatThreshold(t: number): string {
  if (t === 0) return '0.0'
  const s = t.toFixed(Math.max(1, 3 - Math.floor(Math.log10(t))))
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '.0') : `${s}.0`
}

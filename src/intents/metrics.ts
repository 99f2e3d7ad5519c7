import { classify, type IntentModel, UNKNOWN_INTENT } from './model.js'
import type { LabelledText } from './train.js'

export interface IntentReport {
  readonly n: number
  /** Share of texts whose top intent is the label (the unknown threshold is not applied). */
  readonly accuracy: number
  readonly macro_f1: number
  /** Share answered `unknown` under the model's threshold. */
  readonly unknown_rate: number
  /** Expected calibration error over 10 equal-width confidence bins. */
  readonly ece: number
  readonly per_intent: Readonly<Record<string, { precision: number; recall: number; f1: number; support: number }>>
  /** label → predicted → count, only the off-diagonal cells (the mistakes). */
  readonly confusion: Readonly<Record<string, Readonly<Record<string, number>>>>
}

/** Accuracy, macro-F1 over the labels present in the data, per-intent figures and the confusions. */
export function evaluateModel(m: IntentModel, data: readonly LabelledText[]): IntentReport {
  const tp = new Map<string, number>()
  const fp = new Map<string, number>()
  const support = new Map<string, number>()
  const confusion: Record<string, Record<string, number>> = {}
  const bins = Array.from({ length: 10 }, () => ({ n: 0, conf: 0, correct: 0 }))
  let correct = 0
  let unknown = 0
  for (const d of data) {
    const p = classify(m, d.text, 1)
    const top = p.top[0]!.intent
    if (p.intent === UNKNOWN_INTENT) unknown++
    support.set(d.label, (support.get(d.label) ?? 0) + 1)
    const bin = bins[Math.min(9, Math.floor(p.confidence * 10))]!
    bin.n++
    bin.conf += p.confidence
    if (top === d.label) {
      correct++
      bin.correct++
      tp.set(top, (tp.get(top) ?? 0) + 1)
    } else {
      fp.set(top, (fp.get(top) ?? 0) + 1)
      const row = confusion[d.label] ?? {}
      confusion[d.label] = row
      row[top] = (row[top] ?? 0) + 1
    }
  }
  const per: Record<string, { precision: number; recall: number; f1: number; support: number }> = {}
  let f1sum = 0
  for (const label of [...support.keys()].sort()) {
    const t = tp.get(label) ?? 0
    const s = support.get(label) ?? 0
    const precision = t + (fp.get(label) ?? 0) > 0 ? t / (t + (fp.get(label) ?? 0)) : 0
    const recall = s > 0 ? t / s : 0
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0
    per[label] = { precision: round(precision), recall: round(recall), f1: round(f1), support: s }
    f1sum += f1
  }
  const n = data.length
  const ece = bins.reduce((e, b) => e + (b.n === 0 ? 0 : (b.n / n) * Math.abs(b.correct / b.n - b.conf / b.n)), 0)
  return {
    n,
    accuracy: round(n ? correct / n : 0),
    macro_f1: round(support.size ? f1sum / support.size : 0),
    unknown_rate: round(n ? unknown / n : 0),
    ece: round(ece),
    per_intent: per,
    confusion,
  }
}

export function round(x: number, digits = 4): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

/** How many of the sorted values are strictly below t. */
export function countBelow(sorted: readonly number[], t: number): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (sorted[mid]! < t) lo = mid + 1
    else hi = mid
  }
  return lo
}

import { BatonError } from '../errors.js'
import { AI_CLASS } from './classes.js'
import { countBelow } from './metrics.js'
import { prng } from './train.js'

/**
 * Threshold calibration with a finite-sample guarantee: Learn then Test (Angelopoulos, Bates, Candès, Jordan, Lei,
 * "Learn then Test: Calibrating Predictive Algorithms to Achieve Risk Control", 2021) with fixed-sequence testing
 * and the exact binomial (Clopper–Pearson, Biometrika 26(4), 1934) p-value.
 *
 * For a class c (say `human`) the policy sends a message to people when `signals.intent_class.c >= t`. The risk at
 * t is R(t) = P(the message is left with the AI | its true class is c). On n calibration messages of class c that the
 * model was not trained on, k(t) of them would be left with the AI, and k(t) ~ Binomial(n, R(t)). For each t of a
 * grid fixed in advance, from the most careful (t = 0: everything to people) upwards, the null hypothesis
 * R(t) > α is rejected when p(t) = P(Binomial(n, α) ≤ k(t)) ≤ δ; the search stops at the first t it cannot reject
 * and keeps the last rejected one. Fixed-sequence testing needs no multiplicity correction: with probability at
 * least 1 − δ over the calibration sample, every kept threshold has R(t) ≤ α. The bound printed is the one-sided
 * Clopper–Pearson upper limit of R at the kept t (≤ α by construction).
 *
 * Each class is calibrated on its own messages at confidence 1 − δ; the statements for m classes hold together with
 * probability at least 1 − m·δ (Bonferroni). The guarantee assumes calibration and future messages are exchangeable
 * (drawn alike), and a policy that leaves a message with the AI only when its top intent is of class `ai` (or it is
 * `unknown`) and every calibrated class is under its threshold (other rules may only make it more careful).
 */

/** One calibration message, as the classifier sees it. */
export interface CalibrationRow {
  /** The true class of its label (from the risk map); undefined when the map does not name the label. */
  readonly cls: string | undefined
  /** `signals.intent_class` of the message. */
  readonly mass: Readonly<Record<string, number>>
  /** Whether the policy may leave it with the AI at all: its top intent is of class `ai`, or it is `unknown`. */
  readonly aiEligible: boolean
}

export interface CalibrateOptions {
  /** α: the largest share of a class's messages that may be left with the AI. */
  readonly maxRate: number
  /** 1 − δ. */
  readonly confidence: number
  /** Classes to calibrate (not `ai`). */
  readonly classes: readonly string[]
  /** Seed of the bootstrap interval of the expected automation. */
  readonly seed: number
}

export interface ClassCalibration {
  readonly threshold: number
  /** Messages of the class in the calibration data. */
  readonly n: number
  /** Of them, left with the AI at the threshold. */
  readonly left_with_ai: number
  readonly point: number
  /** Clopper–Pearson upper bound of the rate at the stated confidence. */
  readonly bound: number
  readonly p_value: number
}

export interface Calibration {
  readonly method: string
  readonly max_rate: number
  readonly confidence: number
  readonly n: number
  readonly classes: Readonly<Record<string, ClassCalibration>>
  /** Of `ai`-class calibration messages, the share left with the AI at the thresholds. */
  readonly expected_automation: number
  /** Bootstrap 90 % interval of that share (1000 resamples of the `ai` messages, seeded). */
  readonly expected_automation_interval: readonly [number, number]
  readonly ai_messages: number
}

export const METHOD =
  'Learn then Test (Angelopoulos et al. 2021), fixed-sequence over a fixed grid, exact binomial / Clopper-Pearson (1934) p-values'

/** Candidate thresholds, fixed before any data is seen: 0, then 10^-4 … 1 log-spaced, 3 significant digits. */
export const THRESHOLD_GRID: readonly number[] = (() => {
  const out = new Set<number>([0])
  for (let j = 0; j <= 240; j++) out.add(Number((10 ** (-4 + (4 * j) / 240)).toPrecision(3)))
  return [...out].sort((a, b) => a - b)
})()

/** Smallest number of class messages that can give the bound at all (k = 0 at t = 0): (1 − α)^n ≤ δ. */
export function messagesNeeded(maxRate: number, confidence: number): number {
  return Math.ceil(Math.log(1 - confidence) / Math.log(1 - maxRate))
}

/**
 * Chooses a threshold per class. `VALIDATION_FAILED` for an α or confidence outside (0, 1), a class with too few
 * calibration messages to give the bound, or no class to calibrate.
 */
export function calibrateThresholds(rows: readonly CalibrationRow[], o: CalibrateOptions): Calibration {
  if (!(o.maxRate > 0 && o.maxRate < 1)) {
    throw new BatonError('VALIDATION_FAILED', `--max-unsafe: expected a rate in (0, 1), found ${o.maxRate}`)
  }
  if (!(o.confidence > 0 && o.confidence < 1)) {
    throw new BatonError('VALIDATION_FAILED', `--confidence: expected a probability in (0, 1), found ${o.confidence}`)
  }
  if (o.classes.length === 0) throw new BatonError('VALIDATION_FAILED', 'no class to calibrate')
  const delta = 1 - o.confidence
  const needed = messagesNeeded(o.maxRate, o.confidence)
  const classes: Record<string, ClassCalibration> = {}
  for (const c of o.classes) {
    if (c === AI_CLASS) throw new TypeError(`calibrateThresholds: '${AI_CLASS}' is the AI's class, not one to bound`)
    const masses = rows
      .filter((r) => r.cls === c)
      .map((r) => (r.aiEligible ? (r.mass[c] ?? 0) : Number.POSITIVE_INFINITY))
      .sort((a, b) => a - b)
    const n = masses.length
    if (n < needed) {
      throw new BatonError(
        'VALIDATION_FAILED',
        `class '${c}': ${n} calibration messages, the bound ${o.maxRate} at confidence ${o.confidence} needs at least ${needed} (with none left with the AI); use a larger calibration split, or a larger --max-unsafe or a smaller --confidence`,
      )
    }
    let kept: ClassCalibration | undefined
    for (const t of THRESHOLD_GRID) {
      const k = countBelow(masses, t)
      const p = binomialCdf(k, n, o.maxRate)
      if (p > delta) break
      kept = {
        threshold: t,
        n,
        left_with_ai: k,
        point: k / n,
        bound: clopperPearsonUpper(k, n, o.confidence),
        p_value: p,
      }
    }
    // t = 0 leaves nothing with the AI: with n ≥ needed its p-value is (1 − α)^n ≤ δ
    classes[c] = kept!
  }
  const ai = rows.filter((r) => r.cls === AI_CLASS)
  const automated = ai.map((r) => r.aiEligible && o.classes.every((c) => (r.mass[c] ?? 0) < classes[c]!.threshold))
  const share = (xs: readonly boolean[]) => (xs.length === 0 ? 0 : xs.filter(Boolean).length / xs.length)
  const random = prng(o.seed)
  const boot: number[] = []
  for (let b = 0; b < 1000 && automated.length > 0; b++) {
    let s = 0
    for (let i = 0; i < automated.length; i++) if (automated[Math.floor(random() * automated.length)]) s++
    boot.push(s / automated.length)
  }
  boot.sort((a, b) => a - b)
  return {
    method: METHOD,
    max_rate: o.maxRate,
    confidence: o.confidence,
    n: rows.length,
    classes,
    expected_automation: share(automated),
    expected_automation_interval: [
      boot[Math.floor(0.05 * boot.length)] ?? 0,
      boot[Math.ceil(0.95 * boot.length) - 1] ?? 0,
    ],
    ai_messages: ai.length,
  }
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: ~15 digits). */
function logGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ]
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x)
  const z = x - 1
  let a = c[0]!
  const t = z + 7.5
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i)
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a)
}

/** P(Binomial(n, p) ≤ k). */
export function binomialCdf(k: number, n: number, p: number): number {
  if (k < 0) return 0
  if (k >= n) return 1
  if (p <= 0) return 1
  if (p >= 1) return 0
  const lnN = logGamma(n + 1)
  const lp = Math.log(p)
  const lq = Math.log1p(-p)
  let s = 0
  for (let i = 0; i <= k; i++) s += Math.exp(lnN - logGamma(i + 1) - logGamma(n - i + 1) + i * lp + (n - i) * lq)
  return Math.min(1, s)
}

/**
 * One-sided Clopper–Pearson upper confidence limit of a binomial rate from k of n: the p with
 * P(Binomial(n, p) ≤ k) = 1 − confidence (bisection; 1 when k = n, 0 when n = 0 is undefined and gives 1).
 */
export function clopperPearsonUpper(k: number, n: number, confidence: number): number {
  if (n === 0 || k >= n) return 1
  const delta = 1 - confidence
  let lo = k / n
  let hi = 1
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2
    if (binomialCdf(k, n, mid) > delta) lo = mid
    else hi = mid
  }
  return hi
}

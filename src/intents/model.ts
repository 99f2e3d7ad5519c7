import { DEFAULT_FEATURES, type FeatureOptions, termCounts } from './features.js'

/**
 * A trained intent model: a linear softmax classifier over TF-IDF features, with a temperature that calibrates its
 * probabilities and a threshold under which it answers `unknown`.
 */
export interface IntentModel {
  readonly labels: readonly string[]
  readonly features: FeatureOptions
  /** Feature key (n-gram hash) → row, one map per block (0 word, 1 character). */
  readonly vocab: readonly [ReadonlyMap<number, number>, ReadonlyMap<number, number>]
  /** Inverse document frequency per row. */
  readonly idf: Float32Array
  /** Row-major weights: row f holds the `labels.length` class weights of feature f. */
  readonly weights: Float32Array
  readonly bias: Float32Array
  /** Softmax temperature fitted on held-out data (probabilities = softmax(logits / temperature)). */
  readonly temperature: number
  /** When the top probability is below this, the answer is `unknown`. */
  readonly unknownBelow: number
  readonly meta: Readonly<Record<string, unknown>>
}

export const UNKNOWN_INTENT = 'unknown'

export interface IntentScore {
  readonly intent: string
  readonly confidence: number
}

/** The classifier's answer for one message: `intent` is `unknown` when nothing fits well enough. */
export interface IntentPrediction {
  readonly intent: string
  /** Calibrated probability of the top intent (also when `intent` is `unknown`). */
  readonly confidence: number
  /** The best intents, most probable first, whatever the threshold said. */
  readonly top: readonly IntentScore[]
}

export interface SparseVector {
  readonly index: Int32Array
  readonly value: Float32Array
}

/** TF-IDF vector of a text in the model's feature space; n-grams the model never saw are dropped. */
export function vectorize(
  text: string,
  m: Pick<IntentModel, 'vocab' | 'idf' | 'features'> = {
    vocab: [new Map(), new Map()],
    idf: new Float32Array(),
    features: DEFAULT_FEATURES,
  },
): SparseVector {
  const blocks = termCounts(text, m.features)
  const index: number[] = []
  const value: number[] = []
  for (let b = 0; b < 2; b++) {
    const start = index.length
    let norm = 0
    for (const [key, tf] of blocks[b]!) {
      const row = m.vocab[b]!.get(key)
      if (row === undefined) continue
      const v = (1 + Math.log(tf)) * m.idf[row]!
      index.push(row)
      value.push(v)
      norm += v * v
    }
    if (norm > 0) {
      const scale = (b === 1 ? m.features.charWeight : 1) / Math.sqrt(norm)
      for (let i = start; i < value.length; i++) value[i]! *= scale
    }
  }
  return { index: Int32Array.from(index), value: Float32Array.from(value) }
}

/** Raw class scores (logits) of a vector. */
export function logits(
  m: Pick<IntentModel, 'weights' | 'bias' | 'labels'>,
  x: SparseVector,
  out?: Float64Array,
): Float64Array {
  const c = m.labels.length
  const z = out ?? new Float64Array(c)
  for (let k = 0; k < c; k++) z[k] = m.bias[k]!
  for (let j = 0; j < x.index.length; j++) {
    const base = x.index[j]! * c
    const v = x.value[j]!
    for (let k = 0; k < c; k++) z[k]! += v * m.weights[base + k]!
  }
  return z
}

/** In-place softmax of `z / temperature`. */
export function softmax(z: Float64Array, temperature = 1): Float64Array {
  let max = Number.NEGATIVE_INFINITY
  for (let k = 0; k < z.length; k++) if (z[k]! > max) max = z[k]!
  let sum = 0
  for (let k = 0; k < z.length; k++) {
    const e = Math.exp((z[k]! - max) / temperature)
    z[k] = e
    sum += e
  }
  for (let k = 0; k < z.length; k++) z[k]! /= sum
  return z
}

/** Calibrated probabilities of every label, in `labels` order. */
export function probabilities(m: IntentModel, text: string): Float64Array {
  return softmax(logits(m, vectorize(text, m)), m.temperature)
}

/** Classifies one message: the top `k` intents with calibrated confidence, or `unknown` under the threshold. */
export function classify(m: IntentModel, text: string, k = 3): IntentPrediction {
  const p = probabilities(m, text)
  const order = [...p.keys()].sort((a, b) => p[b]! - p[a]!).slice(0, Math.max(1, k))
  const top = order.map((i) => ({ intent: m.labels[i]!, confidence: p[i]! }))
  const best = top[0]!
  return { intent: best.confidence < m.unknownBelow ? UNKNOWN_INTENT : best.intent, confidence: best.confidence, top }
}

import { DEFAULT_FEATURES, type FeatureOptions, visitTermCounts } from './features.js'

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
  const index: number[] = []
  const value: number[] = []
  visitTermCounts(text, m.features, (b, keys, counts, n) => {
    const start = index.length
    let norm = 0
    const table = keyTableOf(m.vocab[b]!)
    for (let e = 0; e < n; e++) {
      const row = rowOf(table, keys[e]!)
      if (row < 0) continue
      const v = (1 + Math.log(counts[e]!)) * m.idf[row]!
      index.push(row)
      value.push(v)
      norm += v * v
    }
    if (norm > 0) {
      const scale = (b === 1 ? m.features.charWeight : 1) / Math.sqrt(norm)
      for (let i = start; i < value.length; i++) value[i]! *= scale
    }
  })
  return { index: Int32Array.from(index), value: Float32Array.from(value) }
}

/**
 * A vocabulary as an open-addressing hash table in two typed arrays, built once per vocabulary: a message looks up
 * a few hundred n-grams, and in a busy server the Map's scattered entries missed the CPU cache on most of them.
 */
interface KeyTable {
  readonly size: number
  readonly shift: number
  readonly mask: number
  readonly keys: Int32Array
  /** Row of the key in the same slot; -1 for an empty slot. */
  readonly rows: Int32Array
}

const keyTables = new WeakMap<ReadonlyMap<number, number>, KeyTable>()

// Fibonacci hashing: the top bits of key × 2^32/φ pick the slot
const slotOf = (key: number, shift: number): number => Math.imul(key, 0x9e3779b1) >>> shift

function keyTableOf(vocab: ReadonlyMap<number, number>): KeyTable {
  const cached = keyTables.get(vocab)
  // a vocabulary only grows while it is built (training): a table of another size is stale
  if (cached !== undefined && cached.size === vocab.size) return cached
  let bits = 4
  while (1 << bits < vocab.size * 2) bits++
  const mask = (1 << bits) - 1
  const shift = 32 - bits
  const keys = new Int32Array(mask + 1)
  const rows = new Int32Array(mask + 1).fill(-1)
  for (const [key, row] of vocab) {
    const k = key | 0 // keys are 32-bit hashes: `| 0` maps them one to one onto Int32
    let i = slotOf(k, shift)
    while (rows[i] !== -1) i = (i + 1) & mask
    keys[i] = k
    rows[i] = row
  }
  const table = { size: vocab.size, shift, mask, keys, rows }
  keyTables.set(vocab, table)
  return table
}

/** The row of `key`, or -1 when the vocabulary does not have it. */
function rowOf(t: KeyTable, key: number): number {
  const k = key | 0
  for (let i = slotOf(k, t.shift); ; i = (i + 1) & t.mask) {
    const row = t.rows[i]!
    if (row === -1 || t.keys[i] === k) return row
  }
}

/** The non-zero weights by feature row (compressed sparse rows), built once per model. */
interface SparseRows {
  readonly start: Int32Array
  readonly cls: Uint16Array
  readonly w: Float32Array
}

const sparseRows = new WeakMap<Float32Array, SparseRows | null>()

function rowsOf(weights: Float32Array, c: number): SparseRows | null {
  let cached = sparseRows.get(weights)
  if (cached !== undefined) return cached
  let nz = 0
  for (const x of weights) if (x !== 0) nz++
  // only worth it for a pruned model
  if (nz > weights.length / 2) cached = null
  else {
    const rows = weights.length / c
    const start = new Int32Array(rows + 1)
    const cls = new Uint16Array(nz)
    const w = new Float32Array(nz)
    let e = 0
    for (let r = 0; r < rows; r++) {
      start[r] = e
      for (let k = 0; k < c; k++) {
        const x = weights[r * c + k]!
        if (x !== 0) {
          cls[e] = k
          w[e++] = x
        }
      }
    }
    start[rows] = e
    cached = { start, cls, w }
  }
  sparseRows.set(weights, cached)
  return cached
}

/** Raw class scores (logits) of a vector. */
export function logits(
  m: Pick<IntentModel, 'weights' | 'bias' | 'labels'>,
  x: SparseVector,
  out?: Float64Array,
): Float64Array {
  const c = m.labels.length
  const z = out ?? new Float64Array(c)
  const idx = x.index
  const val = x.value
  z.set(m.bias)
  const sparse = rowsOf(m.weights, c)
  if (sparse !== null) {
    const { start, cls, w } = sparse
    for (let j = 0; j < idx.length; j++) {
      const r = idx[j]!
      const v = val[j]!
      const end = start[r + 1]!
      for (let e = start[r]!; e < end; e++) {
        const k = cls[e]!
        z[k] = z[k]! + v * w[e]!
      }
    }
    return z
  }
  const w = m.weights
  for (let j = 0; j < idx.length; j++) {
    const base = idx[j]! * c
    const v = val[j]!
    for (let k = 0; k < c; k++) z[k] = z[k]! + v * w[base + k]!
  }
  return z
}

/** Zeroes all but the `keep` share of the weights with the largest magnitude (faster, smaller, ~same accuracy). */
export function pruneWeights<T extends IntentModel>(m: T, keep: number): T {
  if (keep >= 1) return m
  const abs = Float32Array.from(m.weights, Math.abs).sort()
  const tau = abs[Math.min(abs.length - 1, Math.floor((1 - keep) * abs.length))] ?? 0
  return { ...m, weights: m.weights.map((x) => (Math.abs(x) < tau ? 0 : x)) }
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
  return classifyProbabilities(m, probabilities(m, text), k)
}

/** `classify` from the probabilities already computed (`probabilities(m, text)`). */
export function classifyProbabilities(m: IntentModel, p: Float64Array, k = 3): IntentPrediction {
  // top k by repeated selection: k is small, no sort of every label
  const top: IntentScore[] = []
  const taken = new Set<number>()
  for (let n = 0; n < Math.min(Math.max(1, k), p.length); n++) {
    let best = -1
    for (let i = 0; i < p.length; i++) if (!taken.has(i) && (best < 0 || p[i]! > p[best]!)) best = i
    taken.add(best)
    top.push({ intent: m.labels[best]!, confidence: p[best]! })
  }
  const best = top[0]!
  return { intent: best.confidence < m.unknownBelow ? UNKNOWN_INTENT : best.intent, confidence: best.confidence, top }
}

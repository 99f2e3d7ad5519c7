import { DEFAULT_FEATURES, type FeatureOptions, termCounts } from './features.js'
import { type IntentModel, logits, type SparseVector, softmax, vectorize } from './model.js'

export interface LabelledText {
  readonly text: string
  readonly label: string
}

export interface TrainOptions {
  readonly features: FeatureOptions
  /** N-grams seen in fewer training texts than this are dropped. */
  readonly minDf: number
  /** L2 regularisation strength (per example). */
  readonly lambda: number
  readonly epochs: number
  /** Initial learning rate; decays as eta0 / (1 + eta0 · lambda · t). */
  readonly eta0: number
  /** Seed of the shuffling (the core reads no randomness of its own). */
  readonly seed: number
}

export const DEFAULT_TRAIN: TrainOptions = {
  features: DEFAULT_FEATURES,
  minDf: 3,
  lambda: 1e-5,
  epochs: 6,
  eta0: 0.5,
  seed: 7,
}

/** Deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

type Vocabulary = Pick<IntentModel, 'vocab' | 'idf' | 'features'>

/** Builds the vocabulary (n-grams in at least `minDf` texts) and smooth IDF: ln((1+n)/(1+df)) + 1. */
export function buildVocabulary(texts: readonly string[], features: FeatureOptions, minDf: number): Vocabulary {
  const df: [Map<number, number>, Map<number, number>] = [new Map(), new Map()]
  for (const t of texts) {
    const counts = termCounts(t, features)
    for (let b = 0; b < 2; b++) for (const k of counts[b]!.keys()) df[b]!.set(k, (df[b]!.get(k) ?? 0) + 1)
  }
  const vocab: [Map<number, number>, Map<number, number>] = [new Map(), new Map()]
  const idf: number[] = []
  for (let b = 0; b < 2; b++) {
    const keys = [...df[b]!.entries()].filter(([, n]) => n >= minDf).sort((x, y) => x[0] - y[0])
    for (const [k, n] of keys) {
      vocab[b]!.set(k, idf.length)
      idf.push(Math.log((1 + texts.length) / (1 + n)) + 1)
    }
  }
  return { vocab, idf: Float32Array.from(idf), features }
}

/** What training starts from: a vocabulary built beforehand (e.g. over more texts), or a model to continue. */
export interface TrainStart {
  readonly vocabulary?: Vocabulary | undefined
  /** Continue from this model's weights (warm start); its vocabulary and labels are kept. */
  readonly from?: IntentModel | undefined
  readonly onEpoch?: ((epoch: number, model: IntentModel) => void) | undefined
}

/**
 * Multinomial logistic regression by stochastic gradient descent with L2 regularisation, on TF-IDF vectors; the
 * learning rate falls linearly to zero over the epochs, so the last iterate has settled.
 * Returns an uncalibrated model (temperature 1, no unknown threshold).
 */
export function trainSoftmax(
  data: readonly LabelledText[],
  opts: TrainOptions = DEFAULT_TRAIN,
  start: TrainStart = {},
): IntentModel {
  if (data.length === 0) throw new TypeError('trainSoftmax: no training data')
  const labels = start.from?.labels ?? [...new Set(data.map((d) => d.label))].sort()
  const labelIndex = new Map(labels.map((l, i) => [l, i]))
  const voc: Vocabulary =
    start.from ??
    start.vocabulary ??
    buildVocabulary(
      data.map((d) => d.text),
      opts.features,
      opts.minDf,
    )
  const known = data.filter((d) => labelIndex.has(d.label))
  const xs: SparseVector[] = known.map((d) => vectorize(d.text, voc))
  const ys = Int32Array.from(known.map((d) => labelIndex.get(d.label)!))
  const c = labels.length
  const f = voc.idf.length
  const w = start.from ? Float32Array.from(start.from.weights) : new Float32Array(f * c)
  const bias = start.from ? Float32Array.from(start.from.bias) : new Float32Array(c)
  const random = prng(opts.seed)
  const order = Int32Array.from(xs.keys())
  const p = new Float64Array(c)
  const active = new Int32Array(c)
  const total = opts.epochs * xs.length
  let scale = 1
  let t = 0
  const snapshot = (): IntentModel => ({
    labels,
    features: voc.features,
    vocab: voc.vocab,
    idf: voc.idf,
    weights: scale === 1 ? w : w.map((x) => x * scale),
    bias,
    temperature: 1,
    unknownBelow: 0,
    meta: {
      examples: known.length,
      rows: f,
      minDf: opts.minDf,
      lambda: opts.lambda,
      epochs: opts.epochs,
      eta0: opts.eta0,
      seed: opts.seed,
      warm: start.from !== undefined,
    },
  })
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      const tmp = order[i]!
      order[i] = order[j]!
      order[j] = tmp
    }
    for (const n of order) {
      const eta = opts.eta0 * (1 - t++ / total)
      const x = xs[n]!
      const idx = x.index
      const val = x.value
      const nnz = idx.length
      // logits with the lazily applied scale: w_true = scale · w
      for (let k = 0; k < c; k++) p[k] = 0
      for (let j = 0; j < nnz; j++) {
        const base = idx[j]! * c
        const v = val[j]! * scale
        for (let k = 0; k < c; k++) p[k] = p[k]! + v * w[base + k]!
      }
      for (let k = 0; k < c; k++) p[k]! += bias[k]!
      softmax(p)
      p[ys[n]!]! -= 1
      scale *= 1 - eta * opts.lambda
      const step = eta / scale
      // Once the model fits, most classes have a negligible gradient: update only the others.
      let na = 0
      for (let k = 0; k < c; k++) if (p[k]! > 1e-4 || p[k]! < -1e-4) active[na++] = k
      for (let j = 0; j < nnz; j++) {
        const base = idx[j]! * c
        const v = val[j]! * step
        for (let a = 0; a < na; a++) {
          const k = active[a]!
          w[base + k] = w[base + k]! - v * p[k]!
        }
      }
      for (let k = 0; k < c; k++) bias[k]! -= eta * p[k]!
      if (scale < 1e-6) {
        for (let k = 0; k < w.length; k++) w[k]! *= scale
        scale = 1
      }
    }
    start.onEpoch?.(epoch, snapshot())
  }
  for (let k = 0; k < w.length; k++) w[k]! *= scale
  scale = 1
  return snapshot()
}

/** Temperature minimising the negative log-likelihood of held-out data (golden-section search on log T). */
export function fitTemperature(m: IntentModel, data: readonly LabelledText[]): number {
  const index = new Map(m.labels.map((l, i) => [l, i]))
  const rows = data
    .filter((d) => index.has(d.label))
    .map((d) => ({ z: logits(m, vectorize(d.text, m)), y: index.get(d.label)! }))
  if (rows.length === 0) return 1
  const nll = (logT: number) => {
    const t = Math.exp(logT)
    let s = 0
    const p = new Float64Array(m.labels.length)
    for (const r of rows) {
      p.set(r.z)
      softmax(p, t)
      s -= Math.log(Math.max(p[r.y]!, 1e-12))
    }
    return s / rows.length
  }
  let lo = Math.log(0.05)
  let hi = Math.log(20)
  const g = (Math.sqrt(5) - 1) / 2
  let a = hi - g * (hi - lo)
  let b = lo + g * (hi - lo)
  let fa = nll(a)
  let fb = nll(b)
  for (let i = 0; i < 40; i++) {
    if (fa < fb) {
      hi = b
      b = a
      fb = fa
      a = hi - g * (hi - lo)
      fa = nll(a)
    } else {
      lo = a
      a = b
      fa = fb
      b = lo + g * (hi - lo)
      fb = nll(b)
    }
  }
  return Math.exp((lo + hi) / 2)
}

import { BatonError } from '../errors.js'
import type { FeatureOptions } from './features.js'
import type { IntentModel } from './model.js'

/**
 * The model file: JSON with the arrays as base64 (little-endian). Only non-zero weights are stored (the pipeline
 * prunes all but the largest quarter), each as int8 with one float32 scale per feature row (max |w| / 127), by row:
 * a count per row, then the class index and the value of each weight.
 */
export const MODEL_FORMAT = 'baton-intents/1'

interface ModelFile {
  readonly format: typeof MODEL_FORMAT
  readonly labels: readonly string[]
  readonly features: FeatureOptions
  readonly temperature: number
  readonly unknownBelow: number
  readonly meta: Readonly<Record<string, unknown>>
  readonly vocab: { readonly word: string; readonly char: string }
  readonly idf: string
  readonly bias: readonly number[]
  readonly weights: { readonly rowScale: string; readonly count: string; readonly cls: string; readonly q: string }
}

const b64 = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64')

function fromB64<T>(s: string, make: (buf: ArrayBuffer) => T): T {
  const bytes = Buffer.from(s, 'base64')
  // copy into a fresh, aligned buffer: the platform is little-endian, as the format
  const copy = new ArrayBuffer(bytes.byteLength)
  new Uint8Array(copy).set(bytes)
  return make(copy)
}

export function encodeModel(m: IntentModel): string {
  const c = m.labels.length
  const rows = m.idf.length
  const rowScale = new Float32Array(rows)
  const count = new Uint16Array(rows)
  const cls: number[] = []
  const q: number[] = []
  for (let f = 0; f < rows; f++) {
    let max = 0
    for (let k = 0; k < c; k++) max = Math.max(max, Math.abs(m.weights[f * c + k]!))
    const s = max / 127
    rowScale[f] = s
    if (s === 0) continue
    for (let k = 0; k < c; k++) {
      const v = Math.round(m.weights[f * c + k]! / s)
      if (v === 0) continue
      count[f]!++
      cls.push(k)
      q.push(v)
    }
  }
  const keysOf = (b: 0 | 1) => {
    const keys = new Uint32Array(m.vocab[b].size)
    for (const [key, row] of m.vocab[b]) keys[b === 0 ? row : row - m.vocab[0].size] = key
    return keys
  }
  const file: ModelFile = {
    format: MODEL_FORMAT,
    labels: m.labels,
    features: m.features,
    temperature: m.temperature,
    unknownBelow: m.unknownBelow,
    meta: m.meta,
    vocab: { word: b64(keysOf(0)), char: b64(keysOf(1)) },
    idf: b64(m.idf),
    bias: [...m.bias],
    weights: {
      rowScale: b64(rowScale),
      count: b64(count),
      cls: b64(c <= 256 ? Uint8Array.from(cls) : Uint16Array.from(cls)),
      q: b64(Int8Array.from(q)),
    },
  }
  return `${JSON.stringify(file)}\n`
}

/** Parses a model file; `WORKSPACE_INVALID` when it is not one. */
export function decodeModel(text: string, file = 'model'): IntentModel {
  let f: ModelFile
  try {
    f = JSON.parse(text) as ModelFile
  } catch (e) {
    throw new BatonError('WORKSPACE_INVALID', `${file}: expected JSON (${(e as Error).message})`, { cause: e })
  }
  if (f === null || typeof f !== 'object' || f.format !== MODEL_FORMAT) {
    throw new BatonError('WORKSPACE_INVALID', `${file}: expected format '${MODEL_FORMAT}'`)
  }
  const word = fromB64(f.vocab.word, (b) => new Uint32Array(b))
  const char = fromB64(f.vocab.char, (b) => new Uint32Array(b))
  const idf = fromB64(f.idf, (b) => new Float32Array(b))
  const rowScale = fromB64(f.weights.rowScale, (b) => new Float32Array(b))
  const count = fromB64(f.weights.count, (b) => new Uint16Array(b))
  const q = fromB64(f.weights.q, (b) => new Int8Array(b))
  const c = f.labels.length
  const cls = fromB64(f.weights.cls, (b) => (c <= 256 ? new Uint8Array(b) : new Uint16Array(b)))
  const rows = word.length + char.length
  const stored = count.reduce((n, x) => n + x, 0)
  if (
    idf.length !== rows ||
    rowScale.length !== rows ||
    count.length !== rows ||
    q.length !== stored ||
    cls.length !== stored ||
    f.bias.length !== c
  ) {
    throw new BatonError('WORKSPACE_INVALID', `${file}: array sizes do not agree (${rows} rows, ${c} labels)`)
  }
  const weights = new Float32Array(rows * c)
  let e = 0
  for (let r = 0; r < rows; r++) {
    for (let n = 0; n < count[r]!; n++, e++) {
      const k = cls[e]!
      if (k >= c) throw new BatonError('WORKSPACE_INVALID', `${file}: class index ${k} out of range`)
      weights[r * c + k] = q[e]! * rowScale[r]!
    }
  }
  const vocab: [Map<number, number>, Map<number, number>] = [new Map(), new Map()]
  for (let i = 0; i < word.length; i++) vocab[0].set(word[i]!, i)
  for (let i = 0; i < char.length; i++) vocab[1].set(char[i]!, word.length + i)
  return {
    labels: f.labels,
    features: f.features,
    vocab,
    idf,
    weights,
    bias: Float32Array.from(f.bias),
    temperature: f.temperature,
    unknownBelow: f.unknownBelow,
    meta: f.meta ?? {},
  }
}

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

function fnv1a(s: string, seed: number): number {
  let h = seed
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

const WORD_SEED = 0x811c9dc5
const CHAR_SEED = 0x9e3779b9

/** Raw term counts of one text, before IDF: key → count, per block. */
export function termCounts(
  text: string,
  opts: FeatureOptions = DEFAULT_FEATURES,
): [Map<number, number>, Map<number, number>] {
  const ws = words(text)
  const word = new Map<number, number>()
  const [wLo, wHi] = opts.wordNgrams
  for (let n = wLo; n <= wHi; n++) {
    for (let i = 0; i + n <= ws.length; i++) {
      const k = fnv1a(ws.slice(i, i + n).join(' '), WORD_SEED)
      word.set(k, (word.get(k) ?? 0) + 1)
    }
  }
  const char = new Map<number, number>()
  const [cLo, cHi] = opts.charNgrams
  for (const w of opts.charAcrossWords ? [ws.join(' ')] : ws) {
    const padded = ` ${w} `
    for (let n = cLo; n <= cHi; n++) {
      for (let i = 0; i + n <= padded.length; i++) {
        const k = fnv1a(padded.slice(i, i + n), CHAR_SEED)
        char.set(k, (char.get(k) ?? 0) + 1)
      }
    }
  }
  return [word, char]
}

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

function add(m: Map<number, number>, h: number): void {
  // 30 bits: V8 keeps such keys as small integers, which makes every map lookup several times cheaper
  const k = h >>> 2
  m.set(k, (m.get(k) ?? 0) + 1)
}

/**
 * Raw term counts of one text, before IDF: key → count, per block. Hashes are computed incrementally over the
 * characters (the FNV-1a of each n-gram string, without building the strings).
 */
export function termCounts(
  text: string,
  opts: FeatureOptions = DEFAULT_FEATURES,
): [Map<number, number>, Map<number, number>] {
  const ws = words(text)
  const word = new Map<number, number>()
  const [wLo, wHi] = opts.wordNgrams
  for (let i = 0; i < ws.length; i++) {
    let h = WORD_SEED
    for (let n = 1; n <= wHi && i + n <= ws.length; n++) {
      if (n > 1) h = Math.imul(h ^ 0x20, PRIME)
      const w = ws[i + n - 1]!
      for (let j = 0; j < w.length; j++) h = Math.imul(h ^ w.charCodeAt(j), PRIME)
      if (n >= wLo) add(word, h)
    }
  }
  const char = new Map<number, number>()
  const [cLo, cHi] = opts.charNgrams
  for (const w of opts.charAcrossWords ? [ws.join(' ')] : ws) {
    const padded = ` ${w} `
    for (let i = 0; i < padded.length; i++) {
      let h = CHAR_SEED
      for (let n = 1; n <= cHi && i + n <= padded.length; n++) {
        h = Math.imul(h ^ padded.charCodeAt(i + n - 1), PRIME)
        if (n >= cLo) add(char, h)
      }
    }
  }
  return [word, char]
}

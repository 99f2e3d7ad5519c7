/** Small numeric helpers the figures share. Rates are rounded to 4 decimals; null where the denominator is 0. */

export function rate(n: number, of: number): number | null {
  return of === 0 ? null : Math.round((n / of) * 10_000) / 10_000
}

/** Nearest-rank percentile (`q` in 0..1) of `values`, which it sorts in place; null when empty. */
export function percentileOf(values: number[], q: number): number | null {
  if (values.length === 0) return null
  values.sort((a, b) => a - b)
  return values[Math.min(values.length - 1, Math.max(0, Math.ceil(q * values.length) - 1))]!
}

export interface Spread {
  readonly n: number
  readonly p50: number | null
  readonly p90: number | null
}

/** Count, p50 and p90 of durations in ms, reported in seconds (1 decimal). */
export function spreadSeconds(ms: number[]): Spread {
  const s = (v: number | null) => (v === null ? null : Math.round(v / 100) / 10)
  return { n: ms.length, p50: s(percentileOf(ms, 0.5)), p90: s(percentileOf(ms, 0.9)) }
}

/** A 32-bit FNV-1a hash of a string: a deterministic sampling key (never a security measure). */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** The `k` items with the smallest keys (a bottom-k sample: deterministic, uniform when keys are hashes). */
export class BottomK<T> {
  readonly #k: number
  // a max-heap of [key, item]
  readonly #heap: [number, T][] = []
  #seen = 0

  constructor(k: number) {
    this.#k = k
  }

  get seen(): number {
    return this.#seen
  }

  add(key: number, item: T): void {
    this.#seen++
    const h = this.#heap
    if (h.length < this.#k) {
      h.push([key, item])
      let i = h.length - 1
      while (i > 0) {
        const p = (i - 1) >> 1
        if (h[p]![0] >= h[i]![0]) break
        ;[h[p], h[i]] = [h[i]!, h[p]!]
        i = p
      }
      return
    }
    if (this.#k === 0 || key >= h[0]![0]) return
    h[0] = [key, item]
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < h.length && h[l]![0] > h[m]![0]) m = l
      if (r < h.length && h[r]![0] > h[m]![0]) m = r
      if (m === i) break
      ;[h[m], h[i]] = [h[i]!, h[m]!]
      i = m
    }
  }

  /** The sample, by key ascending. */
  items(): T[] {
    return [...this.#heap].sort((a, b) => a[0] - b[0]).map(([, t]) => t)
  }
}

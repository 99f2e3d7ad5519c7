import { normalizeText } from './features.js'
import { type LabelledText, prng } from './train.js'

/**
 * A deterministic validation split, stratified by label and grouped by text: texts that are equal after
 * normalisation land on the same side, so the validation set holds no paraphrase-free copy of a training text.
 */
export function splitValidation<T extends LabelledText>(
  data: readonly T[],
  fraction: number,
  seed: number,
): { train: T[]; validation: T[] } {
  if (!(fraction >= 0 && fraction < 1)) throw new TypeError(`splitValidation: fraction in [0, 1), found ${fraction}`)
  const byLabel = new Map<string, Map<string, T[]>>()
  for (const d of data) {
    const groups = byLabel.get(d.label) ?? new Map<string, T[]>()
    byLabel.set(d.label, groups)
    const key = normalizeText(d.text).replace(/\s+/g, ' ').trim()
    const g = groups.get(key) ?? []
    groups.set(key, g)
    g.push(d)
  }
  const random = prng(seed)
  const held = new Set<T>()
  for (const label of [...byLabel.keys()].sort()) {
    const groups = [...byLabel.get(label)!.values()]
    for (let i = groups.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      ;[groups[i], groups[j]] = [groups[j]!, groups[i]!]
    }
    const total = groups.reduce((n, g) => n + g.length, 0)
    const want = Math.round(total * fraction)
    let taken = 0
    for (const g of groups) {
      if (taken >= want) break
      for (const d of g) held.add(d)
      taken += g.length
    }
  }
  return { train: data.filter((d) => !held.has(d)), validation: data.filter((d) => held.has(d)) }
}

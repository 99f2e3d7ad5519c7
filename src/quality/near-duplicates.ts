import type { HandlerKind } from '../cases/case.js'
import { compareProfiles, DUPLICATE_THRESHOLD, profile } from '../signals/duplicates.js'
import { rate } from './stats.js'

/** A case's first message and the routing decided on it. */
export interface FirstMessage {
  readonly caseId: string
  readonly decisionId: string
  readonly text: string
  readonly handler: HandlerKind
  readonly policyHash: string
}

export interface NearDuplicatePair {
  readonly similarity: number
  readonly a: { readonly caseId: string; readonly decisionId: string; readonly handler: HandlerKind }
  readonly b: { readonly caseId: string; readonly decisionId: string; readonly handler: HandlerKind }
}

export interface NearDuplicateFigure {
  /** First messages compared (the sample), and how many there were. */
  readonly messages: number
  readonly of: number
  /** Pairs under one policy version whose similarity reaches the duplicate detector's threshold. */
  readonly pairs: number
  /** Of those, pairs routed to different handler kinds. */
  readonly differing: number
  readonly rate: number | null
  readonly threshold: number
  readonly examples: readonly NearDuplicatePair[]
}

/**
 * Near-duplicate first messages routed differently under the same policy version: every pair of the sample is
 * compared with the duplicate detector's similarity (`src/signals/duplicates.ts`); pairs at or above its
 * threshold are near-duplicates, and those whose first handlers' kinds differ are inconsistent. Pure.
 */
export function nearDuplicateRouting(
  sample: readonly FirstMessage[],
  of: number,
  options: { readonly threshold?: number; readonly examples?: number } = {},
): NearDuplicateFigure {
  const threshold = options.threshold ?? DUPLICATE_THRESHOLD
  const profiles = sample.map((m) => profile(m.text))
  let pairs = 0
  let differing = 0
  const examples: NearDuplicatePair[] = []
  for (let i = 0; i < sample.length; i++) {
    const a = sample[i]!
    const pa = profiles[i]!
    if (pa.terms.size === 0) continue
    for (let j = i + 1; j < sample.length; j++) {
      const b = sample[j]!
      if (b.policyHash !== a.policyHash) continue
      const score = compareProfiles(pa, profiles[j]!)
      if (score < threshold) continue
      pairs++
      if (a.handler === b.handler) continue
      differing++
      if (examples.length < (options.examples ?? 5)) {
        examples.push({
          similarity: Math.round(score * 1000) / 1000,
          a: { caseId: a.caseId, decisionId: a.decisionId, handler: a.handler },
          b: { caseId: b.caseId, decisionId: b.decisionId, handler: b.handler },
        })
      }
    }
  }
  return { messages: sample.length, of, pairs, differing, rate: rate(differing, pairs), threshold, examples }
}

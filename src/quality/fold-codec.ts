import type { Handler } from '../cases/case.js'
import { type CaseState, type Escalation, emptyCase } from './fold.js'

/**
 * The version of the fold (`evolve` and `CaseState`). A stored fold of another version is folded again from the
 * case's events, so **bump it with any change to what `evolve` makes of an event or to `CaseState`**.
 */
export const FOLD_VERSION = 1

/**
 * A case's fold of its stored case events, as JSON for `case_folds`: everything `CaseState` holds but its id (the
 * row's key) and its gates (approvals, confirmations and agent actions are joined at read time, `foldWindow`).
 */
interface FoldJson {
  customerId: string
  channel: string
  createdAt: number | null
  firstText?: string
  firstMessageId: string
  first?: { decisionId: string; handler: Handler['kind']; policyHash: string }
  handler?: Handler
  human: boolean
  bounces: number
  capHit: boolean
  queues: string[]
  agents: string[]
  closedAt?: number
  lastPolicyHash: string
  escalations: Escalation[]
  decisions: string[]
}

/** The stored form of a fold of case events only (its `gates` must be empty: they are not kept). */
export function encodeFold(s: CaseState): string {
  if (s.gates.size > 0) throw new Error(`case ${s.id}: a fold with gates is not stored`)
  const j: FoldJson = {
    customerId: s.customerId,
    channel: s.channel,
    createdAt: Number.isNaN(s.createdAt) ? null : s.createdAt,
    firstMessageId: s.firstMessageId,
    human: s.human,
    bounces: s.bounces,
    capHit: s.capHit,
    queues: [...s.queues],
    agents: [...s.agents],
    lastPolicyHash: s.lastPolicyHash,
    escalations: s.escalations,
    decisions: s.decisions,
  }
  if (s.firstText !== undefined) j.firstText = s.firstText
  if (s.first !== undefined) j.first = s.first
  if (s.handler !== undefined) j.handler = s.handler
  if (s.closedAt !== undefined) j.closedAt = s.closedAt
  return JSON.stringify(j)
}

/** The fold `encodeFold` stored for case `id`. */
export function decodeFold(id: string, text: string): CaseState {
  const j = JSON.parse(text) as FoldJson
  const s = emptyCase(id)
  for (const q of j.queues) s.queues.add(q)
  for (const a of j.agents) s.agents.add(a)
  s.escalations.push(...j.escalations)
  s.decisions.push(...j.decisions)
  s.customerId = j.customerId
  s.channel = j.channel
  s.createdAt = j.createdAt ?? Number.NaN
  s.firstText = j.firstText
  s.firstMessageId = j.firstMessageId
  s.first = j.first
  s.handler = j.handler
  s.human = j.human
  s.bounces = j.bounces
  s.capHit = j.capHit
  s.closedAt = j.closedAt
  s.lastPolicyHash = j.lastPolicyHash
  return s
}

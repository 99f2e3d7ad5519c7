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
 * Positional (an array, not an object: half the bytes and a third less to parse at a million cases), and each
 * policy hash once, in `hashes`, referred to by its index.
 */
type FoldJson = [
  customerId: string,
  channel: string,
  createdAt: number | null,
  firstText: string | null,
  firstMessageId: string,
  first: [decisionId: string, handler: Handler['kind'], policyHash: number] | null,
  handler: Handler | null,
  human: 0 | 1,
  bounces: number,
  capHit: 0 | 1,
  humanOwned: 0 | 1,
  bouncesFromHumanOwned: number,
  queues: string[],
  agents: string[],
  closedAt: number | null,
  lastPolicyHash: number,
  escalations: EscalationJson[],
  decisions: string[],
  hashes: string[],
]

type EscalationJson = [
  at: number,
  queue: string,
  atIntake: 0 | 1,
  rules: readonly string[],
  trigger: string,
  policyHash: number,
  byAgent: 0 | 1,
  pickedAt: number | null,
  leftAt: number | null,
  endedAt: number | null,
]

const orNull = <T>(v: T | undefined): T | null => (v === undefined ? null : v)
const orUndefined = <T>(v: T | null): T | undefined => (v === null ? undefined : v)

/** The stored form of a fold of case events only (its `gates` must be empty: they are not kept). */
export function encodeFold(s: CaseState): string {
  if (s.gates.size > 0) throw new Error(`case ${s.id}: a fold with gates is not stored`)
  const hashes: string[] = []
  const ref = (h: string) => {
    const i = hashes.indexOf(h)
    return i >= 0 ? i : hashes.push(h) - 1
  }
  const j: FoldJson = [
    s.customerId,
    s.channel,
    Number.isNaN(s.createdAt) ? null : s.createdAt,
    orNull(s.firstText),
    s.firstMessageId,
    s.first === undefined ? null : [s.first.decisionId, s.first.handler, ref(s.first.policyHash)],
    orNull(s.handler),
    s.human ? 1 : 0,
    s.bounces,
    s.capHit ? 1 : 0,
    s.humanOwned ? 1 : 0,
    s.bouncesFromHumanOwned,
    [...s.queues],
    [...s.agents],
    orNull(s.closedAt),
    ref(s.lastPolicyHash),
    s.escalations.map((e) => [
      e.at,
      e.queue,
      e.atIntake ? 1 : 0,
      e.rules,
      e.trigger,
      ref(e.policyHash),
      e.byAgent ? 1 : 0,
      orNull(e.pickedAt),
      orNull(e.leftAt),
      orNull(e.endedAt),
    ]),
    s.decisions,
    hashes,
  ]
  return JSON.stringify(j)
}

/** The fold `encodeFold` stored for case `id`. */
export function decodeFold(id: string, text: string): CaseState {
  const [
    customerId,
    channel,
    createdAt,
    firstText,
    firstMessageId,
    first,
    handler,
    human,
    bounces,
    capHit,
    humanOwned,
    bouncesFromHumanOwned,
    queues,
    agents,
    closedAt,
    lastPolicyHash,
    escalations,
    decisions,
    hashes,
  ] = JSON.parse(text) as FoldJson
  const s = emptyCase(id)
  for (const q of queues) s.queues.add(q)
  for (const a of agents) s.agents.add(a)
  for (const e of escalations) {
    const x: Escalation = {
      at: e[0],
      queue: e[1],
      atIntake: e[2] === 1,
      rules: e[3],
      trigger: e[4],
      policyHash: hashes[e[5]] ?? '',
      byAgent: e[6] === 1,
      pickedAt: orUndefined(e[7]),
      leftAt: orUndefined(e[8]),
    }
    if (e[9] !== null) x.endedAt = e[9]
    s.escalations.push(x)
  }
  s.decisions.push(...decisions)
  s.customerId = customerId
  s.channel = channel
  s.createdAt = createdAt ?? Number.NaN
  s.firstText = orUndefined(firstText)
  s.firstMessageId = firstMessageId
  s.first = first === null ? undefined : { decisionId: first[0], handler: first[1], policyHash: hashes[first[2]] ?? '' }
  s.handler = orUndefined(handler)
  s.human = human === 1
  s.bounces = bounces
  s.capHit = capHit === 1
  s.humanOwned = humanOwned === 1
  s.bouncesFromHumanOwned = bouncesFromHumanOwned
  s.closedAt = orUndefined(closedAt)
  s.lastPolicyHash = hashes[lastPolicyHash] ?? ''
  return s
}

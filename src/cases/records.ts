import type { RiskCategory } from '../signals/types.js'
import type { CaseState, Handler } from './case.js'

/** The current snapshot of a case; every change to it is also an appended `CaseEvent`. */
export interface CaseRecord {
  readonly id: string
  readonly customerId: string
  readonly channel: string
  readonly subject: string
  readonly state: CaseState
  readonly handler: Handler
  /** AI↔human handler changes so far (a change of queue between humans is not counted). */
  readonly handoffs: number
  /** Customer messages so far. */
  readonly messages: number
  /** Risk indicators raised by any message so far (sticky for the life of the case). */
  readonly risk: Readonly<Partial<Record<RiskCategory, boolean>>>
  /** Redacted text of the first message, for duplicate detection. */
  readonly firstText: string
  /** Sequence number of the case's last event. */
  readonly lastEvent: number
  /** Incremented on every commit; used for optimistic concurrency. */
  readonly version: number
  readonly createdAt: string
  readonly updatedAt: string
  /** When the case entered its current handler. */
  readonly stateSince: string
  /**
   * Authority epoch: bumped by the store whenever handler, risk or state changes (and on the handling agent's
   * suspension). Read-only for callers: `commitCase` ignores it. Credentials carry the epoch they were issued at.
   */
  readonly authorityEpoch?: number
  /** Customer messages the current AI agent has answered since it took the case; 0 while a human holds it. */
  readonly aiTurns?: number
  /**
   * True while a person holds the case because they took it (took it over, claimed it, were assigned it); routing
   * reads it as `case.human_owned`. Cleared when the case goes back to an AI agent. Omitted while false.
   */
  readonly humanOwned?: boolean
}

export interface CaseEvent {
  readonly caseId: string
  /** 1-based position in the case's history. */
  readonly seq: number
  readonly type: CaseEventType
  readonly data: Readonly<Record<string, unknown>>
  readonly at: string
}

export const CASE_EVENT_TYPES = [
  'case.opened',
  'message.received',
  'case.decided',
  'case.handed_off',
  'case.linked',
  'case.assigned',
  'case.sla_breached',
  'case.closed',
] as const
export type CaseEventType = (typeof CASE_EVENT_TYPES)[number]

/** A stored decision: the policy's output plus everything needed to replay it (invariant 2). */
export interface DecisionRecord {
  readonly id: string
  readonly caseId: string
  readonly kind: 'route' | 'action' | 'override'
  readonly outcome: string
  readonly at: string
  readonly data: Readonly<Record<string, unknown>>
}

import type { ActionOutcome } from '../policy/types.js'

export const ACTION_STATES = [
  'denied',
  'escalated',
  'awaiting_approval',
  'awaiting_confirmation',
  'authorized',
  'credential_issued',
  'executing',
  'executed',
  'failed',
  'rejected',
] as const
/**
 * `authorized`: allowed, not yet executed; `executing` is claimed exactly once (the connector is called once);
 * `executed`/`failed` record the connector's answer; `rejected`: an approval or a customer confirmation denied,
 * declined, expired or superseded.
 */
export type ActionState = (typeof ACTION_STATES)[number]

/** One tool call an agent (or a customer's delegate) asked for, and what came of it. */
export interface ActionRecord {
  readonly id: string
  readonly caseId: string
  /** The principal that asked: an agent, or the delegate when `requesterKind` is `delegate`. */
  readonly agentId: string
  /** Who asked; absent means `agent` (actions recorded before delegates existed). */
  readonly requesterKind?: 'agent' | 'delegate' | undefined
  /** The grant a delegate asked under (its whole chain is re-checked before the action executes). */
  readonly grantId?: string | null | undefined
  readonly tool: string
  readonly params: Readonly<Record<string, unknown>>
  /** sha256 hex of the canonical JSON of the params. */
  readonly paramsDigest: string
  readonly outcome: ActionOutcome
  readonly state: ActionState
  readonly decisionId: string
  readonly createdAt: string
  readonly updatedAt: string
  /** The connector's HTTP status, once executed. */
  readonly resultStatus: number | null
  /** sha256 hex of the connector's response body, once executed. */
  readonly resultDigest: string | null
  readonly error: string | null
}

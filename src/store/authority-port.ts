import type { ApprovalRecord, ApprovalState } from '../approvals/approval.js'
import type { AuditEntryBody } from '../audit/entry.js'
import type { CaseEvent, CaseRecord, DecisionRecord } from '../cases/records.js'
import type { ConfirmationRecord, ConfirmationState } from '../delegation/confirmation.js'
import type { AgentCredentialRecord, AgentRecord, AgentState, OperatorRecord } from '../identity/principals.js'
import type { ActionRecord, ActionState } from '../tools/action.js'

// The `AuthorityStore` port (part of `Store`, re-exported by `ports.ts`): agents, operators, credentials, actions,
// approvals and confirmations, implemented by `authority-store.ts`.

/** A credential Baton minted (access token, per-call or scoped credential), kept for the privilege report. */
export interface IssuedCredentialRecord {
  readonly jti: string
  readonly agentId: string
  readonly caseId: string
  readonly kind: 'access' | 'call' | 'scoped'
  readonly tools: readonly string[]
  readonly epoch: number
  readonly issuedAt: string
  readonly expiresAt: string
}

/** A durable timer to store with a change (see `TimerScheduler`): its handler runs once it is due. */
export interface TimerDraft {
  readonly kind: string
  readonly key: string
  /** RFC 3339. */
  readonly dueAt: string
  readonly payload: Readonly<Record<string, unknown>>
}

/** The case's handler changing with an action (an `escalate` handing the case to a human, a risk the agent raised). */
export interface CaseChange {
  /** The new snapshot; written only if the stored version is still `expectedVersion`. */
  readonly case: CaseRecord
  readonly expectedVersion: number
  readonly events: readonly CaseEvent[]
}

export interface ActionCommit {
  readonly action: ActionRecord
  readonly decision: DecisionRecord
  /** The authority epoch the deciding credential carried: the commit is refused if the case moved since. */
  readonly expectedEpoch: number
  readonly caseChange?: CaseChange | undefined
  readonly approval?: ApprovalRecord | undefined
  /** For `confirm`: the customer confirmation the action waits for (with its durable expiry timer). */
  readonly confirmation?: ConfirmationRecord | undefined
  readonly issued?: readonly IssuedCredentialRecord[] | undefined
  readonly audit: readonly AuditEntryBody[]
}

/**
 * Principals, agent credentials, minted credentials, actions and approvals. Every state change takes the audit
 * entries that describe it and writes them in the same transaction (invariant 1).
 *
 * Failures: `CONFLICT` (duplicate id, stale case version), `CREDENTIAL_REVOKED` (the case's authority epoch moved
 * while an action was decided), `AGENT_NOT_FOUND`, `AGENT_STATE_INVALID`, `APPROVAL_NOT_FOUND`,
 * `APPROVAL_NOT_PENDING`, `STORE_UNAVAILABLE`.
 */
export interface AuthorityStore {
  /** Inserts the agent unless one with its id exists; true when inserted (then `audit` is appended). */
  registerAgent(agent: AgentRecord, audit: AuditEntryBody): Promise<boolean>
  getAgent(id: string): Promise<AgentRecord | undefined>
  listAgents(): Promise<AgentRecord[]>
  /** Every registered agent's lifecycle state, by id (what routing reads as `agents.<id>.state`). */
  agentStates(): Promise<Record<string, AgentState>>
  /** Ids of the open cases the agent handles, as agent or as a hybrid case's drafter, oldest first. */
  listCasesHeldBy(agentId: string): Promise<string[]>
  /**
   * Moves the agent to `to` if its state is one of `from` (else `AGENT_STATE_INVALID`, nothing written). Suspending
   * or retiring also bumps the authority epoch of every open case the agent handles, and retiring revokes its
   * authentication credentials; `audit(revokedCases)` builds the entries written in the same transaction, and
   * `followUp`, a durable timer (as `WorkStore.scheduleTimer` stores it), is stored in it too.
   */
  transitionAgent(
    id: string,
    from: readonly AgentState[],
    to: AgentState,
    at: string,
    audit: (revokedCases: readonly string[]) => readonly AuditEntryBody[],
    followUp?: TimerDraft,
  ): Promise<{ readonly agent: AgentRecord; readonly revokedCases: readonly string[] }>
  /** Records the owner's review of the agent's privileges. */
  reviewAgent(id: string, by: string, at: string, audit: AuditEntryBody): Promise<AgentRecord>

  registerOperator(op: OperatorRecord, audit: AuditEntryBody): Promise<boolean>
  getOperator(id: string): Promise<OperatorRecord | undefined>
  listOperators(): Promise<OperatorRecord[]>

  addAgentCredential(c: AgentCredentialRecord, audit: AuditEntryBody): Promise<void>
  /** Unrevoked credentials of one agent, oldest first. */
  listAgentCredentials(agentId: string): Promise<AgentCredentialRecord[]>

  recordIssuedCredentials(c: readonly IssuedCredentialRecord[], audit: readonly AuditEntryBody[]): Promise<void>
  /** Credentials minted for the agent whose expiry is after `now`, whose case epoch has not moved since. */
  listOutstandingCredentials(agentId: string, now: string): Promise<IssuedCredentialRecord[]>

  /**
   * Records one decided action in one transaction: the action, its decision, an approval (for `approve`), minted
   * credentials, the case change (for `escalate`) and the audit entries. Refused with `CREDENTIAL_REVOKED` when
   * the case's epoch is no longer `expectedEpoch` (PostgreSQL locks the case row until commit, so a handoff cannot
   * slip in between).
   */
  commitAction(c: ActionCommit): Promise<void>
  getAction(id: string): Promise<ActionRecord | undefined>
  /**
   * Moves the action from one of `from` to `to` (e.g. `authorized → executing`, claimed exactly once); false when
   * it was in another state (nothing written). `patch` sets the result columns; `issued` records credentials minted
   * for the move (the per-call credential of an execution) in the same transaction.
   */
  moveAction(
    id: string,
    from: readonly ActionState[],
    to: ActionState,
    at: string,
    patch: {
      readonly resultStatus?: number | null
      readonly resultDigest?: string | null
      readonly error?: string | null
    },
    audit: readonly AuditEntryBody[],
    issued?: readonly IssuedCredentialRecord[],
  ): Promise<boolean>
  /** Tool → number of actions the agent asked for, `from <= created_at < to` (a delegate's are not counted). */
  toolUsage(agentId: string, from: string, to: string): Promise<Record<string, number>>

  getApproval(id: string): Promise<ApprovalRecord | undefined>
  listApprovals(filter: { readonly state?: ApprovalState; readonly limit: number }): Promise<ApprovalRecord[]>
  /**
   * Settles a pending approval (`approved`, `denied`, `expired`, `superseded`); `APPROVAL_NOT_PENDING` when it
   * is no longer pending (a second decision does nothing). `actionState` moves the gated action with it.
   */
  settleApproval(
    id: string,
    to: Exclude<ApprovalState, 'pending'>,
    by: string | null,
    at: string,
    reason: string | null,
    actionState: ActionState,
    audit: readonly AuditEntryBody[],
  ): Promise<ApprovalRecord>

  getConfirmation(id: string): Promise<ConfirmationRecord | undefined>
  /** Confirmations, oldest first, filtered. */
  listConfirmations(filter: {
    readonly state?: ConfirmationState
    readonly customerId?: string
    readonly caseId?: string
    readonly limit: number
  }): Promise<ConfirmationRecord[]>
  /**
   * Settles a pending confirmation (`confirmed`, `declined`, `expired`, `superseded`); `CONFIRMATION_NOT_PENDING`
   * when it is no longer pending (a replayed answer does nothing). `actionState` moves the gated action with it.
   */
  settleConfirmation(
    id: string,
    to: Exclude<ConfirmationState, 'pending'>,
    by: string | null,
    at: string,
    reason: string | null,
    actionState: ActionState,
    audit: readonly AuditEntryBody[],
  ): Promise<ConfirmationRecord>
}

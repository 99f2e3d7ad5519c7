import { type Kysely, sql, type Transaction } from 'kysely'
import type { ApprovalRecord, ApprovalState } from '../approvals/approval.js'
import type { AuditEntryBody } from '../audit/entry.js'
import type { CaseEvent, CaseRecord, DecisionRecord } from '../cases/records.js'
import type { ConfirmationRecord, ConfirmationState } from '../delegation/confirmation.js'
import { BatonError } from '../errors.js'
import type { AgentCredentialRecord, AgentRecord, AgentState, OperatorRecord } from '../identity/principals.js'
import type { ActionRecord, ActionState } from '../tools/action.js'
import { appendAuditIn, type StoreParts } from './kysely-store.js'

/** Timer kind of an approval's expiry (key: the approval id). */
export const APPROVAL_EXPIRY_TIMER = 'approval_expiry'
/** Timer kind of a customer confirmation's expiry (key: the confirmation id). */
export const CONFIRMATION_EXPIRY_TIMER = 'confirmation_expiry'

/**
 * Timer kind of the follow-up of an agent's suspension or retirement (key: `<agentId>@<at>`, payload: `agentId`,
 * `reason`, `actor`): the cases the agent held are decided again (`rerouteCasesOf` in `src/queues/work.ts`).
 */
export const AGENT_REROUTE_TIMER = 'agent_reroute'

import type { Database } from './schema.js'

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

export function authorityStore({ db, engine, tx }: StoreParts): AuthorityStore {
  const agentIdOf =
    engine === 'postgres'
      ? sql<string>`(handler::jsonb ->> 'agentId')`
      : sql<string>`json_extract(handler, '$.agentId')`
  const lockRow = engine === 'postgres' ? sql` for update` : sql``

  /** The open cases an agent handles, as agent or as a hybrid case's drafter. */
  const casesHeldBy = (q: Kysely<Database>, agentId: string) =>
    q
      .selectFrom('cases')
      .select('id')
      .where('state', '=', 'open')
      .where('handler_kind', 'in', ['agent', 'hybrid'])
      .where(agentIdOf, '=', agentId)

  async function mustAgent(trx: Transaction<Database>, id: string): Promise<AgentRecord> {
    const r = await trx.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst()
    if (r === undefined) throw new BatonError('AGENT_NOT_FOUND', `no agent with id '${id}'`)
    return toAgent(r)
  }

  return {
    async registerAgent(a, audit) {
      return tx(async (trx) => {
        const existing = await trx.selectFrom('agents').select('id').where('id', '=', a.id).executeTakeFirst()
        if (existing !== undefined) return false
        await trx.insertInto('agents').values(fromAgent(a)).execute()
        await appendAuditIn(trx, [audit])
        return true
      })
    },
    async getAgent(id) {
      const r = await db.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst()
      return r ? toAgent(r) : undefined
    },
    async listAgents() {
      return (await db.selectFrom('agents').selectAll().orderBy('id').execute()).map(toAgent)
    },
    async agentStates() {
      const rows = await db.selectFrom('agents').select(['id', 'state']).execute()
      return Object.fromEntries(rows.map((r) => [r.id, r.state as AgentState]))
    },
    async listCasesHeldBy(agentId) {
      const rows = await casesHeldBy(db, agentId).orderBy('created_at').orderBy('id').execute()
      return rows.map((r) => r.id)
    },
    async transitionAgent(id, from, to, at, audit, followUp) {
      return tx(async (trx) => {
        const before = await mustAgent(trx, id)
        const r = await trx
          .updateTable('agents')
          .set({ state: to, updated_at: at })
          .where('id', '=', id)
          .where('state', 'in', [...from])
          .executeTakeFirst()
        if (Number(r.numUpdatedRows) !== 1) {
          throw new BatonError('AGENT_STATE_INVALID', `agent '${id}' is ${before.state}; it cannot become ${to}`)
        }
        let revokedCases: string[] = []
        if (to === 'suspended' || to === 'retired') {
          const held = await casesHeldBy(trx, id).execute()
          revokedCases = held.map((c) => c.id)
          if (revokedCases.length > 0) {
            await trx
              .updateTable('cases')
              .set({ authority_epoch: sql<number>`authority_epoch + 1` })
              .where('id', 'in', revokedCases)
              .execute()
          }
        }
        if (to === 'retired') {
          await trx
            .updateTable('agent_credentials')
            .set({ revoked_at: at })
            .where('agent_id', '=', id)
            .where('revoked_at', 'is', null)
            .execute()
        }
        if (followUp !== undefined) {
          await trx
            .insertInto('timers')
            .values({
              kind: followUp.kind,
              key: followUp.key,
              due_at: followUp.dueAt,
              payload: JSON.stringify(followUp.payload),
              state: 'pending',
              lease_owner: null,
              lease_until: null,
              attempts: 0,
              created_at: at,
              fired_at: null,
              last_error: null,
            })
            // the same follow-up stored twice (same kind and key) does the same work once
            .onConflict((oc) => oc.columns(['kind', 'key']).doNothing())
            .execute()
        }
        await appendAuditIn(trx, audit(revokedCases))
        return { agent: { ...before, state: to, updatedAt: at }, revokedCases }
      })
    },
    async reviewAgent(id, by, at, audit) {
      return tx(async (trx) => {
        const before = await mustAgent(trx, id)
        await trx.updateTable('agents').set({ reviewed_at: at, reviewed_by: by }).where('id', '=', id).execute()
        await appendAuditIn(trx, [audit])
        return { ...before, reviewedAt: at, reviewedBy: by }
      })
    },

    async registerOperator(o, audit) {
      return tx(async (trx) => {
        const existing = await trx.selectFrom('operators').select('id').where('id', '=', o.id).executeTakeFirst()
        if (existing !== undefined) return false
        await trx
          .insertInto('operators')
          .values({
            id: o.id,
            name: o.name,
            roles: JSON.stringify(o.roles),
            skills: JSON.stringify(o.skills),
            languages: JSON.stringify(o.languages),
            capacity: o.capacity,
            created_at: o.createdAt,
            updated_at: o.updatedAt,
          })
          .execute()
        await appendAuditIn(trx, [audit])
        return true
      })
    },
    async getOperator(id) {
      const r = await db.selectFrom('operators').selectAll().where('id', '=', id).executeTakeFirst()
      return r ? toOperator(r) : undefined
    },
    async listOperators() {
      return (await db.selectFrom('operators').selectAll().orderBy('id').execute()).map(toOperator)
    },

    async addAgentCredential(c, audit) {
      await tx(async (trx) => {
        await mustAgent(trx, c.agentId)
        await trx
          .insertInto('agent_credentials')
          .values({
            id: c.id,
            agent_id: c.agentId,
            kind: c.kind,
            public_jwk: c.publicJwk === null ? null : JSON.stringify(c.publicJwk),
            secret_hash: c.secretHash,
            created_at: c.createdAt,
            revoked_at: c.revokedAt,
          })
          .execute()
        await appendAuditIn(trx, [audit])
      })
    },
    async listAgentCredentials(agentId) {
      const rows = await db
        .selectFrom('agent_credentials')
        .selectAll()
        .where('agent_id', '=', agentId)
        .where('revoked_at', 'is', null)
        .orderBy('created_at')
        .execute()
      return rows.map(
        (r): AgentCredentialRecord => ({
          id: r.id,
          agentId: r.agent_id,
          kind: r.kind as AgentCredentialRecord['kind'],
          publicJwk: r.public_jwk === null ? null : (JSON.parse(r.public_jwk) as Record<string, unknown>),
          secretHash: r.secret_hash,
          createdAt: r.created_at,
          revokedAt: r.revoked_at,
        }),
      )
    },

    async recordIssuedCredentials(c, audit) {
      await tx(async (trx) => {
        if (c.length > 0) await trx.insertInto('issued_credentials').values(c.map(fromIssued)).execute()
        await appendAuditIn(trx, audit)
      })
    },
    async listOutstandingCredentials(agentId, now) {
      const rows = await db
        .selectFrom('issued_credentials as i')
        .innerJoin('cases as c', 'c.id', 'i.case_id')
        .selectAll('i')
        .where('i.agent_id', '=', agentId)
        .where('i.expires_at', '>', now)
        .whereRef('i.epoch', '=', 'c.authority_epoch')
        .where('c.state', '=', 'open')
        .orderBy('i.issued_at')
        .execute()
      return rows.map(toIssued)
    },

    async commitAction(c) {
      await tx(async (trx) => {
        const current = await sql<{ authority_epoch: number; version: number }>`
          select authority_epoch, version from cases where id = ${c.action.caseId}${lockRow}`.execute(trx)
        const row = current.rows[0]
        if (row === undefined) throw new BatonError('CASE_NOT_FOUND', `no case with id '${c.action.caseId}'`)
        if (Number(row.authority_epoch) !== c.expectedEpoch) {
          throw new BatonError(
            'CREDENTIAL_REVOKED',
            `the case's authority changed while the action was decided (epoch ${c.expectedEpoch} → ${row.authority_epoch})`,
          )
        }
        if (c.caseChange !== undefined) {
          const n = c.caseChange.case
          const r = await trx
            .updateTable('cases')
            .set({
              handler: JSON.stringify(n.handler),
              handler_kind: n.handler.kind,
              queue: n.state === 'open' && n.handler.kind !== 'agent' ? n.handler.queue : null,
              handoffs: n.handoffs,
              risk: JSON.stringify(n.risk),
              state: n.state,
              last_event: n.lastEvent,
              version: n.version,
              updated_at: n.updatedAt,
              state_since: n.stateSince,
              authority_epoch: sql<number>`authority_epoch + 1`,
            })
            .where('id', '=', n.id)
            .where('version', '=', c.caseChange.expectedVersion)
            .executeTakeFirst()
          if (Number(r.numUpdatedRows) !== 1) {
            throw new BatonError('CONFLICT', `case ${n.id} changed since version ${c.caseChange.expectedVersion}`)
          }
          if (c.caseChange.events.length > 0) {
            await trx
              .insertInto('case_events')
              .values(
                c.caseChange.events.map((e) => ({
                  case_id: e.caseId,
                  seq: e.seq,
                  type: e.type,
                  data: JSON.stringify(e.data),
                  at: e.at,
                })),
              )
              .execute()
          }
        }
        await trx
          .insertInto('decisions')
          .values({
            id: c.decision.id,
            case_id: c.decision.caseId,
            kind: c.decision.kind,
            outcome: c.decision.outcome,
            data: JSON.stringify(c.decision.data),
            at: c.decision.at,
          })
          .execute()
        await trx.insertInto('actions').values(fromAction(c.action)).execute()
        if (c.approval !== undefined) {
          await trx.insertInto('approvals').values(fromApproval(c.approval)).execute()
          // Its expiry is a durable timer written with it: it fires once, even across a restart (see work-store.ts).
          await trx
            .insertInto('timers')
            .values({
              kind: APPROVAL_EXPIRY_TIMER,
              key: c.approval.id,
              due_at: c.approval.expiresAt,
              payload: JSON.stringify({ approvalId: c.approval.id, caseId: c.approval.caseId }),
              state: 'pending',
              lease_owner: null,
              lease_until: null,
              attempts: 0,
              created_at: c.action.createdAt,
              fired_at: null,
              last_error: null,
            })
            .onConflict((oc) => oc.columns(['kind', 'key']).doNothing())
            .execute()
        }
        if (c.confirmation !== undefined) {
          await trx.insertInto('confirmations').values(fromConfirmation(c.confirmation)).execute()
          await trx
            .insertInto('timers')
            .values({
              kind: CONFIRMATION_EXPIRY_TIMER,
              key: c.confirmation.id,
              due_at: c.confirmation.expiresAt,
              payload: JSON.stringify({ confirmationId: c.confirmation.id, caseId: c.confirmation.caseId }),
              state: 'pending',
              lease_owner: null,
              lease_until: null,
              attempts: 0,
              created_at: c.action.createdAt,
              fired_at: null,
              last_error: null,
            })
            .onConflict((oc) => oc.columns(['kind', 'key']).doNothing())
            .execute()
        }
        if (c.issued !== undefined && c.issued.length > 0) {
          await trx.insertInto('issued_credentials').values(c.issued.map(fromIssued)).execute()
        }
        await appendAuditIn(trx, c.audit)
      })
    },
    async getAction(id) {
      const r = await db.selectFrom('actions').selectAll().where('id', '=', id).executeTakeFirst()
      return r ? toAction(r) : undefined
    },
    async moveAction(id, from, to, at, patch, audit, issued = []) {
      return tx(async (trx) => {
        const r = await trx
          .updateTable('actions')
          .set({
            state: to,
            updated_at: at,
            ...(patch.resultStatus === undefined ? {} : { result_status: patch.resultStatus }),
            ...(patch.resultDigest === undefined ? {} : { result_digest: patch.resultDigest }),
            ...(patch.error === undefined ? {} : { error: patch.error }),
          })
          .where('id', '=', id)
          .where('state', 'in', [...from])
          .executeTakeFirst()
        if (Number(r.numUpdatedRows) !== 1) return false
        if (issued.length > 0) await trx.insertInto('issued_credentials').values(issued.map(fromIssued)).execute()
        await appendAuditIn(trx, audit)
        return true
      })
    },
    async toolUsage(agentId, from, to) {
      const rows = await db
        .selectFrom('actions')
        .select((eb) => ['tool', eb.fn.countAll<number>().as('n')])
        .where('agent_id', '=', agentId)
        .where('requester_kind', '=', 'agent')
        .where('created_at', '>=', from)
        .where('created_at', '<', to)
        .groupBy('tool')
        .execute()
      return Object.fromEntries(rows.map((r) => [r.tool, Number(r.n)]))
    },

    async getApproval(id) {
      const r = await db.selectFrom('approvals').selectAll().where('id', '=', id).executeTakeFirst()
      return r ? toApproval(r) : undefined
    },
    async listApprovals(f) {
      let q = db.selectFrom('approvals').selectAll()
      if (f.state !== undefined) q = q.where('state', '=', f.state)
      const rows = await q.orderBy('created_at').orderBy('id').limit(f.limit).execute()
      return rows.map(toApproval)
    },
    async settleApproval(id, to, by, at, reason, actionState, audit) {
      return tx(async (trx) => {
        const before = await settlePending(trx, APPROVALS, id, { to, by, at, reason, actionState }, audit)
        return { ...toApproval(before), state: to, decidedBy: by, decidedAt: at, reason }
      })
    },

    async getConfirmation(id) {
      const r = await db.selectFrom('confirmations').selectAll().where('id', '=', id).executeTakeFirst()
      return r ? toConfirmation(r) : undefined
    },
    async listConfirmations(f) {
      let q = db.selectFrom('confirmations').selectAll()
      if (f.state !== undefined) q = q.where('state', '=', f.state)
      if (f.customerId !== undefined) q = q.where('customer_id', '=', f.customerId)
      if (f.caseId !== undefined) q = q.where('case_id', '=', f.caseId)
      const rows = await q.orderBy('created_at').orderBy('id').limit(f.limit).execute()
      return rows.map(toConfirmation)
    },
    async settleConfirmation(id, to, by, at, reason, actionState, audit) {
      return tx(async (trx) => {
        const before = await settlePending(trx, CONFIRMATIONS, id, { to, by, at, reason, actionState }, audit)
        return { ...toConfirmation(before), state: to, decidedBy: by, decidedAt: at, reason }
      })
    },
  }
}

/** What a pending approval or customer confirmation is settled in, and how its refusals are named. */
interface PendingKind<T extends 'approvals' | 'confirmations'> {
  readonly table: T
  /** The state the gated action waits in. */
  readonly awaiting: ActionState
  readonly notFound: 'APPROVAL_NOT_FOUND' | 'CONFIRMATION_NOT_FOUND'
  readonly notPending: 'APPROVAL_NOT_PENDING' | 'CONFIRMATION_NOT_PENDING'
  readonly what: string
}

const APPROVALS: PendingKind<'approvals'> = {
  table: 'approvals',
  awaiting: 'awaiting_approval',
  notFound: 'APPROVAL_NOT_FOUND',
  notPending: 'APPROVAL_NOT_PENDING',
  what: 'approval',
}
const CONFIRMATIONS: PendingKind<'confirmations'> = {
  table: 'confirmations',
  awaiting: 'awaiting_confirmation',
  notFound: 'CONFIRMATION_NOT_FOUND',
  notPending: 'CONFIRMATION_NOT_PENDING',
  what: 'confirmation',
}

/**
 * Settles a pending approval or confirmation in `trx` with a conditional update (a second decision finds it no longer
 * pending and changes nothing), moves the gated action out of its waiting state and appends `audit`. Returns the row
 * as it was before.
 */
async function settlePending<T extends 'approvals' | 'confirmations'>(
  trx: Transaction<Database>,
  kind: PendingKind<T>,
  id: string,
  s: {
    readonly to: string
    readonly by: string | null
    readonly at: string
    readonly reason: string | null
    readonly actionState: ActionState
  },
  audit: readonly AuditEntryBody[],
): Promise<Database[T]> {
  // both tables share these columns; kysely types one table at a time
  const table = kind.table as 'approvals'
  const before = await trx.selectFrom(table).selectAll().where('id', '=', id).executeTakeFirst()
  if (before === undefined) throw new BatonError(kind.notFound, `no ${kind.what} with id '${id}'`)
  const r = await trx
    .updateTable(table)
    .set({ state: s.to, decided_by: s.by, decided_at: s.at, reason: s.reason })
    .where('id', '=', id)
    .where('state', '=', 'pending')
    .executeTakeFirst()
  if (Number(r.numUpdatedRows) !== 1) {
    throw new BatonError(kind.notPending, `${kind.what} ${id} is already ${before.state}; nothing was done`)
  }
  await trx
    .updateTable('actions')
    .set({ state: s.actionState, updated_at: s.at })
    .where('id', '=', before.action_id)
    .where('state', '=', kind.awaiting)
    .execute()
  await appendAuditIn(trx, audit)
  return before as unknown as Database[T]
}

function fromConfirmation(c: ConfirmationRecord): Database['confirmations'] {
  return {
    id: c.id,
    case_id: c.caseId,
    action_id: c.actionId,
    customer_id: c.customerId,
    tool: c.tool,
    params: JSON.stringify(c.params),
    digest: c.digest,
    requester_kind: c.requesterKind,
    requester: c.requester,
    grant_id: c.grantId,
    rule: c.rule,
    state: c.state,
    case_epoch: c.caseEpoch,
    created_at: c.createdAt,
    expires_at: c.expiresAt,
    decided_by: c.decidedBy,
    decided_at: c.decidedAt,
    reason: c.reason,
  }
}

function toConfirmation(r: Database['confirmations']): ConfirmationRecord {
  return {
    id: r.id,
    caseId: r.case_id,
    actionId: r.action_id,
    customerId: r.customer_id,
    tool: r.tool,
    params: JSON.parse(r.params) as Record<string, unknown>,
    digest: r.digest,
    requesterKind: r.requester_kind as ConfirmationRecord['requesterKind'],
    requester: r.requester,
    grantId: r.grant_id,
    rule: r.rule,
    state: r.state as ConfirmationState,
    caseEpoch: Number(r.case_epoch),
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    decidedBy: r.decided_by,
    decidedAt: r.decided_at,
    reason: r.reason,
  }
}

function fromAgent(a: AgentRecord): Database['agents'] {
  return {
    id: a.id,
    owner: a.owner,
    purpose: a.purpose,
    model: a.model,
    tools: JSON.stringify(a.tools),
    closure: JSON.stringify(a.closure),
    state: a.state,
    created_at: a.createdAt,
    updated_at: a.updatedAt,
    reviewed_at: a.reviewedAt,
    reviewed_by: a.reviewedBy,
  }
}

function toAgent(r: Database['agents']): AgentRecord {
  return {
    id: r.id,
    owner: r.owner,
    purpose: r.purpose,
    model: r.model,
    tools: JSON.parse(r.tools) as string[],
    closure: JSON.parse(r.closure) as string[],
    state: r.state as AgentState,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    reviewedAt: r.reviewed_at,
    reviewedBy: r.reviewed_by,
  }
}

function toOperator(r: Database['operators']): OperatorRecord {
  return {
    id: r.id,
    name: r.name,
    roles: JSON.parse(r.roles) as string[],
    skills: JSON.parse(r.skills) as string[],
    languages: JSON.parse(r.languages) as string[],
    capacity: Number(r.capacity),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }
}

function fromIssued(c: IssuedCredentialRecord): Database['issued_credentials'] {
  return {
    jti: c.jti,
    agent_id: c.agentId,
    case_id: c.caseId,
    kind: c.kind,
    tools: JSON.stringify(c.tools),
    epoch: c.epoch,
    issued_at: c.issuedAt,
    expires_at: c.expiresAt,
  }
}

function toIssued(r: Database['issued_credentials']): IssuedCredentialRecord {
  return {
    jti: r.jti,
    agentId: r.agent_id,
    caseId: r.case_id,
    kind: r.kind as IssuedCredentialRecord['kind'],
    tools: JSON.parse(r.tools) as string[],
    epoch: Number(r.epoch),
    issuedAt: r.issued_at,
    expiresAt: r.expires_at,
  }
}

function fromAction(a: ActionRecord): Database['actions'] {
  return {
    id: a.id,
    case_id: a.caseId,
    agent_id: a.agentId,
    tool: a.tool,
    params: JSON.stringify(a.params),
    params_digest: a.paramsDigest,
    outcome: a.outcome,
    state: a.state,
    decision_id: a.decisionId,
    created_at: a.createdAt,
    updated_at: a.updatedAt,
    result_status: a.resultStatus,
    result_digest: a.resultDigest,
    error: a.error,
    requester_kind: a.requesterKind ?? 'agent',
    grant_id: a.grantId ?? null,
  }
}

function toAction(r: Database['actions']): ActionRecord {
  return {
    id: r.id,
    caseId: r.case_id,
    agentId: r.agent_id,
    tool: r.tool,
    params: JSON.parse(r.params) as Record<string, unknown>,
    paramsDigest: r.params_digest,
    outcome: r.outcome as ActionRecord['outcome'],
    state: r.state as ActionState,
    decisionId: r.decision_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    resultStatus: r.result_status === null ? null : Number(r.result_status),
    resultDigest: r.result_digest,
    error: r.error,
    requesterKind: (r.requester_kind ?? 'agent') as 'agent' | 'delegate',
    grantId: r.grant_id ?? null,
  }
}

function fromApproval(a: ApprovalRecord): Database['approvals'] {
  return {
    id: a.id,
    case_id: a.caseId,
    action_id: a.actionId,
    tool: a.tool,
    params: JSON.stringify(a.params),
    digest: a.digest,
    requester: a.requester,
    approver_role: a.approverRole,
    queue: a.queue,
    rule: a.rule,
    state: a.state,
    case_epoch: a.caseEpoch,
    created_at: a.createdAt,
    expires_at: a.expiresAt,
    decided_by: a.decidedBy,
    decided_at: a.decidedAt,
    reason: a.reason,
  }
}

function toApproval(r: Database['approvals']): ApprovalRecord {
  return {
    id: r.id,
    caseId: r.case_id,
    actionId: r.action_id,
    tool: r.tool,
    params: JSON.parse(r.params) as Record<string, unknown>,
    digest: r.digest,
    requester: r.requester,
    approverRole: r.approver_role,
    queue: r.queue,
    rule: r.rule,
    state: r.state as ApprovalState,
    caseEpoch: Number(r.case_epoch),
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    decidedBy: r.decided_by,
    decidedAt: r.decided_at,
    reason: r.reason,
  }
}

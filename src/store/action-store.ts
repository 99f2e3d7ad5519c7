import { sql, type Transaction } from 'kysely'
import type { ApprovalRecord, ApprovalState } from '../approvals/approval.js'
import type { AuditEntryBody } from '../audit/entry.js'
import type { ConfirmationRecord, ConfirmationState } from '../delegation/confirmation.js'
import { BatonError } from '../errors.js'
import type { ActionRecord, ActionState } from '../tools/action.js'
import { type AgentStore, fromIssued } from './agent-store.js'
import { decisionColumns } from './decision-columns.js'
import type { AuthorityStore } from './ports.js'
import type { Database } from './schema.js'
import { announceTimerIn, appendAuditIn, type StoreParts } from './store-parts.js'

/** Tool actions, the approvals and customer confirmations they wait for, and the tool usage they add up to. */
export type ActionStore = Omit<AuthorityStore, keyof AgentStore>

/** Timer kind of an approval's expiry (key: the approval id). */
export const APPROVAL_EXPIRY_TIMER = 'approval_expiry'
/** Timer kind of a customer confirmation's expiry (key: the confirmation id). */
export const CONFIRMATION_EXPIRY_TIMER = 'confirmation_expiry'

export function actionStore(parts: StoreParts): ActionStore {
  const { engine, db, tx } = parts
  const lockRow = engine === 'postgres' ? sql` for update` : sql``

  return {
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
            ...decisionColumns(c.decision.data),
          })
          .execute()
        await trx.insertInto('actions').values(fromAction(c.action)).execute()
        if (c.approval !== undefined) {
          await trx.insertInto('approvals').values(fromApproval(c.approval)).execute()
          // Its expiry is a durable timer written with it: it fires once, even across a restart (see timer-store.ts).
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
          await announceTimerIn(parts, trx, c.approval.expiresAt)
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
          await announceTimerIn(parts, trx, c.confirmation.expiresAt)
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

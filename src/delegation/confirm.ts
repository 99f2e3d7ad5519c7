import { canonicalDigest } from '../approvals/approval.js'
import { delegatedRequester } from '../approvals/decide.js'
import type { Actor } from '../cases/intake.js'
import { type AuthorityDeps, who } from '../credentials/deps.js'
import { BatonError, type ErrorCode } from '../errors.js'
import { agentHoldsCase } from '../identity/principals.js'
import { decideAction } from '../policy/evaluate.js'
import { redactFreeText } from '../signals/sensitive.js'
import type { ActionState } from '../tools/action.js'
import { type ActionResponse, actionFacts, executeAction } from '../tools/actions.js'
import { type ConfirmationRecord, confirmationDigest, confirmationProblem } from './confirmation.js'

export interface ConfirmationInput {
  /** The customer the helpdesk authenticated: it must be the confirmation's own. */
  readonly customer: string
  readonly decision: 'confirm' | 'decline'
  /** For `confirm`: exactly the parameters shown to the customer. */
  readonly params?: Readonly<Record<string, unknown>> | undefined
  readonly reason?: string | undefined
}

export interface ConfirmationResult {
  readonly confirmation: ConfirmationRecord
  readonly action: { readonly id: string; readonly state: ActionState }
  readonly result?: ActionResponse['result']
}

/**
 * The customer answers a confirmation through the helpdesk (its service key, after it authenticated the person).
 * Checks, each refusal audited as `confirmation.refused` and nothing executed: the answer comes from a service key
 * (never a delegate, never an operator) for the confirmation's own customer, while it is pending (a replay does
 * nothing) and unexpired (expiry fails closed), with exactly the parameters it is bound to (the RFC 8785 digest over
 * tool, parameters, case, customer and requester); then the requester's authority is checked again: for a delegate
 * its whole chain (a grant revoked or a delegate suspended anywhere in it supersedes the confirmation), and if the
 * case changed hands or risk since, the policy decides again. On confirm the action executes exactly once.
 */
export async function decideConfirmation(
  deps: AuthorityDeps,
  actor: Actor,
  id: string,
  input: ConfirmationInput,
): Promise<ConfirmationResult> {
  const c = await deps.store.getConfirmation(id)
  if (c === undefined) throw new BatonError('CONFIRMATION_NOT_FOUND', `no confirmation with id '${id}'`)
  const at = deps.now()
  const iso = at.toISOString()
  // the reason the helpdesk typed is stored and audited: redacted first (invariant 7)
  const why = redactFreeText(input.reason ?? '', 'reason', deps.secretHashKey)
  const reason = why.text
  const refuse = async (code: ErrorCode, message: string): Promise<never> => {
    await deps.store.appendAudit([
      {
        type: 'confirmation.refused',
        at: iso,
        caseId: c.caseId,
        actor: who(actor),
        data: { confirmationId: c.id, decision: input.decision, customerId: input.customer, code, reason: message },
      },
    ])
    throw new BatonError(code, message)
  }
  const problem = confirmationProblem(c, actor, input.customer, at)
  if (problem !== null) {
    if (problem.code === 'CONFIRMATION_EXPIRED') await expireConfirmation(deps.store, c.id, at)
    return refuse(problem.code, problem.message)
  }
  const action = await deps.store.getAction(c.actionId)
  if (action === undefined) return refuse('CONFIRMATION_NOT_FOUND', `the action of confirmation ${c.id} is missing`)
  if (confirmationDigest(c) !== c.digest) {
    return refuse('PARAMS_MISMATCH', `confirmation ${c.id}: the stored parameters no longer match its digest`)
  }
  const decided = (state: ConfirmationRecord['state'], extra: Record<string, unknown> = {}) => ({
    type: 'confirmation.decided',
    at: iso,
    caseId: c.caseId,
    actor: who(actor),
    data: {
      confirmationId: c.id,
      actionId: c.actionId,
      customerId: c.customerId,
      tool: c.tool,
      digest: c.digest,
      requester: c.requester,
      requesterKind: c.requesterKind,
      grantId: c.grantId,
      decision: input.decision,
      state,
      reason,
      ...(why.secrets.length === 0 ? {} : { secrets: why.secrets }),
      ...extra,
    },
  })
  if (input.decision === 'decline') {
    const settled = await deps.store.settleConfirmation(c.id, 'declined', actor.id, iso, reason, 'rejected', [
      decided('declined'),
    ])
    return { confirmation: settled, action: { id: action.id, state: 'rejected' } }
  }
  if (input.params === undefined) {
    throw new BatonError('VALIDATION_FAILED', 'params: confirm with exactly the parameters shown to the customer', {
      fields: [{ field: 'params', message: 'is required to confirm' }],
    })
  }
  let shown: string
  try {
    shown = confirmationDigest({ ...c, params: input.params })
  } catch {
    shown = canonicalDigest(null)
  }
  if (shown !== c.digest) {
    return refuse(
      'PARAMS_MISMATCH',
      `the parameters differ from those confirmation ${c.id} is bound to (digest ${c.digest.slice(0, 16)}…); nothing was confirmed`,
    )
  }

  // The requester's authority now, and the case's.
  const supersede = async (code: ErrorCode, why: string): Promise<never> => {
    await deps.store.settleConfirmation(c.id, 'superseded', actor.id, iso, reason, 'rejected', [
      decided('superseded', { why }),
    ])
    throw new BatonError(code, `${why}; confirmation ${c.id} is superseded and nothing was executed`)
  }
  const delegated = await delegatedRequester(deps, action, at)
  if (delegated?.problem !== undefined && delegated.problem !== null) {
    return supersede(delegated.problem.code, delegated.problem.message)
  }
  const kase = await deps.store.getCase(c.caseId)
  if (kase === undefined || kase.state !== 'open') return supersede('CASE_CLOSED', `case ${c.caseId} is closed`)
  const epoch = kase.authorityEpoch ?? 0
  let facts = delegated?.facts
  if (c.requesterKind === 'agent') {
    const agent = await deps.store.getAgent(c.requester)
    if (agent?.state !== 'active') return supersede('AGENT_INACTIVE', `agent '${c.requester}' is no longer active`)
    if (agentHoldsCase(kase.handler, agent.id) === null) {
      return supersede('NOT_CASE_HANDLER', `agent '${c.requester}' no longer handles case ${c.caseId}`)
    }
    facts = { kind: 'agent', id: agent.id, roles: ['agent'] }
  }
  if (epoch !== c.caseEpoch && facts !== undefined) {
    const policy = deps.policy().policy
    const customer = await deps.store.getCustomer(kase.customerId)
    const r = decideAction(policy, actionFacts(policy, kase, kase.risk, customer, facts, c.tool, c.params, {}, at))
    if (r.outcome !== 'confirm' && r.outcome !== 'allow') {
      return supersede(
        'CONFLICT',
        `the case changed since the request and the policy now says '${r.outcome}' (${r.rules.join(', ')})`,
      )
    }
  }
  const settled = await deps.store.settleConfirmation(c.id, 'confirmed', actor.id, iso, reason, 'authorized', [
    decided('confirmed'),
  ])
  const tool = deps.catalog.get(c.tool)
  if (tool?.connector === null || tool === undefined || tool.connector.mode !== 'execute') {
    return { confirmation: settled, action: { id: action.id, state: 'authorized' } }
  }
  const done = await executeAction(deps, { ...action, state: 'authorized' }, c.params, epoch, who(actor))
  return { confirmation: settled, action: { id: action.id, state: done.state }, result: done.result }
}

/**
 * The confirmation-expiry timer's handler (and the refusal of a late answer): settles confirmation `id` as
 * `expired` when it is still pending at `at` and past its expiry (audited `confirmation.expired`). Idempotent.
 */
export async function expireConfirmation(
  store: Pick<AuthorityDeps['store'], 'getConfirmation' | 'settleConfirmation'>,
  id: string,
  at: Date,
): Promise<'expired' | 'unchanged'> {
  const c = await store.getConfirmation(id)
  if (c === undefined || c.state !== 'pending' || at.getTime() < Date.parse(c.expiresAt)) return 'unchanged'
  const iso = at.toISOString()
  try {
    await store.settleConfirmation(c.id, 'expired', null, iso, 'expired before the customer answered', 'rejected', [
      {
        type: 'confirmation.expired',
        at: iso,
        caseId: c.caseId,
        data: { confirmationId: c.id, expiresAt: c.expiresAt },
      },
    ])
    return 'expired'
  } catch (e) {
    if (e instanceof BatonError && e.code === 'CONFIRMATION_NOT_PENDING') return 'unchanged'
    throw e
  }
}

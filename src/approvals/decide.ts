import { type Actor, actorFacts } from '../cases/intake.js'
import { type AuthorityDeps, who } from '../credentials/deps.js'
import type { AgentAuth } from '../credentials/oauth.js'
import { type ChainProblem, chainProblem, effectiveScopes } from '../delegation/grants.js'
import { delegateActor } from '../delegation/token-exchange.js'
import { BatonError } from '../errors.js'
import { agentHoldsCase } from '../identity/principals.js'
import { decideAction } from '../policy/evaluate.js'
import type { ActorFacts } from '../policy/types.js'
import { redactFreeText } from '../signals/sensitive.js'
import type { ActionRecord, ActionState } from '../tools/action.js'
import { type ActionResponse, actionFacts, executeAction, issuedEntry, mintFor } from '../tools/actions.js'
import { type ApprovalRecord, approvalDigest, eligibility } from './approval.js'

export interface ApprovalDecisionInput {
  readonly decision: 'approve' | 'deny'
  readonly reason: string
}

export interface ApprovalDecisionResult {
  readonly approval: ApprovalRecord
  readonly action: { readonly id: string; readonly state: ActionState }
  readonly result?: ActionResponse['result']
  /** When the case changed since the request: what re-evaluation found. */
  readonly reevaluation?: { readonly outcome: string; readonly rules: readonly string[]; readonly reason: string }
}

/**
 * A human decides a pending approval. Checks (each refusal audited as `approval.refused`): the approval is
 * pending and unexpired, the decider is an operator principal holding the rule's role and is not the requester,
 * and the stored parameters still hash to the digest the approval is bound to. On approve: if the case's authority
 * epoch moved since the request (handoff, risk), the action is decided again with today's facts and executes only
 * if that still allows it (else the approval is `superseded`); then it executes exactly once.
 */
export async function decideApproval(
  deps: AuthorityDeps,
  actor: Actor,
  id: string,
  given: ApprovalDecisionInput,
): Promise<ApprovalDecisionResult> {
  // the approver's reason is stored, audited and shown: redacted first (invariant 7)
  const why = redactFreeText(given.reason, 'reason', deps.secretHashKey)
  const input = { ...given, reason: why.text }
  const a = await deps.store.getApproval(id)
  if (a === undefined) throw new BatonError('APPROVAL_NOT_FOUND', `no approval with id '${id}'`)
  const at = deps.now()
  const iso = at.toISOString()
  const operator = actor.kind === 'operator' ? await deps.store.getOperator(actor.id) : undefined
  const decider = {
    kind: actor.kind === 'operator' && operator === undefined ? 'unregistered operator key' : actor.kind,
    id: actor.id,
    roles: operator?.roles ?? [],
  }
  const refuse = async (code: BatonError['code'], message: string): Promise<never> => {
    await deps.store.appendAudit([
      {
        type: 'approval.refused',
        at: iso,
        caseId: a.caseId,
        actor: who(actor),
        data: { approvalId: a.id, decision: input.decision, code, reason: message },
      },
    ])
    throw new BatonError(code, message)
  }
  const problem = eligibility(a, decider, at)
  if (problem !== null) {
    if (problem.code === 'APPROVAL_EXPIRED') {
      await deps.store
        .settleApproval(a.id, 'expired', null, iso, 'expired before a decision', 'rejected', [
          { type: 'approval.expired', at: iso, caseId: a.caseId, data: { approvalId: a.id, expiresAt: a.expiresAt } },
        ])
        .catch(() => undefined)
    }
    return refuse(problem.code, problem.message)
  }
  const action = await deps.store.getAction(a.actionId)
  if (action === undefined) return refuse('APPROVAL_NOT_FOUND', `the action of approval ${a.id} is missing`)
  if (approvalDigest(a) !== a.digest) {
    return refuse('PARAMS_MISMATCH', `approval ${a.id}: the stored parameters no longer match the approved digest`)
  }
  const decided = (state: ApprovalRecord['state'], reason: string, extra: Record<string, unknown> = {}) => ({
    type: 'approval.decided',
    at: iso,
    caseId: a.caseId,
    actor: who(actor),
    data: {
      approvalId: a.id,
      actionId: a.actionId,
      tool: a.tool,
      digest: a.digest,
      requester: a.requester,
      decision: input.decision,
      state,
      reason,
      ...(why.secrets.length === 0 ? {} : { secrets: why.secrets }),
      ...extra,
    },
  })

  if (input.decision === 'deny') {
    const settled = await deps.store.settleApproval(a.id, 'denied', actor.id, iso, input.reason, 'rejected', [
      decided('denied', input.reason),
    ])
    return { approval: settled, action: { id: action.id, state: 'rejected' } }
  }

  const c = await deps.store.getCase(a.caseId)
  if (c === undefined) return refuse('CASE_NOT_FOUND', `no case with id '${a.caseId}'`)
  const epoch = c.authorityEpoch ?? 0
  let reevaluation: ApprovalDecisionResult['reevaluation']
  // A delegate's request stands only while its whole chain does: a revoked grant or a suspended delegate anywhere
  // in it supersedes the approval, whatever the case did.
  const delegated = await delegatedRequester(deps, action, at)
  if (epoch !== a.caseEpoch || c.state !== 'open' || delegated !== undefined) {
    const agent = delegated === undefined ? await deps.store.getAgent(a.requester) : undefined
    const policy = deps.policy().policy
    let why = ''
    if (c.state !== 'open') why = `the case is ${c.state}`
    else if (delegated !== undefined) why = delegated.problem?.message ?? ''
    else if (agent === undefined || agent.state !== 'active') why = `agent '${a.requester}' is no longer active`
    else if (agentHoldsCase(c.handler, agent.id) === null) why = `agent '${a.requester}' no longer handles the case`
    let outcome = 'superseded'
    let rules: readonly string[] = []
    const requesterFacts =
      delegated?.facts ?? (agent === undefined ? undefined : { kind: 'agent', id: agent.id, roles: ['agent'] })
    if (why === '' && requesterFacts !== undefined && (epoch !== a.caseEpoch || delegated === undefined)) {
      const customer = await deps.store.getCustomer(c.customerId)
      const facts = actionFacts(policy, c, c.risk, customer, requesterFacts, a.tool, a.params, {}, at)
      const r = decideAction(policy, facts)
      outcome = r.outcome
      rules = r.rules
      const stillOk = r.outcome === 'allow' || (r.outcome === 'approve' && decider.roles.includes(r.approverRole))
      if (!stillOk)
        why = `re-evaluated after the case changed: the policy now says '${r.outcome}' (${r.rules.join(', ')})`
    }
    if (why !== '' || epoch !== a.caseEpoch) {
      reevaluation = {
        outcome,
        rules,
        reason: why || 'the case changed since the request; re-evaluated, still allowed',
      }
    }
    if (why !== '') {
      const settled = await deps.store.settleApproval(a.id, 'superseded', actor.id, iso, input.reason, 'rejected', [
        decided('superseded', input.reason, { reevaluation }),
      ])
      return {
        approval: settled,
        action: { id: action.id, state: 'rejected' },
        ...(reevaluation === undefined ? {} : { reevaluation }),
      }
    }
  }
  const settled = await deps.store.settleApproval(a.id, 'approved', actor.id, iso, input.reason, 'authorized', [
    decided('approved', input.reason, reevaluation === undefined ? {} : { reevaluation }),
  ])
  const tool = deps.catalog.get(a.tool)
  if (tool?.connector === null || tool === undefined || tool.connector.mode !== 'execute') {
    return {
      approval: settled,
      action: { id: action.id, state: 'authorized' },
      ...(reevaluation === undefined ? {} : { reevaluation }),
    }
  }
  const done = await executeAction(deps, { ...action, state: 'authorized' }, a.params, epoch, who(actor))
  return {
    approval: settled,
    action: { id: action.id, state: done.state },
    result: done.result,
    ...(reevaluation === undefined ? {} : { reevaluation }),
  }
}

/**
 * For an action a delegate asked for: its chain checked now, and the facts its delegate presents (`problem` when
 * the chain no longer holds). Undefined for an agent's action.
 */
export async function delegatedRequester(
  deps: AuthorityDeps,
  action: Pick<ActionRecord, 'requesterKind' | 'grantId'>,
  at: Date,
): Promise<{ readonly problem: ChainProblem | null; readonly facts: ActorFacts | undefined } | undefined> {
  if (action.requesterKind !== 'delegate') return undefined
  const chain =
    action.grantId === null || action.grantId === undefined ? [] : await deps.store.getGrantChain(action.grantId)
  const problem = chainProblem(chain, at, deps.delegation.maxChain)
  if (problem !== null) {
    return {
      problem: { code: problem.code, message: `the delegate's chain no longer holds: ${problem.message}` },
      facts: undefined,
    }
  }
  const actor = delegateActor(chain, effectiveScopes(chain, deps.delegation), at, '')
  return { problem: null, facts: actorFacts(actor) }
}

/**
 * Executes an approved action that has not run (e.g. an earlier attempt was interrupted before the claim), by its
 * approver or an admin. A replay of an executed (or executing) approval does nothing and says so: `APPROVAL_ALREADY_EXECUTED`, audited.
 */
export async function executeApproval(deps: AuthorityDeps, actor: Actor, id: string): Promise<ApprovalDecisionResult> {
  const a = await deps.store.getApproval(id)
  if (a === undefined) throw new BatonError('APPROVAL_NOT_FOUND', `no approval with id '${id}'`)
  const action = await deps.store.getAction(a.actionId)
  const iso = deps.now().toISOString()
  const refuse = async (code: BatonError['code'], message: string): Promise<never> => {
    await deps.store.appendAudit([
      {
        type: 'approval.refused',
        at: iso,
        caseId: a.caseId,
        actor: who(actor),
        data: { approvalId: a.id, decision: 'execute', code, reason: message },
      },
    ])
    throw new BatonError(code, message)
  }
  if (a.state !== 'approved') return refuse('APPROVAL_NOT_PENDING', `approval ${a.id} is ${a.state}; it cannot execute`)
  if (actor.kind !== 'admin' && actor.id !== a.decidedBy) {
    return refuse(
      'APPROVER_NOT_ELIGIBLE',
      `only the approver ('${a.decidedBy}') or an admin may execute approval ${a.id}`,
    )
  }
  if (action === undefined) return refuse('APPROVAL_NOT_FOUND', `the action of approval ${a.id} is missing`)
  if (action.state !== 'authorized') {
    return refuse(
      'APPROVAL_ALREADY_EXECUTED',
      `approval ${a.id} was already executed (action ${action.id} is ${action.state}); nothing was done`,
    )
  }
  if (approvalDigest(a) !== a.digest) {
    return refuse('PARAMS_MISMATCH', `approval ${a.id}: the stored parameters no longer match the approved digest`)
  }
  const c = await deps.store.getCase(a.caseId)
  try {
    const done = await executeAction(deps, action, a.params, c?.authorityEpoch ?? 0, who(actor))
    return { approval: a, action: { id: action.id, state: done.state }, result: done.result }
  } catch (e) {
    if (e instanceof BatonError && e.code === 'APPROVAL_ALREADY_EXECUTED') return refuse(e.code, e.message)
    throw e
  }
}

/**
 * The requesting agent collects the credential of an approved action whose tool hands out credentials
 * (`connector.mode: credential`): once, scoped to the case, the tool and exactly the approved parameters, while it
 * still handles the case at the epoch of its access token.
 */
export async function collectApprovedCredential(
  deps: AuthorityDeps,
  auth: AgentAuth,
  id: string,
): Promise<{ actionId: string; credential: NonNullable<ActionResponse['credential']> }> {
  const a = await deps.store.getApproval(id)
  if (a === undefined) throw new BatonError('APPROVAL_NOT_FOUND', `no approval with id '${id}'`)
  if (a.requester !== auth.agent.id) {
    throw new BatonError('CREDENTIAL_SCOPE', `approval ${a.id} was requested by another agent`)
  }
  if (auth.claims.case !== a.caseId) {
    throw new BatonError('CREDENTIAL_SCOPE', `the credential is for case '${auth.claims.case}', not '${a.caseId}'`)
  }
  const c = await deps.store.getCase(a.caseId)
  if (c === undefined) throw new BatonError('CASE_NOT_FOUND', `no case with id '${a.caseId}'`)
  if ((c.authorityEpoch ?? 0) !== auth.claims.epoch) {
    throw new BatonError('CREDENTIAL_REVOKED', "the case's authority changed since the credential was issued")
  }
  if (agentHoldsCase(c.handler, auth.agent.id) === null) {
    throw new BatonError('NOT_CASE_HANDLER', `agent '${auth.agent.id}' does not handle case '${a.caseId}'`)
  }
  if (a.state !== 'approved') throw new BatonError('APPROVAL_NOT_PENDING', `approval ${a.id} is ${a.state}`)
  const tool = deps.catalog.get(a.tool)
  if (tool?.connector?.mode !== 'credential') {
    throw new BatonError(
      'CONFLICT',
      `tool '${a.tool}' is executed by Baton on approval; there is no credential to collect`,
    )
  }
  if (approvalDigest(a) !== a.digest) {
    throw new BatonError(
      'PARAMS_MISMATCH',
      `approval ${a.id}: the stored parameters no longer match the approved digest`,
    )
  }
  const action = await deps.store.getAction(a.actionId)
  if (action === undefined) throw new BatonError('APPROVAL_NOT_FOUND', `the action of approval ${a.id} is missing`)
  const at = deps.now()
  const iso = at.toISOString()
  const minted = await mintFor(
    deps,
    auth.agent.id,
    a.caseId,
    tool,
    action.id,
    action.paramsDigest,
    auth.claims.epoch,
    'scoped',
    at,
  )
  const moved = await deps.store.moveAction(
    action.id,
    ['authorized'],
    'credential_issued',
    iso,
    {},
    [issuedEntry(minted.claims, a.caseId, who(auth.actor), iso)],
    [minted.record],
  )
  if (!moved) {
    throw new BatonError('APPROVAL_ALREADY_EXECUTED', `approval ${a.id}: its credential was already handed out`)
  }
  return {
    actionId: action.id,
    credential: { token: minted.token, expiresAt: minted.record.expiresAt, audience: minted.audience },
  }
}

/**
 * The approval-expiry timer's handler: settles approval `approvalId` as `expired` (audited `approval.expired`) when it
 * is still pending at `at` and past its expiry. Idempotent: an approval decided, superseded or already expired is
 * left alone, so a timer that fires again after a crash changes nothing.
 */
export async function expireApproval(
  store: Pick<AuthorityDeps['store'], 'getApproval' | 'settleApproval'>,
  approvalId: string,
  at: Date,
): Promise<'expired' | 'unchanged'> {
  const a = await store.getApproval(approvalId)
  if (a === undefined || a.state !== 'pending' || at.getTime() < Date.parse(a.expiresAt)) return 'unchanged'
  const iso = at.toISOString()
  try {
    await store.settleApproval(a.id, 'expired', null, iso, 'expired before a decision', 'rejected', [
      { type: 'approval.expired', at: iso, caseId: a.caseId, data: { approvalId: a.id, expiresAt: a.expiresAt } },
    ])
    return 'expired'
  } catch (e) {
    if (e instanceof BatonError && e.code === 'APPROVAL_NOT_PENDING') return 'unchanged'
    throw e
  }
}

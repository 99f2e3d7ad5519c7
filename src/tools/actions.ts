import { createHash } from 'node:crypto'
import { type ApprovalRecord, approvalDigest, canonicalDigest } from '../approvals/approval.js'
import type { AuditActor, AuditEntryBody } from '../audit/entry.js'
import type { Handler } from '../cases/case.js'
import { actorFacts, holderFacts } from '../cases/intake.js'
import type { CaseEvent, CaseRecord, DecisionRecord } from '../cases/records.js'
import { type AuthorityDeps, type McpToolResult, who } from '../credentials/deps.js'
import type { AgentAuth } from '../credentials/oauth.js'
import type { CredentialClaims } from '../credentials/tokens.js'
import { type ConfirmationRecord, confirmationDigest } from '../delegation/confirmation.js'
import { type CompiledLimit, limitHolds, scopesForTool } from '../delegation/document.js'
import { limitsFor } from '../delegation/grants.js'
import { requireOwnCase } from '../delegation/requests.js'
import { type DelegateAuth, withScope } from '../delegation/token-exchange.js'
import { BatonError, type ErrorCode } from '../errors.js'
import { type AgentRecord, agentHoldsCase } from '../identity/principals.js'
import type { CompiledPolicy } from '../policy/compile.js'
import { decideAction } from '../policy/evaluate.js'
import type { ActionResult, ActorFacts, Facts, QueueFacts } from '../policy/types.js'
import { secretFields } from '../signals/sensitive.js'
import { RISK_CATEGORIES, type RiskCategory } from '../signals/types.js'
import type { IssuedCredentialRecord } from '../store/authority-store.js'
import type { CustomerRecord } from '../store/ports.js'
import type { ActionRecord, ActionState } from './action.js'
import type { CatalogTool } from './catalog.js'
import { asHybridProposal } from './hybrid.js'

export interface ActionInput {
  readonly tool: string
  readonly params: Readonly<Record<string, unknown>>
  /** Risk indicators the agent itself raises with this request; they only ever add, and stick to the case. */
  readonly risk?: readonly RiskCategory[] | undefined
  /** The face the request came through when it is not the HTTP API: recorded with the decision and its audit entry. */
  readonly via?: { readonly face: 'mcp'; readonly session: string } | undefined
}

/**
 * Refusals of an agent's action that a face audits as `access.refused` (within the refusal budget): the decision
 * outcomes are audited anyway. The HTTP API and the MCP gateway use the same list.
 */
export const AUDITED_REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'CREDENTIAL_INVALID',
  'CREDENTIAL_EXPIRED',
  'CREDENTIAL_REVOKED',
  'CREDENTIAL_SCOPE',
  'NOT_CASE_HANDLER',
  'TOOL_NOT_FOUND',
  'TOOL_NOT_GRANTED',
  'PARAMS_INVALID',
  'PARAMS_MISMATCH',
  'CASE_CLOSED',
  'CASE_NOT_FOUND',
])

export interface ActionResponse {
  readonly actionId: string
  readonly caseId: string
  readonly tool: string
  readonly outcome: ActionResult['outcome']
  readonly state: ActionState
  readonly decision: {
    readonly id: string
    readonly rules: readonly string[]
    readonly explanation: ActionResult['explanation']
    readonly policy: ActionResult['policy']
  }
  readonly paramsDigest: string
  readonly approval?: { readonly id: string; readonly approverRole: string; readonly expiresAt: string }
  /** For `confirm`: the customer's own confirmation the action waits for. */
  readonly confirmation?: { readonly id: string; readonly expiresAt: string; readonly digest: string }
  readonly handler?: Handler
  readonly credential?: { readonly token: string; readonly expiresAt: string; readonly audience: string }
  readonly result?: { readonly status: number | null; readonly digest: string | null; readonly error: string | null }
  /**
   * What the connector answered, for the face that asked (the MCP gateway passes it on as the tool's result). Never
   * stored or audited (only its digest is); the HTTP face does not return it.
   */
  readonly output?: ToolOutput
}

/** A connector's answer: an HTTP tool service's status and body, or an upstream MCP tool's result. */
export type ToolOutput =
  | { readonly kind: 'http'; readonly status: number; readonly body: Uint8Array }
  | { readonly kind: 'mcp'; readonly result: McpToolResult }

/** `_meta` keys of a call Baton forwards to an upstream MCP server. */
export const MCP_META = {
  credential: 'dev.baton/credential',
  action: 'dev.baton/action',
  case: 'dev.baton/case',
} as const

/** The built-in tool that closes a case; its `outcome` must be within the agent's closure authority. */
export const CLOSE_TOOL = 'close_case'

/**
 * Who asks for an action, once its own checks passed: an agent that handles the case (its access token), or a
 * customer's delegate acting for the case's customer (its delegate token, scope and limits checked).
 */
interface Requester {
  readonly kind: 'agent' | 'delegate'
  readonly id: string
  /** The audit actor (a delegate's with its customer, chain, grant and scope). */
  readonly actor: AuditActor
  readonly facts: ActorFacts
  /** The id of the token the request came with. */
  readonly credential: string
  /** The case's authority epoch the request is decided at: the commit is refused if it moved since. */
  readonly epoch: number
  /** An agent's relation to the case; null for a delegate. */
  readonly holds: 'agent' | 'hybrid' | null
  readonly grantId: string | null
}

/**
 * An agent asks to call a tool on a case it handles. Order of checks: credential scope (case, epoch, handler,
 * tools) → the tool's grant → the parameter schema (422 naming the field) → policy. Then, in one transaction,
 * the decision, the action and its audit entries (and the approval or the confirmation, or the handoff for
 * `escalate`); an allowed call is then executed once through the connector, or a credential scoped to it is handed
 * back.
 */
export async function requestAction(
  deps: AuthorityDeps,
  auth: AgentAuth,
  caseId: string,
  input: ActionInput,
): Promise<ActionResponse> {
  const { agent, claims } = auth
  if (claims.case !== caseId) {
    throw new BatonError('CREDENTIAL_SCOPE', `the credential is for case '${claims.case}', not '${caseId}'`)
  }
  const c = await deps.store.getCase(caseId)
  const problem = authorityProblem(c, agent, claims)
  if (c === undefined || problem !== null) {
    throw new BatonError(problem?.code ?? 'CASE_NOT_FOUND', problem?.message ?? `no case with id '${caseId}'`)
  }
  const holds = agentHoldsCase(c.handler, agent.id) ?? 'agent'
  const tool = deps.catalog.get(input.tool)
  if (tool === undefined) throw new BatonError('TOOL_NOT_FOUND', `no tool '${input.tool}' in the catalog`)
  if (!agent.tools.includes(tool.name)) {
    throw new BatonError('TOOL_NOT_GRANTED', `agent '${agent.id}' is not granted tool '${tool.name}'`)
  }
  if (!claims.tools.includes(tool.name)) {
    throw new BatonError('CREDENTIAL_SCOPE', `the credential does not cover tool '${tool.name}'`)
  }
  checkParams(tool, input.params)
  if (tool.name === CLOSE_TOOL) {
    const outcome = String(input.params.outcome ?? '')
    if (!agent.closure.includes(outcome)) {
      throw new BatonError(
        'TOOL_NOT_GRANTED',
        `agent '${agent.id}' may not close a case as '${outcome}' (its closure authority: ${agent.closure.join(', ') || 'none'})`,
      )
    }
  }
  return decideAndRecord(
    deps,
    {
      kind: 'agent',
      id: agent.id,
      actor: { kind: 'agent', id: agent.id },
      facts: { kind: 'agent', id: agent.id, roles: ['agent'] },
      credential: claims.jti,
      epoch: claims.epoch,
      holds,
      grantId: null,
    },
    c,
    tool,
    input,
  )
}

/**
 * A customer's delegate asks to call a tool on its own customer's case. Order of checks: the case is the token's
 * customer's and open → a scope of the token unlocks the tool → the parameter schema → the limits (the scope's own
 * in delegation.yaml and every hop's of the chain, all of them; a call within no scope's limits is refused with
 * `LIMIT_EXCEEDED` and nothing is recorded) → policy, which reads `actor.kind == 'delegate'`, its scopes, chain and
 * grant. `confirm` makes the action wait for the customer's own confirmation; the delegate can never give it.
 */
export async function requestDelegateAction(
  deps: AuthorityDeps,
  auth: DelegateAuth,
  caseId: string,
  input: ActionInput,
): Promise<ActionResponse> {
  if ((input.risk ?? []).length > 0) {
    throw new BatonError(
      'VALIDATION_FAILED',
      'risk: a delegate cannot raise risk indicators; Baton reads the case itself',
      {
        fields: [{ field: 'risk', message: 'not allowed for a delegate' }],
      },
    )
  }
  const c = await deps.store.getCase(caseId)
  if (c === undefined) throw new BatonError('CASE_NOT_FOUND', `no case with id '${caseId}'`)
  requireOwnCase(auth.actor, c)
  if (c.state !== 'open') throw new BatonError('CASE_CLOSED', `case '${caseId}' is ${c.state}`)
  const tool = deps.catalog.get(input.tool)
  if (tool === undefined) throw new BatonError('TOOL_NOT_FOUND', `no tool '${input.tool}' in the catalog`)
  const scopes = scopesForTool(deps.delegation, auth.scopes, tool.name)
  if (scopes.length === 0) {
    throw new BatonError(
      'SCOPE_NOT_GRANTED',
      `no scope of this token unlocks tool '${tool.name}' (it holds ${auth.scopes.join(', ') || 'none'})`,
    )
  }
  checkParams(tool, input.params)
  let allowedBy: string | undefined
  let exceeded: { scope: string; limit: CompiledLimit } | undefined
  for (const scope of scopes) {
    const broken = limitsFor(deps.delegation, auth.chain, scope).find((l) => !limitHolds(l, tool.name, input.params))
    if (broken === undefined) {
      allowedBy = scope
      break
    }
    exceeded ??= { scope, limit: broken }
  }
  if (allowedBy === undefined) {
    const x = exceeded as { scope: string; limit: CompiledLimit }
    throw new BatonError(
      'LIMIT_EXCEEDED',
      `scope '${x.scope}': the call does not satisfy the limit '${x.limit.text}' (${x.limit.where}); nothing was done`,
    )
  }
  const scoped = withScope(auth, allowedBy)
  return decideAndRecord(
    deps,
    {
      kind: 'delegate',
      id: scoped.delegateId,
      actor: who(scoped.actor),
      facts: actorFacts(scoped.actor),
      credential: scoped.claims.jti,
      epoch: c.authorityEpoch ?? 0,
      holds: null,
      grantId: scoped.grant.id,
    },
    c,
    tool,
    input,
  )
}

function checkParams(tool: CatalogTool, params: Readonly<Record<string, unknown>>): void {
  // Fail closed (invariant 7): a secret in a tool parameter is refused, not redacted. The parameters are stored,
  // shown to the approver, digested for the approval and sent to the connector exactly as given; a redacted value
  // would make the connector act on something else, a clear one would put the secret there and in the log.
  const leaked = secretFields(params, 'params')
  if (leaked.length > 0) {
    const fields = leaked.map((f) => ({
      field: f.field,
      message: `holds what looks like a secret (${f.kind}); tool parameters may not carry secrets`,
    }))
    throw new BatonError(
      'PARAMS_INVALID',
      `${fields.map((f) => `${f.field}: ${f.message}`).join('; ')}; nothing was stored or executed`,
      { fields },
    )
  }
  const problems = tool.check(params)
  if (problems !== null) {
    throw new BatonError('PARAMS_INVALID', problems.map((p) => `${p.field}: ${p.message}`).join('; '), {
      fields: problems,
    })
  }
}

/** Decides a checked request by policy and records it in one transaction; then executes an allowed call once. */
async function decideAndRecord(
  deps: AuthorityDeps,
  requester: Requester,
  c: CaseRecord,
  tool: CatalogTool,
  input: ActionInput,
): Promise<ActionResponse> {
  const caseId = c.id
  const policy = deps.policy().policy
  const at = deps.now()
  const iso = at.toISOString()
  const risk = mergeRisk(c.risk, input.risk ?? [])
  const riskRose = RISK_CATEGORIES.some((r) => risk[r] === true && c.risk[r] !== true)
  const customer = await deps.store.getCustomer(c.customerId)
  const queues = policy.tools.readsQueues ? await deps.store.queueStats() : {}
  const facts = actionFacts(policy, c, risk, customer, requester.facts, tool.name, input.params, queues, at)
  let result = decideAction(policy, facts)
  if (requester.holds === 'hybrid') {
    // In a hybrid case an operator owns the case: the agent proposes, a human approves.
    result = asHybridProposal(result, c.handler.kind === 'hybrid' ? c.handler.queue : result.queue)
  }

  const actionId = deps.newId('act')
  const decisionId = deps.newId('dec')
  const paramsDigest = canonicalDigest(input.params)
  const actor = requester.actor
  const claims = { jti: requester.credential, epoch: requester.epoch }
  const audit: AuditEntryBody[] = []
  const decisionData = {
    decisionId,
    actionId,
    kind: 'action',
    tool: tool.name,
    paramsDigest,
    outcome: result.outcome,
    rules: result.rules,
    explanation: result.explanation,
    approverRole: result.approverRole,
    queue: result.queue,
    policy: result.policy,
    actor,
    credential: claims.jti,
    ...(input.via === undefined ? {} : { via: input.via }),
    ...(requester.grantId === null ? {} : { grant: requester.grantId }),
    facts,
  }
  const decision: DecisionRecord = {
    id: decisionId,
    caseId,
    kind: 'action',
    outcome: result.outcome,
    at: iso,
    data: decisionData,
  }
  audit.push({
    type: 'action.decided',
    at: iso,
    caseId,
    actor,
    data: {
      actionId,
      decisionId,
      tool: tool.name,
      paramsDigest,
      outcome: result.outcome,
      rules: result.rules,
      explanation: result.explanation,
      policy: result.policy,
      credential: claims.jti,
      ...(input.via === undefined ? {} : { via: input.via }),
    },
  })

  let state: ActionState
  let approval: ApprovalRecord | undefined
  let confirmation: ConfirmationRecord | undefined
  let caseChange: { case: CaseRecord; expectedVersion: number; events: CaseEvent[] } | undefined
  const issued: IssuedCredentialRecord[] = []
  let credential: ActionResponse['credential']
  const closes = tool.name === CLOSE_TOOL && tool.connector === null && result.outcome === 'allow'
  const epochAfter = claims.epoch + (result.outcome === 'escalate' || riskRose || closes ? 1 : 0)

  if (result.outcome === 'deny') {
    state = 'denied'
  } else if (result.outcome === 'escalate') {
    state = 'escalated'
    const queue = result.queue || policy.routing.fallbackQueue
    const to: Handler = { kind: 'operator', queue }
    const crosses = c.handler.kind === 'agent'
    const next: CaseRecord = {
      ...c,
      handler: to,
      handoffs: c.handoffs + (crosses ? 1 : 0),
      risk,
      version: c.version + 1,
      updatedAt: iso,
      stateSince: iso,
      lastEvent: c.lastEvent + 1,
    }
    const data = {
      from: c.handler,
      to,
      cause: { decisionId, rules: result.rules, trigger: 'action_escalated', actionId, tool: tool.name },
      countsAsHandoff: crosses,
    }
    caseChange = {
      case: next,
      expectedVersion: c.version,
      events: [{ caseId, seq: c.lastEvent + 1, type: 'case.handed_off', data, at: iso }],
    }
    audit.push({ type: 'case.handed_off', at: iso, caseId, actor, data: { caseSeq: c.lastEvent + 1, ...data } })
    audit.push({
      type: 'credential.revoked',
      at: iso,
      caseId,
      actor,
      data: { agentId: handlerAgent(c) ?? requester.id, reason: 'escalated', epoch: epochAfter },
    })
  } else if (result.outcome === 'approve') {
    state = 'awaiting_approval'
    const expiresAt = new Date(at.getTime() + deps.approvalTtlSeconds * 1000).toISOString()
    approval = {
      id: deps.newId('apr'),
      caseId,
      actionId,
      tool: tool.name,
      params: input.params,
      digest: approvalDigest({ tool: tool.name, params: input.params, caseId, requester: requester.id }),
      requester: requester.id,
      approverRole: result.approverRole,
      queue: result.queue,
      rule: result.rules[result.rules.length - 1] ?? '',
      state: 'pending',
      caseEpoch: epochAfter,
      createdAt: iso,
      expiresAt,
      decidedBy: null,
      decidedAt: null,
      reason: null,
    }
    audit.push({
      type: 'approval.requested',
      at: iso,
      caseId,
      actor,
      data: {
        approvalId: approval.id,
        actionId,
        tool: tool.name,
        digest: approval.digest,
        requester: requester.id,
        approverRole: approval.approverRole,
        queue: approval.queue,
        rule: approval.rule,
        expiresAt,
      },
    })
  } else if (result.outcome === 'confirm') {
    state = 'awaiting_confirmation'
    const expiresAt = new Date(at.getTime() + deps.confirmationTtlSeconds * 1000).toISOString()
    const digest = confirmationDigest({
      tool: tool.name,
      params: input.params,
      caseId,
      customerId: c.customerId,
      requester: requester.id,
    })
    confirmation = {
      id: deps.newId('cnf'),
      caseId,
      actionId,
      customerId: c.customerId,
      tool: tool.name,
      params: input.params,
      digest,
      requesterKind: requester.kind,
      requester: requester.id,
      grantId: requester.grantId,
      rule: result.rules[result.rules.length - 1] ?? '',
      state: 'pending',
      caseEpoch: epochAfter,
      createdAt: iso,
      expiresAt,
      decidedBy: null,
      decidedAt: null,
      reason: null,
    }
    audit.push({
      type: 'confirmation.requested',
      at: iso,
      caseId,
      actor,
      data: {
        confirmationId: confirmation.id,
        actionId,
        customerId: c.customerId,
        tool: tool.name,
        digest,
        requester: requester.id,
        requesterKind: requester.kind,
        grantId: requester.grantId,
        rule: confirmation.rule,
        expiresAt,
      },
    })
  } else if (tool.name === CLOSE_TOOL && tool.connector === null) {
    // Baton closes the case itself, in the decision's transaction; the close ends every credential on it.
    state = 'executed'
    const data = { outcome: input.params.outcome, actionId, decisionId, by: actor }
    caseChange = {
      case: {
        ...c,
        state: 'closed',
        risk,
        version: c.version + 1,
        updatedAt: iso,
        stateSince: iso,
        lastEvent: c.lastEvent + 1,
      },
      expectedVersion: c.version,
      events: [{ caseId, seq: c.lastEvent + 1, type: 'case.closed', data, at: iso }],
    }
    audit.push({ type: 'case.closed', at: iso, caseId, actor, data: { caseSeq: c.lastEvent + 1, ...data } })
    audit.push({
      type: 'credential.revoked',
      at: iso,
      caseId,
      actor,
      data: { agentId: handlerAgent(c) ?? requester.id, reason: 'closed', epoch: claims.epoch + 1 },
    })
  } else if (tool.connector?.mode === 'credential') {
    state = 'credential_issued'
    const minted = await mintFor(deps, requester.id, caseId, tool, actionId, paramsDigest, epochAfter, 'scoped', at)
    issued.push(minted.record)
    credential = { token: minted.token, expiresAt: minted.record.expiresAt, audience: minted.audience }
    audit.push(issuedEntry(minted.claims, caseId, actor, iso))
  } else {
    state = 'authorized'
  }
  if (caseChange === undefined && riskRose) {
    caseChange = {
      case: { ...c, risk, version: c.version + 1, updatedAt: iso },
      expectedVersion: c.version,
      events: [],
    }
    audit.push({
      type: 'credential.revoked',
      at: iso,
      caseId,
      actor,
      data: { agentId: handlerAgent(c) ?? requester.id, reason: 'risk_raised', risk: input.risk, epoch: epochAfter },
    })
  }

  const action: ActionRecord = {
    id: actionId,
    caseId,
    agentId: requester.id,
    requesterKind: requester.kind,
    grantId: requester.grantId,
    tool: tool.name,
    params: input.params,
    paramsDigest,
    outcome: result.outcome,
    state,
    decisionId,
    createdAt: iso,
    updatedAt: iso,
    resultStatus: null,
    resultDigest: null,
    error: null,
  }
  await deps.store.commitAction({
    action,
    decision,
    expectedEpoch: claims.epoch,
    caseChange,
    approval,
    confirmation,
    issued,
    audit,
  })

  const base: ActionResponse = {
    actionId,
    caseId,
    tool: tool.name,
    outcome: result.outcome,
    state,
    paramsDigest,
    decision: { id: decisionId, rules: result.rules, explanation: result.explanation, policy: result.policy },
    ...(approval === undefined
      ? {}
      : { approval: { id: approval.id, approverRole: approval.approverRole, expiresAt: approval.expiresAt } }),
    ...(confirmation === undefined
      ? {}
      : {
          confirmation: { id: confirmation.id, expiresAt: confirmation.expiresAt, digest: confirmation.digest },
        }),
    ...(caseChange !== undefined && result.outcome === 'escalate' ? { handler: caseChange.case.handler } : {}),
    ...(credential === undefined ? {} : { credential }),
  }
  if (state === 'authorized' && tool.connector !== null) {
    const done = await executeAction(deps, action, input.params, epochAfter, actor)
    return {
      ...base,
      state: done.state,
      result: done.result,
      ...(done.output === undefined ? {} : { output: done.output }),
    }
  }
  return base
}

/**
 * Why an agent may use no tool of a case with a credential (its case and epoch) at all, or null when it holds the
 * open case at that epoch: the checks every action starts with, and every MCP request.
 */
export function authorityProblem(
  c: CaseRecord | undefined,
  agent: AgentRecord,
  claims: Pick<CredentialClaims, 'case' | 'epoch'>,
): {
  readonly code: 'CASE_NOT_FOUND' | 'CASE_CLOSED' | 'CREDENTIAL_REVOKED' | 'NOT_CASE_HANDLER'
  readonly message: string
} | null {
  if (c === undefined) return { code: 'CASE_NOT_FOUND', message: `no case with id '${claims.case}'` }
  if ((c.authorityEpoch ?? 0) !== claims.epoch) {
    return {
      code: 'CREDENTIAL_REVOKED',
      message: `the case's authority changed since the credential was issued (handoff, risk, close or suspension); ask for a new token`,
    }
  }
  if (c.state !== 'open') return { code: 'CASE_CLOSED', message: `case '${c.id}' is ${c.state}` }
  if (agent.state !== 'active') return { code: 'CREDENTIAL_REVOKED', message: `agent '${agent.id}' is ${agent.state}` }
  if (agentHoldsCase(c.handler, agent.id) === null) {
    return { code: 'NOT_CASE_HANDLER', message: `agent '${agent.id}' does not handle case '${c.id}'` }
  }
  return null
}

/**
 * Executes an authorized action through its connector, exactly once: the `authorized → executing` move is the
 * claim (a second caller finds it gone and gets `APPROVAL_ALREADY_EXECUTED`). The parameters are checked against
 * the digest recorded at authorization (`PARAMS_MISMATCH` otherwise). A per-call credential bound to the case, the
 * tool and the parameter digest goes with the call; status and sha256 of the response are recorded and audited.
 */
export async function executeAction(
  deps: AuthorityDeps,
  action: ActionRecord,
  params: Readonly<Record<string, unknown>>,
  epoch: number,
  actor: { kind: string; id: string },
): Promise<{ state: ActionState; result: NonNullable<ActionResponse['result']>; output?: ToolOutput }> {
  const tool = deps.catalog.get(action.tool)
  if (tool?.connector === null || tool === undefined) {
    throw new BatonError('TOOL_NOT_FOUND', `tool '${action.tool}' has no connector to execute through`)
  }
  const at = deps.now()
  const iso = at.toISOString()
  if (canonicalDigest(params) !== action.paramsDigest) {
    await deps.store.appendAudit([
      {
        type: 'action.refused',
        at: iso,
        caseId: action.caseId,
        actor,
        data: { actionId: action.id, code: 'PARAMS_MISMATCH', paramsDigest: action.paramsDigest },
      },
    ])
    throw new BatonError(
      'PARAMS_MISMATCH',
      'the parameters differ from those that were authorized; nothing was executed',
    )
  }
  const minted = await mintFor(
    deps,
    action.agentId,
    action.caseId,
    tool,
    action.id,
    action.paramsDigest,
    epoch,
    'call',
    at,
  )
  const claimed = await deps.store.moveAction(
    action.id,
    ['authorized'],
    'executing',
    iso,
    {},
    [issuedEntry(minted.claims, action.caseId, actor, iso)],
    [minted.record],
  )
  if (!claimed) {
    const now = await deps.store.getAction(action.id)
    throw new BatonError(
      'APPROVAL_ALREADY_EXECUTED',
      `action ${action.id} is ${now?.state ?? 'unknown'}: it executes once; nothing was done`,
    )
  }
  let status: number | null = null
  let digest: string | null = null
  let error: string | null = null
  let output: ToolOutput | undefined
  const connector = tool.connector
  try {
    if (connector.kind === 'mcp') {
      // The upstream gets what an HTTP tool service gets, in the request's _meta: the per-call credential (to
      // introspect) and the action id (to make the call idempotent).
      const result = await deps.mcp({
        upstream: connector.upstream,
        tool: connector.tool,
        arguments: params,
        meta: { [MCP_META.credential]: minted.token, [MCP_META.action]: action.id, [MCP_META.case]: action.caseId },
      })
      digest = canonicalDigest(result)
      output = { kind: 'mcp', result }
      if (result.isError) error = 'the upstream MCP tool answered with isError'
    } else {
      const res = await deps.connector({
        url: connector.url,
        method: connector.method,
        credential: minted.token,
        idempotencyKey: action.id,
        body: { tool: action.tool, params, caseId: action.caseId, actionId: action.id },
      })
      status = res.status
      digest = createHash('sha256').update(res.body).digest('hex')
      output = { kind: 'http', status: res.status, body: res.body }
    }
  } catch (e) {
    error = e instanceof Error ? `${e.name}: ${e.message}` : 'connector call failed'
  }
  const ok =
    error === null && (connector.kind === 'mcp' ? digest !== null : status !== null && status >= 200 && status < 300)
  const state: ActionState = ok ? 'executed' : 'failed'
  const doneAt = deps.now().toISOString()
  await deps.store.moveAction(
    action.id,
    ['executing'],
    state,
    doneAt,
    { resultStatus: status, resultDigest: digest, error },
    [
      {
        type: ok ? 'action.executed' : 'action.failed',
        at: doneAt,
        caseId: action.caseId,
        actor,
        data: {
          actionId: action.id,
          tool: action.tool,
          paramsDigest: action.paramsDigest,
          status,
          responseDigest: digest,
          error,
          credential: minted.claims.jti,
        },
      },
    ],
  )
  return { state, result: { status, digest, error }, ...(output === undefined ? {} : { output }) }
}

/** Mints a per-call (`call`) or scoped credential for one action: its case, tool, parameter digest and epoch. */
export async function mintFor(
  deps: AuthorityDeps,
  agentId: string,
  caseId: string,
  tool: CatalogTool,
  actionId: string,
  paramsDigest: string,
  epoch: number,
  kind: 'call' | 'scoped',
  at: Date,
): Promise<{ token: string; claims: CredentialClaims; record: IssuedCredentialRecord; audience: string }> {
  // The connector's URL is the audience: a credential for one tool service is useless at another.
  const audience = tool.connector?.url ?? `tool:${tool.name}`
  const { token, claims } = await deps.signer.mint(
    {
      aud: audience,
      sub: agentId,
      case: caseId,
      tools: [tool.name],
      epoch,
      kind,
      jti: deps.newId('cred'),
      pd: paramsDigest,
      act: actionId,
      ttlSeconds: deps.callTtlSeconds,
    },
    at,
  )
  const record: IssuedCredentialRecord = {
    jti: claims.jti,
    agentId,
    caseId,
    kind,
    tools: [tool.name],
    epoch,
    issuedAt: at.toISOString(),
    expiresAt: new Date(claims.exp * 1000).toISOString(),
  }
  return { token, claims, record, audience }
}

/** The `credential.issued` audit entry of a minted credential (its id and scope, never the credential). */
export function issuedEntry(
  claims: CredentialClaims,
  caseId: string,
  actor: { kind: string; id: string },
  at: string,
): AuditEntryBody {
  return {
    type: 'credential.issued',
    at,
    caseId,
    actor,
    data: {
      jti: claims.jti,
      kind: claims.kind,
      tools: claims.tools,
      aud: claims.aud,
      epoch: claims.epoch,
      exp: claims.exp,
      paramsDigest: claims.pd,
      actionId: claims.act,
    },
  }
}

/** The agent that handles the case, if one does (its credentials are what an epoch move revokes). */
function handlerAgent(c: CaseRecord): string | undefined {
  return c.handler.kind === 'operator' ? undefined : c.handler.agentId
}

function mergeRisk(
  prior: Readonly<Partial<Record<RiskCategory, boolean>>>,
  raised: readonly RiskCategory[],
): Partial<Record<RiskCategory, boolean>> {
  const out: Partial<Record<RiskCategory, boolean>> = {}
  for (const r of RISK_CATEGORIES) if (prior[r] === true || raised.includes(r)) out[r] = true
  return out
}

/**
 * The facts a tool rule reads: the case (its sticky risk as `signals.risk`; message-level signals belong to
 * routing and read as their defaults here), the customer, the acting agent or delegate, the tool and its parameters.
 */
export function actionFacts(
  policy: CompiledPolicy,
  c: CaseRecord,
  risk: Readonly<Partial<Record<RiskCategory, boolean>>>,
  customer: CustomerRecord | undefined,
  actor: ActorFacts,
  tool: string,
  params: Readonly<Record<string, unknown>>,
  queues: Record<string, { depth: number; oldestSince: string | null }>,
  at: Date,
): Facts {
  const queue: Record<string, QueueFacts> = {}
  for (const q of policy.known.queues) {
    const s = queues[q]
    queue[q] = { depth: s?.depth ?? 0, oldest_wait_s: s?.oldestSince ? seconds(at, s.oldestSince) : 0 }
  }
  return {
    case: {
      id: c.id,
      channel: c.channel,
      state: c.state,
      ...holderFacts(c),
      handoffs: c.handoffs,
      messages: c.messages,
      age_s: seconds(at, c.createdAt),
      time_in_state_s: seconds(at, c.stateSince),
      risk_seen: Object.values(risk).some(Boolean),
    },
    signals: {
      intent: '',
      intent_confidence: 0,
      intent_class: {},
      agent_confidence: -1,
      language: 'und',
      secrets: 0,
      secret_kinds: [],
      pii: [],
      sensitivity: [],
      risk: Object.fromEntries(RISK_CATEGORIES.map((r) => [r, risk[r] === true])) as Facts['signals']['risk'],
      topics: {},
      duplicate_of: '',
      custom: {},
    },
    customer: { id: c.customerId, tier: customer?.tier ?? '', verified: customer?.verified ?? false },
    actor,
    queue,
    params,
    tool,
  }
}

function seconds(at: Date, since: string): number {
  return Math.max(0, Math.floor((at.getTime() - Date.parse(since)) / 1000))
}

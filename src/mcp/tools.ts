import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import {
  CallToolRequestSchema,
  type CallToolResult,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js'
import type { FastifyBaseLogger } from 'fastify'
import { canonicalDigest } from '../approvals/approval.js'
import type { CaseRecord } from '../cases/records.js'
import type { AuthorityDeps } from '../credentials/deps.js'
import { auditRefusal } from '../credentials/oauth.js'
import { scopesForRoute } from '../delegation/document.js'
import { delegateCaseView } from '../delegation/requests.js'
import { BatonError, type FieldProblem } from '../errors.js'
import type { Services } from '../http/services.js'
import { requestHandoff } from '../queues/work.js'
import { redactedText } from '../signals/sensitive.js'
import { RISK_CATEGORIES, type RiskCategory } from '../signals/types.js'
import type { CustomerRecord, Store } from '../store/ports.js'
import { type ActionResponse, AUDITED_REFUSALS, requestAction, requestDelegateAction } from '../tools/actions.js'
import { buildCatalog, type CatalogTool } from '../tools/catalog.js'
import { type UsableTool, usableDelegateTools, usableTools } from '../tools/usable.js'
import type { ToolSpec } from '../workspace/workspace.js'
import { actorOf, type McpPrincipal } from './auth.js'
import type { McpSession } from './sessions.js'

/** `_meta` keys Baton reads and writes on the MCP gateway. */
export const META = {
  /** On a `tools/call`: risk indicators the agent raises with the call (as the HTTP action's `risk`). */
  risk: 'dev.baton/risk',
  /** On a listed tool: the outcomes a call could get; on a result: the action Baton recorded. */
  outcomes: 'dev.baton/outcomes',
  action: 'dev.baton/action',
} as const

export const CONTROL_TOOLS = {
  case: 'baton_case',
  handoff: 'baton_request_handoff',
  approval: 'baton_approval_status',
} as const

const CONTROL_SPECS: readonly ToolSpec[] = [
  {
    name: CONTROL_TOOLS.case,
    title: 'The case',
    description:
      'The case as you may see it: its messages (secrets and card numbers redacted), handler, customer, risk, and the tools you may use on it now with what a call could get.',
    risk: 'read',
    params: { type: 'object', additionalProperties: false, properties: {} },
  },
  {
    name: CONTROL_TOOLS.handoff,
    title: 'Ask for a human',
    description:
      'Hand the case to a human, with your reason. The policy decides which queue; your authority on the case ends at once.',
    risk: 'low',
    params: {
      type: 'object',
      additionalProperties: false,
      required: ['reason'],
      properties: { reason: { type: 'string', minLength: 3, maxLength: 2000 } },
    },
  },
  {
    name: CONTROL_TOOLS.approval,
    title: 'Approval status',
    description:
      'The state of an approval you are waiting on (pending, approved, denied, expired, superseded) and, once approved, what its action did.',
    risk: 'read',
    params: {
      type: 'object',
      additionalProperties: false,
      required: ['approval_id'],
      properties: { approval_id: { type: 'string', minLength: 1, maxLength: 128 } },
    },
  },
]
const CONTROL = buildCatalog(CONTROL_SPECS, {})

export interface McpFace {
  readonly services: Services
  readonly log: FastifyBaseLogger
  readonly version: string
}

/** The principal a request was authenticated as (the face puts it on the request before the SDK sees it). */
export function principalOf(extra: { authInfo?: { extra?: Record<string, unknown> } }): McpPrincipal {
  const p = extra.authInfo?.extra?.principal as McpPrincipal | undefined
  if (p === undefined) throw new McpError(ErrorCode.InvalidRequest, 'unauthenticated request')
  return p
}

/** The catalog tools `p` could use on its case now (the case as read for this request), or only tool `only`. */
export async function usableFor(
  s: Services,
  p: McpPrincipal,
  only?: string,
): Promise<{ readonly usable: UsableTool[]; readonly customer: CustomerRecord | undefined }> {
  const { policy } = s.policy.current()
  const [customer, queues] = await Promise.all([
    s.store.getCustomer(p.case.customerId),
    policy.tools.readsQueues ? s.store.queueStats() : Promise.resolve({}),
  ])
  const at = s.authority.now()
  const { catalog, delegation } = s.authority
  const usable =
    p.kind === 'agent'
      ? usableTools(policy, catalog, p.case, customer, p.auth.agent, p.auth.claims, queues, at, only)
      : usableDelegateTools(
          policy,
          catalog,
          delegation,
          p.case,
          customer,
          p.auth.actor,
          p.auth.scopes,
          queues,
          at,
          only,
        )
  return { usable, customer }
}

/**
 * Baton's control tools this principal has: an agent all three; a delegate `baton_case` when a scope lets it read
 * its customer's cases, and `baton_approval_status`, not a handoff (it is the customer's side, not the shop's).
 */
export function controlToolsFor(s: Services, p: McpPrincipal): CatalogTool[] {
  const all = [...CONTROL.values()]
  if (p.kind === 'agent') return all
  const reads = scopesForRoute(s.authority.delegation, p.auth.scopes, 'GET /v1/cases/{id}').length > 0
  return all.filter((t) => t.name === CONTROL_TOOLS.approval || (t.name === CONTROL_TOOLS.case && reads))
}

/**
 * The authority deps of one call, whose store answers the case and customer this request has just read from those
 * reads (every other read and every write goes to the store): the use case reads them again otherwise. Its commit
 * still refuses a case whose authority moved in between (`expectedEpoch`).
 */
function withReadsOf(deps: AuthorityDeps, c: CaseRecord, customer: CustomerRecord | undefined): AuthorityDeps {
  const store: Store = Object.create(deps.store)
  store.getCase = (id) => (id === c.id ? Promise.resolve(c) : deps.store.getCase(id))
  store.getCustomer = (id) =>
    customer !== undefined && id === customer.id ? Promise.resolve(customer) : deps.store.getCustomer(id)
  return { ...deps, store }
}

/** What `tools/list` answers for these usable tools: the catalog tools, then the principal's control tools. */
export function toolList(usable: readonly UsableTool[], control: readonly CatalogTool[]): Tool[] {
  const listed = usable.map((u) => mcpTool(u.tool, [...u.outcomes].sort()))
  return [...listed, ...control.map((t) => mcpTool(t, null))]
}

/** A fingerprint of a tool list: a session is told `list_changed` when it moves. */
export function listSignature(usable: readonly UsableTool[] | null): string {
  return usable === null ? 'none' : usable.map((u) => `${u.tool.name}:${[...u.outcomes].sort().join('|')}`).join(',')
}

function mcpTool(t: CatalogTool, outcomes: readonly string[] | null): Tool {
  return {
    name: t.name,
    title: t.title,
    description: t.description,
    inputSchema: t.params as Tool['inputSchema'],
    annotations: {
      title: t.title,
      readOnlyHint: t.risk === 'read',
      destructiveHint: t.risk === 'high' || t.risk === 'critical',
      openWorldHint: t.connector !== null,
    },
    ...(outcomes === null ? {} : { _meta: { [META.outcomes]: outcomes, 'dev.baton/risk_class': t.risk } }),
  }
}

/** The SDK server of one session: `tools/list` and `tools/call` through Baton's use cases. */
export function createSessionServer(face: McpFace, session: () => McpSession | undefined): Server {
  const s = face.services
  const server = new Server(
    { name: 'baton', title: 'Baton MCP gateway', version: face.version },
    {
      capabilities: { tools: { listChanged: true } },
      instructions:
        "Baton decides every tool call by policy: a call may run, wait for an operator's approval (poll baton_approval_status or end your turn), be denied, or hand the case to a human. Read the case with baton_case; ask for a human with baton_request_handoff.",
    },
  )
  server.setRequestHandler(ListToolsRequestSchema, async (_req, extra) => {
    const p = principalOf(extra)
    const { usable } = await usableFor(s, p)
    const current = session()
    if (current !== undefined) current.listed = listSignature(usable)
    return { tools: toolList(usable, controlToolsFor(s, p)) }
  })
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const p = principalOf(extra)
    const { name } = req.params
    const args = (req.params.arguments ?? {}) as Record<string, unknown>
    const ref = session()?.ref ?? ''
    try {
      if (controlToolsFor(s, p).some((t) => t.name === name)) return await callControl(face, p, name, args, ref)
      return await callCatalog(face, p, name, args, req.params._meta, ref)
    } catch (e) {
      if (e instanceof McpError) throw e
      if (e instanceof BatonError) {
        if (e.code === 'STORE_UNAVAILABLE' || e.code === 'INTERNAL') {
          throw new McpError(ErrorCode.InternalError, e.message)
        }
        return errorResult(`${name}: ${e.message}`, {
          code: e.code,
          ...(e.fields.length > 0 ? { errors: e.fields } : {}),
        })
      }
      face.log.error({ err: e, tool: name }, 'MCP tool call failed')
      throw new McpError(ErrorCode.InternalError, 'internal error')
    }
  })
  // Methods this server does not offer (resources, prompts, anything else): refused as the SDK would, and audited.
  server.fallbackRequestHandler = async (req, extra) => {
    const p = extra.authInfo?.extra?.principal as McpPrincipal | undefined
    if (p !== undefined) {
      await refuse(s, p, 'NOT_FOUND', `unknown MCP method '${String(req.method).slice(0, 100)}'`, 'MCP request')
    }
    throw new McpError(ErrorCode.MethodNotFound, 'Method not found')
  }
  return server
}

async function refuse(
  s: Services,
  p: McpPrincipal,
  code: BatonError['code'],
  reason: string,
  route: string,
  tool?: string,
): Promise<void> {
  await auditRefusal(s.authority, {
    actor: actorOf(p),
    code,
    reason,
    route,
    caseId: p.caseId,
    ...(tool === undefined ? {} : { tool: tool.slice(0, 128) }),
  })
}

async function callCatalog(
  face: McpFace,
  p: McpPrincipal,
  name: string,
  args: Record<string, unknown>,
  meta: Record<string, unknown> | undefined,
  ref: string,
): Promise<CallToolResult> {
  const s = face.services
  const { usable, customer } = await usableFor(s, p, name)
  if (!usable.some((u) => u.tool.name === name)) {
    // Not in this principal's list: the MCP "unknown tool" error, whatever the reason, so the list stays the truth.
    const known = s.authority.catalog.has(name)
    await refuse(
      s,
      p,
      known ? 'TOOL_NOT_GRANTED' : 'TOOL_NOT_FOUND',
      known
        ? `tool '${name}' is not among the tools ${p.kind} '${p.auth.actor.id}' may use on this case now`
        : `no tool '${name.slice(0, 128)}'`,
      'MCP tools/call',
      name,
    )
    throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${redactedText(name.slice(0, 128))}`)
  }
  const risk = riskOf(meta)
  if (risk instanceof BatonError)
    return errorResult(`${name}: ${risk.message}`, { code: risk.code, errors: risk.fields })
  let r: ActionResponse
  const deps = withReadsOf(s.authority, p.case, customer)
  const input = { tool: name, params: args, risk, via: { face: 'mcp' as const, session: ref } }
  try {
    // The same use cases as POST /v1/cases/{id}/actions, for either principal.
    r =
      p.kind === 'agent'
        ? await requestAction(deps, p.auth, p.caseId, input)
        : await requestDelegateAction(deps, p.auth, p.caseId, input)
  } catch (e) {
    // as over HTTP: an agent's refusals of the list, every refusal of a delegate's request (with its chain)
    if (e instanceof BatonError && (p.kind === 'delegate' || AUDITED_REFUSALS.has(e.code))) {
      await refuse(s, p, e.code, e.message, 'MCP tools/call', name)
    }
    if (e instanceof BatonError && e.code === 'PARAMS_INVALID') {
      // MCP (2025-11-25): arguments failing the tool's schema are a tool execution error the model can correct.
      return errorResult(`${name}: the arguments do not fit the tool's schema: ${e.message}`, {
        code: e.code,
        errors: e.fields,
      })
    }
    throw e
  }
  return actionResult(r)
}

function riskOf(meta: Record<string, unknown> | undefined): RiskCategory[] | BatonError {
  const v = meta?.[META.risk]
  if (v === undefined) return []
  const bad = (message: string) =>
    new BatonError('PARAMS_INVALID', `_meta.${META.risk}: ${message}`, {
      fields: [{ field: `_meta.${META.risk}`, message }],
    })
  if (!Array.isArray(v) || v.length > RISK_CATEGORIES.length) return bad('expected a list of risk categories')
  const unknown = v.filter((x) => !(RISK_CATEGORIES as readonly unknown[]).includes(x))
  if (unknown.length > 0)
    return bad(`unknown risk ${JSON.stringify(unknown[0])} (one of ${RISK_CATEGORIES.join(', ')})`)
  return [...new Set(v as RiskCategory[])]
}

/** A tool error the model reads: its text and fields may echo the call (a tool name, an argument), so redacted. */
function errorResult(text: string, structured: Record<string, unknown>): CallToolResult {
  const errors = structured.errors as readonly FieldProblem[] | undefined
  return {
    isError: true,
    content: [{ type: 'text', text: redactedText(text) }],
    structuredContent:
      errors === undefined
        ? structured
        : {
            ...structured,
            errors: errors.map((f) => ({ field: redactedText(f.field), message: redactedText(f.message) })),
          },
  }
}

/** An action's response as an MCP tool result. `isError` for deny, escalate and failed executions. */
export function actionResult(r: ActionResponse): CallToolResult {
  const rule = r.decision.explanation.at(-1)
  const why = rule === undefined ? '' : ` (rule ${rule.id}${rule.reason ? `: ${rule.reason}` : ''})`
  const action = {
    actionId: r.actionId,
    outcome: r.outcome,
    state: r.state,
    rules: r.decision.rules,
    paramsDigest: r.paramsDigest,
    ...(r.approval === undefined ? {} : { approval: r.approval }),
    ...(r.confirmation === undefined ? {} : { confirmation: r.confirmation }),
    ...(r.result === undefined ? {} : { result: r.result }),
  }
  const meta = { [META.action]: action }
  const text = (t: string, isError = false): CallToolResult => ({
    ...(isError ? { isError: true } : {}),
    content: [{ type: 'text', text: t }],
    structuredContent: action,
    _meta: meta,
  })
  switch (r.outcome) {
    case 'deny':
      return text(`${r.tool} was denied${why}. Nothing ran.`, true)
    case 'escalate':
      return text(
        `${r.tool} was escalated${why}: the case was handed to ${r.handler?.kind === 'operator' ? `the ${r.handler.queue} queue` : 'a human'}, and your authority on it has ended. Nothing ran.`,
        true,
      )
    case 'confirm':
      return text(
        `${r.tool} waits for the customer's own confirmation ${r.confirmation?.id ?? ''}${why}; it expires at ${r.confirmation?.expiresAt ?? ''}. Once the customer confirms it runs once, with exactly these arguments; you cannot confirm it.`,
      )
    case 'approve':
      return text(
        `${r.tool} waits for approval ${r.approval?.id ?? ''} by a ${r.approval?.approverRole ?? ''} approver${why}; it expires at ${r.approval?.expiresAt ?? ''}. Once approved it runs once, with exactly these arguments. Ask ${CONTROL_TOOLS.approval} with {"approval_id": "${r.approval?.id ?? ''}"} later, or end your turn.`,
      )
  }
  if (r.state === 'credential_issued' && r.credential !== undefined) {
    return {
      content: [
        {
          type: 'text',
          text: `${r.tool} is allowed${why}: call the tool service yourself with this credential (audience ${r.credential.audience}, expires ${r.credential.expiresAt}): ${r.credential.token}`,
        },
      ],
      structuredContent: { ...action, credential: r.credential },
      _meta: meta,
    }
  }
  if (r.state === 'failed') {
    if (r.output?.kind === 'mcp')
      return { ...r.output.result, content: [...r.output.result.content], isError: true, _meta: meta } as CallToolResult
    const status = r.result?.status
    return text(
      `${r.tool} failed: ${r.result?.error ?? `the tool service answered ${status ?? 'nothing'}`}. It is recorded as failed, not executed.`,
      true,
    )
  }
  if (r.output?.kind === 'mcp') {
    return { ...r.output.result, content: [...r.output.result.content], isError: false, _meta: meta } as CallToolResult
  }
  if (r.output?.kind === 'http') {
    const body = new TextDecoder().decode(r.output.body)
    return text(body === '' ? `${r.tool} ran (HTTP ${r.output.status}).` : body)
  }
  if (r.state === 'executed') return text(`${r.tool} is done${why}.`)
  return text(`${r.tool} is allowed and recorded${why} (action ${r.actionId}).`)
}

async function callControl(
  face: McpFace,
  p: McpPrincipal,
  name: string,
  args: Record<string, unknown>,
  ref: string,
): Promise<CallToolResult> {
  const s = face.services
  const tool = CONTROL.get(name) as CatalogTool
  const problems = tool.check(args)
  if (problems !== null) {
    await refuse(s, p, 'PARAMS_INVALID', problemsText(problems), 'MCP tools/call', name)
    return errorResult(`${name}: the arguments do not fit the tool's schema: ${problemsText(problems)}`, {
      code: 'PARAMS_INVALID',
      errors: problems,
    })
  }
  const at = s.authority.now().toISOString()
  const audited = (data: Record<string, unknown>) =>
    s.store.appendAudit([
      {
        type: 'mcp.tool_called',
        at,
        caseId: p.caseId,
        actor: actorOf(p),
        data: { tool: name, paramsDigest: canonicalDigest(args), session: ref, ...data },
      },
    ])
  if (name === CONTROL_TOOLS.handoff && p.kind === 'agent') {
    const change = await requestHandoff(s.work.deps, p.auth.actor, p.caseId, String(args.reason))
    const where = change.handler.kind === 'agent' ? 'an AI agent' : `the ${change.handler.queue} queue`
    return {
      content: [
        {
          type: 'text',
          text: `The case was handed to ${where} (trigger ${change.trigger}); your authority on it has ended.`,
        },
      ],
      structuredContent: { handler: change.handler, trigger: change.trigger, decisionId: change.decisionId },
    }
  }
  if (name === CONTROL_TOOLS.approval) {
    const id = String(args.approval_id)
    const a = await s.store.getApproval(id)
    if (a === undefined || a.caseId !== p.caseId || a.requester !== p.auth.actor.id) {
      await refuse(
        s,
        p,
        'APPROVAL_NOT_FOUND',
        `no approval '${id.slice(0, 128)}' of this ${p.kind} on this case`,
        'MCP tools/call',
        name,
      )
      return errorResult(`${name}: no approval '${id}' that you asked for on this case`, { code: 'APPROVAL_NOT_FOUND' })
    }
    const action = await s.store.getAction(a.actionId)
    await audited({ approvalId: a.id, state: a.state })
    const view = {
      approvalId: a.id,
      tool: a.tool,
      state: a.state,
      approverRole: a.approverRole,
      expiresAt: a.expiresAt,
      decidedAt: a.decidedAt,
      reason: a.reason,
      action:
        action === undefined
          ? null
          : {
              id: action.id,
              state: action.state,
              result: { status: action.resultStatus, digest: action.resultDigest, error: action.error },
            },
    }
    return { content: [{ type: 'text', text: JSON.stringify(view) }], structuredContent: view }
  }
  const [events, { usable, customer }] = await Promise.all([s.store.listCaseEvents(p.caseId), usableFor(s, p)])
  await audited({})
  const c = p.case
  const tools = usable.map((u) => ({ name: u.tool.name, outcomes: [...u.outcomes].sort() }))
  if (p.kind === 'delegate') {
    // a delegate reads what it would over HTTP (the conversation and the state), and what it may ask for
    const view = { ...delegateCaseView(c, events), tools, scopes: p.auth.scopes }
    return { content: [{ type: 'text', text: JSON.stringify(view) }], structuredContent: view }
  }
  const view = {
    id: c.id,
    subject: c.subject,
    channel: c.channel,
    state: c.state,
    handler: c.handler,
    handoffs: c.handoffs,
    risk: RISK_CATEGORIES.filter((r) => c.risk[r] === true),
    customer: { id: c.customerId, tier: customer?.tier ?? '', verified: customer?.verified ?? false },
    messages: events
      .filter((e) => e.type === 'message.received')
      .map((e) => ({ at: e.at, author: e.data.author, text: e.data.text })),
    tools,
    credential: { tools: p.auth.claims.tools, expiresAt: new Date(p.auth.claims.exp * 1000).toISOString() },
  }
  return { content: [{ type: 'text', text: JSON.stringify(view) }], structuredContent: view }
}

function problemsText(problems: readonly FieldProblem[]): string {
  return problems.map((x) => `${x.field}: ${x.message}`).join('; ')
}

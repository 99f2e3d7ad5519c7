import type { FastifyInstance } from 'fastify'
import { canonicalDigest } from '../approvals/approval.js'
import { introspect, issueAccessToken, type TokenRequest } from '../credentials/oauth.js'
import {
  type ExchangeRequest,
  exchangeToken,
  introspectDelegate,
  isDelegateToken,
  TOKEN_EXCHANGE_GRANT,
} from '../delegation/token-exchange.js'
import { BatonError } from '../errors.js'
import {
  activeOwner,
  addAgentCredential,
  privilegeReport,
  registerAgent,
  reviewAgent,
  transitionAgent,
} from '../identity/registry.js'
import { rerouteCasesOf } from '../queues/work.js'
import { RISK_CATEGORIES, type RiskCategory } from '../signals/types.js'
import type { Role } from '../store/ports.js'
import { AUDITED_REFUSALS, requestAction, requestDelegateAction } from '../tools/actions.js'
import { actionBody, actionResult, agentSchema, agentView, operatorView, tokenBody } from './authority-schemas.js'
import { errorHandler, type Problem, problemOf, sendProblem, toBatonError } from './problem.js'
import { FORM_OR_JSON_BODY } from './protocol.js'
import { errorResponses, idParam, problem } from './schemas.js'
import { agentAuthOf, delegateAuthOf, refusal } from './server.js'
import type { Services } from './services.js'

const ALL: readonly Role[] = ['admin', 'service', 'operator']
const READERS: readonly Role[] = ['admin', 'operator']
const ADMIN: readonly Role[] = ['admin']

/** How long the follow-up of a suspension waits for the request that does it itself (see transitionAgent). */
const FOLLOW_UP_GRACE_MS = 30_000

const lifecycle = {
  type: 'object',
  additionalProperties: false,
  required: ['reason'],
  properties: { reason: { type: 'string', minLength: 1, maxLength: 1000 } },
} as const

/** A problem document that also carries OAuth's `error` and `error_description` (RFC 6749 §5.2). */
const oauthProblem = {
  ...problem,
  properties: { ...problem.properties, error: { type: 'string' }, error_description: { type: 'string' } },
} as const

/** OAuth's `error` for a refusal at the token endpoint (RFC 6749 §5.2, RFC 7523 §3.1). */
function oauthError(e: BatonError): string {
  switch (e.code) {
    case 'VALIDATION_FAILED':
      return e.fields.some((f) => f.field === 'grant_type') ? 'unsupported_grant_type' : 'invalid_request'
    case 'TOOL_NOT_GRANTED':
      return 'invalid_scope'
    case 'CREDENTIAL_INVALID':
    case 'CREDENTIAL_EXPIRED':
    case 'CREDENTIAL_REVOKED':
    case 'UNAUTHENTICATED':
      return 'invalid_client'
    case 'AGENT_INACTIVE':
      return 'unauthorized_client'
    case 'CASE_NOT_FOUND':
    case 'CASE_CLOSED':
    case 'NOT_CASE_HANDLER':
      return 'invalid_grant'
    default:
      return 'invalid_request'
  }
}

/**
 * The token endpoint's answer to a refusal: RFC 6749 §5.2 says 400 for every OAuth error but `invalid_client`
 * (401), whatever status the code has elsewhere in the API; the problem document keeps Baton's `code` beside OAuth's
 * `error` and `error_description`. A server-side failure (5xx) stays what it is, without an OAuth error.
 */
export function tokenEndpointProblem(e: BatonError, instance: string, exchange = false): Problem {
  const p = problemOf(e, instance)
  if (p.status >= 500) return p
  const error = exchange ? exchangeError(e) : oauthError(e)
  return { ...p, status: error === 'invalid_client' ? 401 : 400, error, error_description: p.detail } as Problem
}

/**
 * The error of a refused token exchange (RFC 8693 §2.2.2): a subject or actor token that is invalid or unacceptable
 * by policy is `invalid_request` (400); scopes beyond what the chain confers are `invalid_scope` (400).
 */
function exchangeError(e: BatonError): string {
  if (e.code === 'SCOPE_NOT_GRANTED') return 'invalid_scope'
  if (e.code === 'VALIDATION_FAILED' && e.fields.some((f) => f.field === 'grant_type')) return 'unsupported_grant_type'
  return 'invalid_request'
}

/** Agents (registry, lifecycle, credentials, privilege report), OAuth endpoints, JWKS and tool actions. */
export function registerAgentRoutes(app: FastifyInstance, s: Services): void {
  const deps = s.authority
  // OAuth clients send form-encoded bodies (RFC 6749 §4.4.2, RFC 7662 §2.1).
  if (!app.hasContentTypeParser('application/x-www-form-urlencoded')) {
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)))
    })
  }

  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        tags: ['credentials'],
        summary: 'Public keys (JWKS) that verify every credential Baton mints (EdDSA, Ed25519)',
        security: [],
      },
    },
    async (_req, reply) => reply.header('cache-control', 'public, max-age=300').send(await deps.signer.jwks()),
  )

  app.post(
    '/v1/oauth/token',
    {
      schema: {
        tags: ['credentials'],
        summary:
          "Token endpoint. client_credentials: an agent authenticates with a JWT assertion (RFC 7523) or its client secret and gets a short-lived access token for one case. urn:ietf:params:oauth:grant-type:token-exchange (RFC 8693): a customer's delegate, authenticated by its assertion (actor_token), exchanges a grant id or an upstream delegate's token (subject_token) for an access token for that customer (sub), naming the chain of delegates (act), within the grant's scopes, for at most 5 minutes",
        security: [],
        consumes: FORM_OR_JSON_BODY,
        body: tokenBody,
        response: {
          200: {
            type: 'object',
            properties: {
              access_token: { type: 'string' },
              token_type: { type: 'string' },
              issued_token_type: { type: 'string', description: 'token exchange only' },
              expires_in: { type: 'integer' },
              scope: { type: 'string' },
              case_id: { type: 'string', description: 'client_credentials only' },
              grant: { type: 'string', description: 'token exchange only: the grant the token acts under' },
            },
          },
          400: {
            ...oauthProblem,
            description:
              "OAuth error (RFC 6749 §5.2): invalid_request, unsupported_grant_type, invalid_scope, invalid_grant (case unknown, closed or not handled by the agent), unauthorized_client (agent not active). A refused token exchange (RFC 8693 §2.2.2) is invalid_request (a subject or actor token invalid or unacceptable: unknown, revoked, expired or mismatched grant, a chain past max_chain or forbidding sub-delegation, a suspended delegate, a replayed, unsigned, mis-signed or mis-addressed assertion) or invalid_scope (scopes beyond the grant); Baton's code names the reason",
          },
          401: { ...oauthProblem, description: 'invalid_client: the client assertion or secret does not authenticate' },
          503: { ...problem, description: 'The store is unavailable' },
        },
      },
      // Every refusal here, also of the body's shape or media type, is an OAuth error (RFC 6749 §5.2).
      errorHandler: (err, req, reply) => {
        const be = err instanceof BatonError ? err : toBatonError(err)
        if (be === undefined) return errorHandler(err, req, reply)
        reply.header('cache-control', 'no-store')
        const exchange = (req.body as { grant_type?: unknown } | undefined)?.grant_type === TOKEN_EXCHANGE_GRANT
        return sendProblem(reply, tokenEndpointProblem(be, '/v1/oauth/token', exchange))
      },
    },
    async (req, reply) => {
      reply.header('cache-control', 'no-store')
      const body = req.body as TokenRequest & ExchangeRequest
      // RFC 8693 token exchange (a customer's delegate) or client_credentials (an AI agent); refusals: errorHandler
      if (body.grant_type === TOKEN_EXCHANGE_GRANT) return reply.send(await exchangeToken(deps, body))
      return reply.send(await issueAccessToken(deps, body))
    },
  )

  app.post(
    '/v1/oauth/introspect',
    {
      config: { roles: ALL },
      schema: {
        tags: ['credentials'],
        summary:
          'RFC 7662 introspection: active only while the credential verifies, has not expired, its agent is active and its case has not changed hands or risk; pass params to check a call credential against them',
        consumes: FORM_OR_JSON_BODY,
        body: {
          type: 'object',
          required: ['token'],
          properties: {
            token: { type: 'string', minLength: 1, maxLength: 8192 },
            token_type_hint: { type: 'string' },
            params: {
              description: 'JSON object, or its JSON text in a form body: the parameters about to be executed',
              anyOf: [{ type: 'object' }, { type: 'string', maxLength: 65536 }],
            },
          },
        },
        response: { 200: { type: 'object', additionalProperties: true, properties: { active: { type: 'boolean' } } } },
      },
    },
    async (req) => {
      const b = req.body as { token: string; params?: unknown }
      let paramsDigest: string | undefined
      if (b.params !== undefined) {
        try {
          paramsDigest = canonicalDigest(typeof b.params === 'string' ? JSON.parse(b.params) : b.params)
        } catch {
          throw new BatonError('VALIDATION_FAILED', 'params: expected a JSON object', {
            fields: [{ field: 'params', message: 'expected a JSON object' }],
          })
        }
      }
      if (isDelegateToken(b.token)) return introspectDelegate(deps, b.token)
      return introspect(deps, b.token, { paramsDigest })
    },
  )

  app.get(
    '/v1/agents',
    {
      config: { roles: READERS },
      schema: {
        tags: ['agents'],
        summary: 'Every registered AI agent',
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: agentView } } } },
      },
    },
    async () => ({ items: await s.store.listAgents() }),
  )
  app.get(
    '/v1/reports/privileges',
    {
      config: { roles: ADMIN },
      schema: {
        tags: ['agents'],
        summary:
          'Privilege report: per agent, granted vs used tools over a period, outstanding credentials, last owner review, findings',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            from: { type: 'string', format: 'date-time' },
            to: { type: 'string', format: 'date-time' },
            days: {
              type: 'string',
              pattern: '^[1-9][0-9]{0,3}$',
              description: 'period length when from is absent (30)',
            },
          },
        },
      },
    },
    async (req) => {
      const q = req.query as { from?: string; to?: string; days?: string }
      const to = q.to === undefined ? deps.now() : new Date(q.to)
      const days = Number(q.days ?? 30)
      const from = q.from === undefined ? new Date(to.getTime() - days * 86_400_000) : new Date(q.from)
      const operators = (await s.store.listOperators()).map((o) => o.id)
      const items = await privilegeReport(deps, from, to, activeOwner(operators))
      return { from: from.toISOString(), to: to.toISOString(), items }
    },
  )
  app.get(
    '/v1/agents/:id',
    {
      config: { roles: READERS },
      schema: { tags: ['agents'], summary: 'One agent', params: idParam, response: { 200: agentView, 404: problem } },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const a = await s.store.getAgent(id)
      if (a === undefined) throw new BatonError('AGENT_NOT_FOUND', `no agent with id '${id}'`)
      const credentials = (await s.store.listAgentCredentials(id)).map(({ secretHash: _h, ...c }) => c)
      return { ...a, credentials }
    },
  )
  app.post(
    '/v1/agents',
    {
      config: { roles: ADMIN },
      schema: {
        tags: ['agents'],
        summary: 'Register an AI agent (state provisioned unless given); audited',
        body: agentSchema,
        response: { 201: agentView, ...errorResponses, 409: problem },
      },
    },
    async (req, reply) => {
      const b = req.body as {
        id: string
        owner: string
        purpose: string
        model?: string
        tools: string[]
        closure?: string[]
        state?: 'provisioned' | 'active'
      }
      const unknown = b.tools.filter((t) => !deps.catalog.has(t))
      if (unknown.length > 0) {
        throw new BatonError('VALIDATION_FAILED', `tools: unknown ${unknown.join(', ')}`, {
          fields: unknown.map((t) => ({ field: 'tools', message: `unknown tool '${t}'` })),
        })
      }
      const a = await registerAgent(deps, req.actor, {
        id: b.id,
        owner: b.owner,
        purpose: b.purpose,
        model: b.model ?? '',
        tools: b.tools,
        closure: b.closure ?? ['resolved'],
        state: b.state ?? 'provisioned',
      })
      return reply.code(201).send(a)
    },
  )
  for (const [verb, to] of [
    ['activate', 'active'],
    ['suspend', 'suspended'],
    ['retire', 'retired'],
  ] as const) {
    app.post(
      `/v1/agents/:id/${verb}`,
      {
        config: { roles: ADMIN },
        schema: {
          tags: ['agents'],
          summary: `${verb[0]?.toUpperCase()}${verb.slice(1)} an agent (audited, with a reason)${to === 'active' ? '' : '; revokes every credential it holds at once, and decides again every open case it held (rerouted: where each went)'}`,
          params: idParam,
          body: lifecycle,
          response: {
            200: {
              type: 'object',
              properties: {
                agent: agentView,
                revokedCases: { type: 'array', items: { type: 'string' } },
                rerouted: {
                  type: 'array',
                  description: 'the open cases the agent held, each decided again (empty for activate)',
                  items: {
                    type: 'object',
                    properties: {
                      caseId: { type: 'string' },
                      handler: { type: 'object', additionalProperties: true },
                      decisionId: { type: 'string' },
                    },
                  },
                },
              },
            },
            ...errorResponses,
            404: problem,
            409: problem,
          },
        },
      },
      async (req) => {
        const { id } = req.params as { id: string }
        const { reason } = req.body as { reason: string }
        const r = await transitionAgent(deps, req.actor, id, to, reason, { followUpAfterMs: FOLLOW_UP_GRACE_MS })
        // this node's intake sees the change at once (other nodes within a second; their commits check it anyway)
        s.intake.agentStates?.invalidate()
        if (r.followUp === undefined) return { agent: r.agent, revokedCases: r.revokedCases, rerouted: [] }
        // the cases it held are decided again now; the durable timer stored with the change is the backstop, due
        // once this request has had time to do it (a node that dies meanwhile leaves it to any other)
        const rerouted = await rerouteCasesOf(s.work.deps, req.actor, id, r.reason)
        await s.work.timers.cancel(r.followUp.kind, r.followUp.key)
        return { agent: r.agent, revokedCases: r.revokedCases, rerouted }
      },
    )
  }
  app.post(
    '/v1/agents/:id/review',
    {
      config: { roles: ADMIN },
      schema: {
        tags: ['agents'],
        summary: "Record the owner's review of the agent's privileges",
        params: idParam,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['by'],
          properties: { by: { type: 'string', minLength: 1, maxLength: 200 } },
        },
        response: { 200: agentView, ...errorResponses, 404: problem },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      return reviewAgent(deps, req.actor, id, (req.body as { by: string }).by)
    },
  )
  app.post(
    '/v1/agents/:id/credentials',
    {
      config: { roles: ADMIN },
      schema: {
        tags: ['agents'],
        summary:
          'Register an authentication credential for an agent: an Ed25519 public JWK (for RFC 7523 assertions) or a client secret (shown once)',
        params: idParam,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['kind'],
          properties: {
            kind: { type: 'string', enum: ['public_key', 'secret'] },
            jwk: {
              type: 'object',
              properties: { kty: { type: 'string' }, crv: { type: 'string' }, x: { type: 'string' } },
            },
          },
        },
        response: {
          201: {
            type: 'object',
            properties: {
              credential: { type: 'object', additionalProperties: true },
              secret: { type: 'string', description: 'shown once' },
            },
          },
          ...errorResponses,
          404: problem,
          409: problem,
        },
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string }
      const b = req.body as { kind: 'public_key' | 'secret'; jwk?: Record<string, unknown> }
      if (b.kind === 'public_key' && b.jwk === undefined) {
        throw new BatonError('VALIDATION_FAILED', 'jwk: required for kind public_key', {
          fields: [{ field: 'jwk', message: 'is required' }],
        })
      }
      const r = await addAgentCredential(
        deps,
        req.actor,
        id,
        b.kind === 'public_key' ? { kind: 'public_key', jwk: b.jwk ?? {} } : { kind: 'secret' },
      )
      return reply.code(201).header('cache-control', 'no-store').send(r)
    },
  )

  app.get(
    '/v1/operators',
    {
      config: { roles: ALL },
      schema: {
        tags: ['agents'],
        summary: 'Human operators: roles, skills, languages, capacity',
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: operatorView } } } },
      },
    },
    async () => ({ items: await s.store.listOperators() }),
  )

  app.post(
    '/v1/cases/:id/actions',
    {
      config: { agent: true, delegate: 'tool' },
      schema: {
        tags: ['actions'],
        summary:
          "The case's AI agent, or a delegate of the case's customer (a scope unlocking the tool, within every limit of its chain), asks to call a tool: allow (executed through the connector, or a scoped credential handed back), approve (a pending approval), confirm (the customer's own confirmation), deny, or escalate (the case goes to a human)",
        security: [{ agentToken: [] }, { delegateToken: [] }],
        params: idParam,
        body: actionBody,
        response: {
          200: actionResult,
          202: actionResult,
          ...errorResponses,
          404: problem,
          409: problem,
          422: problem,
          502: problem,
        },
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string }
      const b = req.body as { tool: string; params?: Record<string, unknown>; risk?: string[] }
      const delegate = delegateAuthOf(req)
      if (delegate !== undefined) {
        try {
          const r = await requestDelegateAction(deps, delegate, id, {
            tool: b.tool,
            params: b.params ?? {},
            risk: b.risk as RiskCategory[] | undefined,
          })
          return reply.code(r.outcome === 'approve' || r.outcome === 'confirm' ? 202 : 200).send(r)
        } catch (e) {
          // every refusal of a delegate's request is audited, with its chain
          if (e instanceof BatonError) await refusal(s, req, e, delegate.actor)
          throw e
        }
      }
      const auth = agentAuthOf(req)
      try {
        const { output: _output, ...r } = await requestAction(deps, auth, id, {
          tool: b.tool,
          params: b.params ?? {},
          risk: (b.risk ?? []).filter((x): x is RiskCategory => (RISK_CATEGORIES as readonly string[]).includes(x)),
        })
        return reply.code(r.outcome === 'approve' ? 202 : 200).send(r)
      } catch (e) {
        if (e instanceof BatonError && AUDITED_REFUSALS.has(e.code)) await refusal(s, req, e, auth.actor)
        throw e
      }
    },
  )

  app.get(
    '/v1/actions/:id',
    {
      config: { roles: READERS },
      schema: {
        tags: ['actions'],
        summary: 'One action: decision, state, connector result (status, digest)',
        params: idParam,
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const a = await s.store.getAction(id)
      if (a === undefined) throw new BatonError('NOT_FOUND', `no action with id '${id}'`)
      return a
    },
  )
}

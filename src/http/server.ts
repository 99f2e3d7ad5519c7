import AjvCompiler from '@fastify/ajv-compiler'
import swagger from '@fastify/swagger'
import type { AnyValidateFunction } from 'ajv/dist/core.js'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify'
import { decodeJwt } from 'jose'
import type { Logger } from 'pino'
import type { AuditActor } from '../audit/entry.js'
import { type Actor, actorRef } from '../cases/intake.js'
import type { McpSettings } from '../config.js'
import { registerConsole } from '../console/console.js'
import { type AgentAuth, auditRefusal, authenticateAgent } from '../credentials/oauth.js'
import { looksLikeJwt } from '../credentials/tokens.js'
import { scopesForRoute } from '../delegation/document.js'
import { authenticateDelegate, type DelegateAuth, isDelegateToken, withScope } from '../delegation/token-exchange.js'
import { BatonError } from '../errors.js'
import { hashKey, looksLikeKey } from '../identity/keys.js'
import { registerMcp } from '../mcp/routes.js'
import type { Role } from '../store/ports.js'
import { registerAgentRoutes } from './agent-routes.js'
import { registerApprovalRoutes } from './approval-routes.js'
import { registerAuditRoutes } from './audit-routes.js'
import { registerDelegationRoutes } from './delegation-routes.js'
import { registerEventRoutes } from './event-routes.js'
import { registerMetrics } from './metrics-routes.js'
import { errorHandler, problemOf, sendProblem } from './problem.js'
import {
  clientErrorHandler,
  documentMediaTypes,
  frameworkErrors,
  MAX_PARAM_LENGTH,
  registerMediaTypeCheck,
  registerNotFound,
  trackRouteMethods,
} from './protocol.js'
import { registerQualityRoutes } from './quality-routes.js'
import { registerQueueRoutes } from './queue-routes.js'
import { registerRoutes } from './routes.js'
import type { Services } from './services.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Roles allowed on the route; absent means the route is public (health, docs). */
    roles?: readonly Role[]
    /** The route accepts an AI agent's access token (`/v1/oauth/token`) instead of an API key. */
    agent?: boolean
    /**
     * The route accepts a customer's delegate token (token exchange): `route` when a granted scope must list the
     * route in delegation.yaml, `tool` when the handler checks that a scope unlocks the tool asked for, `grant` when
     * the use case itself checks the grant (a sub-delegation). Every other route refuses delegate tokens, always.
     */
    delegate?: 'route' | 'tool' | 'grant'
  }
  interface FastifyRequest {
    actor: Actor
  }
}

export interface ServerOptions {
  readonly logger: Logger
  readonly bodyLimit: number
  readonly version: string
  /** Longest time to answer a request, ms; past it 503 `SERVER_TIMEOUT` (a hijacked stream is exempt once open). */
  readonly requestTimeoutMs?: number
  /** The MCP gateway's session settings (`src/mcp`). */
  readonly mcp: McpSettings
}

/**
 * Fastify's own ajv compiler, twice: query strings are text, so they are coerced by their schema (`?limit=2` is the
 * integer 2, `?assigned=true` the boolean; `?limit=two` and repeated names are still refused); bodies, params and
 * headers are not coerced, so a JSON body with a wrong type is refused rather than converted. An integer parameter
 * takes decimal digits only (`decimalIntegers`): ajv's coercion is `Number()`, which reads `1e2` and `0x10` too.
 */
function queryCoercingValidator(): AjvCompiler.BuildCompilerFromPool {
  const pool = AjvCompiler()
  return (externalSchemas, options) => {
    const strict = pool(externalSchemas, options)
    const customOptions = { ...options?.customOptions, coerceTypes: true }
    const coercing = pool(externalSchemas, { ...options, customOptions } as typeof options)
    return (route) =>
      route.httpPart === 'querystring' ? decimalIntegers(route.schema, coercing(route)) : strict(route)
  }
}

/** A query string's integer, as text: decimal digits, with an optional minus sign. */
const DECIMAL_INTEGER = /^-?[0-9]+$/

/**
 * Wraps a query string validator so that each property the schema types `integer` is refused, naming it, unless its
 * text is a decimal integer; the range and the rest are then checked by the schema as before.
 */
function decimalIntegers(schema: unknown, validate: AnyValidateFunction): AnyValidateFunction {
  const properties = (schema as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties ?? {}
  const integers = Object.entries(properties)
    .filter(([, p]) => p.type === 'integer' || (Array.isArray(p.type) && p.type.includes('integer')))
    .map(([name]) => name)
  if (integers.length === 0) return validate
  const run = validate as (...args: unknown[]) => unknown
  const guarded = Object.assign(
    (data: unknown, ...rest: unknown[]) => {
      const query = (data ?? {}) as Record<string, unknown>
      const bad = integers.filter((name) => typeof query[name] === 'string' && !DECIMAL_INTEGER.test(query[name]))
      if (bad.length > 0) {
        guarded.errors = bad.map((name) => ({
          instancePath: `/${name}`,
          schemaPath: `#/properties/${name}/type`,
          keyword: 'type',
          params: { type: 'integer' },
          message: 'must be a decimal integer',
        }))
        return false
      }
      const ok = run(data, ...rest)
      guarded.errors = validate.errors
      return ok
    },
    { schema: validate.schema, schemaEnv: validate.schemaEnv, errors: null as AnyValidateFunction['errors'] },
  )
  return guarded as unknown as AnyValidateFunction
}

/** Builds the HTTP face: authentication, role checks, problem+json errors, OpenAPI, and the routes. */
export async function createServer(services: Services, opts: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; widen it so the instance has fastify's default logger type
    loggerInstance: opts.logger as FastifyBaseLogger,
    bodyLimit: opts.bodyLimit,
    requestIdHeader: 'x-request-id',
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true, allowUnionTypes: true } },
    schemaController: { compilersFactory: { buildValidator: queryCoercingValidator() } },
    return503OnClosing: true,
    clientErrorHandler,
    // fastify 5 reads router settings from `routerOptions`; at the top level they print FSTDEP022 at every start
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors,
  })
  if (opts.requestTimeoutMs !== undefined) answerBy(app, opts.requestTimeoutMs)
  // before any route: the 404 handler answers 405 with Allow for a path some route has
  const allowedMethods = trackRouteMethods(app)
  registerMediaTypeCheck(app)
  app.addContentTypeParser(
    ['application/yaml', 'application/x-yaml', 'text/yaml'],
    { parseAs: 'string' },
    (_req, body, done) => done(null, body),
  )
  app.decorateRequest('actor', undefined as unknown as Actor)
  app.setErrorHandler(errorHandler)
  registerNotFound(app, allowedMethods)

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Baton',
        version: opts.version,
        description:
          'Support orchestration control plane: policy routing of support cases between AI agents and humans, with every decision audited. ' +
          'Errors are application/problem+json (RFC 9457) with a stable `code`. A body must have a media type its route lists under requestBody, else 415 UNSUPPORTED_MEDIA_TYPE (with `Accept`); ' +
          'a known path asked with a method it lacks answers 405 METHOD_NOT_ALLOWED with `Allow`; header fields larger than 16 KiB in all answer 431 HEADERS_TOO_LARGE.',
      },
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', description: 'A Baton API key (bk_…)' },
          agentToken: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: "An AI agent's access token from POST /v1/oauth/token (EdDSA JWT for one case)",
          },
          delegateToken: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description:
              "A customer's delegate's access token from the RFC 8693 token exchange at POST /v1/oauth/token (EdDSA JWT, sub the customer, act the chain of delegates, at most 5 minutes)",
          },
        },
      },
      security: [{ apiKey: [] }],
    },
    transform: documentMediaTypes,
  })

  // The operator console (src/console): its pages, and its session cookie as a way in for requests without a key.
  const consoleSession = await registerConsole(app, services)
  app.addHook('onRequest', async (req: FastifyRequest) => {
    const { roles, agent, delegate } = req.routeOptions.config
    if (roles === undefined && agent !== true && delegate === undefined) return
    const token = bearerOf(req)
    if (token !== undefined && looksLikeJwt(token) && isDelegateToken(token)) {
      // A customer's delegate: only on the routes that say so, within its scopes, for its customer only.
      req.actor = await authenticateDelegateRequest(services, req, token, delegate)
      return
    }
    if (token !== undefined && looksLikeJwt(token)) {
      // An AI agent's access token: good only on the routes that say so, and only for the case it names.
      req.actor = await authenticateAgentRequest(services, req, token, agent === true)
      return
    }
    req.actor = (await consoleSession(req)) ?? (await authenticate(services.keys, req))
    if (!(roles ?? []).includes(req.actor.roles[0] as Role)) {
      const e = new BatonError(
        'FORBIDDEN',
        agent === true
          ? `only an AI agent's access token may ${req.method} ${req.routeOptions.url}; an API key of role '${req.actor.roles[0]}' cannot act as an agent`
          : `role '${req.actor.roles[0]}' may not ${req.method} ${req.routeOptions.url}`,
      )
      if (agent === true) await refusal(services, req, e)
      throw e
    }
  })

  // first: its latency and store-error hooks see every route
  registerMetrics(app, services)
  registerRoutes(app, services)
  registerAuditRoutes(app, services)
  registerQueueRoutes(app, services)
  registerEventRoutes(app, services)
  registerAgentRoutes(app, services)
  registerApprovalRoutes(app, services)
  registerQualityRoutes(app, services)
  registerDelegationRoutes(app, services)
  // The MCP gateway: a face of its own (src/mcp), served by the same server.
  registerMcp(app, services, { ...opts.mcp, version: opts.version, bodyLimit: opts.bodyLimit })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  return app
}

/**
 * Answers 503 `SERVER_TIMEOUT` to a request still unanswered after `ms` (a stream, once open, is answered). The work
 * goes on behind it and may still commit, so the outcome is unknown to the caller. (Fastify's own `handlerTimeout`
 * is not used: in 5.12 it is cancelled as soon as a request body has been read, fastify/fastify#6725.)
 */
function answerBy(app: FastifyInstance, ms: number): void {
  app.addHook('onRequest', (req, reply, done) => {
    const timer = setTimeout(() => {
      if (reply.sent || reply.raw.headersSent) return
      const e = new BatonError(
        'SERVER_TIMEOUT',
        `no answer within ${ms} ms; the outcome is unknown: read before retrying a write`,
      )
      req.log.warn({ code: e.code, url: req.routeOptions.url }, 'request timed out')
      sendProblem(reply, problemOf(e, req.url.split('?')[0]))
    }, ms)
    reply.raw.once('close', () => clearTimeout(timer))
    done()
  })
}

function bearerOf(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization
  return typeof header === 'string' && header.toLowerCase().startsWith('bearer ') ? header.slice(7).trim() : undefined
}

const agentAuth = new WeakMap<FastifyRequest, AgentAuth>()
const delegateAuth = new WeakMap<FastifyRequest, DelegateAuth>()

/** The verified delegate of a request on a delegate route (set by the onRequest hook), or undefined. */
export function delegateAuthOf(req: FastifyRequest): DelegateAuth | undefined {
  return delegateAuth.get(req)
}

/** The route as delegation.yaml names it: `POST /v1/cases/{id}/messages`. */
function routeName(req: FastifyRequest): string {
  return `${req.method} ${(req.routeOptions.url ?? '').replaceAll(/:([A-Za-z]+)/g, '{$1}')}`
}

async function authenticateDelegateRequest(
  services: Services,
  req: FastifyRequest,
  token: string,
  mode: 'route' | 'tool' | 'grant' | undefined,
): Promise<Actor> {
  let auth: DelegateAuth
  try {
    auth = await authenticateDelegate(services.authority, token)
  } catch (e) {
    if (e instanceof BatonError) await refusal(services, req, e)
    throw e
  }
  const route = routeName(req)
  if (mode === undefined) {
    const e = new BatonError(
      'FORBIDDEN',
      `a delegate's token may not ${route}: a delegate asks for its customer; approvals, confirmations and everything else are not its to reach`,
    )
    await refusal(services, req, e, auth.actor)
    throw e
  }
  if (mode === 'route') {
    const scope = scopesForRoute(services.authority.delegation, auth.scopes, route)[0]
    if (scope === undefined) {
      const e = new BatonError(
        'SCOPE_NOT_GRANTED',
        `no scope of this token unlocks ${route} (it holds ${auth.scopes.join(', ') || 'none'})`,
      )
      await refusal(services, req, e, auth.actor)
      throw e
    }
    auth = withScope(auth, scope)
  }
  delegateAuth.set(req, auth)
  return auth.actor
}

/** The verified agent credential of a request on an agent route (set by the onRequest hook). */
export function agentAuthOf(req: FastifyRequest): AgentAuth {
  const a = agentAuth.get(req)
  if (a === undefined) throw new BatonError('UNAUTHENTICATED', 'this route needs an AI agent access token')
  return a
}

async function authenticateAgentRequest(
  services: Services,
  req: FastifyRequest,
  token: string,
  allowed: boolean,
): Promise<Actor> {
  let auth: AgentAuth
  try {
    auth = await authenticateAgent(services.authority, token)
  } catch (e) {
    if (e instanceof BatonError) await refusal(services, req, e)
    throw e
  }
  if (!allowed) {
    const e = new BatonError(
      'FORBIDDEN',
      `an AI agent's access token may not ${req.method} ${req.routeOptions.url}: agents act on cases through /v1/cases/{id}/actions`,
    )
    await refusal(services, req, e, auth.actor)
    throw e
  }
  agentAuth.set(req, auth)
  return auth.actor
}

/** Audits a refused request (`access.refused`), naming the case when the URL does. */
export async function refusal(
  services: Services,
  req: FastifyRequest,
  e: BatonError,
  actor?: Actor | { kind: string; id: string },
): Promise<void> {
  const params = req.params as { id?: unknown } | undefined
  const target = typeof params?.id === 'string' ? params.id.slice(0, 128) : undefined
  const caseId = target !== undefined && req.routeOptions.url?.startsWith('/v1/cases/') ? target : undefined
  const token = bearerOf(req)
  let who: AuditActor | undefined = actor === undefined ? undefined : 'roles' in actor ? actorRef(actor) : actor
  if (who === undefined && token !== undefined && looksLikeJwt(token)) {
    try {
      const claims = decodeJwt(token)
      // a delegate token's sub is the customer; the delegate is its client_id
      const id = claims.kind === 'delegate' ? claims.client_id : claims.sub
      who = {
        kind: claims.kind === 'delegate' ? 'delegate' : 'agent',
        id: typeof id === 'string' ? id.slice(0, 128) : 'unknown',
      }
    } catch {
      who = { kind: 'agent', id: 'unknown' }
    }
  }
  who ??= req.actor === undefined ? { kind: 'unknown', id: 'unknown' } : { kind: req.actor.kind, id: req.actor.id }
  await auditRefusal(services.authority, {
    actor: who,
    code: e.code,
    reason: e.message,
    route: `${req.method} ${req.routeOptions.url ?? req.url}`,
    caseId,
    target,
  })
}

async function authenticate(keys: Services['keys'], req: FastifyRequest): Promise<Actor> {
  const header = req.headers.authorization
  const key =
    typeof header === 'string' && header.toLowerCase().startsWith('bearer ')
      ? header.slice(7).trim()
      : typeof req.headers['x-api-key'] === 'string'
        ? req.headers['x-api-key']
        : undefined
  if (key === undefined) throw new BatonError('UNAUTHENTICATED', 'send an API key as "Authorization: Bearer <key>"')
  if (!looksLikeKey(key)) throw new BatonError('UNAUTHENTICATED', 'the API key is malformed')
  const record = await keys.active(hashKey(key))
  if (record === undefined) {
    throw new BatonError('UNAUTHENTICATED', 'the API key is unknown or revoked')
  }
  const kind = record.role
  // An operator key that names its operator acts as that person (approvals need the person's roles).
  return { kind, id: record.principalId ?? record.id, roles: [record.role] }
}

import swagger from '@fastify/swagger'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { Actor } from '../cases/intake.js'
import { BatonError } from '../errors.js'
import { hashKey, looksLikeKey } from '../identity/keys.js'
import type { Role, Store } from '../store/ports.js'
import { registerAuditRoutes } from './audit-routes.js'
import { errorHandler } from './problem.js'
import { registerRoutes } from './routes.js'
import type { Services } from './services.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Roles allowed on the route; absent means the route is public (health, docs). */
    roles?: readonly Role[]
  }
  interface FastifyRequest {
    actor: Actor
  }
}

export interface ServerOptions {
  readonly logger: Logger
  readonly bodyLimit: number
  readonly version: string
}

/** Builds the HTTP face: authentication, role checks, problem+json errors, OpenAPI, and the routes. */
export async function createServer(services: Services, opts: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; widen it so the instance has fastify's default logger type
    loggerInstance: opts.logger as FastifyBaseLogger,
    bodyLimit: opts.bodyLimit,
    disableRequestLogging: false,
    requestIdHeader: 'x-request-id',
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
    return503OnClosing: true,
  })
  app.addContentTypeParser(
    ['application/yaml', 'application/x-yaml', 'text/yaml'],
    { parseAs: 'string' },
    (_req, body, done) => done(null, body),
  )
  app.decorateRequest('actor', undefined as unknown as Actor)
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler((req, reply) => {
    reply
      .code(404)
      .type('application/problem+json')
      .send({
        type: 'https://baton.dev/problems/not-found',
        title: 'Not found',
        status: 404,
        code: 'NOT_FOUND',
        detail: `no route ${req.method} ${req.url.split('?')[0]}`,
      })
  })

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Baton',
        version: opts.version,
        description:
          'Support orchestration control plane: policy routing of support cases between AI agents and humans, with every decision audited.',
      },
      components: {
        securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'A Baton API key (bk_…)' } },
      },
      security: [{ apiKey: [] }],
    },
  })

  app.addHook('onRequest', async (req: FastifyRequest) => {
    const roles = req.routeOptions.config.roles
    if (roles === undefined) return
    req.actor = await authenticate(services.store, req)
    if (!roles.includes(req.actor.roles[0] as Role)) {
      throw new BatonError('FORBIDDEN', `role '${req.actor.roles[0]}' may not ${req.method} ${req.routeOptions.url}`)
    }
  })

  registerRoutes(app, services)
  registerAuditRoutes(app, services)
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  return app
}

async function authenticate(store: Store, req: FastifyRequest): Promise<Actor> {
  const header = req.headers.authorization
  const key =
    typeof header === 'string' && header.toLowerCase().startsWith('bearer ')
      ? header.slice(7).trim()
      : typeof req.headers['x-api-key'] === 'string'
        ? req.headers['x-api-key']
        : undefined
  if (key === undefined) throw new BatonError('UNAUTHENTICATED', 'send an API key as "Authorization: Bearer <key>"')
  if (!looksLikeKey(key)) throw new BatonError('UNAUTHENTICATED', 'the API key is malformed')
  const record = await store.findKeyByHash(hashKey(key))
  if (record === undefined || record.revokedAt !== null) {
    throw new BatonError('UNAUTHENTICATED', 'the API key is unknown or revoked')
  }
  const kind = record.role === 'admin' ? 'admin' : record.role === 'operator' ? 'operator' : 'service'
  return { kind, id: record.id, roles: [record.role] }
}

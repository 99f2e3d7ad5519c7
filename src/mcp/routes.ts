import type { IncomingMessage } from 'node:http'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { decodeJwt } from 'jose'
import type { McpSettings } from '../config.js'
import { auditRefusal } from '../credentials/oauth.js'
import { BatonError } from '../errors.js'
import type { Services } from '../http/services.js'
import { redactedText } from '../signals/sensitive.js'
import { actorOf, authenticateMcp, bearerToken, type McpPrincipal } from './auth.js'
import { type McpSession, McpSessions, sessionRef } from './sessions.js'
import { createSessionServer } from './tools.js'
import { createListWatcher } from './watch.js'

export const MCP_PATH = '/mcp'
const PRM_PATH = '/.well-known/oauth-protected-resource'
const SWEEP_MS = 60_000

export interface McpOptions extends McpSettings {
  readonly version: string
  /** Largest JSON-RPC request body, bytes (`BATON_BODY_LIMIT`). */
  readonly bodyLimit: number
}

/**
 * The MCP gateway (`/mcp`, Streamable HTTP, the official SDK's server transport) and the OAuth discovery documents
 * a standard MCP client starts from: a bare request gets 401 with `WWW-Authenticate: Bearer resource_metadata=…`
 * (RFC 9728 protected resource metadata, naming Baton as its authorization server), whose RFC 8414 metadata points
 * at the token endpoint. Every request is authenticated on its own (`authenticateMcp`); a session is bound to the
 * principal and case that opened it.
 */
export function registerMcp(app: FastifyInstance, s: Services, opts: McpOptions): void {
  const sessions = new McpSessions()
  const watcher = createListWatcher(s, sessions, (e) => app.log.warn({ err: e }, 'MCP tool-list watcher pass failed'))
  watcher.loop.start(s.work.streamPollMs)
  // A handoff or suspension decided on any node reaches this node's sessions at its commit, not at the next poll.
  const offAudit = s.store.changes.subscribe('audit', () => watcher.loop.wake())
  const sweep = setInterval(() => {
    const before = Date.now() - opts.sessionIdleSeconds * 1000
    for (const x of sessions.idleSince(before)) void closeSession(x, 'idle')
  }, SWEEP_MS)
  sweep.unref()
  app.addHook('preClose', async () => {
    clearInterval(sweep)
    offAudit()
    await watcher.loop.stop()
    await Promise.all([...sessions.all()].map((x) => closeSession(x, 'shutdown')))
  })

  const base = (req: FastifyRequest): string => {
    const configured = s.publicUrl()
    if (configured !== undefined) return configured
    const proto = req.headers['x-forwarded-proto'] === 'https' ? 'https' : 'http'
    return `${proto}://${req.headers.host ?? 'localhost'}`
  }
  const metadataUrl = (req: FastifyRequest) => `${base(req)}${PRM_PATH}${MCP_PATH}`

  async function closeSession(x: McpSession, reason: 'deleted' | 'idle' | 'shutdown'): Promise<void> {
    if (!sessions.delete(x.id)) return
    await x.transport.close().catch(() => undefined)
    await s.store
      .appendAudit([
        {
          type: 'mcp.session_closed',
          at: s.authority.now().toISOString(),
          caseId: x.caseId,
          actor: actorOf(x.principal),
          data: { session: x.ref, reason },
        },
      ])
      .catch((e: unknown) => app.log.error({ err: e }, 'mcp.session_closed not audited'))
  }

  /** Answers a request the face refuses itself, before the SDK sees it, with a JSON-RPC error body. */
  function refuse(
    reply: FastifyReply,
    status: number,
    message: string,
    code: string,
    headers: Record<string, string> = {},
  ): FastifyReply {
    return reply
      .code(status)
      .headers(headers)
      .type('application/json')
      .send({ jsonrpc: '2.0', error: { code: status === 404 ? -32001 : -32000, message, data: { code } }, id: null })
  }

  async function audit(principal: McpPrincipal | undefined, req: FastifyRequest, e: BatonError): Promise<void> {
    await auditRefusal(s.authority, {
      actor: principal === undefined ? unverifiedActor(req) : actorOf(principal),
      code: e.code,
      reason: e.message,
      route: `${req.method} ${MCP_PATH}`,
      ...(principal === undefined ? {} : { caseId: principal.caseId }),
    })
  }

  async function handle(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    // DNS rebinding: a browser page may only reach /mcp from Baton's own origin or one allowed by configuration.
    const origin = req.headers.origin
    if (origin !== undefined && origin !== new URL(base(req)).origin && !opts.allowedOrigins.includes(origin)) {
      await audit(
        undefined,
        req,
        new BatonError('FORBIDDEN', `origin '${origin.slice(0, 200)}' may not call ${MCP_PATH}`),
      )
      return refuse(reply, 403, `Forbidden: origin ${origin.slice(0, 200)} is not allowed`, 'FORBIDDEN')
    }
    const token = bearerToken(req)
    const q = (req.query as { case?: unknown } | undefined)?.case
    const authn = await authenticateMcp(s, token, typeof q === 'string' ? q : undefined)
    if ('refused' in authn) {
      const { error: e, status, actor, caseId } = authn.refused
      if (token !== undefined) {
        await auditRefusal(s.authority, {
          actor: actor ?? unverifiedActor(req),
          code: e.code,
          reason: e.message,
          route: `${req.method} ${MCP_PATH}`,
          caseId,
        })
      }
      if (status !== 401) return refuse(reply, status, e.message, e.code)
      // RFC 6750 §3.1: no error code when the request carried no credential at all.
      const challenge =
        token === undefined
          ? `Bearer resource_metadata="${metadataUrl(req)}"`
          : `Bearer resource_metadata="${metadataUrl(req)}", error="invalid_token", error_description="${quoted(e.message)}"`
      return refuse(reply, 401, `Unauthorized: ${e.message}`, e.code, { 'www-authenticate': challenge })
    }
    const { principal } = authn
    const sid = req.headers['mcp-session-id']
    let session: McpSession | undefined
    if (typeof sid === 'string' && sid !== '') {
      session = sessions.get(sid)
      if (session === undefined || session.principalKey !== principal.key) {
        // Another principal's session is answered as an unknown one: its existence is not disclosed.
        if (session !== undefined) {
          await audit(principal, req, new BatonError('FORBIDDEN', `a session of another principal was presented`))
        }
        return refuse(reply, 404, 'Session not found', 'NOT_FOUND')
      }
      if (session.caseId !== principal.caseId) {
        const e = new BatonError(
          'CREDENTIAL_SCOPE',
          `this session is for case '${session.caseId}'; the token is for case '${principal.caseId}'`,
        )
        await audit(principal, req, e)
        return refuse(reply, 403, `Forbidden: ${e.message}`, e.code)
      }
      session.principal = principal
      session.lastSeen = Date.now()
    } else if (req.method !== 'POST') {
      return refuse(reply, 400, 'Bad Request: Mcp-Session-Id header is required', 'VALIDATION_FAILED')
    }
    const auth: AuthInfo = {
      token: token ?? '',
      clientId: principal.auth.actor.id,
      scopes: principal.kind === 'agent' ? [...principal.auth.claims.tools] : [...principal.auth.scopes],
      expiresAt: principal.auth.claims.exp,
      extra: { principal },
    }
    const raw = req.raw as IncomingMessage & { auth?: AuthInfo }
    raw.auth = auth
    reply.hijack()
    if (session !== undefined) {
      await session.transport.handleRequest(raw, reply.raw)
      return undefined
    }
    // No session yet: this request must be an `initialize`; the SDK transport refuses anything else (400).
    if (sessions.size >= opts.maxSessions) {
      reply.raw.writeHead(503, { 'content-type': 'application/json', 'retry-after': '30' })
      reply.raw.end(
        JSON.stringify({
          jsonrpc: '2.0',
          error: { code: -32000, message: 'Too many MCP sessions on this node' },
          id: null,
        }),
      )
      return undefined
    }
    await openSession(principal, raw, reply)
    return undefined
  }

  async function openSession(
    principal: McpPrincipal,
    raw: IncomingMessage & { auth?: AuthInfo },
    reply: FastifyReply,
  ): Promise<void> {
    let opened: McpSession | undefined
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => s.authority.newId('mcps'),
      maxRequestBodySize: opts.bodyLimit,
      enableJsonResponse: true,
      onsessioninitialized: (id) => {
        opened = {
          id,
          ref: sessionRef(id),
          principalKey: principal.key,
          caseId: principal.caseId,
          server,
          transport,
          principal,
          lastSeen: Date.now(),
          listed: undefined,
        }
        sessions.add(opened)
        watcher.watchFrom()
      },
    })
    transport.onerror = (e) => {
      const p = opened?.principal ?? principal
      void auditRefusal(s.authority, {
        actor: actorOf(p),
        code: 'VALIDATION_FAILED',
        reason: e.message.slice(0, 500),
        route: `${raw.method ?? ''} ${MCP_PATH}`,
        caseId: p.caseId,
      }).catch(() => undefined)
    }
    transport.onclose = () => {
      const x = opened
      if (x !== undefined && sessions.get(x.id) === x) void closeSession(x, 'deleted')
    }
    const server = createSessionServer({ services: s, log: app.log, version: opts.version }, () => opened)
    server.oninitialized = () => {
      const x = opened
      if (x === undefined) return
      const client = server.getClientVersion()
      void s.store
        .appendAudit([
          {
            type: 'mcp.session_opened',
            at: s.authority.now().toISOString(),
            caseId: x.caseId,
            actor: actorOf(x.principal),
            data: {
              session: x.ref,
              // what the client says of itself is free text: redacted before it is audited (invariant 7)
              client: {
                name: redactedText(String(client?.name ?? '').slice(0, 200)),
                version: redactedText(String(client?.version ?? '').slice(0, 100)),
              },
              credential: x.principal.auth.claims.jti,
            },
          },
        ])
        .catch((e: unknown) => app.log.error({ err: e }, 'mcp.session_opened not audited'))
    }
    await server.connect(transport)
    await transport.handleRequest(raw, reply.raw)
    // Not an initialize: the transport answered 400 and no session exists; nothing stays behind.
    if (opened === undefined) await server.close().catch(() => undefined)
  }

  app.register(async (scope) => {
    // The SDK transport reads and checks the JSON-RPC body itself (size, JSON, message shape): fastify leaves it be.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined))
    const security = [{ agentToken: [] }, { delegateToken: [] }]
    const querystring = {
      type: 'object',
      properties: {
        case: {
          type: 'string',
          minLength: 1,
          maxLength: 128,
          description: "a delegate's case (one of its customer's)",
        },
      },
    }
    const responses = {
      400: { description: 'No session id on a request that needs one; a delegate naming no case' },
      401: {
        description: 'No, or no longer valid, agent or delegate token; WWW-Authenticate names the resource metadata',
      },
      403: { description: "An origin not allowed, a token of another case than the session's, a closed case" },
      404: { description: "Unknown session (or one of another principal); a case not of the delegate's customer" },
    }
    scope.post(
      MCP_PATH,
      {
        schema: {
          tags: ['mcp'],
          summary:
            'MCP gateway (Streamable HTTP): JSON-RPC requests of an MCP client (initialize, tools/list, tools/call, ping); every tools/call is decided like POST /v1/cases/{id}/actions',
          security,
          querystring,
          response: {
            200: { description: 'JSON-RPC response(s) as application/json' },
            202: { description: 'Accepted (notifications)' },
            ...responses,
          },
        },
      },
      handle,
    )
    scope.get(
      MCP_PATH,
      {
        schema: {
          tags: ['mcp'],
          summary:
            "The session's server-sent event stream: notifications/tools/list_changed when the principal's authority changes",
          security,
          querystring,
          response: { 200: { description: 'text/event-stream' }, ...responses },
        },
      },
      handle,
    )
    scope.delete(
      MCP_PATH,
      {
        schema: {
          tags: ['mcp'],
          summary: 'Ends the MCP session',
          security,
          querystring,
          response: { 200: { description: 'Closed' }, ...responses },
        },
      },
      handle,
    )
  })

  const resourceMetadata = async (req: FastifyRequest, reply: FastifyReply) => {
    const b = base(req)
    return reply.header('cache-control', 'public, max-age=300').send({
      resource: `${b}${MCP_PATH}`,
      authorization_servers: [b],
      bearer_methods_supported: ['header'],
      resource_name: 'Baton MCP gateway',
      resource_documentation: `${b}/openapi.json`,
    })
  }
  const prmSchema = {
    tags: ['mcp'],
    summary:
      'OAuth 2.0 protected resource metadata of the MCP gateway (RFC 9728): Baton is its own authorization server',
    security: [],
  }
  app.get(PRM_PATH, { schema: prmSchema }, resourceMetadata)
  app.get(`${PRM_PATH}${MCP_PATH}`, { schema: { ...prmSchema, hide: true } }, resourceMetadata)

  app.get(
    '/.well-known/oauth-authorization-server',
    {
      schema: {
        tags: ['mcp'],
        summary:
          'OAuth 2.0 authorization server metadata (RFC 8414): the token endpoint (client_credentials with an RFC 7523 assertion or a client secret) and the JWKS',
        security: [],
      },
    },
    async (req, reply) => {
      const b = base(req)
      return reply.header('cache-control', 'public, max-age=300').send({
        issuer: b,
        token_endpoint: `${b}/v1/oauth/token`,
        jwks_uri: `${b}/.well-known/jwks.json`,
        introspection_endpoint: `${b}/v1/oauth/introspect`,
        // RFC 8414 requires these two; Baton has no authorization endpoint (agents use client_credentials), so it
        // names one that says so, and supports no response type.
        authorization_endpoint: `${b}/v1/oauth/authorize`,
        response_types_supported: [],
        grant_types_supported: ['client_credentials'],
        token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_post'],
        token_endpoint_auth_signing_alg_values_supported: ['EdDSA'],
        scopes_supported: [...s.authority.catalog.keys()],
        service_documentation: `${b}/openapi.json`,
      })
    },
  )
  app.get(
    '/v1/oauth/authorize',
    {
      schema: {
        tags: ['mcp'],
        summary: 'No authorization endpoint: Baton issues tokens by client_credentials at /v1/oauth/token only',
        security: [],
      },
    },
    async (_req, reply) =>
      reply.code(400).send({
        error: 'unsupported_response_type',
        error_description: 'Baton issues tokens only with grant_type=client_credentials at /v1/oauth/token',
      }),
  )
}

/** A quoted-string of RFC 9110 §5.6.4 (no quote, backslash or control characters). */
function quoted(text: string): string {
  return text.replace(/["\\\u0000-\u001f\u007f]/g, ' ').slice(0, 300)
}

/** The agent an unverified token names (for the audit of its refusal), or `unknown`. */
function unverifiedActor(req: FastifyRequest): { kind: string; id: string } {
  const token = bearerToken(req)
  try {
    const sub = token === undefined ? undefined : decodeJwt(token).sub
    return { kind: 'agent', id: typeof sub === 'string' ? sub.slice(0, 128) : 'unknown' }
  } catch {
    return { kind: 'unknown', id: 'unknown' }
  }
}

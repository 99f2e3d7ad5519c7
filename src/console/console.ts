import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import cookie from '@fastify/cookie'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { verifyStore } from '../audit/verify.js'
import type { Actor } from '../cases/intake.js'
import { BatonError } from '../errors.js'
import { FORM_BODY } from '../http/protocol.js'
import type { Services } from '../http/services.js'
import { hashKey, looksLikeKey } from '../identity/keys.js'
import { readOverview, readQuality } from '../quality/read.js'
import type { ApiKeyRecord } from '../store/ports.js'
import type { SafeHtml } from './html.js'
import { ANALYST_PAGES, loginPage, notFoundPage, type Viewer } from './layout.js'
import { agentsPage, loadAgents } from './pages/agents.js'
import { approvalsBody, approvalsPage, caseActions, loadApprovals } from './pages/approvals.js'
import { auditPage, loadAudit } from './pages/audit.js'
import { casePage, loadCase } from './pages/case.js'
import { delegatesPage, loadDelegates } from './pages/delegates.js'
import { overviewPage } from './pages/overview.js'
import { qualityPage } from './pages/quality.js'
import { loadQueue, queuePage, queueRows, queueSummary } from './pages/queue.js'
import {
  csrfToken,
  decodeClaims,
  encodeClaims,
  LOGIN_CSRF_COOKIE,
  newSessionId,
  SESSION_COOKIE,
  SESSION_TTL_S,
  type SessionClaims,
  sameToken,
} from './session.js'

/** Resolves a console session into the API's actor, for the `/v1` routes a signed-in page calls. */
export type SessionAuthenticator = (req: FastifyRequest) => Promise<Actor | undefined>

interface Session {
  readonly claims: SessionClaims
  readonly key: ApiKeyRecord
  readonly csrf: string
}

const CONSOLE_ROLES = new Set(['operator', 'admin', 'analyst'])
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** Nothing leaves Baton: every script, style, image and connection is same-origin. */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ')

const ASSET_TYPES: Readonly<Record<string, string>> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
}

function assetDir(): string {
  const here = dirname(fileURLToPath(import.meta.url))
  // Beside this file, in src/ (tsx, tests) and in dist/ (the build copies them, scripts/build.mjs).
  const dir = join(here, 'assets')
  if (!existsSync(join(dir, 'console.js'))) throw new Error(`console assets not found in ${dir}: run npm run build`)
  return dir
}

function loadAssets(): Map<string, { body: Buffer; type: string }> {
  const dir = assetDir()
  const assets = new Map<string, { body: Buffer; type: string }>()
  for (const name of ['console.css', 'console.js']) {
    assets.set(name, { body: readFileSync(join(dir, name)), type: ASSET_TYPES[name.slice(name.lastIndexOf('.'))]! })
  }
  // Chart.js from node_modules, served by Baton: no CDN.
  const chartDir = dirname(createRequire(import.meta.url).resolve('chart.js'))
  assets.set('chart.umd.min.js', { body: readFileSync(join(chartDir, 'chart.umd.min.js')), type: ASSET_TYPES['.js']! })
  return assets
}

/** The same actor an API request with this key gets (src/http/server.ts): a key naming an operator acts as them. */
function actorOf(key: ApiKeyRecord): Actor {
  const kind = key.role === 'admin' ? 'admin' : key.role === 'analyst' ? 'analyst' : 'operator'
  return { kind, id: key.principalId ?? key.id, roles: [key.role] }
}

function isHttps(req: FastifyRequest): boolean {
  const fwd = req.headers['x-forwarded-proto']
  const first = (Array.isArray(fwd) ? fwd[0] : fwd)?.split(',')[0]?.trim()
  return req.protocol === 'https' || first === 'https'
}

/** A request's Origin, when sent, must be this server: a second line behind SameSite=Strict and the token. */
function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin
  if (origin === undefined) return true
  try {
    return new URL(origin).host === req.headers.host
  } catch {
    return false
  }
}

function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/console\/[A-Za-z0-9/_\-.?=&%]*$/.test(next) && !next.startsWith('//')
    ? next
    : '/console/queue'
}

/** The one-time-id scope of signed-out console sessions (`Store.spendOnce`). */
const SIGNED_OUT = 'console_session'

/**
 * The operator console, served by Baton at `/console/` (and `/`): server-rendered pages, a few same-origin scripts,
 * signed-in with an operator or admin API key into a session cookie. Returns the session authenticator the API's
 * auth hook uses, so the pages' scripts call the same `/v1` endpoints as everyone else (with the CSRF token on every
 * state-changing request); requests that carry an API key never look at the cookie.
 */
export async function registerConsole(app: FastifyInstance, s: Services): Promise<SessionAuthenticator> {
  // the first secret stored is every node's (sealed in the store's settings)
  const secret = Buffer.from(await s.settings.secret('console_session_secret'), 'base64url')
  await app.register(cookie, { secret, hook: 'onRequest' })
  const assets = loadAssets()

  async function sessionOf(req: FastifyRequest): Promise<Session | undefined> {
    const header = req.headers.cookie
    if (header === undefined) return undefined
    const value = app.parseCookie(header)[SESSION_COOKIE]
    if (value === undefined) return undefined
    const unsigned = app.unsignCookie(value)
    if (!unsigned.valid || unsigned.value === null) return undefined
    const nowS = Math.floor(Date.now() / 1000)
    const claims = decodeClaims(unsigned.value, nowS)
    if (claims === undefined) return undefined
    // signed out on any node, before or since a restart
    if (await s.store.isSpent(SIGNED_OUT, claims.sid)) return undefined
    // Read each time: a revoked key ends its console sessions at once.
    const key = (await s.store.listKeys()).find((k) => k.id === claims.keyId)
    if (key === undefined || key.revokedAt !== null || !CONSOLE_ROLES.has(key.role)) return undefined
    return { claims, key, csrf: csrfToken(secret, claims.sid) }
  }

  const authenticator: SessionAuthenticator = async (req) => {
    if (req.headers.authorization !== undefined || req.headers['x-api-key'] !== undefined) return undefined
    const session = await sessionOf(req)
    if (session === undefined) return undefined
    if (!SAFE_METHODS.has(req.method)) {
      const token = req.headers['x-csrf-token']
      if (typeof token !== 'string' || !sameToken(token, session.csrf)) {
        throw new BatonError(
          'CSRF_FAILED',
          `a state-changing request with a console session must carry the session's CSRF token in X-CSRF-Token (${typeof token === 'string' ? 'it differs' : 'none was sent'})`,
        )
      }
      if (!sameOrigin(req)) {
        throw new BatonError('CSRF_FAILED', `the request's Origin '${req.headers.origin}' is not this server`)
      }
    }
    return actorOf(session.key)
  }

  await app.register(async (c) => {
    if (!c.hasContentTypeParser('application/x-www-form-urlencoded')) {
      c.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
        done(null, Object.fromEntries(new URLSearchParams(body as string)))
      })
    }
    c.addHook('onSend', async (_req, reply, payload) => {
      reply.header('content-security-policy', CSP)
      reply.header('x-content-type-options', 'nosniff')
      reply.header('referrer-policy', 'same-origin')
      reply.header('x-frame-options', 'DENY')
      if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store')
      return payload
    })

    const page = (reply: FastifyReply, body: SafeHtml, code = 200) =>
      reply.code(code).type('text/html; charset=utf-8').send(body.toString())

    /** The signed-in viewer, or a redirect to sign-in (pages) / 401 (scripts). Checks CSRF on state changes. */
    async function requireViewer(req: FastifyRequest, reply: FastifyReply): Promise<Viewer | undefined> {
      const session = await sessionOf(req)
      if (session === undefined) {
        if (req.method === 'GET' && req.headers.accept?.includes('text/html') !== false) {
          const next = encodeURIComponent(req.url)
          await reply.redirect(`/console/login?next=${next}`, 303)
        } else {
          await reply.code(401).type('application/problem+json').send({
            type: 'https://baton.dev/problems/unauthenticated',
            title: 'Authentication required',
            status: 401,
            code: 'UNAUTHENTICATED',
            detail: 'sign in to the console',
          })
        }
        return undefined
      }
      if (!SAFE_METHODS.has(req.method)) {
        const body = (req.body ?? {}) as Record<string, unknown>
        const token = typeof body._csrf === 'string' ? body._csrf : req.headers['x-csrf-token']
        if (typeof token !== 'string' || !sameToken(token, session.csrf) || !sameOrigin(req)) {
          await reply.code(403).type('text/plain; charset=utf-8').send('CSRF token missing or wrong; reload the page')
          return undefined
        }
      }
      // an analyst key opens the figures only (and signs out)
      const path = req.url.split('?')[0]!
      if (session.key.role === 'analyst' && !ANALYST_PAGES.includes(path) && path !== '/console/logout') {
        await reply
          .code(403)
          .type('text/plain; charset=utf-8')
          .send('An analyst key opens the Overview and Quality pages only')
        return undefined
      }
      const actor = actorOf(session.key)
      const operator = actor.kind === 'operator' ? await s.store.getOperator(actor.id) : undefined
      return {
        keyId: session.key.id,
        name: operator?.name ?? session.key.name,
        role: session.key.role,
        operatorRoles: operator?.roles ?? [],
        actor,
        csrf: session.csrf,
      }
    }

    c.get('/', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/console/queue', 302))
    c.get('/console', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/console/queue', 302))
    c.get('/console/', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/console/queue', 302))

    c.get('/console/assets/:name', { schema: { hide: true } }, async (req, reply) => {
      const a = assets.get((req.params as { name: string }).name)
      if (a === undefined) return reply.code(404).type('text/plain').send('no such asset')
      return reply.header('cache-control', 'public, max-age=300').type(a.type).send(a.body)
    })

    c.get('/console/login', { schema: { hide: true } }, async (req, reply) => {
      const q = req.query as { next?: string }
      if ((await sessionOf(req)) !== undefined) return reply.redirect(safeNext(q.next), 303)
      const token = randomBytes(24).toString('base64url')
      reply.setCookie(LOGIN_CSRF_COOKIE, token, {
        httpOnly: true,
        sameSite: 'strict',
        secure: isHttps(req),
        path: '/console/login',
        maxAge: 600,
      })
      return page(reply, loginPage({ csrf: token, next: safeNext(q.next) }))
    })

    c.post('/console/login', { schema: { hide: true, consumes: FORM_BODY } }, async (req, reply) => {
      const b = (req.body ?? {}) as Record<string, unknown>
      const next = safeNext(b.next)
      const again = async (error: string, code: number) => {
        const token = randomBytes(24).toString('base64url')
        reply.setCookie(LOGIN_CSRF_COOKIE, token, {
          httpOnly: true,
          sameSite: 'strict',
          secure: isHttps(req),
          path: '/console/login',
          maxAge: 600,
        })
        return page(reply, loginPage({ csrf: token, next, error }), code)
      }
      const expected = req.cookies[LOGIN_CSRF_COOKIE]
      if (typeof b._csrf !== 'string' || expected === undefined || !sameToken(b._csrf, expected) || !sameOrigin(req)) {
        return again('The sign-in form expired; please try again.', 403)
      }
      const key = typeof b.key === 'string' ? b.key.trim() : ''
      const record = looksLikeKey(key) ? await s.store.findKeyByHash(hashKey(key)) : undefined
      if (record === undefined || record.revokedAt !== null) return again('That key is unknown or revoked.', 401)
      if (!CONSOLE_ROLES.has(record.role)) {
        return again(`A ${record.role} key cannot sign in to the console; use an operator, analyst or admin key.`, 403)
      }
      const claims: SessionClaims = {
        sid: newSessionId(),
        keyId: record.id,
        exp: Math.floor(Date.now() / 1000) + SESSION_TTL_S,
      }
      const at = new Date().toISOString()
      await s.store.appendAudit([
        {
          type: 'console.signed_in',
          at,
          actor: { kind: actorOf(record).kind, id: record.id },
          data: { keyId: record.id },
        },
      ])
      reply.clearCookie(LOGIN_CSRF_COOKIE, { path: '/console/login' })
      // an analyst reads the figures only
      const landing =
        record.role === 'analyst' && !ANALYST_PAGES.includes(next.split('?')[0]!) ? '/console/quality' : next
      reply.setCookie(SESSION_COOKIE, encodeClaims(claims), {
        signed: true,
        httpOnly: true,
        sameSite: 'strict',
        secure: isHttps(req),
        path: '/',
        maxAge: SESSION_TTL_S,
      })
      return reply.redirect(landing, 303)
    })

    c.post('/console/logout', { schema: { hide: true, consumes: FORM_BODY } }, async (req, reply) => {
      const viewer = await requireViewer(req, reply)
      if (viewer === undefined) return reply
      const session = await sessionOf(req)
      if (session !== undefined) {
        await s.store.spendOnce(SIGNED_OUT, session.claims.sid, new Date(session.claims.exp * 1000).toISOString())
        await s.store.appendAudit([
          {
            type: 'console.signed_out',
            at: new Date().toISOString(),
            actor: { kind: actorOf(session.key).kind, id: session.key.id },
            data: { keyId: session.key.id },
          },
        ])
      }
      reply.clearCookie(SESSION_COOKIE, { path: '/' })
      return reply.redirect('/console/login', 303)
    })

    c.get('/console/queue', { schema: { hide: true } }, async (req, reply) => {
      const viewer = await requireViewer(req, reply)
      if (viewer === undefined) return reply
      const q = req.query as { page?: string; queue?: string; fragment?: string }
      const p = await loadQueue(s, new Date(), {
        page: Number.parseInt(q.page ?? '1', 10) || 1,
        queue: q.queue === undefined || q.queue === '' ? undefined : q.queue,
      })
      const canClaim = claimAvailable(app)
      if (q.fragment === 'rows') {
        return reply
          .type('text/html; charset=utf-8')
          .send(`${queueSummary(p).toString()}\n<table><tbody>${queueRows(p, canClaim).toString()}</tbody></table>`)
      }
      return page(reply, queuePage(viewer, p, canClaim))
    })

    c.get('/console/cases/:id', { schema: { hide: true } }, async (req, reply) => {
      const viewer = await requireViewer(req, reply)
      if (viewer === undefined) return reply
      const { id } = req.params as { id: string }
      const v = await loadCase(s, id)
      if (v === undefined) return page(reply, notFoundPage(viewer, `No case with id ${id}.`), 404)
      const now = new Date()
      const actions = caseActions(await loadApprovals(s, viewer.actor, now, { caseId: id }), now, viewer.csrf)
      const agents = s.workspace.agents.filter((a) => a.state === 'active').map((a) => a.id)
      return page(reply, casePage(viewer, v, { now, canClaim: claimAvailable(app), actions, agents }))
    })

    c.get('/console/approvals', { schema: { hide: true } }, async (req, reply) => {
      const viewer = await requireViewer(req, reply)
      if (viewer === undefined) return reply
      const now = new Date()
      const v = await loadApprovals(s, viewer.actor, now)
      if ((req.query as { fragment?: string }).fragment === '1') {
        return reply.type('text/html; charset=utf-8').send(approvalsBody(v, now, viewer.csrf).toString())
      }
      return page(reply, approvalsPage(viewer, v, now))
    })

    c.get('/console/agents', { schema: { hide: true } }, async (req, reply) => {
      const viewer = await requireViewer(req, reply)
      if (viewer === undefined) return reply
      return page(reply, agentsPage(viewer, await loadAgents(s)))
    })

    c.get('/console/delegates', { schema: { hide: true } }, async (req, reply) => {
      const viewer = await requireViewer(req, reply)
      if (viewer === undefined) return reply
      const q = req.query as { customer?: string; delegate?: string }
      const pick = (x: string | undefined) =>
        typeof x === 'string' && /^[A-Za-z0-9_.:@-]{1,128}$/.test(x) ? x : undefined
      const now = new Date()
      const v = await loadDelegates(s, now, { customer: pick(q.customer), delegate: pick(q.delegate) })
      return page(reply, delegatesPage(viewer, v, now))
    })

    c.get('/console/audit', { schema: { hide: true } }, async (req, reply) => {
      const viewer = await requireViewer(req, reply)
      if (viewer === undefined) return reply
      const q = req.query as { case?: string }
      const caseId = q.case !== undefined && /^[A-Za-z0-9_-]{1,128}$/.test(q.case) ? q.case : undefined
      return page(reply, auditPage(viewer, await loadAudit(s, caseId)))
    })

    c.post('/console/audit/verify', { schema: { hide: true, consumes: FORM_BODY } }, async (req, reply) => {
      const viewer = await requireViewer(req, reply)
      if (viewer === undefined) return reply
      if (viewer.role !== 'admin') return reply.code(403).type('text/plain').send('admins only')
      const result = await verifyStore(s.store)
      return page(reply, auditPage(viewer, await loadAudit(s, undefined), result))
    })

    c.get('/console/overview', { schema: { hide: true } }, async (req, reply) => {
      const viewer = await requireViewer(req, reply)
      if (viewer === undefined) return reply
      return page(reply, overviewPage(viewer, await readOverview(s.quality, s.live)))
    })

    c.get('/console/quality', { schema: { hide: true } }, async (req, reply) => {
      const viewer = await requireViewer(req, reply)
      if (viewer === undefined) return reply
      if (viewer.role === 'operator')
        return reply.code(403).type('text/plain; charset=utf-8').send('admins and analysts only')
      const q = req.query as { since?: string; queue?: string; agent?: string }
      const given = {
        since: q.since || '7d',
        ...(q.queue ? { queue: q.queue } : {}),
        ...(q.agent ? { agent: q.agent } : {}),
      }
      const queues = s.workspace.queues.map((x) => x.id)
      try {
        return page(reply, qualityPage(viewer, await readQuality(s.quality, given), { since: given.since, queues }))
      } catch (e) {
        if (!(e instanceof BatonError)) throw e
        // a bad filter: the page says why, over the default figures
        const r = await readQuality(s.quality, {})
        return page(reply, qualityPage(viewer, r, { since: '7d', queues, error: e.message }), 400)
      }
    })

    c.get('/console/api/overview', { schema: { hide: true } }, async (req, reply) => {
      const viewer = await requireViewer(req, reply)
      if (viewer === undefined) return reply
      return readOverview(s.quality, s.live)
    })
  })

  return authenticator
}

/** Claiming exists once the queues capability registers its route. */
function claimAvailable(app: FastifyInstance): boolean {
  return app.hasRoute({ method: 'POST', url: '/v1/cases/:id/claim' })
}

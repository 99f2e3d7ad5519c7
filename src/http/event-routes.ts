import { randomBytes } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { BatonError } from '../errors.js'
import { EVENT_TYPE_PREFIX, EVENT_TYPES, subscribed, toCloudEvent } from '../events/cloudevents.js'
import { formatSecret, SECRET_PREFIX, secretBytes } from '../events/signature.js'
import { checkWebhookUrl } from '../events/targets.js'
import { refuseSecretIn } from '../signals/sensitive.js'
import type { Role } from '../store/ports.js'
import type { WebhookRecord } from '../store/work-store.js'
import { errorResponses, idParam, problem } from './schemas.js'
import type { Services } from './services.js'

const ADMIN: readonly Role[] = ['admin']
const READERS: readonly Role[] = ['admin', 'operator']
const EVENT_NAMES = ['*', ...EVENT_TYPES, ...EVENT_TYPES.map((t) => t.slice(EVENT_TYPE_PREFIX.length))]
const HEARTBEAT_MS = 15_000

const webhookView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    url: { type: 'string' },
    events: { type: 'array', items: { type: 'string' } },
    createdAt: { type: 'string' },
    delivery: {
      type: 'object',
      description: 'Durable delivery state: next audit seq to consider, retries of the event there, totals',
      properties: {
        cursor: { type: 'integer' },
        attempts: { type: 'integer' },
        nextAttemptAt: { type: 'string' },
        lastError: { type: ['string', 'null'] },
        delivered: { type: 'integer' },
        failed: { type: 'integer' },
      },
    },
  },
} as const

function view(h: WebhookRecord) {
  return {
    id: h.id,
    url: h.url,
    events: h.events,
    createdAt: h.createdAt,
    delivery: {
      cursor: h.cursor,
      attempts: h.attempts,
      nextAttemptAt: h.nextAttemptAt,
      lastError: h.lastError,
      delivered: h.delivered,
      failed: h.failed,
    },
  }
}

/** Webhook subscriptions (admin) and the server-sent event stream (`GET /v1/events`). */
export function registerEventRoutes(app: FastifyInstance, s: Services): void {
  const streams = new Set<ServerResponse>()
  app.addHook('preClose', async () => {
    for (const raw of streams) raw.end()
    streams.clear()
  })

  app.post(
    '/v1/webhooks',
    {
      config: { roles: ADMIN },
      schema: {
        tags: ['events'],
        summary:
          'Subscribe a URL to events: CloudEvents 1.0 JSON, signed (HMAC-SHA256, Standard Webhooks headers), retried with backoff. The secret is shown once',
        description:
          'The URL must name a public address, or a host whose every address is public: loopback, private, link-local (cloud metadata), unique-local and other non-public addresses, IPv4-mapped or not, are refused with VALIDATION_FAILED naming `url` unless BATON_WEBHOOK_ALLOW_PRIVATE=1. Each delivery checks the address it connects to again (DNS rebinding).',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['url', 'events'],
          properties: {
            url: { type: 'string', minLength: 8, maxLength: 2000, pattern: '^https?://' },
            events: { type: 'array', minItems: 1, maxItems: 32, uniqueItems: true, items: { enum: EVENT_NAMES } },
            secret: {
              type: 'string',
              pattern: `^${SECRET_PREFIX}[A-Za-z0-9+/=]{24,}$`,
              description: 'whsec_<base64 of at least 18 bytes>; generated when absent',
            },
          },
        },
        response: {
          201: {
            ...webhookView,
            properties: { ...webhookView.properties, secret: { type: 'string', description: 'Shown once' } },
          },
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const b = req.body as { url: string; events: string[]; secret?: string }
      // the URL is stored, audited and called as given: credentials in it are refused (use the signing secret)
      refuseSecretIn(b.url, 'url', 'a webhook URL')
      if (b.secret !== undefined && secretBytes(b.secret).length < 18) {
        throw new BatonError('VALIDATION_FAILED', 'secret: expected at least 18 bytes after whsec_', {
          fields: [{ field: 'secret', message: 'too short' }],
        })
      }
      await checkWebhookUrl(s.work.webhookTargets, b.url)
      const deps = s.work.deps
      const at = deps.now().toISOString()
      const hook: WebhookRecord = {
        id: deps.newId('wh'),
        url: b.url,
        events: b.events,
        secret: b.secret ?? formatSecret(randomBytes(24)),
        createdAt: at,
        deletedAt: null,
        // From now on: events of entries appended after the subscription.
        cursor: await s.store.auditSize(),
        attempts: 0,
        nextAttemptAt: at,
        lastError: null,
        delivered: 0,
        failed: 0,
      }
      await s.store.createWebhook(hook, {
        type: 'webhook.created',
        at,
        actor: { kind: req.actor.kind, id: req.actor.id },
        data: { webhookId: hook.id, url: hook.url, events: hook.events },
      })
      return reply.code(201).send({ ...view(hook), secret: hook.secret })
    },
  )

  app.get(
    '/v1/webhooks',
    {
      config: { roles: ADMIN },
      schema: {
        tags: ['events'],
        summary: 'Webhook subscriptions with their delivery state (never their secrets)',
        response: {
          200: { type: 'object', properties: { items: { type: 'array', items: webhookView } } },
          ...errorResponses,
        },
      },
    },
    async () => ({ items: (await s.store.listWebhooks()).map(view) }),
  )

  app.delete(
    '/v1/webhooks/:id',
    {
      config: { roles: ADMIN },
      schema: {
        tags: ['events'],
        summary: 'Unsubscribe: delivery stops at once',
        params: idParam,
        response: { 204: { type: 'null' }, ...errorResponses, 404: problem },
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string }
      const at = s.work.deps.now().toISOString()
      const ok = await s.store.deleteWebhook(id, at, {
        type: 'webhook.deleted',
        at,
        actor: { kind: req.actor.kind, id: req.actor.id },
        data: { webhookId: id },
      })
      if (!ok) throw new BatonError('WEBHOOK_NOT_FOUND', `no webhook '${id}'`)
      return reply.code(204).send()
    },
  )

  app.get(
    '/v1/events',
    {
      config: { roles: READERS },
      schema: {
        tags: ['events'],
        summary:
          'Live events as server-sent events (text/event-stream): the same CloudEvents as webhooks, `id` = audit seq. Resumes after `Last-Event-ID` (header) or `after`; otherwise starts now',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            types: { type: 'string', maxLength: 1000, description: 'Comma-separated event types (default: all)' },
            // A decimal string, not a coerced integer: the pattern keeps it plain decimal and a safe integer.
            after: {
              type: 'string',
              pattern: '^(-1|[0-9]{1,15})$',
              description: 'Resume after this audit seq (as Last-Event-ID); -1 replays from the start',
            },
          },
        },
        headers: {
          type: 'object',
          properties: { 'last-event-id': { type: 'string', pattern: '^[0-9]{1,15}$' } },
        },
        response: {
          200: { description: 'text/event-stream of CloudEvents', type: 'string' },
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const q = req.query as { types?: string; after?: string }
      const filter =
        q.types === undefined
          ? ['*']
          : q.types
              .split(',')
              .map((t) => t.trim())
              .filter((t) => t !== '')
      const unknown = filter.filter((t) => !EVENT_NAMES.includes(t))
      if (unknown.length > 0) {
        throw new BatonError('VALIDATION_FAILED', `types: unknown event type '${unknown[0]}'`, {
          fields: [{ field: 'types', message: `unknown event type '${unknown[0]}'` }],
        })
      }
      const lastId = req.headers['last-event-id']
      let cursor =
        typeof lastId === 'string'
          ? Number(lastId) + 1
          : q.after !== undefined
            ? Number(q.after) + 1
            : await s.store.auditSize()
      const raw = reply.raw
      reply.hijack()
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      })
      raw.write('retry: 2000\n\n')
      streams.add(raw)
      let open = true
      let wake: () => void = () => undefined
      const closed = () => {
        open = false
        streams.delete(raw)
        wake()
      }
      req.raw.once('close', closed)
      raw.once('close', closed)
      let lastWrite = Date.now()
      const source = s.work.eventSource
      // Woken by the store's audit notifications (every node's writes); streamPollMs is only the fallback.
      let changed = false
      const offAudit = s.store.changes.subscribe('audit', () => {
        changed = true
        wake()
      })
      try {
        while (open) {
          changed = false
          const entries = await s.store.readAudit(cursor, cursor + 500)
          for (const e of entries) {
            cursor = e.seq + 1
            const ev = toCloudEvent(e.entry, source)
            if (ev === null || !subscribed(filter, ev.type)) continue
            raw.write(`id: ${ev.id}\nevent: ${ev.type}\ndata: ${JSON.stringify(ev)}\n\n`)
            lastWrite = Date.now()
          }
          if (Date.now() - lastWrite > HEARTBEAT_MS) {
            raw.write(': keep-alive\n\n')
            lastWrite = Date.now()
          }
          if (entries.length < 500 && open && !changed) {
            await new Promise<void>((r) => {
              const t = setTimeout(r, s.work.streamPollMs)
              wake = () => {
                clearTimeout(t)
                r()
              }
            })
          }
        }
      } catch (e) {
        req.log.warn({ err: e }, 'event stream ended')
      } finally {
        offAudit()
        streams.delete(raw)
        raw.end()
      }
    },
  )
}

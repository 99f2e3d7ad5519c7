import type { FastifyInstance, FastifyRequest } from 'fastify'
import { actorRef, openCase, receiveMessage } from '../cases/intake.js'
import { delegateCaseView, refuseDelegateClaims, requireOwnCase } from '../delegation/requests.js'
import { BatonError } from '../errors.js'
import type { Role } from '../store/ports.js'
import { YAML_BODY } from './protocol.js'
import {
  customerBody,
  errorResponses,
  idParam,
  intakeResult,
  keyBody,
  messageBody,
  openCaseBody,
  problem,
} from './schemas.js'
import { refusal } from './server.js'
import type { Services } from './services.js'

const ALL: readonly Role[] = ['admin', 'service', 'operator']
/** Everyone who may read cases, decisions and the policy: the read-only analyst too. */
const READERS: readonly Role[] = [...ALL, 'analyst']
const ADMIN_OR_ANALYST: readonly Role[] = ['admin', 'analyst']
const WRITERS: readonly Role[] = ['admin', 'service']
const ADMIN: readonly Role[] = ['admin']

type OpenCaseBody = {
  customer: string | { id: string; tier?: string; verified?: boolean }
  channel: string
  subject?: string
  message: { text: string }
  signals?: Record<string, unknown>
}

const policyActivated = {
  type: 'object',
  required: ['name', 'version', 'hash', 'outcome'],
  properties: {
    name: { type: 'string' },
    version: { type: 'integer' },
    hash: { type: 'string', description: 'sha256 of the YAML source' },
    outcome: {
      type: 'string',
      enum: ['activated', 'unchanged'],
      description: '`unchanged`: this document was already the newest activated version; nothing was recorded',
    },
  },
} as const
/** Runs a delegate's request checks; a refusal is audited (`access.refused`, with the whole chain) and rethrown. */
async function delegateRequest<T>(s: Services, req: FastifyRequest, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    if (e instanceof BatonError) await refusal(s, req, e, req.actor)
    throw e
  }
}

export function registerRoutes(app: FastifyInstance, s: Services): void {
  app.get('/healthz', { schema: { tags: ['operations'], summary: 'Liveness', security: [] } }, async () => ({
    status: 'ok',
  }))
  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: the store answers and a policy is active',
        description:
          '200 while the store answers; 503 with the reason while it does not (PostgreSQL restarting or unreachable, the disk full). Baton reconnects on its own: no restart is needed when the store comes back.',
        security: [],
        response: {
          200: {
            type: 'object',
            required: ['status'],
            properties: { status: { type: 'string', const: 'ready' } },
          },
          503: {
            type: 'object',
            required: ['status', 'code', 'reason'],
            properties: {
              status: { type: 'string', const: 'unavailable' },
              code: { type: 'string', description: 'STORE_UNAVAILABLE or STORE_FULL' },
              reason: { type: 'string', description: 'The cause, e.g. "the database refused the connection"' },
            },
          },
        },
      },
    },
    async (_req, reply) => {
      const h = await s.ready()
      return h.ok
        ? reply.code(200).send({ status: 'ready' })
        : reply.code(503).send({ status: 'unavailable', code: h.code, reason: h.reason })
    },
  )

  app.post(
    '/v1/cases',
    {
      config: { roles: WRITERS, delegate: 'route' },
      schema: {
        tags: ['cases'],
        summary:
          "Open a case with its first customer message; Baton decides who handles it. A customer's delegate (scope unlocking this route) opens cases for its own customer only, without signals or customer attributes",
        security: [{ apiKey: [] }, { delegateToken: [] }],
        body: openCaseBody,
        response: { 201: intakeResult, ...errorResponses, 422: problem },
      },
    },
    async (req, reply) => {
      const b = req.body as OpenCaseBody
      const customer = typeof b.customer === 'string' ? { id: b.customer } : b.customer
      if (req.actor.delegation !== undefined) {
        await delegateRequest(s, req, async () => {
          const { id, ...attributes } = customer
          refuseDelegateClaims(req.actor, {
            signals: b.signals,
            customer: Object.keys(attributes).length > 0 ? attributes : undefined,
          })
          requireOwnCase(req.actor, { id: '(new)', customerId: id })
        })
      }
      const r = await openCase(s.intake, req.actor, {
        customerId: customer.id,
        channel: b.channel,
        subject: b.subject,
        text: b.message.text,
        signals: b.signals,
        customer: { tier: customer.tier, verified: customer.verified },
      })
      return reply.code(201).header('location', `/v1/cases/${r.id}`).send(r)
    },
  )

  app.post(
    '/v1/cases/:id/messages',
    {
      config: { roles: WRITERS, delegate: 'route' },
      schema: {
        tags: ['cases'],
        summary:
          "Add a customer message to a case; routing is decided again. A customer's delegate writes to its own customer's cases only, without signals or customer attributes",
        security: [{ apiKey: [] }, { delegateToken: [] }],
        params: idParam,
        body: messageBody,
        response: { 200: intakeResult, ...errorResponses, 404: problem, 409: problem },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const b = req.body as {
        message: { text: string }
        signals?: Record<string, unknown>
        customer?: { tier?: string; verified?: boolean }
      }
      if (req.actor.delegation !== undefined) {
        await delegateRequest(s, req, async () => {
          refuseDelegateClaims(req.actor, b)
          const c = await s.store.getCase(id)
          if (c === undefined) throw new BatonError('CASE_NOT_FOUND', `no case with id '${id}'`)
          requireOwnCase(req.actor, c)
        })
      }
      return receiveMessage(s.intake, req.actor, id, { text: b.message.text, signals: b.signals, customer: b.customer })
    },
  )

  app.get(
    '/v1/cases/:id',
    {
      config: { roles: READERS, delegate: 'route' },
      schema: {
        tags: ['cases'],
        summary:
          "A case: its messages (redacted), handler history with reasons, and every decision. A customer's delegate (scope unlocking this route) reads its own customer's cases only: the conversation and the state; the read is audited",
        security: [{ apiKey: [] }, { delegateToken: [] }],
        params: idParam,
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      if (req.actor.delegation !== undefined) {
        const actor = req.actor
        return delegateRequest(s, req, async () => {
          const c = await s.store.getCase(id)
          if (c === undefined) throw new BatonError('CASE_NOT_FOUND', `no case with id '${id}'`)
          requireOwnCase(actor, c)
          const events = await s.store.listCaseEvents(id)
          await s.store.appendAudit([
            { type: 'case.read', at: s.authority.now().toISOString(), caseId: id, actor: actorRef(actor), data: {} },
          ])
          return delegateCaseView(c, events)
        })
      }
      const c = await s.store.getCase(id)
      if (c === undefined) throw new BatonError('CASE_NOT_FOUND', `no case with id '${id}'`)
      const [events, decisions] = await Promise.all([s.store.listCaseEvents(id), s.store.listDecisions(id)])
      const messages = events
        .filter((e) => e.type === 'message.received')
        .map((e) => ({
          id: e.data.messageId,
          at: e.at,
          author: e.data.author,
          text: e.data.text,
          secrets: (e.data.secrets as { kind: string }[]).map((x) => x.kind),
          pii: (e.data.pii as { kind: string }[]).map((x) => x.kind),
        }))
      const handlers = events
        .filter((e) => e.type === 'case.decided' || e.type === 'case.handed_off')
        .reduce<{ at: string; handler: unknown; decisionId: string; rules: unknown; trigger: unknown }[]>((acc, e) => {
          if (e.type === 'case.decided' && acc.length === 0) {
            acc.push({
              at: e.at,
              handler: e.data.handler,
              decisionId: e.data.decisionId as string,
              rules: e.data.rules,
              trigger: e.data.trigger,
            })
          } else if (e.type === 'case.handed_off') {
            const cause = e.data.cause as { decisionId: string; rules: unknown; trigger: unknown }
            acc.push({
              at: e.at,
              handler: e.data.to,
              decisionId: cause.decisionId,
              rules: cause.rules,
              trigger: cause.trigger,
            })
          }
          return acc
        }, [])
      return {
        id: c.id,
        customerId: c.customerId,
        channel: c.channel,
        subject: c.subject,
        state: c.state,
        handler: c.handler,
        humanOwned: c.humanOwned === true,
        handoffs: c.handoffs,
        createdAt: c.createdAt,
        updatedAt: c.updatedAt,
        messages,
        handlers,
        decisions: decisions.map((d) => {
          const { facts, ...rest } = d.data
          return { ...rest, at: d.at, facts }
        }),
        events: events.map((e) => ({ seq: e.seq, type: e.type, at: e.at })),
      }
    },
  )

  app.get(
    '/v1/cases',
    {
      config: { roles: READERS },
      schema: {
        tags: ['cases'],
        summary: 'List cases, by id, with filters',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            state: { type: 'string', enum: ['open', 'closed'] },
            queue: { type: 'string', maxLength: 64 },
            handler: { type: 'string', enum: ['agent', 'operator', 'hybrid'] },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
            after: { type: 'string', maxLength: 128 },
          },
        },
      },
    },
    async (req) => {
      const q = req.query as { state?: string; queue?: string; handler?: string; limit: number; after?: string }
      // one more than the page, to know whether a page follows: `next` only when it does
      const cases = await s.store.listCases({
        limit: q.limit + 1,
        ...(q.state === undefined ? {} : { state: q.state }),
        ...(q.queue === undefined ? {} : { queue: q.queue }),
        ...(q.handler === undefined ? {} : { handlerKind: q.handler }),
        ...(q.after === undefined ? {} : { after: q.after }),
      })
      const more = cases.length > q.limit
      const items = cases.slice(0, q.limit).map((c) => ({
        id: c.id,
        customerId: c.customerId,
        channel: c.channel,
        subject: c.subject,
        state: c.state,
        handler: c.handler,
        humanOwned: c.humanOwned === true,
        handoffs: c.handoffs,
        updatedAt: c.updatedAt,
      }))
      return { items, next: more ? (items.at(-1)?.id ?? null) : null }
    },
  )

  app.get(
    '/v1/decisions/:id',
    {
      config: { roles: READERS },
      schema: {
        tags: ['cases'],
        summary: 'One decision with its explanation and the facts it read (for replay)',
        params: idParam,
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const d = await s.store.getDecision(id)
      if (d === undefined) throw new BatonError('NOT_FOUND', `no decision with id '${id}'`)
      return { id: d.id, caseId: d.caseId, kind: d.kind, outcome: d.outcome, at: d.at, ...d.data }
    },
  )

  app.put(
    '/v1/customers/:id',
    {
      config: { roles: WRITERS },
      schema: {
        tags: ['customers'],
        summary: 'Create or replace a customer record',
        params: idParam,
        body: customerBody,
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const b = req.body as { tier: string; verified?: boolean; attributes?: Record<string, unknown> }
      return s.customers.put(
        id,
        { tier: b.tier, verified: b.verified ?? false, attributes: b.attributes ?? {} },
        req.actor,
      )
    },
  )
  app.get(
    '/v1/customers/:id',
    { config: { roles: ALL }, schema: { tags: ['customers'], summary: 'A customer record', params: idParam } },
    async (req) => {
      const { id } = req.params as { id: string }
      const c = await s.store.getCustomer(id)
      if (c === undefined) throw new BatonError('CUSTOMER_NOT_FOUND', `no customer with id '${id}'`)
      return c
    },
  )

  app.post(
    '/v1/keys',
    {
      config: { roles: ADMIN },
      schema: {
        tags: ['access'],
        summary: 'Create an API key for a role; the key is shown once',
        body: keyBody,
        response: {
          201: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              key: { type: 'string' },
              role: { type: 'string' },
              name: { type: 'string' },
              createdAt: { type: 'string' },
              operatorId: { type: 'string' },
            },
          },
          ...errorResponses,
          404: problem,
        },
      },
    },
    async (req, reply) => {
      const b = req.body as { role: Role; name: string; operatorId?: string }
      const { record, key } = await s.keys.create(b.role, b.name, req.actor, b.operatorId)
      return reply.code(201).send({
        id: record.id,
        key,
        role: record.role,
        name: record.name,
        createdAt: record.createdAt,
        ...(record.principalId ? { operatorId: record.principalId } : {}),
      })
    },
  )
  app.get(
    '/v1/keys',
    { config: { roles: ADMIN }, schema: { tags: ['access'], summary: 'List API keys (never their values)' } },
    async () => {
      const keys = await s.store.listKeys()
      return { items: keys.map(({ hash: _hash, ...k }) => k) }
    },
  )
  app.delete(
    '/v1/keys/:id',
    { config: { roles: ADMIN }, schema: { tags: ['access'], summary: 'Revoke an API key', params: idParam } },
    async (req, reply) => {
      const { id } = req.params as { id: string }
      if (!(await s.keys.revoke(id, req.actor))) throw new BatonError('KEY_NOT_FOUND', `no active key '${id}'`)
      return reply.code(204).send()
    },
  )

  app.get(
    '/v1/policy',
    {
      config: { roles: READERS },
      schema: { tags: ['policy'], summary: 'The policy in force: name, version, hash, owner' },
    },
    async () => {
      const p = s.policy.current()
      return { ...p.policy.ref, owner: p.policy.owner, file: p.file, loadedAt: p.loadedAt }
    },
  )
  app.get(
    '/v1/policy/versions',
    {
      config: { roles: ADMIN_OR_ANALYST },
      schema: {
        tags: ['policy'],
        summary: 'Every policy version ever activated, oldest first',
        description: 'Versions only go up: each version names one document, and a new one must be higher.',
      },
    },
    async () => {
      const versions = await s.store.listPolicyVersions()
      return { items: versions.map(({ source: _source, ...v }) => v) }
    },
  )
  app.get(
    '/v1/policy/source',
    {
      config: { roles: ADMIN_OR_ANALYST },
      schema: { tags: ['policy'], summary: 'The YAML source of the policy in force' },
    },
    async (req, reply) => {
      const hash = s.policy.current().policy.ref.hash
      const v = (await s.store.listPolicyVersions()).find((p) => p.hash === hash)
      req.log.debug({ hash }, 'policy source read')
      return reply.type('application/yaml').send(v?.source ?? '')
    },
  )
  app.put(
    '/v1/policy',
    {
      config: { roles: ADMIN },
      schema: {
        tags: ['policy'],
        summary: 'Activate new policy text (YAML)',
        description:
          'Its metadata.version must be higher than the newest version ever activated in this store ' +
          '(GET /v1/policy/versions); the newest document again is answered with outcome `unchanged`. Refused ' +
          'with positions when it does not compile (422 POLICY_INVALID) or its version is not higher (409 ' +
          'POLICY_VERSION_CONFLICT); the previous version stays in force.',
        consumes: YAML_BODY,
        body: { type: 'string', minLength: 1 },
        response: { 200: policyActivated, ...errorResponses, 409: problem, 422: problem },
      },
    },
    async (req) => s.policy.activate(req.body as string, 'policy.yaml (PUT /v1/policy)', req.actor),
  )
  app.post(
    '/v1/policy/reload',
    {
      config: { roles: ADMIN },
      schema: {
        tags: ['policy'],
        summary: 'Re-read the workspace policy file from disk and activate it',
        description:
          'Reads the file by its path, as the file watch does, under the same rules as PUT /v1/policy: refused ' +
          'with positions (422 POLICY_INVALID, 409 POLICY_VERSION_CONFLICT, 404 POLICY_NOT_FOUND when the file ' +
          'cannot be read); the previous version stays in force.',
        response: { 200: policyActivated, ...errorResponses, 404: problem, 409: problem, 422: problem },
      },
    },
    async (req) => s.policy.reload(req.actor),
  )
}

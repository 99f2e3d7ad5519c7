import type { FastifyInstance } from 'fastify'
import { decideConfirmation } from '../delegation/confirm.js'
import { CONFIRMATION_STATES, type ConfirmationRecord, type ConfirmationState } from '../delegation/confirmation.js'
import type { GrantRecord } from '../delegation/grants.js'
import {
  grantToDelegate,
  registerDelegate,
  revokeGrant,
  subdelegate,
  transitionDelegate,
} from '../delegation/registry.js'
import { BatonError } from '../errors.js'
import type { Role } from '../store/ports.js'
import {
  confirmationBody,
  confirmationView,
  delegateBody,
  delegateView,
  grantBody,
  grantView,
  scopeView,
} from './delegation-schemas.js'
import { errorResponses, idParam, problem } from './schemas.js'
import { delegateAuthOf, refusal } from './server.js'
import type { Services } from './services.js'

const ADMIN: readonly Role[] = ['admin']
const READERS: readonly Role[] = ['admin', 'operator', 'service']
/** Grants are the customer's consent: the helpdesk gives them for a customer it authenticated. */
const HELPDESK: readonly Role[] = ['service']
/** Revoking is always safe: the helpdesk for the customer, or an admin in an incident. */
const REVOKERS: readonly Role[] = ['service', 'admin']

const reasonBody = {
  type: 'object',
  additionalProperties: false,
  required: ['reason'],
  properties: { reason: { type: 'string', minLength: 1, maxLength: 1000 } },
} as const

const grantParams = {
  type: 'object',
  required: ['id', 'grant'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 128 },
    grant: { type: 'string', minLength: 1, maxLength: 128 },
  },
} as const

const grantList = { type: 'object', properties: { items: { type: 'array', items: grantView } } } as const

const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    active: { type: 'string', enum: ['true', 'false'], description: 'only grants neither revoked nor expired' },
    limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$', description: 'at most this many (100, ≤ 999)' },
  },
} as const

type GrantBody = {
  delegate: string
  scopes: string[]
  expires_at: string
  limits?: Record<string, string>
  may_subdelegate?: boolean
  note?: string
}

const inputOf = (b: GrantBody) => ({
  delegate: b.delegate,
  scopes: b.scopes,
  expiresAt: b.expires_at,
  limits: b.limits,
  maySubdelegate: b.may_subdelegate,
  note: b.note,
})

/** A pending confirmation past its expiry reads as expired (it is settled so by its timer or the next answer). */
function shownConfirmation(c: ConfirmationRecord, now: Date): ConfirmationRecord {
  return c.state === 'pending' && now.getTime() >= Date.parse(c.expiresAt) ? { ...c, state: 'expired' } : c
}

/** An active grant past its expiry reads as `expired`. */
function shownGrant(g: GrantRecord, now: Date): Omit<GrantRecord, 'state'> & { state: string } {
  return g.state === 'active' && now.getTime() >= Date.parse(g.expiresAt) ? { ...g, state: 'expired' } : g
}

/** Delegates (customers' own AI agents), the scopes a shop declares, grants and sub-delegations. */
export function registerDelegationRoutes(app: FastifyInstance, s: Services): void {
  const deps = s.authority

  app.get(
    '/v1/delegation/scopes',
    {
      config: { roles: READERS },
      schema: {
        tags: ['delegation'],
        summary: "The scopes the workspace's delegation.yaml declares, what each unlocks, its limit and longest grant",
        response: {
          200: {
            type: 'object',
            properties: { maxChain: { type: 'integer' }, items: { type: 'array', items: scopeView } },
          },
        },
      },
    },
    async () => ({
      maxChain: deps.delegation.maxChain,
      items: [...deps.delegation.scopes.values()].map((x) => ({
        name: x.name,
        description: x.description,
        routes: x.routes,
        tools: x.tools,
        limits: x.limit?.text ?? null,
        maxGrantSeconds: x.maxGrantSeconds,
      })),
    }),
  )

  app.post(
    '/v1/delegates',
    {
      config: { roles: ADMIN },
      schema: {
        tags: ['delegation'],
        summary:
          "Register a customer's AI agent as a principal of kind delegate (active), with the Ed25519 public key of its RFC 7523 assertions; audited",
        body: delegateBody,
        response: { 201: delegateView, ...errorResponses, 409: problem },
      },
    },
    async (req, reply) => {
      const b = req.body as { id: string; name: string; vendor: string; contact: string; jwk: Record<string, unknown> }
      return reply.code(201).send(await registerDelegate(deps, req.actor, b))
    },
  )
  app.get(
    '/v1/delegates',
    {
      config: { roles: READERS },
      schema: {
        tags: ['delegation'],
        summary: 'Every registered delegate',
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: delegateView } } } },
      },
    },
    async () => ({ items: await s.store.listDelegates() }),
  )
  app.get(
    '/v1/delegates/:id',
    {
      config: { roles: READERS },
      schema: {
        tags: ['delegation'],
        summary: 'One delegate',
        params: idParam,
        response: { 200: delegateView, ...errorResponses, 404: problem },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const d = await s.store.getDelegate(id)
      if (d === undefined) throw new BatonError('DELEGATE_NOT_FOUND', `no delegate with id '${id}'`)
      return d
    },
  )
  for (const [verb, to] of [
    ['activate', 'active'],
    ['suspend', 'suspended'],
    ['retire', 'retired'],
  ] as const) {
    app.post(
      `/v1/delegates/:id/${verb}`,
      {
        config: { roles: ADMIN },
        schema: {
          tags: ['delegation'],
          summary:
            to === 'active'
              ? 'Reactivate a suspended delegate (audited, with a reason)'
              : to === 'suspended'
                ? 'Suspend a delegate (audited, with a reason): its tokens, and every token below it in a chain, stop working at once on every node'
                : 'Retire a delegate for good (audited, with a reason): revokes its grants and their sub-delegations',
          params: idParam,
          body: reasonBody,
          response: {
            200: {
              type: 'object',
              properties: { delegate: delegateView, revokedGrants: { type: 'array', items: { type: 'string' } } },
            },
            ...errorResponses,
            404: problem,
            409: problem,
          },
        },
      },
      async (req) => {
        const { id } = req.params as { id: string }
        return transitionDelegate(deps, req.actor, id, to, (req.body as { reason: string }).reason)
      },
    )
  }
  app.get(
    '/v1/delegates/:id/grants',
    {
      config: { roles: READERS },
      schema: {
        tags: ['delegation'],
        summary: "A delegate's grants (from customers and sub-delegations), newest first",
        params: idParam,
        querystring: listQuery,
        response: { 200: grantList, ...errorResponses, 404: problem },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      if ((await s.store.getDelegate(id)) === undefined) {
        throw new BatonError('DELEGATE_NOT_FOUND', `no delegate with id '${id}'`)
      }
      const q = req.query as { active?: string; limit?: string }
      const now = deps.now()
      const items = await s.store.listGrants({
        delegateId: id,
        limit: Number(q.limit ?? 100),
        ...(q.active === 'true' ? { activeAt: now.toISOString() } : {}),
      })
      return { items: items.map((g) => shownGrant(g, now)) }
    },
  )

  app.post(
    '/v1/customers/:id/grants',
    {
      config: { roles: HELPDESK },
      schema: {
        tags: ['delegation'],
        summary:
          "The helpdesk, having authenticated the customer, grants one of the customer's delegates scopes, until an expiry, with optional limits; audited",
        params: idParam,
        body: grantBody,
        response: { 201: grantView, ...errorResponses, 404: problem },
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string }
      const g = await grantToDelegate(deps, req.actor, id, inputOf(req.body as GrantBody))
      return reply.code(201).header('location', `/v1/customers/${id}/grants/${g.id}`).send(g)
    },
  )
  app.get(
    '/v1/customers/:id/grants',
    {
      config: { roles: READERS },
      schema: {
        tags: ['delegation'],
        summary: "A customer's grants and the sub-delegations below them, newest first",
        params: idParam,
        querystring: listQuery,
        response: { 200: grantList, ...errorResponses },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const q = req.query as { active?: string; limit?: string }
      const now = deps.now()
      const items = await s.store.listGrants({
        customerId: id,
        limit: Number(q.limit ?? 100),
        ...(q.active === 'true' ? { activeAt: now.toISOString() } : {}),
      })
      return { items: items.map((g) => shownGrant(g, now)) }
    },
  )
  app.get(
    '/v1/customers/:id/grants/:grant',
    {
      config: { roles: READERS },
      schema: {
        tags: ['delegation'],
        summary: "One of a customer's grants",
        params: grantParams,
        response: { 200: grantView, ...errorResponses, 404: problem },
      },
    },
    async (req) => {
      const { id, grant } = req.params as { id: string; grant: string }
      const g = await s.store.getGrant(grant)
      if (g === undefined || g.customerId !== id) {
        throw new BatonError('GRANT_NOT_FOUND', `customer '${id}' has no grant '${grant}'`)
      }
      return shownGrant(g, deps.now())
    },
  )
  app.delete(
    '/v1/customers/:id/grants/:grant',
    {
      config: { roles: REVOKERS },
      schema: {
        tags: ['delegation'],
        summary:
          'Revoke a grant and every sub-delegation below it; in force at once on every node (every delegate request re-reads its chain); audited',
        params: grantParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { reason: { type: 'string', maxLength: 1000 } },
        },
        response: {
          200: {
            type: 'object',
            properties: { grant: grantView, revoked: { type: 'array', items: { type: 'string' } } },
          },
          ...errorResponses,
          404: problem,
        },
      },
    },
    async (req) => {
      const { id, grant } = req.params as { id: string; grant: string }
      const reason = (req.query as { reason?: string }).reason ?? 'revoked by the customer'
      return revokeGrant(deps, req.actor, id, grant, reason)
    },
  )

  app.post(
    '/v1/grants/:id/subgrants',
    {
      config: { delegate: 'grant' },
      schema: {
        tags: ['delegation'],
        summary:
          'A delegate passes part of the grant its token acts under on to another delegate: only where the grant allows it, within max_chain, narrowing scopes, expiry and limits; audited',
        security: [{ delegateToken: [] }],
        params: idParam,
        body: grantBody,
        response: { 201: grantView, ...errorResponses, 404: problem },
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string }
      const auth = delegateAuthOf(req)
      if (auth === undefined) throw new BatonError('UNAUTHENTICATED', "this route needs a delegate's access token")
      try {
        const g = await subdelegate(deps, auth, id, inputOf(req.body as GrantBody))
        return reply.code(201).send(g)
      } catch (e) {
        if (e instanceof BatonError) await refusal(s, req, e, auth.actor)
        throw e
      }
    },
  )

  app.get(
    '/v1/confirmations',
    {
      config: { roles: READERS },
      schema: {
        tags: ['delegation'],
        summary:
          'Customer confirmations, oldest first; ?state=pending&customer=… for what the helpdesk must show a customer',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            state: { type: 'string', enum: [...CONFIRMATION_STATES] },
            customer: { type: 'string', maxLength: 128 },
            case: { type: 'string', maxLength: 128 },
            limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$', description: 'at most this many (100, ≤ 999)' },
          },
        },
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: confirmationView } } } },
      },
    },
    async (req) => {
      const q = req.query as { state?: ConfirmationState; customer?: string; case?: string; limit?: string }
      const now = deps.now()
      const items = (
        await s.store.listConfirmations({
          limit: Number(q.limit ?? 100),
          ...(q.state === undefined ? {} : { state: q.state }),
          ...(q.customer === undefined ? {} : { customerId: q.customer }),
          ...(q.case === undefined ? {} : { caseId: q.case }),
        })
      )
        .map((c) => shownConfirmation(c, now))
        .filter((c) => q.state === undefined || c.state === q.state)
      return { items }
    },
  )
  app.get(
    '/v1/confirmations/:id',
    {
      config: { roles: READERS },
      schema: {
        tags: ['delegation'],
        summary: 'One confirmation, with the exact parameters to show the customer',
        params: idParam,
        response: { 200: confirmationView, ...errorResponses, 404: problem },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const c = await s.store.getConfirmation(id)
      if (c === undefined) throw new BatonError('CONFIRMATION_NOT_FOUND', `no confirmation with id '${id}'`)
      return shownConfirmation(c, deps.now())
    },
  )
  app.post(
    '/v1/confirmations/:id',
    {
      config: { roles: HELPDESK },
      schema: {
        tags: ['delegation'],
        summary:
          "The customer confirms or declines, through the helpdesk's service key after it authenticated them: for their own confirmation only, with exactly the parameters it is bound to, once, before expiry, while the delegate's whole chain still holds; on confirm the action executes once. A delegate's token is refused here, always",
        params: idParam,
        body: confirmationBody,
        response: {
          200: {
            type: 'object',
            properties: {
              confirmation: confirmationView,
              action: { type: 'object', properties: { id: { type: 'string' }, state: { type: 'string' } } },
              result: {
                type: 'object',
                properties: {
                  status: { type: ['integer', 'null'] },
                  digest: { type: ['string', 'null'] },
                  error: { type: ['string', 'null'] },
                },
              },
            },
          },
          ...errorResponses,
          404: problem,
          409: problem,
          502: problem,
        },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const b = req.body as {
        customer: string
        decision: 'confirm' | 'decline'
        params?: Record<string, unknown>
        reason?: string
      }
      return decideConfirmation(deps, req.actor, id, b)
    },
  )
}

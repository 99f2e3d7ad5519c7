import type { FastifyInstance } from 'fastify'
import { APPROVAL_STATES, type ApprovalRecord, type ApprovalState } from '../approvals/approval.js'
import { collectApprovedCredential, decideApproval, executeApproval } from '../approvals/decide.js'
import { BatonError } from '../errors.js'
import type { Role } from '../store/ports.js'
import { approvalView } from './authority-schemas.js'
import { errorResponses, idParam, problem } from './schemas.js'
import { agentAuthOf, refusal } from './server.js'
import type { Services } from './services.js'

const READERS: readonly Role[] = ['admin', 'operator']

/** A pending approval past its expiry reads as expired (it is settled so at the next decision attempt). */
function shown(a: ApprovalRecord, now: Date): ApprovalRecord {
  return a.state === 'pending' && now.getTime() >= Date.parse(a.expiresAt) ? { ...a, state: 'expired' } : a
}

const decisionResult = {
  type: 'object',
  properties: {
    approval: approvalView,
    action: { type: 'object', properties: { id: { type: 'string' }, state: { type: 'string' } } },
    result: {
      type: 'object',
      properties: {
        status: { type: ['integer', 'null'] },
        digest: { type: ['string', 'null'] },
        error: { type: ['string', 'null'] },
      },
    },
    reevaluation: {
      type: 'object',
      properties: {
        outcome: { type: 'string' },
        rules: { type: 'array', items: { type: 'string' } },
        reason: { type: 'string' },
      },
    },
  },
} as const

/** Approvals: the pending list, one approval, a human's decision, and (re)execution of an approved action. */
export function registerApprovalRoutes(app: FastifyInstance, s: Services): void {
  const deps = s.authority
  app.get(
    '/v1/approvals',
    {
      config: { roles: READERS },
      schema: {
        tags: ['approvals'],
        summary: 'Approvals, oldest first; ?state=pending for the work list',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            state: { type: 'string', enum: [...APPROVAL_STATES] },
            limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$', description: 'at most this many (100, ≤ 999)' },
          },
        },
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: approvalView } } } },
      },
    },
    async (req) => {
      const q = req.query as { state?: ApprovalState; limit?: string }
      const limit = Number(q.limit ?? 100)
      const now = deps.now()
      const items = (await s.store.listApprovals({ limit, ...(q.state === undefined ? {} : { state: q.state }) }))
        .map((a) => shown(a, now))
        // A pending approval past its expiry can no longer be decided: it is off the work list.
        .filter((a) => q.state === undefined || a.state === q.state)
      return { items }
    },
  )
  app.get(
    '/v1/approvals/:id',
    {
      config: { roles: READERS },
      schema: {
        tags: ['approvals'],
        summary: 'One approval',
        params: idParam,
        response: { 200: approvalView, 404: problem },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const a = await s.store.getApproval(id)
      if (a === undefined) throw new BatonError('APPROVAL_NOT_FOUND', `no approval with id '${id}'`)
      return shown(a, deps.now())
    },
  )
  app.post(
    '/v1/approvals/:id/decision',
    {
      config: { roles: READERS },
      schema: {
        tags: ['approvals'],
        summary:
          'Approve or deny, with a reason. Only an operator holding the role the rule names, not the requester, before expiry; on approve the action executes once with exactly the approved parameters',
        params: idParam,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['decision', 'reason'],
          properties: {
            decision: { type: 'string', enum: ['approve', 'deny'] },
            reason: { type: 'string', minLength: 1, maxLength: 2000 },
          },
        },
        response: { 200: decisionResult, ...errorResponses, 404: problem, 409: problem, 502: problem },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      return decideApproval(deps, req.actor, id, req.body as { decision: 'approve' | 'deny'; reason: string })
    },
  )
  app.post(
    '/v1/approvals/:id/execute',
    {
      config: { roles: READERS },
      schema: {
        tags: ['approvals'],
        summary:
          'Execute an approved action that has not run yet; an executed one is refused with APPROVAL_ALREADY_EXECUTED (nothing happens twice)',
        params: idParam,
        response: { 200: decisionResult, ...errorResponses, 404: problem, 409: problem },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      return executeApproval(deps, req.actor, id)
    },
  )
  app.post(
    '/v1/approvals/:id/credential',
    {
      config: { agent: true },
      schema: {
        tags: ['approvals'],
        summary:
          'The requesting agent collects, once, the credential of an approved action whose tool hands out credentials (scoped to the case, tool and approved parameters)',
        security: [{ agentToken: [] }],
        params: idParam,
        response: {
          200: {
            type: 'object',
            properties: {
              actionId: { type: 'string' },
              credential: {
                type: 'object',
                properties: { token: { type: 'string' }, expiresAt: { type: 'string' }, audience: { type: 'string' } },
              },
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
      const auth = agentAuthOf(req)
      try {
        return reply.header('cache-control', 'no-store').send(await collectApprovedCredential(deps, auth, id))
      } catch (e) {
        if (e instanceof BatonError) await refusal(s, req, e, auth.actor)
        throw e
      }
    },
  )
}

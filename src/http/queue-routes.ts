import type { FastifyInstance, FastifyRequest } from 'fastify'
import { BatonError } from '../errors.js'
import { slaLeftSeconds } from '../queues/priority.js'
import { assignNext, claimCase, findQueue, handBack, takeOver } from '../queues/work.js'
import type { Role } from '../store/ports.js'
import type { Assignment, WorkItem } from '../store/work-store.js'
import { errorResponses, idParam, problem } from './schemas.js'
import type { Services } from './services.js'

const READERS: readonly Role[] = ['admin', 'operator']
const WORKERS: readonly Role[] = ['admin', 'operator']

const reasonText = {
  type: 'string',
  minLength: 3,
  maxLength: 2000,
  description: 'Why (kept in the audit log)',
} as const
const operatorIdField = {
  type: 'string',
  minLength: 1,
  maxLength: 64,
  description: 'Admin only: the operator acting; an operator key acts as its own operator',
} as const

const workItem = {
  type: 'object',
  properties: {
    caseId: { type: 'string' },
    queue: { type: 'string' },
    position: { type: 'integer', description: '1-based place in the queue by priority' },
    enqueuedAt: { type: 'string' },
    slaDue: { type: 'string' },
    slaLeftS: { type: 'integer', description: 'Seconds to the SLA deadline; negative once breached' },
    breached: { type: 'boolean' },
    rank: { type: 'integer', description: 'Effective deadline (ms since epoch) after tier, risk and breach' },
    tier: { type: 'string' },
    risky: { type: 'boolean' },
    language: { type: 'string' },
    reason: {
      type: 'object',
      description: 'What put the case in this queue: the decision rules, their trigger, the first reason',
      properties: {
        rules: { type: 'array', items: { type: 'string' } },
        trigger: { type: 'string' },
        reason: { type: 'string' },
      },
    },
    operatorId: { type: ['string', 'null'] },
    assignedAt: { type: ['string', 'null'] },
  },
} as const

const assignment = {
  type: 'object',
  properties: {
    caseId: { type: 'string' },
    queue: { type: 'string' },
    operatorId: { type: 'string' },
    assignedAt: { type: 'string' },
  },
} as const

const handlerChange = {
  type: 'object',
  properties: {
    caseId: { type: 'string' },
    handler: {
      type: 'object',
      properties: {
        kind: { type: 'string' },
        agentId: { type: 'string' },
        queue: { type: 'string' },
        operatorId: { type: 'string' },
      },
    },
    trigger: { type: 'string' },
    decisionId: { type: 'string' },
  },
} as const

/** The operator an authenticated request acts as: an operator key is its own operator; an admin names one. */
function actingOperator(req: FastifyRequest, given: string | undefined): string {
  if (req.actor.kind === 'operator') {
    if (given !== undefined && given !== req.actor.id) {
      throw new BatonError('FORBIDDEN', `an operator key acts as '${req.actor.id}', not '${given}'`)
    }
    return req.actor.id
  }
  if (given === undefined) {
    throw new BatonError('VALIDATION_FAILED', 'operatorId: is required when an admin acts for an operator', {
      fields: [{ field: 'operatorId', message: 'is required' }],
    })
  }
  return given
}

function itemView(item: WorkItem, now: Date, position: number) {
  return {
    caseId: item.caseId,
    queue: item.queue,
    position,
    enqueuedAt: item.enqueuedAt,
    slaDue: item.slaDue,
    slaLeftS: slaLeftSeconds(item.slaDue, now),
    breached: item.breached,
    rank: item.rank,
    tier: item.tier,
    risky: item.risky,
    language: item.language,
    reason: item.reason,
    operatorId: item.operatorId,
    assignedAt: item.assignedAt,
  }
}

function assignmentView(a: Assignment) {
  return {
    caseId: a.item.caseId,
    queue: a.item.queue,
    operatorId: a.operatorId,
    assignedAt: a.item.assignedAt ?? '',
  }
}

/** Operator queues, claims and auto-assignment, takeover and hand-back. */
export function registerQueueRoutes(app: FastifyInstance, s: Services): void {
  const deps = s.work.deps

  app.get(
    '/v1/queues',
    {
      config: { roles: READERS },
      schema: {
        tags: ['queues'],
        summary: 'Every queue: skills, SLA, waiting / assigned / breached counts, and its operators with their load',
        response: {
          200: {
            type: 'object',
            properties: {
              items: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    id: { type: 'string' },
                    description: { type: 'string' },
                    skills: { type: 'array', items: { type: 'string' } },
                    slaSeconds: { type: 'integer' },
                    assignment: { type: 'string', enum: ['pull', 'auto'] },
                    waiting: { type: 'integer' },
                    assigned: { type: 'integer' },
                    breached: { type: 'integer' },
                    nextDue: { type: ['string', 'null'] },
                    operators: {
                      type: 'array',
                      items: {
                        type: 'object',
                        properties: {
                          id: { type: 'string' },
                          capacity: { type: 'integer' },
                          active: { type: 'integer' },
                          languages: { type: 'array', items: { type: 'string' } },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async () => {
      const [summary, loads] = await Promise.all([s.store.queueSummary(), s.store.operatorLoads()])
      const loadOf = new Map(loads.map((l) => [l.operatorId, l]))
      return {
        items: deps.queues.map((q) => {
          const c = summary[q.id]
          return {
            id: q.id,
            description: q.description,
            skills: q.skills,
            slaSeconds: q.slaSeconds,
            assignment: q.assignment,
            waiting: c?.waiting ?? 0,
            assigned: c?.assigned ?? 0,
            breached: c?.breached ?? 0,
            nextDue: c?.nextDue ?? null,
            operators: deps.operators
              .filter((o) => q.skills.every((k) => o.skills.includes(k)))
              .map((o) => ({
                id: o.id,
                capacity: o.capacity,
                active: loadOf.get(o.id)?.active ?? 0,
                languages: o.languages,
              })),
          }
        }),
      }
    },
  )

  app.get(
    '/v1/queues/:id/cases',
    {
      config: { roles: READERS },
      schema: {
        tags: ['queues'],
        summary:
          'Cases of a queue by priority (SLA deadline, customer tier, risk; breached first), with SLA time left and what put each there',
        params: idParam,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
            assigned: { type: 'boolean', default: false, description: 'Include cases already assigned' },
            operatorId: { type: 'string', maxLength: 64, description: 'Only the cases this operator holds' },
          },
        },
        response: {
          200: { type: 'object', properties: { items: { type: 'array', items: workItem } } },
          ...errorResponses,
          404: problem,
        },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const q = req.query as { limit: number; assigned: boolean; operatorId?: string }
      findQueue(deps, id)
      const items = await s.store.listQueueItems(id, {
        limit: q.limit,
        assigned: q.assigned,
        ...(q.operatorId === undefined ? {} : { operatorId: q.operatorId }),
      })
      const now = deps.now()
      return { items: items.map((it, i) => itemView(it, now, i + 1)) }
    },
  )

  app.post(
    '/v1/queues/:id/assign-next',
    {
      config: { roles: WORKERS },
      schema: {
        tags: ['queues'],
        summary:
          'Auto-assignment: the most urgent waiting case goes to the least-loaded eligible operator with free capacity; an operator key pulls the next case for itself (204 when none can be assigned)',
        params: idParam,
        response: { 200: assignment, 204: { type: 'null' }, ...errorResponses, 404: problem },
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string }
      const a = await assignNext(deps, req.actor, id)
      if (a === undefined) return reply.code(204).send()
      return assignmentView(a)
    },
  )

  app.post(
    '/v1/cases/:id/claim',
    {
      config: { roles: WORKERS },
      schema: {
        tags: ['queues'],
        summary: 'An operator claims a waiting case; of concurrent claims exactly one wins (409 for the others)',
        params: idParam,
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: { operatorId: operatorIdField },
        },
        response: { 200: assignment, ...errorResponses, 404: problem, 409: problem },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const b = (req.body ?? {}) as { operatorId?: string }
      const a = await claimCase(deps, req.actor, id, actingOperator(req, b.operatorId))
      return assignmentView(a)
    },
  )

  app.post(
    '/v1/cases/:id/takeover',
    {
      config: { roles: WORKERS },
      schema: {
        tags: ['queues'],
        summary: 'An operator takes a case over from the AI agent (or a queue), with a reason; trigger `manual`',
        params: idParam,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['reason'],
          properties: { reason: reasonText, operatorId: operatorIdField },
        },
        response: { 200: handlerChange, ...errorResponses, 404: problem, 409: problem },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const b = req.body as { reason: string; operatorId?: string }
      return takeOver(deps, req.actor, id, actingOperator(req, b.operatorId), b.reason)
    },
  )

  app.post(
    '/v1/cases/:id/handback',
    {
      config: { roles: WORKERS },
      schema: {
        tags: ['queues'],
        summary:
          'Hand a case back to an AI agent, with a reason: routing is decided again and the hand-back happens only when the policy routes the case to that agent (409 HANDBACK_REFUSED otherwise)',
        params: idParam,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['agentId', 'reason'],
          properties: { agentId: { type: 'string', minLength: 1, maxLength: 64 }, reason: reasonText },
        },
        response: { 200: handlerChange, ...errorResponses, 404: problem, 409: problem },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string }
      const b = req.body as { agentId: string; reason: string }
      return handBack(deps, req.actor, id, b.agentId, b.reason)
    },
  )
}

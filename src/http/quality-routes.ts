import type { FastifyInstance } from 'fastify'
import { readQuality } from '../quality/read.js'
import type { Role } from '../store/ports.js'
import { errorResponses } from './schemas.js'
import type { Services } from './services.js'

const ANALYSTS: readonly Role[] = ['admin', 'analyst']

const figure = (description: string) => ({ type: 'object', additionalProperties: true, description }) as const
const rateOrNull = { type: ['number', 'null'] } as const

/** The quality report: each member is one figure, defined in the README's "Decision quality". */
export const qualityReport = {
  type: 'object',
  required: [
    'window',
    'filters',
    'cases',
    'automation',
    'escalations',
    'unmanaged',
    'pingPong',
    'consistency',
    'ownership',
    'approvals',
    'confirmations',
    'privileges',
  ],
  properties: {
    window: figure('since and until (cases opened in [since, until)), and now (when the figures were computed)'),
    filters: figure('queue and agent, or null'),
    cases: figure('opened, closed, open'),
    automation: {
      type: 'object',
      description: 'Of the closed cases, those that never had a human handler',
      properties: { closed: { type: 'integer' }, automated: { type: 'integer' }, rate: rateOrNull },
    },
    escalations: figure(
      'A case reaching a human (operator or hybrid) at intake or from an AI agent: cases, rate, total, atIntake, fromAgent, byCause (rule, trigger, override, agent_asked, operator_took, ping_pong_cap), rateByCause, byTrigger, byRule',
    ),
    unmanaged: figure(
      'Escalations no operator took within the queue SLA, or sent without a rule or trigger reason: count, rate, notPickedUpWithinSla, noReason, items (case ids), truncated',
    ),
    pingPong: figure('Bounces (AI↔human handoffs) per case: cap, distribution, atOrOverCap, capHit, caseIds'),
    consistency: figure(
      'replay: stored decisions re-decided from their facts (a sample); nearDuplicates: near-duplicate first messages routed to different handler kinds under one policy version',
    ),
    ownership: figure(
      'Escalations judged against the queue SLA (ownedWithinSla, late, pending, withdrawn), timeToHumanS {n, p50, p90}, reopen',
    ),
    approvals: figure('requested, byState, pending, timeToDecideS'),
    confirmations: figure("The customer's own confirmations, the same shape as approvals"),
    privileges: { type: 'array', items: figure('agentId, granted, used, unused') },
  },
} as const

export function registerQualityRoutes(app: FastifyInstance, s: Services): void {
  app.get(
    '/v1/quality',
    {
      config: { roles: ANALYSTS },
      schema: {
        tags: ['quality'],
        summary: 'Decision-quality figures over the cases opened in a window, computed from the stored history',
        description:
          'Every figure names its definition in the README (Decision quality). `since` and `until` are a duration before now (7d, 24h, 90m) or an RFC 3339 date or date-time; an unknown queue or agent, a bad duration or an unknown parameter is 400 VALIDATION_FAILED naming it. Read-only.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            since: { type: 'string', maxLength: 64, default: '7d', description: 'default 7d' },
            until: { type: 'string', maxLength: 64, description: 'default now' },
            queue: { type: 'string', maxLength: 64, description: 'only cases that were in this queue' },
            agent: { type: 'string', maxLength: 128, description: 'only cases this AI agent handled' },
          },
        },
        response: { 200: qualityReport, ...errorResponses },
      },
    },
    async (req) =>
      readQuality(s.quality, req.query as { since?: string; until?: string; queue?: string; agent?: string }),
  )
}

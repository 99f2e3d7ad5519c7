import type { FastifyInstance } from 'fastify'
import { compilePolicy } from '../policy/compile.js'
import { readPreview, readQuality } from '../quality/read.js'
import type { Role } from '../store/ports.js'
import { YAML_BODY } from './protocol.js'
import { errorResponses, problem } from './schemas.js'
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
    pingPong: figure(
      'Bounces (AI↔human handoffs) per case: cap, distribution, atOrOverCap, capHit, caseIds; fromHumanOwned (bounces of a case a person owned back to an AI agent, other than its hand-back) and their fromHumanOwnedCaseIds',
    ),
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

const count = { type: 'integer' } as const

/** What a candidate policy would change on past decisions (`readPreview`). */
export const previewSummary = {
  type: 'object',
  required: [
    'candidate',
    'window',
    'sampled',
    'decisions',
    'changed',
    'unchanged',
    'skipped',
    'totals',
    'byRule',
    'labelled',
  ],
  properties: {
    candidate: figure('name, version and hash of the candidate (not activated)'),
    window: figure('decisions made in [since, until)'),
    sampled: {
      type: 'boolean',
      description: 'true when the window held more decisions than `limit` (then a sample by id)',
    },
    decisions: { ...count, description: 'decisions re-decided with the candidate' },
    changed: { ...count, description: 'of those, decisions whose outcome (routing: handler) changes' },
    unchanged: count,
    skipped: figure('decisions not re-decided: operator overrides (a person chose), no facts'),
    totals: figure(
      'changed decisions by kind: aiToHuman, humanToAi, queue, agent, mode (operator ↔ hybrid), toolOutcome',
    ),
    byRule: {
      type: 'object',
      description:
        'per rule of the candidate that decides a changed decision: the same counts, outcomes (tool decisions, e.g. allow→approve), from (the rules that decided before) and sampleCaseIds',
      additionalProperties: figure('changes this rule makes'),
    },
    labelled: {
      type: ['object', 'null'],
      additionalProperties: true,
      description: 'with evaluation labels (baton replay --labels): unsafe automation and automation before and after',
    },
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

  app.post(
    '/v1/policy/preview',
    {
      config: { roles: ANALYSTS },
      schema: {
        tags: ['policy'],
        summary:
          'What a candidate policy (YAML) would change on the stored decisions: judged on past traffic before it ships',
        description:
          'Every stored decision of the window is re-decided from its stored facts with the candidate and compared with what was recorded: per rule of the candidate, how many change (AI → human, human → AI, queue…), with sample case ids. Nothing is activated or written. A candidate that does not compile is 422 POLICY_INVALID with positions (as PUT /v1/policy); a bad window or parameter is 400 VALIDATION_FAILED naming it.',
        consumes: YAML_BODY,
        body: { type: 'string', minLength: 1 },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            since: { type: 'string', maxLength: 64, default: '30d', description: 'decisions made since; default 30d' },
            until: { type: 'string', maxLength: 64, description: 'default now' },
            limit: {
              type: 'integer',
              minimum: 1,
              maximum: 1_000_000,
              default: 100_000,
              description: 'at most this many decisions (a sample by decision id when there are more)',
            },
          },
        },
        response: { 200: previewSummary, ...errorResponses, 422: problem },
      },
    },
    async (req) => {
      const q = req.query as { since: string; until?: string; limit: number }
      const candidate = compilePolicy(req.body as string, 'candidate.yaml', s.quality.known)
      return readPreview(s.quality, candidate, q)
    },
  )
}

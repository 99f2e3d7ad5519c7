import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { knownNames } from '../app.js'
import type { DecisionRecord } from '../cases/records.js'
import { compilePolicy } from '../policy/compile.js'
import { decideAction, decideRoute } from '../policy/evaluate.js'
import { mergeFacts, neutralFacts } from '../policy/policy-test.js'
import type { Facts } from '../policy/types.js'
import { agentHandoffRoute } from '../queues/handoff-request.js'
import { asHybridProposal } from '../tools/hybrid.js'
import { loadWorkspace } from '../workspace/workspace.js'
import { PreviewTally, ReplayTally, replayDecision, routeChange } from './replay.js'

const SHOP = resolve(import.meta.dirname, '../../examples/shop')
const source = readFileSync(join(SHOP, 'policy.yaml'), 'utf8')
const known = knownNames(await loadWorkspace(SHOP))
const policy = compilePolicy(source, 'policy.yaml', known)
// the candidate: order status questions go to a person instead of the assistant
const ORDER_STATUS =
  "route: { handler: agent, agent: shop-assistant }\n      reason: Order status questions are the assistant's job"
expect(source).toContain(ORDER_STATUS)
const candidate = compilePolicy(
  source
    .replace('version: 3', 'version: 4')
    .replace(
      ORDER_STATUS,
      'route: { handler: operator, queue: general }\n      reason: Order status questions go to a person',
    ),
  'candidate.yaml',
  known,
)

let n = 0
function routeRecord(facts: Facts, actorKind = 'service'): DecisionRecord {
  const r = decideRoute(policy, facts)
  const id = `d${n++}`
  return {
    id,
    caseId: `c${id}`,
    kind: 'route',
    outcome: r.outcome,
    at: '2026-11-01T10:00:00.000Z',
    data: { ...r, decisionId: id, actor: { kind: actorKind, id: 'x' }, facts: JSON.parse(JSON.stringify(facts)) },
  }
}

const facts = fc
  .record({
    intent: fc.constantFrom('order_status', 'refund', 'complaint', 'unknown', 'delivery_options', ''),
    confidence: fc.double({ min: 0, max: 1, noNaN: true }),
    agent: fc.double({ min: -1, max: 1, noNaN: true }),
    fraud: fc.boolean(),
    human: fc.boolean(),
    order: fc.boolean(),
    handoffs: fc.integer({ min: 0, max: 6 }),
    handler: fc.constantFrom('', 'agent', 'operator', 'hybrid'),
    value: fc.integer({ min: 0, max: 5000 }),
  })
  .map((g) =>
    mergeFacts(neutralFacts(policy), {
      case: { handler: g.handler, handoffs: g.handoffs },
      signals: {
        intent: g.intent,
        intent_confidence: g.confidence,
        agent_confidence: g.agent,
        risk: { fraud: g.fraud, human_request: g.human },
        topics: { order_status: g.order },
        custom: { order_value: g.value },
      },
    }),
  )

describe('replay', () => {
  it('re-decides every stored routing decision to what was recorded (invariant 2)', () => {
    fc.assert(
      fc.property(facts, (f) => {
        const r = replayDecision(policy, routeRecord(f))
        expect(r).toMatchObject({ status: 'replayed', same: true, differences: [] })
      }),
      { numRuns: 300 },
    )
  })

  it('says what differs when the record does not match', () => {
    const d = routeRecord(mergeFacts(neutralFacts(policy), { signals: { topics: { order_status: true } } }))
    const tampered = { ...d, outcome: 'operator', data: { ...d.data, handler: { kind: 'operator', queue: 'general' } } }
    const r = replayDecision(policy, tampered)
    expect(r).toMatchObject({ status: 'replayed', same: false, differences: ['outcome', 'handler'] })
    const tally = new ReplayTally()
    tally.add(r)
    tally.add(replayDecision(policy, d))
    tally.add(replayDecision(policy, { ...d, kind: 'override' }))
    expect(tally.summary()).toMatchObject({ replayed: 2, same: 1, differing: 1, rate: 0.5, skipped: { override: 1 } })
  })

  it("replays a hybrid case's tool call as the proposal it was, and an agent's request for a human", () => {
    const f = mergeFacts(neutralFacts(policy), {
      case: { handler: 'hybrid' },
      actor: { kind: 'agent', id: 'shop-assistant', roles: ['agent'] },
      tool: 'refund',
      params: { order_id: 'A', amount: 20, currency: 'EUR' },
    })
    const a = asHybridProposal(decideAction(policy, f), 'billing')
    expect(a.outcome).toBe('approve')
    const action: DecisionRecord = {
      id: 'act1',
      caseId: 'c1',
      kind: 'action',
      outcome: a.outcome,
      at: '2026-11-01T10:00:00.000Z',
      data: { ...a, facts: f },
    }
    expect(replayDecision(policy, action)).toMatchObject({ status: 'replayed', same: true })
    // the policy keeps an order question with the assistant: the agent's request sends it to the fallback queue
    const asked = mergeFacts(neutralFacts(policy), {
      case: { handler: 'agent' },
      actor: { kind: 'agent', id: 'shop-assistant', roles: ['agent'] },
      signals: { topics: { order_status: true } },
    })
    const route = agentHandoffRoute(decideRoute(policy, asked), 'agent', 'general')
    const d: DecisionRecord = {
      id: 'h1',
      caseId: 'c1',
      kind: 'route',
      outcome: route.outcome,
      at: '2026-11-01T10:00:00.000Z',
      data: {
        ...route,
        trigger: route.trigger || 'manual',
        actor: { kind: 'agent', id: 'shop-assistant' },
        facts: asked,
      },
    }
    expect(route.rules).toEqual(['order-status', 'agent-handoff-request'])
    expect(replayDecision(policy, d)).toMatchObject({ status: 'replayed', same: true })
  })
})

describe('policy preview', () => {
  it('counts, per rule of the candidate, the decisions that change, with samples and the labelled rates', () => {
    const order = routeRecord(mergeFacts(neutralFacts(policy), { signals: { topics: { order_status: true } } }))
    const human = routeRecord(mergeFacts(neutralFacts(policy), { signals: { risk: { human_request: true } } }))
    const tally = new PreviewTally({ name: 'shop', version: 4, hash: candidate.ref.hash })
    tally.add(replayDecision(candidate, order), 'ai')
    tally.add(replayDecision(candidate, { ...order, id: 'o2', caseId: 'c2' }), 'ai')
    tally.add(replayDecision(candidate, human), 'human')
    const s = tally.summary()
    expect(s).toMatchObject({ decisions: 3, changed: 2, unchanged: 1 })
    expect(s.totals).toEqual({ aiToHuman: 2, humanToAi: 0, queue: 0, agent: 0, mode: 0, toolOutcome: 0 })
    expect(s.byRule['order-status']).toMatchObject({
      changed: 2,
      aiToHuman: 2,
      from: { 'order-status': 2 },
      sampleCaseIds: [order.caseId, 'c2'],
    })
    // order questions (labelled ai) were all automated; with the candidate none are
    expect(s.labelled).toEqual({
      n: 3,
      unsafeAutomationRate: { before: 0, after: 0 },
      automationRate: { before: 1, after: 0 },
    })
  })

  it('names each kind of routing change', () => {
    const agent = { kind: 'agent', agentId: 'a' } as const
    const general = { kind: 'operator', queue: 'general' } as const
    expect(routeChange(agent, general)).toBe('ai_to_human')
    expect(routeChange(general, agent)).toBe('human_to_ai')
    expect(routeChange(general, { kind: 'operator', queue: 'billing' })).toBe('queue')
    expect(routeChange(general, { kind: 'hybrid', queue: 'general', agentId: 'a' })).toBe('mode')
    expect(routeChange(agent, { kind: 'agent', agentId: 'b' })).toBe('agent')
    expect(routeChange(agent, agent)).toBeNull()
  })
})

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Handler } from '../cases/case.js'
import { emptyCase, evolve } from './fold.js'
import { decodeFold, encodeFold } from './fold-codec.js'
import type { HistoryEvent } from './history.js'

/*
 * A stored fold (`case_folds`) reads back as the fold it was made from, whatever the case's events: so the figures
 * over stored folds are the figures over the events (test/quality.e2e.test.ts checks the same through the API).
 */

const ID = 'cs_1'
const handler: fc.Arbitrary<Handler> = fc.oneof(
  fc.constantFrom<Handler>({ kind: 'agent', agentId: 'shop-assistant' }, { kind: 'agent', agentId: 'bot-2' }),
  fc.constantFrom('general', 'billing').map((queue): Handler => ({ kind: 'operator', queue })),
  fc.constantFrom('ada', 'grace').map((operatorId): Handler => ({ kind: 'operator', queue: 'general', operatorId })),
  fc.constant<Handler>({ kind: 'hybrid', queue: 'billing', agentId: 'shop-assistant' }),
)
const at = fc.integer({ min: 1_700_000_000_000, max: 1_800_000_000_000 })
const rules = fc.array(fc.constantFrom('order-status', 'max-handoffs', 'human-request', 'default'), { maxLength: 3 })
const trigger = fc.constantFrom('', 'manual', 'max_handoffs', 'human_request', 'payment')

const event: fc.Arbitrary<HistoryEvent> = fc.oneof(
  fc.record({
    type: fc.constant('opened' as const),
    caseId: fc.constant(ID),
    at,
    customerId: fc.string(),
    channel: fc.constant('chat'),
  }),
  fc.record({
    type: fc.constant('message' as const),
    caseId: fc.constant(ID),
    at,
    messageId: fc.string(),
    text: fc.string(),
  }),
  fc.record({
    type: fc.constant('decided' as const),
    caseId: fc.constant(ID),
    at,
    decisionId: fc.string(),
    kind: fc.constantFrom('route', 'tool', 'override'),
    handler: fc.option(handler, { nil: undefined }),
    rules,
    trigger,
    policyHash: fc.constantFrom('', 'h1', 'h2'),
    policyVersion: fc.nat(5),
    messageId: fc.string(),
  }),
  fc.record({
    type: fc.constant('handed_off' as const),
    caseId: fc.constant(ID),
    at,
    from: handler,
    to: handler,
    rules,
    trigger,
    decisionId: fc.string(),
    counts: fc.boolean(),
    requestedBy: fc.constantFrom('', 'shop-assistant'),
  }),
  fc.record({
    type: fc.constant('assigned' as const),
    caseId: fc.constant(ID),
    at,
    operatorId: fc.constant('ada'),
    queue: fc.constant('general'),
  }),
  fc.record({ type: fc.constant('closed' as const), caseId: fc.constant(ID), at }),
)

describe('stored case folds', () => {
  it('read back as the fold of the events they were made from', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 30 }), (events) => {
        const s = emptyCase(ID)
        for (const e of events) evolve(s, e)
        expect(decodeFold(ID, encodeFold(s))).toEqual(s)
      }),
      { numRuns: 500 },
    )
  })

  it('refuses to store a fold that holds gates (they are joined at read time, not kept)', () => {
    const s = emptyCase(ID)
    evolve(s, {
      type: 'gate_requested',
      caseId: ID,
      at: 1,
      gate: 'approval',
      id: 'ap_1',
      tool: 'refund',
      requester: 'a',
    })
    expect(() => encodeFold(s)).toThrow(/gates/)
  })
})

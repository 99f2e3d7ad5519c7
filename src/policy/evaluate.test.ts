import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { RISK_CATEGORIES } from '../signals/types.js'
import { compilePolicy } from './compile.js'
import { completeFacts, decideAction, decideRoute, possibleActionOutcomes } from './evaluate.js'
import { mergeFacts, neutralFacts } from './policy-test.js'
import type { Facts } from './types.js'

const SHOP_KNOWN = {
  agents: ['shop-assistant'],
  queues: ['general', 'billing', 'accounts', 'security', 'trust-safety', 'legal'],
  tools: [
    'reply',
    'order_status',
    'refund',
    'reset_password',
    'change_email',
    'change_address',
    'disclose_order',
    'close_case',
  ],
}
const shop = compilePolicy(
  readFileSync(new URL('../../examples/shop/policy.yaml', import.meta.url), 'utf8'),
  'examples/shop/policy.yaml',
  SHOP_KNOWN,
)
const given = (partial: Record<string, unknown>): Facts => mergeFacts(neutralFacts(shop), partial)

const known = { agents: ['bot'], queues: ['general', 'security', 'billing'], tools: ['reply', 'refund', 'lookup'] }
const small = compilePolicy(
  `apiVersion: baton.dev/v1
kind: Policy
metadata: { name: small, version: 1 }
routing:
  default: { handler: operator, queue: general, reason: fallback }
  max_handoffs: 2
  overrides:
    - id: secret
      when: signals.secrets > 0
      route: { handler: operator, queue: security }
      trigger: secret
      reason: secret
  rules:
    - id: faq
      when: signals.intent == 'faq'
      route: { handler: agent, agent: bot }
      reason: faq
tools:
  overrides:
    - id: big-currency-check
      tool: refund
      when: params.currency != 'EUR'
      outcome: escalate
      queue: billing
      reason: Only EUR refunds are automated
  rules:
    - id: small-refund
      tool: refund
      when: params.amount <= 50
      outcome: allow
      reason: small
    - id: reply
      tool: reply
      outcome: allow
      reason: reply
`,
  'small.yaml',
  known,
)
const smallFacts = (partial: Record<string, unknown>): Facts => mergeFacts(neutralFacts(small), partial)

describe('decideRoute', () => {
  it('given an override and a rule that both match, when deciding, then the override wins', () => {
    const r = decideRoute(small, smallFacts({ signals: { secrets: 2, intent: 'faq' } }))
    expect(r).toMatchObject({
      kind: 'route',
      outcome: 'operator',
      handler: { kind: 'operator', queue: 'security' },
      rules: ['secret'],
      trigger: 'secret',
      policy: small.ref,
    })
    expect(r.explanation).toEqual([{ id: 'secret', reason: 'secret', reads: { 'signals.secrets': 2 } }])
  })

  it('given nothing matches, when deciding, then the default route decides with rule id default', () => {
    const r = decideRoute(small, smallFacts({}))
    expect(r).toMatchObject({ outcome: 'operator', rules: ['default'], trigger: '' })
    expect(r.explanation).toEqual([{ id: 'default', reason: 'fallback', reads: {} }])
  })

  it('given a human holds the case and it reached max_handoffs, when a rule gives it to the agent, then a human keeps it', () => {
    const r = decideRoute(small, smallFacts({ case: { handler: 'hybrid', handoffs: 2 }, signals: { intent: 'faq' } }))
    expect(r.handler).toEqual({ kind: 'operator', queue: 'general' })
    expect(r.rules).toEqual(['faq', 'max-handoffs'])
    expect(r.trigger).toBe('max_handoffs')
    expect(r.explanation[1]!.reads).toEqual({ 'case.handoffs': 2, 'case.handler': 'hybrid' })
  })

  it('given the agent holds the case at the cap, when a rule gives it to the agent, then the agent keeps it', () => {
    const r = decideRoute(small, smallFacts({ case: { handler: 'agent', handoffs: 5 }, signals: { intent: 'faq' } }))
    expect(r.handler).toEqual({ kind: 'agent', agentId: 'bot' })
  })

  it('given facts without topics or custom signals, when deciding, then they read as false and defaults', () => {
    const f = given({ signals: { topics: { order_status: true } } })
    const bare = { ...f, signals: { ...f.signals, topics: { order_status: true }, custom: {} } }
    expect(completeFacts(shop, f)).toBe(f)
    expect(decideRoute(shop, bare).rules).toEqual(['order-status'])
  })

  it.each([
    ['an order-status topic', { signals: { topics: { order_status: true } } }, 'agent', 'order-status', ''],
    [
      'an account change',
      { signals: { topics: { account_change: true } } },
      'hybrid',
      'account-change',
      'account_change',
    ],
    ['a secret', { signals: { secrets: 1 } }, 'operator', 'secret-in-message', 'secret'],
    ['no signals at all', {}, 'operator', 'unclear-intent', 'unclear_intent'],
  ])('given %s, when the shop policy decides, then the handler is %s by %s', (_, partial, kind, rule, trigger) => {
    const r = decideRoute(shop, given(partial))
    expect(r.handler.kind).toBe(kind)
    expect(r.rules[0]).toBe(rule)
    expect(r.trigger).toBe(trigger)
  })

  it('is deterministic, and a replay from the JSON of the facts gives the same decision (invariant 2)', () => {
    fc.assert(
      fc.property(arbitraryFacts(), (facts) => {
        const a = decideRoute(shop, facts)
        const b = decideRoute(shop, facts)
        const replay = decideRoute(shop, JSON.parse(JSON.stringify(facts)) as Facts)
        expect(b).toEqual(a)
        expect(replay).toEqual(a)
        // never a route to an agent that is not active
        if (a.handler.kind !== 'operator') expect(facts.agents?.[a.handler.agentId]?.state).toBe('active')
        const action = decideAction(shop, {
          ...facts,
          tool: 'refund',
          params: { amount: facts.signals.intent_confidence * 2000 },
        })
        expect(
          decideAction(
            shop,
            JSON.parse(
              JSON.stringify({ ...facts, tool: 'refund', params: { amount: facts.signals.intent_confidence * 2000 } }),
            ) as Facts,
          ),
        ).toEqual(action)
      }),
      { numRuns: 300 },
    )
  })
})

describe('decideRoute with agent states (issue 17, defect 4)', () => {
  const withAgent = (state: string) => smallFacts({ signals: { intent: 'faq' }, agents: { bot: { state } } })

  it('given an active agent, when a rule routes to it, then it keeps the case', () => {
    expect(decideRoute(small, withAgent('active'))).toMatchObject({ handler: { kind: 'agent', agentId: 'bot' } })
  })

  it.each(['suspended', 'retired', 'provisioned'])(
    'given a %s agent, when a rule routes to it, then the case goes to the fallback queue with the reason',
    (state) => {
      const r = decideRoute(small, withAgent(state))
      expect(r).toMatchObject({
        outcome: 'operator',
        handler: { kind: 'operator', queue: 'general' },
        rules: ['faq', 'agent-inactive'],
        trigger: 'agent_inactive',
      })
      expect(r.explanation[1]).toEqual({
        id: 'agent-inactive',
        reason: `Agent 'bot' is ${state}: it cannot act on the case, so a human takes it`,
        reads: { 'agents.bot.state': state },
      })
    },
  )

  it('given facts that name no state for the agent, when it is chosen, then it is not taken as active (fail closed)', () => {
    const r = decideRoute(small, { ...smallFacts({ signals: { intent: 'faq' } }), agents: {} })
    expect(r.rules).toEqual(['faq', 'agent-inactive'])
    expect(r.explanation[1]!.reason).toContain('not registered')
  })

  it('given facts recorded before agent states were facts, when replayed, then the agent reads as active, as it did', () => {
    const { agents: _, ...legacy } = smallFacts({ signals: { intent: 'faq' } })
    expect(decideRoute(small, legacy as Facts)).toMatchObject({ rules: ['faq'], handler: { kind: 'agent' } })
  })

  it('given a suspended drafter, when a hybrid route or the default names it, then the fallback queue takes the case', () => {
    const hybrid = decideRoute(
      shop,
      given({ signals: { topics: { account_change: true } }, agents: { 'shop-assistant': { state: 'suspended' } } }),
    )
    expect(hybrid).toMatchObject({
      handler: { kind: 'operator', queue: 'general' },
      rules: ['account-change', 'agent-inactive'],
      trigger: 'agent_inactive',
    })
    const byDefault = compilePolicy(
      `apiVersion: baton.dev/v1
kind: Policy
metadata: { name: d, version: 1 }
routing:
  default: { handler: agent, agent: bot, reason: the bot answers }
  fallback_queue: security
`,
      'd.yaml',
      known,
    )
    const r = decideRoute(byDefault, mergeFacts(neutralFacts(byDefault), { agents: { bot: { state: 'retired' } } }))
    expect(r).toMatchObject({ handler: { kind: 'operator', queue: 'security' }, rules: ['default', 'agent-inactive'] })
  })

  it('given a policy that reads agents.<id>.state, when the agent is suspended, then its own rule decides where the case goes', () => {
    const p = compilePolicy(
      `apiVersion: baton.dev/v1
kind: Policy
metadata: { name: s, version: 1 }
routing:
  default: { handler: operator, queue: general, reason: fallback }
  rules:
    - id: bot-down
      when: agents.bot.state != 'active' && signals.intent == 'faq'
      route: { handler: operator, queue: billing }
      reason: while the bot is down, billing answers its questions
    - id: faq
      when: signals.intent == 'faq'
      route: { handler: agent, agent: bot }
      reason: faq
`,
      's.yaml',
      known,
    )
    const facts = (state: string) =>
      mergeFacts(neutralFacts(p), { signals: { intent: 'faq' }, agents: { bot: { state } } })
    expect(decideRoute(p, facts('active')).rules).toEqual(['faq'])
    const down = decideRoute(p, facts('suspended'))
    expect(down).toMatchObject({ rules: ['bot-down'], handler: { kind: 'operator', queue: 'billing' } })
    expect(down.explanation[0]!.reads).toMatchObject({ 'agents.bot.state': 'suspended' })
    expect(() =>
      compilePolicy(
        `apiVersion: baton.dev/v1
kind: Policy
metadata: { name: s, version: 1 }
routing:
  default: { handler: operator, queue: general, reason: fallback }
  rules:
    - { id: typo, when: "agents.bto.state == 'active'", route: { handler: operator, queue: billing }, reason: r }
`,
        's.yaml',
        known,
      ),
    ).toThrow(/unknown variable 'agents\.bto'.*did you mean 'agents\.bot'/)
  })
})

describe('decideRoute with a human owner (issue 16, item 5)', () => {
  const owned = compilePolicy(
    `apiVersion: baton.dev/v1
kind: Policy
metadata: { name: owned, version: 1 }
routing:
  default: { handler: operator, queue: general, reason: fallback }
  max_handoffs: 4
  overrides:
    - id: secret
      when: signals.secrets > 0
      route: { handler: operator, queue: security }
      trigger: secret
      reason: secret
  rules:
    - id: human-owns-case
      when: case.human_owned
      route: { handler: current }
      reason: A person holds the case
    - id: faq
      when: signals.intent == 'faq'
      route: { handler: agent, agent: bot }
      reason: faq
`,
    'owned.yaml',
    known,
  )
  const at = (c: Record<string, unknown>, intent = 'faq') =>
    mergeFacts(neutralFacts(owned), { case: c, signals: { intent, intent_confidence: 0.9 } })

  it('given an operator owns the case, when a rule would give it to the agent, then it stays in its queue', () => {
    const r = decideRoute(owned, at({ handler: 'operator', queue: 'billing', human_owned: true }))
    expect(r).toMatchObject({ handler: { kind: 'operator', queue: 'billing' }, rules: ['human-owns-case'] })
    expect(r.explanation[0]?.reads).toEqual({ 'case.human_owned': true })
  })

  it('given a hybrid case owned by a person, when deciding, then it stays hybrid with its drafter', () => {
    const r = decideRoute(owned, at({ handler: 'hybrid', queue: 'billing', agent: 'bot', human_owned: true }))
    expect(r.handler).toEqual({ kind: 'hybrid', queue: 'billing', agentId: 'bot' })
  })

  it('given the case is not owned by a person, when deciding, then the rules go on as before', () => {
    expect(decideRoute(owned, at({ handler: 'operator', queue: 'general' })).rules).toEqual(['faq'])
  })

  it('given an owned case, when an override matches, then the override still wins', () => {
    const f = mergeFacts(at({ handler: 'operator', queue: 'general', human_owned: true }), { signals: { secrets: 1 } })
    expect(decideRoute(owned, f)).toMatchObject({ handler: { queue: 'security' }, rules: ['secret'] })
  })

  it('given current names no holder (a new case, or facts without the queue), then the fallback queue takes it', () => {
    expect(decideRoute(owned, at({ handler: '', human_owned: true })).handler).toEqual({
      kind: 'operator',
      queue: 'general',
    })
    expect(decideRoute(owned, at({ handler: 'operator', human_owned: true })).handler.kind).toBe('operator')
  })

  it('given an agent case routed to current, when its agent is suspended, then agent-inactive still applies', () => {
    const f = mergeFacts(at({ handler: 'agent', agent: 'bot', human_owned: true }), {
      agents: { bot: { state: 'suspended' } },
    })
    expect(decideRoute(owned, f).rules).toEqual(['human-owns-case', 'agent-inactive'])
  })

  it('given facts recorded before ownership was a fact, when replayed, then human_owned reads false', () => {
    const f = at({ handler: 'operator', queue: 'general' })
    const { human_owned: _, queue: __, agent: ___, ...old } = f.case
    expect(decideRoute(owned, { ...f, case: old }).rules).toEqual(['faq'])
  })

  it('refuses current in the default route, and a queue or an agent beside current', () => {
    const bad =
      (route: string, def = '{ handler: operator, queue: general }') =>
      () =>
        compilePolicy(
          `apiVersion: baton.dev/v1\nkind: Policy\nmetadata: { name: b, version: 1 }\nrouting:\n  default: ${def}\n  fallback_queue: general\n  rules:\n    - id: r\n      route: ${route}\n      reason: r\n`,
          'b.yaml',
          known,
        )
    expect(bad('{ handler: current, queue: general }')).toThrow(/expected no 'queue' for handler current/)
    expect(bad('{ handler: current }', '{ handler: current }')).toThrow(/handler/)
    expect(bad('{ handler: current }')).not.toThrow()
  })
})

describe('decideAction', () => {
  it('given a tool no rule names, when deciding, then it is denied by the default', () => {
    const r = decideAction(small, smallFacts({ tool: 'lookup' }))
    expect(r).toMatchObject({ kind: 'action', outcome: 'deny', rules: ['default'], approverRole: '', queue: '' })
    expect(r.explanation[0]!.reads).toEqual({ tool: 'lookup' })
  })

  it('given a runtime error in a tool override, when deciding, then the override matches (fail closed)', () => {
    const r = decideAction(small, smallFacts({ tool: 'refund', params: { amount: 10 } }))
    expect(r).toMatchObject({ outcome: 'escalate', rules: ['big-currency-check'], queue: 'billing' })
    expect(r.explanation[0]!.reason).toContain('failing closed')
    expect(r.explanation[0]!.reads).toEqual({ 'params.currency': null })
  })

  it('given a runtime error in an allow rule, when deciding, then it does not match and the tool is denied', () => {
    const r = decideAction(small, smallFacts({ tool: 'refund', params: { currency: 'EUR' } }))
    expect(r).toMatchObject({ outcome: 'deny', rules: ['default'] })
  })

  it('given a small EUR refund, when deciding, then the allow rule decides and reads the parameters', () => {
    const r = decideAction(small, smallFacts({ tool: 'refund', params: { currency: 'EUR', amount: 20 } }))
    expect(r).toMatchObject({ outcome: 'allow', rules: ['small-refund'] })
    expect(r.explanation[0]!.reads).toEqual({ 'params.amount': 20 })
  })

  it('given a params value of the wrong type, when deciding, then nothing is allowed', () => {
    const r = decideAction(small, smallFacts({ tool: 'refund', params: { currency: 'EUR', amount: '20' } }))
    expect(r.outcome).toBe('deny')
  })

  it('given the shop policy, when refunds of various sizes are asked, then allow, approve and escalate apply', () => {
    const refund = (amount: unknown) => decideAction(shop, given({ tool: 'refund', params: { amount } }))
    expect(refund(50)).toMatchObject({ outcome: 'allow' })
    expect(refund(50.01)).toMatchObject({ outcome: 'approve', approverRole: 'billing', queue: 'billing' })
    expect(refund(1001)).toMatchObject({ outcome: 'escalate', queue: 'billing' })
    expect(refund('lots')).toMatchObject({ outcome: 'escalate', rules: ['large-refund'] })
  })
})

describe('possibleActionOutcomes', () => {
  const possible = (tool: string, partial: Record<string, unknown> = {}) =>
    [...possibleActionOutcomes(shop, given({ ...partial, tool }))].sort()

  it('given rules that read the parameters, when asked, then each of their outcomes is possible', () => {
    expect(possible('refund')).toEqual(['allow', 'approve', 'escalate'])
  })

  it('given an override that matches on the case alone, when asked, then only its outcome is possible', () => {
    const fraud = { signals: { risk: { fraud: true } } }
    expect(possible('refund', fraud)).toEqual(['escalate'])
    expect(possible('reply', fraud)).toEqual(['allow'])
  })

  it('given rules on the customer, when asked, then the customer decides what is possible', () => {
    expect(possible('disclose_order', { customer: { verified: false } })).toEqual(['deny'])
    expect(possible('disclose_order', { customer: { verified: true } })).toEqual(['allow'])
  })

  it('given a tool no rule names, when asked, then only the default deny is possible', () => {
    expect(possible('cancel_subscription')).toEqual(['deny'])
    expect([...possibleActionOutcomes(small, smallFacts({ tool: 'refund' }))].sort()).toEqual([
      'allow',
      'deny',
      'escalate',
    ])
  })

  it('whatever the parameters, the decided outcome is among the possible ones', () => {
    const params = fc.dictionary(
      fc.constantFrom('amount', 'currency', 'order_id', 'outcome'),
      fc.oneof(fc.double({ min: -10, max: 5000, noNaN: true }), fc.constantFrom('EUR', 'USD', 'x', ''), fc.boolean()),
    )
    const tools = fc.constantFrom(...SHOP_KNOWN.tools, 'cancel_subscription')
    fc.assert(
      fc.property(arbitraryFacts(), tools, params, (facts, tool, p) => {
        const f = { ...facts, tool, params: p }
        expect(possibleActionOutcomes(shop, { ...f, params: {} })).toContain(decideAction(shop, f).outcome)
      }),
      { numRuns: 300 },
    )
  })
})

function arbitraryFacts(): fc.Arbitrary<Facts> {
  const bool = fc.boolean()
  const confidence = fc.oneof(fc.constant(0), fc.constant(-1), fc.double({ min: 0, max: 1, noNaN: true }))
  const record = (names: readonly string[]) =>
    fc.tuple(...names.map(() => bool)).map((vs) => Object.fromEntries(names.map((n, i) => [n, vs[i]])))
  return fc
    .record({
      intent: fc.constantFrom('', 'order_status', 'track_order', 'refund', 'get_refund', 'faq'),
      intent_confidence: confidence,
      agent_confidence: confidence,
      secrets: fc.nat(3),
      pii: fc.subarray(['card', 'email', 'phone']),
      sensitivity: fc.subarray(['payment', 'pii', 'secret']),
      risk: record(RISK_CATEGORIES),
      topics: record(Object.keys(shop.topics)),
      order_value: fc.nat(5000),
      tier: fc.constantFrom('', 'standard', 'enterprise'),
      verified: bool,
      handler: fc.constantFrom('', 'agent', 'operator', 'hybrid'),
      handoffs: fc.nat(6),
      agent: fc.constantFrom('active', 'active', 'suspended', 'retired', 'provisioned'),
    })
    .map((x) =>
      given({
        case: { handler: x.handler, handoffs: x.handoffs },
        agents: { 'shop-assistant': { state: x.agent } },
        customer: { tier: x.tier, verified: x.verified },
        signals: {
          intent: x.intent,
          intent_confidence: x.intent_confidence,
          agent_confidence: x.agent_confidence,
          secrets: x.secrets,
          pii: x.pii,
          sensitivity: x.sensitivity,
          risk: x.risk,
          topics: x.topics,
          custom: { order_value: x.order_value },
        },
      }),
    )
}

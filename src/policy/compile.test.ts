import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { type BatonError, isBatonError } from '../errors.js'
import { compilePolicy, validateCallerSignals } from './compile.js'

const known = {
  agents: ['shop-assistant'],
  queues: ['general', 'billing', 'security'],
  tools: ['reply', 'refund'],
}

const policy = (body: string) => `apiVersion: baton.dev/v1
kind: Policy
metadata: { name: shop, version: 2, owner: ops@shop.example }
signals:
  order_value: { type: number, minimum: 0 }
  channel_priority: { type: string, enum: [low, high] }
topics:
  account_change: [change my email]
routing:
  default: { handler: operator, queue: general, reason: fallback }
${body}`

function compileError(source: string): BatonError {
  try {
    compilePolicy(source, 'policy.yaml', known)
  } catch (e) {
    if (isBatonError(e, 'POLICY_INVALID')) return e
    throw e
  }
  throw new Error('expected POLICY_INVALID')
}

describe('compilePolicy', () => {
  it('given a valid policy, when compiled, then ref carries name, version and the sha256 of the source', () => {
    const source = policy(`  rules:
    - id: account
      when: signals.topics.account_change && signals.custom.channel_priority == 'high'
      route: { handler: hybrid, queue: general, agent: shop-assistant }
      reason: r
`)
    const p = compilePolicy(source, 'policy.yaml', known)
    expect(p.ref).toEqual({ name: 'shop', version: 2, hash: createHash('sha256').update(source).digest('hex') })
    expect(p.owner).toBe('ops@shop.example')
    expect(p.topics).toEqual({ account_change: ['change my email'] })
    expect(p.callerSignals.map((s) => s.name)).toEqual(['order_value', 'channel_priority'])
    expect(p.routing.sequence[0]!.condition!.reads).toEqual([
      'signals.topics.account_change',
      'signals.custom.channel_priority',
    ])
  })

  it('given a CEL type error inside a rule, when compiled, then the position is the exact character in the YAML', () => {
    const e = compileError(
      policy(`  rules:
    - id: bad-type
      when: signals.intent_confidence >= 0.5 && signals.intent == 3
      route: { handler: agent, agent: shop-assistant }
`),
    )
    expect(e.code).toBe('POLICY_INVALID')
    // `signals.intent == 3` starts at column 49 of line 13
    expect(e.positions).toEqual([expect.objectContaining({ file: 'policy.yaml', line: 13, column: 49 })])
  })

  it('given a type error on the second line of a folded block scalar, when compiled, then line and column point into it', () => {
    const e = compileError(
      policy(`  rules:
    - id: folded
      when: >-
        signals.secrets > 0
        || customer.tier > 3
      route: { handler: operator, queue: security }
`),
    )
    expect(e.positions[0]).toMatchObject({ line: 15, column: 12 })
  })

  it('given a misspelt variable, when compiled, then the error names it and suggests the right one', () => {
    const e = compileError(
      policy(`  rules:
    - id: typo
      when: signals.riks.fraud
      route: { handler: operator, queue: security }
`),
    )
    expect(e.positions[0]).toMatchObject({ line: 13, column: 21 })
    expect(e.positions[0]!.message).toContain("did you mean 'signals.risk'?")
    expect(e.message).toMatch(/^policy\.yaml:13:21: /)
  })

  it('given a misspelt topic, when compiled, then the suggestion comes from the declared topics', () => {
    const e = compileError(
      policy(`  rules:
    - id: typo
      when: signals.topics.acount_change
      route: { handler: operator, queue: security }
`),
    )
    expect(e.positions[0]).toMatchObject({ line: 13, column: 28 })
    expect(e.positions[0]!.message).toContain("did you mean 'signals.topics.account_change'?")
  })

  it('given unknown agent, queue and tool names, when compiled, then each is an error at its position', () => {
    const e = compileError(
      policy(`  rules:
    - id: a
      route: { handler: hybrid, queue: biling, agent: shop-asistant }
tools:
  rules:
    - { id: t, tool: refnd, outcome: allow }
`),
    )
    expect(e.positions.map((p) => [p.line, p.column])).toEqual([
      [13, 40],
      [13, 55],
      [16, 22],
    ])
    expect(e.positions.every((p) => p.message.includes('did you mean'))).toBe(true)
  })

  it('given a condition that is not a bool, when compiled, then it is refused', () => {
    const e = compileError(
      policy(`  rules:
    - id: s
      when: signals.intent
      route: { handler: operator, queue: general }
`),
    )
    expect(e.positions[0]).toMatchObject({ line: 13, column: 13 })
  })

  it('given numbers from JSON, when conditions compare with int literals, then they type-check', () => {
    const p = compilePolicy(
      policy(`  rules:
    - id: n
      when: case.handoffs >= 3 && case.handoffs == 3 && signals.secrets + 1 > 1 && queue.billing.depth > 10
      route: { handler: operator, queue: general }
      reason: r
tools:
  rules:
    - { id: t, tool: refund, when: params.amount <= 50 && params.currency == 'EUR', outcome: allow, reason: r }
`),
      'policy.yaml',
      known,
    )
    expect(p.routing.sequence[0]!.condition!.reads).toEqual(['case.handoffs', 'signals.secrets', 'queue.billing.depth'])
    expect(p.tools.sequence[0]!.condition!.reads).toEqual(['params.amount', 'params.currency'])
  })
})

describe('validateCallerSignals', () => {
  const p = compilePolicy(policy(''), 'policy.yaml', known)

  it('given built-in and declared signals, when valid, then declared ones absent get their default', () => {
    const r = validateCallerSignals(p, { intent: 'refund', intent_confidence: 0.8, channel_priority: 'high' })
    expect(r).toEqual({
      ok: true,
      value: { intent: 'refund', intent_confidence: 0.8, channel_priority: 'high', order_value: 0 },
    })
  })

  it('given unknown names and bad values, when validated, then each field is named signals.<name>', () => {
    const r = validateCallerSignals(p, {
      intnet: 'x',
      order_value: -1,
      channel_priority: 'urgent',
      agent_confidence: 2,
    })
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.fields.map((f) => f.field)).toEqual([
      'signals.intnet',
      'signals.order_value',
      'signals.channel_priority',
      'signals.agent_confidence',
    ])
    expect(r.fields[0]!.message).toContain("did you mean 'intent'?")
  })

  it('given a policy that knows no intent labels (a lone file), when an intent is sent, then it is not checked', () => {
    expect(p.intentLabels).toBeNull()
    expect(validateCallerSignals(p, { intent: 'Anything' }).ok).toBe(true)
  })

  it('given the model labels and a declared list, when an intent is sent, then only those labels and unknown pass, compared exactly', () => {
    const labelled = compilePolicy(policy('intents: [refund, order_status]\n'), 'policy.yaml', {
      ...known,
      intents: ['complaint', 'track_order'],
    })
    for (const intent of ['complaint', 'track_order', 'refund', 'order_status', 'unknown']) {
      expect(validateCallerSignals(labelled, { intent, intent_confidence: 0.95 }).ok).toBe(true)
    }
    const r = validateCallerSignals(labelled, { intent: 'Complaint', intent_confidence: 0.95 })
    expect(r).toEqual({ ok: false, fields: [expect.objectContaining({ field: 'signals.intent' })] })
    if (!r.ok) expect(r.fields[0]!.message).toContain("did you mean 'complaint'?")
    expect(validateCallerSignals(labelled, { intent: 'launch_missiles', intent_confidence: 0.95 })).toMatchObject({
      ok: false,
      fields: [{ field: 'signals.intent' }],
    })
  })

  it('given a workspace with no model and a policy with no list, when an intent is sent, then only unknown passes', () => {
    const bare = compilePolicy(policy(''), 'policy.yaml', { ...known, intents: [] })
    expect([...(bare.intentLabels ?? [])]).toEqual(['unknown'])
    expect(validateCallerSignals(bare, { intent: 'unknown' }).ok).toBe(true)
    const r = validateCallerSignals(bare, { intent: 'refund' })
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.fields[0]!.message).toContain('no intent model')
  })

  it('given a confidence without an intent, when validated, then signals.intent_confidence is refused', () => {
    expect(validateCallerSignals(p, { intent_confidence: 0.9 })).toMatchObject({
      ok: false,
      fields: [{ field: 'signals.intent_confidence' }],
    })
  })

  it('given something that is not an object, when validated, then the field is signals', () => {
    expect(validateCallerSignals(p, 'x')).toEqual({
      ok: false,
      fields: [expect.objectContaining({ field: 'signals' })],
    })
  })
})

import { describe, expect, it } from 'vitest'
import { isBatonError } from '../errors.js'
import { conditionPosition, parsePolicy, parsePolicyTests } from './document.js'

const minimal = (routing: string) => `apiVersion: baton.dev/v1
kind: Policy
metadata: { name: shop, version: 3, owner: ops@shop.example }
routing:
${routing}`

function positionsOf(source: string) {
  try {
    parsePolicy(source, 'policy.yaml')
  } catch (e) {
    if (isBatonError(e, 'POLICY_INVALID')) return e.positions
    throw e
  }
  throw new Error('expected POLICY_INVALID')
}

describe('parsePolicy', () => {
  it('given a valid document, when parsed, then rules keep their order and positions', () => {
    const doc = parsePolicy(
      minimal(`  default: { handler: operator, queue: general, reason: fallback }
  overrides:
    - id: secret
      when: signals.secrets > 0
      route: { handler: operator, queue: security }
      trigger: secret
  rules:
    - id: ai
      route: { handler: agent, agent: bot }
`),
      'policy.yaml',
    )
    expect(doc.metadata).toEqual({
      name: 'shop',
      version: 3,
      versionAt: { line: 3, column: 34 },
      owner: 'ops@shop.example',
      description: '',
    })
    expect(doc.routing.overrides[0]).toMatchObject({
      id: 'secret',
      line: 7,
      column: 7,
      trigger: 'secret',
      override: true,
    })
    expect(doc.routing.overrides[0]!.when).toMatchObject({ text: 'signals.secrets > 0', line: 8, column: 13 })
    expect(doc.routing.rules[0]).toMatchObject({ id: 'ai', when: null, handler: { kind: 'agent', agentId: 'bot' } })
    expect(doc.routing.fallbackQueue).toBe('general')
    expect(doc.routing.maxHandoffs).toBe(4)
  })

  it('given declared intent labels, when parsed, then they keep their positions; bad and duplicate ones are errors with file:line:col', () => {
    const head = `apiVersion: baton.dev/v1
kind: Policy
metadata: { name: shop, version: 3 }
`
    const routing = `routing:
  default: { handler: operator, queue: general }
`
    const doc = parsePolicy(`${head}intents: [refund, Refund_not_showing_up]\n${routing}`, 'policy.yaml')
    expect(doc.intents).toEqual([
      { name: 'refund', line: 4, column: 11 },
      { name: 'Refund_not_showing_up', line: 4, column: 19 },
    ])
    expect(parsePolicy(`${head}${routing}`, 'policy.yaml').intents).toBeNull()
    const bad = positionsOf(`${head}intents:\n  - refund\n  - 42\n  - ' padded'\n  - refund\n${routing}`)
    expect(bad.map((p) => [p.line, p.column])).toEqual([
      [6, 5],
      [7, 5],
      [8, 5],
    ])
    expect(bad[0]!.message).toContain('expected an intent label')
    expect(bad[2]!.message).toContain("duplicate intent label 'refund', first declared at line 5:5")
    expect(positionsOf(`${head}intents: refund\n${routing}`)[0]).toMatchObject({ line: 4, column: 10 })
  })

  it('given bad indentation, when parsed, then POLICY_INVALID points at the offending line', () => {
    const positions = positionsOf(
      minimal(`  default: { handler: operator, queue: general }
  rules:
    - id: x
      when: signals.secrets > 0
     route: { handler: operator, queue: general }
`),
    )
    expect(positions).toHaveLength(1)
    expect(positions[0]).toMatchObject({ file: 'policy.yaml', line: 9, column: 1 })
  })

  it('given several mistakes, when parsed, then every one is reported with its position', () => {
    const positions = positionsOf(`apiVersion: baton.dev/v1
kind: Policy
metadata: { name: shop, version: 0 }
routing:
  default: { handler: operatr, queue: general }
  rules:
    - id: a
      route: { handler: agent }
    - id: a
      rout: { handler: operator, queue: general }
tools:
  rules:
    - { id: r, tool: refund, outcome: approve }
`)
    expect(positions.map((p) => [p.line, p.column])).toEqual([
      [3, 34], // version must be at least 1
      [5, 23], // unknown handler kind
      [8, 14], // an agent route without an agent
      [9, 7], // missing route
      [9, 11], // duplicate id
      [10, 7], // unknown key 'rout'
      [13, 7], // approve without approver_role
    ])
    expect(positions).toHaveLength(7)
    const unknownKey = positions.find((p) => p.line === 10)
    expect(unknownKey?.message).toContain("did you mean 'route'?")
  })

  it('given a condition in a block scalar, when a character is located, then its line and column are exact', () => {
    const doc = parsePolicy(
      minimal(`  default: { handler: operator, queue: general }
  rules:
    - id: x
      when: |
        signals.secrets > 0 &&
          customer.tier == 'gold'
      route: { handler: operator, queue: general }
`),
      'policy.yaml',
    )
    const when = doc.routing.rules[0]!.when!
    expect(when).toMatchObject({ line: 9, column: 9 })
    expect(conditionPosition(when, when.text.indexOf('customer'))).toEqual({ line: 10, column: 11 })
    expect(conditionPosition(when, when.text.indexOf("'gold'"))).toEqual({ line: 10, column: 28 })
  })

  it('given a condition in a double-quoted scalar with escapes, when located, then positions skip the escapes', () => {
    const doc = parsePolicy(
      minimal(`  default: { handler: operator, queue: general }
  rules:
    - id: x
      when: "signals.intent == \\"refund\\" && customer.verified"
      route: { handler: operator, queue: general }
`),
      'policy.yaml',
    )
    const when = doc.routing.rules[0]!.when!
    expect(when.text).toBe('signals.intent == "refund" && customer.verified')
    expect(conditionPosition(when, when.text.indexOf('customer'))).toEqual({ line: 8, column: 46 })
  })

  it('given an unknown top-level key, when parsed, then the error suggests the closest key', () => {
    const positions = positionsOf(`${minimal('  default: { handler: operator, queue: general }\n')}topcs: { a: [x] }\n`)
    expect(positions[0]).toMatchObject({ line: 6, column: 1 })
    expect(positions[0]!.message).toContain("did you mean 'topics'?")
  })
})

describe('parsePolicyTests', () => {
  it('given a test file as a list, when parsed, then tests carry kind and line', () => {
    const tests = parsePolicyTests(
      `- name: refund
  given: { tool: refund, params: { amount: 3 } }
  expect: { outcome: allow }
- name: route
  expect: { handler: operator }
`,
      'policy.test.yaml',
      null,
    )
    expect(tests.map((t) => [t.name, t.kind, t.line])).toEqual([
      ['refund', 'action', 1],
      ['route', 'route', 4],
    ])
  })

  it('given a misspelt fact in given, when parsed, then POLICY_INVALID suggests the field', () => {
    try {
      parsePolicyTests(
        'tests:\n  - name: x\n    given: { signals: { intnet: refund } }\n    expect: { handler: agent }\n',
        't.yaml',
        null,
      )
      expect.unreachable()
    } catch (e) {
      expect(isBatonError(e, 'POLICY_INVALID')).toBe(true)
      if (!isBatonError(e)) return
      expect(e.positions[0]).toMatchObject({ file: 't.yaml', line: 3, column: 25 })
      expect(e.positions[0]!.message).toContain("did you mean 'intent'?")
    }
  })
})

import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { checkPolicy } from './check.js'

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

const known = { agents: ['bot'], queues: ['general', 'security'], tools: ['reply', 'refund'] }

const policy = (body: string) => `apiVersion: baton.dev/v1
kind: Policy
metadata: { name: p, version: 1 }
routing:
  default: { handler: operator, queue: general, reason: fallback }
${body}`

const at = (ds: readonly { line: number; column: number }[]) => ds.map((d) => [d.line, d.column])

describe('checkPolicy', () => {
  it('given the example shop policy, when checked, then there are no errors and no warnings', () => {
    const source = readFileSync(new URL('../../examples/shop/policy.yaml', import.meta.url), 'utf8')
    const r = checkPolicy(source, 'examples/shop/policy.yaml', SHOP_KNOWN)
    expect(r.errors).toEqual([])
    expect(r.warnings).toEqual([])
  })

  it('given a rule after an unconditional override, when checked, then the rule is unreachable and so is the default', () => {
    const r = checkPolicy(
      policy(`  overrides:
    - id: all-to-humans
      route: { handler: operator, queue: general }
      reason: incident
  rules:
    - id: ai
      when: signals.intent == 'faq'
      route: { handler: agent, agent: bot }
      reason: r
`),
      'p.yaml',
      known,
    )
    expect(at(r.errors)).toEqual([[11, 7]])
    expect(r.errors[0]!.message).toContain("'ai'")
    expect(at(r.warnings)).toEqual([[5, 3]])
  })

  it('given a constant-true condition, when checked, then later rules are unreachable', () => {
    const r = checkPolicy(
      policy(`  rules:
    - { id: always, when: '1 == 1 && true', route: { handler: operator, queue: general }, reason: r }
    - { id: never-reached, when: signals.secrets > 0, route: { handler: operator, queue: security }, reason: r }
`),
      'p.yaml',
      known,
    )
    expect(at(r.errors)).toEqual([[8, 7]])
  })

  it('given a constant-false condition, when checked, then it is a warning, not an error', () => {
    const r = checkPolicy(
      policy(`  rules:
    - { id: off, when: 'false', route: { handler: operator, queue: general }, reason: r }
`),
      'p.yaml',
      known,
    )
    expect(r.errors).toEqual([])
    expect(at(r.warnings)).toEqual([[7, 25]])
  })

  it('given tool rules, when an earlier rule always matches the same tool, then only that tool’s later rules are unreachable', () => {
    const r = checkPolicy(
      policy(`tools:
  rules:
    - { id: refund-any, tool: refund, outcome: escalate, reason: r }
    - { id: refund-small, tool: refund, when: params.amount < 10, outcome: allow, reason: r }
    - { id: reply, tool: reply, outcome: allow, reason: r }
    - { id: rest, tool: '*', outcome: deny, reason: r }
`),
      'p.yaml',
      known,
    )
    expect(at(r.errors)).toEqual([[9, 7]])
  })

  it('given duplicate rule ids and an unknown variable, when checked, then both are errors with a hint for the variable', () => {
    const r = checkPolicy(
      policy(`  rules:
    - { id: x, when: custmer.verified, route: { handler: agent, agent: bot }, reason: r }
    - { id: x, route: { handler: agent, agent: bot }, reason: r }
`),
      'p.yaml',
      known,
    )
    expect(at(r.errors)).toEqual([
      [7, 22],
      [8, 13],
    ])
    expect(r.errors[0]!.hint).toBe("did you mean 'customer'?")
  })

  it('given a routing rule that reads params, when checked, then it warns that params are empty when routing', () => {
    const r = checkPolicy(
      policy(`  rules:
    - { id: p, when: params.amount > 3, route: { handler: agent, agent: bot }, reason: r }
`),
      'p.yaml',
      known,
    )
    expect(r.errors).toEqual([])
    expect(r.warnings.map((w) => w.message)).toEqual([expect.stringContaining('params')])
  })

  it('given no known names (no workspace), when checked, then references are not refused', () => {
    const r = checkPolicy(
      policy(`  rules:
    - { id: a, route: { handler: agent, agent: anyone }, reason: r }
`),
      'p.yaml',
      { agents: [], queues: [], tools: [] },
    )
    expect(r.errors).toEqual([])
    expect(r.warnings.length).toBeGreaterThan(0)
  })
})

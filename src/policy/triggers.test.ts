import { describe, expect, it } from 'vitest'
import { isBatonError } from '../errors.js'
import { compilePolicy } from './compile.js'
import { parsePolicy } from './document.js'
import { decideRoute } from './evaluate.js'
import type { Facts } from './types.js'

const policy = (triggers: string, rules: string) => `apiVersion: baton.dev/v1
kind: Policy
metadata: { name: shop, version: 1 }
routing:
  default: { handler: operator, queue: general }
${triggers}
  rules:
${rules}`

const KNOWN = { agents: ['bot'], queues: ['general'], tools: [] }

describe('escalation triggers', () => {
  it('given declared triggers, when a rule names an undeclared one, then the policy is refused at its position with a suggestion', () => {
    const source = policy(
      '  triggers:\n    no_progress: five answers without progress',
      '    - id: stuck\n      when: case.ai_turns >= 5\n      route: { handler: operator, queue: general }\n      trigger: no_progres',
    )
    try {
      parsePolicy(source, 'policy.yaml')
      throw new Error('expected POLICY_INVALID')
    } catch (e) {
      if (!isBatonError(e, 'POLICY_INVALID')) throw e
      expect(e.positions[0]).toMatchObject({ line: 12, column: 16 })
      expect(e.positions[0]?.message).toMatch(/unknown trigger 'no_progres'.*did you mean 'no_progress'/s)
    }
  })

  it('given declared triggers, when rules name them or a built-in one, then it compiles and lists them', () => {
    const source = policy(
      '  triggers:\n    no_progress: five answers without progress',
      '    - id: stuck\n      when: case.handler == "agent" && case.ai_turns >= 5\n      route: { handler: operator, queue: general }\n      trigger: no_progress\n    - id: late\n      when: case.sla_breached\n      route: { handler: operator, queue: general }\n      trigger: sla_breach',
    )
    const p = compilePolicy(source, 'policy.yaml', KNOWN)
    expect(p.routing.triggers).toEqual([
      'max_handoffs',
      'sla_breach',
      'manual',
      'handback',
      'agent_inactive',
      'no_progress',
    ])
    expect(() => parsePolicy(policy('  triggers:\n    manual: mine', '    []'), 'p.yaml')).toThrow(/built-in trigger/)
  })

  it('given facts without the trigger facts (older callers), when decided, then they read as 0 and false', () => {
    const p = compilePolicy(
      policy(
        '',
        '    - id: stuck\n      when: case.ai_turns >= 5 || case.risk_rose || case.sla_breached\n      route: { handler: operator, queue: general }\n      trigger: stuck\n    - id: bot\n      route: { handler: agent, agent: bot }',
      ),
      'policy.yaml',
      KNOWN,
    )
    const facts = {
      case: {
        id: 'c',
        channel: 'chat',
        state: 'open',
        handler: 'agent',
        handoffs: 0,
        messages: 2,
        age_s: 0,
        time_in_state_s: 0,
        risk_seen: false,
      },
      signals: {
        intent: '',
        intent_confidence: 0,
        agent_confidence: -1,
        language: 'en',
        secrets: 0,
        secret_kinds: [],
        pii: [],
        sensitivity: [],
        risk: {},
        topics: {},
        duplicate_of: '',
        custom: {},
      },
      customer: { id: 'cu', tier: '', verified: false },
      actor: { kind: 'service', id: 's', roles: [] },
      queue: {},
      params: {},
      tool: '',
    } as unknown as Facts
    expect(decideRoute(p, facts).rules).toEqual(['bot'])
    expect(decideRoute(p, { ...facts, case: { ...facts.case, ai_turns: 5 } })).toMatchObject({
      rules: ['stuck'],
      trigger: 'stuck',
    })
  })
})

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { isBatonError } from '../errors.js'
import { compilePolicy } from './compile.js'
import { parsePolicyTests } from './document.js'
import { loadPolicyFile, loadPolicyTests, testFileFor } from './load.js'
import { neutralFacts, runPolicyTests } from './policy-test.js'

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
const shopPath = new URL('../../examples/shop/policy.yaml', import.meta.url)
const shop = compilePolicy(readFileSync(shopPath, 'utf8'), 'examples/shop/policy.yaml', SHOP_KNOWN)

describe('runPolicyTests', () => {
  it('given the example shop policy, when its own tests run, then all pass and every rule is covered', () => {
    const r = runPolicyTests(shop)
    expect(r.failed).toEqual([])
    expect(r.passed).toBeGreaterThanOrEqual(12)
    const covered = new Set(shop.doc.tests.map((t) => t.expect.rule))
    const ids = [...shop.routing.sequence, ...shop.tools.sequence].map((x) => x.id)
    expect(ids.filter((id) => !covered.has(id))).toEqual([])
  })

  it('given a test whose expectation is wrong, when run, then it fails with its line and what was found', () => {
    const tests = parsePolicyTests(
      `tests:
  - name: right
    given: { signals: { secrets: 1 } }
    expect: { queue: security }
  - name: wrong
    given: { signals: { secrets: 1 } }
    expect: { handler: agent, rule: order-status }
`,
      'extra.test.yaml',
      shop.doc,
    )
    const r = runPolicyTests(shop, tests)
    expect(r.passed).toBe(1)
    expect(r.failed).toEqual([{ name: 'wrong', line: 5, message: expect.stringContaining("found 'operator'") }])
  })

  it('given a test file that names an undeclared topic, when run, then that test fails rather than passing by accident', () => {
    const tests = parsePolicyTests(
      '- { name: t, given: { signals: { topics: { shipping: true } } }, expect: { handler: agent } }\n',
      't.yaml',
      null,
    )
    expect(runPolicyTests(shop, tests).failed).toEqual([expect.objectContaining({ name: 't', line: 1 })])
  })

  it('given a test whose intent no caller could send, when run, then it fails naming given.signals.intent', () => {
    const labelled = compilePolicy(readFileSync(shopPath, 'utf8'), 'examples/shop/policy.yaml', {
      ...SHOP_KNOWN,
      intents: ['complaint'],
    })
    const tests = parsePolicyTests(
      `- { name: label, given: { signals: { intent: complaint, intent_confidence: 0.9 } }, expect: { handler: operator } }
- { name: declared, given: { signals: { intent: refund, intent_confidence: 0.9 } }, expect: { handler: hybrid } }
- { name: folded, given: { signals: { intent: Complaint, intent_confidence: 0.9 } }, expect: { handler: operator } }
`,
      't.yaml',
      labelled.doc,
    )
    const r = runPolicyTests(labelled, tests)
    expect(r.passed).toBe(2)
    expect(r.failed).toEqual([
      {
        name: 'folded',
        line: 3,
        message: expect.stringMatching(/^given\.signals\.intent: .*did you mean 'complaint'/),
      },
    ])
  })

  it('given the policy, when neutral facts are built, then nothing is detected and every topic and queue is present', () => {
    const n = neutralFacts(shop)
    expect(n.signals).toMatchObject({
      intent: '',
      intent_confidence: 0,
      agent_confidence: -1,
      language: 'en',
      secrets: 0,
    })
    expect(Object.values(n.signals.risk).every((v) => v === false)).toBe(true)
    expect(n.signals.topics).toEqual({ account_change: false, payment: false, order_status: false })
    expect(n.signals.custom).toEqual({ order_value: 0, intent_alt: '', intent_alt_confidence: 0 })
    expect(Object.keys(n.queue)).toEqual(SHOP_KNOWN.queues)
    expect(n.case.handler).toBe('')
  })
})

describe('load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'baton-policy-'))

  it('given a policy with a test file beside it, when loaded, then its inline and beside tests are both returned', async () => {
    const path = join(dir, 'policy.yaml')
    writeFileSync(path, readFileSync(shopPath, 'utf8'))
    writeFileSync(
      testFileFor(path),
      '- { name: beside, given: { signals: { secrets: 2 } }, expect: { queue: security } }\n',
    )
    expect(testFileFor(path)).toBe(join(dir, 'policy.test.yaml'))
    const { compiled, tests } = await loadPolicyFile(path, SHOP_KNOWN)
    expect(compiled.ref.hash).toBe(shop.ref.hash)
    expect(tests.at(-1)).toMatchObject({ name: 'beside', file: testFileFor(path) })
    expect(runPolicyTests(compiled, tests).failed).toEqual([])
    expect(await loadPolicyTests(testFileFor(path), compiled.doc)).toHaveLength(1)
  })

  it('given a missing file, when loaded, then POLICY_NOT_FOUND', async () => {
    await expect(loadPolicyFile(join(dir, 'nope.yaml'), SHOP_KNOWN)).rejects.toSatisfy((e) =>
      isBatonError(e, 'POLICY_NOT_FOUND'),
    )
  })
})

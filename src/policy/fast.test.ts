import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type CelProgram, type CompiledCel, compileCel, createCelEnvironments, isCelProblem } from './cel.js'
import { compilePolicy } from './compile.js'
import { factsShape } from './facts-shape.js'

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
  'policy.yaml',
  SHOP_KNOWN,
)
const envs = createCelEnvironments(
  factsShape({
    topics: Object.keys(shop.topics),
    custom: shop.callerSignals,
    queues: SHOP_KNOWN.queues,
    agents: SHOP_KNOWN.agents,
  }),
)

const EXTRA = [
  '!signals.risk.fraud ? customer.tier == "enterprise" : signals.secrets != 0',
  'signals.secrets in [0, 1, 2] && "pii" in signals.pii',
  'size(signals.intent) > 3 || signals.intent.size() == 0',
  'signals.intent.startsWith("ord") || signals.intent.endsWith("und") || signals.intent.contains("x")',
  'queue["trust-safety"].depth >= 2.5 && queue.billing.oldest_wait_s < 600',
  'params.amount <= 50 && params.currency == "EUR"',
  'params["amount"] > 0.0 || params.flag',
  'case.handoffs >= 3 && case.handler != "agent" && actor.kind in ["operator", "admin"]',
  'signals.agent_confidence >= 0.0 && signals.agent_confidence < 0.4 || signals.intent_confidence == 1',
  'customer.verified == true && "billing" in actor.roles',
]

function outcome(p: CelProgram, facts: object): { value: unknown } | { error: true } {
  try {
    return { value: p(facts) }
  } catch {
    return { error: true }
  }
}

const junk = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.double(),
  fc.integer({ min: -3, max: 3 }),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.bigInt({ min: -3n, max: 3n }),
  fc.array(fc.oneof(fc.string({ maxLength: 3 }), fc.integer()), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
)
const leaf = <T>(good: fc.Arbitrary<T>) => fc.oneof({ weight: 5, arbitrary: good }, { weight: 1, arbitrary: junk })
const num = leaf(fc.oneof(fc.integer({ min: -2, max: 5 }), fc.double({ min: -1, max: 1000 })))
const str = leaf(fc.constantFrom('', 'order_status', 'refund', 'x', 'enterprise', 'agent', 'operator', 'EUR'))
const bool = leaf(fc.boolean())
const strs = leaf(fc.subarray(['pii', 'card', 'email', 'billing', 'payment']))
const obj = (fields: Record<string, fc.Arbitrary<unknown>>) =>
  leaf(fc.record(fields, { requiredKeys: Object.keys(fields).filter((_, i) => i % 5 !== 4) }))

const queue = obj({ depth: num, oldest_wait_s: num })
const facts = fc.record({
  case: obj({ handler: str, handoffs: num, state: str, id: str, channel: str }),
  signals: obj({
    intent: str,
    intent_confidence: num,
    agent_confidence: num,
    secrets: num,
    pii: strs,
    sensitivity: strs,
    risk: obj({ fraud: bool, legal: bool, regulatory: bool, safety: bool, self_harm: bool, human_request: bool }),
    topics: obj({ account_change: bool, payment: bool, order_status: bool }),
    custom: obj({ order_value: num }),
  }),
  customer: obj({ tier: str, verified: bool, id: str }),
  actor: obj({ kind: str, roles: strs, id: str }),
  queue: obj({ billing: queue, 'trust-safety': queue, general: queue }),
  params: obj({ amount: num, currency: str, flag: bool }),
  tool: str,
})

describe('fast path', () => {
  const conditions = [
    ...shop.routing.sequence.map((r) => r.condition!.text),
    ...shop.tools.sequence.flatMap((r) => (r.condition === null ? [] : [r.condition.text])),
    ...EXTRA,
  ]
  const compiled = conditions.map((text) => {
    const c = compileCel(envs, text)
    if (isCelProblem(c)) throw new Error(`${text}: ${c.message}`)
    return [text, c] as [string, CompiledCel]
  })

  it('given the example and extra conditions, when compiled, then every one has a fast path', () => {
    expect(compiled.filter(([, c]) => !c.fast).map(([t]) => t)).toEqual([])
  })

  it('given random facts, including missing fields and values of the wrong type, then it agrees with cel-js', () => {
    fc.assert(
      fc.property(facts, (f) => {
        for (const [text, c] of compiled) {
          const got = outcome(c.program, f)
          const want = outcome(c.reference, f)
          if (JSON.stringify(got, big) !== JSON.stringify(want, big)) {
            throw new Error(`${text}: fast ${JSON.stringify(got, big)}, cel-js ${JSON.stringify(want, big)}`)
          }
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('given an expression outside the subset, when compiled, then it uses cel-js alone', () => {
    const c = compileCel(envs, 'signals.pii.exists(p, p == "card")')
    expect(isCelProblem(c)).toBe(false)
    if (isCelProblem(c)) return
    expect(c.fast).toBe(false)
    expect(c.program).toBe(c.reference)
  })
})

function big(_: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `${v}n` : Number.isNaN(v) ? 'NaN' : v
}

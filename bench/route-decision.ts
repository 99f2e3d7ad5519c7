import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as cedar from '@cedar-policy/cedar-wasm/nodejs'
import type { Handler } from '../src/cases/case.js'
import { type CompiledPolicy, type CompiledRoutingRule, compilePolicy } from '../src/policy/compile.js'
import { decideRoute } from '../src/policy/evaluate.js'
import { mergeFacts, neutralFacts } from '../src/policy/policy-test.js'
import { classThresholds } from '../src/policy/thresholds.js'
import type { Facts } from '../src/policy/types.js'
import { loadWorkspace } from '../src/workspace/workspace.js'
import { type Figure, figure, ROOT } from './harness.js'

const SHOP = join(ROOT, 'examples/shop')
/** Facts beyond the policy's own tests: a deterministic mix of what intake sees (see `mixedFacts`). */
const MIXED = 512
/** The shop policy's calibrated class thresholds (`baton intents calibrate` rewrites them), read from its file. */
const SHOP_SOURCE = readFileSync(join(SHOP, 'policy.yaml'), 'utf8')
const threshold = (c: string): number => {
  const t = classThresholds(SHOP_SOURCE, 'policy.yaml').get(c)?.[0]
  if (t === undefined) throw new Error(`${SHOP}/policy.yaml compares no signals.intent_class.${c}`)
  return t
}
const HUMAN_MASS = threshold('human')
const APPROVAL_MASS = threshold('approval')
const WARMUP_MS = 1000
const ROUNDS = 7
const SLICE_MS = 400

/** What the three deciders must agree on: the handler and the ids of the rules that decided. */
interface Routed {
  readonly handler: Handler
  readonly rules: readonly string[]
}

function key(r: Routed): string {
  const h = r.handler
  const queue = h.kind === 'agent' ? '' : h.queue
  const agent = h.kind === 'operator' ? '' : h.agentId
  return `${h.kind}|${queue}|${agent}|${r.rules.join('+')}`
}

// Intent lists of the shop policy's rules, shared by the Cedar translation and the hand-written function.
const PERSON_INTENTS = ['complaint', 'contact_human_agent']
const HUMAN_INTENTS = ['complaint', 'contact_human_agent', 'delete_account', 'payment_issue']
const ORDER_CHANGE_INTENTS = ['cancel_order', 'change_order', 'change_shipping_address']
const ACCOUNT_CHANGE_INTENTS = ['edit_account', 'recover_password', 'switch_account']
const DELEGATE_ACCOUNT_INTENTS = ['edit_account', 'recover_password', 'switch_account', 'delete_account']
const ASSISTANT_INTENTS = [
  'check_cancellation_fee',
  'check_invoice',
  'check_payment_methods',
  'check_refund_policy',
  'contact_customer_service',
  'create_account',
  'delivery_options',
  'delivery_period',
  'get_invoice',
  'newsletter_subscription',
  'place_order',
  'registration_problems',
  'review',
  'set_up_shipping_address',
  'track_order',
  'track_refund',
]

// ---- the Cedar baseline: the shop's routing rules as Cedar policies ----

function cedarSet(xs: readonly string[]): string {
  return `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`
}

/**
 * Each routing rule of examples/shop/policy.yaml as a Cedar `permit` over `context` (the facts), in evaluation
 * order: `@priority` is the rule's position (lower decides first). Cedar has no floating point: every fractional
 * fact is a Long in ten-thousandths (the precision of Cedar's `decimal`, which measured about 1.8× slower here;
 * `toScaled` refuses a value that scaling would change). `max-handoffs` is the ping-pong cap, applied after the
 * choice as `decideRoute` applies it.
 */
const CEDAR_RULES: readonly (readonly [id: string, when: string])[] = [
  ['sla-breach-human-takes-over', 'context.case.sla_breached && context.case.handler == "hybrid"'],
  ['secret-in-message', 'context.signals.secrets > 0'],
  ['safety-risk', 'context.signals.risk.self_harm || context.signals.risk.safety'],
  ['fraud-rose-mid-case', 'context.case.risk_rose && context.case.handler == "agent" && context.signals.risk.fraud'],
  ['fraud-risk', 'context.signals.risk.fraud'],
  ['legal-risk', 'context.signals.risk.legal || context.signals.risk.regulatory'],
  ['human-owns-case', 'context.case.human_owned'],
  ['no-ai-progress', 'context.case.handler == "agent" && context.case.ai_turns >= 5'],
  [
    'delegate-account-change',
    `context.actor.kind == "delegate" && (context.signals.topics.account_change || ${cedarSet(DELEGATE_ACCOUNT_INTENTS)}.contains(context.signals.intent))`,
  ],
  ['human-requested', 'context.signals.risk.human_request'],
  ['low-agent-confidence', 'context.signals.agent_confidence >= 0 && context.signals.agent_confidence < 4000'],
  ['complaint-or-person-intent', `${cedarSet(PERSON_INTENTS)}.contains(context.signals.intent)`],
  ['payment-issue-intent', 'context.signals.intent == "payment_issue"'],
  ['account-deletion-intent', 'context.signals.intent == "delete_account"'],
  [
    'runner-up-is-human',
    `context.signals.custom.intent_alt_confidence >= 2500 && ${cedarSet(HUMAN_INTENTS)}.contains(context.signals.custom.intent_alt)`,
  ],
  ['human-class-mass', `context.signals.intent_class.human >= ${toScaled(HUMAN_MASS)}`],
  ['order-change-intent', `${cedarSet(ORDER_CHANGE_INTENTS)}.contains(context.signals.intent)`],
  ['account-change-intent', `${cedarSet(ACCOUNT_CHANGE_INTENTS)}.contains(context.signals.intent)`],
  ['account-change', 'context.signals.topics.account_change'],
  [
    'payment',
    'context.signals.topics.payment || ["refund", "get_refund"].contains(context.signals.intent) || context.signals.sensitivity.contains("payment")',
  ],
  ['unknown-intent', 'context.signals.intent == "unknown" && !context.signals.topics.order_status'],
  ['approval-class-mass', `context.signals.intent_class.approval >= ${toScaled(APPROVAL_MASS)}`],
  [
    'order-status',
    'context.signals.topics.order_status || (["order_status", "track_order"].contains(context.signals.intent) && context.signals.intent_confidence >= 6000)',
  ],
  [
    'assistant-intent',
    `context.signals.intent_confidence >= 6000 && context.signals.sensitivity.isEmpty() && context.signals.custom.order_value < 20000000 && ${cedarSet(ASSISTANT_INTENTS)}.contains(context.signals.intent)`,
  ],
  ['high-value-order', 'context.signals.custom.order_value >= 20000000'],
  ['enterprise-pii', 'context.customer.tier == "enterprise" && !context.signals.pii.isEmpty()'],
  ['unclear-intent', 'context.signals.intent == "" || context.signals.intent_confidence < 5000'],
  ['plain-question', 'context.signals.sensitivity.isEmpty() && context.signals.intent_confidence >= 5000'],
]
const CEDAR_CAP = [
  'max-handoffs',
  'context.case.handoffs >= 4 && (context.case.handler == "operator" || context.case.handler == "hybrid")',
] as const
const POLICY_SET_ID = 'shop-routing'

interface CedarRouter {
  readonly decide: (request: cedar.StatefulAuthorizationCall) => Routed
  readonly request: (facts: Facts) => cedar.StatefulAuthorizationCall
}

function cedarRouter(policy: CompiledPolicy): CedarRouter {
  const { routing } = policy
  const rules = new Map(routing.sequence.map((r, i) => [r.id, { ...r, priority: i }]))
  if (rules.size !== CEDAR_RULES.length || CEDAR_RULES.some(([id]) => !rules.has(id))) {
    throw new Error(
      `the routing rules of ${SHOP}/policy.yaml changed (${[...rules.keys()].join(', ')}): update CEDAR_RULES and handwritten() in bench/route-decision.ts`,
    )
  }
  const staticPolicies: Record<string, string> = {}
  for (const [id, when] of [...CEDAR_RULES, CEDAR_CAP]) {
    const priority = rules.get(id)?.priority ?? CEDAR_RULES.length
    staticPolicies[id] =
      `@id("${id}")\n@priority("${priority}")\npermit (principal, action == Action::"route", resource)\nwhen { ${when} };`
  }
  const parsed = cedar.preparsePolicySet(POLICY_SET_ID, { staticPolicies })
  if (parsed.type !== 'success') throw new Error(`Cedar policies: ${JSON.stringify(parsed.errors)}`)

  return {
    request: (f) => ({
      principal: { type: 'Service', id: f.actor.id },
      action: { type: 'Action', id: 'route' },
      resource: { type: 'Case', id: f.case.id },
      context: {
        case: {
          handler: f.case.handler,
          queue: f.case.queue ?? '',
          agent: f.case.agent ?? '',
          human_owned: f.case.human_owned ?? false,
          handoffs: f.case.handoffs,
          ai_turns: f.case.ai_turns ?? 0,
          risk_rose: f.case.risk_rose ?? false,
          sla_breached: f.case.sla_breached ?? false,
        },
        customer: { tier: f.customer.tier, verified: f.customer.verified },
        actor: { kind: f.actor.kind },
        signals: {
          intent: f.signals.intent,
          intent_confidence: toScaled(f.signals.intent_confidence),
          agent_confidence: toScaled(f.signals.agent_confidence),
          secrets: f.signals.secrets,
          pii: [...f.signals.pii],
          sensitivity: [...f.signals.sensitivity],
          risk: { ...f.signals.risk },
          topics: { ...f.signals.topics },
          intent_class: {
            human: toScaled(f.signals.intent_class['human'] ?? 0),
            approval: toScaled(f.signals.intent_class['approval'] ?? 0),
          },
          custom: {
            order_value: toScaled(Number(f.signals.custom['order_value'] ?? 0)),
            intent_alt: String(f.signals.custom['intent_alt'] ?? ''),
            intent_alt_confidence: toScaled(Number(f.signals.custom['intent_alt_confidence'] ?? 0)),
          },
        },
      },
      preparsedPolicySetId: POLICY_SET_ID,
      entities: [],
    }),
    decide(request) {
      const answer = cedar.statefulIsAuthorized(request)
      if (answer.type !== 'success') throw new Error(`Cedar: ${JSON.stringify(answer.errors)}`)
      const { reason, errors } = answer.response.diagnostics
      let chosen: CompiledRoutingRule = routing.default
      let best = Number.POSITIVE_INFINITY
      const pick = (id: string) => {
        const r = rules.get(id)
        if (r !== undefined && r.priority < best) {
          best = r.priority
          chosen = r
        }
      }
      for (const id of reason) pick(id)
      // Baton fails closed: an override to a human whose condition errs matches. Cedar skips an erring policy.
      for (const e of errors) if (rules.get(e.policyId)?.failClosed === true) pick(e.policyId)
      // `current` is resolved outside Cedar, from the case as the request's caller knows it
      const handler = chosen.handler.kind === 'current' ? holder(request.context.case) : chosen.handler
      if (handler.kind === 'agent' && reason.includes('max-handoffs')) {
        return { handler: { kind: 'operator', queue: routing.fallbackQueue }, rules: [chosen.id, 'max-handoffs'] }
      }
      return { handler, rules: [chosen.id] }
    },
  }
}

/** Whoever holds the case (`{ handler: current }`), as decideRoute resolves it; the shop's fallback queue is general. */
function holder(c: unknown): Handler {
  const { handler, queue, agent } = c as { handler: string; queue: string; agent: string }
  if (handler === 'agent' && agent !== '') return { kind: 'agent', agentId: agent }
  if (handler === 'hybrid' && agent !== '' && queue !== '') return { kind: 'hybrid', queue, agentId: agent }
  if (handler === 'operator' && queue !== '') return { kind: 'operator', queue }
  return H.general
}

/** A number as a Cedar Long in ten-thousandths; refuses a value that scaling would change. */
function toScaled(n: number): number {
  const scaled = Math.round(n * 10_000)
  if (scaled / 10_000 !== n || !Number.isSafeInteger(scaled)) throw new Error(`${n} is not exact in ten-thousandths`)
  return scaled
}

// ---- the physical limit: the same decisions as straight TypeScript ----

const SHOP_ASSISTANT = 'shop-assistant'
const operator = (queue: string): Handler => ({ kind: 'operator', queue })
const hybrid = (queue: string): Handler => ({ kind: 'hybrid', queue, agentId: SHOP_ASSISTANT })
const H = {
  security: operator('security'),
  trustSafety: operator('trust-safety'),
  legal: operator('legal'),
  general: operator('general'),
  billingOperator: operator('billing'),
  accountsOperator: operator('accounts'),
  accounts: hybrid('accounts'),
  billing: hybrid('billing'),
  hybridGeneral: hybrid('general'),
  agent: { kind: 'agent', agentId: SHOP_ASSISTANT } as Handler,
}

const PERSON = new Set(PERSON_INTENTS)
const HUMAN = new Set(HUMAN_INTENTS)
const ORDER_CHANGE = new Set(ORDER_CHANGE_INTENTS)
const ACCOUNT_CHANGE = new Set(ACCOUNT_CHANGE_INTENTS)
const ASSISTANT = new Set(ASSISTANT_INTENTS)
const DELEGATE_ACCOUNT = new Set(DELEGATE_ACCOUNT_INTENTS)

function handwritten(f: Facts): Routed {
  const s = f.signals
  const r = s.risk
  const c = f.case
  let id: string
  let handler: Handler
  if (c.sla_breached === true && c.handler === 'hybrid') [id, handler] = ['sla-breach-human-takes-over', H.general]
  else if (s.secrets > 0) [id, handler] = ['secret-in-message', H.security]
  else if (r.self_harm || r.safety) [id, handler] = ['safety-risk', H.trustSafety]
  else if (c.risk_rose === true && c.handler === 'agent' && r.fraud) [id, handler] = ['fraud-rose-mid-case', H.security]
  else if (r.fraud) [id, handler] = ['fraud-risk', H.security]
  else if (r.legal || r.regulatory) [id, handler] = ['legal-risk', H.legal]
  else if (c.human_owned === true) [id, handler] = ['human-owns-case', holder(c)]
  else if (c.handler === 'agent' && (c.ai_turns ?? 0) >= 5) [id, handler] = ['no-ai-progress', H.general]
  else if (f.actor.kind === 'delegate' && (s.topics['account_change'] || DELEGATE_ACCOUNT.has(s.intent)))
    [id, handler] = ['delegate-account-change', H.accountsOperator]
  else if (r.human_request) [id, handler] = ['human-requested', H.general]
  else if (s.agent_confidence >= 0 && s.agent_confidence < 0.4) [id, handler] = ['low-agent-confidence', H.general]
  else if (PERSON.has(s.intent)) [id, handler] = ['complaint-or-person-intent', H.general]
  else if (s.intent === 'payment_issue') [id, handler] = ['payment-issue-intent', H.billingOperator]
  else if (s.intent === 'delete_account') [id, handler] = ['account-deletion-intent', H.accountsOperator]
  else if ((s.custom['intent_alt_confidence'] as number) >= 0.25 && HUMAN.has(s.custom['intent_alt'] as string))
    [id, handler] = ['runner-up-is-human', H.general]
  else if ((s.intent_class['human'] ?? 0) >= HUMAN_MASS) [id, handler] = ['human-class-mass', H.general]
  else if (ORDER_CHANGE.has(s.intent)) [id, handler] = ['order-change-intent', H.hybridGeneral]
  else if (ACCOUNT_CHANGE.has(s.intent)) [id, handler] = ['account-change-intent', H.accounts]
  else if (s.topics['account_change']) [id, handler] = ['account-change', H.accounts]
  else if (
    s.topics['payment'] ||
    s.intent === 'refund' ||
    s.intent === 'get_refund' ||
    s.sensitivity.includes('payment')
  )
    [id, handler] = ['payment', H.billing]
  else if (s.intent === 'unknown' && !s.topics['order_status']) [id, handler] = ['unknown-intent', H.general]
  else if ((s.intent_class['approval'] ?? 0) >= APPROVAL_MASS) [id, handler] = ['approval-class-mass', H.hybridGeneral]
  else if (
    s.topics['order_status'] ||
    ((s.intent === 'order_status' || s.intent === 'track_order') && s.intent_confidence >= 0.6)
  )
    [id, handler] = ['order-status', H.agent]
  else if (
    s.intent_confidence >= 0.6 &&
    s.sensitivity.length === 0 &&
    (s.custom['order_value'] as number) < 2000 &&
    ASSISTANT.has(s.intent)
  )
    [id, handler] = ['assistant-intent', H.agent]
  else if ((s.custom['order_value'] as number) >= 2000) [id, handler] = ['high-value-order', H.hybridGeneral]
  else if (f.customer.tier === 'enterprise' && s.pii.length > 0) [id, handler] = ['enterprise-pii', H.hybridGeneral]
  else if (s.intent === '' || s.intent_confidence < 0.5) [id, handler] = ['unclear-intent', H.general]
  else if (s.sensitivity.length === 0 && s.intent_confidence >= 0.5) [id, handler] = ['plain-question', H.agent]
  else [id, handler] = ['default', H.general]
  if (handler.kind === 'agent' && c.handoffs >= 4 && (c.handler === 'operator' || c.handler === 'hybrid')) {
    return { handler: H.general, rules: [id, 'max-handoffs'] }
  }
  return { handler, rules: [id] }
}

/**
 * Nanoseconds per call of each function: a warm-up, then ROUNDS rounds in which each runs for SLICE_MS in turn, so
 * that load from other processes hits all alike; the median round of each. (`timePerCall` warms up with 20,000
 * calls, which is minutes of Cedar.)
 */
function interleaved(fns: readonly ((i: number) => unknown)[]): number[] {
  const rounds: number[][] = fns.map(() => [])
  for (const fn of fns) timeSlice(fn, WARMUP_MS)
  for (let r = 0; r < ROUNDS; r++) for (const [k, fn] of fns.entries()) rounds[k]!.push(timeSlice(fn, SLICE_MS))
  return rounds.map((xs) => xs.sort((a, b) => a - b)[xs.length >> 1]!)
}

function timeSlice(fn: (i: number) => unknown, ms: number): number {
  let sink = 0
  let n = 0
  const start = process.hrtime.bigint()
  const deadline = start + BigInt(ms) * 1_000_000n
  let now = start
  while (now < deadline) {
    for (let k = 0; k < 64; k++, n++) sink ^= fn(n) === undefined ? 0 : 1
    now = process.hrtime.bigint()
  }
  if (sink === -1) console.log('')
  return Number(now - start) / n
}

// ---- inputs ----

/** A deterministic mix of routing facts: intents, confidences, topics, risks, PII, tiers and handoff histories. */
function mixedFacts(base: Facts, n: number): Facts[] {
  const intents = [
    '',
    'unknown',
    'product_question',
    'order_status',
    'refund',
    'get_refund',
    'payment_issue',
    'delete_account',
    ...PERSON_INTENTS,
    ...ORDER_CHANGE_INTENTS,
    ...ACCOUNT_CHANGE_INTENTS,
    ...ASSISTANT_INTENTS,
  ]
  const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length]!
  const out: Facts[] = []
  for (let i = 0; i < n; i++) {
    const h = (i * 2654435761) >>> 0
    const bit = (k: number) => ((h >>> k) & 1) === 1 && ((h >>> (k + 8)) & 1) === 1
    const pii = bit(3) ? ['email'] : []
    const payment = bit(4) && bit(5)
    const handler = pick(['', 'agent', 'operator', 'hybrid'], h >>> 6)
    out.push(
      mergeFacts(base, {
        case: {
          handler,
          queue: handler === '' || handler === 'agent' ? '' : pick(['general', 'billing', 'accounts'], h >>> 3),
          agent: handler === 'agent' || handler === 'hybrid' ? SHOP_ASSISTANT : '',
          // owned by a person: only a case a human holds, and one time in four of those
          human_owned: (handler === 'operator' || handler === 'hybrid') && (h >>> 25) % 4 === 0,
          handoffs: (h >>> 9) % 6,
          messages: 1 + ((h >>> 12) % 5),
          ai_turns: (h >>> 24) % 7,
          risk_rose: (h & 0x7) === 4,
          sla_breached: (h & 0xf) === 9,
        },
        customer: { tier: pick(['', 'free', 'standard', 'premium', 'enterprise'], h >>> 14) },
        actor: { kind: pick(['service', 'service', 'service', 'delegate'], h >>> 27) },
        signals: {
          intent: pick(intents, h >>> 17),
          intent_confidence: ((h >>> 20) % 101) / 100,
          agent_confidence: bit(1) ? ((h >>> 22) % 101) / 100 : -1,
          secrets: (h & 0x3ff) === 7 ? 1 : 0,
          pii,
          sensitivity: [...(pii.length > 0 ? ['pii'] : []), ...(payment ? ['payment'] : [])],
          risk: { fraud: (h & 0x1f) === 1, legal: (h & 0xff) === 2, human_request: (h & 0x3f) === 3 },
          topics: { order_status: bit(7), payment: (h & 0x1f) === 5, account_change: (h & 0x1f) === 6 },
          // class masses in hundredths, so that both class-mass rules match some inputs and miss others
          intent_class: { ai: 0, human: ((h >>> 2) % 61) / 100, approval: ((h >>> 10) % 51) / 100 },
          custom: {
            order_value: ((h >>> 11) % 40) * 100,
            intent_alt: pick(['', 'review', ...HUMAN_INTENTS], h >>> 5),
            intent_alt_confidence: ((h >>> 13) % 41) / 100,
          },
        },
      }),
    )
  }
  return out
}

/**
 * route_decision_vs_cedar and route_decision_vs_handwritten: one in-process routing decision for the shop policy
 * (compiled once) over the policy's own route tests and a deterministic mix of facts, against the same decisions
 * made by Cedar (one authorization of a preparsed policy set per decision) and by a hand-written function. All
 * three must agree on every input.
 */
export async function routeDecision(): Promise<Figure[]> {
  const ws = await loadWorkspace(SHOP)
  const source = await readFile(ws.policyFile, 'utf8')
  const policy = compilePolicy(source, ws.policyFile, {
    agents: ws.agents.map((a) => a.id),
    queues: ws.queues.map((q) => q.id),
    tools: ws.tools.map((t) => t.name),
  })
  const base = neutralFacts(policy)
  const tests = policy.doc.tests.filter((t) => t.kind === 'route')
  const inputs = [...tests.map((t) => mergeFacts(base, t.given)), ...mixedFacts(base, MIXED)]

  const router = cedarRouter(policy)
  // The Cedar requests are built before the clock starts: Cedar is timed on authorization alone.
  const requests = inputs.map((f) => router.request(f))
  const byRule = new Map<string, number>()
  for (const [i, f] of inputs.entries()) {
    const baton = key(decideRoute(policy, f))
    const viaCedar = key(router.decide(requests[i]!))
    const direct = key(handwritten(f))
    if (baton !== viaCedar || baton !== direct) {
      throw new Error(
        `route decisions disagree on input ${i} (${JSON.stringify(f.signals)}): baton ${baton}, cedar ${viaCedar}, handwritten ${direct}`,
      )
    }
    const rule = baton.split('|')[3]!
    byRule.set(rule, (byRule.get(rule) ?? 0) + 1)
  }

  const n = inputs.length
  const [batonNs, cedarNs, handNs] = interleaved([
    (i) => decideRoute(policy, inputs[i % n]!),
    (i) => router.decide(requests[i % n]!),
    (i) => handwritten(inputs[i % n]!),
  ]) as [number, number, number]
  const perSecond = (ns: number) => 1e9 / ns
  const notes = {
    inputs: n,
    policyTests: tests.length,
    rulesUsed: byRule.size,
    batonNsPerDecision: Math.round(batonNs),
    timing: `median of ${ROUNDS} interleaved ${SLICE_MS} ms slices`,
  }
  return [
    figure(
      'route_decision_vs_cedar',
      perSecond(batonNs),
      'decisions/s',
      perSecond(cedarNs),
      cedarNs / batonNs,
      '>= 10',
      {
        ...notes,
        cedarNsPerDecision: Math.round(cedarNs),
        cedar: `@cedar-policy/cedar-wasm ${cedar.getCedarVersion()}, statefulIsAuthorized on a preparsed set of ${CEDAR_RULES.length + 1} policies, one call per decision, requests prebuilt`,
      },
    ),
    figure(
      'route_decision_vs_handwritten',
      perSecond(batonNs),
      'decisions/s',
      perSecond(handNs),
      handNs / batonNs,
      null,
      { ...notes, handwrittenNsPerDecision: Math.round(handNs) },
    ),
  ]
}

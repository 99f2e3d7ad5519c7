import { RISK_CATEGORIES, type RiskCategory } from '../signals/types.js'
import { type CompiledPolicy, intentProblem } from './compile.js'
import type { PolicyTestCase, TestExpectation } from './document.js'
import { decideAction, decideRoute } from './evaluate.js'
import type { Facts } from './types.js'

export interface PolicyTestReport {
  readonly passed: number
  readonly failed: readonly { readonly name: string; readonly line: number; readonly message: string }[]
}

/**
 * Facts of a new case with a plain message and nothing detected: no intent (confidence 0), no agent confidence
 * (-1), English, no secrets, PII or risks, every topic false, every declared signal at its default, a service
 * actor, every known queue empty, every agent (known or named by a route) active. Policy tests state only what
 * differs from this.
 */
export function neutralFacts(policy: CompiledPolicy): Facts {
  const risk = {} as Record<RiskCategory, boolean>
  for (const c of RISK_CATEGORIES) risk[c] = false
  const topics: Record<string, boolean> = {}
  for (const t of Object.keys(policy.topics)) topics[t] = false
  const custom: Record<string, string | number | boolean> = {}
  for (const s of policy.callerSignals) custom[s.name] = s.default
  const intentClass: Record<string, number> = {}
  for (const c of policy.known.intentClasses ?? []) intentClass[c] = 0
  const queue: Record<string, { depth: number; oldest_wait_s: number }> = {}
  for (const q of policy.known.queues) queue[q] = { depth: 0, oldest_wait_s: 0 }
  const agents: Record<string, { state: string }> = {}
  for (const a of agentsOf(policy)) agents[a] = { state: 'active' }
  return {
    case: {
      id: 'case-test',
      channel: 'chat',
      state: 'open',
      handler: '',
      queue: '',
      agent: '',
      human_owned: false,
      handoffs: 0,
      messages: 1,
      age_s: 0,
      time_in_state_s: 0,
      risk_seen: false,
      ai_turns: 0,
      risk_rose: false,
      sla_breached: false,
    },
    signals: {
      intent: '',
      intent_confidence: 0,
      intent_class: intentClass,
      agent_confidence: -1,
      language: 'en',
      secrets: 0,
      secret_kinds: [],
      pii: [],
      sensitivity: [],
      risk,
      topics,
      duplicate_of: '',
      custom,
    },
    customer: { id: 'customer-test', tier: '', verified: false },
    actor: {
      kind: 'service',
      id: 'helpdesk',
      roles: [],
      scopes: [],
      chain: [],
      grant: { id: '', scopes: [], depth: 0, expires_in_s: 0, may_subdelegate: false, granted_by: '' },
    },
    queue,
    agents,
    params: {},
    tool: '',
  }
}

function agentsOf(policy: CompiledPolicy): readonly string[] {
  return [...new Set([...policy.known.agents, ...policy.routing.agents])]
}

/** Deep-merge partial facts over a base: mappings merge, everything else (lists included) replaces. */
export function mergeFacts(base: Facts, given: Readonly<Record<string, unknown>>): Facts {
  return merge(base, given) as Facts
}

function merge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over
  const out: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(over)) out[k] = Object.hasOwn(base, k) ? merge(base[k], v) : v
  return out
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x)
}

/**
 * Run policy tests (by default the policy's own `tests:`). Each test's `given` is merged over `neutralFacts`;
 * a test that sets `given.tool` checks `decideAction`, any other `decideRoute`.
 */
export function runPolicyTests(policy: CompiledPolicy, tests?: readonly PolicyTestCase[]): PolicyTestReport {
  const list = tests ?? policy.doc.tests
  const failed: { name: string; line: number; message: string }[] = []
  let passed = 0
  const base = neutralFacts(policy)
  for (const t of list) {
    const unknown = unknownNames(policy, t.given)
    if (unknown !== null) {
      failed.push({ name: t.name, line: t.line, message: unknown })
      continue
    }
    const facts = mergeFacts(base, t.given)
    const problems = t.kind === 'action' ? checkAction(policy, facts, t.expect) : checkRoute(policy, facts, t.expect)
    if (problems === null) passed++
    else failed.push({ name: t.name, line: t.line, message: problems })
  }
  return { passed, failed }
}

function checkRoute(policy: CompiledPolicy, facts: Facts, x: TestExpectation): string | null {
  const r = decideRoute(policy, facts)
  const h = r.handler
  const actual: Record<string, string> = {
    handler: h.kind,
    outcome: h.kind,
    queue: h.kind === 'agent' ? '' : h.queue,
    agent: h.kind === 'operator' ? '' : h.agentId,
    trigger: r.trigger,
  }
  return compare(x, actual, r.rules)
}

function checkAction(policy: CompiledPolicy, facts: Facts, x: TestExpectation): string | null {
  const r = decideAction(policy, facts)
  const actual: Record<string, string> = { outcome: r.outcome, approver_role: r.approverRole, queue: r.queue }
  return compare(x, actual, r.rules)
}

function compare(
  x: TestExpectation,
  actual: Readonly<Record<string, string>>,
  rules: readonly string[],
): string | null {
  const problems: string[] = []
  for (const [k, want] of Object.entries(x)) {
    if (k === 'rule') {
      if (!rules.includes(want as string))
        problems.push(`expected rule '${want}', found ${rules.map((r) => `'${r}'`).join(', ')}`)
      continue
    }
    const got = actual[k] ?? ''
    if (got !== want) problems.push(`expected ${k} '${want}', found '${got}'`)
  }
  return problems.length === 0 ? null : `${problems.join('; ')} (decided by ${rules.join(', ')})`
}

/**
 * Tests loaded from a separate file may name topics or signals the policy does not declare; any test may name an
 * intent that is no label of the policy's workspace.
 */
function unknownNames(policy: CompiledPolicy, given: Readonly<Record<string, unknown>>): string | null {
  const agents = given['agents']
  if (isPlainObject(agents)) {
    const names = agentsOf(policy)
    for (const k of Object.keys(agents)) if (!names.includes(k)) return `given.agents: unknown agent '${k}'`
  }
  const signals = given['signals']
  if (!isPlainObject(signals)) return null
  const topics = signals['topics']
  if (isPlainObject(topics)) {
    for (const k of Object.keys(topics)) {
      if (!Object.hasOwn(policy.topics, k)) return `given.signals.topics: unknown topic '${k}'`
    }
  }
  const intent = signals['intent']
  if (typeof intent === 'string' && intent !== '') {
    // a test must exercise an intent a caller could send: intake refuses any other (VALIDATION_FAILED)
    const problem = intentProblem(policy, intent)
    if (problem !== null) return `given.signals.intent: ${problem}`
  }
  const custom = signals['custom']
  if (isPlainObject(custom)) {
    for (const k of Object.keys(custom)) {
      if (!policy.callerSignals.some((s) => s.name === k)) return `given.signals.custom: unknown signal '${k}'`
    }
  }
  return null
}

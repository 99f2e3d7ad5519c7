import type { Handler } from '../cases/case.js'
import { RISK_CATEGORIES } from '../signals/types.js'
import { errorSummary } from './cel.js'
import type { CompiledCondition, CompiledPolicy, CompiledRoutingRule, CompiledToolRule } from './compile.js'
import type { ActionResult, AgentFacts, Facts, RouteResult, RuleMatch } from './types.js'

/**
 * Decide who handles a case. Overrides first, then rules, in order; the first match wins; no match gives the
 * routing default. A rule routing to `current` keeps the case with whoever holds it (`case.handler`, `case.queue`,
 * `case.agent`), or sends a case no one holds yet to the fallback queue. Then the ping-pong cap: once `case.handoffs >= max_handoffs`, a case a human holds is not given
 * back to an AI agent; it goes to the fallback queue instead (rule `max-handoffs`). Last, a route to an agent (alone
 * or drafting in a hybrid route) whose `agents.<id>.state` is not `active` goes to the fallback queue too (rule
 * `agent-inactive`): a suspended, retired or never activated agent cannot get a token, so the case would be stranded.
 *
 * A condition that fails to evaluate (a missing parameter, a wrong type at run time) does not match, except in an
 * override that hands the case to a human, which then matches: it fails closed.
 * Pure: the same policy and facts always give the same result.
 */
export function decideRoute(policy: CompiledPolicy, given: Facts): RouteResult {
  const facts = completeFacts(policy, given)
  const { routing } = policy
  let chosen: CompiledRoutingRule = routing.default
  let failure: string | null = null
  for (const rule of routing.sequence) {
    const m = matches(rule.condition, rule.failClosed, facts)
    if (m === false) continue
    chosen = rule
    if (m !== true) failure = m
    break
  }
  const match = ruleMatch(chosen.id, chosen.reason, chosen.condition, failure, facts)
  const c = facts.case
  const target: Handler = chosen.handler.kind === 'current' ? currentHandler(c, routing.fallbackQueue) : chosen.handler
  if (
    target.kind === 'agent' &&
    c.handoffs >= routing.maxHandoffs &&
    (c.handler === 'operator' || c.handler === 'hybrid')
  ) {
    const handler: Handler = { kind: 'operator', queue: routing.fallbackQueue }
    return {
      kind: 'route',
      outcome: 'operator',
      handler,
      rules: [chosen.id, 'max-handoffs'],
      explanation: [
        match,
        {
          id: 'max-handoffs',
          reason: `The case has changed hands ${c.handoffs} times (cap ${routing.maxHandoffs}); it stays with a human rather than going back to an AI agent`,
          reads: { 'case.handoffs': c.handoffs, 'case.handler': c.handler },
        },
      ],
      trigger: 'max_handoffs',
      policy: policy.ref,
    }
  }
  if (target.kind !== 'operator') {
    const agentId = target.agentId
    const state = facts.agents?.[agentId]?.state ?? ''
    if (state !== 'active') {
      return {
        kind: 'route',
        outcome: 'operator',
        handler: { kind: 'operator', queue: routing.fallbackQueue },
        rules: [chosen.id, 'agent-inactive'],
        explanation: [
          match,
          {
            id: 'agent-inactive',
            reason: `Agent '${agentId}' is ${state === '' ? 'not registered' : state}: it cannot act on the case, so a human takes it`,
            reads: { [`agents.${agentId}.state`]: state },
          },
        ],
        trigger: 'agent_inactive',
        policy: policy.ref,
      }
    }
  }
  return {
    kind: 'route',
    outcome: target.kind,
    handler: target,
    rules: [chosen.id],
    explanation: [match],
    trigger: chosen.trigger,
    policy: policy.ref,
  }
}

/** Whoever holds the case now, from its facts; the fallback queue for a case no one holds (or facts that lack it). */
function currentHandler(c: Facts['case'], fallbackQueue: string): Handler {
  const queue = c.queue ?? ''
  const agent = c.agent ?? ''
  if (c.handler === 'agent' && agent !== '') return { kind: 'agent', agentId: agent }
  if (c.handler === 'hybrid' && agent !== '' && queue !== '') return { kind: 'hybrid', queue, agentId: agent }
  if (c.handler === 'operator' && queue !== '') return { kind: 'operator', queue }
  return { kind: 'operator', queue: fallbackQueue }
}

/**
 * Decide whether an AI agent (or another actor) may call `facts.tool` with `facts.params`. Overrides first, then
 * rules for that tool (or `*`), in order; the first match wins; no match denies.
 *
 * A condition that fails to evaluate does not match an allow or approve rule, and matches an override or a
 * deny/escalate rule: it fails closed and never silently allows.
 */
export function decideAction(policy: CompiledPolicy, given: Facts): ActionResult {
  const facts = completeFacts(policy, given)
  const rules = policy.tools.byTool.get(facts.tool) ?? policy.tools.anyTool
  let chosen: CompiledToolRule | null = null
  let failure: string | null = null
  for (const rule of rules) {
    const m = matches(rule.condition, rule.failClosed, facts)
    if (m === false) continue
    chosen = rule
    if (m !== true) failure = m
    break
  }
  if (chosen === null) {
    return {
      kind: 'action',
      outcome: 'deny',
      rules: ['default'],
      explanation: [
        {
          id: 'default',
          reason: `No tool rule matched '${facts.tool}'; a tool without a matching rule is denied`,
          reads: { tool: facts.tool },
        },
      ],
      approverRole: '',
      queue: '',
      policy: policy.ref,
    }
  }
  return {
    kind: 'action',
    outcome: chosen.outcome,
    rules: [chosen.id],
    explanation: [ruleMatch(chosen.id, chosen.reason, chosen.condition, failure, facts)],
    approverRole: chosen.approverRole,
    queue: chosen.queue,
    policy: policy.ref,
  }
}

/**
 * The outcomes a call of `facts.tool` could get on these facts, whatever its parameters (`facts.params` is not
 * read): the tool's rules are walked in decision order; a rule whose condition reads `params` may or may not match,
 * so its outcome is possible and the walk goes on; any other rule matches or not here and now, and the first that
 * matches ends the walk. When none certainly matched, the default `deny` is possible too. Pure. The MCP gateway
 * lists a tool only when `allow` or `approve` is among them.
 */
export function possibleActionOutcomes(policy: CompiledPolicy, given: Facts): ReadonlySet<ActionResult['outcome']> {
  const facts = completeFacts(policy, given)
  const rules = policy.tools.byTool.get(facts.tool) ?? policy.tools.anyTool
  const out = new Set<ActionResult['outcome']>()
  for (const rule of rules) {
    if (rule.condition?.readSegments.some((path) => path[0] === 'params') === true) {
      out.add(rule.outcome)
      continue
    }
    if (matches(rule.condition, rule.failClosed, facts) === false) continue
    out.add(rule.outcome)
    return out
  }
  out.add('deny')
  return out
}

interface Completion {
  readonly topics: readonly string[]
  readonly intentClasses: readonly string[]
  readonly custom: readonly (readonly [string, string | number | boolean])[]
  /** Every agent the workspace knows or a route names. */
  readonly agents: readonly string[]
  /** What facts without `agents` (recorded before agent states were facts) read: every agent active. */
  readonly legacyAgents: Readonly<Record<string, AgentFacts>>
}

const completions = new WeakMap<CompiledPolicy, Completion>()

/**
 * The facts with every risk category, declared topic and declared caller signal present: absent ones read as
 * false, false and the signal's default; and every known agent: one missing from `agents` reads as state `''` (not
 * active), while facts with no `agents` at all (recorded before agent states were facts) read every agent as active,
 * as their decisions did. Returns `facts` itself when nothing is missing (the usual case).
 */
export function completeFacts(policy: CompiledPolicy, given: Facts): Facts {
  let c = completions.get(policy)
  if (c === undefined) {
    const agents = [...new Set([...policy.known.agents, ...policy.routing.agents])]
    c = {
      topics: Object.keys(policy.topics),
      intentClasses: policy.known.intentClasses ?? [],
      custom: policy.callerSignals.map((s) => [s.name, s.default] as const),
      agents,
      legacyAgents: Object.freeze(Object.fromEntries(agents.map((a) => [a, Object.freeze({ state: 'active' })]))),
    }
    completions.set(policy, c)
  }
  const facts = completeAgents(c, completeActor(completeCase(given)))
  const s = facts.signals as Partial<Facts['signals']> | undefined
  if (s === undefined || s === null || typeof s !== 'object') return facts
  const risk = fill(s.risk, RISK_NAMES, false)
  const topics = fill(s.topics, c.topics, false)
  // facts recorded before intent classes were signals read every class as 0, as policy tests do
  const intentClass = fill(s.intent_class, c.intentClasses, 0)
  let custom = s.custom
  for (const [name, value] of c.custom) {
    if (custom === undefined || custom === null || custom[name] === undefined) custom = { ...custom, [name]: value }
  }
  if (risk === s.risk && topics === s.topics && intentClass === s.intent_class && custom === s.custom) return facts
  return {
    ...facts,
    signals: {
      ...(s as Facts['signals']),
      risk: risk as Facts['signals']['risk'],
      topics,
      intent_class: intentClass,
      custom: custom ?? {},
    },
  }
}

const RISK_NAMES: readonly string[] = RISK_CATEGORIES

function completeAgents(c: Completion, facts: Facts): Facts {
  const given = facts.agents
  if (given === undefined || given === null) return { ...facts, agents: c.legacyAgents }
  let out = given
  for (const a of c.agents) if (out[a] === undefined) out = { ...out, [a]: { state: '' } }
  return out === given ? facts : { ...facts, agents: out }
}

/**
 * Case facts added after the first policies (escalation triggers, ownership) read as 0 / false / '' when a caller
 * leaves them out, as in the facts of decisions recorded before they existed.
 */
function completeCase(facts: Facts): Facts {
  const c = facts.case as Partial<Facts['case']> | undefined
  if (c === undefined || c === null || typeof c !== 'object') return facts
  if (
    c.ai_turns !== undefined &&
    c.risk_rose !== undefined &&
    c.sla_breached !== undefined &&
    c.human_owned !== undefined &&
    c.queue !== undefined &&
    c.agent !== undefined
  ) {
    return facts
  }
  return {
    ...facts,
    case: {
      ...(c as Facts['case']),
      ai_turns: c.ai_turns ?? 0,
      risk_rose: c.risk_rose ?? false,
      sla_breached: c.sla_breached ?? false,
      human_owned: c.human_owned ?? false,
      queue: c.queue ?? '',
      agent: c.agent ?? '',
    },
  }
}

/** What `actor.grant` reads for an actor that is not a delegate. */
export const NO_GRANT: Readonly<Required<Facts['actor']>['grant']> = Object.freeze({
  id: '',
  scopes: Object.freeze([]) as readonly string[],
  depth: 0,
  expires_in_s: 0,
  may_subdelegate: false,
  granted_by: '',
})

/** Delegation facts read as empty for an actor that is not a delegate (and in facts recorded before they existed). */
function completeActor(facts: Facts): Facts {
  const a = facts.actor as Partial<Facts['actor']> | undefined
  if (a === undefined || a === null || typeof a !== 'object') return facts
  if (a.scopes !== undefined && a.chain !== undefined && a.grant !== undefined) return facts
  return {
    ...facts,
    actor: { ...(a as Facts['actor']), scopes: a.scopes ?? [], chain: a.chain ?? [], grant: a.grant ?? NO_GRANT },
  }
}

function fill<T>(
  o: Readonly<Record<string, T>> | undefined,
  names: readonly string[],
  value: T,
): Readonly<Record<string, T>> {
  let out = o
  for (const n of names) {
    if (out === undefined || out === null || out[n] === undefined) out = { ...out, [n]: value }
  }
  return out ?? {}
}

/** true, false, or (when failing closed) the evaluation error that made it match. */
function matches(c: CompiledCondition | null, failClosed: boolean, facts: Facts): boolean | string {
  if (c === null) return true
  let v: unknown
  try {
    v = c.program(facts)
  } catch (e) {
    return failClosed ? errorSummary(e) : false
  }
  if (v === true) return true
  if (v === false) return false
  return failClosed ? `expected a bool, found ${typeof v}` : false
}

function ruleMatch(
  id: string,
  reason: string,
  c: CompiledCondition | null,
  failure: string | null,
  facts: Facts,
): RuleMatch {
  const reads: Record<string, unknown> = {}
  if (c !== null) for (let i = 0; i < c.reads.length; i++) reads[c.reads[i]!] = readPath(facts, c.readSegments[i]!)
  return {
    id,
    reason:
      failure === null
        ? reason || (id === 'default' ? 'No rule matched' : '')
        : `${reason} (condition failed to evaluate: ${failure}; failing closed)`,
    reads,
  }
}

function readPath(facts: Facts, path: readonly string[]): unknown {
  let v: unknown = facts
  for (const k of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, k)) return null
    v = (v as Record<string, unknown>)[k]
  }
  return typeof v === 'bigint' ? Number(v) : v === undefined ? null : v
}

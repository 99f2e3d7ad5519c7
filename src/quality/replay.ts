import type { Handler } from '../cases/case.js'
import type { DecisionRecord } from '../cases/records.js'
import type { RiskClass } from '../intents/routing-eval.js'
import type { CompiledPolicy } from '../policy/compile.js'
import { decideAction, decideRoute } from '../policy/evaluate.js'
import type { Facts } from '../policy/types.js'
import { agentHandoffRoute } from '../queues/handoff-request.js'
import { asHybridProposal, HYBRID_PROPOSAL_RULE } from '../tools/hybrid.js'
import { rate } from './stats.js'

/** What a decision decided, in the terms replay compares. */
export interface Verdict {
  readonly outcome: string
  readonly rules: readonly string[]
  readonly trigger?: string
  readonly handler?: Handler
  readonly approverRole?: string
  readonly queue?: string
}

export type ReplayResult =
  | {
      readonly status: 'replayed'
      readonly decisionId: string
      readonly caseId: string
      readonly kind: 'route' | 'action'
      readonly recorded: Verdict
      readonly replayed: Verdict
      readonly same: boolean
      /** What differs, when not the same: `outcome`, `handler`, `rules`, `trigger`, `approver_role`, `queue`. */
      readonly differences: readonly string[]
    }
  | { readonly status: 'skipped'; readonly decisionId: string; readonly reason: SkipReason }

/** Decisions replay does not re-decide: an operator's override is a person's choice, not the policy's. */
export type SkipReason = 'override' | 'no_facts' | 'unknown_policy'

const SAME_HANDLER = (a: Handler | undefined, b: Handler | undefined): boolean => {
  if (a === undefined || b === undefined) return a === b
  if (a.kind !== b.kind) return false
  if (a.kind === 'agent' && b.kind === 'agent') return a.agentId === b.agentId
  if (a.kind === 'operator' && b.kind === 'operator') return a.queue === b.queue
  if (a.kind === 'hybrid' && b.kind === 'hybrid') return a.queue === b.queue && a.agentId === b.agentId
  return false
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '')

function recordedVerdict(d: DecisionRecord): Verdict {
  const data = d.data
  const rules = Array.isArray(data.rules) ? (data.rules as string[]) : []
  if (d.kind === 'action') {
    return {
      outcome: d.outcome,
      rules,
      approverRole: str(data.approverRole),
      queue: str(data.queue),
    }
  }
  return { outcome: d.outcome, rules, trigger: str(data.trigger), handler: data.handler as Handler }
}

/** The policy version (sha256) a stored decision names; '' when it names none. */
export function policyHashOf(d: DecisionRecord): string {
  return str((d.data.policy as { hash?: unknown } | undefined)?.hash)
}

/**
 * Re-decides one stored decision from its stored facts with `policy` (the version it names, for a replay; a
 * candidate, for a preview) and compares the two. Pure (invariant 2: a decision is a function of policy and facts).
 * A tool decision in a hybrid case is proposed for approval as the live path does (`asHybridProposal`), and an AI
 * agent's request for a human goes where `agentHandoffRoute` sends it. The trigger of a hand-back decision is the
 * operator's (`handback`), not the policy's, and is not compared.
 */
export function replayDecision(policy: CompiledPolicy, d: DecisionRecord): ReplayResult {
  if (d.kind === 'override') return { status: 'skipped', decisionId: d.id, reason: 'override' }
  const facts = d.data.facts as Facts | undefined
  if (facts === undefined || facts === null || typeof facts !== 'object') {
    return { status: 'skipped', decisionId: d.id, reason: 'no_facts' }
  }
  const recorded = recordedVerdict(d)
  const differences: string[] = []
  let replayed: Verdict
  if (d.kind === 'action') {
    let r = decideAction(policy, facts)
    // the drafting AI agent of a hybrid case only proposes (a customer's delegate is not a drafter)
    if (facts.case?.handler === 'hybrid' && facts.actor?.kind === 'agent') r = asHybridProposal(r, recorded.queue ?? '')
    replayed = { outcome: r.outcome, rules: r.rules, approverRole: r.approverRole, queue: r.queue }
    if (r.outcome !== recorded.outcome) differences.push('outcome')
    if (!sameList(r.rules, recorded.rules)) differences.push('rules')
    if (r.approverRole !== recorded.approverRole) differences.push('approver_role')
    // a hybrid proposal's queue is the case's, which the facts do not hold (recorded.queue stands in above)
    if (!r.rules.includes(HYBRID_PROPOSAL_RULE) && r.queue !== recorded.queue) differences.push('queue')
  } else {
    let r = decideRoute(policy, facts)
    // An AI agent's request for a human (requestHandoff): the policy's answer, or a human queue anyway.
    const asked = (d.data.actor as { kind?: unknown } | undefined)?.kind === 'agent'
    if (asked) {
      const current = facts.case?.handler === 'hybrid' ? 'hybrid' : 'agent'
      const h = recorded.handler
      const fallback =
        current === 'hybrid' && h !== undefined && h.kind !== 'agent' ? h.queue : policy.routing.fallbackQueue
      r = agentHandoffRoute(r, current, fallback)
    }
    const trigger = asked ? r.trigger || 'manual' : r.trigger
    replayed = { outcome: r.outcome, rules: r.rules, trigger, handler: r.handler }
    if (r.outcome !== recorded.outcome) differences.push('outcome')
    if (!SAME_HANDLER(r.handler, recorded.handler)) differences.push('handler')
    if (!sameList(r.rules, recorded.rules)) differences.push('rules')
    if (recorded.trigger !== 'handback' && trigger !== recorded.trigger) differences.push('trigger')
  }
  return {
    status: 'replayed',
    decisionId: d.id,
    caseId: d.caseId,
    kind: d.kind,
    recorded,
    replayed,
    same: differences.length === 0,
    differences,
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

export interface ReplaySummary {
  readonly replayed: number
  readonly same: number
  readonly differing: number
  /** same / replayed: 1 when Baton is right (invariant 2). */
  readonly rate: number | null
  readonly skipped: Readonly<Record<SkipReason, number>>
  /** Decisions that did not replay to what was recorded (at most `limit`). */
  readonly examples: readonly {
    readonly decisionId: string
    readonly caseId: string
    readonly differences: readonly string[]
    readonly recorded: Verdict
    readonly replayed: Verdict
  }[]
  /** How many decisions the replayed ones were sampled from (= replayed + skipped when not sampled). */
  readonly of: number
}

/** Adds replay results up. */
export class ReplayTally {
  #replayed = 0
  #same = 0
  readonly #skipped: Record<SkipReason, number> = { override: 0, no_facts: 0, unknown_policy: 0 }
  readonly #examples: ReplaySummary['examples'][number][] = []
  readonly #limit: number

  constructor(limit = 20) {
    this.#limit = limit
  }

  add(r: ReplayResult): void {
    if (r.status === 'skipped') {
      this.#skipped[r.reason]++
      return
    }
    this.#replayed++
    if (r.same) {
      this.#same++
      return
    }
    if (this.#examples.length < this.#limit) {
      this.#examples.push({
        decisionId: r.decisionId,
        caseId: r.caseId,
        differences: r.differences,
        recorded: r.recorded,
        replayed: r.replayed,
      })
    }
  }

  summary(of?: number): ReplaySummary {
    const skipped = this.#skipped.override + this.#skipped.no_facts + this.#skipped.unknown_policy
    return {
      replayed: this.#replayed,
      same: this.#same,
      differing: this.#replayed - this.#same,
      rate: rate(this.#same, this.#replayed),
      skipped: { ...this.#skipped },
      examples: this.#examples,
      of: of ?? this.#replayed + skipped,
    }
  }
}

/** How a candidate policy changes one decision's routing. */
export type RouteChange = 'ai_to_human' | 'human_to_ai' | 'queue' | 'agent' | 'mode'

/** `mode`: operator ↔ hybrid in the same queue. */
export function routeChange(from: Handler, to: Handler): RouteChange | null {
  const human = (h: Handler) => h.kind !== 'agent'
  if (!human(from) && human(to)) return 'ai_to_human'
  if (human(from) && !human(to)) return 'human_to_ai'
  if (from.kind === 'agent' && to.kind === 'agent') return from.agentId === to.agentId ? null : 'agent'
  const q = (h: Handler) => (h.kind === 'agent' ? '' : h.queue)
  if (q(from) !== q(to)) return 'queue'
  if (from.kind !== to.kind) return 'mode'
  if (from.kind === 'hybrid' && to.kind === 'hybrid' && from.agentId !== to.agentId) return 'agent'
  return null
}

export interface RuleChanges {
  /** Decisions this rule now decides whose outcome (routing: handler) changes. */
  changed: number
  aiToHuman: number
  humanToAi: number
  queue: number
  agent: number
  mode: number
  /** Tool decisions: `allow→approve` and so on. */
  readonly outcomes: Record<string, number>
  /** Rules that decided these before, with counts. */
  readonly from: Record<string, number>
  readonly sampleCaseIds: string[]
}

export interface LabelledRouting {
  readonly n: number
  /** Of labelled decisions whose intent maps to `human`, the share left with an AI agent (before / after). */
  readonly unsafeAutomationRate: { readonly before: number | null; readonly after: number | null }
  /** Of labelled decisions whose intent maps to `ai`, the share left with an AI agent (before / after). */
  readonly automationRate: { readonly before: number | null; readonly after: number | null }
}

export interface PreviewSummary {
  readonly candidate: { readonly name: string; readonly version: number; readonly hash: string }
  /** Decisions re-decided with the candidate. */
  readonly decisions: number
  readonly changed: number
  readonly unchanged: number
  readonly skipped: Readonly<Record<SkipReason, number>>
  readonly totals: {
    readonly aiToHuman: number
    readonly humanToAi: number
    readonly queue: number
    readonly agent: number
    readonly mode: number
    readonly toolOutcome: number
  }
  /** Per rule of the candidate that decides a changed decision. */
  readonly byRule: Readonly<Record<string, RuleChanges>>
  /** Present when some decisions carry evaluation labels (the intent a person gave the case's message). */
  readonly labelled: LabelledRouting | null
}

/**
 * Adds up what a candidate policy would change on past decisions (`replayDecision(candidate, d)` for each). With
 * labels (decision id → risk class of its message's labelled intent), also the change in unsafe automation and
 * automation on the labelled ones.
 */
export class PreviewTally {
  readonly #candidate: PreviewSummary['candidate']
  readonly #samples: number
  #decisions = 0
  #changed = 0
  readonly #skipped: Record<SkipReason, number> = { override: 0, no_facts: 0, unknown_policy: 0 }
  readonly #totals = { aiToHuman: 0, humanToAi: 0, queue: 0, agent: 0, mode: 0, toolOutcome: 0 }
  readonly #byRule = new Map<string, RuleChanges>()
  readonly #labelled = { n: 0, human: [0, 0, 0], ai: [0, 0, 0] } // [n, agent before, agent after]

  constructor(candidate: PreviewSummary['candidate'], samples = 5) {
    this.#candidate = candidate
    this.#samples = samples
  }

  add(r: ReplayResult, label?: RiskClass): void {
    if (r.status === 'skipped') {
      this.#skipped[r.reason]++
      return
    }
    this.#decisions++
    if (label !== undefined && r.kind === 'route' && r.recorded.handler && r.replayed.handler) {
      this.#labelled.n++
      const row = label === 'human' ? this.#labelled.human : label === 'ai' ? this.#labelled.ai : undefined
      if (row !== undefined) {
        row[0]! += 1
        if (r.recorded.handler.kind === 'agent') row[1]! += 1
        if (r.replayed.handler.kind === 'agent') row[2]! += 1
      }
    }
    let change: RouteChange | null = null
    let outcomeChange: string | null = null
    if (r.kind === 'route' && r.recorded.handler !== undefined && r.replayed.handler !== undefined) {
      change = routeChange(r.recorded.handler, r.replayed.handler)
    } else if (r.kind === 'action' && r.recorded.outcome !== r.replayed.outcome) {
      outcomeChange = `${r.recorded.outcome}→${r.replayed.outcome}`
    }
    if (change === null && outcomeChange === null) return
    this.#changed++
    const rule = r.replayed.rules.filter((x) => x !== HYBRID_PROPOSAL_RULE).join('+') || 'default'
    let c = this.#byRule.get(rule)
    if (c === undefined) {
      c = {
        changed: 0,
        aiToHuman: 0,
        humanToAi: 0,
        queue: 0,
        agent: 0,
        mode: 0,
        outcomes: {},
        from: {},
        sampleCaseIds: [],
      }
      this.#byRule.set(rule, c)
    }
    c.changed++
    if (change !== null) {
      const key = (
        { ai_to_human: 'aiToHuman', human_to_ai: 'humanToAi', queue: 'queue', agent: 'agent', mode: 'mode' } as const
      )[change]
      c[key]++
      this.#totals[key]++
    } else if (outcomeChange !== null) {
      c.outcomes[outcomeChange] = (c.outcomes[outcomeChange] ?? 0) + 1
      this.#totals.toolOutcome++
    }
    const before = r.recorded.rules.join('+') || 'default'
    c.from[before] = (c.from[before] ?? 0) + 1
    if (c.sampleCaseIds.length < this.#samples && !c.sampleCaseIds.includes(r.caseId)) c.sampleCaseIds.push(r.caseId)
  }

  summary(): PreviewSummary {
    const l = this.#labelled
    return {
      candidate: this.#candidate,
      decisions: this.#decisions,
      changed: this.#changed,
      unchanged: this.#decisions - this.#changed,
      skipped: { ...this.#skipped },
      totals: { ...this.#totals },
      byRule: Object.fromEntries([...this.#byRule.entries()].sort(([, a], [, b]) => b.changed - a.changed)),
      labelled:
        l.n === 0
          ? null
          : {
              n: l.n,
              unsafeAutomationRate: { before: rate(l.human[1]!, l.human[0]!), after: rate(l.human[2]!, l.human[0]!) },
              automationRate: { before: rate(l.ai[1]!, l.ai[0]!), after: rate(l.ai[2]!, l.ai[0]!) },
            },
    }
  }
}

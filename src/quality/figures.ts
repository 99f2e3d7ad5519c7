import { compareProfiles, DUPLICATE_THRESHOLD, type Profile, profile } from '../signals/duplicates.js'
import type { CaseState, Escalation } from './fold.js'
import { type FirstMessage, type NearDuplicateFigure, nearDuplicateRouting } from './near-duplicates.js'
import type { ReplaySummary } from './replay.js'
import { BottomK, fnv1a, rate, type Spread, spreadSeconds } from './stats.js'

/** Why a case reached a human. Each escalation has exactly one (see `causeOf`). */
export const ESCALATION_CAUSES = [
  'rule',
  'trigger',
  'override',
  'agent_asked',
  'operator_took',
  'ping_pong_cap',
] as const
export type EscalationCause = (typeof ESCALATION_CAUSES)[number]

export interface QualityOptions {
  /** Cases opened in [since, until), ms. */
  readonly since: number
  readonly until: number
  /** When the figures are computed (ms): an escalation still waiting past its SLA at `now` is late. */
  readonly now: number
  /** Only cases that were in this queue at some point. */
  readonly queue?: string | undefined
  /** Only cases this AI agent handled (alone or drafting) at some point. */
  readonly agent?: string | undefined
  /** The SLA of each queue, seconds (`queues.yaml`). */
  readonly slaSeconds: (queue: string) => number
  /** The ping-pong cap of the policy in force (`routing.max_handoffs`). */
  readonly maxHandoffs: number
  /** Whether `rule` is a routing override of the policy version `policyHash` (`routing.overrides`). */
  readonly isOverride: (policyHash: string, rule: string) => boolean
  /** A new case of the same customer this long after a close can be a reopen. Default 7 days. */
  readonly reopenWithinMs?: number
  /** First messages compared for near-duplicates (a bottom-k sample by case id). Default 1,000. */
  readonly nearDuplicateSample?: number
  /** Decisions replayed for replay consistency (a bottom-k sample by decision id). Default 1,000. */
  readonly replaySample?: number
  /** Cases listed by id in lists (unmanaged escalations, examples). Default 100. */
  readonly listLimit?: number
}

export interface UnmanagedEscalation {
  readonly caseId: string
  readonly at: string
  readonly queue: string
  readonly cause: EscalationCause
  readonly rules: readonly string[]
  readonly trigger: string
  /** `not_picked_up_within_sla` and/or `no_reason`. */
  readonly reasons: readonly string[]
  /** Seconds until an operator took it, or until `now` when nobody has; null when it left unpicked in time. */
  readonly waitedS: number | null
}

export interface GateFigure {
  readonly requested: number
  readonly byState: Readonly<Record<string, number>>
  readonly pending: number
  /** Request to an operator's (or the customer's) decision; expiries and supersessions are not decisions. */
  readonly timeToDecideS: Spread
}

export interface PrivilegeUse {
  readonly agentId: string
  readonly granted: readonly string[]
  readonly used: Readonly<Record<string, number>>
  readonly unused: readonly string[]
}

export interface QualityReport {
  readonly window: { readonly since: string; readonly until: string; readonly now: string }
  readonly filters: { readonly queue: string | null; readonly agent: string | null }
  readonly cases: { readonly opened: number; readonly closed: number; readonly open: number }
  readonly automation: { readonly closed: number; readonly automated: number; readonly rate: number | null }
  readonly escalations: {
    readonly cases: number
    readonly rate: number | null
    readonly total: number
    readonly atIntake: number
    readonly fromAgent: number
    readonly byCause: Readonly<Record<EscalationCause, number>>
    readonly rateByCause: Readonly<Record<EscalationCause, number | null>>
    readonly byTrigger: Readonly<Record<string, number>>
    readonly byRule: Readonly<Record<string, number>>
  }
  readonly unmanaged: {
    readonly count: number
    readonly rate: number | null
    readonly notPickedUpWithinSla: number
    readonly noReason: number
    readonly items: readonly UnmanagedEscalation[]
    readonly truncated: boolean
  }
  readonly pingPong: {
    readonly cap: number
    readonly distribution: { readonly labels: readonly string[]; readonly counts: readonly number[] }
    readonly atOrOverCap: number
    readonly capHit: number
    readonly caseIds: readonly string[]
    /**
     * Bounces of a case a person owned (took over, claimed, was assigned) back to an AI agent, other than the owner
     * handing it back: what `case.human_owned` rules are there to prevent.
     */
    readonly fromHumanOwned: number
    /** The cases of those bounces (up to the item limit). */
    readonly fromHumanOwnedCaseIds: readonly string[]
  }
  readonly consistency: {
    readonly replay: ReplaySummary | null
    readonly nearDuplicates: NearDuplicateFigure
  }
  readonly ownership: {
    readonly judged: number
    readonly ownedWithinSla: number
    readonly rate: number | null
    readonly late: number
    readonly pending: number
    readonly withdrawn: number
    readonly timeToHumanS: Spread
    readonly reopen: {
      readonly closedEscalated: number
      readonly reopened: number
      readonly rate: number | null
      readonly examples: readonly { readonly caseId: string; readonly reopenedAs: string; readonly afterS: number }[]
    }
  }
  readonly approvals: GateFigure
  readonly confirmations: GateFigure
  readonly privileges: readonly PrivilegeUse[]
}

/**
 * The cause of one escalation, first match wins: the ping-pong cap (trigger `max_handoffs`), the AI agent asking
 * for a human (`requestHandoff`, or its own tool call escalating: `action_escalated`), an operator taking the case
 * (`manual`), a routing override of the deciding policy version, any other trigger, else the rule that routed it.
 */
export function causeOf(
  e: Pick<Escalation, 'rules' | 'trigger' | 'policyHash'> & { readonly byAgent?: boolean },
  options: Pick<QualityOptions, 'isOverride'>,
): EscalationCause {
  if (e.trigger === 'max_handoffs' || e.rules.includes('max-handoffs')) return 'ping_pong_cap'
  if (e.byAgent === true || e.trigger === 'action_escalated') return 'agent_asked'
  if (e.trigger === 'manual') return 'operator_took'
  const rule = e.rules[0]
  if (rule !== undefined && options.isOverride(e.policyHash, rule)) return 'override'
  if (e.trigger !== '') return 'trigger'
  return 'rule'
}

/** An escalation carries a reason when a rule other than the default, or a trigger, sent it. */
export function hasReason(e: Pick<Escalation, 'rules' | 'trigger'>): boolean {
  return e.trigger !== '' || e.rules.some((r) => r !== 'default')
}

export type Judgement = 'within_sla' | 'late' | 'pending' | 'withdrawn'

/**
 * An escalation against its queue's SLA: taken by an operator within it, late (taken after it, or still waiting
 * past it at `now`, or left unpicked after it), pending (still waiting, SLA not over) or withdrawn (left the
 * humans unpicked within the SLA: back to an AI agent, or closed).
 */
export function judge(e: Escalation, slaMs: number, now: number): Judgement {
  const due = e.at + slaMs
  if (e.pickedAt !== undefined) return e.pickedAt <= due ? 'within_sla' : 'late'
  if (e.leftAt !== undefined) return e.leftAt <= due ? 'withdrawn' : 'late'
  return now > due ? 'late' : 'pending'
}

const DAY_MS = 86_400_000

interface CustomerCase {
  readonly caseId: string
  readonly createdAt: number
  readonly closedAt: number | undefined
  readonly escalated: boolean
  readonly text: string
}

/**
 * Adds cases one at a time and computes every figure over the cases it was given that the options select (opened
 * in the window, matching the filters). Pure: no clock, no I/O; the replay figure is computed by the caller from
 * `replaySampleIds()` and handed to `report`.
 */
export class QualityAccumulator {
  readonly #o: QualityOptions
  #opened = 0
  #closed = 0
  #automated = 0
  #escalatedCases = 0
  #escalations = 0
  #atIntake = 0
  readonly #byCause = Object.fromEntries(ESCALATION_CAUSES.map((c) => [c, 0])) as Record<EscalationCause, number>
  readonly #byTrigger = new Map<string, number>()
  readonly #byRule = new Map<string, number>()
  readonly #unmanaged: UnmanagedEscalation[] = []
  #unmanagedCount = 0
  #late = 0
  #noReason = 0
  #within = 0
  #pending = 0
  #withdrawn = 0
  readonly #toHuman: number[] = []
  readonly #bounces: number[]
  #atOrOverCap = 0
  #capHit = 0
  readonly #capCases: string[] = []
  #fromOwned = 0
  readonly #fromOwnedCases: string[] = []
  readonly #customers = new Map<string, CustomerCase[]>()
  readonly #first: BottomK<FirstMessage>
  readonly #replay: BottomK<string>
  readonly #gates = { approval: newGates(), confirmation: newGates() }

  constructor(options: QualityOptions) {
    this.#o = options
    this.#bounces = new Array(Math.max(1, options.maxHandoffs) + 1).fill(0)
    this.#first = new BottomK(options.nearDuplicateSample ?? 1000)
    this.#replay = new BottomK(options.replaySample ?? 1000)
  }

  /** Whether the options select this case. */
  selects(c: CaseState): boolean {
    const o = this.#o
    if (!(c.createdAt >= o.since && c.createdAt < o.until)) return false
    if (o.queue !== undefined && !c.queues.has(o.queue)) return false
    if (o.agent !== undefined && !c.agents.has(o.agent)) return false
    return true
  }

  add(c: CaseState): void {
    if (!this.selects(c)) return
    const o = this.#o
    const limit = o.listLimit ?? 100
    this.#opened++
    if (c.closedAt !== undefined) {
      this.#closed++
      if (!c.human) this.#automated++
    }
    if (c.escalations.length > 0) this.#escalatedCases++
    for (const e of c.escalations) {
      this.#escalations++
      if (e.atIntake) this.#atIntake++
      const cause = causeOf(e, o)
      this.#byCause[cause]++
      if (e.trigger !== '') bump(this.#byTrigger, e.trigger)
      for (const r of e.rules) bump(this.#byRule, r)
      const slaMs = o.slaSeconds(e.queue) * 1000
      const j = judge(e, slaMs, o.now)
      if (j === 'within_sla') this.#within++
      else if (j === 'late') this.#late++
      else if (j === 'pending') this.#pending++
      else this.#withdrawn++
      if (e.pickedAt !== undefined) this.#toHuman.push(e.pickedAt - e.at)
      const reasoned = hasReason(e)
      if (!reasoned) this.#noReason++
      if (j === 'late' || !reasoned) {
        this.#unmanagedCount++
        if (this.#unmanaged.length < limit) {
          const reasons = [...(j === 'late' ? ['not_picked_up_within_sla'] : []), ...(reasoned ? [] : ['no_reason'])]
          const end = e.pickedAt ?? (e.leftAt === undefined ? o.now : undefined)
          this.#unmanaged.push({
            caseId: c.id,
            at: new Date(e.at).toISOString(),
            queue: e.queue,
            cause,
            rules: e.rules,
            trigger: e.trigger,
            reasons,
            waitedS: end === undefined ? null : Math.round((end - e.at) / 1000),
          })
        }
      }
    }
    this.#bounces[Math.min(c.bounces, this.#bounces.length - 1)]! += 1
    if (c.bounces >= o.maxHandoffs || c.capHit) {
      if (c.bounces >= o.maxHandoffs) this.#atOrOverCap++
      if (c.capHit) this.#capHit++
      if (this.#capCases.length < limit) this.#capCases.push(c.id)
    }
    if (c.bouncesFromHumanOwned > 0) {
      this.#fromOwned += c.bouncesFromHumanOwned
      if (this.#fromOwnedCases.length < limit) this.#fromOwnedCases.push(c.id)
    }
    let list = this.#customers.get(c.customerId)
    if (list === undefined) {
      list = []
      this.#customers.set(c.customerId, list)
    }
    list.push({
      caseId: c.id,
      createdAt: c.createdAt,
      closedAt: c.closedAt,
      escalated: c.escalations.length > 0,
      text: c.firstText ?? '',
    })
    if (c.first !== undefined && c.firstText !== undefined) {
      this.#first.add(fnv1a(c.id), {
        caseId: c.id,
        decisionId: c.first.decisionId,
        text: c.firstText,
        handler: c.first.handler,
        policyHash: c.first.policyHash,
      })
    }
    for (const d of c.decisions) this.#replay.add(fnv1a(d), d)
    for (const g of c.gates.values()) {
      const f = this.#gates[g.kind]
      f.requested++
      bump(f.byState, g.state)
      if (g.settledAt !== undefined && DECIDED.has(g.state)) f.toDecide.push(g.settledAt - g.requestedAt)
    }
  }

  /** The decisions to replay for replay consistency: a bottom-k sample (by hash of id) of the selected cases'. */
  replaySampleIds(): { readonly ids: readonly string[]; readonly of: number } {
    return { ids: this.#replay.items(), of: this.#replay.seen }
  }

  report(extra: {
    readonly replay: ReplaySummary | null
    readonly privileges: readonly PrivilegeUse[]
  }): QualityReport {
    const o = this.#o
    const iso = (ms: number) => new Date(ms).toISOString()
    const cap = this.#bounces.length - 1
    const judged = this.#within + this.#late
    return {
      window: { since: iso(o.since), until: iso(o.until), now: iso(o.now) },
      filters: { queue: o.queue ?? null, agent: o.agent ?? null },
      cases: { opened: this.#opened, closed: this.#closed, open: this.#opened - this.#closed },
      automation: { closed: this.#closed, automated: this.#automated, rate: rate(this.#automated, this.#closed) },
      escalations: {
        cases: this.#escalatedCases,
        rate: rate(this.#escalatedCases, this.#opened),
        total: this.#escalations,
        atIntake: this.#atIntake,
        fromAgent: this.#escalations - this.#atIntake,
        byCause: { ...this.#byCause },
        rateByCause: Object.fromEntries(
          ESCALATION_CAUSES.map((c) => [c, rate(this.#byCause[c], this.#opened)]),
        ) as Record<EscalationCause, number | null>,
        byTrigger: sorted(this.#byTrigger),
        byRule: sorted(this.#byRule),
      },
      unmanaged: {
        count: this.#unmanagedCount,
        rate: rate(this.#unmanagedCount, this.#escalations),
        notPickedUpWithinSla: this.#late,
        noReason: this.#noReason,
        items: this.#unmanaged,
        truncated: this.#unmanaged.length < this.#unmanagedCount,
      },
      pingPong: {
        cap: o.maxHandoffs,
        distribution: {
          labels: this.#bounces.map((_, i) => (i === cap ? `${i}+` : String(i))),
          counts: [...this.#bounces],
        },
        atOrOverCap: this.#atOrOverCap,
        capHit: this.#capHit,
        caseIds: this.#capCases,
        fromHumanOwned: this.#fromOwned,
        fromHumanOwnedCaseIds: this.#fromOwnedCases,
      },
      consistency: {
        replay: extra.replay,
        nearDuplicates: nearDuplicateRouting(this.#first.items(), this.#first.seen),
      },
      ownership: {
        judged,
        ownedWithinSla: this.#within,
        rate: rate(this.#within, judged),
        late: this.#late,
        pending: this.#pending,
        withdrawn: this.#withdrawn,
        timeToHumanS: spreadSeconds(this.#toHuman),
        reopen: this.#reopens(),
      },
      approvals: gateFigure(this.#gates.approval),
      confirmations: gateFigure(this.#gates.confirmation),
      privileges: extra.privileges,
    }
  }

  /**
   * Reopens: an escalated case that was closed, followed within `reopenWithinMs` of the close by a new case of the
   * same customer about the same thing (the duplicate detector's similarity of the first messages at or above
   * its threshold).
   */
  #reopens(): QualityReport['ownership']['reopen'] {
    const within = this.#o.reopenWithinMs ?? 7 * DAY_MS
    let closedEscalated = 0
    let reopened = 0
    const examples: { caseId: string; reopenedAs: string; afterS: number }[] = []
    const profiles = new Map<CustomerCase, Profile>()
    const profileOf = (c: CustomerCase): Profile => {
      let p = profiles.get(c)
      if (p === undefined) {
        p = profile(c.text)
        profiles.set(c, p)
      }
      return p
    }
    for (const list of this.#customers.values()) {
      if (!list.some((c) => c.escalated && c.closedAt !== undefined)) continue
      list.sort((a, b) => a.createdAt - b.createdAt || (a.caseId < b.caseId ? -1 : 1))
      for (const c of list) {
        if (!c.escalated || c.closedAt === undefined) continue
        closedEscalated++
        const closedAt = c.closedAt
        // the first cases opened after the close, within the window, compared in order (at most REOPEN_CANDIDATES)
        let i = firstAfter(list, closedAt)
        let next: CustomerCase | undefined
        for (let n = 0; i < list.length && n < REOPEN_CANDIDATES; i++, n++) {
          const x = list[i]!
          if (x.createdAt - closedAt > within) break
          if (compareProfiles(profileOf(c), profileOf(x)) >= DUPLICATE_THRESHOLD) {
            next = x
            break
          }
        }
        if (next === undefined) continue
        reopened++
        if (examples.length < 5) {
          examples.push({
            caseId: c.caseId,
            reopenedAs: next.caseId,
            afterS: Math.round((next.createdAt - closedAt) / 1000),
          })
        }
      }
    }
    return { closedEscalated, reopened, rate: rate(reopened, closedEscalated), examples }
  }
}

/** Later cases of one customer compared with a closed one for a reopen. */
const REOPEN_CANDIDATES = 20

/** Index of the first case created strictly after `t` in a list sorted by creation. */
function firstAfter(list: readonly CustomerCase[], t: number): number {
  let lo = 0
  let hi = list.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (list[mid]!.createdAt <= t) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Settled states that are a decision by a person (not an expiry or a supersession). */
const DECIDED = new Set(['approved', 'denied', 'confirmed', 'declined'])

interface Gates {
  requested: number
  readonly byState: Map<string, number>
  readonly toDecide: number[]
}

function newGates(): Gates {
  return { requested: 0, byState: new Map(), toDecide: [] }
}

function gateFigure(g: Gates): GateFigure {
  return {
    requested: g.requested,
    byState: sorted(g.byState),
    pending: g.byState.get('pending') ?? 0,
    timeToDecideS: spreadSeconds(g.toDecide),
  }
}

function bump(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1)
}

function sorted(m: ReadonlyMap<string, number>): Record<string, number> {
  return Object.fromEntries([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

/** Privilege use from the privilege report's rows: granted tools against those used in the window. */
export function privilegeUse(
  rows: readonly {
    readonly agentId: string
    readonly granted: readonly string[]
    readonly used: Readonly<Record<string, number>>
    readonly unused: readonly string[]
  }[],
  agent?: string,
): PrivilegeUse[] {
  return rows
    .filter((r) => agent === undefined || r.agentId === agent)
    .map((r) => ({ agentId: r.agentId, granted: r.granted, used: r.used, unused: r.unused }))
}

import type { AuditEntryBody } from '../audit/entry.js'
import type { Handler } from '../cases/case.js'
import type { ActivePolicy, Actor } from '../cases/intake.js'
import {
  agentFacts,
  agentOf,
  holderFacts,
  ownedAfter,
  queueFacts,
  queueStatsFor,
  sameHandler,
  withOwnership,
} from '../cases/intake.js'
import type { CaseEvent, CaseRecord, DecisionRecord } from '../cases/records.js'
import { BatonError } from '../errors.js'
import { decideRoute } from '../policy/evaluate.js'
import type { Facts, RouteResult } from '../policy/types.js'
import { redactFreeText, type SecretRedaction } from '../signals/sensitive.js'
import type { Store } from '../store/ports.js'
import type { Assignment, TimerRecord } from '../store/work-store.js'
import type { OperatorSpec, QueueSpec } from '../workspace/workspace.js'
import { agentHandoffRoute } from './handoff-request.js'
import { eligibleOperators } from './priority.js'

/** What the queue use cases need: ports, the policy in force, the workspace's operators and queues, clock and ids. */
export interface WorkDeps {
  readonly store: Store
  readonly policy: () => ActivePolicy
  readonly operators: readonly OperatorSpec[]
  readonly queues: readonly QueueSpec[]
  readonly now: () => Date
  readonly newId: (prefix: string) => string
  /** Key of the keyed hash that stands in for a secret redacted out of a reason (invariant 7). */
  readonly secretHashKey: Uint8Array
}

const MAX_ATTEMPTS = 8

export function findQueue(deps: WorkDeps, id: string): QueueSpec {
  const q = deps.queues.find((x) => x.id === id)
  if (q === undefined) throw new BatonError('QUEUE_NOT_FOUND', `no queue '${id}'`)
  return q
}

export function findOperator(deps: WorkDeps, id: string): OperatorSpec {
  const o = deps.operators.find((x) => x.id === id)
  if (o === undefined) throw new BatonError('OPERATOR_NOT_FOUND', `no operator '${id}' in operators.yaml`)
  return o
}

/** An operator claims a waiting case: exactly one of concurrent claims wins (`CASE_ALREADY_ASSIGNED` for the rest). */
export async function claimCase(deps: WorkDeps, actor: Actor, caseId: string, operatorId: string): Promise<Assignment> {
  const operator = findOperator(deps, operatorId)
  const item = await deps.store.getWorkItem(caseId)
  if (item === undefined) {
    const c = await deps.store.getCase(caseId)
    if (c === undefined) throw new BatonError('CASE_NOT_FOUND', `no case with id '${caseId}'`)
    throw new BatonError('CASE_NOT_QUEUED', `case '${caseId}' is not waiting in any queue`)
  }
  const queue = findQueue(deps, item.queue)
  if (!queue.skills.every((s) => operator.skills.includes(s))) {
    throw new BatonError(
      'FORBIDDEN',
      `operator '${operatorId}' lacks the skills of queue '${queue.id}' (needs ${queue.skills.join(', ')})`,
    )
  }
  return deps.store.claimCase({
    caseId,
    operatorId,
    at: deps.now().toISOString(),
    actor: { kind: actor.kind, id: actor.id },
  })
}

/**
 * Gives the most urgent waiting case of `queueId` to the least-loaded eligible operator with free capacity. An
 * operator asking pulls the next case for themselves (only they are candidates); an admin dispatches to anyone.
 */
export async function assignNext(deps: WorkDeps, actor: Actor, queueId: string): Promise<Assignment | undefined> {
  const queue = findQueue(deps, queueId)
  const pool = actor.kind === 'operator' ? [findOperator(deps, actor.id)] : deps.operators
  for (let attempt = 1; ; attempt++) {
    try {
      return await deps.store.assignNext({
        queue: queueId,
        candidates: (item) => eligibleOperators(pool, queue.skills, item.language).map((o) => o.id),
        at: deps.now().toISOString(),
        actor: { kind: actor.kind, id: actor.id },
      })
    } catch (e) {
      if (e instanceof BatonError && e.code === 'CONFLICT' && attempt < MAX_ATTEMPTS) continue
      throw e
    }
  }
}

export interface HandlerChange {
  readonly caseId: string
  readonly handler: Handler
  readonly trigger: string
  readonly decisionId: string
}

/** An operator takes a case over (from an AI agent, a hybrid draft or a queue), with a reason; audited. */
export async function takeOver(
  deps: WorkDeps,
  actor: Actor,
  caseId: string,
  operatorId: string,
  givenReason: string,
): Promise<HandlerChange> {
  findOperator(deps, operatorId)
  const { reason, secrets } = redactReason(deps, givenReason)
  const policy = deps.policy().policy
  for (let attempt = 1; ; attempt++) {
    const current = await openCaseOrThrow(deps, caseId)
    if (current.handler.kind === 'operator' && current.handler.operatorId === operatorId) {
      throw new BatonError('CONFLICT', `operator '${operatorId}' already holds case '${caseId}'`)
    }
    const at = deps.now().toISOString()
    const queue = current.handler.kind === 'agent' ? policy.routing.fallbackQueue : current.handler.queue
    const handler: Handler = { kind: 'operator', queue, operatorId }
    const crosses = current.handler.kind === 'agent'
    const decisionId = deps.newId('dec')
    const decision: DecisionRecord = {
      id: decisionId,
      caseId,
      kind: 'override',
      outcome: 'operator',
      at,
      data: {
        decisionId,
        kind: 'override',
        outcome: 'operator',
        handler,
        rules: ['manual-takeover'],
        trigger: 'manual',
        reason,
        ...secrets,
        actor: { kind: actor.kind, id: actor.id },
        policy: policy.ref,
      },
    }
    // the operator took the case: it stays with people until they hand it back (routing reads case.human_owned)
    const next: CaseRecord = {
      ...current,
      handler,
      handoffs: current.handoffs + (crosses ? 1 : 0),
      version: current.version + 1,
      updatedAt: at,
      stateSince: at,
      aiTurns: 0,
      humanOwned: true,
    }
    const events: EventDraft[] = [
      {
        type: 'case.handed_off',
        data: {
          from: current.handler,
          to: handler,
          cause: { decisionId, rules: ['manual-takeover'], trigger: 'manual', reason, operatorId, ...secrets },
          countsAsHandoff: crosses,
        },
      },
    ]
    try {
      await commit(deps, current, next, events, [decision], actor, at)
      return { caseId, handler, trigger: 'manual', decisionId }
    } catch (e) {
      if (e instanceof BatonError && e.code === 'CONFLICT' && attempt < MAX_ATTEMPTS) continue
      throw e
    }
  }
}

/**
 * An operator hands a case back to an AI agent, with a reason. Routing is decided again on the case's latest facts
 * (with this operator as the actor); the hand-back happens only when the policy itself routes the case to that
 * agent, else it is refused with `HANDBACK_REFUSED` and the decision that refused it (audited either way).
 */
export async function handBack(
  deps: WorkDeps,
  actor: Actor,
  caseId: string,
  givenAgentId: string,
  givenReason: string,
): Promise<HandlerChange> {
  const { reason, secrets } = redactReason(deps, givenReason)
  // the agent id is only compared with the route and recorded when refused: a secret in it is not written either
  const agentId = redactFreeText(givenAgentId, 'agentId', deps.secretHashKey).text
  for (let attempt = 1; ; attempt++) {
    const current = await openCaseOrThrow(deps, caseId)
    if (current.handler.kind === 'agent') {
      throw new BatonError('HANDBACK_REFUSED', `case '${caseId}' is already with AI agent '${current.handler.agentId}'`)
    }
    const at = deps.now()
    const iso = at.toISOString()
    // handing back is the owner giving the case up: routing decides as if no person owned it
    const { facts, route } = await redecide(deps, current, at, actor, { human_owned: false })
    if (route.handler.kind !== 'agent' || route.handler.agentId !== agentId) {
      await deps.store.appendAudit([
        {
          type: 'case.handback_refused',
          at: iso,
          caseId,
          actor: { kind: actor.kind, id: actor.id },
          data: {
            agentId,
            reason,
            ...secrets,
            outcome: route.outcome,
            rules: route.rules,
            trigger: route.trigger,
            policy: route.policy,
          },
        },
      ])
      throw new BatonError(
        'HANDBACK_REFUSED',
        `the policy routes case '${caseId}' to ${describeHandler(route.handler)} (rules ${route.rules.join(', ')}), not to agent '${agentId}'`,
      )
    }
    try {
      return await commitRoutedHandoff(deps, current, route, facts, actor, iso, {
        trigger: 'handback',
        reason,
        secrets,
        crosses: true,
      })
    } catch (e) {
      if (e instanceof BatonError && e.code === 'CONFLICT' && attempt < MAX_ATTEMPTS) continue
      throw e
    }
  }
}

/**
 * The AI agent holding a case (as `agent`, or drafting a `hybrid` case) asks for a human, with a reason. Routing is
 * decided again on the case's latest facts with `signals.risk.human_request` raised and the agent as the actor, so
 * the case goes where the policy sends a request for a person; where the policy would keep it with an AI agent (or
 * leave a hybrid case as it is), it goes to a human queue anyway (rule `agent-handoff-request`, trigger `manual`):
 * an agent's request for a human is never refused. Audited (`case.decided`, `case.handed_off`); the handler change
 * moves the case's authority epoch, so the agent's credentials on it stop working at once.
 */
export async function requestHandoff(
  deps: WorkDeps,
  actor: Actor,
  caseId: string,
  givenReason: string,
): Promise<HandlerChange> {
  const { reason, secrets } = redactReason(deps, givenReason)
  for (let attempt = 1; ; attempt++) {
    const current = await openCaseOrThrow(deps, caseId)
    const holds = current.handler.kind !== 'operator' && current.handler.agentId === actor.id
    if (actor.kind !== 'agent' || !holds) {
      throw new BatonError('NOT_CASE_HANDLER', `agent '${actor.id}' does not handle case '${caseId}'`)
    }
    const at = deps.now()
    const iso = at.toISOString()
    const { facts, route: decided } = await redecide(deps, current, at, actor, { human_request: true })
    const fallback =
      current.handler.kind === 'hybrid' ? current.handler.queue : deps.policy().policy.routing.fallbackQueue
    const route = agentHandoffRoute(decided, current.handler.kind, fallback)
    try {
      return await commitRoutedHandoff(deps, current, route, facts, actor, iso, {
        trigger: route.trigger || 'manual',
        reason,
        secrets,
        crosses: current.handler.kind === 'agent',
        cause: { requestedBy: actor.id },
      })
    } catch (e) {
      if (e instanceof BatonError && e.code === 'CONFLICT' && attempt < MAX_ATTEMPTS) continue
      throw e
    }
  }
}

const SYSTEM: Actor = { kind: 'admin', id: 'system', roles: ['admin'] }

/**
 * The SLA timer of a queued case: when the case still waits unassigned in the queue it entered at `enqueuedAt`, it
 * is marked breached (priority bump, `case.sla_breached`, audited) and routing is decided again with
 * `case.sla_breached = true`, so the policy may escalate it (trigger `sla_breach`). Idempotent: a second firing
 * finds the case breached and does nothing.
 */
export async function onSlaDue(deps: WorkDeps, timer: TimerRecord): Promise<void> {
  const caseId = String(timer.payload.caseId)
  const enqueuedAt = String(timer.payload.enqueuedAt)
  for (let attempt = 1; ; attempt++) {
    const item = await deps.store.getWorkItem(caseId)
    if (item === undefined || item.enqueuedAt !== enqueuedAt || item.operatorId !== null || item.breached) return
    const current = await deps.store.getCase(caseId)
    if (current === undefined || current.state !== 'open') return
    const at = deps.now()
    const iso = at.toISOString()
    const { facts, route } = await redecide(deps, current, at, SYSTEM, { sla_breached: true })
    const changed = !sameHandler(current.handler, route.handler)
    const crosses = changed && (current.handler.kind === 'agent') !== (route.handler.kind === 'agent')
    const decisionId = deps.newId('dec')
    const decision = routeDecision(decisionId, caseId, iso, route, facts, SYSTEM, { trigger: route.trigger })
    const events: EventDraft[] = [
      {
        type: 'case.sla_breached',
        data: { queue: item.queue, enqueuedAt, slaDue: item.slaDue, trigger: 'sla_breach' },
      },
      { type: 'case.decided', data: decision.data },
    ]
    if (changed) {
      events.push({
        type: 'case.handed_off',
        data: {
          from: current.handler,
          to: route.handler,
          cause: { decisionId, rules: route.rules, trigger: route.trigger || 'sla_breach' },
          countsAsHandoff: crosses,
        },
      })
    }
    const next: CaseRecord = withOwnership(
      {
        ...current,
        handler: changed ? route.handler : current.handler,
        handoffs: current.handoffs + (crosses ? 1 : 0),
        version: current.version + 1,
        updatedAt: iso,
        stateSince: changed ? iso : current.stateSince,
      },
      ownedAfter(current, route.handler),
    )
    try {
      await commit(deps, current, next, events, [decision], SYSTEM, iso)
      return
    } catch (e) {
      if (e instanceof BatonError && e.code === 'CONFLICT' && attempt < MAX_ATTEMPTS) continue
      throw e
    }
  }
}

export interface Rerouted {
  readonly caseId: string
  readonly handler: Handler
  readonly decisionId: string
}

/**
 * Decides again every open case `agentId` holds (as agent or as a hybrid case's drafter) now that it is not active:
 * routing on the case's latest facts, with the agent's new state, so the policy's own rules (or `agent-inactive`,
 * the fallback queue) say who takes it; each change is a `case.decided` and `case.handed_off` in one transaction
 * with its audit leaves. Idempotent: a case the agent no longer holds is left alone, so running it twice (the
 * suspension's caller, then its durable timer `agent_reroute`) re-decides each case once. Does nothing while the
 * agent is active (it was reactivated before the follow-up ran).
 */
export async function rerouteCasesOf(
  deps: WorkDeps,
  actor: Actor,
  agentId: string,
  reason: string,
): Promise<Rerouted[]> {
  const agent = await deps.store.getAgent(agentId)
  if (agent === undefined || agent.state === 'active') return []
  const out: Rerouted[] = []
  for (const caseId of await deps.store.listCasesHeldBy(agentId)) {
    const r = await rerouteCase(deps, actor, caseId, agentId, `agent '${agentId}' ${agent.state}: ${reason}`)
    if (r !== undefined) out.push(r)
  }
  return out
}

async function rerouteCase(
  deps: WorkDeps,
  actor: Actor,
  caseId: string,
  agentId: string,
  reason: string,
): Promise<Rerouted | undefined> {
  for (let attempt = 1; ; attempt++) {
    const current = await deps.store.getCase(caseId)
    if (current === undefined || current.state !== 'open' || agentOf(current.handler) !== agentId) return undefined
    const at = deps.now()
    const iso = at.toISOString()
    const { facts, route } = await redecide(deps, current, at, actor, {})
    // the agent's state is in the facts: no route leads back to it while it is not active
    if (sameHandler(current.handler, route.handler)) return undefined
    const crosses = (current.handler.kind === 'agent') !== (route.handler.kind === 'agent')
    try {
      const r = await commitRoutedHandoff(deps, current, route, facts, actor, iso, {
        trigger: route.trigger,
        reason,
        secrets: {},
        crosses,
      })
      return { caseId, handler: r.handler, decisionId: r.decisionId }
    } catch (e) {
      if (e instanceof BatonError && e.code === 'CONFLICT' && attempt < MAX_ATTEMPTS) continue
      throw e
    }
  }
}

type EventDraft = Omit<CaseEvent, 'caseId' | 'seq' | 'at'>

async function openCaseOrThrow(deps: WorkDeps, caseId: string): Promise<CaseRecord> {
  const c = await deps.store.getCase(caseId)
  if (c === undefined) throw new BatonError('CASE_NOT_FOUND', `no case with id '${caseId}'`)
  if (c.state !== 'open') throw new BatonError('CASE_CLOSED', `case '${caseId}' is ${c.state}`)
  return c
}

async function commit(
  deps: WorkDeps,
  current: CaseRecord,
  next: CaseRecord,
  drafts: readonly EventDraft[],
  decisions: readonly DecisionRecord[],
  actor: Actor,
  at: string,
): Promise<void> {
  const events: CaseEvent[] = drafts.map((e, i) => ({ ...e, caseId: current.id, seq: current.lastEvent + i + 1, at }))
  const audit: AuditEntryBody[] = events.map((e) => ({
    type: e.type,
    at,
    caseId: current.id,
    actor: { kind: actor.kind, id: actor.id },
    data: { caseSeq: e.seq, ...e.data },
  }))
  await deps.store.commitCase({
    case: { ...next, lastEvent: current.lastEvent + events.length },
    expectedVersion: current.version,
    events,
    decisions,
    audit,
    requireActiveAgent: agentOf(next.handler),
  })
}

/**
 * Commits a handoff the policy decided: the route decision (`case.decided`), the new handler and its
 * `case.handed_off` event naming the decision, trigger and reason (and `cause`'s extra members).
 */
async function commitRoutedHandoff(
  deps: WorkDeps,
  current: CaseRecord,
  route: RouteResult,
  facts: Facts,
  actor: Actor,
  iso: string,
  o: {
    readonly trigger: string
    readonly reason: string
    readonly secrets: ReasonSecrets
    readonly crosses: boolean
    readonly cause?: object
  },
): Promise<HandlerChange> {
  const decisionId = deps.newId('dec')
  const decision = routeDecision(decisionId, current.id, iso, route, facts, actor, {
    trigger: o.trigger,
    reason: o.reason,
    secrets: o.secrets,
  })
  const next: CaseRecord = withOwnership(
    {
      ...current,
      handler: route.handler,
      handoffs: current.handoffs + (o.crosses ? 1 : 0),
      version: current.version + 1,
      updatedAt: iso,
      stateSince: iso,
      aiTurns: 0,
    },
    ownedAfter(current, route.handler),
  )
  const events: EventDraft[] = [
    { type: 'case.decided', data: decision.data },
    {
      type: 'case.handed_off',
      data: {
        from: current.handler,
        to: route.handler,
        cause: { decisionId, rules: route.rules, trigger: o.trigger, reason: o.reason, ...o.secrets, ...o.cause },
        countsAsHandoff: o.crosses,
      },
    },
  ]
  await commit(deps, current, next, events, [decision], actor, iso)
  return { caseId: current.id, handler: route.handler, trigger: o.trigger, decisionId }
}

/** Routing decided again on the case's latest facts (those of its last routing decision), brought up to `at`. */
async function redecide(
  deps: WorkDeps,
  current: CaseRecord,
  at: Date,
  actor: Actor,
  extra: { readonly sla_breached?: boolean; readonly human_request?: boolean; readonly human_owned?: boolean },
): Promise<{ facts: Facts; route: RouteResult }> {
  const active = deps.policy()
  const [decisions, stats, agents] = await Promise.all([
    deps.store.listDecisions(current.id),
    queueStatsFor(deps, active.policy),
    deps.store.agentStates(),
  ])
  const last = [...decisions].reverse().find((d) => d.kind === 'route')
  const prior = (last?.data.facts ?? {}) as Partial<Facts>
  const queue = queueFacts(active.policy, stats, at)
  const facts: Facts = {
    case: {
      id: current.id,
      channel: current.channel,
      state: current.state,
      ...holderFacts(current),
      ...(extra.human_owned === undefined ? {} : { human_owned: extra.human_owned }),
      handoffs: current.handoffs,
      messages: current.messages,
      age_s: seconds(at, current.createdAt),
      time_in_state_s: seconds(at, current.stateSince),
      risk_seen: Object.values(current.risk).some(Boolean),
      ai_turns: current.handler.kind === 'agent' ? (current.aiTurns ?? 0) : 0,
      risk_rose: false,
      sla_breached: extra.sla_breached ?? false,
    },
    signals:
      extra.human_request === true
        ? {
            ...(prior.signals ?? NEUTRAL_SIGNALS),
            risk: { ...(prior.signals ?? NEUTRAL_SIGNALS).risk, human_request: true },
          }
        : (prior.signals ?? NEUTRAL_SIGNALS),
    customer: prior.customer ?? { id: current.customerId, tier: '', verified: false },
    actor: { kind: actor.kind, id: actor.id, roles: actor.roles },
    queue,
    agents: agentFacts(agents),
    params: {},
    tool: '',
  }
  return { facts, route: decideRoute(active.policy, facts) }
}

const NEUTRAL_SIGNALS: Facts['signals'] = {
  intent: '',
  intent_confidence: 0,
  intent_class: {},
  agent_confidence: -1,
  language: 'und',
  secrets: 0,
  secret_kinds: [],
  pii: [],
  sensitivity: [],
  risk: {} as Facts['signals']['risk'],
  topics: {},
  duplicate_of: '',
  custom: {},
}

function routeDecision(
  id: string,
  caseId: string,
  at: string,
  route: RouteResult,
  facts: Facts,
  actor: Actor,
  extra: { readonly trigger: string; readonly reason?: string; readonly secrets?: ReasonSecrets },
): DecisionRecord {
  return {
    id,
    caseId,
    kind: 'route',
    outcome: route.outcome,
    at,
    data: {
      decisionId: id,
      kind: 'route',
      outcome: route.outcome,
      handler: route.handler,
      rules: route.rules,
      trigger: extra.trigger,
      ...(extra.reason === undefined ? {} : { reason: extra.reason }),
      ...extra.secrets,
      explanation: route.explanation,
      policy: route.policy,
      actor: { kind: actor.kind, id: actor.id },
      facts,
    },
  }
}

/** `{ secrets }` when the reason held any (spread into the data that records the reason), else nothing. */
type ReasonSecrets = { readonly secrets?: readonly SecretRedaction[] }

/** An operator's reason, redacted before it is stored or audited (invariant 7). */
function redactReason(deps: WorkDeps, given: string): { reason: string; secrets: ReasonSecrets } {
  const r = redactFreeText(given, 'reason', deps.secretHashKey)
  return { reason: r.text, secrets: r.secrets.length === 0 ? {} : { secrets: r.secrets } }
}

function describeHandler(h: Handler): string {
  return h.kind === 'agent' ? `agent '${h.agentId}'` : `${h.kind} queue '${h.queue}'`
}

function seconds(at: Date, since: string): number {
  return Math.max(0, Math.floor((at.getTime() - Date.parse(since)) / 1000))
}

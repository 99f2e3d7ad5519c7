import type { AuditActor, AuditEntryBody } from '../audit/entry.js'
import type { GrantFacts } from '../delegation/grants.js'
import { BatonError } from '../errors.js'
import type { AgentStates } from '../identity/agent-states.js'
import { type IntentDetector, type IntentSignals, withIntentSignals } from '../intents/detector.js'
import type { CompiledPolicy } from '../policy/compile.js'
import { validateCallerSignals } from '../policy/compile.js'
import { decideRoute } from '../policy/evaluate.js'
import type { ActorFacts, AgentFacts, Facts, QueueFacts, RouteResult } from '../policy/types.js'
import { analyzeMessage } from '../signals/analyze.js'
import { findDuplicate } from '../signals/duplicates.js'
import { keyedHash, secretValue } from '../signals/secrets.js'
import { redactFreeText, redactStrings, refuseSecretIn, type SecretRedaction } from '../signals/sensitive.js'
import type { TermMatcher } from '../signals/terms.js'
import { RISK_CATEGORIES, type RiskCategory, type Signals } from '../signals/types.js'
import type { CustomerRecord, Store } from '../store/ports.js'
import type { Handler } from './case.js'
import type { CaseEvent, CaseRecord, DecisionRecord } from './records.js'

/** The policy in force together with the term matchers compiled from it. Swapped atomically on reload. */
export interface ActivePolicy {
  readonly policy: CompiledPolicy
  readonly riskTerms: TermMatcher
  readonly topicTerms: TermMatcher
}

export interface IntakeDeps {
  readonly store: Store
  readonly policy: () => ActivePolicy
  readonly now: () => Date
  readonly newId: (prefix: string) => string
  /** Key for the keyed hash that lets the audit log correlate a secret without holding it. */
  readonly secretHashKey: Uint8Array
  /** The workspace's intent classifier; when absent, `intent` and `intent_confidence` come only from the caller. */
  readonly intents?: IntentDetector | undefined
  /** Where routing reads the agents' states (a short-lived cache in `app.ts`); when absent, the store at each message. */
  readonly agentStates?: AgentStates | undefined
}

export interface Actor {
  readonly kind: 'service' | 'operator' | 'admin' | 'analyst' | 'metrics' | 'agent' | 'delegate'
  readonly id: string
  readonly roles: readonly string[]
  /** For a delegate: the customer it acts for and under which chain of grants (set by `authenticateDelegate`). */
  readonly delegation?: DelegationContext | undefined
}

/** Who a delegate acts for and under what, as every audit entry and decision of its requests records it. */
export interface DelegationContext {
  readonly customerId: string
  /** The grant its token names (the last hop). */
  readonly grantId: string
  /** Delegate ids of the chain, the customer's own grantee first, the acting delegate last. */
  readonly chain: readonly string[]
  /** Grant ids of the chain, in the same order. */
  readonly grants: readonly string[]
  /** The scopes the chain confers now (within every hop and still declared). */
  readonly scopes: readonly string[]
  /** The scope that allowed this request, once known. */
  readonly scope?: string | undefined
  readonly grant: GrantFacts
  /** The delegate token's id. */
  readonly jti: string
}

/** Who wrote for the customer, as a case's events record it: the delegate, its grant and chain. */
function delegateRef(actor: Actor): Record<string, unknown> {
  const d = actor.delegation
  return { id: actor.id, customerId: d?.customerId, grantId: d?.grantId, chain: d?.chain, scope: d?.scope }
}

/** The audit `actor` of an actor: kind and id, and for a delegate the customer, the chain, the grant and the scope. */
export function actorRef(actor: Actor): AuditActor {
  const d = actor.delegation
  if (d === undefined) return { kind: actor.kind, id: actor.id }
  return {
    kind: actor.kind,
    id: actor.id,
    delegation: {
      customer: d.customerId,
      chain: d.chain,
      grants: d.grants,
      grant: d.grantId,
      ...(d.scope === undefined ? {} : { scope: d.scope }),
      token: d.jti,
    },
  }
}

export interface MessageInput {
  readonly text: string
  readonly signals?: Readonly<Record<string, unknown>> | undefined
  /** The handling AI agent's confidence in its last answer, when the agent reports it. */
  readonly customer?: { readonly tier?: string | undefined; readonly verified?: boolean | undefined } | undefined
}

export interface OpenCaseInput extends MessageInput {
  readonly customerId: string
  readonly channel: string
  readonly subject?: string | undefined
}

export interface DecisionView {
  readonly id: string
  readonly outcome: RouteResult['outcome']
  readonly rules: RouteResult['rules']
  readonly trigger: string
  readonly explanation: RouteResult['explanation']
  readonly policy: RouteResult['policy']
}

export interface IntakeResult {
  readonly id: string
  readonly messageId: string
  readonly state: CaseRecord['state']
  readonly handler: Handler
  readonly handoff: boolean
  readonly signals: Signals
  readonly decision: DecisionView
  readonly text: string
  readonly duplicateOf: string
}

const MAX_ATTEMPTS = 8
const DUPLICATE_CANDIDATES = 20

/**
 * Opens a case with its first message: signals → policy → decision, all written in one transaction. Retried when
 * the agent it was routed to stopped being active before the commit (`CONFLICT`): decided again with the new state.
 */
export async function openCase(deps: IntakeDeps, actor: Actor, given: OpenCaseInput): Promise<IntakeResult> {
  refuseSecretIn(given.customerId, 'customer')
  const subject = redactFreeText(given.subject ?? '', 'subject', deps.secretHashKey)
  const { input, secrets: fieldSecrets } = redactInput(deps, given)
  const active = deps.policy()
  const validated = callerSignals(active.policy, input.signals)
  const analysis = analyzeMessage(input.text, { terms: active.riskTerms, topics: active.topicTerms })
  // the classifiers read the redacted text: a secret never reaches a model (invariant 7)
  const caller = await withIntentSignals(deps.intents, active.policy, analysis.redactedText, input.signals, validated)
  const otherSecrets = [...subject.secrets, ...fieldSecrets]
  for (let attempt = 1; ; attempt++) {
    try {
      return await openOnce()
    } catch (e) {
      if (e instanceof BatonError && e.code === 'CONFLICT' && attempt < MAX_ATTEMPTS) {
        deps.agentStates?.invalidate()
        continue
      }
      throw e
    }
  }

  async function openOnce(): Promise<IntakeResult> {
    // the customer record and its open cases (the duplicate candidates) in one read
    const [{ customer: stored, open }, queues, agents] = await Promise.all([
      deps.store.customerWithOpenCases(input.customerId, DUPLICATE_CANDIDATES),
      queueStatsFor(deps, active.policy),
      readAgentStates(deps),
    ])
    const duplicate = findDuplicate(
      analysis.redactedText,
      open.map((c) => ({ caseId: c.id, text: c.firstText })),
    )
    const at = deps.now()
    const iso = at.toISOString()
    const id = deps.newId('cs')
    const messageId = deps.newId('msg')
    const risk = mergeRisk({}, analysis.risk)
    const signals = buildSignals(analysis, caller, risk, duplicate?.caseId ?? '', otherSecrets)
    const facts: Facts = {
      case: {
        id,
        channel: input.channel,
        state: 'open',
        handler: '',
        queue: '',
        agent: '',
        human_owned: false,
        handoffs: 0,
        messages: 1,
        age_s: 0,
        time_in_state_s: 0,
        risk_seen: Object.values(risk).some(Boolean),
      },
      signals,
      customer: customerFacts(input.customerId, stored, input.customer),
      actor: actorFacts(actor),
      queue: queueFacts(active.policy, queues, at),
      agents: agentFacts(agents),
      params: {},
      tool: '',
    }
    const route = decideRoute(active.policy, facts)
    const decisionId = deps.newId('dec')
    const caseRecord: CaseRecord = {
      id,
      customerId: input.customerId,
      channel: input.channel,
      subject: subject.text,
      state: 'open',
      handler: route.handler,
      handoffs: 0,
      messages: 1,
      risk,
      firstText: analysis.redactedText,
      lastEvent: 0,
      version: 1,
      aiTurns: route.handler.kind === 'agent' ? 1 : 0,
      createdAt: iso,
      updatedAt: iso,
      stateSince: iso,
    }
    const events: Omit<CaseEvent, 'caseId' | 'seq' | 'at'>[] = [
      {
        type: 'case.opened',
        data: {
          customerId: input.customerId,
          channel: input.channel,
          subject: subject.text,
          ...(subject.secrets.length === 0 ? {} : { secrets: subject.secrets }),
          ...(actor.delegation === undefined ? {} : { openedBy: delegateRef(actor) }),
        },
      },
      {
        type: 'message.received',
        data: messageData(deps, messageId, input.text, analysis, signals, fieldSecrets, actor),
      },
    ]
    if (duplicate) events.push({ type: 'case.linked', data: { duplicateOf: duplicate.caseId, score: duplicate.score } })
    const decision = decisionRecord(decisionId, id, iso, route, facts, actor, messageId)
    // the decided event and the decision record share one data object: the store serialises it once
    events.push({ type: 'case.decided', data: decision.data })
    // the tier the decision saw in the customer record also ranks the work item (and spares the store a read)
    await commit(deps, caseRecord, null, 0, events, decision, actor, iso, stored?.tier ?? '')
    return result(
      caseRecord,
      messageId,
      false,
      signals,
      decisionId,
      route,
      analysis.redactedText,
      duplicate?.caseId ?? '',
    )
  }
}

/** Adds a customer message to a case and re-decides who handles it. Retries on concurrent writers. */
export async function receiveMessage(
  deps: IntakeDeps,
  actor: Actor,
  caseId: string,
  given: MessageInput,
): Promise<IntakeResult> {
  const { input, secrets: fieldSecrets } = redactInput(deps, given)
  const active = deps.policy()
  const validated = callerSignals(active.policy, input.signals)
  const analysis = analyzeMessage(input.text, { terms: active.riskTerms, topics: active.topicTerms })
  // the classifiers read the redacted text: a secret never reaches a model (invariant 7)
  const caller = await withIntentSignals(deps.intents, active.policy, analysis.redactedText, input.signals, validated)
  for (let attempt = 1; ; attempt++) {
    const current = await deps.store.getCase(caseId)
    if (current === undefined) throw new BatonError('CASE_NOT_FOUND', `no case with id '${caseId}'`)
    if (current.state !== 'open') throw new BatonError('CASE_CLOSED', `case '${caseId}' is ${current.state}`)
    const [stored, queues, agents] = await Promise.all([
      deps.store.getCustomer(current.customerId),
      queueStatsFor(deps, active.policy),
      readAgentStates(deps),
    ])
    const at = deps.now()
    const iso = at.toISOString()
    const messageId = deps.newId('msg')
    const risk = mergeRisk(current.risk, analysis.risk)
    const signals = buildSignals(analysis, caller, risk, '', fieldSecrets)
    const facts: Facts = {
      case: {
        id: current.id,
        channel: current.channel,
        state: current.state,
        ...holderFacts(current),
        handoffs: current.handoffs,
        messages: current.messages + 1,
        age_s: seconds(at, current.createdAt),
        time_in_state_s: seconds(at, current.stateSince),
        risk_seen: Object.values(current.risk).some(Boolean),
        // Escalation triggers: answers by the agent holding the case, and a risk indicator new to the case.
        ai_turns: current.handler.kind === 'agent' ? (current.aiTurns ?? 0) : 0,
        risk_rose: RISK_CATEGORIES.some((c) => analysis.risk[c] && current.risk[c] !== true),
      },
      signals,
      customer: customerFacts(current.customerId, stored, input.customer),
      actor: actorFacts(actor),
      queue: queueFacts(active.policy, queues, at),
      agents: agentFacts(agents),
      params: {},
      tool: '',
    }
    const route = decideRoute(active.policy, facts)
    const decisionId = deps.newId('dec')
    const changed = !sameHandler(current.handler, route.handler)
    const crossesAiHuman = changed && (current.handler.kind === 'agent') !== (route.handler.kind === 'agent')
    const next: CaseRecord = withOwnership(
      {
        ...current,
        handler: changed ? route.handler : current.handler,
        handoffs: current.handoffs + (crossesAiHuman ? 1 : 0),
        messages: current.messages + 1,
        risk,
        version: current.version + 1,
        updatedAt: iso,
        stateSince: changed ? iso : current.stateSince,
        aiTurns: route.handler.kind === 'agent' ? (changed ? 0 : (current.aiTurns ?? 0)) + 1 : 0,
      },
      ownedAfter(current, route.handler),
    )
    const decision = decisionRecord(decisionId, caseId, iso, route, facts, actor, messageId)
    const events: Omit<CaseEvent, 'caseId' | 'seq' | 'at'>[] = [
      {
        type: 'message.received',
        data: messageData(deps, messageId, input.text, analysis, signals, fieldSecrets, actor),
      },
      { type: 'case.decided', data: decision.data },
    ]
    if (changed) {
      events.push({
        type: 'case.handed_off',
        data: {
          from: current.handler,
          to: route.handler,
          cause: { decisionId, rules: route.rules, trigger: route.trigger },
          countsAsHandoff: crossesAiHuman,
        },
      })
    }
    try {
      await commit(deps, next, current.version, current.lastEvent, events, decision, actor, iso)
      return result(next, messageId, changed, signals, decisionId, route, analysis.redactedText, '')
    } catch (e) {
      if (e instanceof BatonError && e.code === 'CONFLICT' && attempt < MAX_ATTEMPTS) {
        // a stale version, or an agent that stopped being active: read both again
        deps.agentStates?.invalidate()
        continue
      }
      throw e
    }
  }
}

async function commit(
  deps: IntakeDeps,
  record: CaseRecord,
  expectedVersion: number | null,
  firstSeq: number,
  events: readonly Omit<CaseEvent, 'caseId' | 'seq' | 'at'>[],
  decision: DecisionRecord,
  actor: Actor,
  at: string,
  customerTier?: string,
): Promise<void> {
  const full: CaseEvent[] = events.map((e, i) => ({ ...e, caseId: record.id, seq: firstSeq + i + 1, at }))
  const withLast: CaseRecord = { ...record, lastEvent: firstSeq + full.length }
  const audit: AuditEntryBody[] = full.map((e) => ({
    type: e.type,
    at,
    caseId: record.id,
    actor: actorRef(actor),
    data: { caseSeq: e.seq, ...e.data },
  }))
  await deps.store.commitCase({
    case: withLast,
    expectedVersion,
    events: full,
    decisions: [decision],
    audit,
    ...(customerTier === undefined ? {} : { customerTier }),
    requireActiveAgent: agentOf(record.handler),
  })
}

/** The agent a handler hands the case to (alone or drafting), which must still be active when it is committed. */
export function agentOf(h: Handler): string | undefined {
  return h.kind === 'operator' ? undefined : h.agentId
}

function readAgentStates(deps: IntakeDeps): Promise<Readonly<Record<string, string>>> {
  return deps.agentStates === undefined ? deps.store.agentStates() : deps.agentStates.read()
}

/** What routing reads as `agents.<id>.state`: every registered agent's state, as the store has it now. */
export function agentFacts(states: Readonly<Record<string, string>>): Record<string, AgentFacts> {
  const out: Record<string, AgentFacts> = {}
  for (const [id, state] of Object.entries(states)) out[id] = { state }
  return out
}

/**
 * The caller's other texts of one message, redacted before anything reads them (invariant 7): string signals (the
 * policy, the decision's facts and the audit see the redacted value) and the inline customer tier.
 */
function redactInput<T extends MessageInput>(
  deps: IntakeDeps,
  given: T,
): { input: T; secrets: readonly SecretRedaction[] } {
  const signals = redactStrings(given.signals, 'signals', deps.secretHashKey)
  const tier = given.customer?.tier
  const redactedTier = tier === undefined ? undefined : redactFreeText(tier, 'customer.tier', deps.secretHashKey)
  const input: T = {
    ...given,
    signals: signals.value,
    ...(given.customer === undefined ? {} : { customer: { ...given.customer, tier: redactedTier?.text } }),
  }
  return { input, secrets: [...signals.secrets, ...(redactedTier?.secrets ?? [])] }
}

function callerSignals(policy: CompiledPolicy, input: Readonly<Record<string, unknown>> | undefined) {
  const r = validateCallerSignals(policy, input ?? {})
  if (!r.ok) {
    throw new BatonError('VALIDATION_FAILED', r.fields.map((f) => `${f.field}: ${f.message}`).join('; '), {
      fields: r.fields,
    })
  }
  return r.value
}

function buildSignals(
  analysis: ReturnType<typeof analyzeMessage>,
  intents: IntentSignals,
  risk: Readonly<Partial<Record<RiskCategory, boolean>>>,
  duplicateOf: string,
  otherSecrets: readonly SecretRedaction[],
): Signals {
  const { intent, intent_confidence, agent_confidence, ...custom } = intents.values
  const fullRisk = Object.fromEntries(RISK_CATEGORIES.map((c) => [c, risk[c] === true])) as Record<
    RiskCategory,
    boolean
  >
  return {
    intent: typeof intent === 'string' ? intent : '',
    intent_confidence: typeof intent_confidence === 'number' ? intent_confidence : 0,
    intent_class: intents.intentClass,
    agent_confidence: typeof agent_confidence === 'number' ? agent_confidence : -1,
    language: analysis.language,
    // a secret in the subject, a caller signal or the tier counts as one sent with the message
    secrets: analysis.secrets.length + otherSecrets.length,
    secret_kinds:
      otherSecrets.length === 0
        ? analysis.secretKinds
        : [...new Set([...analysis.secretKinds, ...otherSecrets.map((s) => s.kind)])].sort(),
    pii: analysis.piiKinds,
    sensitivity:
      otherSecrets.length === 0 || analysis.sensitivity.includes('secret')
        ? analysis.sensitivity
        : [...analysis.sensitivity, 'secret'].sort(),
    risk: fullRisk,
    topics: analysis.topics,
    duplicate_of: duplicateOf,
    custom,
  }
}

function mergeRisk(
  prior: Readonly<Partial<Record<RiskCategory, boolean>>>,
  now: Readonly<Record<RiskCategory, boolean>>,
): Partial<Record<RiskCategory, boolean>> {
  const out: Partial<Record<RiskCategory, boolean>> = {}
  for (const c of RISK_CATEGORIES) if (prior[c] === true || now[c] === true) out[c] = true
  return out
}

function messageData(
  deps: IntakeDeps,
  messageId: string,
  clear: string,
  analysis: ReturnType<typeof analyzeMessage>,
  signals: Signals,
  fieldSecrets: readonly SecretRedaction[],
  actor: Actor,
): Record<string, unknown> {
  return {
    messageId,
    // a delegate writes for the customer: the message says so, and under which grant
    author: actor.delegation === undefined ? 'customer' : 'delegate',
    ...(actor.delegation === undefined ? {} : { delegate: delegateRef(actor) }),
    // Only the redacted text is stored; a secret is kept as its kind and a keyed hash (invariant 7). Those of the
    // message text carry no `field`; those of a signal or the tier name theirs.
    text: analysis.redactedText,
    secrets: [
      ...analysis.secrets.map((s) => ({ kind: s.kind, hash: keyedHash(deps.secretHashKey, secretValue(clear, s)) })),
      ...fieldSecrets,
    ],
    pii: analysis.pii.map((p) => ({ kind: p.kind })),
    signals,
  }
}

function decisionData(
  decisionId: string,
  messageId: string,
  route: RouteResult,
  facts: Facts,
  actor: Actor,
): Record<string, unknown> {
  return {
    decisionId,
    messageId,
    kind: 'route',
    outcome: route.outcome,
    handler: route.handler,
    rules: route.rules,
    trigger: route.trigger,
    explanation: route.explanation,
    policy: route.policy,
    actor: actorRef(actor),
    facts,
  }
}

function decisionRecord(
  id: string,
  caseId: string,
  at: string,
  route: RouteResult,
  facts: Facts,
  actor: Actor,
  messageId: string,
): DecisionRecord {
  return {
    id,
    caseId,
    kind: 'route',
    outcome: route.outcome,
    at,
    data: decisionData(id, messageId, route, facts, actor),
  }
}

function result(
  c: CaseRecord,
  messageId: string,
  handoff: boolean,
  signals: Signals,
  decisionId: string,
  route: RouteResult,
  text: string,
  duplicateOf: string,
): IntakeResult {
  return {
    id: c.id,
    messageId,
    state: c.state,
    handler: c.handler,
    handoff,
    signals,
    text,
    duplicateOf,
    decision: {
      id: decisionId,
      outcome: route.outcome,
      rules: route.rules,
      trigger: route.trigger,
      explanation: route.explanation,
      policy: route.policy,
    },
  }
}

/** What routing reads of who holds a case: `case.handler`, `case.queue`, `case.agent` and `case.human_owned`. */
export function holderFacts(c: CaseRecord): Pick<Facts['case'], 'handler' | 'queue' | 'agent' | 'human_owned'> {
  const h = c.handler
  return {
    handler: h.kind,
    queue: h.kind === 'agent' ? '' : h.queue,
    agent: h.kind === 'operator' ? '' : h.agentId,
    human_owned: c.humanOwned === true,
  }
}

/** Whether a person still owns the case once `next` holds it: not once it goes back to an AI agent. */
export function ownedAfter(current: CaseRecord, next: Handler): boolean {
  return current.humanOwned === true && next.kind !== 'agent'
}

/** The record with `humanOwned` set, or left out while false (as the store reads it back). */
export function withOwnership(c: CaseRecord, owned: boolean): CaseRecord {
  const { humanOwned: _, ...rest } = c
  return owned ? { ...rest, humanOwned: true } : rest
}

export function sameHandler(a: Handler, b: Handler): boolean {
  if (a.kind !== b.kind) return false
  if (a.kind === 'agent' && b.kind === 'agent') return a.agentId === b.agentId
  if (a.kind === 'operator' && b.kind === 'operator') return a.queue === b.queue
  if (a.kind === 'hybrid' && b.kind === 'hybrid') return a.queue === b.queue && a.agentId === b.agentId
  return false
}

function customerFacts(
  id: string,
  stored: CustomerRecord | undefined,
  given: MessageInput['customer'],
): Facts['customer'] {
  return {
    id,
    tier: given?.tier ?? stored?.tier ?? '',
    verified: given?.verified ?? stored?.verified ?? false,
  }
}

export function actorFacts(actor: Actor): ActorFacts {
  const d = actor.delegation
  if (d === undefined) return { kind: actor.kind, id: actor.id, roles: actor.roles }
  return { kind: actor.kind, id: actor.id, roles: actor.roles, scopes: d.scopes, chain: d.chain, grant: d.grant }
}

export function queueFacts(
  policy: CompiledPolicy,
  stats: Record<string, { depth: number; oldestSince: string | null }>,
  at: Date,
): Record<string, QueueFacts> {
  const out: Record<string, QueueFacts> = {}
  for (const q of policy.known.queues) {
    const s = stats[q]
    out[q] = {
      depth: s?.depth ?? 0,
      oldest_wait_s: s?.oldestSince ? seconds(at, s.oldestSince) : 0,
    }
  }
  return out
}

function seconds(at: Date, since: string): number {
  return Math.max(0, Math.floor((at.getTime() - Date.parse(since)) / 1000))
}

/**
 * Queue depth and wait, read from the store only when a routing condition reads `queue` (an aggregate over the open
 * cases: not worth a query per message for a policy that never looks at it). Otherwise every queue reads as empty,
 * which is also what the facts of such a policy's decisions record.
 */
export function queueStatsFor(
  deps: Pick<IntakeDeps, 'store'>,
  policy: CompiledPolicy,
): Promise<Record<string, { depth: number; oldestSince: string | null }>> {
  return policy.routing.readsQueues ? deps.store.queueStats() : Promise.resolve({})
}

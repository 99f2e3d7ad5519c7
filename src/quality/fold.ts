import type { Handler } from '../cases/case.js'
import type { GateKind, HistoryEvent } from './history.js'

/**
 * One case's history folded into what the figures read (`evolve`, pure). Escalations are kept with their cause as
 * recorded (rules, trigger, policy); the figures classify and judge them against the SLA later, so the fold needs
 * no configuration and one fold serves every query.
 */
export interface CaseState {
  readonly id: string
  customerId: string
  channel: string
  /** ms; NaN until the `opened` event is seen. */
  createdAt: number
  /** Redacted text of the first customer message. */
  firstText: string | undefined
  firstMessageId: string
  /** The case's first routing decision: who got it, under which policy. */
  first: { readonly decisionId: string; readonly handler: Handler['kind']; readonly policyHash: string } | undefined
  handler: Handler | undefined
  /** Ever held by a human (operator or hybrid). */
  human: boolean
  /** AI↔human handoffs (`countsAsHandoff`). */
  bounces: number
  /** The ping-pong cap (`max-handoffs`) decided at least once. */
  capHit: boolean
  /**
   * A person holds the case because they took it (took it over, claimed it, were assigned it), as the store's
   * `human_owned` says; false again once the case goes back to an AI agent.
   */
  humanOwned: boolean
  /** Handoffs back to an AI agent while a person owned the case, other than the owner's own hand-back. */
  bouncesFromHumanOwned: number
  readonly queues: Set<string>
  readonly agents: Set<string>
  closedAt: number | undefined
  lastPolicyHash: string
  readonly escalations: Escalation[]
  readonly gates: Map<string, Gate>
  /** Ids of the case's policy decisions (routing and tool; not operator overrides), for replay. */
  readonly decisions: string[]
}

/** The case reaching a human (operator or hybrid): at its first decision, or handed over from an AI agent. */
export interface Escalation {
  readonly at: number
  readonly queue: string
  readonly atIntake: boolean
  readonly rules: readonly string[]
  readonly trigger: string
  readonly policyHash: string
  /** The AI agent asked for a human itself (`requestHandoff`). */
  readonly byAgent: boolean
  /** When an operator took it (assigned, claimed, taken over); undefined while nobody has. */
  pickedAt: number | undefined
  /** When it left the humans' hands unpicked (back to an AI agent, closed). */
  leftAt: number | undefined
  /** When the operator who took it was done with it (the case handed on or closed): their handle time ends. */
  endedAt?: number | undefined
}

export interface Gate {
  readonly kind: GateKind
  readonly id: string
  requestedAt: number
  settledAt: number | undefined
  state: string
  tool: string
  requester: string
}

export function emptyCase(id: string): CaseState {
  return {
    id,
    customerId: '',
    channel: '',
    createdAt: Number.NaN,
    firstText: undefined,
    firstMessageId: '',
    first: undefined,
    handler: undefined,
    human: false,
    bounces: 0,
    capHit: false,
    humanOwned: false,
    bouncesFromHumanOwned: 0,
    queues: new Set(),
    agents: new Set(),
    closedAt: undefined,
    lastPolicyHash: '',
    escalations: [],
    gates: new Map(),
    decisions: [],
  }
}

const isHuman = (h: Handler | undefined): boolean => h !== undefined && h.kind !== 'agent'

function touch(s: CaseState, h: Handler): void {
  if (h.kind !== 'operator') s.agents.add(h.agentId)
  if (h.kind !== 'agent') {
    s.queues.add(h.queue)
    s.human = true
  }
}

/** The escalation still waiting for an operator, if any. */
export function openEscalation(s: CaseState): Escalation | undefined {
  const e = s.escalations.at(-1)
  return e !== undefined && e.pickedAt === undefined && e.leftAt === undefined ? e : undefined
}

/** The last escalation, taken and still held, is done with at `at`. */
function endHandling(s: CaseState, at: number): void {
  const e = s.escalations.at(-1)
  if (e !== undefined && e.pickedAt !== undefined && e.endedAt === undefined) e.endedAt = at
}

/** Folds one event of the case into its state (mutating `s`, which only the fold holds). */
export function evolve(s: CaseState, e: HistoryEvent): void {
  switch (e.type) {
    case 'opened':
      s.customerId = e.customerId
      s.channel = e.channel
      s.createdAt = e.at
      return
    case 'message':
      if (s.firstText === undefined) {
        s.firstText = e.text
        s.firstMessageId = e.messageId
      }
      return
    case 'decided': {
      if (e.kind !== 'override') s.decisions.push(e.decisionId)
      if (e.policyHash !== '') s.lastPolicyHash = e.policyHash
      if (e.rules.includes('max-handoffs')) s.capHit = true
      if (s.first !== undefined || e.handler === undefined) return
      // The first decision of a case is its routing at intake: the handler it starts with (no handoff event).
      s.first = { decisionId: e.decisionId, handler: e.handler.kind, policyHash: e.policyHash }
      s.handler = e.handler
      if (Number.isNaN(s.createdAt)) s.createdAt = e.at
      touch(s, e.handler)
      if (isHuman(e.handler)) {
        s.escalations.push({
          at: e.at,
          queue: e.handler.kind === 'agent' ? '' : e.handler.queue,
          atIntake: true,
          rules: e.rules,
          trigger: e.trigger,
          policyHash: e.policyHash,
          byAgent: false,
          pickedAt: e.handler.kind === 'operator' && e.handler.operatorId !== undefined ? e.at : undefined,
          leftAt: undefined,
        })
      }
      return
    }
    case 'handed_off': {
      endHandling(s, e.at)
      if (e.counts) s.bounces++
      if (e.trigger === 'max_handoffs') s.capHit = true
      if (e.to.kind === 'agent') {
        // the owner handing the case back is theirs to do; anything else taking it from its owner is a bounce
        if (s.humanOwned && e.trigger !== 'handback') s.bouncesFromHumanOwned++
        s.humanOwned = false
      } else if (e.to.kind === 'operator' && e.rules.includes('manual-takeover')) s.humanOwned = true
      const open = openEscalation(s)
      if (e.to.kind === 'agent') {
        if (open !== undefined) open.leftAt = e.at
      } else if (e.from.kind === 'agent') {
        s.escalations.push({
          at: e.at,
          queue: e.to.queue,
          atIntake: false,
          rules: e.rules,
          trigger: e.trigger,
          policyHash: s.lastPolicyHash,
          byAgent: e.requestedBy !== '',
          // an operator taking the case over from the AI owns it at once
          pickedAt: e.to.kind === 'operator' && e.to.operatorId !== undefined ? e.at : undefined,
          leftAt: undefined,
        })
      } else if (open !== undefined && e.to.kind === 'operator' && e.to.operatorId !== undefined) {
        open.pickedAt = e.at // taken over from the queue
      }
      s.handler = e.to
      touch(s, e.to)
      return
    }
    case 'assigned': {
      // claimed or assigned: an operator case is now owned by that person (a hybrid one keeps its drafter)
      if (s.handler?.kind === 'operator') s.humanOwned = true
      const open = openEscalation(s)
      if (open !== undefined) open.pickedAt = e.at
      return
    }
    case 'closed': {
      endHandling(s, e.at)
      s.closedAt = e.at
      const open = openEscalation(s)
      if (open !== undefined) open.leftAt = e.at
      return
    }
    case 'gate_requested':
      s.gates.set(`${e.gate}:${e.id}`, {
        kind: e.gate,
        id: e.id,
        requestedAt: e.at,
        settledAt: undefined,
        state: 'pending',
        tool: e.tool,
        requester: e.requester,
      })
      return
    case 'gate_settled': {
      const g = s.gates.get(`${e.gate}:${e.id}`)
      if (g === undefined || g.settledAt !== undefined) return
      g.settledAt = e.at
      g.state = e.state
      return
    }
    case 'action':
      s.decisions.push(e.decisionId)
      if (e.agentId !== '') s.agents.add(e.agentId)
      return
    case 'sla_breached':
      return
  }
}

/** Cases folded from events of many cases in any interleaving (each case's own events in order). */
export class CaseFold {
  readonly cases = new Map<string, CaseState>()

  add(e: HistoryEvent): void {
    let s = this.cases.get(e.caseId)
    if (s === undefined) {
      s = emptyCase(e.caseId)
      this.cases.set(e.caseId, s)
    }
    evolve(s, e)
  }
}

import type { Handler } from '../cases/case.js'

/**
 * The stored history as the quality figures read it: one lean event per case event, decision, approval and agent
 * action, keyed by case. Built from stored case events (`Store.scanCaseHistory`) or from audit entries
 * (`historyEventOf` on an entry's body), so one fold serves a window query and a live tail alike. Times are ms.
 */
export type HistoryEvent =
  | {
      readonly type: 'opened'
      readonly caseId: string
      readonly at: number
      readonly customerId: string
      readonly channel: string
    }
  | {
      readonly type: 'message'
      readonly caseId: string
      readonly at: number
      readonly messageId: string
      readonly text: string
    }
  | {
      readonly type: 'decided'
      readonly caseId: string
      readonly at: number
      readonly decisionId: string
      readonly kind: string
      readonly handler: Handler | undefined
      readonly rules: readonly string[]
      readonly trigger: string
      /** sha256 of the policy that decided; '' when not recorded. */
      readonly policyHash: string
      readonly policyVersion: number
      readonly messageId: string
    }
  | {
      readonly type: 'handed_off'
      readonly caseId: string
      readonly at: number
      readonly from: Handler
      readonly to: Handler
      readonly rules: readonly string[]
      readonly trigger: string
      readonly decisionId: string
      /** An AI↔human change (a bounce); a change of queue between humans is not one. */
      readonly counts: boolean
      /** The AI agent that asked for a human (`requestHandoff`), or ''. */
      readonly requestedBy: string
    }
  | {
      readonly type: 'assigned'
      readonly caseId: string
      readonly at: number
      readonly operatorId: string
      readonly queue: string
    }
  | { readonly type: 'sla_breached'; readonly caseId: string; readonly at: number; readonly queue: string }
  | { readonly type: 'closed'; readonly caseId: string; readonly at: number }
  | {
      readonly type: 'gate_requested'
      readonly caseId: string
      readonly at: number
      /** `approval` (an operator decides) or `confirmation` (the customer confirms a delegate's request). */
      readonly gate: GateKind
      readonly id: string
      readonly tool: string
      readonly requester: string
    }
  | {
      readonly type: 'gate_settled'
      readonly caseId: string
      readonly at: number
      readonly gate: GateKind
      readonly id: string
      /** approved, denied, expired, superseded (approvals); confirmed, declined, expired, superseded (confirmations). */
      readonly state: string
    }
  | {
      readonly type: 'action'
      readonly caseId: string
      readonly at: number
      readonly decisionId: string
      readonly agentId: string
      readonly tool: string
      readonly outcome: string
    }

export type GateKind = 'approval' | 'confirmation'

/** What a stored event or audit entry holds: a type, a time, the case it names and its data. */
export interface StoredEvent {
  readonly type: string
  readonly at: string
  readonly caseId?: string | undefined
  readonly actor?: { readonly kind?: unknown; readonly id?: unknown } | undefined
  readonly data?: Readonly<Record<string, unknown>> | undefined
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '')
const strings = (v: unknown): readonly string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []

function handlerOf(v: unknown): Handler | undefined {
  if (v === null || typeof v !== 'object') return undefined
  const h = v as Record<string, unknown>
  if (h.kind === 'agent') return { kind: 'agent', agentId: str(h.agentId) }
  if (h.kind === 'hybrid') return { kind: 'hybrid', queue: str(h.queue), agentId: str(h.agentId) }
  if (h.kind === 'operator') {
    return typeof h.operatorId === 'string' && h.operatorId !== ''
      ? { kind: 'operator', queue: str(h.queue), operatorId: h.operatorId }
      : { kind: 'operator', queue: str(h.queue) }
  }
  return undefined
}

/**
 * The history event a stored case event or an audit entry stands for; undefined for the ones no figure reads
 * (`case.linked`, credentials, keys…). Unknown shapes read as empty values rather than failing: the history is
 * what was stored, whatever version of Baton stored it.
 */
export function historyEventOf(e: StoredEvent): HistoryEvent | undefined {
  const caseId = e.caseId
  if (caseId === undefined || caseId === '') return undefined
  const at = Date.parse(e.at)
  if (!Number.isFinite(at)) return undefined
  const d = e.data ?? {}
  switch (e.type) {
    case 'case.opened':
      return { type: 'opened', caseId, at, customerId: str(d.customerId), channel: str(d.channel) }
    case 'message.received':
      return { type: 'message', caseId, at, messageId: str(d.messageId), text: str(d.text) }
    case 'case.decided': {
      const policy = (d.policy ?? {}) as { version?: unknown; hash?: unknown }
      return {
        type: 'decided',
        caseId,
        at,
        decisionId: str(d.decisionId),
        kind: str(d.kind) || 'route',
        handler: handlerOf(d.handler),
        rules: strings(d.rules),
        trigger: str(d.trigger),
        policyHash: str(policy.hash),
        policyVersion: typeof policy.version === 'number' ? policy.version : 0,
        messageId: str(d.messageId),
      }
    }
    case 'case.handed_off': {
      const from = handlerOf(d.from)
      const to = handlerOf(d.to)
      if (from === undefined || to === undefined) return undefined
      const cause = (d.cause ?? {}) as Record<string, unknown>
      return {
        type: 'handed_off',
        caseId,
        at,
        from,
        to,
        rules: strings(cause.rules),
        trigger: str(cause.trigger),
        decisionId: str(cause.decisionId),
        counts: d.countsAsHandoff === true,
        requestedBy: str(cause.requestedBy),
      }
    }
    case 'case.assigned':
      return { type: 'assigned', caseId, at, operatorId: str(d.operatorId), queue: str(d.queue) }
    case 'case.sla_breached':
      return { type: 'sla_breached', caseId, at, queue: str(d.queue) }
    case 'case.closed':
      return { type: 'closed', caseId, at }
    case 'approval.requested':
      return {
        type: 'gate_requested',
        caseId,
        at,
        gate: 'approval',
        id: str(d.approvalId),
        tool: str(d.tool),
        requester: str(d.requester),
      }
    case 'approval.decided':
    case 'approval.expired':
      return {
        type: 'gate_settled',
        caseId,
        at,
        gate: 'approval',
        id: str(d.approvalId),
        state: e.type === 'approval.expired' ? 'expired' : str(d.state),
      }
    case 'confirmation.requested':
      return {
        type: 'gate_requested',
        caseId,
        at,
        gate: 'confirmation',
        id: str(d.confirmationId),
        tool: str(d.tool),
        requester: str(d.requester),
      }
    case 'confirmation.decided':
    case 'confirmation.expired':
      return {
        type: 'gate_settled',
        caseId,
        at,
        gate: 'confirmation',
        id: str(d.confirmationId),
        state: e.type === 'confirmation.expired' ? 'expired' : str(d.state),
      }
    case 'action.decided':
      return {
        type: 'action',
        caseId,
        at,
        decisionId: str(d.decisionId),
        agentId: str(e.actor?.id),
        tool: str(d.tool),
        outcome: str(d.outcome),
      }
    default:
      return undefined
  }
}

/**
 * Events out: audit entries mapped to CloudEvents 1.0 (structured JSON mode). The audit log is durable, ordered and
 * already typed, so webhooks and the SSE stream are built by tailing it; an event's id is the entry's audit seq, so
 * a receiver can dedupe and a stream can resume (`Last-Event-ID`). Pure.
 */

export const EVENT_TYPE_PREFIX = 'dev.baton.'

/** Every event type Baton emits. */
export const EVENT_TYPES = [
  'dev.baton.case.opened',
  'dev.baton.case.escalated',
  'dev.baton.case.assigned',
  'dev.baton.case.handed_back',
  'dev.baton.case.sla_breached',
  'dev.baton.approval.requested',
  'dev.baton.approval.decided',
  'dev.baton.action.executed',
  'dev.baton.confirmation.requested',
  'dev.baton.confirmation.decided',
] as const
export type EventType = (typeof EVENT_TYPES)[number]

/** A CloudEvents 1.0 event in structured JSON mode. */
export interface CloudEvent {
  readonly specversion: '1.0'
  /** Decimal audit sequence number of the entry the event comes from. */
  readonly id: string
  readonly source: string
  readonly type: EventType
  /** RFC 3339: when the audited change happened. */
  readonly time: string
  /** The case id, when the change is about a case. */
  readonly subject?: string
  readonly datacontenttype: 'application/json'
  readonly data: {
    readonly auditSeq: number
    readonly auditType: string
    readonly caseId?: string
    readonly actor?: { readonly kind: string; readonly id: string }
    readonly [k: string]: unknown
  }
}

interface AuditShape {
  readonly seq: number
  readonly type: string
  readonly at: string
  readonly caseId?: string
  readonly actor?: { readonly kind: string; readonly id: string }
  readonly data?: unknown
}

/**
 * The event type of an audit entry, or null for entries that are not published. Approval and action entries are
 * matched by prefix (`approval.requested`, `approval.approved|denied|decided|expired`, `action.executed`).
 */
export function eventTypeOf(auditType: string, data: unknown): EventType | null {
  switch (auditType) {
    case 'case.opened':
      return 'dev.baton.case.opened'
    case 'case.assigned':
      return 'dev.baton.case.assigned'
    case 'case.sla_breached':
      return 'dev.baton.case.sla_breached'
    case 'case.handed_off': {
      const to = (data as { to?: { kind?: unknown } } | null)?.to
      return to?.kind === 'agent' ? 'dev.baton.case.handed_back' : 'dev.baton.case.escalated'
    }
  }
  if (auditType.startsWith('approval.request')) return 'dev.baton.approval.requested'
  if (/^approval\.(decided|approved|denied|rejected|expired)/.test(auditType)) return 'dev.baton.approval.decided'
  if (auditType.startsWith('action.execut')) return 'dev.baton.action.executed'
  // the helpdesk shows the customer what to confirm (GET /v1/confirmations/{id} has the parameters)
  if (auditType === 'confirmation.requested') return 'dev.baton.confirmation.requested'
  if (auditType === 'confirmation.decided' || auditType === 'confirmation.expired') {
    return 'dev.baton.confirmation.decided'
  }
  return null
}

/** The CloudEvent of one stored audit entry (its canonical JSON text), or null when it is not published. */
export function toCloudEvent(entry: string, source: string): CloudEvent | null {
  const e = JSON.parse(entry) as AuditShape
  const type = eventTypeOf(e.type, e.data)
  if (type === null) return null
  const data = typeof e.data === 'object' && e.data !== null && !Array.isArray(e.data) ? e.data : { value: e.data }
  return {
    specversion: '1.0',
    id: String(e.seq),
    source,
    type,
    time: e.at,
    ...(e.caseId === undefined ? {} : { subject: e.caseId }),
    datacontenttype: 'application/json',
    data: {
      ...(data as Record<string, unknown>),
      auditSeq: Number(e.seq),
      auditType: e.type,
      ...(e.caseId === undefined ? {} : { caseId: e.caseId }),
      ...(e.actor === undefined ? {} : { actor: e.actor }),
    },
  }
}

/** Whether a subscription's filter (`*`, full types, or types without the `dev.baton.` prefix) takes `type`. */
export function subscribed(filter: readonly string[], type: EventType): boolean {
  return filter.some((f) => f === '*' || f === type || `${EVENT_TYPE_PREFIX}${f}` === type)
}

/** Delay before retry `attempt` (1-based): exponential from `baseMs`, capped at `maxMs`, with up to 20% jitter. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, jitter: number): number {
  const raw = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(raw * (1 + 0.2 * Math.min(1, Math.max(0, jitter))))
}

import type { CaseRecord, DecisionRecord } from '../cases/records.js'
import type { Database } from './schema.js'

export function fromCase(c: CaseRecord): Database['cases'] {
  return {
    id: c.id,
    customer_id: c.customerId,
    channel: c.channel,
    subject: c.subject,
    state: c.state,
    handler: JSON.stringify(c.handler),
    handler_kind: c.handler.kind,
    queue: c.state === 'open' && c.handler.kind !== 'agent' ? c.handler.queue : null,
    handoffs: c.handoffs,
    messages: c.messages,
    risk: JSON.stringify(c.risk),
    first_text: c.firstText,
    last_event: c.lastEvent,
    version: c.version,
    created_at: c.createdAt,
    updated_at: c.updatedAt,
    state_since: c.stateSince,
    ai_turns: c.aiTurns ?? 0,
    human_owned: c.humanOwned === true ? 1 : 0,
  }
}

export function toCase(r: Database['cases']): CaseRecord {
  return {
    id: r.id,
    customerId: r.customer_id,
    channel: r.channel,
    subject: r.subject,
    state: r.state as CaseRecord['state'],
    handler: JSON.parse(r.handler) as CaseRecord['handler'],
    handoffs: Number(r.handoffs),
    messages: Number(r.messages),
    risk: JSON.parse(r.risk) as CaseRecord['risk'],
    firstText: r.first_text,
    lastEvent: Number(r.last_event),
    version: Number(r.version),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    stateSince: r.state_since,
    authorityEpoch: Number(r.authority_epoch ?? 0),
    // Omitted while 0 (the usual case: no agent answering): records stay equal to what their writers built.
    ...(Number(r.ai_turns ?? 0) > 0 ? { aiTurns: Number(r.ai_turns) } : {}),
    ...(Number(r.human_owned ?? 0) === 1 ? { humanOwned: true } : {}),
  }
}

export function toDecision(
  r: Pick<Database['decisions'], 'id' | 'case_id' | 'kind' | 'outcome' | 'data' | 'at'>,
): DecisionRecord {
  return {
    id: r.id,
    caseId: r.case_id,
    kind: r.kind as DecisionRecord['kind'],
    outcome: r.outcome,
    at: r.at,
    data: JSON.parse(r.data) as Record<string, unknown>,
  }
}

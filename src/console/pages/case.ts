import type { AuditActor } from '../../audit/entry.js'
import type { Handler } from '../../cases/case.js'
import type { CaseEvent, CaseRecord, DecisionRecord } from '../../cases/records.js'
import type { ConfirmationRecord } from '../../delegation/confirmation.js'
import type { Services } from '../../http/services.js'
import type { WorkItem } from '../../store/work-store.js'
import { type HtmlValue, html, type SafeHtml } from '../html.js'
import { duration, handlerLabel, layout, time, type Viewer } from '../layout.js'
import { readsText, whyOf } from './queue.js'

interface Explained {
  readonly id?: string
  readonly reason?: string
  readonly reads?: Record<string, unknown>
}

export interface CaseView {
  readonly record: CaseRecord
  readonly events: readonly CaseEvent[]
  readonly decisions: readonly DecisionRecord[]
  readonly slaSeconds: number | undefined
  /** The case's place in a queue, while it waits there or is held by an operator. */
  readonly work: WorkItem | undefined
  /** The case's audit entries about tool calls and MCP sessions (the rest is shown from events and decisions). */
  readonly calls: readonly CallEntry[]
  /** Customer confirmations of actions a delegate asked for on this case. */
  readonly confirmations: readonly ConfirmationRecord[]
}

/** Who a delegate wrote or asked for, as the case's events and audit entries record it. */
interface DelegateRef {
  readonly id?: string
  readonly customerId?: string
  readonly grantId?: string
  readonly chain?: readonly string[]
}

/** An audit entry of the case that the tool-call card reads. */
export interface CallEntry {
  readonly type: string
  readonly at: string
  readonly actor?: AuditActor
  readonly data: Readonly<Record<string, unknown>>
}

const CALL_TYPES = new Set([
  'action.decided',
  'action.executed',
  'action.failed',
  'mcp.session_opened',
  'mcp.session_closed',
  'mcp.tool_called',
  'access.refused',
])

export async function loadCase(s: Services, id: string): Promise<CaseView | undefined> {
  const record = await s.store.getCase(id)
  if (record === undefined) return undefined
  const [events, decisions, work, audit, confirmations] = await Promise.all([
    s.store.listCaseEvents(id),
    s.store.listDecisions(id),
    s.store.getWorkItem(id),
    s.store.listCaseAudit(id),
    s.store.listConfirmations({ caseId: id, limit: 100 }),
  ])
  const queue = record.handler.kind === 'agent' ? undefined : record.handler.queue
  const slaSeconds = s.workspace.queues.find((q) => q.id === queue)?.slaSeconds
  const calls = audit.map((e) => JSON.parse(e.entry) as CallEntry).filter((e) => CALL_TYPES.has(e.type))
  return { record, events, decisions, slaSeconds, work, calls, confirmations }
}

/** "for customer X, by delegate Y (grant G)", with the chain when a delegate passed the grant on. */
function delegateLine(d: DelegateRef): SafeHtml {
  const chain = d.chain ?? []
  return html`for customer <strong>${d.customerId ?? ''}</strong>, by delegate <strong class="delegate">${d.id ?? ''}</strong> (grant <a class="mono" href="/console/delegates?customer=${encodeURIComponent(d.customerId ?? '')}">${d.grantId ?? ''}</a>)${
    chain.length > 1 ? html` · chain ${chain.join(' → ')}` : ''
  }`
}

/** The delegates that opened or wrote to the case. */
function delegatesOf(v: CaseView): DelegateRef[] {
  const out = new Map<string, DelegateRef>()
  for (const e of v.events) {
    const d = (
      e.type === 'case.opened' ? e.data.openedBy : e.type === 'message.received' ? e.data.delegate : undefined
    ) as DelegateRef | undefined
    if (d !== undefined) out.set(`${d.id}/${d.grantId}`, d)
  }
  return [...out.values()]
}

function confirmationsList(v: CaseView, now: Date): SafeHtml {
  if (v.confirmations.length === 0) return html``
  return html`<h3>Customer confirmations</h3>
<table class="grid" id="confirmations">
<caption class="visually-hidden">Actions waiting for, or given, the customer's own confirmation</caption>
<thead><tr><th scope="col">Asked</th><th scope="col">Tool and parameters</th><th scope="col">Asked by</th><th scope="col">State</th></tr></thead>
<tbody>${v.confirmations.map((c) => {
    const state = c.state === 'pending' && now.getTime() >= Date.parse(c.expiresAt) ? 'expired' : c.state
    return html`<tr data-confirmation="${c.id}"><td>${time(c.createdAt)}</td><td>${c.tool} <small class="mono">${JSON.stringify(c.params)}</small></td><td>${c.requesterKind} ${c.requester}${c.grantId === null ? '' : html` <small>(grant ${c.grantId})</small>`}</td><td><span class="badge">${state}</span>${
      state === 'pending'
        ? html` <small>until ${time(c.expiresAt)}; the customer answers through the helpdesk</small>`
        : ''
    }</td></tr>`
  })}</tbody></table>`
}

function explanation(items: readonly Explained[]): SafeHtml {
  if (items.length === 0) return html`<p class="muted">No rule explanation recorded.</p>`
  return html`<ul class="explain">${items.map(
    (x) =>
      html`<li><span class="rule">${x.id ?? ''}</span> — ${x.reason ?? ''}${
        x.reads !== undefined && Object.keys(x.reads).length > 0
          ? html`<br><small>signals read: <span class="mono">${readsText(x.reads)}</span></small>`
          : ''
      }</li>`,
  )}</ul>`
}

function kindClass(h: Handler | undefined): string {
  return h === undefined ? '' : h.kind === 'agent' ? 'ai' : 'human'
}

/** The handler timeline: the first route, then every handoff, each with the decision that caused it. */
function timeline(v: CaseView): SafeHtml {
  const byId = new Map(v.decisions.map((d) => [d.id, d]))
  const steps: {
    at: string
    handler: Handler
    decisionId: string
    trigger: string
    from?: Handler
    taken?: { operatorId: string; how: string }
  }[] = []
  for (const e of v.events) {
    if (e.type === 'case.decided' && steps.length === 0) {
      steps.push({
        at: e.at,
        handler: e.data.handler as Handler,
        decisionId: String(e.data.decisionId),
        trigger: String(e.data.trigger ?? ''),
      })
    } else if (e.type === 'case.assigned') {
      // A human took the case from its queue: same handler, now with a named owner.
      const prev = steps.at(-1)
      if (prev !== undefined) {
        steps.push({
          ...prev,
          at: e.at,
          decisionId: '',
          trigger: '',
          taken: { operatorId: String(e.data.operatorId ?? ''), how: String(e.data.how ?? 'claim') },
        })
      }
    } else if (e.type === 'case.handed_off') {
      const cause = (e.data.cause ?? {}) as { decisionId?: string; trigger?: string }
      steps.push({
        at: e.at,
        handler: e.data.to as Handler,
        from: e.data.from as Handler,
        decisionId: cause.decisionId ?? '',
        trigger: cause.trigger ?? '',
      })
    }
  }
  return html`<ol class="timeline">${steps.map((st) => {
    const d = byId.get(st.decisionId)
    return html`<li class="${kindClass(st.handler)}">
  <p><strong>${handlerLabel(st.handler)}</strong>${st.taken === undefined ? '' : html` · taken by <strong>${st.taken.operatorId}</strong> (${st.taken.how})`} ${time(st.at)}${st.trigger === '' ? '' : html` <span class="badge">trigger: ${st.trigger}</span>`}</p>
  ${d === undefined ? '' : explanation((d.data.explanation ?? []) as Explained[])}
  ${d === undefined ? '' : html`<p><small>decision <a class="mono" href="#${d.id}">${d.id}</a> · policy ${policyText(d)}</small></p>`}
</li>`
  })}</ol>`
}

function policyText(d: DecisionRecord): string {
  const p = (d.data.policy ?? {}) as { name?: string; version?: number; hash?: string }
  return `${p.name ?? '?'} v${p.version ?? '?'} ${(p.hash ?? '').slice(0, 12)}`
}

function conversation(v: CaseView): SafeHtml {
  const messages = v.events.filter((e) => e.type === 'message.received')
  return html`<ol class="conversation">${messages.map((m) => {
    const secrets = ((m.data.secrets ?? []) as { kind: string }[]).map((x) => x.kind)
    const pii = ((m.data.pii ?? []) as { kind: string }[]).map((x) => x.kind)
    return html`<li>
  <p class="meta"><strong>${String(m.data.author ?? 'customer')}</strong>${
    m.data.delegate === undefined ? '' : html` ${delegateLine(m.data.delegate as DelegateRef)}`
  } ${time(m.at)}
  ${secrets.map((k) => html` <span class="badge risk">secret redacted: ${k}</span>`)}
  ${pii.map((k) => html` <span class="badge">pii: ${k}</span>`)}</p>
  <blockquote>${String(m.data.text ?? '')}</blockquote>
</li>`
  })}</ol>`
}

function decisionsTable(v: CaseView): SafeHtml {
  return html`<table class="grid">
<caption class="visually-hidden">Every decision taken on this case</caption>
<thead><tr><th scope="col">When</th><th scope="col">Kind</th><th scope="col">Outcome</th><th scope="col">Rules, reasons and the signals they read</th></tr></thead>
<tbody>${v.decisions.map(
    (d) => html`<tr id="${d.id}">
  <td>${time(d.at)}</td><td>${d.kind}</td>
  <td>${d.outcome}${d.data.handler === undefined ? '' : html`<br><small>${handlerLabel(d.data.handler as Handler)}</small>`}</td>
  <td>${explanation((d.data.explanation ?? []) as Explained[])}</td>
</tr>`,
  )}</tbody></table>`
}

/**
 * Every tool call on the case, through the HTTP API or the MCP gateway alike: what was asked, through which face
 * (an MCP call names its session), the outcome and rule, and what the connector did; then the MCP sessions opened
 * on the case and the MCP requests refused.
 */
function toolCalls(v: CaseView): SafeHtml {
  const done = new Map<string, CallEntry>()
  for (const e of v.calls) {
    if (e.type === 'action.executed' || e.type === 'action.failed') done.set(String(e.data.actionId), e)
  }
  const via = (d: Readonly<Record<string, unknown>>, actor?: AuditActor) => {
    const x = d.via as { face?: string; session?: string } | undefined
    if (actor?.kind === 'delegate' && actor.delegation !== undefined) {
      const g = actor.delegation
      return html`HTTP API · ${delegateLine({ id: actor.id, customerId: g.customer, grantId: g.grant, chain: g.chain })}`
    }
    return x?.face === 'mcp'
      ? html`<span class="badge">MCP</span> <small class="mono">session ${x.session ?? ''}</small>`
      : 'HTTP API'
  }
  const calls = v.calls.filter((e) => e.type === 'action.decided' || e.type === 'mcp.tool_called')
  const sessions = v.calls.filter((e) => e.type === 'mcp.session_opened' || e.type === 'mcp.session_closed')
  const refused = v.calls.filter((e) => e.type === 'access.refused' && /MCP|\/mcp/.test(String(e.data.route ?? '')))
  const rows = calls.map((e) => {
    const d = e.data
    if (e.type === 'mcp.tool_called') {
      return html`<tr><td>${time(e.at)}</td><td>${String(d.tool)}</td><td>${via({ via: { face: 'mcp', session: d.session } })}</td><td>read</td><td class="mono">${String(d.paramsDigest ?? '').slice(0, 12)}</td><td>—</td></tr>`
    }
    const r = done.get(String(d.actionId))
    const result =
      r === undefined
        ? '—'
        : r.type === 'action.executed'
          ? `executed${r.data.status === null || r.data.status === undefined ? '' : ` (${String(r.data.status)})`}`
          : `failed: ${String(r.data.error ?? r.data.status ?? '')}`
    return html`<tr data-action="${String(d.actionId)}"><td>${time(e.at)}</td><td>${String(d.tool)}</td><td>${via(d, e.actor)}</td><td>${String(d.outcome)} <small class="rule">${((d.rules ?? []) as string[]).join(', ')}</small></td><td class="mono">${String(d.paramsDigest ?? '').slice(0, 12)}</td><td>${result}</td></tr>`
  })
  return html`${
    calls.length === 0
      ? html`<p class="muted">No tool call yet.</p>`
      : html`<table class="grid" id="tool-calls">
<caption class="visually-hidden">Tool calls on this case, through the HTTP API and the MCP gateway</caption>
<thead><tr><th scope="col">When</th><th scope="col">Tool</th><th scope="col">Through</th><th scope="col">Outcome and rule</th><th scope="col">Parameters (SHA-256)</th><th scope="col">Result</th></tr></thead>
<tbody>${rows}</tbody></table>`
  }
${
  sessions.length === 0
    ? ''
    : html`<h3>MCP sessions</h3><ul class="mcp-sessions">${sessions.map((e) => {
        const client = (e.data.client ?? {}) as { name?: string; version?: string }
        return e.type === 'mcp.session_opened'
          ? html`<li>${time(e.at)} <span class="mono">${String(e.data.session)}</span> opened by ${e.actor?.id ?? ''} with ${client.name ?? '?'} ${client.version ?? ''}</li>`
          : html`<li>${time(e.at)} <span class="mono">${String(e.data.session)}</span> closed (${String(e.data.reason ?? '')})</li>`
      })}</ul>`
}
${
  refused.length === 0
    ? ''
    : html`<p><small>MCP requests refused on this case: ${refused.length} (${[...new Set(refused.map((e) => String(e.data.code)))].join(', ')})</small></p>`
}`
}

/** Take over from the AI, or hand back to it: always with a reason, through the queues API. */
function handlerForm(id: string, h: Handler, agents: readonly string[], csrf: string): SafeHtml {
  if (h.kind === 'agent') {
    return html`<form class="handler-change" data-case="${id}" data-verb="takeover">
    <input type="hidden" name="_csrf" value="${csrf}">
    <label for="takeover-reason">Reason to take over from the AI</label>
    <input id="takeover-reason" name="reason" required minlength="3" maxlength="2000" size="40">
    <button type="submit">Take over</button>
    <p class="result" role="status"></p>
  </form>`
  }
  if (agents.length === 0) return html``
  return html`<form class="handler-change" data-case="${id}" data-verb="handback">
    <input type="hidden" name="_csrf" value="${csrf}">
    <label for="handback-agent">Hand back to</label>
    <select id="handback-agent" name="agentId">${agents.map((a) => html`<option>${a}</option>`)}</select>
    <label for="handback-reason">Reason</label>
    <input id="handback-reason" name="reason" required minlength="3" maxlength="2000" size="32">
    <button type="submit" class="secondary">Hand back to the AI</button>
    <p class="result" role="status"></p>
  </form>`
}

export function casePage(
  viewer: Viewer,
  v: CaseView,
  opts: {
    readonly now: Date
    readonly canClaim: boolean
    readonly actions?: HtmlValue
    /** AI agents a human may hand the case back to (hand-back happens only where the policy routes it there). */
    readonly agents?: readonly string[]
  },
): SafeHtml {
  const c = v.record
  const why = whyOf(v.decisions, c.stateSince)
  const due =
    v.work?.slaDue ??
    (v.slaSeconds === undefined ? undefined : new Date(Date.parse(c.stateSince) + v.slaSeconds * 1000).toISOString())
  const slaLeft = due === undefined ? undefined : (Date.parse(due) - opts.now.getTime()) / 1000
  const waiting = c.state === 'open' && c.handler.kind !== 'agent'
  const holder = v.work?.operatorId ?? (c.handler.kind === 'operator' ? c.handler.operatorId : undefined) ?? null
  const unassigned = v.work !== undefined && holder === null
  const risks = Object.entries(c.risk)
    .filter(([, x]) => x === true)
    .map(([k]) => k)
  const body = html`
<p class="subtitle">${c.subject || '(no subject)'} · <span class="mono">${c.id}</span></p>
<section aria-labelledby="h-summary" class="card">
  <h2 id="h-summary">Summary</h2>
  <dl class="facts">
    <dt>State</dt><dd>${c.state}</dd>
    <dt>Handler</dt><dd id="case-handler">${handlerLabel(c.handler)}${holder === null ? '' : html` · claimed by <strong>${holder}</strong>`}</dd>
    <dt>Customer</dt><dd>${c.customerId} (${c.channel})</dd>
    ${delegatesOf(v).map((d) => html`<dt>Delegated</dt><dd class="delegation">${delegateLine(d)}</dd>`)}
    <dt>Handoffs</dt><dd>${c.handoffs}</dd>
    <dt>Risk</dt><dd>${risks.length === 0 ? 'none' : risks.map((k) => html`<span class="badge risk">${k}</span> `)}</dd>
    <dt>With this handler since</dt><dd>${time(c.stateSince)}</dd>
    ${
      waiting && slaLeft !== undefined && holder === null
        ? html`<dt>SLA</dt><dd>${slaLeft < 0 ? html`<span class="sla breached">overdue ${duration(-slaLeft)}</span>` : html`<span class="sla ok">${duration(slaLeft)} left</span>`}</dd>`
        : ''
    }
  </dl>
  ${waiting && unassigned && opts.canClaim ? html`<button type="button" class="claim" data-claim="${c.id}">Claim this case</button>` : ''}
  ${c.state === 'open' && viewer.actor.kind === 'operator' ? handlerForm(c.id, c.handler, opts.agents ?? [], viewer.csrf) : ''}
</section>

<section aria-labelledby="h-why" class="card" id="why">
  <h2 id="h-why">Why it is ${c.handler.kind === 'agent' ? 'with the AI agent' : 'with a human'}</h2>
  ${
    why === undefined
      ? html`<p class="muted">No decision recorded.</p>`
      : html`<p>Rule <span class="rule">${why.rule}</span>${why.trigger === '' ? '' : html`, trigger <span class="badge">${why.trigger}</span>`}: ${why.reason}</p>
  ${Object.keys(why.reads).length > 0 ? html`<p>Signal values it read: <span class="mono">${readsText(why.reads)}</span></p>` : ''}`
  }
</section>

<div class="two">
<section aria-labelledby="h-conv" class="card">
  <h2 id="h-conv">Conversation <small>(redacted)</small></h2>
  ${conversation(v)}
</section>
<section aria-labelledby="h-timeline" class="card">
  <h2 id="h-timeline">Handler timeline</h2>
  ${timeline(v)}
</section>
</div>

<section aria-labelledby="h-actions" class="card" id="actions">
  <h2 id="h-actions">Pending actions</h2>
  ${opts.actions ?? html`<p class="muted">No pending action.</p>`}
  ${confirmationsList(v, opts.now)}
</section>

<section aria-labelledby="h-calls" class="card" id="calls">
  <h2 id="h-calls">Tool calls</h2>
  ${toolCalls(v)}
</section>

<section aria-labelledby="h-decisions" class="card">
  <h2 id="h-decisions">Decisions</h2>
  ${decisionsTable(v)}
</section>

<section aria-labelledby="h-audit" class="card">
  <h2 id="h-audit">Audit proof</h2>
  <p id="audit-head-status" class="muted">Checking each entry against the latest signed tree head…</p>
  <table class="grid" id="audit-proofs" data-case="${c.id}">
    <caption class="visually-hidden">Audit entries of this case and their inclusion proofs</caption>
    <thead><tr><th scope="col">Seq</th><th scope="col">Event</th><th scope="col">At</th><th scope="col">Proof status</th></tr></thead>
    <tbody><tr><td colspan="4" class="muted">Loading…</td></tr></tbody>
  </table>
</section>`
  return layout({ title: `Case ${c.subject || c.id}`, page: 'case', viewer, body })
}

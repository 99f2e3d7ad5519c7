import type { Handler } from '../../cases/case.js'
import type { DecisionRecord } from '../../cases/records.js'
import type { Services } from '../../http/services.js'
import { slaLeftSeconds } from '../../queues/priority.js'
import { html, type SafeHtml } from '../html.js'
import { duration, handlerLabel, layout, time, type Viewer } from '../layout.js'

export const PAGE_SIZE = 50
/** The queue reads at most this many items per queue to merge them; a backlog beyond it is not shown. */
const MAX_PER_QUEUE = 5000

export interface QueueRow {
  readonly id: string
  readonly subject: string
  readonly customerId: string
  readonly channel: string
  readonly handler: Handler | undefined
  readonly queue: string
  readonly position: number
  readonly waitingSince: string
  readonly slaSeconds: number
  readonly slaLeftS: number
  readonly breached: boolean
  readonly risky: boolean
  readonly tier: string
  readonly risk: readonly string[]
  readonly assignee: string | null
}

export interface QueueWhy {
  readonly rule: string
  readonly trigger: string
  readonly reason: string
  readonly reads: Readonly<Record<string, unknown>>
}

export interface QueuePage {
  readonly rows: readonly (QueueRow & { readonly why: QueueWhy | undefined })[]
  readonly total: number
  readonly page: number
  readonly pages: number
  readonly queues: readonly { readonly id: string; readonly depth: number }[]
  readonly queue: string | undefined
}

/**
 * The queues' work items (the queues capability's priority: SLA deadline pulled forward by tier and risk, breached
 * first), waiting ones first and then the claimed, merged across queues by that rank; one page of them with their
 * cases and the decision that put each there.
 */
export async function loadQueue(
  s: Services,
  now: Date,
  opts: { readonly page: number; readonly queue?: string | undefined },
): Promise<QueuePage> {
  const sla = new Map(s.workspace.queues.map((q) => [q.id, q.slaSeconds]))
  const ids = s.workspace.queues.map((q) => q.id).filter((id) => opts.queue === undefined || id === opts.queue)
  const perQueue = await Promise.all(
    ids.map((id) => s.store.listQueueItems(id, { limit: MAX_PER_QUEUE, assigned: true })),
  )
  const items = perQueue.flat()
  items.sort(
    (a, b) =>
      Number(a.operatorId !== null) - Number(b.operatorId !== null) ||
      a.rank - b.rank ||
      a.caseId.localeCompare(b.caseId),
  )
  const pages = Math.max(1, Math.ceil(items.length / PAGE_SIZE))
  const page = Math.min(Math.max(1, opts.page), pages)
  const slice = items.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE)
  const rows = await Promise.all(
    slice.map(async (it, i) => {
      const [c, decisions] = await Promise.all([s.store.getCase(it.caseId), s.store.listDecisions(it.caseId)])
      const why = whyOf(decisions, it.enqueuedAt)
      const rule = it.reason.rules[0] ?? why?.rule ?? ''
      return {
        id: it.caseId,
        subject: c?.subject ?? '',
        customerId: c?.customerId ?? '',
        channel: c?.channel ?? '',
        handler: c?.handler,
        queue: it.queue,
        position: (page - 1) * PAGE_SIZE + i + 1,
        waitingSince: it.enqueuedAt,
        slaSeconds: sla.get(it.queue) ?? 1800,
        slaLeftS: slaLeftSeconds(it.slaDue, now),
        breached: it.breached || Date.parse(it.slaDue) < now.getTime(),
        risky: it.risky,
        tier: it.tier,
        risk: Object.entries(c?.risk ?? {})
          .filter(([, v]) => v === true)
          .map(([k]) => k),
        assignee: it.operatorId,
        // The queue's own record of why; the signal values come from the decision that matched the same rule.
        why: {
          rule,
          trigger: it.reason.trigger,
          reason: it.reason.reason,
          reads: why !== undefined && why.rule === rule ? why.reads : {},
        },
      }
    }),
  )
  const summary = await s.store.queueSummary()
  return {
    rows,
    total: items.length,
    page,
    pages,
    queue: opts.queue,
    queues: s.workspace.queues.map((q) => ({ id: q.id, depth: summary[q.id]?.waiting ?? 0 })),
  }
}

/** The decision that gave the case its current handler: the last one taken when it entered that handler. */
export function whyOf(decisions: readonly DecisionRecord[], since: string): QueueWhy | undefined {
  const sinceMs = Date.parse(since)
  const d =
    decisions.findLast((x) => Date.parse(x.at) <= sinceMs && x.kind === 'route') ?? decisions.findLast(() => true)
  if (d === undefined) return undefined
  const explanation = (d.data.explanation ?? []) as readonly {
    id?: string
    reason?: string
    reads?: Record<string, unknown>
  }[]
  const first = explanation[0]
  const rules = (d.data.rules ?? []) as readonly string[]
  return {
    rule: first?.id ?? rules[0] ?? '',
    trigger: typeof d.data.trigger === 'string' ? d.data.trigger : '',
    reason: first?.reason ?? '',
    reads: first?.reads ?? {},
  }
}

export function readsText(reads: Readonly<Record<string, unknown>>): string {
  return Object.entries(reads)
    .map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
    .join(', ')
}

function slaCell(r: QueueRow): SafeHtml {
  const cls = r.slaLeftS < 0 ? 'sla breached' : r.slaLeftS < r.slaSeconds * 0.25 ? 'sla soon' : 'sla ok'
  const text = r.slaLeftS < 0 ? `overdue ${duration(-r.slaLeftS)}` : `${duration(r.slaLeftS)} left`
  return html`<span class="${cls}">${text}</span>`
}

/** The rows of the queue table; also served alone for live refresh. */
export function queueRows(p: QueuePage, canClaim: boolean): SafeHtml {
  if (p.rows.length === 0) {
    return html`<tr><td colspan="7" class="empty">No case is waiting for a human.</td></tr>`
  }
  return html`${p.rows.map(
    (r) => html`<tr data-case="${r.id}"${r.assignee === null ? '' : html` class="claimed"`}>
  <td><span class="prio ${r.breached ? 'p1' : r.risky ? 'p2' : 'p3'}">${r.position}</span>${r.breached ? html`<br><span class="badge risk">breached</span>` : ''}${
    r.tier !== '' && r.tier !== 'standard' ? html`<br><span class="badge">${r.tier}</span>` : ''
  }</td>
  <td>${slaCell(r)}<br><small>since ${time(r.waitingSince)}</small></td>
  <th scope="row"><a href="/console/cases/${encodeURIComponent(r.id)}">${r.subject || r.id}</a><br><small class="mono">${r.id}</small></th>
  <td>${r.handler === undefined ? r.queue : handlerLabel(r.handler)}${r.risk.length > 0 ? html`<br>${r.risk.map((k) => html`<span class="badge risk">${k}</span> `)}` : ''}</td>
  <td>${
    r.why === undefined
      ? '—'
      : html`<span class="rule">${r.why.rule}</span>${r.why.trigger === '' ? '' : html` <span class="badge">${r.why.trigger}</span>`}<br><small>${r.why.reason}</small>${
          Object.keys(r.why.reads).length > 0 ? html`<br><small class="mono">${readsText(r.why.reads)}</small>` : ''
        }`
  }</td>
  <td>${r.customerId}<br><small>${r.channel}</small></td>
  <td class="owner">${
    r.assignee !== null
      ? html`<span class="badge">claimed by ${r.assignee}</span>`
      : canClaim
        ? html`<button type="button" class="claim" data-claim="${r.id}" aria-label="Claim ${r.subject || r.id}">Claim</button>`
        : html`<span class="muted">unassigned</span>`
  }</td>
</tr>`,
  )}`
}

export function queueSummary(p: QueuePage): SafeHtml {
  return html`<p id="queue-summary" aria-live="polite"><strong data-total="${p.total}">${p.total}</strong> waiting${
    p.queue === undefined ? '' : html` in ${p.queue}`
  } · page ${p.page} of ${p.pages}</p>`
}

export function queuePage(viewer: Viewer, p: QueuePage, canClaim: boolean): SafeHtml {
  const href = (page: number) =>
    `/console/queue?page=${page}${p.queue === undefined ? '' : `&queue=${encodeURIComponent(p.queue)}`}`
  const body = html`
<form method="get" action="/console/queue" class="filters">
  <label for="queue-filter">Queue</label>
  <select id="queue-filter" name="queue">
    <option value="">All queues</option>
    ${p.queues.map(
      (q) => html`<option value="${q.id}"${q.id === p.queue ? html` selected` : ''}>${q.id} (${q.depth})</option>`,
    )}
  </select>
  <button type="submit">Filter</button>
</form>
${queueSummary(p)}
<table class="grid" id="queue" data-live="queue" data-page="${p.page}" data-queue="${p.queue ?? ''}">
  <caption class="visually-hidden">Cases waiting for a human, most urgent first</caption>
  <thead><tr>
    <th scope="col">#</th><th scope="col">SLA</th><th scope="col">Case</th><th scope="col">Handler</th>
    <th scope="col">Why it is here</th><th scope="col">Customer</th><th scope="col">Owner</th>
  </tr></thead>
  <tbody id="queue-rows">${queueRows(p, canClaim)}</tbody>
</table>
<nav aria-label="Pages" class="pager">
  ${p.page > 1 ? html`<a href="${href(p.page - 1)}" rel="prev">← Previous</a>` : ''}
  ${p.page < p.pages ? html`<a href="${href(p.page + 1)}" rel="next">Next →</a>` : ''}
</nav>`
  return layout({ title: 'Queue', page: 'queue', viewer, body })
}

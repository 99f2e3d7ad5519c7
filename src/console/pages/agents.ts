import type { Services } from '../../http/services.js'
import type { AgentRecord } from '../../identity/principals.js'
import { type PrivilegeReport, privilegeReport } from '../../identity/registry.js'
import { html, type SafeHtml } from '../html.js'
import { layout, time, type Viewer } from '../layout.js'

const PERIOD_DAYS = 30

export interface AgentsView {
  readonly agents: readonly (AgentRecord & { readonly report: PrivilegeReport | undefined })[]
  readonly from: Date
}

/** Registered agents with the identity capability's privilege report over the last 30 days. */
export async function loadAgents(s: Services): Promise<AgentsView> {
  const to = s.authority.now()
  const from = new Date(to.getTime() - PERIOD_DAYS * 86_400_000)
  const operators = new Set((await s.store.listOperators()).map((o) => o.id))
  const [agents, reports] = await Promise.all([
    s.store.listAgents(),
    privilegeReport(s.authority, from, to, (o) => operators.has(o) || /^[^@\s]+@[^@\s]+$/.test(o)),
  ])
  const byId = new Map(reports.map((r) => [r.agentId, r]))
  return { agents: agents.map((a) => ({ ...a, report: byId.get(a.id) })), from }
}

function lifecycleForm(a: AgentRecord, csrf: string): SafeHtml {
  const verbs =
    a.state === 'active'
      ? [['suspend', 'Suspend']]
      : a.state === 'suspended' || a.state === 'provisioned'
        ? [['activate', 'Activate']]
        : []
  if (verbs.length === 0) return html``
  return html`<form class="lifecycle" data-agent="${a.id}">
  <input type="hidden" name="_csrf" value="${csrf}">
  <label for="why-${a.id}">Reason</label>
  <input id="why-${a.id}" name="reason" required maxlength="1000" size="18">
  ${verbs.map(([verb, label]) => html`<button type="submit" name="verb" value="${verb}" class="${verb === 'suspend' ? 'danger' : ''}">${label}</button>`)}
  <p class="result" role="status"></p>
</form>`
}

export function agentsPage(viewer: Viewer, v: AgentsView): SafeHtml {
  const admin = viewer.role === 'admin'
  const body = html`
<p>Every AI agent is a workload identity with a named human owner. Granted tools are the most it may ever use; policy
decides each call. Used tools count the actions it asked for since ${time(v.from.toISOString())}.</p>
<table class="grid" id="agents">
  <caption class="visually-hidden">AI agents</caption>
  <thead><tr><th scope="col">Agent</th><th scope="col">Owner</th><th scope="col">Lifecycle</th><th scope="col">Granted tools (used)</th><th scope="col">Outstanding credentials</th><th scope="col">Review</th>${
    admin ? html`<th scope="col">Change</th>` : ''
  }</tr></thead>
  <tbody>${v.agents.map((a) => {
    const used = a.report?.used ?? {}
    return html`<tr data-agent="${a.id}">
    <th scope="row">${a.id}<br><small>${a.purpose}</small><br><small class="mono">${a.model}</small></th>
    <td>${a.owner}</td>
    <td><span class="badge state-${a.state}" data-state="${a.state}">${a.state}</span><br><small>since ${time(a.updatedAt)}</small></td>
    <td>${a.tools.map((t) => html`<span class="tool${(used[t] ?? 0) === 0 ? ' unused' : ''}">${t} (${used[t] ?? 0})</span> `)}${
      (a.report?.unused.length ?? 0) > 0
        ? html`<br><small>granted but unused: ${a.report?.unused.join(', ')}</small>`
        : ''
    }</td>
    <td data-outstanding="${a.report?.outstandingCredentials ?? 0}">${a.report?.outstandingCredentials ?? 0}</td>
    <td>${a.reviewedAt === null ? html`<span class="muted">never reviewed</span>` : html`${time(a.reviewedAt)} by ${a.reviewedBy ?? ''}`}${
      (a.report?.findings.length ?? 0) > 0
        ? html`<ul class="findings">${a.report?.findings.map((f) => html`<li>${f}</li>`)}</ul>`
        : ''
    }</td>
    ${admin ? html`<td>${lifecycleForm(a, viewer.csrf)}</td>` : ''}
  </tr>`
  })}</tbody>
</table>`
  return layout({ title: 'Agents', page: 'agents', viewer, body })
}

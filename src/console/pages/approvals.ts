import { type ApprovalRecord, eligibility } from '../../approvals/approval.js'
import type { Actor } from '../../cases/intake.js'
import type { Services } from '../../http/services.js'
import type { ActionRecord } from '../../tools/action.js'
import { html, type SafeHtml } from '../html.js'
import { duration, layout, time, type Viewer } from '../layout.js'

export interface ApprovalItem {
  readonly approval: ApprovalRecord
  readonly action: ActionRecord | undefined
  /** Why this viewer may not decide it; null when they may. */
  readonly blocked: string | null
}

export interface ApprovalsView {
  readonly pending: readonly ApprovalItem[]
  readonly decided: readonly ApprovalItem[]
}

const MAX = 500
const DECIDED_SHOWN = 20

/** The approvals, and for each whether this viewer may decide it: the approvals capability's own eligibility rule. */
export async function loadApprovals(
  s: Services,
  actor: Actor,
  now: Date,
  filter: { readonly caseId?: string } = {},
): Promise<ApprovalsView> {
  const operator = actor.kind === 'operator' ? await s.store.getOperator(actor.id) : undefined
  const decider = {
    kind: actor.kind === 'operator' && operator === undefined ? 'unregistered operator key' : actor.kind,
    id: actor.id,
    roles: operator?.roles ?? [],
  }
  const [pending, approved, denied] = await Promise.all([
    s.store.listApprovals({ state: 'pending', limit: MAX }),
    s.store.listApprovals({ state: 'approved', limit: MAX }),
    s.store.listApprovals({ state: 'denied', limit: MAX }),
  ])
  const mine = (a: ApprovalRecord) => filter.caseId === undefined || a.caseId === filter.caseId
  const withAction = (a: ApprovalRecord) =>
    s.store.getAction(a.actionId).then((action) => {
      const problem = a.state === 'pending' ? eligibility(a, decider, now) : null
      return { approval: a, action, blocked: problem?.message ?? null }
    })
  const decided = [...approved, ...denied]
    .filter(mine)
    .sort((a, b) => (b.decidedAt ?? '').localeCompare(a.decidedAt ?? ''))
    .slice(0, DECIDED_SHOWN)
  return {
    pending: await Promise.all(pending.filter(mine).map(withAction)),
    decided: await Promise.all(decided.map(withAction)),
  }
}

function params(a: ApprovalRecord): SafeHtml {
  return html`<pre class="params" aria-label="Exact parameters">${JSON.stringify(a.params, null, 2)}</pre>`
}

function actionState(action: ActionRecord | undefined): SafeHtml {
  if (action === undefined) return html`<span class="muted">no action</span>`
  const result =
    action.resultStatus === null
      ? ''
      : ` · connector answered ${action.resultStatus}${action.error ? ` (${action.error})` : ''}`
  return html`<span class="action-state state-${action.state}" data-action-state="${action.state}">${action.state}${result}</span>`
}

function pendingItem(it: ApprovalItem, now: Date, csrf: string): SafeHtml {
  const a = it.approval
  const left = (Date.parse(a.expiresAt) - now.getTime()) / 1000
  const reasonId = `reason-${a.id}`
  return html`<article class="card approval" data-approval="${a.id}" aria-labelledby="t-${a.id}">
  <h2 id="t-${a.id}"><span class="tool">${a.tool}</span> on <a href="/console/cases/${encodeURIComponent(a.caseId)}">${a.caseId}</a></h2>
  <p>Requested by <strong>${a.requester}</strong> ${time(a.createdAt)} · rule <span class="rule">${a.rule}</span> · needs role <span class="badge">${a.approverRole}</span> · expires in ${duration(left)}</p>
  ${params(a)}
  <p><small>Bound to digest <span class="mono">${a.digest}</span>: only exactly these parameters can run.</small></p>
  ${
    it.blocked === null
      ? html`<form class="decide" data-approval="${a.id}">
    <input type="hidden" name="_csrf" value="${csrf}">
    <label for="${reasonId}">Reason (kept in the audit log)
      <textarea id="${reasonId}" name="reason" rows="2" cols="48" required minlength="1" maxlength="2000"></textarea>
    </label>
    <button type="submit" name="decision" value="approve">Approve</button>
    <button type="submit" name="decision" value="deny" class="danger">Deny</button>
    <p class="result" role="status"></p>
  </form>`
      : html`<p class="blocked" role="note">You cannot decide this approval: ${it.blocked}</p>`
  }
</article>`
}

function decidedRow(it: ApprovalItem): SafeHtml {
  const a = it.approval
  return html`<tr data-approval="${a.id}">
  <td><span class="tool">${a.tool}</span><br><small class="mono">${JSON.stringify(a.params)}</small></td>
  <td><a href="/console/cases/${encodeURIComponent(a.caseId)}">${a.caseId}</a></td>
  <td><span class="badge">${a.state}</span> by ${a.decidedBy ?? '—'}${a.decidedAt === null ? '' : html` ${time(a.decidedAt)}`}<br><small>${a.reason ?? ''}</small></td>
  <td>${actionState(it.action)}</td>
  <td>${a.decidedAt === null ? '—' : duration((Date.parse(a.decidedAt) - Date.parse(a.createdAt)) / 1000)}</td>
</tr>`
}

/** The inbox's live part: pending approvals and the latest decided ones. */
export function approvalsBody(v: ApprovalsView, now: Date, csrf: string): SafeHtml {
  return html`<section aria-labelledby="h-pending">
  <h2 id="h-pending">Pending <span class="badge" data-pending-count="${v.pending.length}">${v.pending.length}</span></h2>
  ${v.pending.length === 0 ? html`<p class="muted">No approval is pending.</p>` : v.pending.map((it) => pendingItem(it, now, csrf))}
</section>
<section aria-labelledby="h-decided" class="card">
  <h2 id="h-decided">Recently decided</h2>
  ${
    v.decided.length === 0
      ? html`<p class="muted">Nothing decided yet.</p>`
      : html`<table class="grid">
    <caption class="visually-hidden">Recently decided approvals and what their actions did</caption>
    <thead><tr><th scope="col">Action</th><th scope="col">Case</th><th scope="col">Decision</th><th scope="col">Execution</th><th scope="col">Wait</th></tr></thead>
    <tbody>${v.decided.map(decidedRow)}</tbody>
  </table>`
  }
</section>`
}

export function approvalsPage(viewer: Viewer, v: ApprovalsView, now: Date): SafeHtml {
  const body = html`
<p>Actions an AI agent proposed that a policy rule gives to a human. Approve or deny with a reason; an approved action
runs once, with exactly the parameters shown. Only an operator holding the rule's role, who is not the requester, may
decide.</p>
<div id="approvals" data-live="approvals">${approvalsBody(v, now, viewer.csrf)}</div>`
  return layout({ title: 'Approvals', page: 'approvals', viewer, body })
}

/** Pending actions of one case, for the case page. */
export function caseActions(v: ApprovalsView, now: Date, csrf: string): SafeHtml {
  if (v.pending.length === 0 && v.decided.length === 0) return html`<p class="muted">No pending action.</p>`
  return html`${v.pending.map((it) => pendingItem(it, now, csrf))}${
    v.decided.length === 0
      ? ''
      : html`<table class="grid"><caption>Decided actions</caption>
  <thead><tr><th scope="col">Action</th><th scope="col">Case</th><th scope="col">Decision</th><th scope="col">Execution</th><th scope="col">Wait</th></tr></thead>
  <tbody>${v.decided.map(decidedRow)}</tbody></table>`
  }`
}

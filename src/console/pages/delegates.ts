import type { GrantRecord } from '../../delegation/grants.js'
import type { DelegateRecord } from '../../delegation/principals.js'
import type { Services } from '../../http/services.js'
import { html, type SafeHtml } from '../html.js'
import { layout, time, type Viewer } from '../layout.js'

const LIMIT = 200

export interface DelegatesView {
  readonly delegates: readonly (DelegateRecord & { readonly activeGrants: number })[]
  /** The grants shown: of one customer, of one delegate, or the newest of all. */
  readonly grants: readonly GrantRecord[]
  readonly filter: { readonly customer?: string | undefined; readonly delegate?: string | undefined }
  readonly scopes: readonly { readonly name: string; readonly description: string }[]
  readonly maxChain: number
}

/** Delegates with their active grant counts, and the grants of a customer or a delegate (or the newest). */
export async function loadDelegates(
  s: Services,
  now: Date,
  filter: { readonly customer?: string | undefined; readonly delegate?: string | undefined },
): Promise<DelegatesView> {
  const iso = now.toISOString()
  const delegates = await s.store.listDelegates()
  const counted = await Promise.all(
    delegates.map(async (d) => ({
      ...d,
      activeGrants: (await s.store.listGrants({ delegateId: d.id, activeAt: iso, limit: 1000 })).length,
    })),
  )
  const grants = await s.store.listGrants({
    limit: LIMIT,
    ...(filter.customer === undefined ? {} : { customerId: filter.customer }),
    ...(filter.delegate === undefined ? {} : { delegateId: filter.delegate }),
  })
  const spec = s.authority.delegation
  return {
    delegates: counted,
    grants,
    filter,
    scopes: [...spec.scopes.values()].map((x) => ({ name: x.name, description: x.description })),
    maxChain: spec.maxChain,
  }
}

function stateOf(g: GrantRecord, now: Date): string {
  return g.state === 'active' && now.getTime() >= Date.parse(g.expiresAt) ? 'expired' : g.state
}

function grantsTable(v: DelegatesView, now: Date): SafeHtml {
  if (v.grants.length === 0) return html`<p class="muted">No grant.</p>`
  return html`<table class="grid" id="grants">
<caption class="visually-hidden">Grants</caption>
<thead><tr><th scope="col">Grant</th><th scope="col">Customer</th><th scope="col">Delegate</th><th scope="col">Scopes and limits</th><th scope="col">Granted</th><th scope="col">State</th></tr></thead>
<tbody>${v.grants.map((g) => {
    const state = stateOf(g, now)
    const limits = Object.entries(g.limits)
    return html`<tr data-grant="${g.id}" data-state="${state}">
  <th scope="row"><span class="mono">${g.id}</span>${
    g.parentId === null
      ? ''
      : html`<br><small>sub-delegation of <span class="mono">${g.parentId}</span> (hop ${g.depth})</small>`
  }${g.note === '' ? '' : html`<br><small>${g.note}</small>`}</th>
  <td><a href="/console/delegates?customer=${encodeURIComponent(g.customerId)}">${g.customerId}</a></td>
  <td><a href="/console/delegates?delegate=${encodeURIComponent(g.delegateId)}">${g.delegateId}</a>${g.maySubdelegate ? html`<br><small>may sub-delegate</small>` : ''}</td>
  <td>${g.scopes.map((x) => html`<span class="tool">${x}</span> `)}${
    limits.length === 0
      ? ''
      : html`<br><small>limits: ${limits.map(([k, t]) => html`<span class="mono">${k}: ${t}</span> `)}</small>`
  }</td>
  <td>${time(g.createdAt)}<br><small>by ${g.grantedBy.kind} ${g.grantedBy.id}</small><br><small>until ${time(g.expiresAt)}</small></td>
  <td><span class="badge state-${state}">${state}</span>${
    g.revokedAt === null
      ? ''
      : html`<br><small>${time(g.revokedAt)}${g.revokeReason === null ? '' : ` · ${g.revokeReason}`}</small>`
  }</td>
</tr>`
  })}</tbody></table>`
}

export function delegatesPage(viewer: Viewer, v: DelegatesView, now: Date): SafeHtml {
  const title =
    v.filter.customer !== undefined
      ? `Grants of customer ${v.filter.customer}`
      : v.filter.delegate !== undefined
        ? `Grants of delegate ${v.filter.delegate}`
        : `Latest grants (at most ${LIMIT})`
  const body = html`
<p>Delegates are customers' own AI agents. They hold no authority of their own: a customer grants one scopes
(through the helpdesk), the delegate exchanges the grant for a five-minute token, and every request re-checks each hop
of its chain. A delegate asks; only the customer confirms. Chains: at most ${v.maxChain} delegates.</p>
<table class="grid" id="delegates">
  <caption class="visually-hidden">Delegates</caption>
  <thead><tr><th scope="col">Delegate</th><th scope="col">Vendor and contact</th><th scope="col">Lifecycle</th><th scope="col">Active grants</th></tr></thead>
  <tbody>${v.delegates.map(
    (d) => html`<tr data-delegate="${d.id}">
    <th scope="row"><a href="/console/delegates?delegate=${encodeURIComponent(d.id)}">${d.id}</a><br><small>${d.name}</small></th>
    <td>${d.vendor}<br><small>${d.contact}</small></td>
    <td><span class="badge state-${d.state}" data-state="${d.state}">${d.state}</span><br><small>since ${time(d.updatedAt)}</small></td>
    <td>${d.activeGrants}</td>
  </tr>`,
  )}</tbody>
</table>
<form method="get" action="/console/delegates" class="filter">
  <label for="grants-customer">Customer</label>
  <input id="grants-customer" name="customer" maxlength="128" value="${v.filter.customer ?? ''}">
  <button type="submit">Show grants</button>
</form>
<h2>${title}</h2>
${grantsTable(v, now)}
<h2>Scopes this workspace declares</h2>
${
  v.scopes.length === 0
    ? html`<p class="muted">None: the workspace has no delegation.yaml, so no grant can be made.</p>`
    : html`<ul>${v.scopes.map((x) => html`<li><span class="tool">${x.name}</span> ${x.description}</li>`)}</ul>`
}`
  return layout({ title: 'Delegates', page: 'delegates', viewer, body })
}

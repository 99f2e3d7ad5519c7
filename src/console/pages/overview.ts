import type { OverviewSnapshot } from '../../quality/overview.js'
import { html, type SafeHtml } from '../html.js'
import { ASSET, layout, type Viewer } from '../layout.js'

const CHARTS = [
  { id: 'chart-handler', title: 'Cases by first handler', note: 'new cases per interval, by who got them first' },
  {
    id: 'chart-escalations',
    title: 'Escalations by cause',
    note: 'cases reaching a human per interval (at intake or from the AI), by cause',
  },
  { id: 'chart-handoffs', title: 'Handoffs per case', note: 'number of cases by AI↔human handoff count (bounces)' },
  { id: 'chart-approval-wait', title: 'Approval wait', note: 'mean seconds from request to decision' },
  { id: 'chart-sla', title: 'SLA attainment', note: '% of escalations an operator took within the queue SLA' },
] as const

export function overviewPage(viewer: Viewer, s: OverviewSnapshot): SafeHtml {
  const body = html`
<p>Totals: <strong>${s.totals.cases}</strong> cases, <strong>${s.totals.escalations}</strong> escalations,
<strong>${s.totals.approvals}</strong> approvals requested; ${s.totals.entries} audit entries read. Intervals of ${s.bucketMinutes} min.</p>
<div class="charts">
${CHARTS.map(
  (c) => html`<figure class="card chart">
  <figcaption><h2 id="${c.id}-title">${c.title}</h2><small>${c.note}</small></figcaption>
  <div class="canvas-box"><canvas id="${c.id}" role="img" aria-labelledby="${c.id}-title"></canvas></div>
</figure>`,
)}
</div>
<details class="card">
  <summary>The same numbers as a table</summary>
  <table class="grid">
    <caption class="visually-hidden">Overview numbers per interval</caption>
    <thead><tr><th scope="col">Interval from</th>${Object.keys(s.casesByHandler).map((k) => html`<th scope="col">new: ${k}</th>`)}${Object.keys(
      s.escalationsByCause,
    ).map(
      (k) => html`<th scope="col">escalated: ${k}</th>`,
    )}<th scope="col">approval wait (s)</th><th scope="col">SLA met %</th></tr></thead>
    <tbody>${s.buckets.map(
      (b, i) =>
        html`<tr><th scope="row">${b}</th>${Object.values(s.casesByHandler).map((v) => html`<td>${v[i] ?? 0}</td>`)}${Object.values(
          s.escalationsByCause,
        ).map(
          (v) => html`<td>${v[i] ?? 0}</td>`,
        )}<td>${s.approvalWait[i] ?? '—'}</td><td>${s.slaAttainment[i] ?? '—'}</td></tr>`,
    )}</tbody>
  </table>
</details>`
  return layout({ title: 'Overview', page: 'overview', viewer, body, scripts: [ASSET.chart] })
}

import type { QualityReport } from '../../quality/figures.js'
import { html, raw, type SafeHtml } from '../html.js'
import { ASSET, duration, layout, type Viewer } from '../layout.js'

const pct = (r: number | null) => (r === null ? '—' : `${(r * 100).toFixed(1)} %`)
const secs = (s: number | null) => (s === null ? '—' : duration(s))

const CHARTS = [
  { id: 'q-causes', title: 'Escalations by cause', note: 'cases reaching a human, at intake or from the AI' },
  { id: 'q-bounces', title: 'Bounces per case', note: 'AI↔human handoffs, against the ping-pong cap' },
  { id: 'q-ownership', title: 'Exception ownership', note: 'escalations against the queue SLA' },
  { id: 'q-approvals', title: 'Approvals and confirmations', note: 'by state' },
] as const

/** The Quality page: the figures of GET /v1/quality as cards, charts and lists, and a policy preview. */
export function qualityPage(
  viewer: Viewer,
  r: QualityReport,
  o: { readonly since: string; readonly queues: readonly string[]; readonly error?: string | undefined },
): SafeHtml {
  const e = r.escalations
  const own = r.ownership
  const nd = r.consistency.nearDuplicates
  const rp = r.consistency.replay
  const linkCases = viewer.role !== 'analyst'
  const caseRef = (id: string) =>
    linkCases ? html`<a href="/console/cases/${id}">${id}</a>` : html`<span class="mono">${id}</span>`
  const data = JSON.stringify({
    causes: e.byCause,
    bounces: r.pingPong.distribution,
    ownership: { within: own.ownedWithinSla, late: own.late, pending: own.pending, withdrawn: own.withdrawn },
    approvals: r.approvals.byState,
    confirmations: r.confirmations.byState,
  }).replaceAll('<', '\\u003c')
  const cards: readonly [string, string, string][] = [
    [
      'Automation',
      pct(r.automation.rate),
      `${r.automation.automated} of ${r.automation.closed} closed cases never left the AI`,
    ],
    [
      'Escalation',
      pct(e.rate),
      `${e.cases} of ${r.cases.opened} cases; ${e.atIntake} at intake, ${e.fromAgent} from the AI`,
    ],
    [
      'Unmanaged',
      String(r.unmanaged.count),
      `${r.unmanaged.notPickedUpWithinSla} not taken within the SLA, ${r.unmanaged.noReason} without a reason`,
    ],
    [
      'Owned within SLA',
      pct(own.rate),
      `time to human p50 ${secs(own.timeToHumanS.p50)}, p90 ${secs(own.timeToHumanS.p90)}`,
    ],
    [
      'Replay consistency',
      pct(rp?.rate ?? null),
      rp === null ? 'no decisions' : `${rp.same} of ${rp.replayed} sampled decisions replay`,
    ],
    [
      'Near-duplicates routed apart',
      pct(nd.rate),
      `${nd.differing} of ${nd.pairs} pairs (${nd.messages} first messages)`,
    ],
    ['Reopened', pct(own.reopen.rate), `${own.reopen.reopened} of ${own.reopen.closedEscalated} closed escalations`],
    ['At the ping-pong cap', String(r.pingPong.atOrOverCap), `cap ${r.pingPong.cap} bounces`],
    [
      'Bounced from a human owner',
      String(r.pingPong.fromHumanOwned),
      `back to AI from a case a person owned, in ${r.pingPong.fromHumanOwnedCaseIds.length} cases`,
    ],
  ]
  const body = html`
<form class="card filters" method="get" action="/console/quality">
  <label for="since">Cases opened since</label>
  <input id="since" name="since" value="${o.since}" size="22" aria-describedby="since-hint">
  <small id="since-hint">a duration (7d, 24h) or a date</small>
  <label for="queue">Queue</label>
  <select id="queue" name="queue"><option value="">all</option>${o.queues.map(
    (q) => html`<option${q === r.filters.queue ? html` selected` : ''}>${q}</option>`,
  )}</select>
  <label for="agent">Agent</label>
  <input id="agent" name="agent" value="${r.filters.agent ?? ''}" size="16">
  <button type="submit">Show</button>
</form>
${o.error === undefined ? '' : html`<p class="error" role="alert">${o.error}</p>`}
<p>${r.cases.opened} cases opened ${r.window.since.replace('T', ' ').slice(0, 16)} – ${r.window.until.replace('T', ' ').slice(0, 16)} UTC, judged ${r.window.now.replace('T', ' ').slice(0, 16)}. Each figure is defined in the README (Decision quality).</p>
<div class="figures">${cards.map(
    ([title, value, note]) =>
      html`<section class="card figure"><h2>${title}</h2><p class="value">${value}</p><p><small>${note}</small></p></section>`,
  )}</div>
<div class="charts">
${CHARTS.map(
  (c) => html`<figure class="card chart">
  <figcaption><h2 id="${c.id}-title">${c.title}</h2><small>${c.note}</small></figcaption>
  <div class="canvas-box"><canvas id="${c.id}" role="img" aria-labelledby="${c.id}-title"></canvas></div>
</figure>`,
)}
</div>
<script type="application/json" id="quality-data">${raw(data)}</script>
<section class="card" aria-labelledby="h-unmanaged">
  <h2 id="h-unmanaged">Unmanaged escalations</h2>
  ${
    r.unmanaged.items.length === 0
      ? html`<p>None.</p>`
      : html`<table class="grid" id="unmanaged"><caption class="visually-hidden">Unmanaged escalations</caption>
  <thead><tr><th scope="col">Case</th><th scope="col">Queue</th><th scope="col">Cause</th><th scope="col">Why unmanaged</th><th scope="col">Waited</th></tr></thead>
  <tbody>${r.unmanaged.items.map(
    (u) =>
      html`<tr><th scope="row">${caseRef(u.caseId)}</th><td>${u.queue}</td><td>${u.cause.replaceAll('_', ' ')}${u.trigger ? html` (${u.trigger})` : ''}</td><td>${u.reasons.map((x) => x.replaceAll('_', ' ')).join(', ')}</td><td>${secs(u.waitedS)}</td></tr>`,
  )}</tbody></table>${r.unmanaged.truncated ? html`<p><small>The first ${r.unmanaged.items.length} of ${r.unmanaged.count}.</small></p>` : ''}`
  }
</section>
<section class="card" aria-labelledby="h-privileges">
  <h2 id="h-privileges">Privilege use</h2>
  <table class="grid"><caption class="visually-hidden">Tools granted and used per agent</caption>
  <thead><tr><th scope="col">Agent</th><th scope="col">Used</th><th scope="col">Granted, unused</th></tr></thead>
  <tbody>${r.privileges.map(
    (p) =>
      html`<tr><th scope="row">${p.agentId}</th><td>${
        Object.entries(p.used)
          .map(([t, n]) => `${t} ×${n}`)
          .join(', ') || '—'
      }</td><td>${p.unused.join(', ') || '—'}</td></tr>`,
  )}</tbody></table>
</section>
<section class="card" aria-labelledby="h-preview">
  <h2 id="h-preview">Preview a policy on past decisions</h2>
  <p>Paste a candidate policy: every stored decision of the last 30 days is decided again from its stored facts with it,
  and what would change is counted per rule. Nothing is activated.</p>
  <form id="preview-form">
    <label for="candidate">Candidate policy (YAML)</label>
    <textarea id="candidate" name="candidate" rows="12" cols="100" spellcheck="false" required></textarea>
    <button type="submit">Preview</button>
  </form>
  <div id="preview-result" aria-live="polite"></div>
</section>`
  return layout({ title: 'Quality', page: 'quality', viewer, body, scripts: [ASSET.chart] })
}

import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { html, raw } from '../console/html.js'
import type { SimulationReport } from '../simulate/read.js'

/** Chart.js as the console serves it (from node_modules), to inline in the report: the file needs nothing else. */
export async function chartScript(): Promise<string> {
  const dir = dirname(createRequire(import.meta.url).resolve('chart.js'))
  return readFile(join(dir, 'chart.umd.min.js'), 'utf8')
}

const pct = (r: number | null) => (r === null ? '—' : `${(r * 100).toFixed(1)}%`)

/**
 * The simulation as one HTML file: the figures per queue as a table and as charts (waits, SLA breach rate,
 * utilisation against the fewest operators, arrivals per hour of the week), Chart.js inlined. Deterministic: the
 * same report gives the same bytes.
 */
export function simulationHtml(r: SimulationReport, chartJs: string): string {
  const data = JSON.stringify({
    queues: r.queues.map((q) => q.queue),
    p50: r.queues.map((q) => q.waitS.p50),
    p90: r.queues.map((q) => q.waitS.p90),
    sla: r.queues.map((q) => q.slaSeconds),
    breach: r.queues.map((q) => (q.slaBreachRate === null ? null : q.slaBreachRate * 100)),
    util: r.queues.map((q) => (q.utilisation === null ? null : q.utilisation * 100)),
    operators: r.queues.map((q) => q.operators),
    fewest: r.queues.map((q) => q.fewestOperators),
    byHour: r.queues.map((q) => q.arrivalsByHour),
  }).replaceAll('<', '\\u003c')
  const src = r.source.kind === 'csv' ? 'the given arrivals (CSV)' : `the history ${r.source.since} – ${r.source.until}`
  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Baton capacity simulation</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem; color: #1b1b1b; }
table { border-collapse: collapse; margin: 1rem 0; } th, td { padding: .3rem .7rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1.5rem; }
figure { margin: 0; } .box { position: relative; height: 280px; }
</style>
</head>
<body>
<h1>Capacity simulation</h1>
<p>${r.days} day(s) simulated at demand ×${r.demand} (seed ${r.seed}), from ${src}${r.candidate ? `, routed by the candidate policy ${r.candidate.name} v${r.candidate.version}` : ''}. A queue holds its SLA when at least ${pct(r.target)} of its cases are taken within it.</p>
<table>
<caption>Per queue</caption>
<thead><tr><th scope="col">queue</th><th scope="col">arrivals</th><th scope="col">wait p50 (s)</th><th scope="col">wait p90 (s)</th><th scope="col">SLA (s)</th><th scope="col">SLA breached</th><th scope="col">utilisation</th><th scope="col">operators</th><th scope="col">fewest that hold the SLA</th></tr></thead>
<tbody>${r.queues.map(
    (q) =>
      html`<tr><th scope="row">${q.queue}</th><td>${q.arrivals}</td><td>${q.waitS.p50 ?? '—'}</td><td>${q.waitS.p90 ?? '—'}</td><td>${q.slaSeconds}</td><td>${pct(q.slaBreachRate)}</td><td>${pct(q.utilisation)}</td><td>${q.operators}</td><td>${q.fewestOperators ?? '—'}</td></tr>`,
  )}</tbody>
</table>
<div class="charts">
<figure><figcaption>Waiting time p50 and p90 against the SLA (s)</figcaption><div class="box"><canvas id="waits"></canvas></div></figure>
<figure><figcaption>SLA breach rate (%)</figcaption><div class="box"><canvas id="breach"></canvas></div></figure>
<figure><figcaption>Operators: simulated and the fewest that hold the SLA; utilisation (%)</figcaption><div class="box"><canvas id="staff"></canvas></div></figure>
<figure><figcaption>Arrivals per hour of the week (0 = Monday 00:00 UTC)</figcaption><div class="box"><canvas id="arrivals"></canvas></div></figure>
</div>
<script>${raw(chartJs.replaceAll('</script', '<\\/script'))}</script>
<script>
const d = ${raw(data)};
const P = ['#1f5fbf', '#b3261e', '#137333', '#8a4baf', '#b06000', '#00707a', '#5f6368', '#c2185b'];
const opts = { animation: false, responsive: true, maintainAspectRatio: false, plugins: { legend: { position: 'bottom' } } };
new Chart(document.getElementById('waits'), { type: 'bar', data: { labels: d.queues, datasets: [
  { label: 'p50', data: d.p50, backgroundColor: P[0] }, { label: 'p90', data: d.p90, backgroundColor: P[1] },
  { label: 'SLA', data: d.sla, backgroundColor: P[6] }] }, options: opts });
new Chart(document.getElementById('breach'), { type: 'bar', data: { labels: d.queues, datasets: [
  { label: 'breached %', data: d.breach, backgroundColor: P[1] }] }, options: opts });
new Chart(document.getElementById('staff'), { type: 'bar', data: { labels: d.queues, datasets: [
  { label: 'operators', data: d.operators, backgroundColor: P[0] }, { label: 'fewest that hold the SLA', data: d.fewest, backgroundColor: P[2] },
  { label: 'utilisation %', data: d.util, backgroundColor: P[4], type: 'line', yAxisID: 'u' }] },
  options: { ...opts, scales: { u: { position: 'right', min: 0, max: 100 } } } });
new Chart(document.getElementById('arrivals'), { type: 'line', data: { labels: Array.from({ length: 168 }, (_, h) => String(h)),
  datasets: d.queues.map((q, i) => ({ label: q, data: d.byHour[i], borderColor: P[i % P.length], pointRadius: 0 })) }, options: opts });
document.body.dataset.chartsDrawn = '4';
</script>
</body>
</html>
`
  return page.toString()
}

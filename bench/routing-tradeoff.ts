// Redraws docs/routing-tradeoff.svg: unsafe automation against automation as the class thresholds of the example
// policies move, on held-out splits, with each policy's calibrated point marked (README "Intents and routing quality").
// npx tsx bench/routing-tradeoff.ts BANK_TEST.jsonl SHOP_TEST.jsonl   (the splits of `baton intents split`, see README)
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { activePolicyOf, knownNames } from '../src/app.js'
import { readLabelled } from '../src/cli/intents.js'
import { parseIntentClasses } from '../src/intents/classes.js'
import { withIntentSignals } from '../src/intents/detector.js'
import { loadIntentDetector } from '../src/intents/load.js'
import { compilePolicy } from '../src/policy/compile.js'
import { decideRoute } from '../src/policy/evaluate.js'
import { neutralFacts } from '../src/policy/policy-test.js'
import { classThresholds, setClassThresholds } from '../src/policy/thresholds.js'
import type { Facts } from '../src/policy/types.js'
import { analyzeMessage } from '../src/signals/analyze.js'
import { loadWorkspace } from '../src/workspace/workspace.js'

const ROOT = resolve(import.meta.dirname, '..')
const MAPS = join(ROOT, '../shared/data/risk-maps')

interface Point {
  readonly threshold: number | null
  readonly automation: number
  readonly unsafe: number
  readonly approval_full_authority: number
}

/** Both class thresholds set to each t; null: the policy's own (calibrated) thresholds. */
const GRID = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.01]

async function curve(workspace: string, data: string, riskMap: string) {
  const ws = await loadWorkspace(workspace)
  const detector = await loadIntentDetector(ws.dir, undefined)
  if (detector?.model === undefined || detector.classes === undefined) throw new Error(`${workspace}: no model or map`)
  const known = {
    ...knownNames(ws),
    intents: detector.model.labels,
    intentClasses: detector.classes.classes,
  }
  const truth = parseIntentClasses(readFileSync(riskMap, 'utf8'), riskMap, detector.model.labels)
  const source = readFileSync(ws.policyFile, 'utf8')
  const base = activePolicyOf(compilePolicy(source, ws.policyFile, known))
  const rows: { cls: string | undefined; facts: Facts }[] = []
  for (const d of await readLabelled(data)) {
    const a = analyzeMessage(d.text, { terms: base.riskTerms, topics: base.topicTerms })
    const neutral = neutralFacts(base.policy)
    const s = await withIntentSignals(detector, base.policy, a.redactedText, undefined, neutral.signals.custom)
    const { intent, intent_confidence, ...custom } = s.values
    rows.push({
      cls: truth.classOf.get(d.label),
      facts: {
        ...neutral,
        signals: {
          ...neutral.signals,
          intent: String(intent),
          intent_confidence: Number(intent_confidence),
          intent_class: s.intentClass,
          language: a.language,
          secrets: a.secrets.length,
          secret_kinds: a.secretKinds,
          pii: a.piiKinds,
          sensitivity: a.sensitivity,
          risk: a.risk,
          topics: a.topics,
          custom,
        },
      },
    })
  }
  const classes = [...classThresholds(source, ws.policyFile).keys()]
  const at = (text: string, threshold: number | null): Point => {
    const policy = compilePolicy(text, ws.policyFile, known)
    const n: Record<string, number> = {}
    const agent: Record<string, number> = {}
    for (const r of rows) {
      const c = r.cls ?? 'unmapped'
      n[c] = (n[c] ?? 0) + 1
      if (decideRoute(policy, r.facts).handler.kind === 'agent') agent[c] = (agent[c] ?? 0) + 1
    }
    const share = (c: string) => (agent[c] ?? 0) / (n[c] ?? 1)
    return { threshold, automation: share('ai'), unsafe: share('human'), approval_full_authority: share('approval') }
  }
  const points = GRID.map((t) =>
    at(setClassThresholds(source, ws.policyFile, Object.fromEntries(classes.map((c) => [c, t]))).source, t),
  )
  return { points, chosen: at(source, null), thresholds: Object.fromEntries(classThresholds(source, ws.policyFile)) }
}

function svg(series: Record<string, Awaited<ReturnType<typeof curve>>>): string {
  const W = 680
  const H = 440
  const L = 70
  const R = 170
  const T = 40
  const B = 60
  const maxY = 0.06
  const X0 = 0.4
  const x = (v: number) => L + ((v - X0) / (1 - X0)) * (W - L - R)
  const y = (v: number) => H - B - (Math.min(v, maxY) / maxY) * (H - T - B)
  const colors = ['#1f77b4', '#d62728']
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12" role="img">`,
    '<title>Unsafe automation against automation as the class thresholds move, calibrated points marked</title>',
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${(L + W - R) / 2}" y="22" font-size="14" text-anchor="middle">Unsafe automation vs automation as the class thresholds move (held-out test splits)</text>`,
  ]
  for (let i = 4; i <= 10; i++) {
    const v = i / 10
    out.push(`<line x1="${x(v)}" y1="${y(0)}" x2="${x(v)}" y2="${y(maxY)}" stroke="#eee"/>`)
    out.push(`<text x="${x(v)}" y="${y(0) + 16}" text-anchor="middle">${v.toFixed(1)}</text>`)
  }
  for (let i = 0; i <= 6; i++) {
    const v = (maxY * i) / 6
    out.push(`<line x1="${x(X0)}" y1="${y(v)}" x2="${x(1)}" y2="${y(v)}" stroke="#eee"/>`)
    out.push(`<text x="${x(X0) - 6}" y="${y(v) + 4}" text-anchor="end">${(v * 100).toFixed(0)}%</text>`)
  }
  out.push(`<line x1="${x(X0)}" y1="${y(0.005)}" x2="${x(1)}" y2="${y(0.005)}" stroke="#999" stroke-dasharray="4 3"/>`)
  out.push(`<text x="${x(1) + 4}" y="${y(0.005) + 4}" fill="#666">unsafe ≤ 0.5%</text>`)
  out.push(`<line x1="${x(0.9)}" y1="${y(0)}" x2="${x(0.9)}" y2="${y(maxY)}" stroke="#999" stroke-dasharray="4 3"/>`)
  out.push(`<text x="${x(0.9)}" y="${y(maxY) - 6}" text-anchor="middle" fill="#666">automation ≥ 90%</text>`)
  out.push(
    `<text x="${(x(X0) + x(1)) / 2}" y="${H - 18}" text-anchor="middle">automation (share of "ai" messages kept by the AI agent)</text>`,
  )
  out.push(
    `<text transform="translate(18 ${(y(0) + y(maxY)) / 2}) rotate(-90)" text-anchor="middle">unsafe automation ("human" messages kept by the AI)</text>`,
  )
  Object.entries(series).forEach(([name, s], i) => {
    const c = colors[i % colors.length]!
    const visible = s.points.filter((p) => p.automation >= X0)
    const path = visible.map((p, j) => `${j === 0 ? 'M' : 'L'}${x(p.automation).toFixed(1)},${y(p.unsafe).toFixed(1)}`)
    out.push(`<path d="${path.join(' ')}" fill="none" stroke="${c}" stroke-width="2"/>`)
    for (const p of visible) {
      out.push(
        `<circle cx="${x(p.automation).toFixed(1)}" cy="${y(p.unsafe).toFixed(1)}" r="3" fill="${c}"><title>${name} t=${p.threshold}: automation ${(p.automation * 100).toFixed(1)}%, unsafe ${(p.unsafe * 100).toFixed(2)}%</title></circle>`,
      )
    }
    const p = s.chosen
    if (p.automation >= X0) {
      out.push(
        `<circle cx="${x(p.automation).toFixed(1)}" cy="${y(p.unsafe).toFixed(1)}" r="8" fill="none" stroke="${c}" stroke-width="2.5"/>`,
      )
      out.push(
        `<text x="${(x(p.automation) + 10).toFixed(1)}" y="${(y(p.unsafe) - 12 - 14 * i).toFixed(1)}" fill="${c}">${name} calibrated: ${(p.automation * 100).toFixed(1)}%, ${(p.unsafe * 100).toFixed(2)}%</text>`,
      )
    }
    out.push(`<rect x="${x(1) + 12}" y="${T + 20 * i}" width="12" height="12" fill="${c}"/>`)
    out.push(`<text x="${x(1) + 30}" y="${T + 10 + 20 * i}">${name}</text>`)
  })
  out.push(`<text x="${x(1) + 12}" y="${T + 60}" fill="#666">points: both class</text>`)
  out.push(`<text x="${x(1) + 12}" y="${T + 76}" fill="#666">thresholds = t;</text>`)
  out.push(`<text x="${x(1) + 12}" y="${T + 92}" fill="#666">ring: the policy's</text>`)
  out.push(`<text x="${x(1) + 12}" y="${T + 108}" fill="#666">calibrated ones</text>`)
  out.push('</svg>')
  return `${out.join('\n')}\n`
}

const [bankData, shopData] = process.argv.slice(2)
if (bankData === undefined || shopData === undefined) {
  process.stderr.write('usage: tsx bench/routing-tradeoff.ts BANK_TEST.jsonl SHOP_TEST.jsonl\n')
  process.exit(2)
}
const series = {
  bank: await curve(join(ROOT, 'examples/bank'), bankData, join(MAPS, 'banking77.json')),
  shop: await curve(join(ROOT, 'examples/shop'), shopData, join(MAPS, 'bitext.json')),
}
writeFileSync(join(ROOT, 'docs/routing-tradeoff.svg'), svg(series))
const r4 = (v: number) => Math.round(v * 1e4) / 1e4
for (const [name, s] of Object.entries(series)) {
  const fmt = (p: Point) => ({
    t: p.threshold,
    automation: r4(p.automation),
    unsafe: r4(p.unsafe),
    approval_full_authority: r4(p.approval_full_authority),
  })
  process.stdout.write(
    `${JSON.stringify({ workspace: name, thresholds: s.thresholds, chosen: fmt(s.chosen), curve: s.points.map(fmt) })}\n`,
  )
}

import { causeOf, ESCALATION_CAUSES, judge, type QualityOptions } from './figures.js'
import type { CaseState } from './fold.js'

/*
 * The console's Overview: a few of the quality figures as series over time, from the same folded cases and the same
 * definitions (escalation causes, the SLA judgement, bounces). The whole history is shown, in at most 48 buckets.
 */

const MINUTE = 60_000
/** Bucket widths the charts choose from: the smallest that shows the whole range in at most MAX_BUCKETS bars. */
const WIDTHS = [1, 5, 15, 60, 360, 1440].map((m) => m * MINUTE)
const MAX_BUCKETS = 48

export interface OverviewSnapshot {
  readonly bucketMinutes: number
  readonly buckets: readonly string[]
  /** New cases per bucket by the kind of their first handler. */
  readonly casesByHandler: Readonly<Record<string, readonly number[]>>
  /** Escalations per bucket by cause (`causeOf`). */
  readonly escalationsByCause: Readonly<Record<string, readonly number[]>>
  /** Cases by bounces (AI↔human handoffs), 0 … cap and more. */
  readonly handoffsPerCase: { readonly labels: readonly string[]; readonly counts: readonly number[] }
  /** Mean seconds from approval request to decision, by the bucket of the decision; null where none. */
  readonly approvalWait: readonly (number | null)[]
  /** Percent of the escalations of a bucket that an operator took within the queue SLA (judged ones); null where none. */
  readonly slaAttainment: readonly (number | null)[]
  readonly totals: {
    readonly cases: number
    readonly escalations: number
    readonly approvals: number
    readonly entries: number
  }
}

export function overviewSnapshot(
  cases: Iterable<CaseState>,
  o: Pick<QualityOptions, 'now' | 'slaSeconds' | 'maxHandoffs' | 'isOverride'>,
  entries: number,
): OverviewSnapshot {
  const end = o.now
  const all = [...cases].filter((c) => Number.isFinite(c.createdAt))
  let start = end
  for (const c of all) start = Math.min(start, c.createdAt)
  const width = WIDTHS.find((w) => (end - start) / w < MAX_BUCKETS) ?? WIDTHS.at(-1)!
  const last = Math.floor(end / width) * width
  const first = Math.max(Math.floor(start / width) * width, last - (MAX_BUCKETS - 1) * width)
  const n = Math.round((last - first) / width) + 1
  const slot = (t: number): number => {
    const i = Math.floor((t - first) / width)
    return i >= 0 && i < n ? i : -1
  }
  const series = () => new Array<number>(n).fill(0)
  const byHandler = new Map<string, number[]>()
  const byCause = new Map<string, number[]>()
  const met = series()
  const judged = series()
  const waitSum = series()
  const waitN = series()
  const cap = Math.max(1, o.maxHandoffs)
  const hist = new Array<number>(cap + 1).fill(0)
  let escalations = 0
  let approvals = 0
  const bump = (m: Map<string, number[]>, key: string, i: number) => {
    let s = m.get(key)
    if (s === undefined) {
      s = series()
      m.set(key, s)
    }
    if (i >= 0) s[i]! += 1
  }
  for (const c of all) {
    bump(byHandler, c.first?.handler ?? 'unknown', slot(c.createdAt))
    hist[Math.min(c.bounces, cap)]! += 1
    for (const e of c.escalations) {
      escalations++
      const i = slot(e.at)
      bump(byCause, causeOf(e, o), i)
      const j = judge(e, o.slaSeconds(e.queue) * 1000, end)
      if (i >= 0 && (j === 'within_sla' || j === 'late')) {
        judged[i]! += 1
        if (j === 'within_sla') met[i]! += 1
      }
    }
    for (const g of c.gates.values()) {
      if (g.kind !== 'approval') continue
      approvals++
      if (g.settledAt === undefined || (g.state !== 'approved' && g.state !== 'denied')) continue
      const i = slot(g.settledAt)
      if (i < 0) continue
      waitSum[i]! += (g.settledAt - g.requestedAt) / 1000
      waitN[i]! += 1
    }
  }
  const ordered = (m: Map<string, number[]>, keys?: readonly string[]) =>
    Object.fromEntries((keys ?? [...m.keys()].sort()).filter((k) => m.has(k)).map((k) => [k, m.get(k)!] as const))
  return {
    bucketMinutes: width / MINUTE,
    buckets: Array.from({ length: n }, (_, i) => new Date(first + i * width).toISOString()),
    casesByHandler: ordered(byHandler),
    escalationsByCause: ordered(byCause, ESCALATION_CAUSES),
    handoffsPerCase: { labels: hist.map((_, i) => (i === cap ? `${i}+` : String(i))), counts: hist },
    approvalWait: waitN.map((k, i) => (k === 0 ? null : Math.round(waitSum[i]! / k))),
    slaAttainment: judged.map((k, i) => (k === 0 ? null : Math.round((1000 * met[i]!) / k) / 10)),
    totals: { cases: all.length, escalations, approvals, entries },
  }
}

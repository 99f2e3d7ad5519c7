import type { Store } from '../store/ports.js'

/*
 * The Overview's numbers, folded from the audit log: every state change is an audit entry, so one incremental pass
 * over the log (from the last entry seen) gives every chart without queries of its own. Counts are kept per minute
 * and bucketed when asked.
 */

interface EntryJson {
  readonly type?: string
  readonly at?: string
  readonly caseId?: string
  readonly data?: Record<string, unknown>
}

interface HandlerJson {
  readonly kind?: string
  readonly queue?: string
}

type Series = Map<string, Map<number, number>>

const MINUTE = 60_000
/** Bucket widths the charts choose from: the smallest that shows the whole range in at most MAX_BUCKETS bars. */
const WIDTHS = [1, 5, 15, 60, 360, 1440].map((m) => m * MINUTE)
const MAX_BUCKETS = 48
/** Event types (written by the queues and approvals capabilities) that mean a human took the case. */
const TAKEN = new Set(['case.claimed', 'case.assigned'])
const APPROVAL_REQUESTED = new Set(['approval.requested', 'approval.created'])
const APPROVAL_DECIDED = new Set(['approval.decided', 'approval.approved', 'approval.denied'])

export interface OverviewSnapshot {
  readonly bucketMinutes: number
  readonly buckets: readonly string[]
  readonly casesByHandler: Readonly<Record<string, readonly number[]>>
  readonly escalationsByTrigger: Readonly<Record<string, readonly number[]>>
  readonly handoffsPerCase: { readonly labels: readonly string[]; readonly counts: readonly number[] }
  /** Mean seconds from approval request to decision, by the bucket of the decision; null where none. */
  readonly approvalWait: readonly (number | null)[]
  /** Percent of cases that entered a human queue in the bucket and were taken within the queue's SLA. */
  readonly slaAttainment: readonly (number | null)[]
  readonly totals: {
    readonly cases: number
    readonly escalations: number
    readonly approvals: number
    readonly entries: number
  }
}

interface Waiting {
  readonly since: number
  readonly queue: string
}

export class OverviewStats {
  readonly #store: Pick<Store, 'scanAudit'>
  readonly #slaMs: (queue: string) => number
  #next = 0
  #refreshing: Promise<void> | undefined
  readonly #cases: Series = new Map()
  readonly #escalations: Series = new Map()
  readonly #handoffs = new Map<string, number>()
  readonly #waiting = new Map<string, Waiting>()
  readonly #sla: Series = new Map([
    ['met', new Map()],
    ['missed', new Map()],
  ])
  readonly #approvalWait: Series = new Map([
    ['sum', new Map()],
    ['n', new Map()],
  ])
  readonly #approvalAt = new Map<string, number>()
  #first = Number.POSITIVE_INFINITY
  #approvals = 0

  constructor(store: Pick<Store, 'scanAudit'>, slaSeconds: (queue: string) => number) {
    this.#store = store
    this.#slaMs = (q) => slaSeconds(q) * 1000
  }

  /** Reads the entries appended since the last call. Concurrent callers share one pass. */
  refresh(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        for await (const batch of this.#store.scanAudit(this.#next, 5000)) {
          for (const e of batch) {
            if (e.seq !== this.#next) return // a gap: the writer has not committed yet; read it next time
            this.#fold(e.entry)
            this.#next = e.seq + 1
          }
        }
      } finally {
        this.#refreshing = undefined
      }
    })()
    return this.#refreshing
  }

  #fold(text: string): void {
    let e: EntryJson
    try {
      e = JSON.parse(text) as EntryJson
    } catch {
      return
    }
    const t = Date.parse(e.at ?? '')
    if (!Number.isFinite(t)) return
    const data = e.data ?? {}
    const caseId = e.caseId
    if (e.type === 'case.decided' && caseId !== undefined && !this.#handoffs.has(caseId)) {
      // The first decision of a case: who got it.
      this.#first = Math.min(this.#first, t)
      this.#handoffs.set(caseId, 0)
      const h = (data.handler ?? {}) as HandlerJson
      bump(this.#cases, h.kind ?? 'unknown', t)
      if (h.kind === 'operator' || h.kind === 'hybrid') this.#waiting.set(caseId, { since: t, queue: h.queue ?? '' })
    } else if (e.type === 'case.handed_off' && caseId !== undefined) {
      const from = (data.from ?? {}) as HandlerJson
      const to = (data.to ?? {}) as HandlerJson
      const cause = (data.cause ?? {}) as { trigger?: string }
      if (data.countsAsHandoff === true) this.#handoffs.set(caseId, (this.#handoffs.get(caseId) ?? 0) + 1)
      if (from.kind === 'agent' && to.kind !== 'agent') {
        bump(this.#escalations, cause.trigger || 'unspecified', t)
      }
      this.#settle(caseId, t)
      if (to.kind === 'operator' || to.kind === 'hybrid') this.#waiting.set(caseId, { since: t, queue: to.queue ?? '' })
    } else if (caseId !== undefined && (TAKEN.has(e.type ?? '') || e.type === 'case.closed')) {
      this.#settle(caseId, t)
    } else if (APPROVAL_REQUESTED.has(e.type ?? '')) {
      const id = approvalId(data)
      if (id !== undefined) this.#approvalAt.set(id, t)
      this.#approvals++
    } else if (APPROVAL_DECIDED.has(e.type ?? '')) {
      const id = approvalId(data)
      const from = id === undefined ? undefined : this.#approvalAt.get(id)
      if (id !== undefined && from !== undefined) {
        this.#approvalAt.delete(id)
        add(this.#approvalWait, 'sum', t, (t - from) / 1000)
        add(this.#approvalWait, 'n', t, 1)
      }
    }
  }

  /** A waiting case left the queue (taken, handed on, closed) at `t`: met or missed its SLA. */
  #settle(caseId: string, t: number): void {
    const w = this.#waiting.get(caseId)
    if (w === undefined) return
    this.#waiting.delete(caseId)
    bump(this.#sla, t - w.since <= this.#slaMs(w.queue) ? 'met' : 'missed', w.since)
  }

  snapshot(now: Date): OverviewSnapshot {
    const end = now.getTime()
    const start = Number.isFinite(this.#first) ? this.#first : end
    const width = WIDTHS.find((w) => (end - start) / w < MAX_BUCKETS) ?? WIDTHS.at(-1)!
    const last = Math.floor(end / width) * width
    const first = Math.max(Math.floor(start / width) * width, last - (MAX_BUCKETS - 1) * width)
    const starts: number[] = []
    for (let b = first; b <= last; b += width) starts.push(b)
    const bucketize = (m: Map<number, number> | undefined) =>
      starts.map((b) => {
        let sum = 0
        if (m !== undefined) for (const [minute, n] of m) if (minute >= b && minute < b + width) sum += n
        return sum
      })
    const series = (s: Series) => Object.fromEntries([...s.keys()].sort().map((k) => [k, bucketize(s.get(k))]))
    // Cases still waiting past their SLA have missed it already.
    const missedNow = new Map<number, number>()
    for (const w of this.#waiting.values()) {
      if (end - w.since > this.#slaMs(w.queue)) {
        const minute = Math.floor(w.since / MINUTE) * MINUTE
        missedNow.set(minute, (missedNow.get(minute) ?? 0) + 1)
      }
    }
    const met = bucketize(this.#sla.get('met'))
    const missedLate = bucketize(missedNow)
    const missed = bucketize(this.#sla.get('missed')).map((n, i) => n + (missedLate[i] ?? 0))
    const waitSum = bucketize(this.#approvalWait.get('sum'))
    const waitN = bucketize(this.#approvalWait.get('n'))
    const hist = [0, 0, 0, 0, 0]
    for (const n of this.#handoffs.values()) hist[Math.min(n, 4)]! += 1
    let escalations = 0
    for (const m of this.#escalations.values()) for (const n of m.values()) escalations += n
    return {
      bucketMinutes: width / MINUTE,
      buckets: starts.map((b) => new Date(b).toISOString()),
      casesByHandler: series(this.#cases),
      escalationsByTrigger: series(this.#escalations),
      handoffsPerCase: { labels: ['0', '1', '2', '3', '4+'], counts: hist },
      approvalWait: waitN.map((n, i) => (n === 0 ? null : Math.round((waitSum[i] ?? 0) / n))),
      slaAttainment: met.map((m, i) => {
        const total = m + (missed[i] ?? 0)
        return total === 0 ? null : Math.round((1000 * m) / total) / 10
      }),
      totals: { cases: this.#handoffs.size, escalations, approvals: this.#approvals, entries: this.#next },
    }
  }
}

function approvalId(data: Record<string, unknown>): string | undefined {
  const id = data.approvalId ?? data.id
  return typeof id === 'string' ? id : undefined
}

function add(s: Series, key: string, t: number, n: number): void {
  let m = s.get(key)
  if (m === undefined) {
    m = new Map()
    s.set(key, m)
  }
  const minute = Math.floor(t / MINUTE) * MINUTE
  m.set(minute, (m.get(minute) ?? 0) + n)
}

function bump(s: Series, key: string, t: number): void {
  add(s, key, t, 1)
}

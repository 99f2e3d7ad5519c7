import { BatonError } from '../errors.js'
import type { CaseState } from '../quality/fold.js'
import { type OperatorPool, type QueueModel, WEEK_HOURS } from './simulate.js'

const HOUR_MS = 3_600_000
/** Used when the history has no handled case to measure a queue's handle time by. */
export const DEFAULT_HANDLE_S = 600

/** The hour of the week (0 = Monday 00:00 UTC) of a time in ms. */
export function hourOfWeek(ms: number): number {
  // 1970-01-01 was a Thursday: shift by three days so that Monday is 0
  return Math.floor((ms / HOUR_MS + 72) % WEEK_HOURS)
}

/** How many times each hour of the week occurs in [since, until) (whole and partial hours by their share). */
function hourCounts(since: number, until: number): number[] {
  const out = new Array<number>(WEEK_HOURS).fill(0)
  for (let t = since; t < until; ) {
    const next = Math.min(until, (Math.floor(t / HOUR_MS) + 1) * HOUR_MS)
    out[hourOfWeek(t)]! += (next - t) / HOUR_MS
    t = next
  }
  return out
}

export interface QueueCounts {
  /** Escalations into the queue, by hour of the week they happened. */
  readonly byHour: number[]
  /** Handle times measured (ms): from an operator taking a case to being done with it. */
  readonly handled: number[]
}

export function emptyCounts(queues: readonly string[]): Map<string, QueueCounts> {
  return new Map(queues.map((q) => [q, { byHour: new Array<number>(WEEK_HOURS).fill(0), handled: [] as number[] }]))
}

/** Adds one case's escalations (by hour of the week) and handle times to the counts. Pure. */
export function countCase(counts: Map<string, QueueCounts>, c: CaseState): void {
  for (const e of c.escalations) {
    const q = counts.get(e.queue)
    if (q === undefined) continue
    q.byHour[hourOfWeek(e.at)]! += 1
    if (e.pickedAt !== undefined && e.endedAt !== undefined) q.handled.push(e.endedAt - e.pickedAt)
  }
}

/**
 * The queues' model from stored history: arrivals per hour of the week (escalations into the queue in that hour of
 * the window, divided by how often the window holds that hour), and the mean handle time (`DEFAULT_HANDLE_S` where
 * none was measured). Pure.
 */
export function modelFromCounts(
  counts: ReadonlyMap<string, QueueCounts>,
  window: { readonly since: number; readonly until: number },
  slaSeconds: (queue: string) => number,
): QueueModel[] {
  const hours = hourCounts(window.since, window.until)
  return [...counts].map(([id, c]) => ({
    id,
    slaSeconds: slaSeconds(id),
    arrivalsPerHour: c.byHour.map((n, h) => (hours[h]! > 0 ? n / hours[h]! : 0)),
    meanHandleSeconds:
      c.handled.length === 0 ? DEFAULT_HANDLE_S : c.handled.reduce((a, b) => a + b, 0) / c.handled.length / 1000,
  }))
}

/**
 * Operator pools from the workspace's operators: each serves the queues whose skills it holds all of; operators with
 * the same queues form one pool.
 */
export function poolsFromOperators(
  operators: readonly { readonly id: string; readonly skills: readonly string[] }[],
  queues: readonly { readonly id: string; readonly skills: readonly string[] }[],
): OperatorPool[] {
  const pools = new Map<string, { queues: string[]; count: number }>()
  for (const o of operators) {
    const serves = queues.filter((q) => q.skills.every((s) => o.skills.includes(s))).map((q) => q.id)
    if (serves.length === 0) continue
    const key = serves.join(',')
    const p = pools.get(key) ?? { queues: serves, count: 0 }
    p.count++
    pools.set(key, p)
  }
  return [...pools.values()].map((p) => ({ id: p.queues.join('+'), count: p.count, queues: p.queues }))
}

/**
 * `general=12,billing=4`: that many operators for each queue, each serving only it.
 * @throws BatonError VALIDATION_FAILED naming `--operators` for a malformed entry or a queue the workspace lacks.
 */
export function parseOperators(text: string, queues: readonly string[]): OperatorPool[] {
  const out: OperatorPool[] = []
  for (const part of text.split(',')) {
    const m = /^\s*([a-z0-9][a-z0-9_.-]*)\s*=\s*(\d{1,5})\s*$/.exec(part)
    const fail = (why: string) => {
      throw new BatonError(
        'VALIDATION_FAILED',
        `--operators: '${part.trim()}': ${why} (expected queue=count, e.g. general=12,billing=4)`,
        {
          fields: [{ field: '--operators', message: why }],
        },
      )
    }
    if (m === null) fail('not queue=count')
    const [, queue, count] = m as RegExpExecArray
    if (!queues.includes(queue!)) fail(`no queue '${queue}' (known: ${queues.join(', ')})`)
    if (out.some((p) => p.id === queue)) fail(`queue '${queue}' given twice`)
    out.push({ id: queue!, count: Number(count), queues: [queue!] })
  }
  return out
}

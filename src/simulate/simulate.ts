import { prng } from '../intents/train.js'
import { percentileOf } from '../quality/stats.js'

/** Hours in a week: arrival rates are given per queue and hour of the week (0 = Monday 00:00–01:00 UTC). */
export const WEEK_HOURS = 168

/** One queue of the model: when cases arrive, how long a human takes, and its SLA. Times are seconds. */
export interface QueueModel {
  readonly id: string
  readonly slaSeconds: number
  /** Cases reaching the queue per hour, for each of the 168 hours of the week. */
  readonly arrivalsPerHour: readonly number[]
  /** Mean time an operator spends on a case (exponential). */
  readonly meanHandleSeconds: number
}

/** A group of operators with the same skills: they serve the queues they are eligible for, one case each at a time. */
export interface OperatorPool {
  readonly id: string
  readonly count: number
  readonly queues: readonly string[]
}

export interface SimulationInput {
  readonly queues: readonly QueueModel[]
  readonly pools: readonly OperatorPool[]
  /** Multiplies every arrival rate (1.5: half as many cases again). */
  readonly demand: number
  readonly days: number
  readonly seed: number
  /** Start of the simulated time on the week's clock, hours (0 = Monday 00:00). */
  readonly startHour?: number
  /** Called now and then with the share of simulated time done (0..1). */
  readonly onProgress?: (done: number) => void
}

export interface QueueResult {
  readonly queue: string
  readonly arrivals: number
  /** Cases an operator took within the run. */
  readonly served: number
  readonly waitS: { readonly mean: number | null; readonly p50: number | null; readonly p90: number | null }
  /** Of the cases that arrived, the share not taken within the SLA (still waiting at the end past it counts). */
  readonly slaBreachRate: number | null
  /** Busy operator time on this queue / operator time of the pools that serve it. */
  readonly utilisation: number | null
  /** Arrivals per hour of the week, as simulated (demand applied). */
  readonly arrivalsByHour: readonly number[]
}

export interface SimulationResult {
  readonly seed: number
  readonly days: number
  readonly demand: number
  readonly queues: readonly QueueResult[]
  readonly pools: readonly { readonly id: string; readonly count: number; readonly utilisation: number | null }[]
}

/** A binary min-heap of events by time (then by insertion order, so ties are deterministic). */
class Events {
  readonly #t: number[] = []
  readonly #n: number[] = []
  readonly #kind: number[] = []
  readonly #a: number[] = []
  readonly #b: number[] = []
  #seq = 0

  get size(): number {
    return this.#t.length
  }

  push(t: number, kind: number, a: number, b: number): void {
    const i0 = this.#t.length
    this.#t.push(t)
    this.#n.push(this.#seq++)
    this.#kind.push(kind)
    this.#a.push(a)
    this.#b.push(b)
    let i = i0
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.#less(i, p)) break
      this.#swap(i, p)
      i = p
    }
  }

  /** Removes the earliest event into `out` ([t, kind, a, b]). */
  pop(out: number[]): void {
    out[0] = this.#t[0]!
    out[1] = this.#kind[0]!
    out[2] = this.#a[0]!
    out[3] = this.#b[0]!
    const last = this.#t.length - 1
    this.#swap(0, last)
    this.#t.pop()
    this.#n.pop()
    this.#kind.pop()
    this.#a.pop()
    this.#b.pop()
    let i = 0
    const n = this.#t.length
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < n && this.#less(l, m)) m = l
      if (r < n && this.#less(r, m)) m = r
      if (m === i) return
      this.#swap(i, m)
      i = m
    }
  }

  #less(i: number, j: number): boolean {
    const ti = this.#t[i]!
    const tj = this.#t[j]!
    return ti < tj || (ti === tj && this.#n[i]! < this.#n[j]!)
  }

  #swap(i: number, j: number): void {
    for (const arr of [this.#t, this.#n, this.#kind, this.#a, this.#b]) {
      const x = arr[i]!
      arr[i] = arr[j]!
      arr[j] = x
    }
  }
}

/** A FIFO of waiting cases (arrival times), amortised O(1). */
class Waiting {
  readonly #items: number[] = []
  #head = 0
  get length(): number {
    return this.#items.length - this.#head
  }
  push(t: number): void {
    this.#items.push(t)
  }
  peek(): number {
    return this.#items[this.#head]!
  }
  shift(): number {
    const t = this.#items[this.#head++]!
    if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
      this.#items.splice(0, this.#head)
      this.#head = 0
    }
    return t
  }
  rest(): number[] {
    return this.#items.slice(this.#head)
  }
}

const ARRIVAL = 0
const DEPARTURE = 1
const HOUR = 3600

/**
 * A seeded, deterministic discrete-event simulation of the queues: arrivals are a Poisson process per queue whose
 * rate changes with the hour of the week (times the demand), handle times are exponential, and each operator takes
 * one case at a time. An arriving case goes to a free eligible operator (the pool listed first), else waits; a
 * freed operator takes the waiting case nearest its SLA deadline among the queues it serves (auto-assignment by
 * priority). Pure: the seed is an argument and the same input gives the same result.
 */
export function simulate(input: SimulationInput): SimulationResult {
  // mulberry32 (the intent trainer's): the same seed gives the same run, byte for byte
  const random = prng(input.seed)
  const exp = (rate: number) => -Math.log(1 - random()) / rate
  const end = input.days * 24 * HOUR
  const start = (input.startHour ?? 0) * HOUR
  const queues = input.queues
  const qIndex = new Map(queues.map((q, i) => [q.id, i]))
  const pools = input.pools.map((p) => ({
    ...p,
    free: p.count,
    serves: p.queues.map((q) => qIndex.get(q)).filter((i): i is number => i !== undefined),
  }))
  const poolsOf = queues.map((_, i) => pools.map((p, k) => [p, k] as const).filter(([p]) => p.serves.includes(i)))
  const waiting = queues.map(() => new Waiting())
  const waits = queues.map(() => [] as number[])
  const breached = queues.map(() => 0)
  const arrivals = queues.map(() => 0)
  const byHour = queues.map(() => new Array<number>(WEEK_HOURS).fill(0))
  const busyByQueue = queues.map(() => 0)
  const busyByPool = pools.map(() => 0)
  const events = new Events()
  const rate = (q: number, t: number) => {
    const h = Math.floor(((start + t) / HOUR) % WEEK_HOURS)
    return (queues[q]!.arrivalsPerHour[h] ?? 0) * input.demand
  }
  // The next arrival of a queue after t: exponential at the hour's rate; an hour with no cases skips to the next.
  const nextArrival = (q: number, t: number) => {
    let now = t
    while (now < end) {
      const r = rate(q, now) / HOUR
      const boundary = (Math.floor((start + now) / HOUR) + 1) * HOUR - start
      if (r > 0) {
        const dt = exp(r)
        if (now + dt < boundary) return now + dt
      }
      now = boundary // memoryless: draw again from the boundary at the next hour's rate
    }
    return Number.POSITIVE_INFINITY
  }
  const serve = (q: number, arrived: number, now: number, k: number) => {
    const pool = pools[k]!
    pool.free--
    const wait = now - arrived
    waits[q]!.push(wait)
    if (wait > queues[q]!.slaSeconds) breached[q]! += 1
    const handle = exp(1 / queues[q]!.meanHandleSeconds)
    const done = now + handle
    // busy time counted within the run only
    const busy = Math.min(done, end) - now
    busyByQueue[q]! += busy
    busyByPool[k]! += busy
    events.push(done, DEPARTURE, q, k)
  }
  for (let q = 0; q < queues.length; q++) {
    const t = nextArrival(q, 0)
    if (t < end) events.push(t, ARRIVAL, q, -1)
  }
  const ev = [0, 0, 0, 0]
  let lastReport = 0
  while (events.size > 0) {
    events.pop(ev)
    const now = ev[0]!
    if (now >= end) break
    const q = ev[2]!
    if (input.onProgress !== undefined && now - lastReport > end / 100) {
      lastReport = now
      input.onProgress(now / end)
    }
    if (ev[1] === ARRIVAL) {
      arrivals[q]! += 1
      byHour[q]![Math.floor(((start + now) / HOUR) % WEEK_HOURS)]! += 1
      const free = poolsOf[q]!.find(([p]) => p.free > 0)
      if (free !== undefined) serve(q, now, now, free[1])
      else waiting[q]!.push(now)
      const t = nextArrival(q, now)
      if (t < end) events.push(t, ARRIVAL, q, -1)
    } else {
      const k = ev[3]!
      const pool = pools[k]!
      pool.free++
      // the waiting case nearest its SLA deadline among the queues this operator serves
      let best = -1
      let due = Number.POSITIVE_INFINITY
      for (const i of pool.serves) {
        const w = waiting[i]!
        if (w.length === 0) continue
        const d = w.peek() + queues[i]!.slaSeconds
        if (d < due) {
          due = d
          best = i
        }
      }
      if (best >= 0) serve(best, waiting[best]!.shift(), now, k)
    }
  }
  input.onProgress?.(1)
  const round = (n: number | null, d = 1) => (n === null ? null : Math.round(n * 10 ** d) / 10 ** d)
  const results: QueueResult[] = queues.map((m, q) => {
    // cases still waiting at the end past their SLA have breached it
    const late = waiting[q]!.rest().filter((t) => end - t > m.slaSeconds).length
    const w = waits[q]!
    const mean = w.length === 0 ? null : w.reduce((a, b) => a + b, 0) / w.length
    const capacity = poolsOf[q]!.reduce((n, [p]) => n + p.count, 0) * end
    return {
      queue: m.id,
      arrivals: arrivals[q]!,
      served: w.length,
      waitS: { mean: round(mean), p50: round(percentileOf(w, 0.5)), p90: round(percentileOf(w, 0.9)) },
      slaBreachRate: arrivals[q] === 0 ? null : round((breached[q]! + late) / arrivals[q]!, 4),
      utilisation: capacity === 0 ? null : round(busyByQueue[q]! / capacity, 4),
      arrivalsByHour: byHour[q]!,
    }
  })
  return {
    seed: input.seed,
    days: input.days,
    demand: input.demand,
    queues: results,
    pools: pools.map((p, k) => ({
      id: p.id,
      count: p.count,
      utilisation: p.count === 0 ? null : round(busyByPool[k]! / (p.count * end), 4),
    })),
  }
}

/**
 * The fewest operators a queue needs, alone with a pool of its own, for its SLA breach rate to stay at or below
 * `1 − target` at this demand (a search over simulations with the same seed). null when even `max` do not.
 */
export function fewestOperators(
  queue: QueueModel,
  o: {
    readonly demand: number
    readonly days: number
    readonly seed: number
    readonly target: number
    readonly max?: number
  },
): number | null {
  const holds = (n: number) => {
    const r = simulate({
      queues: [queue],
      pools: [{ id: 'p', count: n, queues: [queue.id] }],
      demand: o.demand,
      days: o.days,
      seed: o.seed,
    })
    const b = r.queues[0]!.slaBreachRate
    return b === null || b <= 1 - o.target
  }
  // offered load in operators: a lower bound to start from
  const meanRate = queue.arrivalsPerHour.reduce((a, b) => a + b, 0) / WEEK_HOURS
  let lo = Math.max(1, Math.floor((meanRate * o.demand * queue.meanHandleSeconds) / HOUR))
  const max = o.max ?? 1000
  if (meanRate === 0) return holds(1) ? 1 : null
  let hi = lo
  while (!holds(hi)) {
    lo = hi + 1
    hi = hi * 2
    if (hi > max) {
      if (!holds(max)) return null
      hi = max
      break
    }
  }
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (holds(mid)) hi = mid
    else lo = mid + 1
  }
  return hi
}

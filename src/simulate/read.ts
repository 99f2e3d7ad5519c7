import { BatonError } from '../errors.js'
import type { CompiledPolicy } from '../policy/compile.js'
import { decideRoute } from '../policy/evaluate.js'
import type { Facts } from '../policy/types.js'
import type { CaseState } from '../quality/fold.js'
import { foldWindow, type QualityDeps, storedWindow } from '../quality/read.js'
import { windowOf } from '../quality/window.js'
import type { OperatorSpec } from '../workspace/workspace.js'
import { countCase, emptyCounts, hourOfWeek, modelFromCounts, parseOperators, poolsFromOperators } from './estimate.js'
import { fewestOperators, type OperatorPool, type QueueModel, type QueueResult, simulate } from './simulate.js'

export interface SimulationOptions {
  /** The history window the model is measured on: default the last 28 days. */
  readonly since?: string | undefined
  readonly until?: string | undefined
  /** Multiplies every arrival rate; must be > 0. Default 1. */
  readonly demand?: number | undefined
  readonly days?: number | undefined
  readonly seed?: number | undefined
  /** `general=12,billing=4`; default the workspace's operators by their skills. */
  readonly operators?: string | undefined
  /** Share of cases an operator must take within the SLA for the queue to hold it. Default 0.8. */
  readonly target?: number | undefined
  /** Queue models given instead of the history (`parseArrivalsCsv`). */
  readonly model?: readonly QueueModel[] | undefined
  /** A candidate policy: the cases' first routing decided again with it moves their arrivals between queues. */
  readonly candidate?: CompiledPolicy | undefined
  readonly onProgress?: ((done: number) => void) | undefined
}

export interface SimulationReport {
  readonly source:
    | { readonly kind: 'history'; readonly since: string; readonly until: string }
    | { readonly kind: 'csv' }
  readonly candidate: { readonly name: string; readonly version: number; readonly hash: string } | null
  readonly demand: number
  readonly days: number
  readonly seed: number
  readonly target: number
  readonly queues: readonly (QueueResult & {
    readonly slaSeconds: number
    readonly meanHandleSeconds: number
    /** Operators of the pools that serve the queue (shared pools count for each of their queues). */
    readonly operators: number
    /** The fewest operators of its own that hold the SLA at this demand (`target`); null when none up to 1,000 do. */
    readonly fewestOperators: number | null
  })[]
  readonly pools: readonly {
    readonly id: string
    readonly count: number
    readonly utilisation: number | null
    readonly queues: readonly string[]
  }[]
}

function invalid(field: string, message: string): never {
  throw new BatonError('VALIDATION_FAILED', `${field}: ${message}`, { fields: [{ field, message }] })
}

/**
 * A capacity simulation (`baton simulate`): the queues' arrivals per hour of the week and handle times measured on
 * the stored history (or given), the demand scaled, operators from the workspace or given, simulated by `simulate`.
 * @throws BatonError VALIDATION_FAILED naming `--demand`, `--days`, `--seed`, `--target`, `--operators`, `since`.
 */
export async function readSimulation(
  deps: QualityDeps & { readonly operators: readonly OperatorSpec[] },
  o: SimulationOptions,
): Promise<SimulationReport> {
  const demand = o.demand ?? 1
  if (!Number.isFinite(demand) || demand <= 0) invalid('--demand', `expected a number > 0, found ${o.demand}`)
  const days = o.days ?? 7
  if (!Number.isInteger(days) || days < 1 || days > 366)
    invalid('--days', `expected a whole number of days 1–366, found ${o.days}`)
  const seed = o.seed ?? 1
  if (!Number.isSafeInteger(seed) || seed < 0) invalid('--seed', `expected an integer ≥ 0, found ${o.seed}`)
  const target = o.target ?? 0.8
  if (!(target > 0 && target <= 1)) invalid('--target', `expected a share in (0, 1], found ${o.target}`)
  const sla = new Map(deps.queues.map((q) => [q.id, q.slaSeconds]))
  const pools: readonly OperatorPool[] =
    o.operators === undefined
      ? poolsFromOperators(deps.operators, deps.queues)
      : parseOperators(
          o.operators,
          deps.queues.map((q) => q.id),
        )

  let models: readonly QueueModel[]
  let source: SimulationReport['source']
  if (o.model !== undefined) {
    models = o.model
    source = { kind: 'csv' }
  } else {
    const w = windowOf(o, deps.now().getTime(), '28d')
    const window = storedWindow(w)
    const counts = emptyCounts(deps.queues.map((q) => q.id))
    const firsts: { id: string; at: number; queue: string | null }[] = []
    await foldWindow(deps.store, window, (c: CaseState) => {
      countCase(counts, c)
      if (o.candidate !== undefined && c.first !== undefined) {
        const e = c.escalations[0]
        firsts.push({ id: c.first.decisionId, at: c.createdAt, queue: e?.atIntake === true ? e.queue : null })
      }
    })
    if (o.candidate !== undefined) {
      // where the candidate would send each case at intake: its arrival moves from the queue it went to (if any)
      for (let i = 0; i < firsts.length; i += 500) {
        const slice = firsts.slice(i, i + 500)
        const byId = new Map((await deps.store.getDecisions(slice.map((f) => f.id))).map((d) => [d.id, d]))
        for (const f of slice) {
          const facts = byId.get(f.id)?.data.facts as Facts | undefined
          if (facts === undefined) continue
          const h = decideRoute(o.candidate, facts).handler
          const to = h.kind === 'agent' ? null : h.queue
          if (to === f.queue) continue
          const hour = hourOfWeek(f.at)
          if (f.queue !== null) counts.get(f.queue)!.byHour[hour]! -= 1
          if (to !== null && counts.has(to)) counts.get(to)!.byHour[hour]! += 1
        }
      }
    }
    models = modelFromCounts(counts, w, (q) => sla.get(q) ?? 1800)
    source = { kind: 'history', since: window.since, until: window.until }
  }
  const result = simulate({
    queues: models,
    pools,
    demand,
    days,
    seed,
    ...(o.onProgress === undefined ? {} : { onProgress: o.onProgress }),
  })
  return {
    source,
    candidate: o.candidate === undefined ? null : { ...o.candidate.ref },
    demand,
    days,
    seed,
    target,
    queues: result.queues.map((r, i) => {
      const m = models[i]!
      return {
        ...r,
        slaSeconds: m.slaSeconds,
        meanHandleSeconds: Math.round(m.meanHandleSeconds * 10) / 10,
        operators: pools.filter((p) => p.queues.includes(m.id)).reduce((n, p) => n + p.count, 0),
        fewestOperators: fewestOperators(m, { demand, days, seed, target }),
      }
    }),
    pools: result.pools.map((p, i) => ({ ...p, queues: pools[i]!.queues })),
  }
}

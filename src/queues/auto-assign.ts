import { BatonError } from '../errors.js'
import { createPollingLoop } from '../timers/loop.js'
import type { TimerLog } from '../timers/scheduler.js'
import { eligibleOperators } from './priority.js'
import type { WorkDeps } from './work.js'

/** Cases per assignment transaction: the auto-assigner's unit (one fsync for up to this many assignments). */
const BATCH = 25

/** The actor named in `case.assigned` entries the auto-assigner writes. */
export const AUTO_ASSIGNER = { kind: 'admin', id: 'auto-assigner' } as const

export interface AutoAssigner {
  /**
   * Gives waiting cases of every `assignment: auto` queue to the least-loaded eligible operator with free capacity
   * (skills, language), most urgent first, until nothing more can be given; returns how many it assigned. Safe
   * beside operators' claims and other nodes' assigners: each case goes to exactly one operator (`SKIP LOCKED` on
   * PostgreSQL, one writer on SQLite) and no operator beyond capacity (a guarded update).
   */
  runOnce(): Promise<number>
  start(intervalMs: number): void
  stop(): Promise<void>
}

export function createAutoAssigner(deps: WorkDeps, log?: TimerLog): AutoAssigner {
  async function assignQueue(queueId: string, skills: readonly string[]): Promise<number> {
    let assigned = 0
    let conflicts = 0
    for (;;) {
      try {
        const batch = await deps.store.assignBatch({
          queue: queueId,
          candidates: (item) => eligibleOperators(deps.operators, skills, item.language).map((o) => o.id),
          at: deps.now().toISOString(),
          actor: AUTO_ASSIGNER,
          max: BATCH,
        })
        if (batch.length === 0) return assigned
        assigned += batch.length
      } catch (e) {
        // Another assigner holds the eligible operators right now: try again, a few times, then next round.
        if (e instanceof BatonError && e.code === 'CONFLICT' && ++conflicts < 8) continue
        throw e
      }
      if (loop.stopping) return assigned
    }
  }

  const loop = createPollingLoop(
    async () => {
      let total = 0
      for (const q of deps.queues) {
        if (q.assignment !== 'auto') continue
        try {
          total += await assignQueue(q.id, q.skills)
        } catch (e) {
          log?.error({ err: e, queue: q.id }, 'auto-assignment failed; retried next round')
        }
      }
      return total
    },
    () => undefined,
  )

  return {
    runOnce: loop.runOnce,
    start(intervalMs) {
      if (deps.queues.some((q) => q.assignment === 'auto')) loop.start(intervalMs)
    },
    stop: loop.stop,
  }
}

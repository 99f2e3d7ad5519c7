import type { TimerRecord, WorkStore } from '../store/work-store.js'
import { createPollingLoop } from './loop.js'

/**
 * Runs one due timer. Handlers must be idempotent (a conditional update such as "expire the approval where it is
 * still pending"): the scheduler marks a timer fired after its handler returns, so a node that dies in between
 * leaves the timer to run again once its lease runs out. Effects written with such a guard happen exactly once.
 */
export type TimerHandler = (timer: TimerRecord) => Promise<void>

export interface TimerLog {
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

/**
 * Durable timers: `schedule(kind, key, dueAt, payload)` stores a timer; a handler registered for `kind` runs once it
 * is due, on whichever node leases it first. Timers survive restarts (they are rows); each is leased by a
 * conditional update, so two nodes never run the same one at once.
 */
export interface TimerScheduler {
  /** Registers the handler of a kind (one per kind; `TypeError` on a second). */
  register(kind: string, handler: TimerHandler): void
  /** Stores or moves a pending timer. `dueAt` is RFC 3339. */
  schedule(kind: string, key: string, dueAt: string, payload: Readonly<Record<string, unknown>>): Promise<void>
  cancel(kind: string, key: string): Promise<boolean>
  /** Leases and runs every due timer once; resolves with how many fired. */
  pollOnce(): Promise<number>
  start(intervalMs: number): void
  stop(): Promise<void>
}

export interface TimerSchedulerDeps {
  readonly store: Pick<WorkStore, 'scheduleTimer' | 'cancelTimer' | 'leaseDueTimers' | 'completeTimer' | 'failTimer'>
  readonly now: () => Date
  /** This node's name in leases (unique per process). */
  readonly owner: string
  /** How long a lease holds before another node may run the timer (default 60 s). */
  readonly leaseMs?: number
  /** Delay before a failed handler runs again (default 30 s). */
  readonly retryMs?: number
  readonly log?: TimerLog
}

export function createTimerScheduler(deps: TimerSchedulerDeps): TimerScheduler {
  const handlers = new Map<string, TimerHandler>()
  const leaseMs = deps.leaseMs ?? 60_000
  const retryMs = deps.retryMs ?? 30_000

  async function poll(): Promise<number> {
    let fired = 0
    for (;;) {
      const now = deps.now()
      const batch = await deps.store.leaseDueTimers(
        [...handlers.keys()],
        now.toISOString(),
        deps.owner,
        new Date(now.getTime() + leaseMs).toISOString(),
        100,
      )
      for (const t of batch) {
        try {
          await handlers.get(t.kind)?.(t)
          if (await deps.store.completeTimer(t.kind, t.key, deps.owner, deps.now().toISOString())) fired++
        } catch (e) {
          deps.log?.error({ err: e, kind: t.kind, key: t.key }, 'timer handler failed')
          const retryAt = new Date(deps.now().getTime() + retryMs).toISOString()
          await deps.store.failTimer(t.kind, t.key, deps.owner, String((e as Error).message ?? e), retryAt)
        }
      }
      if (batch.length < 100 || loop.stopping) return fired
    }
  }

  const loop = createPollingLoop(poll, (e) => deps.log?.warn({ err: e }, 'timer poll failed'))

  return {
    register(kind, handler) {
      if (handlers.has(kind)) throw new TypeError(`a timer handler for '${kind}' is already registered`)
      handlers.set(kind, handler)
    },
    schedule: (kind, key, dueAt, payload) => deps.store.scheduleTimer(kind, key, dueAt, payload),
    cancel: (kind, key) => deps.store.cancelTimer(kind, key),
    pollOnce: loop.runOnce,
    start: loop.start,
    stop: loop.stop,
  }
}

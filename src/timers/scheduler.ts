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
  /**
   * A timer is due at `dueAt` (RFC 3339; a `timers` change notification from any node): a pass runs then. Undefined
   * (the feed was cut and listens again): a pass runs now, which re-arms for the earliest pending timer.
   */
  wake(dueAt?: string): void
  /** Runs passes: at the earliest pending timer's due time (armed after each pass), and every `intervalMs` anyway. */
  start(intervalMs: number): void
  stop(): Promise<void>
}

export interface TimerSchedulerDeps {
  readonly store: Pick<
    WorkStore,
    'scheduleTimer' | 'cancelTimer' | 'leaseDueTimers' | 'completeTimer' | 'failTimer' | 'nextTimerDue'
  >
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
      if (batch.length < 100 || loop.stopping) break
    }
    // the earliest pending timer, whichever node wrote it: a pass runs at its due time (the fallback poll if this fails)
    const next = await deps.store.nextTimerDue([...handlers.keys()]).catch(() => undefined)
    if (next !== undefined) arm(next)
    return fired
  }

  let armed: { readonly at: number; readonly timer: NodeJS.Timeout } | undefined
  /** One wake-up, at the earliest due time heard of (a later one is re-armed by the pass the earlier one runs). */
  function arm(dueAt: string): void {
    const at = Date.parse(dueAt)
    if (Number.isNaN(at) || loop.stopping) return
    if (armed !== undefined && armed.at <= at) return
    if (armed !== undefined) clearTimeout(armed.timer)
    // setTimeout holds at most 2^31-1 ms; the fallback poll re-arms long before that
    const ms = Math.min(Math.max(0, at - deps.now().getTime()), 2 ** 31 - 1)
    const timer = setTimeout(() => {
      armed = undefined
      loop.wake()
    }, ms)
    timer.unref()
    armed = { at, timer }
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
    wake(dueAt) {
      if (dueAt === undefined) loop.wake()
      else arm(dueAt)
    },
    start: loop.start,
    async stop() {
      if (armed !== undefined) clearTimeout(armed.timer)
      armed = undefined
      await loop.stop()
    },
  }
}

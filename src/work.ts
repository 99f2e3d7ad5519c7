import { hostname } from 'node:os'
import type { ActivePolicy, Actor } from './cases/intake.js'
import { createWebhookDispatcher, type Poster, type WebhookDispatcher } from './events/dispatcher.js'
import { createHttpPoster } from './events/poster.js'
import type { WebhookTargets } from './events/targets.js'
import { type AutoAssigner, createAutoAssigner } from './queues/auto-assign.js'
import { onSlaDue, rerouteCasesOf, type WorkDeps } from './queues/work.js'
import { AGENT_REROUTE_TIMER } from './store/authority-store.js'
import { TIMER_WAKE_HORIZON_MS } from './store/changes.js'
import type { Store } from './store/ports.js'
import { SLA_TIMER } from './store/work-store.js'
import { createTimerScheduler, type TimerLog, type TimerScheduler } from './timers/scheduler.js'
import type { Workspace } from './workspace/workspace.js'

/**
 * Queues, timers and events out, composed for `app.ts`: the queue use cases' dependencies, the durable timer
 * scheduler (with the SLA handler registered; other capabilities register theirs, e.g. approval expiry, through
 * `timers.register(kind, handler)` and schedule with `timers.schedule(kind, key, dueAt, payload)`), and the webhook
 * dispatcher that tails the audit log.
 */
export interface WorkServices {
  readonly deps: WorkDeps
  readonly timers: TimerScheduler
  readonly webhooks: WebhookDispatcher
  /** Where webhooks may go (checked at subscription and at every delivery). */
  readonly webhookTargets: WebhookTargets
  /** Gives waiting cases of `assignment: auto` queues to operators (a loop; `runOnce()` in tests). */
  readonly autoAssigner: AutoAssigner
  /** CloudEvents `source` of every event Baton emits. */
  readonly eventSource: string
  /**
   * How often an SSE stream (and the MCP list watcher) looks for new audit entries when no notification woke it, ms:
   * the fallback behind `store.changes` (default STREAM_FALLBACK_MS).
   */
  readonly streamPollMs: number
  /** Starts the timer, webhook and auto-assignment loops. */
  start(): void
  stop(): Promise<void>
}

export interface WorkOptions {
  readonly store: Store
  readonly workspace: Workspace
  readonly policy: () => ActivePolicy
  readonly now: () => Date
  readonly newId: (prefix: string) => string
  /** Key of the keyed hash that stands in for a secret redacted out of a reason. */
  readonly secretHashKey: Uint8Array
  readonly log?: TimerLog
  readonly timerIntervalMs?: number
  /** How often webhooks are looked at when no notification of new audit entries woke the dispatcher, ms. */
  readonly webhookIntervalMs?: number
  /** How often the auto-assigner looks for waiting cases of `assignment: auto` queues, ms (default 1000). */
  readonly autoAssignIntervalMs?: number
  readonly streamPollMs?: number
  readonly webhookBaseBackoffMs?: number
  readonly webhookTargets: WebhookTargets
  /** The webhook HTTP client (default `createHttpPoster(webhookTargets)`). */
  readonly post?: Poster
}

/** Fallback polls behind the change notifications (which wake SSE streams and webhooks at once), ms. */
export const STREAM_FALLBACK_MS = 2000
export const WEBHOOK_FALLBACK_MS = 2000
/**
 * Fallback poll of the timer scheduler, ms: each pass arms a wake-up for the earliest pending timer, and timers
 * written due sooner than this are announced to every node (`TIMER_WAKE_HORIZON_MS`, the same span).
 */
export const TIMER_FALLBACK_MS = TIMER_WAKE_HORIZON_MS

export async function createWorkServices(o: WorkOptions): Promise<WorkServices> {
  await o.store.configureWork({
    queues: o.workspace.queues.map((q) => ({ id: q.id, slaSeconds: q.slaSeconds })),
    operators: o.workspace.operators.map((op) => ({ id: op.id, capacity: op.capacity })),
  })
  const deps: WorkDeps = {
    store: o.store,
    policy: o.policy,
    operators: o.workspace.operators,
    queues: o.workspace.queues,
    now: o.now,
    newId: o.newId,
    secretHashKey: o.secretHashKey,
  }
  const owner = `${hostname()}:${process.pid}:${o.newId('node')}`
  const timers = createTimerScheduler({ store: o.store, now: o.now, owner, ...(o.log ? { log: o.log } : {}) })
  timers.register(SLA_TIMER, (t) => onSlaDue(deps, t))
  // the follow-up of an agent's suspension or retirement, stored in its transaction (see transitionAgent)
  timers.register(AGENT_REROUTE_TIMER, async (t) => {
    const p = t.payload as { agentId: string; reason: string; actor: Actor }
    await rerouteCasesOf(deps, p.actor, p.agentId, p.reason)
  })
  const eventSource = `urn:baton:${o.policy().policy.ref.name}`
  const webhooks = createWebhookDispatcher({
    store: o.store,
    now: o.now,
    random: Math.random,
    owner,
    source: eventSource,
    post: o.post ?? createHttpPoster(o.webhookTargets),
    ...(o.webhookBaseBackoffMs === undefined ? {} : { baseBackoffMs: o.webhookBaseBackoffMs }),
    ...(o.log ? { log: o.log } : {}),
  })
  const autoAssigner = createAutoAssigner(deps, o.log)
  let offAudit: (() => void) | undefined
  let offTimers: (() => void) | undefined
  return {
    deps,
    timers,
    webhooks,
    webhookTargets: o.webhookTargets,
    autoAssigner,
    eventSource,
    streamPollMs: o.streamPollMs ?? STREAM_FALLBACK_MS,
    start() {
      timers.start(o.timerIntervalMs ?? TIMER_FALLBACK_MS)
      webhooks.start(o.webhookIntervalMs ?? WEBHOOK_FALLBACK_MS)
      autoAssigner.start(o.autoAssignIntervalMs ?? 1000)
      // Every node's new audit entries (PostgreSQL NOTIFY at the drain's commit; SQLite in process) wake delivery.
      offAudit ??= o.store.changes.subscribe('audit', () => webhooks.wake())
      // Timers written due soon on any node (PostgreSQL NOTIFY at their commit; SQLite in process) arm a wake-up.
      offTimers ??= o.store.changes.subscribe('timers', (dueAt) => timers.wake(dueAt))
    },
    async stop() {
      offAudit?.()
      offAudit = undefined
      offTimers?.()
      offTimers = undefined
      await Promise.all([timers.stop(), webhooks.stop(), autoAssigner.stop()])
    },
  }
}

import type { Store } from '../store/ports.js'
import type { WebhookRecord } from '../store/work-store.js'
import { createPollingLoop } from '../timers/loop.js'
import { backoffMs, type CloudEvent, subscribed, toCloudEvent } from './cloudevents.js'
import { sign } from './signature.js'

export interface DispatcherLog {
  warn(obj: object, msg: string): void
}

/** Posts one signed event; resolves with the HTTP status, or rejects on a network error or timeout. */
export type Poster = (url: string, headers: Record<string, string>, body: string) => Promise<number>

export interface DispatcherDeps {
  readonly store: Pick<Store, 'readAudit' | 'leaseDueWebhooks' | 'saveWebhookProgress' | 'releaseWebhook'>
  readonly now: () => Date
  /** Jitter in [0, 1) for backoff; `() => 0` in tests. */
  readonly random: () => number
  readonly owner: string
  /** CloudEvents `source` of every event, e.g. `urn:baton:shop`. */
  readonly source: string
  /** The HTTP client (the composition root passes `fetch`; tests pass a fake). */
  readonly post: Poster
  /** First retry delay (default 1 s), doubling up to `maxBackoffMs` (default 5 min). */
  readonly baseBackoffMs?: number
  readonly maxBackoffMs?: number
  /** Attempts at one event before it is given up (counted in `failed`) and the cursor moves on (default 12). */
  readonly maxAttempts?: number
  readonly log?: DispatcherLog
}

export interface WebhookDispatcher {
  /** Delivers what is due to every subscription this node can lease; resolves when the pass is done. */
  pollOnce(): Promise<void>
  /** New audit entries were appended (a notification): a pass now, or right after the one in progress. */
  wake(): void
  start(intervalMs: number): void
  stop(): Promise<void>
}

const BATCH = 200
// A subscription's lease: twice one delivery's 10 s timeout, renewed after every event, so a node killed mid-pass
// (SIGKILL) holds its subscriptions for at most 20 s instead of a fixed minute.
const LEASE_MS = 20_000

/**
 * Webhook delivery by tailing the audit log. Each subscription keeps its own durable cursor (the next audit seq to
 * consider) and retry state in the store, so delivery resumes after a restart where it stopped: in order, at least
 * once (a receiver dedupes on `webhook-id`, the audit seq). A failed attempt is retried with exponential backoff;
 * the events behind it wait (per-subscription order is kept). Subscriptions are leased per node.
 */
export function createWebhookDispatcher(deps: DispatcherDeps): WebhookDispatcher {
  const post = deps.post
  const base = deps.baseBackoffMs ?? 1000
  const max = deps.maxBackoffMs ?? 300_000
  const maxAttempts = deps.maxAttempts ?? 12

  async function deliver(hook: WebhookRecord, event: CloudEvent): Promise<string | null> {
    const body = JSON.stringify(event)
    const headers = {
      'content-type': 'application/cloudevents+json',
      ...sign(hook.secret, event.id, Math.floor(deps.now().getTime() / 1000), body),
    }
    try {
      const status = await post(hook.url, headers, body)
      return status >= 200 && status < 300 ? null : `HTTP ${status}`
    } catch (e) {
      return String((e as Error).message ?? e).slice(0, 200)
    }
  }

  async function drain(hook: WebhookRecord): Promise<void> {
    let { cursor, attempts, delivered, failed } = hook
    for (;;) {
      const entries = await deps.store.readAudit(cursor, cursor + BATCH)
      if (entries.length === 0) break
      for (const entry of entries) {
        const event = toCloudEvent(entry.entry, deps.source)
        if (event === null || !subscribed(hook.events, event.type)) {
          cursor = entry.seq + 1
          continue
        }
        const error = await deliver(hook, event)
        const now = deps.now()
        if (error === null) {
          cursor = entry.seq + 1
          attempts = 0
          delivered++
        } else if (attempts + 1 >= maxAttempts) {
          deps.log?.warn({ webhook: hook.id, seq: entry.seq, error }, 'webhook event given up')
          cursor = entry.seq + 1
          attempts = 0
          failed++
        } else {
          attempts++
          const next = new Date(now.getTime() + backoffMs(attempts, base, max, deps.random())).toISOString()
          await deps.store.saveWebhookProgress(hook.id, deps.owner, {
            cursor,
            attempts,
            nextAttemptAt: next,
            lastError: error,
            delivered,
            failed,
          })
          return
        }
        const kept = await deps.store.saveWebhookProgress(hook.id, deps.owner, {
          cursor,
          attempts,
          nextAttemptAt: now.toISOString(),
          lastError: error,
          delivered,
          failed,
          leaseUntil: new Date(now.getTime() + LEASE_MS).toISOString(),
        })
        if (!kept || loop.stopping) return
      }
      if (entries.length < BATCH) break
    }
    if (cursor !== hook.cursor) {
      await deps.store.saveWebhookProgress(hook.id, deps.owner, {
        cursor,
        attempts,
        nextAttemptAt: deps.now().toISOString(),
        lastError: null,
        delivered,
        failed,
      })
    }
  }

  async function pass(): Promise<void> {
    const now = deps.now()
    const hooks = await deps.store.leaseDueWebhooks(
      now.toISOString(),
      deps.owner,
      new Date(now.getTime() + LEASE_MS).toISOString(),
    )
    await Promise.all(
      hooks.map(async (h) => {
        try {
          await drain(h)
        } catch (e) {
          deps.log?.warn({ err: e, webhook: h.id }, 'webhook delivery pass failed')
        } finally {
          await deps.store.releaseWebhook(h.id, deps.owner).catch(() => undefined)
        }
      }),
    )
  }

  const loop = createPollingLoop(pass, (e) => deps.log?.warn({ err: e }, 'webhook poll failed'))

  return { pollOnce: loop.runOnce, wake: loop.wake, start: loop.start, stop: loop.stop }
}

/**
 * Change notification between the nodes sharing a store, so that work waiting on a change is woken instead of
 * polling for it: new audit entries (SSE streams, webhooks, the MCP list watcher, the sequencer) and a newly activated
 * policy version, a timer written due soon (the scheduler arms a wake-up for its due time; see
 * `TIMER_WAKE_HORIZON_MS`), and a revoked API key (every node's key cache forgets its keys, `identity/key-cache.ts`).
 *
 * PostgreSQL sends each as `NOTIFY` inside the transaction that makes the change, so it is delivered at commit, to
 * every node (`postgres/listen.ts`); SQLite has one process and wakes it in process after the commit. A notification
 * can be missed (a node's listening connection was cut): subscribers get `undefined` once the feed listens again, and
 * must catch up from the store then; they also keep a slower poll as the fallback.
 */
export const CHANGE_CHANNELS = ['audit', 'policy', 'timers', 'keys'] as const
export type ChangeChannel = (typeof CHANGE_CHANNELS)[number]

/** PostgreSQL channel names (LISTEN/NOTIFY identifiers), one per change channel. */
export const PG_CHANNEL: Readonly<Record<ChangeChannel, string>> = {
  audit: 'baton_audit',
  policy: 'baton_policy',
  timers: 'baton_timers',
  keys: 'baton_keys',
}

/**
 * A timer written due sooner than this after it is written is announced on the `timers` channel (payload: its due
 * time, RFC 3339), so that every node's scheduler arms a wake-up for it; a later one is found by the scheduler's next
 * pass, which runs at least this often (its fallback poll) and arms a wake-up for the earliest pending timer. So no
 * timer is announced on the intake path (SLA timers are due a queue's SLA later, minutes) unless its SLA is shorter.
 */
export const TIMER_WAKE_HORIZON_MS = 5000

/** Whether a timer due at `dueAt` (RFC 3339), written at `now`, is announced on the `timers` channel. */
export function announcesTimer(dueAt: string, now: Date): boolean {
  return Date.parse(dueAt) - now.getTime() < TIMER_WAKE_HORIZON_MS
}

export interface ChangeFeed {
  /**
   * Calls `fn` with the payload of every change on `channel`, whatever node made it, and with `undefined` after the
   * feed was cut and listens again (catch up then). Never throws into the caller; returns the unsubscribe function.
   * (Payloads: `audit` the newest seq appended, `policy` the version activated, `timers` a timer's due time, `keys`
   * the id of an API key just revoked.)
   */
  subscribe(channel: ChangeChannel, fn: (payload: string | undefined) => void): () => void
  /** Whether changes made by other nodes arrive through this feed (PostgreSQL), not only this process's (SQLite). */
  readonly shared: boolean
}

/** The subscribers of a feed, and `emit(channel, payload)` to call them; a subscriber that throws does not stop the rest. */
export function createChangeHub(onError: (e: unknown) => void = () => undefined): {
  readonly subscribe: ChangeFeed['subscribe']
  emit(channel: ChangeChannel, payload: string | undefined): void
  /** Every subscriber of every channel, with `undefined`: after a reconnect. */
  emitAll(): void
  /** How many subscribers there are now (a listener connection is opened only while there are some). */
  readonly size: number
} {
  const subscribers = new Map<ChangeChannel, Set<(payload: string | undefined) => void>>()
  let size = 0
  const emit = (channel: ChangeChannel, payload: string | undefined) => {
    for (const fn of subscribers.get(channel) ?? []) {
      try {
        fn(payload)
      } catch (e) {
        onError(e)
      }
    }
  }
  return {
    subscribe(channel, fn) {
      let set = subscribers.get(channel)
      if (set === undefined) {
        set = new Set()
        subscribers.set(channel, set)
      }
      // A wrapper per call, so subscribing one function twice gives two subscriptions, each removed by its own call.
      const one = (p: string | undefined) => fn(p)
      set.add(one)
      size++
      let done = false
      return () => {
        if (done) return
        done = true
        set.delete(one)
        size--
      }
    },
    emit,
    emitAll() {
      for (const channel of CHANGE_CHANNELS) emit(channel, undefined)
    },
    get size() {
      return size
    },
  }
}

/** A feed that only wakes this process: SQLite's (one process per data directory). */
export function createLocalChangeFeed(): ChangeFeed & { emit(channel: ChangeChannel, payload: string): void } {
  const hub = createChangeHub()
  return { subscribe: hub.subscribe, emit: hub.emit, shared: false }
}

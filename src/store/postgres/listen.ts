import pg from 'pg'
import { CHANGE_CHANNELS, type ChangeChannel, type ChangeFeed, createChangeHub, PG_CHANNEL } from '../changes.js'

const BY_PG_CHANNEL = new Map<string, ChangeChannel>(CHANGE_CHANNELS.map((c) => [PG_CHANNEL[c], c]))

export interface PgChangeFeedOptions {
  /** The listening connection failed or was cut (it is opened again with backoff). */
  readonly onError?: (e: unknown) => void
  /** First pause before connecting again, ms (default 250), doubled per failure up to `maxBackoffMs` (default 5000). */
  readonly minBackoffMs?: number
  readonly maxBackoffMs?: number
}

/**
 * The change feed of a PostgreSQL store: one dedicated connection per store (per node, not per subscriber) that
 * `LISTEN`s on every Baton channel while anyone is subscribed. The connection's `error` and `end` are handled here
 * (an unhandled `error` event on a pg client ends the process): it is opened again with backoff, and once it listens
 * again every subscriber gets `undefined` to catch up on what was sent meanwhile.
 */
export function createPgChangeFeed(
  config: pg.ClientConfig,
  options: PgChangeFeedOptions = {},
): ChangeFeed & { close(): Promise<void> } {
  const hub = createChangeHub(options.onError)
  const minBackoff = options.minBackoffMs ?? 250
  const maxBackoff = options.maxBackoffMs ?? 5000
  let client: pg.Client | undefined
  let connecting = false
  let closed = false
  let failures = 0
  let retry: NodeJS.Timeout | undefined

  function reconnectLater(): void {
    if (closed || retry !== undefined || connecting) return
    const wait = Math.min(maxBackoff, minBackoff * 2 ** Math.min(failures, 10))
    failures++
    retry = setTimeout(() => {
      retry = undefined
      void connect()
    }, wait)
    retry.unref()
  }

  async function connect(): Promise<void> {
    if (closed || connecting || client !== undefined) return
    connecting = true
    const c = new pg.Client(config)
    let lost = false
    const drop = (e: unknown) => {
      if (lost) return
      lost = true
      if (e !== undefined) options.onError?.(e)
      if (client === c) client = undefined
      c.end().catch(() => undefined)
      reconnectLater()
    }
    c.on('error', drop)
    c.on('end', () => drop(undefined))
    c.on('notification', (m) => {
      const channel = BY_PG_CHANNEL.get(m.channel)
      if (channel !== undefined) hub.emit(channel, m.payload)
    })
    try {
      await c.connect()
      await c.query(CHANGE_CHANNELS.map((ch) => `listen ${PG_CHANNEL[ch]}`).join('; '))
    } catch (e) {
      connecting = false
      drop(e)
      return
    }
    connecting = false
    if (closed || lost) {
      await c.end().catch(() => undefined)
      return
    }
    client = c
    failures = 0
    // Whatever was notified before this connection listened is caught up from the store by each subscriber.
    hub.emitAll()
  }

  return {
    shared: true,
    subscribe(channel, fn) {
      const off = hub.subscribe(channel, fn)
      if (client === undefined && retry === undefined) void connect()
      return off
    },
    async close() {
      closed = true
      clearTimeout(retry)
      const c = client
      client = undefined
      await c?.end().catch(() => undefined)
    },
  }
}

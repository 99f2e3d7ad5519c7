import pg from 'pg'
import { storeErrorOf } from '../engine-errors.js'
import type { SequencerLease } from '../ports.js'

/**
 * Takes the session advisory lock `lockId` on a connection of its own (not a pooled one: the lock lives exactly as
 * long as that session) and returns it as a lease, or undefined when another session holds it.
 *
 * The connection's errors are handled here: when the database cuts it (a restart's 57P01, a network failure) the
 * lease is lost at once, `held()` says false from then on, and the holder takes a new one (`acquire` again) when the
 * database is back. An unhandled `error` event on a pg client would end the process.
 */
export async function acquireAdvisoryLease(
  config: pg.ClientConfig,
  lockId: bigint,
): Promise<SequencerLease | undefined> {
  const client = new pg.Client(config)
  let lost = false
  let released = false
  client.on('error', () => {
    lost = true
  })
  client.on('end', () => {
    lost = true
  })
  try {
    await client.connect()
    const r = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1) as ok', [lockId.toString()])
    if (r.rows[0]?.ok !== true) {
      await client.end().catch(() => undefined)
      return undefined
    }
  } catch (e) {
    await client.end().catch(() => undefined)
    throw storeErrorOf(e) ?? e
  }
  return {
    async held() {
      if (lost || released) return false
      try {
        // The lock is in pg_locks only while this session holds it.
        const q = await client.query<{ n: number }>(
          `select count(*)::int as n from pg_locks where locktype = 'advisory' and pid = pg_backend_pid() and granted
             and ((classid::bigint << 32) | objid::bigint) = $1`,
          [lockId.toString()],
        )
        return (q.rows[0]?.n ?? 0) > 0
      } catch {
        lost = true
        return false
      }
    },
    async release() {
      if (released) return
      released = true
      if (!lost) await client.query('select pg_advisory_unlock($1)', [lockId.toString()]).catch(() => undefined)
      await client.end().catch(() => undefined)
    },
  }
}

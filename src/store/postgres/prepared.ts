import { createHash } from 'node:crypto'
import type pg from 'pg'

/** Times a statement text is run unnamed before it is prepared (once it repeats, it is one of the hot ones). */
const PREPARE_AFTER = 3
/** Statement texts prepared at most per store; past it, new ones stay unnamed (a bound on the server's memory). */
const MAX_PREPARED = 200
/** Texts counted at most while they wait to be seen PREPARE_AFTER times; past it the counts start over. */
const MAX_COUNTED = 2000

const PREPARABLE = /^\s*(select|insert|update|delete|with)\b/i

/**
 * Server-side prepared statements for the hot queries of a pool: a statement text run `PREPARE_AFTER` times gets a
 * name (its SHA-256), so each connection has PostgreSQL parse and plan it once (pg's `name` field: Parse on the
 * connection's first use of the name, then Bind/Execute only) instead of at every execution. The store's hot
 * statements keep one text per shape (`statementCache`, `customerWithOpenCases`, the audit drain), so they are the
 * ones that repeat; texts that embed values never reach the threshold, and only SELECT, INSERT, UPDATE, DELETE and
 * WITH statements are named (never BEGIN, COMMIT, SAVEPOINT). It costs no round trip: pg sends Parse with the first
 * Bind/Execute.
 *
 * A prepared statement whose tables changed shape under it (another node ran a migration adding a column to a table
 * it reads with `select *`) fails once on each connection with 0A000 "cached plan must not change result type": that
 * name is then dropped for that connection, and the statement's next run prepares it again under a new name.
 */
export function prepareHotStatements(pool: pg.Pool): void {
  const names = new Map<string, string>()
  let counts = new Map<string, number>()
  const nameOf = (text: string): string | undefined => {
    const known = names.get(text)
    if (known !== undefined) return known
    if (names.size >= MAX_PREPARED || !PREPARABLE.test(text)) return undefined
    const seen = (counts.get(text) ?? 0) + 1
    if (seen < PREPARE_AFTER) {
      if (counts.size >= MAX_COUNTED) counts = new Map()
      counts.set(text, seen)
      return undefined
    }
    counts.delete(text)
    const name = `baton_${createHash('sha256').update(text).digest('base64url').slice(0, 32)}`
    names.set(text, name)
    return name
  }
  pool.on('connect', (client: pg.PoolClient) => {
    const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>
    // names this connection dropped after a stale plan, each with the generation that replaces it
    const renamed = new Map<string, string>()
    // Kysely's form, query(text, values), is the one named; any other (a config object, a callback) passes through.
    const patched = (...args: unknown[]): unknown => {
      const [text, values] = args
      if (args.length !== 2 || typeof text !== 'string' || !Array.isArray(values)) return query(...args)
      const shared = nameOf(text)
      if (shared === undefined) return query(text, values)
      const name = renamed.get(shared) ?? shared
      return query({ name, text, values }).catch((e: unknown) => {
        const err = e as { code?: unknown; message?: unknown }
        if (err.code === '0A000' && String(err.message).includes('cached plan must not change result type')) {
          renamed.set(shared, `${shared}_${renamed.size + 1}`)
        }
        throw e
      })
    }
    ;(client as unknown as { query: typeof patched }).query = patched
  })
}

import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import pg from 'pg'
import { BatonError } from '../errors.js'
import { describeStoreUrl, explainStartError } from './engine-errors.js'

/** Where a store lives: PostgreSQL when a URL is given, else `baton.db` in the data directory. */
export interface StoreLocation {
  readonly databaseUrl: string | undefined
  readonly dataDir: string
  /** PostgreSQL: longest wait for the connection, ms (BATON_DATABASE_CONNECT_TIMEOUT_MS). */
  readonly databaseConnectTimeoutMs?: number
}

/** The location in words, for messages: the SQLite file, or the PostgreSQL URL without its password. */
export function describeLocation(where: StoreLocation): string {
  return where.databaseUrl === undefined ? join(where.dataDir, 'baton.db') : describeStoreUrl(where.databaseUrl)
}

/**
 * Checks, creating nothing, that a Baton store is at `where`: the SQLite file exists and holds Baton's migrations
 * table, or the PostgreSQL database exists and holds it. Throws `STORE_NOT_FOUND` naming the place otherwise, and
 * `STORE_UNAVAILABLE` when PostgreSQL cannot be reached. Commands that work on an existing deployment call it before
 * opening the store (opening would create one); only `baton serve` creates a store.
 */
export async function assertStoreExists(where: StoreLocation): Promise<void> {
  const shown = describeLocation(where)
  const missing = (why: string) =>
    new BatonError('STORE_NOT_FOUND', `no Baton store at ${shown}: ${why} (baton serve creates one)`)
  if (where.databaseUrl === undefined) {
    if (!existsSync(where.dataDir)) throw missing(`the directory ${where.dataDir} does not exist`)
    const file = join(where.dataDir, 'baton.db')
    if (!existsSync(file)) throw missing('the file does not exist')
    if (!statSync(file).isFile()) throw missing('not a file')
    let db: SQLite.Database | undefined
    try {
      db = new SQLite(file, { fileMustExist: true })
      const row = db.prepare("select 1 from sqlite_master where type = 'table' and name = 'baton_migrations'").get()
      if (row === undefined) throw missing('the database has no Baton tables')
    } catch (e) {
      if (e instanceof BatonError) throw e
      throw missing(`not an SQLite database (${(e as Error).message})`)
    } finally {
      db?.close()
    }
    return
  }
  const client = new pg.Client({
    connectionString: where.databaseUrl,
    connectionTimeoutMillis: where.databaseConnectTimeoutMs ?? 5000,
  })
  try {
    await client.connect()
  } catch (e) {
    await client.end().catch(() => undefined)
    if ((e as { code?: unknown }).code === '3D000') throw missing('the database does not exist')
    const why = explainStartError(e) ?? `cannot connect: ${(e as Error).message}`
    throw new BatonError('STORE_UNAVAILABLE', `${shown}: ${why}`, { cause: e })
  }
  try {
    const r = await client.query<{ found: boolean }>("select to_regclass('baton_migrations') is not null as found")
    if (r.rows[0]?.found !== true) throw missing('the database has no Baton tables')
  } finally {
    await client.end().catch(() => undefined)
  }
}

import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import SQLite from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { createKyselyStore } from '../kysely-store.js'
import type { Store } from '../ports.js'
import type { Database } from '../schema.js'

/**
 * The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so a commit is on disk before Baton
 * acknowledges it. `file` may be ':memory:' for tests.
 */
export function createSqliteStore(file: string): Store {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  const sqlite = new SQLite(file)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = FULL')
  sqlite.pragma('foreign_keys = ON')
  sqlite.pragma('busy_timeout = 5000')
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) })
  return createKyselyStore(db, 'sqlite')
}

import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import SQLite from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { withStoreErrors } from '../error-mapping.js'
import { createKyselyStore } from '../kysely-store.js'
import type { Store } from '../ports.js'
import type { Database } from '../schema.js'
import { startCheckpointer } from './checkpointer.js'
import { withStatementCache } from './statement-cache.js'
import { createWalSync } from './wal-sync.js'

/**
 * The embedded store: one SQLite file in WAL mode. Every transaction is on disk before Baton acknowledges it: by
 * group commit (`synchronous=NORMAL` and one shared fsync of the WAL per group of commits, see `wal-sync.ts`), or,
 * with `BATON_SQLITE_SYNC=full`, by SQLite's own fsync inside each commit. `file` may be ':memory:' for tests.
 */
export function createSqliteStore(file: string, options: { readonly sync?: 'group' | 'full' } = {}): Store {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  const sqlite = new SQLite(file)
  sqlite.pragma('journal_mode = WAL')
  const group = file !== ':memory:' && (options.sync ?? 'group') === 'group'
  sqlite.pragma(group ? 'synchronous = NORMAL' : 'synchronous = FULL')
  sqlite.pragma('foreign_keys = ON')
  sqlite.pragma('busy_timeout = 5000')
  const db = new Kysely<Database>({
    dialect: withStoreErrors(new SqliteDialect({ database: withStatementCache(sqlite) })),
  })
  if (!group) return createKyselyStore(db, 'sqlite')
  // Checkpoints run in a worker (see checkpointer.ts); the writer's own only past 10,000 pages (40 MB of WAL).
  sqlite.pragma('wal_autocheckpoint = 10000')
  const checkpointer = startCheckpointer(file)
  const wal = createWalSync(`${file}-wal`)
  return createKyselyStore(db, 'sqlite', {
    afterCommit: () => wal.sync(),
    onClose: async () => {
      await wal.close()
      await checkpointer.stop()
    },
  })
}

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import pg from 'pg'
import { describe } from 'vitest'
import { freshDatabase, pgAvailable } from '../../test/support/pg.js'
import { runStoreContract } from './contract.js'
import { createPostgresStore } from './postgres/database.js'
import { createSqliteStore } from './sqlite/database.js'

runStoreContract('sqlite', {
  async open() {
    const dir = mkdtempSync(join(tmpdir(), 'baton-store-'))
    const file = join(dir, 'baton.db')
    const store = createSqliteStore(file)
    await store.migrate()
    return {
      store,
      another: () => createSqliteStore(file),
      exec: async (sql) => {
        const db = new SQLite(file)
        try {
          db.exec(sql)
        } finally {
          db.close()
        }
      },
      cleanup: async () => {
        await store.close()
        rmSync(dir, { recursive: true, force: true })
      },
    }
  },
})

describe.skipIf(!pgAvailable)('postgres', () => {
  runStoreContract('postgres', {
    async open() {
      const db = await freshDatabase()
      const store = createPostgresStore(db.url)
      await store.migrate()
      return {
        store,
        another: () => createPostgresStore(db.url, { poolSize: 2 }),
        exec: async (sql) => {
          const c = new pg.Client({ connectionString: db.url })
          await c.connect()
          try {
            await c.query(sql)
          } finally {
            await c.end()
          }
        },
        cleanup: async () => {
          await store.close()
          await db.drop()
        },
      }
    },
  })
})

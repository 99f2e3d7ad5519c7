import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { freshDatabase, pgAvailable } from '../../test/support/pg.js'
import { backfillDecisionColumns, decisionColumns } from './decision-columns.js'
import { migrateToLatest } from './migrations.js'
import type { Engine } from './ports.js'

// decisions as stored by this and earlier versions, and shapes a hand (or a bug) could leave
const DATA: Record<string, unknown>[] = [
  {
    decisionId: 'dec_1',
    messageId: 'msg_1',
    kind: 'route',
    handler: { kind: 'operator', queue: 'billing' },
    rules: ['refund-human', 'x'],
    trigger: 'payment',
    policy: { name: 'shop', version: 3, hash: 'ab12' },
    facts: { signals: { intent: 'refund', text: 'é "quoted" \\ ✓' } },
  },
  { decisionId: 'dec_2', kind: 'action', outcome: 'allow', rules: [], policy: { version: '2', hash: 7 } },
  { handler: 'agent', rules: 'r', trigger: null, policy: { version: 1.5 }, messageId: 3 },
  { handler: [1], policy: null },
  {},
]

async function open(engine: Engine): Promise<{ db: Kysely<unknown>; close: () => Promise<void> }> {
  if (engine === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'baton-lean-'))
    const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: new SQLite(join(dir, 'db')) }) })
    return {
      db,
      close: async () => {
        await db.destroy()
        rmSync(dir, { recursive: true, force: true })
      },
    }
  }
  const fresh = await freshDatabase()
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: fresh.url }) }),
  })
  return {
    db,
    close: async () => {
      await db.destroy()
      await fresh.drop()
    },
  }
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`decision lean columns on ${engine}`, () => {
    const closers: (() => Promise<void>)[] = []
    afterAll(async () => {
      for (const c of closers) await c()
    })

    it('the backfill (migration 0009) gives every row what decisionColumns gives, and decisions stay append-only', async () => {
      const { db, close } = await open(engine)
      closers.push(close)
      await migrateToLatest(db, engine)
      // rows as a store of the previous schema holds them: no lean columns
      for (const [i, data] of DATA.entries()) {
        await sql`insert into decisions (id, case_id, kind, outcome, data, at) values (${`d${i}`}, 'cs_1', 'route', 'agent', ${JSON.stringify(data)}, '2026-01-01T00:00:00.000Z')`.execute(
          db,
        )
      }
      await db.transaction().execute((trx) => backfillDecisionColumns(trx, engine))
      const { rows } = await sql<Record<string, unknown>>`select * from decisions order by id`.execute(db)
      expect(rows).toHaveLength(DATA.length)
      for (const r of rows) {
        const want = decisionColumns(JSON.parse(r.data as string))
        const got = {
          handler: r.handler,
          rules: r.rules,
          trigger: r.trigger,
          policy_hash: r.policy_hash,
          policy_version: r.policy_version === null ? null : Number(r.policy_version),
          message_id: r.message_id,
        }
        // JSON texts compared as values (an engine may space them differently)
        const parsed = (c: typeof got) => ({
          ...c,
          handler: c.handler === null ? null : JSON.parse(c.handler as string),
          rules: c.rules === null ? null : JSON.parse(c.rules as string),
        })
        expect(parsed(got)).toEqual(parsed(want))
      }
      expect(rows[0]!.policy_version).not.toBeNull()
      await expect(sql`update decisions set trigger = 'x'`.execute(db)).rejects.toThrow(/append-only/)
    })
  })
}

import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freshDatabase, pgAvailable } from '../../../test/support/pg.js'
import { prepareHotStatements } from './prepared.js'

describe.skipIf(!pgAvailable)('prepared hot statements (PostgreSQL)', () => {
  let db: { url: string; drop: () => Promise<void> }
  let pool: pg.Pool
  /** Kysely's way: a checked-out client's query(text, values) (pool.query passes a callback, left unnamed). */
  const run = async (text: string, values: unknown[] = []) => {
    const c = await pool.connect()
    try {
      return await c.query(text, values)
    } finally {
      c.release()
    }
  }
  /** The statements prepared on the pool's one connection, as PostgreSQL lists them. */
  const prepared = async (): Promise<string[]> =>
    (await run('select statement from pg_prepared_statements')).rows.map((r) => r.statement as string)

  beforeAll(async () => {
    db = await freshDatabase()
    pool = new pg.Pool({ connectionString: db.url, max: 1 })
    prepareHotStatements(pool)
    await run('create table t (a int)')
  })
  afterAll(async () => {
    await pool?.end()
    await db?.drop()
  })

  it('prepares a statement once it repeats, and never a transaction command', async () => {
    const text = 'select $1::int + 1 as n'
    for (let i = 0; i < 2; i++) expect((await run(text, [i])).rows).toEqual([{ n: i + 1 }])
    expect(await prepared()).not.toContain(text)
    for (let i = 2; i < 6; i++) expect((await run(text, [i])).rows).toEqual([{ n: i + 1 }])
    expect(await prepared()).toContain(text)
    for (let i = 0; i < 4; i++) {
      await run('begin')
      await run('commit')
    }
    expect((await prepared()).filter((s) => /^(begin|commit)/i.test(s))).toEqual([])
  })

  it('prepares again, under a new name, a statement whose table changed shape under it', async () => {
    const text = 'select * from t where a = $1'
    await run('insert into t values (1)')
    for (let i = 0; i < 4; i++) expect((await run(text, [1])).rows).toEqual([{ a: 1 }])
    expect(await prepared()).toContain(text)
    await run('alter table t add column b int')
    await expect(run(text, [1])).rejects.toMatchObject({ code: '0A000' })
    expect((await run(text, [1])).rows).toEqual([{ a: 1, b: null }])
  })
})

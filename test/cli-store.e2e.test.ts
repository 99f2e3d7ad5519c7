import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, startTestApp, type TestApp } from './support/app.js'
import { runCli } from './support/audit.js'
import { freshDatabase, PG_ADMIN_URL, pgAvailable } from './support/pg.js'

/*
 * Commands that work on an existing deployment's store refuse a store that does not exist (exit 1, naming where
 * they looked) and never create one; each takes --data-dir and --database-url; none needs the workspace.
 */

const tmp = mkdtempSync(join(tmpdir(), 'baton-cli-store-'))
const STORE_COMMANDS: readonly (readonly string[])[] = [
  ['audit', 'verify'],
  ['audit', 'export', '--out', join(tmp, 'export.jsonl')],
  ['audit', 'prove', '0'],
  ['audit', 'rotate-key'],
  ['keys', 'create', '--role', 'admin', '--name', 'recovery'],
  ['agents', 'list'],
  ['agents', 'show', 'shop-assistant'],
  ['agents', 'activate', 'shop-assistant', '--reason', 'r'],
  ['agents', 'suspend', 'shop-assistant', '--reason', 'r'],
  ['agents', 'retire', 'shop-assistant', '--reason', 'r'],
  ['agents', 'review'],
]
// Where nothing is: a store named by the environment must not be used or created when a flag names another.
const ELSEWHERE = {
  BATON_DATA_DIR: join(tmp, 'env-data'),
  BATON_DATABASE_URL: '',
  BATON_WORKSPACE: join(tmp, 'no-workspace'),
}

afterAll(() => rmSync(tmp, { recursive: true, force: true }))

describe('store commands on a store that does not exist', () => {
  it.concurrent.each(STORE_COMMANDS.map((c) => [c.join(' '), c] as const))(
    'baton %s --data-dir MISSING: exit 1 naming the file, nothing created',
    async (_name, cmd) => {
      const missing = join(tmp, `missing-${cmd.join('-')}`)
      const r = await runCli([...cmd, '--data-dir', missing], ELSEWHERE)
      expect(r.code).toBe(1)
      expect(r.stderr).toBe(
        `baton: STORE_NOT_FOUND: no Baton store at ${join(missing, 'baton.db')}: the directory ${missing} does not exist (baton serve creates one)\n`,
      )
      expect(r.stdout).toBe('')
      expect(existsSync(missing)).toBe(false)
      expect(existsSync(ELSEWHERE.BATON_DATA_DIR)).toBe(false)
      expect(existsSync(join(tmp, 'export.jsonl'))).toBe(false)
    },
    30_000,
  )

  it('baton audit verify with BATON_DATA_DIR of a missing store (the reported case) says so, exit 1', async () => {
    const missing = join(tmp, 'reported')
    const r = await runCli(['audit', 'verify'], { ...ELSEWHERE, BATON_DATA_DIR: missing })
    expect(r.code).toBe(1)
    expect(r.stdout).not.toMatch(/ok/)
    expect(r.stderr).toContain(join(missing, 'baton.db'))
    expect(existsSync(missing)).toBe(false)
  }, 30_000)

  it('an empty directory or a file that is not a Baton store is refused, and left as it was', async () => {
    const empty = join(tmp, 'empty')
    mkdirSync(empty)
    const junk = join(tmp, 'junk')
    mkdirSync(junk)
    writeFileSync(join(junk, 'baton.db'), 'not a database\n')
    const bare = join(tmp, 'bare')
    mkdirSync(bare)
    // an SQLite file without Baton's tables
    const { default: SQLite } = await import('better-sqlite3')
    new SQLite(join(bare, 'baton.db')).close()
    const [a, b, c, d] = await Promise.all([
      runCli(['audit', 'verify', '--data-dir', empty], ELSEWHERE),
      runCli(['keys', 'create', '--role', 'admin', '--name', 'x', '--data-dir', empty], ELSEWHERE),
      runCli(['agents', 'list', '--data-dir', junk], ELSEWHERE),
      runCli(['audit', 'verify', '--data-dir', bare], ELSEWHERE),
    ])
    for (const r of [a, b]) {
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/^baton: STORE_NOT_FOUND: no Baton store at .*empty\/baton\.db: the file does not exist/)
    }
    expect(readdirSync(empty)).toEqual([])
    expect(c.code).toBe(1)
    expect(c.stderr).toMatch(/^baton: STORE_NOT_FOUND: no Baton store at .*junk\/baton\.db: not an SQLite database/)
    expect(readdirSync(junk)).toEqual(['baton.db'])
    expect(d.code).toBe(1)
    expect(d.stderr).toMatch(/bare\/baton\.db: the database has no Baton tables/)
    expect(readdirSync(bare)).toEqual(['baton.db'])
  }, 60_000)
})

describe.skipIf(!pgAvailable)('store commands on a PostgreSQL store that does not exist', () => {
  it('a database that does not exist, or one without Baton tables: exit 1 naming it, no table created', async () => {
    const nowhere = new URL(PG_ADMIN_URL)
    nowhere.pathname = `/baton_t_absent_${process.pid}`
    const db = await freshDatabase()
    try {
      const [absent, empty, keys] = await Promise.all([
        runCli(['audit', 'verify', '--database-url', nowhere.toString()], ELSEWHERE),
        runCli(['agents', 'list', '--database-url', db.url], ELSEWHERE),
        runCli(['keys', 'create', '--role', 'admin', '--name', 'x', '--database-url', db.url], ELSEWHERE),
      ])
      expect(absent.code).toBe(1)
      expect(absent.stderr).toBe(
        `baton: STORE_NOT_FOUND: no Baton store at ${nowhere.toString()}: the database does not exist (baton serve creates one)\n`,
      )
      for (const r of [empty, keys]) {
        expect(r.code).toBe(1)
        expect(r.stderr).toMatch(/^baton: STORE_NOT_FOUND: no Baton store at .*: the database has no Baton tables/)
      }
      const c = new pg.Client({ connectionString: db.url })
      await c.connect()
      try {
        const t = await c.query(
          "select count(*)::int as n from information_schema.tables where table_schema = 'public'",
        )
        expect(t.rows[0].n).toBe(0)
      } finally {
        await c.end()
      }
    } finally {
      await db.drop()
    }
  }, 60_000)
})

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`store commands on an existing ${engine} store`, () => {
    let t: TestApp
    let where: string[]
    beforeAll(async () => {
      t = await startTestApp({ engine, auditHeadIntervalMs: 3_600_000 })
      await t.app.audit.sequenceOnce()
      where = engine === 'sqlite' ? ['--data-dir', t.dataDir] : ['--database-url', t.databaseUrl!]
    })
    afterAll(async () => {
      await t?.close()
    })

    it('work by flag alone, with no workspace and the environment naming no store or another one', async () => {
      // With --data-dir alone, a BATON_DATABASE_URL in the environment is not used (that PostgreSQL does not exist).
      const env = { ...ELSEWHERE, BATON_DATABASE_URL: 'postgres://nobody@127.0.0.1:1/nowhere' }
      const [list, show, verify, key, missingAgent] = await Promise.all([
        runCli(['agents', 'list', '--json', ...where], env),
        runCli(['agents', 'show', 'shop-assistant', ...where], env),
        runCli(['audit', 'verify', ...where], env),
        runCli(['keys', 'create', '--role', 'service', '--name', 'ci', ...where], env),
        runCli(['agents', 'suspend', 'ghost', '--reason', 'r', ...where], env),
      ])
      expect(list.code, list.stderr).toBe(0)
      expect(
        list.stdout
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l).id),
      ).toContain('shop-assistant')
      expect(show.code).toBe(0)
      expect(JSON.parse(show.stdout)).toMatchObject({ id: 'shop-assistant', state: 'active' })
      expect(verify.code).toBe(0)
      expect(verify.stdout).toMatch(/^ok: \d+ entries, \d+ signed heads/)
      expect(key.code).toBe(0)
      const created = key.stdout.trim()
      expect(created).toMatch(/^bk_service_/)
      const r = await t.app.server.inject({ url: '/v1/policy', headers: bearer(created) })
      expect(r.statusCode).toBe(200)
      // a refusal is exit 1 too, with Baton's code
      expect(missingAgent.code).toBe(1)
      expect(missingAgent.stderr).toMatch(/^baton: AGENT_NOT_FOUND: /)
      expect(existsSync(ELSEWHERE.BATON_DATA_DIR)).toBe(false)
    }, 60_000)
  })
}

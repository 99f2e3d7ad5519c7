import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import SQLite from 'better-sqlite3'
import pg from 'pg'
import type { AuditEntryBody } from '../../src/audit/entry.js'
import { createSequencer, type Sequencer } from '../../src/audit/sequencer.js'
import { openSigningKey, type SigningKeyHolder } from '../../src/audit/signing.js'
import type { Store } from '../../src/store/ports.js'
import { createPostgresStore } from '../../src/store/postgres/database.js'
import { createSqliteStore } from '../../src/store/sqlite/database.js'
import { freshDatabase } from './pg.js'
import { type CliEntry, cliArgs } from './server.js'

export const ROOT = resolve(import.meta.dirname, '../..')

/** A store with a signing key and a sequencer, and raw SQL for playing the attacker (a DBA). */
export interface AuditFixture {
  readonly engine: 'sqlite' | 'postgres'
  readonly store: Store
  readonly dataDir: string
  readonly keyFile: string
  /** Environment that points the CLI at this store. */
  readonly env: Record<string, string>
  readonly keys: SigningKeyHolder
  readonly sequencer: Sequencer
  exec(sql: string): Promise<void>
  /** A bytes literal in this engine's SQL. */
  bytes(b: Uint8Array): string
  /** Turns off the append-only triggers of `table`, as a DBA could. */
  unguard(table: string): Promise<void>
  close(): Promise<void>
}

let clock = Date.UTC(2026, 10, 1, 12, 0, 0)
const now = () => {
  clock += 1000
  return new Date(clock)
}

export async function openAuditFixture(engine: 'sqlite' | 'postgres'): Promise<AuditFixture> {
  const dataDir = mkdtempSync(join(tmpdir(), 'baton-audit-'))
  const keyFile = join(dataDir, 'audit-signing-key.pem')
  const pgdb = engine === 'postgres' ? await freshDatabase() : undefined
  const file = join(dataDir, 'baton.db')
  const store = pgdb ? createPostgresStore(pgdb.url, { poolSize: 3 }) : createSqliteStore(file)
  await store.migrate()
  const keys = await openSigningKey({ store, file: keyFile, now })
  const sequencer = createSequencer({ store, signer: () => keys.current(), now })
  const exec = async (sql: string) => {
    if (pgdb) {
      const c = new pg.Client({ connectionString: pgdb.url })
      await c.connect()
      try {
        await c.query(sql)
      } finally {
        await c.end()
      }
    } else {
      const db = new SQLite(file)
      try {
        db.exec(sql)
      } finally {
        db.close()
      }
    }
  }
  return {
    engine,
    store,
    dataDir,
    keyFile,
    env: { BATON_DATA_DIR: dataDir, ...(pgdb ? { BATON_DATABASE_URL: pgdb.url } : {}) },
    keys,
    sequencer,
    exec,
    bytes: (b) => (pgdb ? `'\\x${Buffer.from(b).toString('hex')}'::bytea` : `X'${Buffer.from(b).toString('hex')}'`),
    unguard: (table) =>
      exec(
        pgdb
          ? `alter table ${table} disable trigger user`
          : `drop trigger if exists ${table}_no_update; drop trigger if exists ${table}_no_delete;`,
      ),
    async close() {
      await sequencer.stop()
      await store.close()
      await pgdb?.drop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

export const body = (n: number, caseId?: string): AuditEntryBody => ({
  type: 'case.test',
  at: new Date(Date.UTC(2026, 10, 1, 12, 0, 0, n)).toISOString(),
  ...(caseId === undefined ? {} : { caseId }),
  actor: { kind: 'service', id: 'test' },
  data: { n, text: `message ${n}` },
})

/**
 * The log every tamper test starts from: 43 entries (seq 0 records the signing key), signed heads at sizes 10, 25
 * and 40, and 3 entries not yet in a signed head.
 */
export async function buildLog(f: AuditFixture): Promise<void> {
  const append = async (to: number) => {
    const from = await f.store.auditSize()
    const bodies = Array.from({ length: to - from }, (_, i) => body(from + i, (from + i) % 4 === 0 ? 'cs_a' : 'cs_b'))
    await f.store.appendAudit(bodies)
  }
  for (const size of [10, 25, 40]) {
    await append(size)
    await f.sequencer.sequenceOnce()
  }
  await append(43)
  // Sequenced before the tests tamper with the tables underneath the store (PostgreSQL queues entries first).
  await f.store.flushAudit()
}

/** Runs the real CLI (`node --import tsx src/cli/main.ts …`, or the built `dist/` for `entry: 'dist'`) with `env`. */
export function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
  entry: CliEntry = 'src',
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const proc = spawn(process.execPath, [...cliArgs(entry), ...args], {
      cwd: ROOT,
      env: { ...process.env, BATON_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    proc.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    proc.once('error', fail)
    proc.once('exit', (code) => done({ code, stdout, stderr }))
  })
}

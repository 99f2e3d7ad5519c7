import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import SQLite from 'better-sqlite3'
import pg from 'pg'
import { formatKey } from '../src/identity/keys.js'
import { prng } from '../src/intents/train.js'
import { startConnector } from '../test/support/connector.js'
import { startServer } from '../test/support/server.js'
import { type Ack, describeLost, findLost, Ledger, type Lost } from './ledger.js'
import { provision, runLoad } from './load.js'
import { auditVerify, headCoversLog, readHttp, readStore, type StoreLocation } from './readers.js'

/*
 * `npm run soak`: SIGKILL `baton serve` (the built dist/) at seeded random moments under concurrent HTTP load, on
 * SQLite and on PostgreSQL, restart it on the same store, and check after every restart that everything it
 * acknowledged with a 2xx is there (in the store and through the API) and that `baton audit verify` passes.
 * Prints `kills N, acknowledged M, lost 0` per engine and in all; exits 1 if anything acknowledged was lost or a check
 * failed, naming what. `--self-check` deletes acknowledged rows on purpose after the first kill: the checker must
 * report them lost (exit 1); if it does not, the checker is broken (exit 2).
 */

const USAGE = `usage: npm run soak -- [--kills N] [--max-seconds S] [--engines sqlite,postgres] [--database-url URL]
                       [--seed N] [--self-check]`

const { values: flags } = parseArgs({
  options: {
    kills: { type: 'string', default: '100' },
    'max-seconds': { type: 'string', default: '600' },
    engines: { type: 'string', default: 'sqlite,postgres' },
    'database-url': { type: 'string' },
    seed: { type: 'string' },
    'self-check': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
})
if (flags.help) {
  process.stdout.write(`${USAGE}\n`)
  process.exit(0)
}
const int = (name: string, v: string, min: number) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`soak: --${name}: expected an integer ≥ ${min}, found '${v}'\n${USAGE}\n`)
    process.exit(1)
  }
  return n
}
const KILLS = int('kills', flags.kills, 1)
const MAX_S = int('max-seconds', flags['max-seconds'], 1)
const SEED = flags.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : int('seed', flags.seed, 0)
const SELF_CHECK = flags['self-check']
const ENGINES = flags.engines.split(',').map((e) => e.trim())
for (const e of ENGINES) {
  if (e !== 'sqlite' && e !== 'postgres') {
    process.stderr.write(`soak: --engines: expected sqlite and/or postgres, found '${e}'\n${USAGE}\n`)
    process.exit(1)
  }
}
// An empty value (CI's "$BATON_TEST_DATABASE_URL" unset) counts as absent.
const DATABASE_URL = flags['database-url'] || process.env.BATON_TEST_DATABASE_URL || undefined

/** Concurrent clients of the load, and how long a server life runs under it before the SIGKILL (seeded). */
const WORKERS = 6
const LIFE_MS = { min: 200, max: 1200 }

const say = (line: string) => process.stdout.write(`${line}\n`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

interface EngineResult {
  readonly engine: string
  readonly kills: number
  readonly acknowledged: number
  readonly lost: readonly Lost[]
  /** Checks that failed other than a loss: audit verify, the signed head, a server that did not start. */
  readonly failures: readonly string[]
  readonly sabotaged: boolean
}

/** The server processes of the run now, killed if the run is interrupted. */
const current = new Map<string, ChildProcess>()
process.once('SIGINT', () => {
  for (const proc of current.values()) proc.kill('SIGKILL')
  process.exit(130)
})

/** Deletes an acknowledged case row and an acknowledged approval row, as a lost write would (the self-check). */
async function dropAcknowledged(at: StoreLocation, ledger: Ledger): Promise<string[]> {
  const last = <K extends Ack['kind']>(kind: K) =>
    [...ledger.acks].reverse().find((a): a is Extract<Ack, { kind: K }> => a.kind === kind)
  const caseId = last('case.open')?.caseId
  const approvalId = last('approval.request')?.approvalId
  const statements = [
    ...(caseId === undefined ? [] : [{ sql: 'delete from cases where id = ?', id: caseId, what: `case ${caseId}` }]),
    ...(approvalId === undefined
      ? []
      : [{ sql: 'delete from approvals where id = ?', id: approvalId, what: `approval ${approvalId}` }]),
  ]
  if (at.databaseUrl !== undefined) {
    const c = new pg.Client({ connectionString: at.databaseUrl })
    await c.connect()
    try {
      for (const s of statements) await c.query(s.sql.replace('?', '$1'), [s.id])
    } finally {
      await c.end()
    }
  } else {
    const db = new SQLite(join(at.dataDir, 'baton.db'))
    try {
      for (const s of statements) db.prepare(s.sql).run(s.id)
    } finally {
      db.close()
    }
  }
  return statements.map((s) => s.what)
}

async function soakEngine(engine: 'sqlite' | 'postgres', index: number, deadline: number): Promise<EngineResult> {
  const dataDir = mkdtempSync(join(tmpdir(), `baton-soak-${engine}-`))
  const connector = await startConnector()
  // Imported here: test/support/pg.ts probes its server as it loads, which a SQLite-only run does not need.
  const db =
    engine === 'postgres' ? await (await import('../test/support/pg.js')).freshDatabase(DATABASE_URL) : undefined
  const at: StoreLocation = { dataDir, databaseUrl: db?.url }
  const adminKey = formatKey('admin', randomBytes(32))
  const env: Record<string, string> = {
    BATON_DATA_DIR: dataDir,
    BATON_ADMIN_KEY: adminKey,
    BATON_SHOP_CONNECTOR_URL: connector.url,
    // A head soon after each restart: the check waits for one over the whole log.
    BATON_AUDIT_HEAD_INTERVAL_MS: '200',
    ...(db === undefined ? {} : { BATON_DATABASE_URL: db.url }),
  }
  const ledger = new Ledger()
  const killAt = prng(SEED + index)
  const loadRandom = prng(SEED + 1000 + index)
  const lost: Lost[] = []
  const failures: string[] = []
  let kills = 0
  let sabotaged = false
  let server: Awaited<ReturnType<typeof startServer>> | undefined
  try {
    server = await startServer(env, 'dist')
    current.set(engine, server.proc)
    const principals = await provision(server.url, adminKey)
    say(`${engine}: fresh store (${db === undefined ? dataDir : db.url.replace(/\/\/[^@]*@/, '//')}), seed ${SEED}`)
    for (let life = 0; kills < KILLS; life++) {
      if (Date.now() >= deadline) {
        say(`${engine}: time budget spent after ${kills} of ${KILLS} kills; stopped killing (--max-seconds ${MAX_S})`)
        break
      }
      // Load, and a SIGKILL at a seeded moment in its midst.
      const lifeMs = LIFE_MS.min + Math.floor(killAt() * (LIFE_MS.max - LIFE_MS.min))
      const acksBefore = ledger.acks.length
      let stopped = false
      const proc: ChildProcess = server.proc
      const exited = new Promise((r) => proc.once('exit', r))
      const load = runLoad({
        url: server.url,
        principals,
        ledger,
        life,
        random: loadRandom,
        workers: WORKERS,
        stopped: () => stopped,
      })
      await sleep(lifeMs)
      proc.kill('SIGKILL')
      stopped = true
      await exited
      await load
      kills++
      const acked = ledger.acks.length - acksBefore

      if (SELF_CHECK && !sabotaged) {
        say(`${engine}: self-check: deleted ${(await dropAcknowledged(at, ledger)).join(' and ')} on purpose`)
        sabotaged = true
      }

      // Restart on the same store, then check.
      const restartStarted = Date.now()
      server = await startServer(env, 'dist')
      current.set(engine, server.proc)
      const restartMs = Date.now() - restartStarted
      const checkStarted = Date.now()
      // The readers and the audit check at once: the server is idle now, nothing writes.
      const lastLife = ledger.since(life)
      const [inStore, throughApi, [covered, verified]] = await Promise.all([
        readStore(at).then((o) => findLost(ledger.acks, o)),
        readHttp(server.url, { adminKey, operatorKey: principals.approverKey }, lastLife).then((o) =>
          findLost(lastLife, o),
        ),
        headCoversLog(server.url, adminKey).then(async (c) => [c, await auditVerify(at)] as const),
      ])
      const seen = new Set<string>()
      const lostNow = [...inStore, ...throughApi].filter((l) => {
        const key = `${l.what} ${l.id}`
        return !seen.has(key) && seen.add(key) !== undefined
      })
      lost.push(...lostNow)
      if (!covered) failures.push(`kill ${kills}: no signed head covered the whole audit log 20 s after the restart`)
      if (!verified.ok) failures.push(`kill ${kills}: baton audit verify failed: ${verified.why}`)
      say(
        `${engine} kill ${kills}/${KILLS}: life ${seconds(lifeMs)}, ` +
          `+${acked} acknowledged (${ledger.acks.length} in all), restart ${seconds(restartMs)}, ` +
          `audit verify ${verified.ok ? 'ok' : 'FAILED'} (${verified.entries} entries, tree ${verified.treeSize}), ` +
          `lost ${lost.length} (check ${seconds(Date.now() - checkStarted)})`,
      )
      if (lostNow.length > 0) say(`${engine}: lost after kill ${kills}:\n  ${describeLost(lostNow)}`)
      if (lost.length > 0 || failures.length > 0) break
    }
  } catch (e) {
    failures.push(`after ${kills} kills: ${(e as Error).message}`)
  } finally {
    if (server !== undefined) {
      const proc = server.proc
      const exited = new Promise((r) => proc.once('exit', r))
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM')
        await exited
      }
    }
    current.delete(engine)
    await connector.close()
    await db?.drop()
    rmSync(dataDir, { recursive: true, force: true })
  }
  const s = ledger.sent
  say(
    `${engine}: sent ${Object.values(s).reduce((a, b) => a + b, 0)} requests (case opens ${s['case.open']}, ` +
      `messages ${s['message.add']}, approval requests ${s['approval.request']}, decisions ${s['approval.decide']})`,
  )
  // a soak that never got an approval acknowledged checked none: the load lost its way (the agent got no case)
  const approvals = ledger.acks.filter((a) => a.kind === 'approval.request').length
  if (kills > 0 && approvals === 0) {
    failures.push('no approval request was acknowledged: the load never reached the approval path (see soak/load.ts)')
  }
  return { engine, kills, acknowledged: ledger.acks.length, lost, failures, sabotaged }
}

const started = Date.now()
const load1 = () => loadavg()[0]!.toFixed(1)
const loadBefore = load1()
const budgetEnd = started + MAX_S * 1000
// The engines run side by side, each on its own store, each within the whole budget.
const results = (
  await Promise.all(
    ENGINES.map((engine, i) => {
      if (engine === 'postgres' && DATABASE_URL === undefined) {
        say('postgres: skipped: no --database-url and no BATON_TEST_DATABASE_URL')
        return undefined
      }
      return soakEngine(engine as 'sqlite' | 'postgres', i, budgetEnd)
    }),
  )
).filter((r) => r !== undefined)

for (const r of results) {
  say(`${r.engine}: kills ${r.kills}, acknowledged ${r.acknowledged}, lost ${r.lost.length}`)
  for (const f of r.failures) say(`${r.engine}: FAILED: ${f}`)
}
const total = (f: (r: EngineResult) => number) => results.reduce((a, r) => a + f(r), 0)
say(
  `total: kills ${total((r) => r.kills)}, acknowledged ${total((r) => r.acknowledged)}, ` +
    `lost ${total((r) => r.lost.length)}`,
)
say(`soak: ${seconds(Date.now() - started)} in all, seed ${SEED}, load average ${loadBefore} before, ${load1()} after`)
const failed = results.some((r) => r.lost.length > 0 || r.failures.length > 0)
if (SELF_CHECK) {
  const missed = results.filter((r) => r.sabotaged && r.lost.length === 0)
  if (missed.length > 0 || !results.some((r) => r.sabotaged)) {
    say(`self-check FAILED: rows deleted on purpose were not reported lost (${missed.map((r) => r.engine).join(', ')})`)
    process.exit(2)
  }
  say('self-check: the checker reported the rows deleted on purpose as lost, as it must (exit 1)')
}
process.exit(failed ? 1 : 0)

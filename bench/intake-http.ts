import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import pg from 'pg'
import { formatKey } from '../src/identity/keys.js'
import { DEFAULT_POOL_SIZE } from '../src/store/postgres/database.js'
import { cpuUs, type Figure, figure, startProcess } from './harness.js'

const CONNECTIONS = 16
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 4)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const WARMUP_S = 2
const PG_URL = process.env.BATON_BENCH_DATABASE_URL
/**
 * A checkout of an earlier Baton (its own node_modules, and bench/pg-round-trips.ts as of this one): when set, its
 * intake on PostgreSQL takes the load in turn with this one's, and intake_pg_vs_before compares the two (a change
 * measured before/after in the same run, on the same machine's mood).
 */
const BEFORE = process.env.BENCH_BEFORE_CHECKOUT

const MESSAGES = [
  'Hi, where is my order #<id>? It was supposed to arrive yesterday.',
  'I want to change the email on my account, order <id>',
  'The parcel <id> arrived damaged, I would like a refund please',
  'Can you tell me when order <id> ships?',
]

let seq = 0

async function load(url: string, key: string | undefined, durationS = DURATION_S): Promise<autocannon.Result> {
  return autocannon({
    url,
    connections: CONNECTIONS,
    duration: durationS,
    // Each request gets its own ids here rather than through autocannon's `idReplacement`, whose Content-Length
    // assumes longer ids than the hyperid it installs makes (the server would wait for bytes that never come).
    requests: MESSAGES.map((text, i) => ({
      method: 'POST' as const,
      path: '/v1/cases',
      headers: {
        'content-type': 'application/json',
        ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
      },
      setupRequest: (req: autocannon.Request) => {
        const id = `${process.pid}${(seq++).toString(36)}`
        return {
          ...req,
          body: JSON.stringify({
            customer: `cu_${id}_${i}`,
            channel: 'chat',
            message: { text: text.replaceAll('<id>', id) },
          }),
        }
      },
    })),
  })
}

/** One load slice on one server: its rate, p99 and the server's CPU per answered request (µs, all threads). */
interface Slice {
  readonly rps: number
  readonly p99: number
  readonly failed: number
  readonly cpuUsPerRequest: number
  /** PostgreSQL servers: `pg` queries per answered request, the work they did after it (audit drain) included. */
  readonly roundTripsPerRequest: number
}

interface Server {
  readonly key: string | undefined
  readonly url: string
  readonly pid: number | undefined
  readonly stop: () => Promise<void>
  readonly slices: Slice[]
  /** Where `bench/pg-round-trips.ts` keeps the server's count of `pg` queries (PostgreSQL servers only). */
  readonly roundTripsFile?: string
}

async function start(
  args: readonly string[],
  baton: boolean,
  extra: Record<string, string> = {},
  cwd?: string,
): Promise<Server> {
  const dataDir = mkdtempSync(join(tmpdir(), 'baton-bench-'))
  const key = baton ? formatKey('admin', randomBytes(32)) : undefined
  const env: Record<string, string> = key === undefined ? {} : { BATON_DATA_DIR: dataDir, BATON_ADMIN_KEY: key }
  const roundTripsFile = (extra.BATON_DATABASE_URL ?? extra.BARE_PG_URL) ? join(dataDir, 'round-trips') : undefined
  const p = await startProcess(
    roundTripsFile === undefined ? args : ['--import', './bench/pg-round-trips.ts', ...args],
    { ...env, ...extra, ...(roundTripsFile === undefined ? {} : { BENCH_ROUND_TRIPS_FILE: roundTripsFile }) },
    cwd,
  )
  return {
    key,
    url: p.url,
    pid: p.proc.pid,
    slices: [],
    ...(roundTripsFile === undefined ? {} : { roundTripsFile }),
    stop: async () => {
      await p.stop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/** Runs one statement on PostgreSQL at `adminUrl` (creating and dropping the bench's databases). */
async function admin(adminUrl: string, statement: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl })
  await c.connect()
  try {
    await c.query(statement)
  } finally {
    await c.end()
  }
}

/**
 * `args` on a fresh PostgreSQL database of the server at `adminUrl`, dropped when the server stops; `urlVar` is the
 * environment variable that hands the database's URL to the server.
 */
async function startOnPostgres(
  adminUrl: string,
  args: readonly string[],
  baton: boolean,
  urlVar: 'BATON_DATABASE_URL' | 'BARE_PG_URL',
  cwd?: string,
): Promise<Server> {
  const name = `baton_bench_${randomBytes(5).toString('hex')}`
  await admin(adminUrl, `create database ${name}`)
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  try {
    const server = await start(args, baton, { [urlVar]: url.toString() }, cwd)
    return {
      ...server,
      stop: async () => {
        await server.stop()
        await admin(adminUrl, `drop database if exists ${name} with (force)`)
      },
    }
  } catch (e) {
    await admin(adminUrl, `drop database if exists ${name} with (force)`)
    throw e
  }
}

const roundTrips = (s: Server): number =>
  s.roundTripsFile === undefined ? Number.NaN : Number(readFileSync(s.roundTripsFile, 'utf8'))

async function slice(server: Server): Promise<void> {
  const before = cpuUs(server.pid)
  const tripsBefore = roundTrips(server)
  const r = await load(server.url, server.key)
  const used = cpuUs(server.pid) - before
  await settle(server)
  // the counter file is rewritten every 100 ms: wait for its last write of what the load caused
  if (server.roundTripsFile !== undefined) await new Promise((done) => setTimeout(done, 250))
  const answered = Math.max(1, r.requests.total)
  server.slices.push({
    rps: r.requests.average,
    p99: r.latency.p99,
    failed: r.non2xx + r.errors,
    cpuUsPerRequest: Math.round(used / answered),
    roundTripsPerRequest: Number(((roundTrips(server) - tripsBefore) / answered).toFixed(2)),
  })
}

/**
 * Waits (at most 10 s) until `server` uses under a tenth of a core, so that what it still does after its load (audit
 * sequencing, WAL checkpoints, group-commit syncs) does not run during the next server's slice.
 */
async function settle(server: Server): Promise<void> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
    const before = cpuUs(server.pid)
    await new Promise((r) => setTimeout(r, 250))
    if (cpuUs(server.pid) - before < 25_000) return
  }
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Median of the per-round ratios a/b (each round's slices ran back to back, so they share the machine's mood). */
const ratioOf = (a: Server, b: Server): number => median(a.slices.map((x, i) => x.rps / b.slices[i]!.rps))

const summary = (s: Server) => ({
  rps: s.slices.map((x) => Math.round(x.rps)),
  p99_ms: median(s.slices.map((x) => x.p99)),
  cpu_us_per_request: median(s.slices.map((x) => x.cpuUsPerRequest)),
  non_2xx: s.slices.reduce((n, x) => n + x.failed, 0),
  ...(s.roundTripsFile === undefined
    ? {}
    : { round_trips_per_request: median(s.slices.map((x) => x.roundTripsPerRequest)) }),
})

/** The machine's 1-minute load average, as a note: the machine is shared, and its load moves every figure. */
const load1 = (): number => Number(loadavg()[0]!.toFixed(2))

/** Runs `servers` in turn: a warm-up slice each, then ROUNDS rounds of one slice each; stops them all at the end. */
async function runInTurn(servers: readonly Server[]): Promise<{ load_before: number; load_after: number }> {
  const before = load1()
  // a warm-up slice each, not counted: JIT, caches and a database that is not empty
  for (const s of servers) {
    await load(s.url, s.key, WARMUP_S)
    await settle(s)
  }
  for (let round = 0; round < ROUNDS; round++) for (const s of servers) await slice(s)
  return { load_before: before, load_after: load1() }
}

/**
 * intake_http_vs_bare_insert (target ≥ 0.5, Baton's p99 in notes.p99_ms): durable intake through HTTP against a
 * bare route that makes each body durable with one SQLite insert (`bench/bare-insert-server.ts`), same connections.
 * Also, for information (no target): intake_http_vs_bare, against a bare constant-JSON fastify route (issue 15
 * re-based the target on the durable route), and intake_without_writes_vs_bare, the same Baton server with its case
 * commits dropped (`bench/intake-ceiling-server.ts`), the most any work on the store could give. The four servers run side by side and take the load in turn, ROUNDS times; each
 * ratio is the median of its per-round ratios, so a machine that speeds up or slows down between rounds moves both
 * sides of it.
 */
export async function intakeHttpVsBare(): Promise<Figure[]> {
  const servers: Server[] = []
  let machine: { load_before: number; load_after: number }
  try {
    for (const [args, baton] of [
      [['bench/bare-server.ts'], false],
      [['src/cli/main.ts', 'serve', '--port', '0'], true],
      [['bench/intake-ceiling-server.ts'], true],
      [['bench/bare-insert-server.ts'], false],
    ] as const) {
      servers.push(await start(args, baton))
    }
    machine = await runInTurn(servers)
  } finally {
    for (const s of servers) await s.stop()
  }
  const [bare, baton, ceiling, insert] = servers as [Server, Server, Server, Server]
  const shared = { connections: CONNECTIONS, slice_s: DURATION_S, rounds: ROUNDS, warmup_s: WARMUP_S, ...machine }
  return [
    figure(
      'intake_http_vs_bare',
      median(baton.slices.map((x) => x.rps)),
      'req/s',
      median(bare.slices.map((x) => x.rps)),
      ratioOf(baton, bare),
      // issue 15: re-based on a durable route (intake_http_vs_bare_insert); this one is for information
      null,
      {
        ...shared,
        intake: summary(baton),
        bare: summary(bare),
        store: 'sqlite WAL, group commit (BATON_SQLITE_SYNC=group)',
      },
    ),
    figure(
      'intake_without_writes_vs_bare',
      median(ceiling.slices.map((x) => x.rps)),
      'req/s',
      median(bare.slices.map((x) => x.rps)),
      ratioOf(ceiling, bare),
      null,
      {
        ...shared,
        what: 'the same server with case commits dropped: auth, signals, classifier, store reads, policy, answer',
        without_writes: summary(ceiling),
      },
    ),
    figure(
      'intake_http_vs_bare_insert',
      median(baton.slices.map((x) => x.rps)),
      'req/s',
      median(insert.slices.map((x) => x.rps)),
      ratioOf(baton, insert),
      '>= 0.5',
      {
        ...shared,
        p99_ms: summary(baton).p99_ms,
        p99_target: '<= 50 ms at 16 connections',
        baseline: 'bare fastify route making one INSERT of the body durable (SQLite WAL, synchronous=FULL), same load',
        bare_insert: summary(insert),
      },
    ),
  ]
}

/**
 * intake_pg_vs_bare_pg_insert (with BATON_BENCH_DATABASE_URL; nothing without it): Baton intake on PostgreSQL against
 * a bare fastify route inserting each body as one row through `pg` with Baton's pool size
 * (`bench/bare-pg-insert-server.ts`), each on a fresh database of that server, same connections, in turn as above.
 * Also intake_pg_without_writes_vs_bare_pg_insert (no target): Baton on PostgreSQL with its case commits dropped.
 * Each server's `pg` queries are counted (`bench/pg-round-trips.ts`): `round_trips_per_request`.
 */
export async function intakePgVsBarePgInsert(): Promise<Figure[]> {
  if (PG_URL === undefined) return []
  const servers: Server[] = []
  let machine: { load_before: number; load_after: number }
  try {
    servers.push(await startOnPostgres(PG_URL, ['bench/bare-pg-insert-server.ts'], false, 'BARE_PG_URL'))
    servers.push(await startOnPostgres(PG_URL, ['src/cli/main.ts', 'serve', '--port', '0'], true, 'BATON_DATABASE_URL'))
    servers.push(await startOnPostgres(PG_URL, ['bench/intake-ceiling-server.ts'], true, 'BATON_DATABASE_URL'))
    if (BEFORE !== undefined) {
      const args = ['src/cli/main.ts', 'serve', '--port', '0']
      servers.push(await startOnPostgres(PG_URL, args, true, 'BATON_DATABASE_URL', BEFORE))
    }
    machine = await runInTurn(servers)
  } finally {
    for (const s of servers) await s.stop()
  }
  const [insert, baton, ceiling, before] = servers as [Server, Server, Server, Server | undefined]
  const shared = {
    connections: CONNECTIONS,
    slice_s: DURATION_S,
    rounds: ROUNDS,
    warmup_s: WARMUP_S,
    pool_size: DEFAULT_POOL_SIZE,
    ...machine,
    cpu_note: "cpu_us_per_request counts the server's process only, not PostgreSQL's",
  }
  return [
    figure(
      'intake_pg_vs_bare_pg_insert',
      median(baton.slices.map((x) => x.rps)),
      'req/s',
      median(insert.slices.map((x) => x.rps)),
      ratioOf(baton, insert),
      '>= 0.5',
      {
        ...shared,
        p99_ms: summary(baton).p99_ms,
        p99_target: '<= 50 ms at 16 connections',
        baseline: 'bare fastify route making one INSERT of the body durable through pg (same pool size), same load',
        intake_pg: summary(baton),
        bare_pg_insert: summary(insert),
      },
    ),
    figure(
      'intake_pg_without_writes_vs_bare_pg_insert',
      median(ceiling.slices.map((x) => x.rps)),
      'req/s',
      median(insert.slices.map((x) => x.rps)),
      ratioOf(ceiling, insert),
      null,
      {
        ...shared,
        what: 'Baton on PostgreSQL with case commits dropped: auth, signals, classifier, store reads, policy, answer',
        without_writes: summary(ceiling),
      },
    ),
    ...(before === undefined
      ? []
      : [
          figure(
            'intake_pg_vs_before',
            median(baton.slices.map((x) => x.rps)),
            'req/s',
            median(before.slices.map((x) => x.rps)),
            ratioOf(baton, before),
            null,
            { ...shared, before: BEFORE, intake_pg: summary(baton), before_pg: summary(before) },
          ),
        ]),
  ]
}

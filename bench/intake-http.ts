import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import pg from 'pg'
import { formatKey } from '../src/identity/keys.js'
import { cpuUs, type Figure, figure, startProcess } from './harness.js'

const CONNECTIONS = 16
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 4)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const WARMUP_S = 2
const PG_URL = process.env.BATON_BENCH_DATABASE_URL

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
}

interface Server {
  readonly key: string | undefined
  readonly url: string
  readonly pid: number | undefined
  readonly stop: () => Promise<void>
  readonly slices: Slice[]
}

async function start(args: readonly string[], baton: boolean, extra: Record<string, string> = {}): Promise<Server> {
  const dataDir = mkdtempSync(join(tmpdir(), 'baton-bench-'))
  const key = baton ? formatKey('admin', randomBytes(32)) : undefined
  const env: Record<string, string> = key === undefined ? {} : { BATON_DATA_DIR: dataDir, BATON_ADMIN_KEY: key }
  const p = await startProcess(args, { ...env, ...extra })
  return {
    key,
    url: p.url,
    pid: p.proc.pid,
    slices: [],
    stop: async () => {
      await p.stop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/** With BATON_BENCH_DATABASE_URL set: Baton on a fresh PostgreSQL database beside the SQLite servers. */
async function startOnPostgres(adminUrl: string): Promise<Server> {
  const name = `baton_bench_${randomBytes(5).toString('hex')}`
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: adminUrl })
    await c.connect()
    try {
      await c.query(sql)
    } finally {
      await c.end()
    }
  }
  await admin(`create database ${name}`)
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  try {
    const server = await start(['src/cli/main.ts', 'serve', '--port', '0'], true, {
      BATON_DATABASE_URL: url.toString(),
    })
    return {
      ...server,
      stop: async () => {
        await server.stop()
        await admin(`drop database if exists ${name} with (force)`)
      },
    }
  } catch (e) {
    await admin(`drop database if exists ${name} with (force)`)
    throw e
  }
}

async function slice(server: Server): Promise<void> {
  const before = cpuUs(server.pid)
  const r = await load(server.url, server.key)
  const used = cpuUs(server.pid) - before
  server.slices.push({
    rps: r.requests.average,
    p99: r.latency.p99,
    failed: r.non2xx + r.errors,
    cpuUsPerRequest: Math.round(used / Math.max(1, r.requests.total)),
  })
  await settle(server)
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
})

/**
 * intake_http_vs_bare: durable intake through HTTP against a bare fastify route, same connections. Also
 * intake_without_writes_vs_bare (no target): the same Baton server with its case commits dropped
 * (`bench/intake-ceiling-server.ts`), the most any work on the store could give; and intake_http_vs_bare_insert (no
 * target): intake against a bare route that makes each body durable with one SQLite insert
 * (`bench/bare-insert-server.ts`). The four servers run side by side and take the load in turn, ROUNDS times; each
 * ratio is the median of its per-round ratios, so a machine that speeds up or slows down between rounds moves both
 * sides of it.
 */
export async function intakeHttpVsBare(): Promise<Figure[]> {
  const servers: Server[] = []
  try {
    for (const [args, baton] of [
      [['bench/bare-server.ts'], false],
      [['src/cli/main.ts', 'serve', '--port', '0'], true],
      [['bench/intake-ceiling-server.ts'], true],
      [['bench/bare-insert-server.ts'], false],
    ] as const) {
      servers.push(await start(args, baton))
    }
    if (PG_URL !== undefined) servers.push(await startOnPostgres(PG_URL))
    // a warm-up slice each, not counted: JIT, caches and a database that is not empty
    for (const s of servers) {
      await load(s.url, s.key, WARMUP_S)
      await settle(s)
    }
    for (let round = 0; round < ROUNDS; round++) for (const s of servers) await slice(s)
  } finally {
    for (const s of servers) await s.stop()
  }
  const [bare, baton, ceiling, insert, onPg] = servers as [Server, Server, Server, Server, Server | undefined]
  const shared = { connections: CONNECTIONS, slice_s: DURATION_S, rounds: ROUNDS, warmup_s: WARMUP_S }
  return [
    figure(
      'intake_http_vs_bare',
      median(baton.slices.map((x) => x.rps)),
      'req/s',
      median(bare.slices.map((x) => x.rps)),
      ratioOf(baton, bare),
      '>= 0.25',
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
      null,
      {
        ...shared,
        baseline: 'bare fastify route making one INSERT of the body durable (SQLite WAL, synchronous=FULL), same load',
        bare_insert: summary(insert),
      },
    ),
    ...(onPg === undefined
      ? []
      : [
          figure(
            'intake_pg_http_vs_bare',
            median(onPg.slices.map((x) => x.rps)),
            'req/s',
            median(bare.slices.map((x) => x.rps)),
            ratioOf(onPg, bare),
            null,
            {
              ...shared,
              what: 'the same intake on PostgreSQL (BATON_BENCH_DATABASE_URL, a fresh database on this machine)',
              intake_pg: summary(onPg),
              cpu_note: "cpu_us_per_request counts Baton's process only, not PostgreSQL's",
            },
          ),
        ]),
  ]
}

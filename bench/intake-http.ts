import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { formatKey } from '../src/identity/keys.js'
import { type Figure, figure, startProcess } from './harness.js'

const CONNECTIONS = 16
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 8)

const MESSAGES = [
  'Hi, where is my order #<id>? It was supposed to arrive yesterday.',
  'I want to change the email on my account, order <id>',
  'The parcel <id> arrived damaged, I would like a refund please',
  'Can you tell me when order <id> ships?',
]

let seq = 0

async function load(url: string, key: string | undefined): Promise<autocannon.Result> {
  return autocannon({
    url,
    connections: CONNECTIONS,
    duration: DURATION_S,
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

/** CPU time (user + system, all threads) a process has used so far, in microseconds, from /proc (Linux). */
function cpuUs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // fields[11] and [12] are utime and stime (fields 14 and 15 of proc(5)), in clock ticks of 10 ms
    return (Number(fields[11]) + Number(fields[12])) * 10_000
  } catch {
    return Number.NaN
  }
}

interface Run {
  readonly result: autocannon.Result
  /** Server CPU per answered request, µs (all of the server's threads). */
  readonly cpuUsPerRequest: number
}

async function measure(args: readonly string[], env: Record<string, string>, key: string | undefined): Promise<Run> {
  const server = await startProcess(args, env)
  const before = cpuUs(server.proc.pid)
  const result = await load(server.url, key)
  const used = cpuUs(server.proc.pid) - before
  await server.stop()
  return { result, cpuUsPerRequest: Math.round(used / Math.max(1, result.requests.total)) }
}

async function batonRun(script: readonly string[]): Promise<Run> {
  const dataDir = mkdtempSync(join(tmpdir(), 'baton-bench-'))
  const adminKey = formatKey('admin', randomBytes(32))
  try {
    return await measure(script, { BATON_DATA_DIR: dataDir, BATON_ADMIN_KEY: adminKey }, adminKey)
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
}

/**
 * intake_http_vs_bare: durable intake through HTTP against a bare fastify route, same connections. Also
 * intake_without_writes_vs_bare (no target): the same Baton server with its case commits dropped
 * (`bench/intake-ceiling-server.ts`), the most any work on the store could give; intake_http_vs_bare_insert (no
 * target): intake against a bare route that makes each body durable with one SQLite insert
 * (`bench/bare-insert-server.ts`); and each server's CPU per request.
 */
export async function intakeHttpVsBare(): Promise<Figure[]> {
  const bare = await measure(['bench/bare-server.ts'], {}, undefined)
  const baton = await batonRun(['src/cli/main.ts', 'serve', '--port', '0'])
  const ceiling = await batonRun(['bench/intake-ceiling-server.ts'])
  const insert = await measure(['bench/bare-insert-server.ts'], {}, undefined)
  const r = baton.result
  const bareRps = bare.result.requests.average
  const cpu = {
    bare_cpu_us_per_request: bare.cpuUsPerRequest,
    cpu_us_per_request: baton.cpuUsPerRequest,
  }
  return [
    figure('intake_http_vs_bare', r.requests.average, 'req/s', bareRps, r.requests.average / bareRps, '>= 0.25', {
      connections: CONNECTIONS,
      duration_s: DURATION_S,
      p99_ms: r.latency.p99,
      bare_p99_ms: bare.result.latency.p99,
      non_2xx: r.non2xx + r.errors,
      ...cpu,
      store: 'sqlite WAL, group commit (BATON_SQLITE_SYNC=group)',
    }),
    figure(
      'intake_without_writes_vs_bare',
      ceiling.result.requests.average,
      'req/s',
      bareRps,
      ceiling.result.requests.average / bareRps,
      null,
      {
        what: 'the same server with case commits dropped: auth, signals, classifier, store reads, policy, answer',
        p99_ms: ceiling.result.latency.p99,
        non_2xx: ceiling.result.non2xx + ceiling.result.errors,
        cpu_us_per_request: ceiling.cpuUsPerRequest,
        bare_cpu_us_per_request: bare.cpuUsPerRequest,
      },
    ),
    figure(
      'intake_http_vs_bare_insert',
      r.requests.average,
      'req/s',
      insert.result.requests.average,
      r.requests.average / insert.result.requests.average,
      null,
      {
        baseline: 'bare fastify route making one INSERT of the body durable (SQLite WAL, synchronous=FULL), same load',
        baseline_p99_ms: insert.result.latency.p99,
        baseline_cpu_us_per_request: insert.cpuUsPerRequest,
        baseline_non_2xx: insert.result.non2xx + insert.result.errors,
      },
    ),
  ]
}

import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
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

/** intake_http_vs_bare: durable intake through HTTP against a bare fastify route, same connections. */
export async function intakeHttpVsBare(): Promise<Figure> {
  const bare = await startProcess(['bench/bare-server.ts'])
  const bareResult = await load(bare.url, undefined)
  await bare.stop()

  const dataDir = mkdtempSync(join(tmpdir(), 'baton-bench-'))
  const adminKey = formatKey('admin', randomBytes(32))
  const baton = await startProcess(['src/cli/main.ts', 'serve', '--port', '0'], {
    BATON_DATA_DIR: dataDir,
    BATON_ADMIN_KEY: adminKey,
  })
  const r = await load(baton.url, adminKey)
  await baton.stop()
  rmSync(dataDir, { recursive: true, force: true })
  const non2xx = r.non2xx + r.errors
  return figure(
    'intake_http_vs_bare',
    r.requests.average,
    'req/s',
    bareResult.requests.average,
    r.requests.average / bareResult.requests.average,
    '>= 0.25',
    {
      connections: CONNECTIONS,
      duration_s: DURATION_S,
      p99_ms: r.latency.p99,
      bare_p99_ms: bareResult.latency.p99,
      non_2xx: non2xx,
      store: 'sqlite WAL, group commit (BATON_SQLITE_SYNC=group)',
    },
  )
}

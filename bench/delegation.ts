import { generateKeyPairSync, randomUUID, sign, verify } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from 'jose'
import pino from 'pino'
import { createApp } from '../src/app.js'
import { configFrom } from '../src/config.js'
import { exchangeToken } from '../src/delegation/token-exchange.js'
import { SHOP } from '../test/support/app.js'
import { postJson as call, cpuUs, type Figure, figure, startBenchBaton } from './harness.js'

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const GRANT_TYPE = 'urn:baton:params:oauth:token-type:grant'
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt'
const CONCURRENCY = 16
const ROUNDS = 4
const SLICE_MS = 1000

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of the bench's own set-up calls
type Json = any

/** A delegate's RFC 7523 assertion with a fresh jti (what the delegate signs, outside the measured work). */
function assertion(privateKey: CryptoKey, id: string): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA' })
    .setIssuer(id)
    .setSubject(id)
    .setAudience('urn:baton')
    .setIssuedAt()
    .setExpirationTime('4m')
    .setJti(randomUUID())
    .sign(privateKey)
}

/**
 * delegate_exchange_vs_raw_crypto: RFC 8693 token exchanges per second, each with its whole work (the actor
 * assertion verified, the delegate read, the two-hop chain read and checked, the token minted, the assertion's jti
 * and the exchange's audit entry committed durably to SQLite), 16 in flight, divided by raw node:crypto Ed25519
 * sign + verify of the same token bytes, in alternating 1 s slices of the same process.
 */
export async function delegateExchangeVsRawCrypto(): Promise<Figure> {
  const dataDir = mkdtempSync(join(tmpdir(), 'baton-bench-'))
  const config = configFrom({}, { dataDir, workspace: SHOP, watchPolicy: false, logLevel: 'silent' })
  const app = await createApp(config, { logger: pino({ level: 'silent' }) })
  try {
    const admin = app.generatedAdminKey as string
    const service = (
      await app.services.keys.create('service', 'bench', { kind: 'admin', id: 'bench', roles: ['admin'] })
    ).key
    const inject = async (method: 'POST' | 'GET', url: string, key: string, payload?: unknown) => {
      const r = await app.server.inject({
        method,
        url,
        headers: { authorization: `Bearer ${key}` },
        ...(payload === undefined ? {} : { payload: payload as object }),
      })
      if (r.statusCode >= 300) throw new Error(`${url}: ${r.statusCode} ${r.body}`)
      return r.json() as Json
    }
    const keys: Record<string, { privateKey: CryptoKey; publicKey: CryptoKey }> = {}
    for (const id of ['acme', 'courier']) {
      keys[id] = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
      const jwk = await exportJWK(keys[id]!.publicKey)
      await inject('POST', '/v1/delegates', admin, {
        id,
        name: id,
        vendor: id,
        contact: `ops@${id}.example`,
        jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x },
      })
    }
    const root = await inject('POST', '/v1/customers/cu_bench/grants', service, {
      delegate: 'acme',
      scopes: ['case:open', 'order:status'],
      expires_at: new Date(Date.now() + 3600_000).toISOString(),
      may_subdelegate: true,
    })
    const acme = await exchangeToken(app.services.authority, {
      grant_type: EXCHANGE,
      subject_token: root.id,
      subject_token_type: GRANT_TYPE,
      actor_token: await assertion(keys.acme!.privateKey, 'acme'),
      actor_token_type: JWT_TYPE,
    })
    const sub = await inject('POST', `/v1/grants/${root.id}/subgrants`, acme.access_token, {
      delegate: 'courier',
      scopes: ['order:status'],
      expires_at: root.expiresAt,
    })
    // the assertions every exchange below spends, signed beforehand (the delegate's work, not Baton's)
    const pool: string[] = []
    for (let i = 0; i < 40_000; i++) pool.push(await assertion(keys.courier!.privateKey, 'courier'))
    let next = 0
    const exchange = () =>
      exchangeToken(app.services.authority, {
        grant_type: EXCHANGE,
        subject_token: sub.id,
        subject_token_type: GRANT_TYPE,
        actor_token: pool[next++] as string,
        actor_token_type: JWT_TYPE,
        scope: 'order:status',
      })
    const sample = await exchange()
    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    const data = Buffer.from(sample.access_token.slice(0, sample.access_token.lastIndexOf('.')))
    const raw = () => {
      const sig = sign(null, data, privateKey)
      if (!verify(null, data, publicKey, sig)) throw new Error('raw verify failed')
    }
    const concurrently = async (ms: number, op: () => Promise<unknown>): Promise<number> => {
      let n = 0
      const end = performance.now() + ms
      const start = performance.now()
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (performance.now() < end) {
            await op()
            n++
          }
        }),
      )
      return (n * 1000) / (performance.now() - start)
    }
    const exchanges = (ms: number) => concurrently(ms, exchange)
    // the exchange's one durable write alone (a fresh jti and the same audit entry), for the breakdown
    const entry = (await app.store.readAudit((await app.store.auditSize()) - 1, await app.store.auditSize()))[0]
    const body = JSON.parse(entry?.entry ?? '{}') as { type: string; at: string; actor: never; data: unknown }
    let k = 0
    const commitOnly = (ms: number) =>
      concurrently(ms, () =>
        app.store.recordExchange(
          { scope: 'bench_commit', id: `${k++}`, expiresAt: new Date(Date.now() + 600_000).toISOString() },
          [{ type: body.type, at: new Date().toISOString(), actor: body.actor, data: body.data }],
        ),
      )
    const raws = (ms: number): number => {
      let n = 0
      const start = performance.now()
      while (performance.now() - start < ms) {
        for (let k = 0; k < 50; k++, n++) raw()
      }
      return (n * 1000) / (performance.now() - start)
    }
    await exchanges(300)
    raws(300)

    // Alternating slices, so that a change in the machine's load hits both sides alike.
    const ratios: number[] = []
    let exSum = 0
    let rawSum = 0
    let commitSum = 0
    for (let round = 0; round < ROUNDS; round++) {
      const ex = await exchanges(SLICE_MS)
      const r = raws(SLICE_MS)
      commitSum += await commitOnly(SLICE_MS / 2)
      exSum += ex
      rawSum += r
      ratios.push(ex / r)
    }
    ratios.sort((a, b) => a - b)
    const median = ((ratios[1] as number) + (ratios[2] as number)) / 2
    return figure('delegate_exchange_vs_raw_crypto', exSum / ROUNDS, 'exchanges/s', rawSum / ROUNDS, median, '>= 0.3', {
      concurrency: CONCURRENCY,
      chain: ['acme', 'courier'],
      perExchange:
        'actor assertion verified (jose, EdDSA pinned), delegate read, two-hop chain read (one recursive query) and checked, access token minted, jti + delegate.token_issued audit entry in one durable SQLite commit (group commit)',
      exchanges: next,
      commitOnlyPerS: Math.round(commitSum / ROUNDS),
      commitOnlyVsRaw: Number((commitSum / rawSum).toFixed(3)),
      signed_bytes: data.length,
      ratios: ratios.map((x) => Number(x.toFixed(4))),
      ratio: 'median of per-slice ratios',
    })
  } finally {
    await app.close()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

const MESSAGES = [
  'Hi, where is my order #<id>? It was supposed to arrive yesterday.',
  'The parcel <id> arrived damaged, I would like a refund please',
  'Can you tell me when order <id> ships?',
  'My order <id> has the wrong size, what can I do?',
]

/**
 * delegate_intake_vs_service: cases opened per second over HTTP by customers' delegates (64 customers, each with a
 * grant and a delegate token: every request verifies the token and re-reads and checks its chain in the store) divided
 * by the same requests with the helpdesk's service key, on the same server and connections, in alternating 4 s slices.
 */
export async function delegateIntakeVsService(): Promise<Figure> {
  const baton = await startBenchBaton()
  const adminKey = baton.adminKey
  const durationS = Number(process.env.BENCH_DURATION_S ?? 4)
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
  try {
    const key = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
    const jwk = await exportJWK(key.publicKey)
    await call(baton.url, '/v1/delegates', adminKey, {
      id: 'acme',
      name: 'Acme assistant',
      vendor: 'Acme',
      contact: 'ops@acme.example',
      jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x },
    })
    const service = (await call(baton.url, '/v1/keys', adminKey, { role: 'service', name: 'bench' })).key as string
    const customers: { id: string; token: string }[] = []
    for (let i = 0; i < 64; i++) {
      const id = `cu_bench_${i}`
      const g = await call(baton.url, `/v1/customers/${id}/grants`, service, {
        delegate: 'acme',
        scopes: ['case:open'],
        expires_at: new Date(Date.now() + 3600_000).toISOString(),
      })
      const t = await call(
        baton.url,
        '/v1/oauth/token',
        '',
        {
          grant_type: EXCHANGE,
          subject_token: g.id,
          subject_token_type: GRANT_TYPE,
          actor_token: await assertion(key.privateKey, 'acme'),
          actor_token_type: JWT_TYPE,
        },
        true,
      )
      customers.push({ id, token: t.access_token })
    }
    let seq = 0
    const load = (delegated: boolean, seconds: number) =>
      autocannon({
        url: baton.url,
        connections: 16,
        duration: seconds,
        requests: MESSAGES.map((text) => ({
          method: 'POST' as const,
          path: '/v1/cases',
          setupRequest: (req: autocannon.Request) => {
            const n = seq++
            const c = customers[n % customers.length] as { id: string; token: string }
            return {
              ...req,
              headers: {
                'content-type': 'application/json',
                authorization: `Bearer ${delegated ? c.token : service}`,
              },
              body: JSON.stringify({
                customer: c.id,
                channel: 'api',
                message: { text: text.replaceAll('<id>', `${10000 + n}`) },
              }),
            }
          },
        })),
      })
    await load(true, 2)
    await load(false, 2)
    const ratios: number[] = []
    const rates = { delegate: 0, service: 0 }
    const cpu = { delegate: 0, service: 0 }
    let failed = 0
    for (let r = 0; r < rounds; r++) {
      const c0 = cpuUs(baton.proc.pid)
      const d = await load(true, durationS)
      const c1 = cpuUs(baton.proc.pid)
      const s = await load(false, durationS)
      const c2 = cpuUs(baton.proc.pid)
      failed += d.non2xx + d.errors + s.non2xx + s.errors
      rates.delegate += d.requests.average / rounds
      rates.service += s.requests.average / rounds
      cpu.delegate += (c1 - c0) / Math.max(1, d.requests.total) / rounds
      cpu.service += (c2 - c1) / Math.max(1, s.requests.total) / rounds
      ratios.push(d.requests.average / s.requests.average)
    }
    ratios.sort((a, b) => a - b)
    return figure(
      'delegate_intake_vs_service',
      rates.delegate,
      'cases/s',
      rates.service,
      ratios[Math.floor(ratios.length / 2)] as number,
      '>= 0.8',
      {
        connections: 16,
        duration_s: durationS,
        rounds,
        customers: customers.length,
        ratios: ratios.map((x) => Number(x.toFixed(4))),
        ratio: 'median of per-round ratios',
        cpuUsPerRequest: { delegate: Math.round(cpu.delegate), service: Math.round(cpu.service) },
        failed,
        perRequest:
          'delegate: EdDSA token verified, its chain re-read (one recursive query) and checked, scope case:open, customer and claims checked, then the same intake as the service key',
        store: 'sqlite WAL, group commit (BATON_SQLITE_SYNC=group)',
      },
    )
  } finally {
    await baton.stop()
  }
}

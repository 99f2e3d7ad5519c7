import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { exportJWK, generateKeyPair } from 'jose'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatKey } from '../src/identity/keys.js'
import { runStoreContract } from '../src/store/contract.js'
import { createPostgresStore } from '../src/store/postgres/database.js'
import { startNode } from './support/app.js'
import { type PrivateCluster, privateClusterUnavailable, startPrivateCluster } from './support/pg-cluster.js'

/*
 * The README's PostgreSQL grants ("Append-only history") are all Baton needs: on a database the owner migrated,
 * a role given exactly that SQL passes the store contract and serves cases, queues, actions, approvals, webhooks,
 * delegation and the audit log.
 */
const README = readFileSync(resolve(import.meta.dirname, '../README.md'), 'utf8')
const GRANTS = /\*\*Append-only history\.\*\*[\s\S]*?```sql\n([\s\S]*?)```/.exec(README)?.[1] ?? ''

describe.skipIf(privateClusterUnavailable !== undefined)('the README grants, as baton_app', () => {
  let cluster: PrivateCluster
  let n = 0
  /** A database migrated by its owner and granted to `baton_app` by the README's SQL: both URLs. */
  const granted = async (): Promise<{ owner: string; app: string }> => {
    const name = `granted_${n++}`
    const owner = await cluster.createDatabase(name)
    const s = createPostgresStore(owner)
    await s.migrate()
    await s.close()
    await cluster.sql(GRANTS, name)
    return { owner, app: owner.replace(/\/\/postgres(:[^@]*)?@/, '//baton_app@') }
  }

  beforeAll(async () => {
    expect(GRANTS).toContain('grant select, insert on audit_entries')
    cluster = await startPrivateCluster()
    await cluster.sql('create role baton_app login')
  }, 60_000)
  afterAll(async () => {
    await cluster?.destroy()
  })

  runStoreContract('postgres as baton_app', {
    async open() {
      const { owner, app } = await granted()
      const store = createPostgresStore(app)
      return {
        store,
        another: () => createPostgresStore(app, { poolSize: 2 }),
        // the tamper checks run as the owner: the triggers, not only the grants, refuse them
        exec: async (sql) => {
          const c = new pg.Client({ connectionString: owner })
          await c.connect()
          try {
            await c.query(sql)
          } finally {
            await c.end()
          }
        },
        cleanup: () => store.close(),
      }
    },
  })

  it('starts and serves every capability as baton_app', async () => {
    const { app: url } = await granted()
    const dataDir = mkdtempSync(join(tmpdir(), 'baton-grants-'))
    const admin = formatKey('admin', randomBytes(32))
    const { app } = await startNode({ dataDir, databaseUrl: url, adminKey: admin })
    try {
      const call = async (method: string, path: string, key: string, body?: unknown, form = false) => {
        const r = await app.server.inject({
          method: method as 'GET',
          url: path,
          headers: {
            ...(key === '' ? {} : { authorization: `Bearer ${key}` }),
            ...(body === undefined
              ? {}
              : { 'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json' }),
          },
          ...(body === undefined
            ? {}
            : {
                payload: form ? new URLSearchParams(body as Record<string, string>).toString() : JSON.stringify(body),
              }),
        })
        return { status: r.statusCode, body: (r.body === '' ? {} : r.json()) as Record<string, unknown> }
      }
      const ok = async (status: number, method: string, path: string, key: string, body?: unknown, form = false) => {
        const r = await call(method, path, key, body, form)
        expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBe(status)
        return r.body
      }
      const service = (await ok(201, 'POST', '/v1/keys', admin, { role: 'service', name: 'helpdesk' })).key as string
      const linus = (await ok(201, 'POST', '/v1/keys', admin, { role: 'operator', name: 'l', operatorId: 'linus' }))
        .key as string
      for (const [i, text] of [
        'Where is my order? It should have arrived by now.',
        'I want to speak to a human right now please',
      ].entries()) {
        await ok(201, 'POST', '/v1/cases', service, { customer: `cu_${i}`, channel: 'chat', message: { text } })
      }
      const cases = (await ok(200, 'GET', '/v1/cases', admin)).items as { id: string; handler: { kind: string } }[]
      const human = cases.find((c) => c.handler.kind === 'operator')?.id
      const bot = cases.find((c) => c.handler.kind === 'agent')?.id
      expect(human).toBeDefined()
      expect(bot).toBeDefined()
      await ok(200, 'POST', `/v1/cases/${human}/claim`, linus, {})
      await ok(200, 'POST', `/v1/cases/${human}/messages`, service, { message: { text: 'thanks' } })

      const secret = (await ok(201, 'POST', '/v1/agents/shop-assistant/credentials', admin, { kind: 'secret' })).secret
      const grant = { grant_type: 'client_credentials', client_id: 'shop-assistant', client_secret: secret }
      const token = (await ok(200, 'POST', '/v1/oauth/token', '', { ...grant, case_id: bot }, true)).access_token
      const refund = { tool: 'refund', params: { order_id: 'A-1', amount: 200, currency: 'EUR' } }
      await ok(202, 'POST', `/v1/cases/${bot}/actions`, token as string, refund)
      expect(((await ok(200, 'GET', '/v1/approvals', admin)).items as unknown[]).length).toBe(1)

      const hook = await ok(201, 'POST', '/v1/webhooks', admin, { url: 'https://93.184.216.34/in', events: ['*'] })
      await ok(204, 'DELETE', `/v1/webhooks/${hook.id}`, admin)

      const jwk = await exportJWK((await generateKeyPair('EdDSA', { crv: 'Ed25519' })).publicKey)
      const delegate = { id: 'acme', name: 'Acme', vendor: 'Acme Inc.', contact: 'ops@acme.example' }
      await ok(201, 'POST', '/v1/delegates', admin, { ...delegate, jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x } })
      const expires = new Date(Date.now() + 3_600_000).toISOString()
      const given = await ok(201, 'POST', '/v1/customers/cu_0/grants', service, {
        delegate: 'acme',
        scopes: ['case:open', 'case:read'],
        expires_at: expires,
      })
      await ok(200, 'DELETE', `/v1/customers/cu_0/grants/${given.id}`, service, { reason: 'done' })
      await ok(200, 'POST', '/v1/delegates/acme/suspend', admin, { reason: 'test' })
      await ok(200, 'POST', '/v1/agents/shop-assistant/suspend', admin, { reason: 'test' })

      await app.audit.sequenceOnce()
      expect(Number((await ok(200, 'GET', '/v1/audit/head', admin)).size)).toBeGreaterThan(10)
      await ok(200, 'GET', '/v1/quality?since=1d', admin)
    } finally {
      await app.close()
      rmSync(dataDir, { recursive: true, force: true })
    }
  }, 120_000)
})

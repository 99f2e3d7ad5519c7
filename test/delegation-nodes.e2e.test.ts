import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { type CryptoKey, exportJWK, generateKeyPair } from 'jose'
import { afterAll, describe, expect, it } from 'vitest'
import type { App } from '../src/app.js'
import { formatKey } from '../src/identity/keys.js'
import { startNode } from './support/app.js'
import { signAssertion } from './support/assertion.js'
import { freshDatabase, pgAvailable } from './support/pg.js'

const ROOT = resolve(import.meta.dirname, '..')

async function call(
  url: string,
  method: string,
  path: string,
  token: string,
  body?: unknown,
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? null : JSON.parse(text) }
}

async function exchange(url: string, key: CryptoKey, delegate: string, grant: string): Promise<string> {
  const res = await fetch(`${url}/v1/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: grant,
      subject_token_type: 'urn:baton:params:oauth:token-type:grant',
      actor_token: await signAssertion(key, delegate),
      actor_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    }).toString(),
  })
  const body = (await res.json()) as { access_token: string }
  expect(res.status, JSON.stringify(body)).toBe(200)
  return body.access_token
}

/** `baton delegates …` in a child process against the same data directory. */
function cli(dataDir: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'delegates', ...args],
      {
        cwd: ROOT,
        env: { ...process.env, BATON_DATA_DIR: dataDir, BATON_DATABASE_URL: '', BATON_LOG_LEVEL: 'silent' },
        encoding: 'utf8',
        timeout: 60_000,
      },
      (error, stdout, stderr) => done({ code: error ? Number(error.code ?? 1) : 0, out: stdout, err: stderr }),
    )
  })
}

/** A delegate registered, a customer's grant to it, and a case it opened, through node `url`. */
async function setUp(url: string, adminKey: string) {
  const key = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
  const jwk = await exportJWK(key.publicKey)
  const registered = await call(url, 'POST', '/v1/delegates', adminKey, {
    id: 'acme',
    name: 'Acme assistant',
    vendor: 'Acme Inc.',
    contact: 'ops@acme.example',
    jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x },
  })
  expect(registered.status).toBe(201)
  const service = (await call(url, 'POST', '/v1/keys', adminKey, { role: 'service', name: 'helpdesk' })).body
    .key as string
  const grant = await call(url, 'POST', '/v1/customers/cu_nodes/grants', service, {
    delegate: 'acme',
    scopes: ['case:open', 'case:read'],
    expires_at: new Date(Date.now() + 3600_000).toISOString(),
  })
  expect(grant.status).toBe(201)
  const token = await exchange(url, key.privateKey, 'acme', grant.body.id)
  const opened = await call(url, 'POST', '/v1/cases', token, {
    customer: 'cu_nodes',
    channel: 'api',
    message: { text: 'Where is my order #48213?' },
  })
  expect(opened.status).toBe(201)
  return { key, service, grant: grant.body.id as string, token, caseId: opened.body.id as string }
}

describe.skipIf(!pgAvailable)('delegate revocation across two PostgreSQL nodes', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'baton-dnodes-'))
  const opened: App[] = []
  let drop: (() => Promise<void>) | undefined
  afterAll(async () => {
    for (const a of opened) await a.close().catch(() => undefined)
    await drop?.()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('a grant revoked or a delegate suspended on one node refuses the token on the other at its next request', async () => {
    const adminKey = formatKey('admin', randomBytes(32))
    const db = await freshDatabase()
    drop = db.drop
    const a = await startNode({ dataDir, databaseUrl: db.url, adminKey })
    opened.push(a.app)
    // the same data directory: one secrets key file, as every node of a deployment shares
    const b = await startNode({ dataDir, databaseUrl: db.url, adminKey })
    opened.push(b.app)
    const d = await setUp(a.url, adminKey)
    const read = (url: string) => call(url, 'GET', `/v1/cases/${d.caseId}`, d.token)
    // both nodes take the token issued on A (one signing key, one store)
    expect((await read(a.url)).status).toBe(200)
    expect((await read(b.url)).status).toBe(200)

    // suspended on B: A refuses at once; reactivated on A: B takes it again
    expect((await call(b.url, 'POST', '/v1/delegates/acme/suspend', adminKey, { reason: 'incident' })).status).toBe(200)
    const suspended = await read(a.url)
    expect(suspended.status).toBe(403)
    expect(suspended.body.code).toBe('DELEGATE_INACTIVE')
    expect((await call(a.url, 'POST', '/v1/delegates/acme/activate', adminKey, { reason: 'resolved' })).status).toBe(
      200,
    )
    expect((await read(b.url)).status).toBe(200)

    // revoked on B by the helpdesk: A refuses the very next request, and no new token is issued there
    const revoked = await call(b.url, 'DELETE', `/v1/customers/cu_nodes/grants/${d.grant}`, d.service)
    expect(revoked.status).toBe(200)
    const after = await read(a.url)
    expect(after.status).toBe(403)
    expect(after.body.code).toBe('GRANT_REVOKED')
    const res = await fetch(`${a.url}/v1/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: d.grant,
        subject_token_type: 'urn:baton:params:oauth:token-type:grant',
        actor_token: await signAssertion(d.key.privateKey, 'acme'),
        actor_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      }).toString(),
    })
    expect(res.status).toBe(400)
    expect(((await res.json()) as { code: string }).code).toBe('GRANT_REVOKED')
  })
})

describe('delegate revocation from another process on SQLite (baton delegates)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'baton-dcli-'))
  let app: App | undefined
  afterAll(async () => {
    await app?.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('the CLI lists, suspends and revokes; the running server refuses the token at its next request', async () => {
    const adminKey = formatKey('admin', randomBytes(32))
    const n = await startNode({ dataDir, databaseUrl: undefined, adminKey })
    app = n.app
    const d = await setUp(n.url, adminKey)
    const read = () => call(n.url, 'GET', `/v1/cases/${d.caseId}`, d.token)
    expect((await read()).status).toBe(200)

    const list = await cli(dataDir, 'list', '--json')
    expect(list.code, list.err).toBe(0)
    expect(JSON.parse(list.out.trim())).toMatchObject({ id: 'acme', state: 'active' })
    const grants = await cli(dataDir, 'grants', '--customer', 'cu_nodes')
    expect(grants.out).toContain(d.grant)

    expect((await cli(dataDir, 'suspend', 'acme', '--reason', 'vendor incident 12')).out).toMatch(/acme is suspended/)
    expect((await read()).body.code).toBe('DELEGATE_INACTIVE')
    expect((await cli(dataDir, 'activate', 'acme', '--reason', 'fixed')).code).toBe(0)
    expect((await read()).status).toBe(200)

    const revoked = await cli(dataDir, 'revoke-grant', d.grant, '--customer', 'cu_nodes', '--reason', 'customer called')
    expect(revoked.out).toContain(`revoked ${d.grant}`)
    expect((await read()).body.code).toBe('GRANT_REVOKED')
    const again = await cli(dataDir, 'revoke-grant', d.grant, '--customer', 'cu_other', '--reason', 'x')
    expect(again.code).toBe(1)
    expect(again.err).toMatch(/GRANT_NOT_FOUND/)
    const retire = await cli(dataDir, 'retire', 'acme', '--reason', 'replaced')
    expect(retire.code).toBe(0)
    expect(retire.out).toMatch(/acme is retired/)

    const entries = (await n.app.store.readAudit(0, await n.app.store.auditSize())).map((e) => JSON.parse(e.entry))
    const suspendedEntry = entries.find((e) => e.type === 'delegate.suspended')
    expect(suspendedEntry.actor.id).toMatch(/^cli:/)
    expect(suspendedEntry.data.reason).toBe('vendor incident 12')
    expect(entries.filter((e) => e.type === 'grant.revoked').map((e) => e.data.grantId)).toEqual([d.grant])
  }, 240_000)
})

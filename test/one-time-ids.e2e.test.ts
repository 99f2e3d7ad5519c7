import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exportJWK, generateKeyPair } from 'jose'
import { afterAll, describe, expect, it } from 'vitest'
import type { App } from '../src/app.js'
import { formatKey } from '../src/identity/keys.js'
import { startNode } from './support/app.js'
import { signAssertion } from './support/assertion.js'
import { signIn } from './support/console-session.js'
import { freshDatabase, pgAvailable } from './support/pg.js'

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

/** The console's answer to a signed-in page request with `cookie`: 200 when the session holds. */
const queuePage = (url: string, cookie: string) =>
  fetch(`${url}/console/queue`, { redirect: 'manual', headers: { cookie, accept: 'text/html' } })

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`one-time ids across nodes and restarts (${engine})`, () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'baton-once-'))
    const opened: App[] = []
    let drop: (() => Promise<void>) | undefined
    afterAll(async () => {
      for (const a of opened) await a.close().catch(() => undefined)
      await drop?.()
      rmSync(dataDir, { recursive: true, force: true })
    })

    it('a client assertion used once and a console session signed out stay refused on another node and after a restart', async () => {
      const adminKey = formatKey('admin', randomBytes(32))
      let databaseUrl: string | undefined
      if (engine === 'postgres') {
        const db = await freshDatabase()
        drop = db.drop
        databaseUrl = db.url
      }
      const a = await startNode({ dataDir, databaseUrl, adminKey })
      opened.push(a.app)
      const admin = { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }

      // an agent key and a case the agent handles
      const agentKey = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
      const jwk = await exportJWK(agentKey.publicKey)
      const registered = await fetch(`${a.url}/v1/agents/shop-assistant/credentials`, {
        method: 'POST',
        headers: admin,
        body: JSON.stringify({ kind: 'public_key', jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x } }),
      })
      expect(registered.status).toBe(201)
      const opening = await fetch(`${a.url}/v1/cases`, {
        method: 'POST',
        headers: admin,
        body: JSON.stringify({ customer: 'cu_once', channel: 'chat', message: { text: 'Where is my order #48213?' } }),
      })
      expect(opening.status).toBe(201)
      const caseId = ((await opening.json()) as { id: string; handler: { kind: string } }).id
      const operatorKey = await fetch(`${a.url}/v1/keys`, {
        method: 'POST',
        headers: admin,
        body: JSON.stringify({ role: 'operator', name: 'ada', operatorId: 'ada' }),
      })
      expect(operatorKey.status).toBe(201)
      const opKey = ((await operatorKey.json()) as { key: string }).key

      const assertion = await signAssertion(agentKey.privateKey)
      const tokenRequest = (url: string, clientAssertion: string) =>
        fetch(`${url}/v1/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: 'client_credentials',
            client_assertion_type: ASSERTION_TYPE,
            client_assertion: clientAssertion,
            case_id: caseId,
          }).toString(),
        })
      expect((await tokenRequest(a.url, assertion)).status).toBe(200)
      const replayedHere = await tokenRequest(a.url, assertion)
      expect(replayedHere.status).toBe(401)
      expect(((await replayedHere.json()) as { detail: string }).detail).toMatch(/replayed/)

      // a console session, good on this node, then signed out here
      const cookie = await signIn(a.url, opKey)
      expect((await queuePage(a.url, cookie)).status).toBe(200)
      const form = await fetch(`${a.url}/console/queue`, { headers: { cookie } })
      const csrf = /name="csrf-token" content="([^"]+)"/.exec(await form.text())?.[1]
      expect(csrf).toBeDefined()
      const out = await fetch(`${a.url}/console/logout`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: csrf! }).toString(),
      })
      expect(out.status).toBe(303)
      expect((await queuePage(a.url, cookie)).status).toBe(303)

      // Another node: on PostgreSQL a second server beside the first; on SQLite (one process per file) the same
      // file after a restart. Either way the memory of the first process is gone from the picture.
      if (engine === 'sqlite') await a.app.close()
      const b = await startNode({ dataDir, databaseUrl, adminKey })
      opened.push(b.app)
      const replayedThere = await tokenRequest(b.url, assertion)
      expect(replayedThere.status).toBe(401)
      expect(((await replayedThere.json()) as { detail: string }).detail).toMatch(/replayed/)
      const signedOut = await queuePage(b.url, cookie)
      expect(signedOut.status).toBe(303)
      expect(signedOut.headers.get('location')).toMatch(/^\/console\/login/)
      // a fresh session and a fresh assertion still work there
      expect((await queuePage(b.url, await signIn(b.url, opKey))).status).toBe(200)
      const fresh = await signAssertion(agentKey.privateKey)
      expect((await tokenRequest(b.url, fresh)).status).toBe(200)
    })
  })
}

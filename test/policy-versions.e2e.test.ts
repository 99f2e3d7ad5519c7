import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, describe, expect, it } from 'vitest'
import type { App } from '../src/app.js'
import { formatKey } from '../src/identity/keys.js'
import { SHOP, startNode } from './support/app.js'
import { freshDatabase, pgAvailable } from './support/pg.js'

// The shop's policy as its version 1 (whatever version the example is at now): the workspaces start from it.
const ORIGINAL = readFileSync(join(SHOP, 'policy.yaml'), 'utf8').replace(/\n {2}version: \d+\n/, '\n  version: 1\n')
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex')
const atVersion = (v: number, note = '') =>
  `${ORIGINAL.replace(/\n {2}version: 1\n/, `\n  version: ${v}\n`)}# v${v}${note}\n`

/** One Baton node on a real port, its policy file watch off, its log lines kept. */
async function node(dataDir: string, workspace: string, databaseUrl: string | undefined, adminKey: string) {
  const lines: Record<string, unknown>[] = []
  const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) })
  const { app, url } = await startNode({ dataDir, workspace, databaseUrl, adminKey, logger })
  const auth = { authorization: `Bearer ${adminKey}` }
  const put = async (yaml: string) => {
    const r = await fetch(`${url}/v1/policy`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/yaml' },
      body: yaml,
    })
    return { status: r.status, body: (await r.json()) as Record<string, unknown> }
  }
  const reload = async () => {
    const r = await fetch(`${url}/v1/policy/reload`, { method: 'POST', headers: auth })
    return { status: r.status, body: (await r.json()) as Record<string, unknown> }
  }
  const inForce = async () =>
    (await (await fetch(`${url}/v1/policy`, { headers: auth })).json()) as Record<string, unknown>
  const versions = async () =>
    ((await (await fetch(`${url}/v1/policy/versions`, { headers: auth })).json()) as { items: { version: number }[] })
      .items
  const decided = async () => {
    const r = await fetch(`${url}/v1/cases`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ customer: 'cu_v', channel: 'chat', message: { text: 'Where is my order #12345?' } }),
    })
    expect(r.status).toBe(201)
    return ((await r.json()) as { decision: { policy: { version: number; hash: string } } }).decision.policy
  }
  return { app, lines, put, reload, inForce, versions, decided }
}

const workspaceIn = (root: string, name: string) => {
  const ws = join(root, name)
  cpSync(SHOP, ws, { recursive: true })
  writeFileSync(join(ws, 'policy.yaml'), ORIGINAL)
  return ws
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`policy versions only go up (${engine}, HTTP)`, () => {
    const root = mkdtempSync(join(tmpdir(), 'baton-versions-'))
    const opened: App[] = []
    let drop: (() => Promise<void>) | undefined
    afterAll(async () => {
      for (const a of opened) await a.close().catch(() => undefined)
      await drop?.()
      rmSync(root, { recursive: true, force: true })
    })

    it('refuses a document that is not higher than the newest activated, on every node and after a restart', async () => {
      const adminKey = formatKey('admin', randomBytes(32))
      let databaseUrl: string | undefined
      if (engine === 'postgres') {
        const db = await freshDatabase()
        drop = db.drop
        databaseUrl = db.url
      }
      const dataDir = join(root, 'data')
      const wsA = workspaceIn(root, 'a')
      const a = await node(dataDir, wsA, databaseUrl, adminKey)
      opened.push(a.app)
      expect(await a.inForce()).toMatchObject({ version: 1, hash: sha256(ORIGINAL) })
      const doc = (await a.app.server.inject({ url: '/openapi.json' })).json()
      for (const op of [doc.paths['/v1/policy'].put, doc.paths['/v1/policy/reload'].post]) {
        expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['200', '409', '422']))
        expect(op.responses['200'].content['application/json'].schema.properties.outcome.enum).toEqual([
          'activated',
          'unchanged',
        ])
      }

      // A higher version is activated; the same document again is a no-op, answered as one.
      expect(await a.put(atVersion(2))).toEqual({
        status: 200,
        body: { name: 'shop', version: 2, hash: sha256(atVersion(2)), outcome: 'activated' },
      })
      expect(await a.put(atVersion(2))).toEqual({
        status: 200,
        body: { name: 'shop', version: 2, hash: sha256(atVersion(2)), outcome: 'unchanged' },
      })

      // Other content at the same version, a lower version, and the old v1 itself: 409, positioned, nothing changes.
      for (const [yaml, found] of [
        [atVersion(2, ' other'), /version 2 is already activated with other content/],
        [atVersion(1, ' other'), /version 1 is lower than the newest activated, shop v2/],
        [ORIGINAL, /version 1 is lower than the newest activated, shop v2/],
      ] as const) {
        const r = await a.put(yaml)
        expect(r.status).toBe(409)
        expect(r.body).toMatchObject({ code: 'POLICY_VERSION_CONFLICT', status: 409 })
        expect(r.body.detail).toMatch(found)
        expect(r.body.detail).toMatch(/a new document needs version 3 or higher/)
        expect(r.body.positions).toEqual([
          { file: 'policy.yaml (PUT /v1/policy)', line: 8, column: 12, message: expect.stringMatching(found) },
        ])
      }
      expect(await a.inForce()).toMatchObject({ version: 2, hash: sha256(atVersion(2)) })
      expect(await a.decided()).toEqual({ name: 'shop', version: 2, hash: sha256(atVersion(2)) })
      expect((await a.versions()).map((p) => p.version)).toEqual([1, 2])
      expect(
        a.lines.filter((l) => l.code === 'POLICY_VERSION_CONFLICT' && l.trigger === 'put' && l.level === 40),
      ).toHaveLength(3)

      // POST /v1/policy/reload reads the file on disk (still v1): refused the same way, and logged.
      const stale = await a.reload()
      expect(stale.status).toBe(409)
      expect(stale.body.positions).toEqual([expect.objectContaining({ line: 8, column: 12 })])
      const refused = a.lines.findLast((l) => l.trigger === 'reload')
      expect(refused).toMatchObject({
        level: 40,
        code: 'POLICY_VERSION_CONFLICT',
        msg: expect.stringMatching(/refused/),
      })
      expect(refused?.errors).toEqual([
        expect.stringMatching(/\/a\/policy\.yaml:8:12: metadata\.version: version 1 is lower/),
      ])

      // The file replaced by a rename (no watch here): reload re-reads it by path and activates it.
      writeFileSync(join(wsA, 'next.tmp'), atVersion(3))
      execFileSync('mv', [join(wsA, 'next.tmp'), join(wsA, 'policy.yaml')])
      expect(await a.reload()).toMatchObject({ status: 200, body: { version: 3, outcome: 'activated' } })
      expect(a.lines.findLast((l) => l.trigger === 'reload')).toMatchObject({
        level: 30,
        msg: 'policy activated',
        trigger: 'reload',
        policy: { version: 3, hash: sha256(atVersion(3)) },
      })
      expect(await a.decided()).toMatchObject({ version: 3 })

      // Another node (PostgreSQL), or this one restarted (SQLite), with v1 on disk: the store's v3 stays in force.
      if (engine === 'sqlite') await a.app.close()
      const b = await node(dataDir, workspaceIn(root, 'b'), databaseUrl, adminKey)
      opened.push(b.app)
      expect(await b.inForce()).toMatchObject({ version: 3, hash: sha256(atVersion(3)) })
      expect(await b.decided()).toMatchObject({ version: 3, hash: sha256(atVersion(3)) })
      expect(b.app.policyNotice).toMatch(
        /policy\.yaml:8:12: metadata\.version: version 1 is lower than the newest activated, shop v3 .*stays in force/,
      )
      expect(b.lines).toContainEqual(
        expect.objectContaining({ level: 50, code: 'POLICY_VERSION_CONFLICT', trigger: 'start' }),
      )
      expect(b.lines).toContainEqual(
        expect.objectContaining({ level: 40, outcome: 'kept', policy: expect.objectContaining({ version: 3 }) }),
      )

      // The check reads the store, not this node's memory: v3 with other content is refused here too.
      expect((await b.put(atVersion(3, ' from b'))).status).toBe(409)
      expect(await b.put(atVersion(4))).toMatchObject({ status: 200, body: { version: 4, outcome: 'activated' } })
      if (engine === 'postgres') {
        // Node a still runs v3 in memory; v4 with other content is refused there, v4 itself adopted as unchanged.
        expect((await a.put(atVersion(4, ' from a'))).status).toBe(409)
        expect(await a.put(atVersion(4))).toMatchObject({ status: 200, body: { version: 4, outcome: 'unchanged' } })
        expect(await a.decided()).toMatchObject({ version: 4, hash: sha256(atVersion(4)) })
      }
      expect((await b.versions()).map((p) => p.version)).toEqual([1, 2, 3, 4])

      // The same store under another workspace (the bank's policy v3): the shop's v4 no longer compiles there, so
      // Baton refuses to start, naming both, rather than run either.
      if (engine === 'sqlite') await b.app.close() // one process holds the SQLite file at a time
      const bank = join(root, 'bank')
      cpSync(join(SHOP, '../bank'), bank, { recursive: true })
      const elsewhere = await node(dataDir, bank, databaseUrl, adminKey).then(
        (n) => {
          opened.push(n.app)
          return 'started'
        },
        (e: unknown) => e,
      )
      expect(elsewhere).toMatchObject({ code: 'POLICY_INVALID' })
      expect((elsewhere as Error).message).toMatch(
        /bank\/policy\.yaml:\d+:\d+: metadata\.version: version 3 is lower than the newest activated, shop v4 .*; and the store's newest activated policy, shop v4 \(policy\.yaml \(PUT \/v1\/policy\)\), does not compile against this workspace: /,
      )
    }, 60_000)
  })
}

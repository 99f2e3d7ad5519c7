import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, describe, expect, it } from 'vitest'
import { type App, createApp } from '../src/app.js'
import { configFrom } from '../src/config.js'
import { SHOP } from './support/app.js'
import { freshDatabase, pgAvailable } from './support/pg.js'

/*
 * Two nodes (two apps in this process, each with its own PostgreSQL store and workspace) on one database: a version
 * activated on one is in force on the other, unless it does not compile against the other's workspace, which then
 * keeps its version and says why.
 */
describe.skipIf(!pgAvailable)('policy versions across nodes', () => {
  const root = mkdtempSync(join(tmpdir(), 'baton-policy-nodes-'))
  const apps: App[] = []
  let drop: (() => Promise<void>) | undefined
  afterAll(async () => {
    for (const a of apps) await a.close()
    await drop?.()
    rmSync(root, { recursive: true, force: true })
  })

  it('adopts another node’s activation; refuses, with a log line, one that does not compile here', async () => {
    const db = await freshDatabase()
    drop = db.drop
    const logs: Record<string, unknown>[] = []
    const start = async (name: string, extraTool: boolean) => {
      const ws = join(root, name)
      cpSync(SHOP, ws, { recursive: true })
      if (extraTool) {
        const tools = readFileSync(join(ws, 'tools.yaml'), 'utf8')
        writeFileSync(
          join(ws, 'tools.yaml'),
          tools.replace(
            'tools:\n',
            'tools:\n  - name: gift_card\n    description: Send a gift card\n    risk: low\n    params: { type: object }\n',
          ),
        )
      }
      const config = configFrom(
        {},
        {
          dataDir: join(root, `${name}-data`),
          secretsKeyFile: join(root, 'secrets.key'),
          workspace: ws,
          databaseUrl: db.url,
          watchPolicy: false,
          logLevel: 'silent',
        },
      )
      const stream = { write: (line: string) => logs.push({ node: name, ...JSON.parse(line) }) }
      const app = await createApp(config, { logger: pino({ level: 'info' }, stream), policySyncMs: 60_000 })
      apps.push(app)
      return app
    }
    const a = await start('a', true)
    const b = await start('b', false)
    const source = readFileSync(join(SHOP, 'policy.yaml'), 'utf8')
    const v = (n: number, text = source) => text.replace(/^(\s*version:\s*)\d+/m, `$1${n}`)
    const admin = { kind: 'admin' as const, id: 'test', roles: ['admin'] as const }
    const inForce = (app: App) => app.services.policy.current().policy.ref.version
    // the versions after the one the shop's file holds (both nodes start with it)
    const base = Number(/^\s*version:\s*(\d+)/m.exec(source)?.[1])
    expect(inForce(a)).toBe(base)
    const [next, third] = [base + 1, base + 2]

    // With the fallback at 60 s, only the notification can bring it over this fast.
    await a.services.policy.activate(v(next), 'policy.yaml (PUT /v1/policy)', { ...admin, roles: [...admin.roles] })
    const t0 = Date.now()
    while (inForce(b) !== next && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10))
    expect(inForce(b)).toBe(next)
    expect(logs).toContainEqual(expect.objectContaining({ node: 'b', msg: 'policy activated by another node' }))

    // The third version names a tool only node a has: a keeps it in force, b keeps the second and logs why, once.
    const withGift = v(
      third,
      source.replace(
        '    - id: reply\n      tool: reply\n',
        '    - id: gift\n      tool: gift_card\n      outcome: allow\n      reason: Gift cards are harmless\n\n    - id: reply\n      tool: reply\n',
      ),
    )
    await a.services.policy.activate(withGift, 'policy.yaml (PUT /v1/policy)', { ...admin, roles: [...admin.roles] })
    expect(inForce(a)).toBe(third)
    const t1 = Date.now()
    const refused = () =>
      logs.filter((l) => l.node === 'b' && String(l.msg).startsWith("another node's policy does not compile"))
    while (refused().length === 0 && Date.now() - t1 < 5000) await new Promise((r) => setTimeout(r, 10))
    expect(refused()).toHaveLength(1)
    expect(String(refused()[0]!.err)).toContain('gift_card')
    expect(inForce(b)).toBe(next)
  })
})

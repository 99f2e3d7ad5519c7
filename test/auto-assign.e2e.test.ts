import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type App, createApp } from '../src/app.js'
import { configFrom } from '../src/config.js'
import { SHOP } from './support/app.js'
import { freshDatabase, pgAvailable } from './support/pg.js'

const ADMIN_ACTOR = { kind: 'admin' as const, id: 'test', roles: ['admin'] }
const auth = (key: string) => ({ authorization: `Bearer ${key}` })

interface QueueView {
  id: string
  assignment: string
  waiting: number
  assigned: number
  operators: { id: string; capacity: number; active: number }[]
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`auto-assignment on ${engine}`, () => {
    let app: App
    let dir: string
    let drop: (() => Promise<void>) | undefined
    let service: string
    let admin: string

    beforeAll(async () => {
      // The shop workspace with its `general` queue switched to `assignment: auto`.
      dir = mkdtempSync(join(tmpdir(), 'baton-auto-'))
      const workspace = join(dir, 'shop')
      cpSync(SHOP, workspace, { recursive: true })
      const queues = readFileSync(join(workspace, 'queues.yaml'), 'utf8')
      writeFileSync(
        join(workspace, 'queues.yaml'),
        queues.replace(/(id: general[\s\S]*?sla: 30m)/, '$1\n    assignment: auto'),
      )
      const pgdb = engine === 'postgres' ? await freshDatabase() : undefined
      drop = pgdb?.drop
      const config = configFrom(
        {},
        { dataDir: join(dir, 'data'), workspace, databaseUrl: pgdb?.url, watchPolicy: false, logLevel: 'silent' },
      )
      app = await createApp(config, { logger: pino({ level: 'silent' }), work: { autoAssignIntervalMs: 50 } })
      admin = app.generatedAdminKey ?? ''
      service = (await app.services.keys.create('service', 'helpdesk', ADMIN_ACTOR)).key
    })
    afterAll(async () => {
      await app?.close()
      await drop?.()
      rmSync(dir, { recursive: true, force: true })
    })

    const general = async (): Promise<QueueView> => {
      const r = await app.server.inject({ method: 'GET', url: '/v1/queues', headers: auth(admin) })
      expect(r.statusCode).toBe(200)
      return (r.json().items as QueueView[]).find((q) => q.id === 'general')!
    }

    it('gives waiting cases to operators by itself, never beyond any capacity, and audits each with its reason', async () => {
      const before = await general()
      expect(before.assignment).toBe('auto')
      const room = before.operators.reduce((n, o) => n + o.capacity, 0)
      const opened = await Promise.all(
        Array.from({ length: room + 5 }, async (_, i) => {
          const r = await app.server.inject({
            method: 'POST',
            url: '/v1/cases',
            headers: auth(service),
            payload: {
              customer: `cu_auto_${i}`,
              channel: 'chat',
              message: { text: `Can I talk to a person please? (${i})` },
            },
          })
          expect(r.statusCode).toBe(201)
          const c = r.json() as { id: string; handler: { kind: string; queue?: string } }
          expect(c.handler).toMatchObject({ kind: 'operator', queue: 'general' })
          return c.id
        }),
      )
      // Nobody claims anything: the loop fills every operator up to capacity, and the rest waits.
      const deadline = Date.now() + 15_000
      let q = await general()
      while (q.assigned < room && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50))
        q = await general()
      }
      expect(q.assigned).toBe(room)
      expect(q.waiting).toBe(5)
      for (const o of q.operators) expect(o.active).toBe(o.capacity)
      // A fresh round (after the one that may still be finishing) finds no room and changes nothing.
      await app.services.work.autoAssigner.runOnce()
      expect(await app.services.work.autoAssigner.runOnce()).toBe(0)
      expect((await general()).assigned).toBe(room)

      const assigned = await Promise.all(opened.map((id) => app.store.listCaseEvents(id)))
      const byOperator = new Map<string, number>()
      for (const events of assigned) {
        const a = events.filter((e) => e.type === 'case.assigned')
        expect(a.length).toBeLessThanOrEqual(1)
        const d = a[0]?.data as { operatorId: string; how: string } | undefined
        if (d === undefined) continue
        expect(d.how).toBe('auto')
        byOperator.set(d.operatorId, (byOperator.get(d.operatorId) ?? 0) + 1)
      }
      for (const o of q.operators) expect(byOperator.get(o.id) ?? 0).toBe(o.capacity)

      const someCase = opened.find((_, i) => assigned[i]!.some((e) => e.type === 'case.assigned'))!
      const audit = await app.server.inject({ method: 'GET', url: `/v1/cases/${someCase}/audit`, headers: auth(admin) })
      expect(audit.statusCode).toBe(200)
      const entry = (audit.json().entries as { entry: string }[])
        .map((e) => JSON.parse(e.entry) as { type: string; actor: { id: string }; data: { how: string } })
        .find((e) => e.type === 'case.assigned')
      expect(entry).toMatchObject({ actor: { id: 'auto-assigner' }, data: { how: 'auto' } })
    })
  })
}

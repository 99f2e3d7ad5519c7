import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freshDatabase, pgAvailable } from '../../test/support/pg.js'
import type { Handler } from '../cases/case.js'
import type { CaseRecord } from '../cases/records.js'
import { isBatonError } from '../errors.js'
import { createTimerScheduler } from '../timers/scheduler.js'
import type { Store } from './ports.js'
import { createPostgresStore } from './postgres/database.js'
import { createSqliteStore } from './sqlite/database.js'
import { SLA_TIMER, slaTimerKey } from './work-store.js'

const T0 = Date.UTC(2026, 10, 1, 12, 0, 0)
const at = (s: number) => new Date(T0 + s * 1000).toISOString()
const ACTOR = { kind: 'admin', id: 'test' }

interface Engine {
  readonly name: 'sqlite' | 'postgres'
  readonly enabled: boolean
  open(): Promise<{
    store: Store
    another: () => Store
    /** Raw SQL on the same database, for bulk seeding. */
    exec: (sql: string) => Promise<void>
    cleanup: () => Promise<void>
  }>
}

const engines: Engine[] = [
  {
    name: 'sqlite',
    enabled: true,
    async open() {
      // tmpfs where there is one: these tests count commits, not fsyncs.
      const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'baton-work-'))
      const file = join(dir, 'baton.db')
      const store = createSqliteStore(file)
      await store.migrate()
      // One process owns an embedded store (better-sqlite3 is synchronous: a second connection in the same process
      // would block the event loop on the file lock); concurrency is the same store's concurrent callers.
      const same = Object.assign(Object.create(store) as Store, { close: async () => undefined })
      return {
        store,
        another: () => same,
        exec: async (text) => {
          const raw = new SQLite(file)
          try {
            raw.exec(text)
          } finally {
            raw.close()
          }
        },
        cleanup: async () => {
          await store.close()
          rmSync(dir, { recursive: true, force: true })
        },
      }
    },
  },
  {
    name: 'postgres',
    enabled: pgAvailable,
    async open() {
      const db = await freshDatabase()
      const store = createPostgresStore(db.url, { poolSize: 12 })
      await store.migrate()
      return {
        store,
        another: () => createPostgresStore(db.url, { poolSize: 4 }),
        exec: async (text) => {
          const c = new pg.Client({ connectionString: db.url })
          await c.connect()
          try {
            await c.query(text)
          } finally {
            await c.end()
          }
        },
        cleanup: async () => {
          await store.close()
          await db.drop()
        },
      }
    },
  },
]

function record(id: string, handler: Handler, over: Partial<CaseRecord> = {}): CaseRecord {
  return {
    id,
    customerId: `cu_${id}`,
    channel: 'chat',
    subject: '',
    state: 'open',
    handler,
    handoffs: 0,
    messages: 1,
    risk: {},
    firstText: 'hello',
    lastEvent: 1,
    version: 1,
    createdAt: at(0),
    updatedAt: at(0),
    stateSince: at(0),
    ...over,
  }
}

/** Opens a case straight into `queue` (as intake does when the policy routes to a human). */
async function openQueued(store: Store, id: string, queue: string, language = 'en'): Promise<void> {
  const c = record(id, { kind: 'operator', queue })
  await store.commitCase({
    case: c,
    expectedVersion: null,
    events: [{ caseId: id, seq: 1, type: 'message.received', data: { signals: { language } }, at: at(0) }],
    decisions: [],
    audit: [{ type: 'case.opened', at: at(0), caseId: id, actor: ACTOR, data: {} }],
  })
}

for (const engine of engines) {
  describe.skipIf(!engine.enabled)(`work store contract: ${engine.name}`, () => {
    let store: Store
    let another: () => Store
    let exec: (sql: string) => Promise<void>
    let cleanup: () => Promise<void>
    beforeAll(async () => {
      ;({ store, another, exec, cleanup } = await engine.open())
    })
    afterAll(async () => {
      await cleanup?.()
    })

    it('enqueues a case routed to a human with its SLA timer, and releases it when the case leaves', async () => {
      await store.configureWork({
        queues: [{ id: 'general', slaSeconds: 600 }],
        operators: [{ id: 'op_a', capacity: 2 }],
      })
      await openQueued(store, 'cs_q1', 'general')
      const item = await store.getWorkItem('cs_q1')
      expect(item).toMatchObject({ queue: 'general', operatorId: null, slaDue: at(600), language: 'en' })
      expect(await store.getTimer(SLA_TIMER, slaTimerKey('cs_q1', at(0)))).toMatchObject({
        state: 'pending',
        dueAt: at(600),
      })
      const a = await store.claimCase({ caseId: 'cs_q1', operatorId: 'op_a', at: at(5), actor: ACTOR })
      expect(a.operatorId).toBe('op_a')
      const c = await store.getCase('cs_q1')
      expect(c?.handler).toEqual({ kind: 'operator', queue: 'general', operatorId: 'op_a' })
      expect((await store.listCaseEvents('cs_q1')).at(-1)?.type).toBe('case.assigned')
      expect((await store.operatorLoads()).find((l) => l.operatorId === 'op_a')?.active).toBe(1)
      // The case goes back to an agent: its item goes, the operator's capacity comes back, the SLA timer is off.
      await store.commitCase({
        case: { ...c!, handler: { kind: 'agent', agentId: 'bot' }, version: c!.version + 1, stateSince: at(9) },
        expectedVersion: c!.version,
        events: [],
        decisions: [],
        audit: [],
      })
      expect(await store.getWorkItem('cs_q1')).toBeUndefined()
      expect((await store.operatorLoads()).find((l) => l.operatorId === 'op_a')?.active).toBe(0)
      expect((await store.getTimer(SLA_TIMER, slaTimerKey('cs_q1', at(0))))?.state).toBe('cancelled')
    })

    it('50 concurrent claims on one case: exactly one winner', async () => {
      const ops = Array.from({ length: 50 }, (_, i) => ({ id: `claimer_${i}`, capacity: 5 }))
      await store.configureWork({ queues: [{ id: 'general', slaSeconds: 600 }], operators: ops })
      await openQueued(store, 'cs_race', 'general')
      const second = another()
      try {
        const results = await Promise.allSettled(
          ops.map((o, i) =>
            (i % 2 === 0 ? store : second).claimCase({ caseId: 'cs_race', operatorId: o.id, at: at(1), actor: ACTOR }),
          ),
        )
        const won = results.filter((r) => r.status === 'fulfilled')
        const lost = results.filter((r) => r.status === 'rejected')
        expect(won).toHaveLength(1)
        for (const r of lost) expect(isBatonError(r.reason, 'CASE_ALREADY_ASSIGNED')).toBe(true)
        const winner = (won[0] as PromiseFulfilledResult<{ operatorId: string }>).value.operatorId
        expect((await store.getWorkItem('cs_race'))?.operatorId).toBe(winner)
        const assigned = (await store.listCaseEvents('cs_race')).filter((e) => e.type === 'case.assigned')
        expect(assigned).toHaveLength(1)
        const loads = await store.operatorLoads()
        expect(loads.filter((l) => l.operatorId.startsWith('claimer_')).reduce((n, l) => n + l.active, 0)).toBe(1)
      } finally {
        await second.close()
      }
    }, 30_000)

    it('refuses a claim beyond the operator capacity', async () => {
      await store.configureWork({
        queues: [{ id: 'general', slaSeconds: 600 }],
        operators: [{ id: 'op_small', capacity: 1 }],
      })
      await openQueued(store, 'cs_cap1', 'general')
      await openQueued(store, 'cs_cap2', 'general')
      await store.claimCase({ caseId: 'cs_cap1', operatorId: 'op_small', at: at(1), actor: ACTOR })
      await expect(
        store.claimCase({ caseId: 'cs_cap2', operatorId: 'op_small', at: at(1), actor: ACTOR }),
      ).rejects.toMatchObject({ code: 'OPERATOR_AT_CAPACITY' })
      // Refused whole: the case still waits.
      expect((await store.getWorkItem('cs_cap2'))?.operatorId).toBeNull()
    })

    it('10,000 cases auto-assigned in batches by 8 concurrent assigners never exceed any operator capacity', async () => {
      const N = 10_000
      const operators = Array.from({ length: 40 }, (_, i) => ({ id: `bulk_${i}`, capacity: 150 + (i % 5) * 25 }))
      const capacity = operators.reduce((n, o) => n + o.capacity, 0)
      await store.configureWork({ queues: [{ id: 'bulk', slaSeconds: 900 }], operators })
      const ids = Array.from({ length: N }, (_, i) => `cs_bulk_${String(i).padStart(5, '0')}`)
      // Seeded in bulk (enqueueing one by one is covered above): cases and their work items, ranks spread out.
      let t = Date.now()
      const handler = JSON.stringify({ kind: 'operator', queue: 'bulk' })
      const caseRows = ids.map(
        (id) =>
          `('${id}', 'cu_bulk', 'chat', '', 'open', '${handler}', 'operator', 'bulk', 0, 1, '{}', '', 0, 1, '${at(0)}', '${at(0)}', '${at(0)}')`,
      )
      const itemRows = ids.map(
        (id, i) =>
          `('${id}', 'bulk', '${at(0)}', '${at(900)}', ${T0 + 900_000 - (i % 97) * 1000}, '', 0, 'en', '{"rules":[],"trigger":"","reason":""}', null, null, 0)`,
      )
      for (let i = 0; i < N; i += 2000) {
        await exec(`insert into cases (id, customer_id, channel, subject, state, handler, handler_kind, queue, handoffs,
            messages, risk, first_text, last_event, version, created_at, updated_at, state_since)
          values ${caseRows.slice(i, i + 2000).join(',')};
          insert into work_items (case_id, queue, enqueued_at, sla_due, rank_ms, tier, risky, language, reason,
            operator_id, assigned_at, breached)
          values ${itemRows.slice(i, i + 2000).join(',')};`)
      }
      const seedMs = Date.now() - t
      t = Date.now()
      const all = operators.map((o) => o.id)
      let assigned = 0
      const worker = async (s: Store) => {
        for (;;) {
          const batch = await s
            .assignBatch({ queue: 'bulk', candidates: () => all, at: at(2), actor: ACTOR, max: 25 })
            .catch((e: unknown) => {
              if (isBatonError(e, 'CONFLICT')) return null
              throw e
            })
          if (batch === null) continue
          if (batch.length === 0) return
          assigned += batch.length
        }
      }
      const second = another()
      try {
        await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w % 2 === 0 ? store : second)))
      } finally {
        await second.close()
      }
      console.log(`${engine.name}: seeded ${N} in ${seedMs} ms, assigned ${assigned} in ${Date.now() - t} ms`)
      expect(assigned).toBe(Math.min(N, capacity))
      const held = new Map<string, number>()
      for (const o of operators) {
        const items = await store.listQueueItems('bulk', { limit: 10_000, operatorId: o.id })
        held.set(o.id, items.length)
        expect(items.length).toBeLessThanOrEqual(o.capacity)
      }
      expect([...held.values()].reduce((a, b) => a + b, 0)).toBe(Math.min(N, capacity))
      const loads = await store.operatorLoads()
      for (const o of operators) expect(loads.find((l) => l.operatorId === o.id)?.active).toBe(held.get(o.id))
      const waiting = await store.listQueueItems('bulk', { limit: 10_000 })
      expect(waiting).toHaveLength(N - Math.min(N, capacity))
    }, 60_000)

    it('opens a queued case ranked by the tier its writer read, in one write; a duplicate id writes nothing', async () => {
      await store.configureWork({ queues: [{ id: 'tiered', slaSeconds: 3600 }], operators: [] })
      await openQueued(store, 'cs_t_plain', 'tiered')
      const open = (id: string, tier: string) =>
        store.commitCase({
          case: record(id, { kind: 'operator', queue: 'tiered' }),
          expectedVersion: null,
          events: [{ caseId: id, seq: 1, type: 'message.received', data: { signals: { language: 'de' } }, at: at(0) }],
          decisions: [],
          audit: [{ type: 'case.opened', at: at(0), caseId: id, actor: ACTOR, data: { tier } }],
          customerTier: tier,
        })
      await open('cs_t_vip', 'enterprise')
      expect(await store.getWorkItem('cs_t_vip')).toMatchObject({
        tier: 'enterprise',
        language: 'de',
        slaDue: at(3600),
      })
      expect((await store.listQueueItems('tiered', { limit: 10 })).map((i) => i.caseId)).toEqual([
        'cs_t_vip',
        'cs_t_plain',
      ])
      expect((await store.getTimer(SLA_TIMER, slaTimerKey('cs_t_vip', at(0))))?.state).toBe('pending')
      const size = await store.auditSize()
      await expect(open('cs_t_vip', '')).rejects.toSatisfy((e) => isBatonError(e, 'CONFLICT'))
      expect(await store.auditSize()).toBe(size)
      expect(await store.listCaseEvents('cs_t_vip')).toHaveLength(1)
      expect((await store.listCaseAudit('cs_t_vip')).map((e) => JSON.parse(e.entry).data.tier)).toEqual(['enterprise'])
      expect(await store.getWorkItem('cs_t_vip')).toMatchObject({ tier: 'enterprise' })
    })

    it('orders a queue by priority: breached first, then tier and risk pull the SLA deadline forward', async () => {
      await store.configureWork({ queues: [{ id: 'prio', slaSeconds: 3600 }], operators: [] })
      await store.putCustomer(
        { id: 'cu_cs_p_vip', tier: 'enterprise', verified: true, attributes: {}, updatedAt: at(0) },
        { type: 'customer.updated', at: at(0), data: {} },
      )
      await openQueued(store, 'cs_p_plain', 'prio')
      await openQueued(store, 'cs_p_vip', 'prio')
      const items = await store.listQueueItems('prio', { limit: 10 })
      expect(items.map((i) => i.caseId)).toEqual(['cs_p_vip', 'cs_p_plain'])
      const plain = (await store.getCase('cs_p_plain'))!
      await store.commitCase({
        case: { ...plain, version: plain.version + 1, lastEvent: plain.lastEvent + 1 },
        expectedVersion: plain.version,
        events: [{ caseId: plain.id, seq: plain.lastEvent + 1, type: 'case.sla_breached', data: {}, at: at(3601) }],
        decisions: [],
        audit: [{ type: 'case.sla_breached', at: at(3601), caseId: plain.id, data: {} }],
      })
      const after = await store.listQueueItems('prio', { limit: 10 })
      expect(after.map((i) => [i.caseId, i.breached])).toEqual([
        ['cs_p_plain', true],
        ['cs_p_vip', false],
      ])
    })

    it('leases each due timer to one node only, and fires it once across nodes', async () => {
      for (let i = 0; i < 30; i++) await store.scheduleTimer('test.once', `k${i}`, at(10), { i })
      await store.scheduleTimer('test.once', 'later', at(100_000), {})
      const fired: string[] = []
      const second = another()
      const now = () => new Date(T0 + 20_000)
      const mk = (s: Store, owner: string) => {
        const sch = createTimerScheduler({ store: s, now, owner })
        sch.register('test.once', async (t) => {
          fired.push(t.key)
        })
        return sch
      }
      try {
        const [a, b] = [mk(store, 'node-a'), mk(second, 'node-b')]
        const counts = await Promise.all([a.pollOnce(), b.pollOnce()])
        counts.push(...(await Promise.all([b.pollOnce(), a.pollOnce()])))
        expect(counts.reduce((x, y) => x + y, 0)).toBe(30)
        expect(fired.sort()).toEqual(Array.from({ length: 30 }, (_, i) => `k${i}`).sort())
        expect(await a.pollOnce()).toBe(0)
        expect((await store.getTimer('test.once', 'k0'))?.state).toBe('fired')
        expect((await store.getTimer('test.once', 'later'))?.state).toBe('pending')
      } finally {
        await second.close()
      }
    })

    it('runs a timer again after its holder died (lease ran out), and retries a failed handler', async () => {
      await store.scheduleTimer('test.lease', 'x', at(0), {})
      const leased = await store.leaseDueTimers(['test.lease'], at(1), 'dead-node', at(61), 10)
      expect(leased).toHaveLength(1)
      expect(await store.leaseDueTimers(['test.lease'], at(30), 'node-b', at(90), 10)).toHaveLength(0)
      let runs = 0
      const sch = createTimerScheduler({ store, now: () => new Date(T0 + 62_000), owner: 'node-b', retryMs: 1000 })
      sch.register('test.lease', async () => {
        runs++
        if (runs === 1) throw new Error('flaky')
      })
      expect(await sch.pollOnce()).toBe(0)
      expect((await store.getTimer('test.lease', 'x'))?.lastError).toBe('flaky')
      const later = createTimerScheduler({ store, now: () => new Date(T0 + 64_000), owner: 'node-b' })
      later.register('test.lease', async () => {
        runs++
      })
      expect(await later.pollOnce()).toBe(1)
      expect(runs).toBe(2)
      expect(await store.completeTimer('test.lease', 'x', 'dead-node', at(70))).toBe(false)
    })

    it('keeps webhook subscriptions and their delivery state, leased to one node at a time', async () => {
      const base = {
        url: 'http://127.0.0.1:1/hook',
        events: ['case.escalated'],
        secret: 'whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0',
        createdAt: at(0),
        deletedAt: null,
        cursor: 5,
        attempts: 0,
        nextAttemptAt: at(0),
        lastError: null,
        delivered: 0,
        failed: 0,
      }
      await store.createWebhook({ ...base, id: 'wh_1' }, { type: 'webhook.created', at: at(0), data: {} })
      expect((await store.listWebhooks()).map((h) => h.id)).toContain('wh_1')
      const a = await store.leaseDueWebhooks(at(1), 'node-a', at(61))
      expect(a.map((h) => h.id)).toContain('wh_1')
      expect((await store.leaseDueWebhooks(at(2), 'node-b', at(62))).map((h) => h.id)).not.toContain('wh_1')
      const p = { cursor: 9, attempts: 2, nextAttemptAt: at(10), lastError: 'HTTP 500', delivered: 3, failed: 0 }
      expect(await store.saveWebhookProgress('wh_1', 'node-b', p)).toBe(false)
      expect(await store.saveWebhookProgress('wh_1', 'node-a', p)).toBe(true)
      await store.releaseWebhook('wh_1', 'node-a')
      expect(await store.getWebhook('wh_1')).toMatchObject({ cursor: 9, attempts: 2, lastError: 'HTTP 500' })
      expect((await store.leaseDueWebhooks(at(5), 'node-b', at(65))).map((h) => h.id)).not.toContain('wh_1')
      // A pass's heartbeat: saved progress with leaseUntil extends the lease past its first end, and only that far.
      expect((await store.leaseDueWebhooks(at(20), 'node-a', at(80))).map((h) => h.id)).toContain('wh_1')
      expect(await store.saveWebhookProgress('wh_1', 'node-a', { ...p, leaseUntil: at(140) })).toBe(true)
      expect((await store.leaseDueWebhooks(at(90), 'node-b', at(150))).map((h) => h.id)).not.toContain('wh_1')
      expect((await store.leaseDueWebhooks(at(141), 'node-b', at(201))).map((h) => h.id)).toContain('wh_1')
      expect(await store.deleteWebhook('wh_1', at(11), { type: 'webhook.deleted', at: at(11), data: {} })).toBe(true)
      expect((await store.listWebhooks()).map((h) => h.id)).not.toContain('wh_1')
      expect(await store.deleteWebhook('wh_1', at(12), { type: 'webhook.deleted', at: at(12), data: {} })).toBe(false)
    })
  })
}

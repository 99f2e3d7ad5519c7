import { describe, expect, it } from 'vitest'
import { leafHash } from '../audit/entry.js'
import type { CaseRecord } from '../cases/records.js'
import { isBatonError } from '../errors.js'
import type { Store } from './ports.js'

/** What a contract run needs from an engine: a fresh migrated store, and raw SQL for the tamper checks. */
export interface ContractHarness {
  open(): Promise<{ store: Store; exec: (sql: string) => Promise<void>; cleanup: () => Promise<void> }>
}

const at = (n: number) => new Date(Date.UTC(2026, 10, 1, 12, 0, n)).toISOString()

function caseRecord(id: string, over: Partial<CaseRecord> = {}): CaseRecord {
  return {
    id,
    customerId: 'cu_1',
    channel: 'chat',
    subject: '',
    state: 'open',
    handler: { kind: 'agent', agentId: 'bot' },
    handoffs: 0,
    messages: 1,
    risk: {},
    firstText: 'where is my order',
    lastEvent: 1,
    version: 1,
    createdAt: at(0),
    updatedAt: at(0),
    stateSince: at(0),
    ...over,
  }
}

const audit = (type: string, n: number) => ({ type, at: at(n), actor: { kind: 'admin', id: 'test' }, data: { n } })

/** One suite every store passes (kysely's model): same behaviour on SQLite and PostgreSQL. */
export function runStoreContract(engine: string, harness: ContractHarness): void {
  describe(`store contract: ${engine}`, () => {
    const withStore = (fn: (s: Store, exec: (sql: string) => Promise<void>) => Promise<void>) => async () => {
      const { store, exec, cleanup } = await harness.open()
      try {
        await fn(store, exec)
      } finally {
        await cleanup()
      }
    }

    it(
      'migrates idempotently and starts with an empty audit log',
      withStore(async (s) => {
        await s.migrate()
        expect(await s.auditSize()).toBe(0)
        expect(await s.ping()).toBe(true)
      }),
    )

    it(
      'stores keys by hash, refuses a duplicate, revokes once, and audits each change',
      withStore(async (s) => {
        const key = { id: 'key_1', name: 'helpdesk', role: 'service' as const, hash: 'h1', createdAt: at(1), revokedAt: null }
        await s.createKey(key, audit('key.created', 1))
        expect(await s.findKeyByHash('h1')).toEqual(key)
        expect(await s.countKeys('service')).toBe(1)
        await expect(s.createKey(key, audit('key.created', 2))).rejects.toSatisfy((e) => isBatonError(e, 'CONFLICT'))
        expect(await s.auditSize()).toBe(1)
        expect(await s.revokeKey('key_1', at(3), audit('key.revoked', 3))).toBe(true)
        expect(await s.revokeKey('key_1', at(4), audit('key.revoked', 4))).toBe(false)
        expect((await s.findKeyByHash('h1'))?.revokedAt).toBe(at(3))
        expect(await s.countKeys('service')).toBe(0)
        expect(await s.auditSize()).toBe(2)
      }),
    )

    it(
      'upserts customers',
      withStore(async (s) => {
        await s.putCustomer({ id: 'cu_1', tier: 'free', verified: false, attributes: {}, updatedAt: at(1) }, audit('c', 1))
        await s.putCustomer(
          { id: 'cu_1', tier: 'premium', verified: true, attributes: { plan: 'gold' }, updatedAt: at(2) },
          audit('c', 2),
        )
        expect(await s.getCustomer('cu_1')).toEqual({
          id: 'cu_1',
          tier: 'premium',
          verified: true,
          attributes: { plan: 'gold' },
          updatedAt: at(2),
        })
        expect(await s.getCustomer('nobody')).toBeUndefined()
      }),
    )

    it(
      'commits a case with events, decisions and dense audit entries, and refuses a stale version without writing',
      withStore(async (s) => {
        const c = caseRecord('cs_1')
        const r = await s.commitCase({
          case: c,
          expectedVersion: null,
          events: [{ caseId: 'cs_1', seq: 1, type: 'case.opened', data: { a: 1 }, at: at(0) }],
          decisions: [{ id: 'dec_1', caseId: 'cs_1', kind: 'route', outcome: 'agent', at: at(0), data: { rules: ['r'] } }],
          audit: [audit('case.opened', 0), audit('case.decided', 0)],
        })
        expect(r.auditSeqs).toEqual([0, 1])
        expect(await s.getCase('cs_1')).toEqual(c)
        const next = caseRecord('cs_1', {
          version: 2,
          messages: 2,
          lastEvent: 2,
          handler: { kind: 'operator', queue: 'billing' },
          handoffs: 1,
        })
        await s.commitCase({
          case: next,
          expectedVersion: 1,
          events: [{ caseId: 'cs_1', seq: 2, type: 'case.handed_off', data: {}, at: at(1) }],
          decisions: [],
          audit: [audit('case.handed_off', 1)],
        })
        // A writer that read version 1 lost the race: nothing of its commit may land.
        await expect(
          s.commitCase({
            case: caseRecord('cs_1', { version: 2, lastEvent: 2 }),
            expectedVersion: 1,
            events: [{ caseId: 'cs_1', seq: 2, type: 'message.received', data: {}, at: at(2) }],
            decisions: [{ id: 'dec_x', caseId: 'cs_1', kind: 'route', outcome: 'agent', at: at(2), data: {} }],
            audit: [audit('message.received', 2)],
          }),
        ).rejects.toSatisfy((e) => isBatonError(e, 'CONFLICT'))
        expect(await s.getCase('cs_1')).toEqual(next)
        expect((await s.listCaseEvents('cs_1')).map((e) => e.type)).toEqual(['case.opened', 'case.handed_off'])
        expect(await s.getDecision('dec_x')).toBeUndefined()
        expect(await s.auditSize()).toBe(3)
        const entries = await s.readAudit(0, 10)
        expect(entries.map((e) => e.seq)).toEqual([0, 1, 2])
        for (const e of entries) expect(Buffer.from(e.leafHash)).toEqual(Buffer.from(leafHash(e.entry)))
        expect(JSON.parse(entries[2]!.entry)).toMatchObject({ seq: 2, type: 'case.handed_off' })
        expect(await s.queueStats()).toEqual({ billing: { depth: 1, oldestSince: at(0) } })
        expect((await s.listOpenCasesOfCustomer('cu_1', 5)).map((x) => x.id)).toEqual(['cs_1'])
        expect((await s.listCases({ limit: 10, queue: 'billing' })).map((x) => x.id)).toEqual(['cs_1'])
      }),
    )

    it(
      'leaves no partial state when a write fails inside the transaction',
      withStore(async (s) => {
        const bad = { type: 'case.opened', at: at(0), data: { n: 1n } }
        await expect(
          s.commitCase({
            case: caseRecord('cs_2'),
            expectedVersion: null,
            events: [{ caseId: 'cs_2', seq: 1, type: 'case.opened', data: {}, at: at(0) }],
            decisions: [{ id: 'dec_2', caseId: 'cs_2', kind: 'route', outcome: 'agent', at: at(0), data: {} }],
            audit: [audit('ok', 0), bad],
          }),
        ).rejects.toThrow()
        expect(await s.getCase('cs_2')).toBeUndefined()
        expect(await s.listCaseEvents('cs_2')).toEqual([])
        expect(await s.getDecision('dec_2')).toBeUndefined()
        expect(await s.auditSize()).toBe(0)
        expect(await s.readAudit(0, 10)).toEqual([])
      }),
    )

    it(
      'refuses UPDATE and DELETE of history in the engine itself',
      withStore(async (s, exec) => {
        await s.commitCase({
          case: caseRecord('cs_3'),
          expectedVersion: null,
          events: [{ caseId: 'cs_3', seq: 1, type: 'case.opened', data: {}, at: at(0) }],
          decisions: [{ id: 'dec_3', caseId: 'cs_3', kind: 'route', outcome: 'agent', at: at(0), data: {} }],
          audit: [audit('case.opened', 0)],
        })
        await expect(exec(`update audit_entries set entry = 'x'`)).rejects.toThrow(/append-only/)
        await expect(exec('delete from audit_entries')).rejects.toThrow(/append-only/)
        await expect(exec(`update case_events set type = 'x'`)).rejects.toThrow(/append-only/)
        await expect(exec('delete from decisions')).rejects.toThrow(/append-only/)
        expect(await s.auditSize()).toBe(1)
        expect((await s.readAudit(0, 1))[0]?.entry).toContain('case.opened')
      }),
    )

    it(
      'records policy versions once per hash and audits each activation',
      withStore(async (s) => {
        const p = { hash: 'abc', name: 'shop', version: 1, owner: 'o', file: 'p.yaml', source: 'x', loadedAt: at(0) }
        await s.savePolicyVersion(p, audit('policy.activated', 0))
        await s.savePolicyVersion({ ...p, loadedAt: at(1) }, audit('policy.activated', 1))
        expect(await s.listPolicyVersions()).toEqual([p])
        expect(await s.auditSize()).toBe(2)
      }),
    )

    it(
      'keeps settings',
      withStore(async (s) => {
        expect(await s.getSetting('k')).toBeUndefined()
        await s.putSetting('k', 'v1')
        await s.putSetting('k', 'v2')
        expect(await s.getSetting('k')).toBe('v2')
      }),
    )

    it(
      'assigns dense audit sequence numbers under concurrent writers',
      withStore(async (s) => {
        await Promise.all(Array.from({ length: 20 }, (_, i) => s.appendAudit([audit('x', i), audit('y', i)])))
        const entries = await s.readAudit(0, 100)
        expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i))
      }),
    )
  })
}

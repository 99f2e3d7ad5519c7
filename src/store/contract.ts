import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { canonicalJson, leafHash } from '../audit/entry.js'
import { HeadSigner } from '../audit/head.js'
import { type CompletedNode, TreeBuilder } from '../audit/merkle.js'
import type { CaseRecord } from '../cases/records.js'
import { isBatonError } from '../errors.js'
import type { CaseCommit, Store } from './ports.js'

/** What a contract run needs from an engine: a fresh migrated store, and raw SQL for the tamper checks. */
export interface ContractHarness {
  open(): Promise<{
    store: Store
    exec: (sql: string) => Promise<void>
    cleanup: () => Promise<void>
    /** A second store on the same database (another node), closed by the caller. */
    another?: () => Store
  }>
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
    const withStore =
      (fn: (s: Store, exec: (sql: string) => Promise<void>, another?: () => Store) => Promise<void>) => async () => {
        const { store, exec, cleanup, another } = await harness.open()
        try {
          await fn(store, exec, another)
        } finally {
          await cleanup()
        }
      }

    it(
      'migrates idempotently and starts with an empty audit log',
      withStore(async (s) => {
        await s.migrate()
        expect(await s.auditSize()).toBe(0)
        expect(await s.health()).toEqual({ ok: true })
      }),
    )

    it(
      'stores keys by hash, refuses a duplicate, revokes once, and audits each change',
      withStore(async (s) => {
        const key = {
          id: 'key_1',
          name: 'helpdesk',
          role: 'service' as const,
          hash: 'h1',
          createdAt: at(1),
          revokedAt: null,
        }
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
        await s.putCustomer(
          { id: 'cu_1', tier: 'free', verified: false, attributes: {}, updatedAt: at(1) },
          audit('c', 1),
        )
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
        await s.commitCase({
          case: c,
          expectedVersion: null,
          events: [{ caseId: 'cs_1', seq: 1, type: 'case.opened', data: { a: 1 }, at: at(0) }],
          decisions: [
            { id: 'dec_1', caseId: 'cs_1', kind: 'route', outcome: 'agent', at: at(0), data: { rules: ['r'] } },
          ],
          audit: [audit('case.opened', 0), audit('case.decided', 0)],
        })
        expect((await s.readAudit(0, 10)).map((e) => [e.seq, JSON.parse(e.entry).type])).toEqual([
          [0, 'case.opened'],
          [1, 'case.decided'],
        ])
        expect(await s.getCase('cs_1')).toEqual({ ...c, authorityEpoch: 0 })
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
        // The handler changed: the store moved the case's authority epoch (credentials of before stop working).
        expect(await s.getCase('cs_1')).toEqual({ ...next, authorityEpoch: 1 })
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
      'commits concurrent cases together, and a refused one among them fails alone without writing',
      withStore(async (s) => {
        const open = (id: string, n: number): CaseCommit => ({
          case: caseRecord(id),
          expectedVersion: null,
          events: [{ caseId: id, seq: 1, type: 'case.opened', data: { id }, at: at(n) }],
          decisions: [{ id: `dec_${id}`, caseId: id, kind: 'route', outcome: 'agent', at: at(n), data: {} }],
          audit: [audit('case.opened', n), audit('case.decided', n)],
        })
        await s.commitCase(open('cs_b0', 0))
        const stale: CaseCommit = {
          case: caseRecord('cs_b0', { version: 2, lastEvent: 2 }),
          expectedVersion: 7,
          events: [{ caseId: 'cs_b0', seq: 2, type: 'message.received', data: {}, at: at(1) }],
          decisions: [{ id: 'dec_stale', caseId: 'cs_b0', kind: 'route', outcome: 'agent', at: at(1), data: {} }],
          audit: [audit('message.received', 1)],
        }
        // Submitted in one tick: an engine may write them in one transaction, but each stands or fails alone.
        const results = await Promise.allSettled([
          s.commitCase(open('cs_b1', 1)),
          s.commitCase(stale),
          s.commitCase(open('cs_b2', 2)),
          s.commitCase(open('cs_b0', 3)), // a case that exists already: refused by the engine
        ])
        expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected'])
        expect(results[1]).toMatchObject({ reason: { code: 'CONFLICT' } })
        expect(results[3]).toMatchObject({ reason: { code: 'CONFLICT' } })
        expect(await s.getDecision('dec_stale')).toBeUndefined()
        expect((await s.listCaseEvents('cs_b0')).map((e) => e.seq)).toEqual([1])
        expect((await s.listCaseEvents('cs_b1')).map((e) => e.data)).toEqual([{ id: 'cs_b1' }])
        expect((await s.getCase('cs_b2'))?.version).toBe(1)
        expect(await s.auditSize()).toBe(6)
        const entries = await s.readAudit(0, 10)
        expect(entries.map((e) => e.seq)).toEqual([0, 1, 2, 3, 4, 5])
        expect(entries.map((e) => JSON.parse(e.entry).type).slice(2)).toEqual([
          'case.opened',
          'case.decided',
          'case.opened',
          'case.decided',
        ])
        for (const e of entries) expect(Buffer.from(e.leafHash)).toEqual(Buffer.from(leafHash(e.entry)))
      }),
    )

    it(
      'lists the open cases of a customer newest first, at most the limit',
      withStore(async (s) => {
        for (const [id, n, state] of [
          ['cs_o1', 3, 'open'],
          ['cs_o2', 1, 'open'],
          ['cs_o3', 4, 'closed'],
          ['cs_o4', 2, 'open'],
        ] as const) {
          await s.commitCase({
            case: caseRecord(id, { customerId: 'cu_o', createdAt: at(n), state }),
            expectedVersion: null,
            events: [{ caseId: id, seq: 1, type: 'case.opened', data: {}, at: at(n) }],
            decisions: [],
            audit: [audit('case.opened', n)],
          })
        }
        const ids = async (limit: number) => (await s.listOpenCasesOfCustomer('cu_o', limit)).map((c) => c.id)
        expect(await ids(5)).toEqual(['cs_o1', 'cs_o4', 'cs_o2'])
        expect(await ids(3)).toEqual(['cs_o1', 'cs_o4', 'cs_o2'])
        expect(await ids(2)).toEqual(['cs_o1', 'cs_o4'])
        expect(await ids(0)).toEqual([])
        expect(await s.listOpenCasesOfCustomer('nobody', 5)).toEqual([])
        // the same cases, with the customer record, in one read
        for (const limit of [5, 2, 0]) {
          expect(await s.customerWithOpenCases('cu_o', limit)).toEqual({
            customer: undefined,
            open: await s.listOpenCasesOfCustomer('cu_o', limit),
          })
        }
        const customer = { id: 'cu_o', tier: 'gold', verified: true, attributes: { plan: 'x' }, updatedAt: at(5) }
        await s.putCustomer(customer, audit('customer.updated', 5))
        expect(await s.customerWithOpenCases('cu_o', 5)).toEqual({
          customer,
          open: await s.listOpenCasesOfCustomer('cu_o', 5),
        })
        expect(await s.customerWithOpenCases('cu_o', 0)).toEqual({ customer, open: [] })
        const alone = { ...customer, id: 'cu_alone' }
        await s.putCustomer(alone, audit('customer.updated', 6))
        expect(await s.customerWithOpenCases('cu_alone', 5)).toEqual({ customer: alone, open: [] })
        expect(await s.customerWithOpenCases('nobody', 5)).toEqual({ customer: undefined, open: [] })
      }),
    )

    it(
      'gives back each decided event with its decision data, also when the event shares the decision object',
      withStore(async (s) => {
        const first = { outcome: 'agent', rules: ['r1'], facts: { signals: { intent: 'order_status' } } }
        const second = { outcome: 'operator', rules: ['r2'], facts: { signals: { intent: 'refund' } } }
        const own = { outcome: 'agent', note: 'an event with data of its own' }
        await s.commitCase({
          case: caseRecord('cs_d'),
          expectedVersion: null,
          events: [
            { caseId: 'cs_d', seq: 1, type: 'case.opened', data: { a: 1 }, at: at(0) },
            { caseId: 'cs_d', seq: 2, type: 'case.decided', data: first, at: at(0) },
          ],
          decisions: [{ id: 'dec_d1', caseId: 'cs_d', kind: 'route', outcome: 'agent', at: at(0), data: first }],
          audit: [audit('case.opened', 0)],
        })
        await s.commitCase({
          case: caseRecord('cs_d', { version: 2, messages: 2, lastEvent: 4 }),
          expectedVersion: 1,
          events: [
            { caseId: 'cs_d', seq: 3, type: 'case.decided', data: second, at: at(1) },
            { caseId: 'cs_d', seq: 4, type: 'case.decided', data: own, at: at(1) },
          ],
          decisions: [{ id: 'dec_d2', caseId: 'cs_d', kind: 'route', outcome: 'operator', at: at(1), data: second }],
          audit: [audit('case.decided', 1)],
        })
        expect((await s.listCaseEvents('cs_d')).map((e) => [e.seq, e.type, e.data])).toEqual([
          [1, 'case.opened', { a: 1 }],
          [2, 'case.decided', first],
          [3, 'case.decided', second],
          [4, 'case.decided', own],
        ])
        expect((await s.listDecisions('cs_d')).map((d) => d.data)).toEqual([first, second])
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
        await s.flushAudit() // the raw statements below look at audit_entries directly
        await expect(exec(`update audit_entries set entry = 'x'`)).rejects.toThrow(/append-only/)
        await expect(exec('delete from audit_entries')).rejects.toThrow(/append-only/)
        await expect(exec(`update case_events set type = 'x'`)).rejects.toThrow(/append-only/)
        await expect(exec('delete from decisions')).rejects.toThrow(/append-only/)
        expect(await s.auditSize()).toBe(1)
        expect((await s.readAudit(0, 1))[0]?.entry).toContain('case.opened')
      }),
    )

    it(
      'activates only higher policy versions, answers the newest again as unchanged, and audits each activation',
      withStore(async (s) => {
        const v = (version: number, hash: string, n: number) => ({
          hash,
          name: 'shop',
          version,
          owner: 'o',
          file: 'p.yaml',
          source: `source ${hash}`,
          loadedAt: at(n),
        })
        expect(await s.newestPolicyVersion()).toBeUndefined()
        const v1 = v(1, 'h1', 0)
        expect(await s.activatePolicyVersion(v1, audit('policy.activated', 0))).toEqual({
          outcome: 'activated',
          newest: v1,
        })
        // the same document again: nothing written
        expect(await s.activatePolicyVersion(v(1, 'h1', 1), audit('policy.activated', 1))).toEqual({
          outcome: 'unchanged',
          newest: v1,
        })
        const v3 = v(3, 'h3', 2)
        expect((await s.activatePolicyVersion(v3, audit('policy.activated', 2))).outcome).toBe('activated')
        // other content at the same version, at a lower one, and an older document again: refused, nothing written
        for (const [i, other] of [v(3, 'h3b', 3), v(2, 'h2', 4), v(1, 'h1', 5)].entries()) {
          expect(await s.activatePolicyVersion(other, audit('policy.activated', 3 + i))).toEqual({
            outcome: 'conflict',
            newest: v3,
          })
        }
        expect(await s.newestPolicyVersion()).toEqual(v3)
        expect(await s.listPolicyVersions()).toEqual([v1, v3])
        expect(await s.auditSize()).toBe(2)
      }),
    )

    it(
      'activates exactly one of two documents racing for the same version, also from two nodes',
      withStore(async (s, _exec, another) => {
        const other = (s.engine === 'postgres' ? another?.() : undefined) ?? s
        try {
          for (const version of [1, 2, 3, 4, 5]) {
            const doc = (hash: string) => ({
              hash,
              name: 'shop',
              version,
              owner: 'o',
              file: 'p.yaml',
              source: hash,
              loadedAt: at(version),
            })
            const outcomes = await Promise.all(
              ['a', 'b', 'c', 'd'].map((x, i) =>
                (i % 2 === 0 ? s : other).activatePolicyVersion(
                  doc(`${x}${version}`),
                  audit('policy.activated', version),
                ),
              ),
            )
            expect(outcomes.filter((o) => o.outcome === 'activated')).toHaveLength(1)
            const winner = outcomes.find((o) => o.outcome === 'activated')?.newest
            expect(outcomes.map((o) => o.newest)).toEqual([winner, winner, winner, winner])
          }
          expect((await other.listPolicyVersions()).map((p) => p.version)).toEqual([1, 2, 3, 4, 5])
          expect(await s.auditSize()).toBe(5)
        } finally {
          if (other !== s) await other.close()
        }
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
      'lets the first of racing writers claim a setting, and every racer reads that one',
      withStore(async (s) => {
        const got = await Promise.all(['a', 'b', 'c', 'd'].map((v) => s.claimSetting('shared', v)))
        expect(new Set(got).size).toBe(1)
        expect(await s.getSetting('shared')).toBe(got[0])
        expect(await s.claimSetting('shared', 'late')).toBe(got[0])
      }),
    )

    it(
      'spends a one-time id once among racing callers, per scope, and lets an expired record be taken over',
      withStore(async (s) => {
        const later = new Date(Date.now() + 60_000).toISOString()
        const got = await Promise.all(Array.from({ length: 6 }, () => s.spendOnce('assertion', 'bot:j1', later)))
        expect(got.filter(Boolean)).toHaveLength(1)
        expect(await s.spendOnce('assertion', 'bot:j1', later)).toBe(false)
        expect(await s.isSpent('assertion', 'bot:j1')).toBe(true)
        // another scope, another id: independent
        expect(await s.isSpent('session', 'bot:j1')).toBe(false)
        expect(await s.spendOnce('session', 'bot:j1', later)).toBe(true)
        expect(await s.isSpent('assertion', 'bot:j2')).toBe(false)
        // a record past its expiry is not spent any more, and the id can be recorded again
        const past = new Date(Date.now() - 1000).toISOString()
        expect(await s.spendOnce('session', 'old', past)).toBe(true)
        expect(await s.isSpent('session', 'old')).toBe(false)
        expect(await s.spendOnce('session', 'old', later)).toBe(true)
        expect(await s.isSpent('session', 'old')).toBe(true)
      }),
    )

    it(
      'integrates tree nodes and a signed head in one transaction, and refuses a stale or overreaching one',
      withStore(async (s) => {
        await s.appendAudit(Array.from({ length: 5 }, (_, i) => audit('x', i)))
        const { nodes, head, builder } = grow(new TreeBuilder(), await s.readLeafHashes(0, 100), at(10))
        expect(nodes.map((n) => `${n.level}/${n.index}`)).toEqual(['1/0', '1/1', '2/0'])
        expect(await s.latestHead()).toBeUndefined()
        await s.integrateTree(0, nodes, head)
        expect(await s.latestHead()).toEqual(head)
        expect(await s.headAt(5)).toEqual(head)
        expect(await s.headAt(4)).toBeUndefined()
        expect(await s.countTreeNodes()).toBe(3)
        // A second sequencer that still thinks the tree is empty writes nothing.
        await expect(s.integrateTree(0, nodes, head)).rejects.toSatisfy((e) => isBatonError(e, 'CONFLICT'))
        await s.appendAudit([audit('y', 6)])
        const more = grow(builder, await s.readLeafHashes(5, 100), at(11))
        await expect(s.integrateTree(5, more.nodes, { ...more.head, size: 7 })).rejects.toSatisfy((e) =>
          isBatonError(e, 'AUDIT_INVALID'),
        )
        expect(await s.countTreeNodes()).toBe(3)
        await s.integrateTree(5, more.nodes, more.head)
        expect((await s.listHeads()).map((h) => h.size)).toEqual([5, 6])
        expect(await s.countTreeNodes()).toBe(4)
        // Nodes in the order asked, level 0 from the entries; a missing one is named.
        const leaves = await s.readLeafHashes(0, 6)
        const got = await s.getTreeNodes([
          { level: 2, index: 0n },
          { level: 0, index: 4n },
          { level: 1, index: 2n },
          { level: 0, index: 4n },
        ])
        expect(got.map((h) => Buffer.from(h).toString('hex'))).toEqual(
          [nodes[2]!.hash, leaves[4]!.leafHash, more.nodes[0]!.hash, leaves[4]!.leafHash].map((h) =>
            Buffer.from(h).toString('hex'),
          ),
        )
        await expect(s.getTreeNodes([{ level: 3, index: 0n }])).rejects.toSatisfy((e) =>
          isBatonError(e, 'AUDIT_ENTRY_NOT_FOUND'),
        )
        const scanned = await s.scanTreeNodes([
          { level: 1, from: 1, to: 5 },
          { level: 2, from: 0, to: 0 },
        ])
        expect(scanned.map((n) => `${n.level}/${n.index}`)).toEqual(['1/1', '1/2', '2/0'])
      }),
    )

    it(
      'refuses changes to tree nodes and heads, and to audit keys other than retiring them once',
      withStore(async (s, exec) => {
        await s.appendAudit([audit('x', 0), { ...audit('x', 1), caseId: 'cs_1' }])
        const { nodes, head } = grow(new TreeBuilder(), await s.readLeafHashes(0, 10), at(5))
        await s.integrateTree(0, nodes, head)
        const key = { keyId: 'k1', publicKey: 'pem', createdAt: at(0), retiredAt: null }
        await s.putAuditKey(key, audit('audit.key_added', 0))
        await expect(exec('update audit_nodes set idx = 7')).rejects.toThrow(/append-only/)
        await expect(exec('delete from audit_nodes')).rejects.toThrow(/append-only/)
        await expect(exec('update audit_heads set size = 9')).rejects.toThrow(/append-only/)
        await expect(exec('delete from audit_heads')).rejects.toThrow(/append-only/)
        await expect(exec('delete from audit_case_entries')).rejects.toThrow(/append-only/)
        await expect(exec(`update audit_keys set public_key = 'other'`)).rejects.toThrow(/append-only/)
        await expect(exec('delete from audit_keys')).rejects.toThrow(/append-only/)
        await exec(`update audit_keys set retired_at = '${at(9)}'`)
        await expect(exec(`update audit_keys set retired_at = '${at(10)}'`)).rejects.toThrow(/append-only/)
        expect(await s.listAuditKeys()).toEqual([{ ...key, retiredAt: at(9) }])
        expect(await s.countTreeNodes()).toBe(1)
      }),
    )

    it(
      'records head-signing keys once, audited, and rotates by retiring the old key in the same transaction',
      withStore(async (s) => {
        const k1 = { keyId: 'k1', publicKey: 'pem1', createdAt: at(1), retiredAt: null }
        expect(await s.putAuditKey(k1, audit('audit.key_added', 1))).toBe(true)
        expect(await s.putAuditKey(k1, audit('audit.key_added', 2))).toBe(false)
        expect(await s.auditSize()).toBe(1)
        const k2 = { keyId: 'k2', publicKey: 'pem2', createdAt: at(3), retiredAt: null }
        await s.rotateAuditKey(k2, 'k1', audit('audit.key_rotated', 3))
        expect(await s.listAuditKeys()).toEqual([{ ...k1, retiredAt: at(3) }, k2])
        expect(await s.auditSize()).toBe(2)
      }),
    )

    it(
      'scans entries in batches and finds the entries of one case',
      withStore(async (s) => {
        await s.appendAudit(
          Array.from({ length: 7 }, (_, i) => ({ ...audit('x', i), ...(i % 3 === 0 ? { caseId: 'cs_a' } : {}) })),
        )
        const batches: number[][] = []
        for await (const b of s.scanAudit(1, 3)) batches.push(b.map((e) => e.seq))
        expect(batches).toEqual([
          [1, 2, 3],
          [4, 5, 6],
        ])
        expect((await s.listCaseAudit('cs_a')).map((e) => e.seq)).toEqual([0, 3, 6])
        expect(await s.listCaseAudit('cs_none')).toEqual([])
        // Integrating entries 0..4 indexes their cases; 5 and 6 are still found in the tail.
        const { nodes, head } = grow(new TreeBuilder(), await s.readLeafHashes(0, 5), at(9))
        await s.integrateTree(0, nodes, head)
        expect((await s.listCaseAudit('cs_a')).map((e) => e.seq)).toEqual([0, 3, 6])
        expect((await s.listCaseAudit('cs_a'))[1]?.entry).toContain('"caseId":"cs_a"')
        expect((await s.readLeafHashes(5, 10)).map((l) => l.seq)).toEqual([5, 6])
      }),
    )

    it(
      'grants the sequencer lease to one holder at a time',
      withStore(async (s, _exec, another) => {
        const first = await s.acquireSequencerLease()
        expect(first).toBeDefined()
        expect(await first!.held()).toBe(true)
        expect(await s.acquireSequencerLease()).toBeUndefined()
        const other = another?.()
        try {
          if (other !== undefined && s.engine === 'postgres')
            expect(await other.acquireSequencerLease()).toBeUndefined()
          await first!.release()
          expect(await first!.held()).toBe(false)
          const again = await (other ?? s).acquireSequencerLease()
          expect(again).toBeDefined()
          await again!.release()
        } finally {
          await other?.close()
        }
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

    it(
      'keeps the log dense and each entry once when two nodes write and sequence at the same time',
      withStore(async (s, _exec, another) => {
        // PostgreSQL: two stores on one database, each with its own drainer. SQLite: one process owns the file (a
        // second store in this process would wait for the first's lock on the very thread that must release it).
        const other = (s.engine === 'postgres' ? another?.() : undefined) ?? s
        try {
          await Promise.all(
            Array.from({ length: 30 }, (_, i) =>
              (i % 2 === 0 ? s : other).appendAudit([audit(`n${i % 2}`, i), audit(`n${i % 2}`, i + 100)]),
            ),
          )
          const [mine, theirs] = await Promise.all([s.readAudit(0, 1000), other.readAudit(0, 1000)])
          expect(mine.map((e) => e.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i))
          expect(theirs.map((e) => e.entry)).toEqual(mine.map((e) => e.entry))
          const ns = mine.map((e) => (JSON.parse(e.entry) as { data: { n: number } }).data.n).sort((a, b) => a - b)
          expect(ns).toEqual([
            ...Array.from({ length: 30 }, (_, i) => i),
            ...Array.from({ length: 30 }, (_, i) => i + 100),
          ])
        } finally {
          if (other !== s) await other.close()
        }
      }),
    )

    it(
      'puts every committed entry in the log, also one whose writer died between its commit and its sequencing',
      withStore(async (s, exec) => {
        await s.appendAudit([audit('a', 0)])
        if (s.engine === 'postgres') {
          // A body in the PostgreSQL intake queue with no drain behind it: what a node killed after its commit leaves.
          const text = canonicalJson(audit('b', 1)).replaceAll("'", "''")
          await exec(`insert into audit_queue (body) values ('${text}')`)
        } else {
          await s.appendAudit([audit('b', 1)])
        }
        // A failed writer leaves nothing behind in the log or the queue.
        await expect(s.appendAudit([audit('c', 2), { type: 'bad', at: at(3), data: { n: 1n } }])).rejects.toThrow()
        await expect(s.appendAudit([{ type: '', at: at(3), data: {} }])).rejects.toThrow(TypeError)
        await expect(s.appendAudit([{ ...audit('x', 3), seq: 7 } as never])).rejects.toThrow(TypeError)
        expect(await s.auditSize()).toBe(2)
        const entries = await s.readAudit(0, 10)
        expect(entries.map((e) => [e.seq, JSON.parse(e.entry).type])).toEqual([
          [0, 'a'],
          [1, 'b'],
        ])
        await s.appendAudit([audit('d', 4)])
        expect((await s.readAudit(2, 3)).map((e) => JSON.parse(e.entry).type)).toEqual(['d'])
      }),
    )
  })
}

const signer = new HeadSigner(generateKeyPairSync('ed25519').privateKey)

/** Appends leaves to a copy of `from` and signs the new head, as the sequencer does. */
function grow(
  from: TreeBuilder,
  leaves: readonly { readonly leafHash: Uint8Array }[],
  timestamp: string,
): { nodes: CompletedNode[]; head: ReturnType<HeadSigner['sign']>; builder: TreeBuilder } {
  const builder = TreeBuilder.fromFrontier(from.size, from.frontier())
  const nodes: CompletedNode[] = []
  for (const l of leaves) nodes.push(...builder.append(l.leafHash).filter((n) => n.level > 0))
  return { nodes, head: signer.sign({ size: Number(builder.size), root: builder.root(), timestamp }), builder }
}

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freshDatabase, pgAvailable } from '../../test/support/pg.js'
import type { CaseRecord } from '../cases/records.js'
import type { ConfirmationRecord } from '../delegation/confirmation.js'
import type { GrantRecord } from '../delegation/grants.js'
import type { DelegateRecord } from '../delegation/principals.js'
import { isBatonError } from '../errors.js'
import { CONFIRMATION_EXPIRY_TIMER } from './authority-store.js'
import type { Store } from './ports.js'
import { createPostgresStore } from './postgres/database.js'
import { createSqliteStore } from './sqlite/database.js'

const at = (s: number) => new Date(Date.UTC(2026, 10, 1, 12, 0, s)).toISOString()
const audit = (type: string, data: unknown = {}) => ({ type, at: at(0), actor: { kind: 'admin', id: 'test' }, data })

const delegate = (id: string, over: Partial<DelegateRecord> = {}): DelegateRecord => ({
  id,
  name: id,
  vendor: 'Acme',
  contact: 'ops@acme.example',
  publicJwk: { kty: 'OKP', crv: 'Ed25519', x: 'x'.repeat(43) },
  state: 'active',
  createdAt: at(0),
  updatedAt: at(0),
  ...over,
})

const grant = (id: string, over: Partial<GrantRecord> = {}): GrantRecord => ({
  id,
  customerId: 'cu_1',
  delegateId: 'acme',
  parentId: null,
  depth: 1,
  scopes: ['case:open', 'refund:request'],
  limits: { 'refund:request': 'params.amount <= 20' },
  maySubdelegate: true,
  state: 'active',
  createdAt: at(1),
  expiresAt: '2099-01-01T00:00:00.000Z',
  grantedBy: { kind: 'service', id: 'key_1' },
  note: 'for the winter sale',
  revokedAt: null,
  revokedBy: null,
  revokeReason: null,
  ...over,
})

/** Every store keeps delegates, grants and their chains, and customer confirmations, the same way. */
function runDelegationContract(engine: string, open: () => Promise<{ store: Store; cleanup: () => Promise<void> }>) {
  describe(`delegation store contract: ${engine}`, () => {
    let s: Store
    let cleanup: () => Promise<void>
    beforeAll(async () => {
      ;({ store: s, cleanup } = await open())
      for (const d of ['acme', 'courier', 'third'])
        expect(await s.registerDelegate(delegate(d), audit('delegate.registered'))).toBe(true)
    })
    afterAll(async () => cleanup())

    const types = async () => (await s.readAudit(0, await s.auditSize())).map((e) => JSON.parse(e.entry).type as string)

    it('registers a delegate once, with its audit entry', async () => {
      expect(await s.registerDelegate(delegate('acme', { name: 'other' }), audit('delegate.registered'))).toBe(false)
      expect(await s.getDelegate('acme')).toEqual(delegate('acme'))
      expect((await s.listDelegates()).map((d) => d.id)).toEqual(['acme', 'courier', 'third'])
      expect((await types()).filter((t) => t === 'delegate.registered')).toHaveLength(3)
    })

    it('keeps a grant and its sub-delegation as a chain, root first, with each delegate state now', async () => {
      await s.createGrant(grant('g1'), [audit('grant.created')])
      await s.createGrant(
        grant('g2', { parentId: 'g1', depth: 2, delegateId: 'courier', scopes: ['refund:request'], limits: {} }),
        [audit('grant.created')],
      )
      expect(await s.getGrant('g1')).toEqual(grant('g1'))
      const chain = await s.getGrantChain('g2')
      expect(chain.map((l) => [l.grant.id, l.delegateState])).toEqual([
        ['g1', 'active'],
        ['g2', 'active'],
      ])
      expect(chain[1]?.grant.limits).toEqual({})
      expect(await s.getGrantChain('nope')).toEqual([])
      expect((await s.listGrants({ customerId: 'cu_1', limit: 10 })).map((g) => g.id).sort()).toEqual(['g1', 'g2'])
      expect((await s.listGrants({ parentId: 'g1', delegateId: 'courier', limit: 10 })).map((g) => g.id)).toEqual([
        'g2',
      ])
      expect(await s.listGrants({ delegateId: 'third', limit: 10 })).toEqual([])
      expect(await s.listGrants({ customerId: 'cu_1', activeAt: '2099-06-01T00:00:00.000Z', limit: 10 })).toEqual([])
      // a suspended delegate shows in the chain at once
      await s.transitionDelegate('acme', ['active'], 'suspended', at(2), () => [audit('delegate.suspended')])
      expect((await s.getGrantChain('g2')).map((l) => l.delegateState)).toEqual(['suspended', 'active'])
      await s.transitionDelegate('acme', ['suspended'], 'active', at(3), () => [audit('delegate.activated')])
    })

    it('refuses a grant to an inactive or unknown delegate and under a revoked parent, writing nothing', async () => {
      const before = await s.auditSize()
      await s.transitionDelegate('third', ['active'], 'suspended', at(4), () => [audit('delegate.suspended')])
      const afterSuspend = await s.auditSize()
      await expect(s.createGrant(grant('gx', { delegateId: 'third' }), [audit('grant.created')])).rejects.toSatisfy(
        (e) => isBatonError(e, 'DELEGATE_INACTIVE'),
      )
      await expect(s.createGrant(grant('gy', { delegateId: 'ghost' }), [audit('grant.created')])).rejects.toSatisfy(
        (e) => isBatonError(e, 'DELEGATE_NOT_FOUND'),
      )
      await s.createGrant(grant('g3', { delegateId: 'courier', customerId: 'cu_3' }), [audit('grant.created')])
      await s.revokeGrant('g3', 'key_1', at(5), 'done', () => [audit('grant.revoked')])
      await expect(
        s.createGrant(grant('g4', { parentId: 'g3', depth: 2, customerId: 'cu_3' }), [audit('grant.created')]),
      ).rejects.toSatisfy((e) => isBatonError(e, 'GRANT_REVOKED'))
      expect(await s.getGrant('gx')).toBeUndefined()
      expect(await s.getGrant('g4')).toBeUndefined()
      expect(await s.auditSize()).toBe(afterSuspend + 2)
      expect(afterSuspend).toBe(before + 1)
    })

    it('revokes a grant with every grant below it, once; a second revocation writes nothing', async () => {
      await s.createGrant(grant('r1', { customerId: 'cu_r' }), [audit('grant.created')])
      await s.createGrant(grant('r2', { customerId: 'cu_r', parentId: 'r1', depth: 2, delegateId: 'courier' }), [
        audit('grant.created'),
      ])
      const entries: string[][] = []
      const revoked = await s.revokeGrant('r1', 'key_9', at(6), 'lost phone', (ids) => {
        entries.push([...ids])
        return ids.map((id) => audit('grant.revoked', { grantId: id }))
      })
      expect(revoked).toEqual(['r1', 'r2'])
      expect(entries).toEqual([['r1', 'r2']])
      expect(await s.getGrant('r2')).toMatchObject({
        state: 'revoked',
        revokedBy: 'key_9',
        revokeReason: 'parent_revoked',
      })
      expect(await s.getGrant('r1')).toMatchObject({ state: 'revoked', revokedAt: at(6), revokeReason: 'lost phone' })
      const size = await s.auditSize()
      expect(await s.revokeGrant('r1', 'key_9', at(7), 'again', () => [audit('grant.revoked')])).toEqual([])
      expect(await s.auditSize()).toBe(size)
      await expect(s.revokeGrant('nope', 'k', at(7), 'x', () => [])).rejects.toSatisfy((e) =>
        isBatonError(e, 'GRANT_NOT_FOUND'),
      )
    })

    it('retiring a delegate revokes its grants and the sub-delegations below them', async () => {
      await s.registerDelegate(delegate('old'), audit('delegate.registered'))
      await s.createGrant(grant('o1', { delegateId: 'old', customerId: 'cu_o' }), [audit('grant.created')])
      await s.createGrant(grant('o2', { customerId: 'cu_o', parentId: 'o1', depth: 2, delegateId: 'courier' }), [
        audit('grant.created'),
      ])
      const r = await s.transitionDelegate('old', ['active', 'suspended'], 'retired', at(8), (ids) => [
        audit('delegate.retired', { ids }),
      ])
      expect(r.revokedGrants).toEqual(['o1', 'o2'])
      expect((await s.getGrant('o2'))?.state).toBe('revoked')
      await expect(s.transitionDelegate('old', ['suspended'], 'active', at(9), () => [])).rejects.toSatisfy((e) =>
        isBatonError(e, 'DELEGATE_STATE_INVALID'),
      )
      await expect(s.transitionDelegate('ghost', ['active'], 'suspended', at(9), () => [])).rejects.toSatisfy((e) =>
        isBatonError(e, 'DELEGATE_NOT_FOUND'),
      )
    })

    it('records an exchange once: a replayed assertion id writes nothing', async () => {
      const spend = { scope: 'delegate_assertion', id: 'acme:jti-1', expiresAt: '2099-01-01T00:00:00.000Z' }
      const size = await s.auditSize()
      expect(await s.recordExchange(spend, [audit('delegate.token_issued')])).toBe(true)
      expect(await s.recordExchange(spend, [audit('delegate.token_issued')])).toBe(false)
      expect(await s.auditSize()).toBe(size + 1)
      expect(await s.isSpent('delegate_assertion', 'acme:jti-1')).toBe(true)
    })

    it('records concurrent exchanges, sharing commits, each once: every replay refused, every other one audited', async () => {
      const size = await s.auditSize()
      const ids = Array.from({ length: 60 }, (_, i) => `acme:burst-${i % 40}`)
      const results = await Promise.all(
        ids.map((id, i) =>
          s.recordExchange({ scope: 'delegate_assertion', id, expiresAt: '2099-01-01T00:00:00.000Z' }, [
            audit('delegate.token_issued', { n: i, id }),
          ]),
        ),
      )
      // the first of each id wins, whichever transaction it landed in; the 20 repeats are refused
      expect(results.filter(Boolean)).toHaveLength(40)
      for (let i = 0; i < 40; i++) expect(results[i]).toBe(true)
      for (let i = 40; i < 60; i++) expect(results[i]).toBe(false)
      const entries = (await s.readAudit(size, await s.auditSize())).map((e) => JSON.parse(e.entry))
      expect(entries.map((e) => e.data.n).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i))
    })

    it('keeps a confirmation with its action and expiry timer, settled exactly once', async () => {
      const c: CaseRecord = {
        id: 'cs_c',
        customerId: 'cu_1',
        channel: 'api',
        subject: '',
        state: 'open',
        handler: { kind: 'agent', agentId: 'bot' },
        handoffs: 0,
        messages: 1,
        risk: {},
        firstText: 'hi',
        lastEvent: 0,
        version: 1,
        createdAt: at(0),
        updatedAt: at(0),
        stateSince: at(0),
      }
      await s.commitCase({ case: c, expectedVersion: null, events: [], decisions: [], audit: [audit('case.opened')] })
      const confirmation: ConfirmationRecord = {
        id: 'cnf_1',
        caseId: 'cs_c',
        actionId: 'act_c',
        customerId: 'cu_1',
        tool: 'refund',
        params: { amount: 20 },
        digest: 'd',
        requesterKind: 'delegate',
        requester: 'acme',
        grantId: 'g1',
        rule: 'delegate-refund',
        state: 'pending',
        caseEpoch: 0,
        createdAt: at(10),
        expiresAt: at(40),
        decidedBy: null,
        decidedAt: null,
        reason: null,
      }
      await s.commitAction({
        action: {
          id: 'act_c',
          caseId: 'cs_c',
          agentId: 'acme',
          requesterKind: 'delegate',
          grantId: 'g1',
          tool: 'refund',
          params: { amount: 20 },
          paramsDigest: 'p',
          outcome: 'confirm',
          state: 'awaiting_confirmation',
          decisionId: 'dec_c',
          createdAt: at(10),
          updatedAt: at(10),
          resultStatus: null,
          resultDigest: null,
          error: null,
        },
        decision: { id: 'dec_c', caseId: 'cs_c', kind: 'action', outcome: 'confirm', at: at(10), data: {} },
        expectedEpoch: 0,
        confirmation,
        audit: [audit('confirmation.requested')],
      })
      expect(await s.getConfirmation('cnf_1')).toEqual(confirmation)
      expect(await s.getAction('act_c')).toMatchObject({ requesterKind: 'delegate', grantId: 'g1' })
      expect(await s.toolUsage('acme', at(0), at(60))).toEqual({})
      expect((await s.listConfirmations({ state: 'pending', customerId: 'cu_1', limit: 10 })).map((x) => x.id)).toEqual(
        ['cnf_1'],
      )
      expect(await s.getTimer(CONFIRMATION_EXPIRY_TIMER, 'cnf_1')).toMatchObject({ dueAt: at(40), state: 'pending' })
      const settled = await s.settleConfirmation('cnf_1', 'confirmed', 'key_1', at(20), 'ok', 'authorized', [
        audit('confirmation.decided'),
      ])
      expect(settled).toMatchObject({ state: 'confirmed', decidedBy: 'key_1', decidedAt: at(20) })
      expect((await s.getAction('act_c'))?.state).toBe('authorized')
      await expect(
        s.settleConfirmation('cnf_1', 'declined', 'key_1', at(21), 'no', 'rejected', [audit('confirmation.decided')]),
      ).rejects.toSatisfy((e) => isBatonError(e, 'CONFIRMATION_NOT_PENDING'))
      expect((await s.getAction('act_c'))?.state).toBe('authorized')
      await expect(s.settleConfirmation('nope', 'expired', null, at(22), null, 'rejected', [])).rejects.toSatisfy((e) =>
        isBatonError(e, 'CONFIRMATION_NOT_FOUND'),
      )
    })
  })
}

runDelegationContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'baton-deleg-'))
  const store = createSqliteStore(join(dir, 'baton.db'))
  await store.migrate()
  return {
    store,
    cleanup: async () => {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
})

describe.skipIf(!pgAvailable)('postgres', () => {
  runDelegationContract('postgres', async () => {
    const db = await freshDatabase()
    const store = createPostgresStore(db.url)
    await store.migrate()
    return {
      store,
      cleanup: async () => {
        await store.close()
        await db.drop()
      },
    }
  })
})

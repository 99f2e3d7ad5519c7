import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { freshDatabase, pgAvailable } from '../../test/support/pg.js'
import type { ApprovalRecord } from '../approvals/approval.js'
import type { CaseRecord } from '../cases/records.js'
import { isBatonError } from '../errors.js'
import type { AgentRecord } from '../identity/principals.js'
import type { ActionRecord } from '../tools/action.js'
import type { Store } from './ports.js'
import { createPostgresStore } from './postgres/database.js'
import { createSqliteStore } from './sqlite/database.js'

const at = (s: number) => new Date(Date.UTC(2026, 10, 1, 12, 0, s)).toISOString()
const audit = (type: string, caseId?: string) => ({
  type,
  at: at(0),
  ...(caseId === undefined ? {} : { caseId }),
  actor: { kind: 'admin', id: 'test' },
  data: {},
})

const agent = (id: string, over: Partial<AgentRecord> = {}): AgentRecord => ({
  id,
  owner: 'owner@example.com',
  purpose: 'tests',
  model: 'm',
  tools: ['reply', 'refund'],
  closure: ['resolved'],
  state: 'active',
  createdAt: at(0),
  updatedAt: at(0),
  reviewedAt: null,
  reviewedBy: null,
  ...over,
})

const caseRecord = (id: string, over: Partial<CaseRecord> = {}): CaseRecord => ({
  id,
  customerId: 'cu_1',
  channel: 'chat',
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
  ...over,
})

const action = (id: string, caseId: string, over: Partial<ActionRecord> = {}): ActionRecord => ({
  id,
  caseId,
  agentId: 'bot',
  tool: 'refund',
  params: { amount: 10 },
  paramsDigest: 'd',
  outcome: 'allow',
  state: 'authorized',
  decisionId: `dec_${id}`,
  createdAt: at(1),
  updatedAt: at(1),
  resultStatus: null,
  resultDigest: null,
  error: null,
  requesterKind: 'agent',
  grantId: null,
  ...over,
})

const decision = (id: string, caseId: string) => ({
  id,
  caseId,
  kind: 'action' as const,
  outcome: 'allow',
  at: at(1),
  data: {},
})

function runAuthorityContract(engine: string, open: () => Promise<{ store: Store; cleanup: () => Promise<void> }>) {
  describe(`authority store contract: ${engine}`, () => {
    let s: Store
    let cleanup: () => Promise<void>
    beforeEach(async () => {
      const o = await open()
      s = o.store
      cleanup = o.cleanup
    })
    afterEach(async () => {
      await cleanup()
    })

    async function openCase(id: string, handler: CaseRecord['handler'] = { kind: 'agent', agentId: 'bot' }) {
      await s.commitCase({
        case: caseRecord(id, { handler }),
        expectedVersion: null,
        events: [],
        decisions: [],
        audit: [audit('case.opened', id)],
      })
    }

    it('registers principals once, with their audit entries', async () => {
      expect(await s.registerAgent(agent('bot'), audit('agent.registered'))).toBe(true)
      expect(await s.registerAgent(agent('bot', { owner: 'x' }), audit('agent.registered'))).toBe(false)
      expect(await s.getAgent('bot')).toEqual(agent('bot'))
      const op = {
        id: 'ada',
        name: 'Ada',
        roles: ['operator', 'billing'],
        skills: ['billing'],
        languages: ['en'],
        capacity: 3,
        createdAt: at(0),
        updatedAt: at(0),
      }
      expect(await s.registerOperator(op, audit('operator.registered'))).toBe(true)
      expect(await s.registerOperator(op, audit('operator.registered'))).toBe(false)
      expect(await s.getOperator('ada')).toEqual(op)
      expect((await s.listOperators()).map((o) => o.id)).toEqual(['ada'])
      expect(await s.auditSize()).toBe(2)
    })

    it('bumps the case epoch on a handler change, not on a commit that keeps handler, risk and state', async () => {
      await openCase('cs_1')
      expect((await s.getCase('cs_1'))?.authorityEpoch).toBe(0)
      await s.commitCase({
        case: caseRecord('cs_1', { version: 2, messages: 2 }),
        expectedVersion: 1,
        events: [],
        decisions: [],
        audit: [audit('message.received', 'cs_1')],
      })
      expect((await s.getCase('cs_1'))?.authorityEpoch).toBe(0)
      await s.commitCase({
        case: caseRecord('cs_1', { version: 3, risk: { fraud: true } }),
        expectedVersion: 2,
        events: [],
        decisions: [],
        audit: [audit('message.received', 'cs_1')],
      })
      expect((await s.getCase('cs_1'))?.authorityEpoch).toBe(1)
      await s.commitCase({
        case: caseRecord('cs_1', { version: 4, risk: { fraud: true }, handler: { kind: 'operator', queue: 'q' } }),
        expectedVersion: 3,
        events: [],
        decisions: [],
        audit: [audit('case.handed_off', 'cs_1')],
      })
      expect((await s.getCase('cs_1'))?.authorityEpoch).toBe(2)
    })

    it('suspending an agent bumps the epoch of the open cases it holds; retiring revokes its keys; retired is final', async () => {
      await s.registerAgent(agent('bot'), audit('agent.registered'))
      await openCase('cs_a')
      await openCase('cs_h', { kind: 'hybrid', queue: 'billing', agentId: 'bot' })
      await openCase('cs_o', { kind: 'operator', queue: 'general' })
      await openCase('cs_x', { kind: 'agent', agentId: 'other' })
      await s.addAgentCredential(
        {
          id: 'acr_1',
          agentId: 'bot',
          kind: 'secret',
          publicJwk: null,
          secretHash: 'ab',
          createdAt: at(0),
          revokedAt: null,
        },
        audit('agent.credential_added'),
      )
      const r = await s.transitionAgent('bot', ['active'], 'suspended', at(2), (cases) =>
        cases.map((c) => audit('credential.revoked', c)),
      )
      expect([...r.revokedCases].sort()).toEqual(['cs_a', 'cs_h'])
      expect((await s.getCase('cs_a'))?.authorityEpoch).toBe(1)
      expect((await s.getCase('cs_h'))?.authorityEpoch).toBe(1)
      expect((await s.getCase('cs_o'))?.authorityEpoch).toBe(0)
      expect((await s.getCase('cs_x'))?.authorityEpoch).toBe(0)
      const size = await s.auditSize()
      await expect(
        s.transitionAgent('bot', ['active'], 'suspended', at(3), () => [audit('agent.suspended')]),
      ).rejects.toSatisfy((e) => isBatonError(e, 'AGENT_STATE_INVALID'))
      expect(await s.auditSize()).toBe(size)
      expect(await s.listAgentCredentials('bot')).toHaveLength(1)
      await s.transitionAgent('bot', ['active', 'suspended', 'provisioned'], 'retired', at(4), () => [
        audit('agent.retired'),
      ])
      expect(await s.listAgentCredentials('bot')).toHaveLength(0)
      expect((await s.getAgent('bot'))?.state).toBe('retired')
      await expect(s.transitionAgent('nobody', ['active'], 'retired', at(5), () => [])).rejects.toSatisfy((e) =>
        isBatonError(e, 'AGENT_NOT_FOUND'),
      )
    })

    it('tells the states of agents and the open cases one holds; stores the follow-up of a transition with it', async () => {
      await s.registerAgent(agent('bot'), audit('agent.registered'))
      await s.registerAgent(agent('new', { state: 'provisioned' }), audit('agent.registered'))
      expect(await s.agentStates()).toEqual({ bot: 'active', new: 'provisioned' })
      await openCase('cs_a')
      await openCase('cs_h', { kind: 'hybrid', queue: 'billing', agentId: 'bot' })
      await openCase('cs_o', { kind: 'operator', queue: 'general' })
      expect((await s.listCasesHeldBy('bot')).sort()).toEqual(['cs_a', 'cs_h'])
      const followUp = { kind: 'agent_reroute', key: `bot@${at(2)}`, dueAt: at(2), payload: { agentId: 'bot' } }
      await s.transitionAgent('bot', ['active'], 'suspended', at(2), () => [audit('agent.suspended')], followUp)
      expect(await s.getTimer('agent_reroute', `bot@${at(2)}`)).toMatchObject({
        state: 'pending',
        dueAt: at(2),
        payload: { agentId: 'bot' },
      })
      // refused transitions store no follow-up
      await expect(
        s.transitionAgent('bot', ['active'], 'suspended', at(3), () => [], { ...followUp, key: 'bot@later' }),
      ).rejects.toSatisfy((e) => isBatonError(e, 'AGENT_STATE_INVALID'))
      expect(await s.getTimer('agent_reroute', 'bot@later')).toBeUndefined()
      expect(await s.agentStates()).toEqual({ bot: 'suspended', new: 'provisioned' })
    })

    it('refuses, with CONFLICT and nothing written, a commit that hands a case to an agent that is not active', async () => {
      await s.registerAgent(agent('bot'), audit('agent.registered'))
      await s.registerAgent(agent('off', { state: 'suspended' }), audit('agent.registered'))
      const size = await s.auditSize()
      const opening = (id: string, agentId: string) => ({
        case: caseRecord(id, { handler: { kind: 'agent' as const, agentId } }),
        expectedVersion: null,
        events: [],
        decisions: [],
        audit: [audit('case.opened', id)],
        customerTier: '',
        requireActiveAgent: agentId,
      })
      // a new case (on PostgreSQL the one-statement open), to an agent that is suspended or not registered
      for (const agentId of ['off', 'ghost']) {
        await expect(s.commitCase(opening(`cs_${agentId}`, agentId))).rejects.toSatisfy((e) =>
          isBatonError(e, 'CONFLICT'),
        )
        expect(await s.getCase(`cs_${agentId}`)).toBeUndefined()
      }
      expect(await s.auditSize()).toBe(size)
      await s.commitCase(opening('cs_ok', 'bot'))
      expect((await s.getCase('cs_ok'))?.handler).toEqual({ kind: 'agent', agentId: 'bot' })
      // a case moving to a hybrid draft by a suspended agent
      const moved = {
        case: caseRecord('cs_ok', { version: 2, handler: { kind: 'hybrid', queue: 'billing', agentId: 'off' } }),
        expectedVersion: 1,
        events: [],
        decisions: [],
        audit: [audit('case.handed_off', 'cs_ok')],
        requireActiveAgent: 'off',
      }
      await expect(s.commitCase(moved)).rejects.toSatisfy((e) => isBatonError(e, 'CONFLICT'))
      expect((await s.getCase('cs_ok'))?.version).toBe(1)
      expect(await s.auditSize()).toBe(size + 1)
    })

    it('opens concurrent cases to several agents together, and one to an agent that is not active fails alone', async () => {
      await s.registerAgent(agent('bot'), audit('agent.registered'))
      await s.registerAgent(agent('bot2'), audit('agent.registered'))
      await s.registerAgent(agent('off', { state: 'suspended' }), audit('agent.registered'))
      const size = await s.auditSize()
      const opening = (id: string, agentId: string) => ({
        case: caseRecord(id, { handler: { kind: 'agent' as const, agentId } }),
        expectedVersion: null,
        events: [],
        decisions: [],
        audit: [audit('case.opened', id)],
        customerTier: '',
        requireActiveAgent: agentId,
      })
      // submitted in one tick: on PostgreSQL one grouped statement, refused as a whole, then each open alone
      const results = await Promise.allSettled([
        s.commitCase(opening('cs_g1', 'bot')),
        s.commitCase(opening('cs_g2', 'off')),
        s.commitCase(opening('cs_g3', 'bot2')),
        s.commitCase(opening('cs_g4', 'ghost')),
        s.commitCase(opening('cs_g5', 'bot')),
      ])
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled'])
      for (const i of [1, 3]) expect(results[i]).toMatchObject({ reason: { code: 'CONFLICT' } })
      for (const id of ['cs_g2', 'cs_g4']) expect(await s.getCase(id)).toBeUndefined()
      for (const id of ['cs_g1', 'cs_g3', 'cs_g5']) expect((await s.getCase(id))?.version).toBe(1)
      expect(await s.auditSize()).toBe(size + 3)
      // all good: one group, all written
      await Promise.all(['cs_g6', 'cs_g7'].map((id, i) => s.commitCase(opening(id, i === 0 ? 'bot' : 'bot2'))))
      expect(await s.auditSize()).toBe(size + 5)
    })

    it('commits an action only at the epoch it was decided at, and executes it once', async () => {
      await openCase('cs_1')
      await s.commitAction({
        action: action('act_1', 'cs_1'),
        decision: decision('dec_act_1', 'cs_1'),
        expectedEpoch: 0,
        issued: [
          {
            jti: 'j1',
            agentId: 'bot',
            caseId: 'cs_1',
            kind: 'call',
            tools: ['refund'],
            epoch: 0,
            issuedAt: at(1),
            expiresAt: at(59),
          },
        ],
        audit: [audit('action.decided', 'cs_1')],
      })
      expect(await s.getAction('act_1')).toEqual(action('act_1', 'cs_1'))
      expect((await s.getDecision('dec_act_1'))?.kind).toBe('action')
      expect(await s.listOutstandingCredentials('bot', at(2))).toHaveLength(1)
      expect(await s.listOutstandingCredentials('bot', at(59))).toHaveLength(0)
      const claims = await Promise.all(
        [1, 2, 3].map(() => s.moveAction('act_1', ['authorized'], 'executing', at(2), {}, [audit('x', 'cs_1')])),
      )
      expect(claims.filter(Boolean)).toHaveLength(1)
      expect(
        await s.moveAction('act_1', ['executing'], 'executed', at(3), { resultStatus: 200, resultDigest: 'ff' }, [
          audit('action.executed', 'cs_1'),
        ]),
      ).toBe(true)
      expect(await s.getAction('act_1')).toMatchObject({ state: 'executed', resultStatus: 200, resultDigest: 'ff' })
      expect(await s.toolUsage('bot', at(0), at(10))).toEqual({ refund: 1 })

      // The handler changed since the credential's epoch: nothing of the action lands.
      await s.commitCase({
        case: caseRecord('cs_1', { version: 2, handler: { kind: 'operator', queue: 'q' } }),
        expectedVersion: 1,
        events: [],
        decisions: [],
        audit: [audit('case.handed_off', 'cs_1')],
      })
      const before = await s.auditSize()
      await expect(
        s.commitAction({
          action: action('act_2', 'cs_1'),
          decision: decision('dec_act_2', 'cs_1'),
          expectedEpoch: 0,
          audit: [audit('action.decided', 'cs_1')],
        }),
      ).rejects.toSatisfy((e) => isBatonError(e, 'CREDENTIAL_REVOKED'))
      expect(await s.getAction('act_2')).toBeUndefined()
      expect(await s.getDecision('dec_act_2')).toBeUndefined()
      expect(await s.auditSize()).toBe(before)
      expect(await s.listOutstandingCredentials('bot', at(2))).toHaveLength(0)
    })

    it('an escalating action hands the case over in the same transaction', async () => {
      await openCase('cs_1')
      const c = (await s.getCase('cs_1'))!
      await s.commitAction({
        action: action('act_1', 'cs_1', { outcome: 'escalate', state: 'escalated' }),
        decision: decision('dec_1', 'cs_1'),
        expectedEpoch: 0,
        caseChange: {
          case: { ...c, handler: { kind: 'operator', queue: 'security' }, version: 2, lastEvent: 1, handoffs: 1 },
          expectedVersion: 1,
          events: [{ caseId: 'cs_1', seq: 1, type: 'case.handed_off', data: {}, at: at(1) }],
        },
        audit: [audit('action.decided', 'cs_1'), audit('case.handed_off', 'cs_1')],
      })
      const after = await s.getCase('cs_1')
      expect(after).toMatchObject({ handler: { kind: 'operator', queue: 'security' }, version: 2, authorityEpoch: 1 })
      expect((await s.listCaseEvents('cs_1')).map((e) => e.type)).toEqual(['case.handed_off'])
    })

    it('settles an approval once', async () => {
      await openCase('cs_1')
      const approval: ApprovalRecord = {
        id: 'apr_1',
        caseId: 'cs_1',
        actionId: 'act_1',
        tool: 'refund',
        params: { amount: 400 },
        digest: 'dd',
        requester: 'bot',
        approverRole: 'billing',
        queue: 'billing',
        rule: 'medium-refund',
        state: 'pending',
        caseEpoch: 0,
        createdAt: at(1),
        expiresAt: at(50),
        decidedBy: null,
        decidedAt: null,
        reason: null,
      }
      await s.commitAction({
        action: action('act_1', 'cs_1', { outcome: 'approve', state: 'awaiting_approval' }),
        decision: decision('dec_1', 'cs_1'),
        expectedEpoch: 0,
        approval,
        audit: [audit('approval.requested', 'cs_1')],
      })
      expect(await s.getApproval('apr_1')).toEqual(approval)
      expect((await s.listApprovals({ state: 'pending', limit: 10 })).map((a) => a.id)).toEqual(['apr_1'])
      const results = await Promise.allSettled(
        ['ada', 'bob'].map((by) =>
          s.settleApproval('apr_1', 'approved', by, at(2), 'ok', 'authorized', [audit('approval.decided', 'cs_1')]),
        ),
      )
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
      const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult
      expect(isBatonError(rejected.reason, 'APPROVAL_NOT_PENDING')).toBe(true)
      expect((await s.getApproval('apr_1'))?.state).toBe('approved')
      expect((await s.getAction('act_1'))?.state).toBe('authorized')
      expect(await s.listApprovals({ state: 'pending', limit: 10 })).toEqual([])
      await expect(s.settleApproval('nope', 'denied', 'ada', at(3), 'x', 'rejected', [])).rejects.toSatisfy((e) =>
        isBatonError(e, 'APPROVAL_NOT_FOUND'),
      )
    })
  })
}

runAuthorityContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'baton-auth-'))
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
  runAuthorityContract('postgres', async () => {
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

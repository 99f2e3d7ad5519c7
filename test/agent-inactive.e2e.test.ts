import { execFile } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { knownNames } from '../src/app.js'
import type { Actor } from '../src/cases/intake.js'
import { openCase, receiveMessage } from '../src/cases/intake.js'
import type { AgentStates } from '../src/identity/agent-states.js'
import { compilePolicy } from '../src/policy/compile.js'
import { decideRoute } from '../src/policy/evaluate.js'
import type { Facts } from '../src/policy/types.js'
import type { Store } from '../src/store/ports.js'
import { bearer, SHOP, startTestApp, type TestApp } from './support/app.js'
import { pgAvailable } from './support/pg.js'

const ROOT = resolve(import.meta.dirname, '..')
const AGENT = 'shop-assistant'
const ORDER = 'Hi, where is my order #12345? It was supposed to arrive yesterday.'
const ACCOUNT = 'I want to change the email on my account to me@new.example'
const HELPDESK: Actor = { kind: 'service', id: 'helpdesk', roles: [] }

interface AuditEntry {
  type: string
  caseId?: string
  data: Record<string, unknown>
}

/** `baton agents …` in a child process, against the test app's store. */
function batonAgents(t: TestApp, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'agents', ...args],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          BATON_DATA_DIR: t.dataDir,
          BATON_DATABASE_URL: t.databaseUrl ?? '',
          BATON_WORKSPACE: SHOP,
          BATON_LOG_LEVEL: 'silent',
        },
        encoding: 'utf8',
        timeout: 60_000,
      },
      (error, stdout, stderr) => done({ code: error ? Number(error.code ?? 1) : 0, out: stdout, err: stderr }),
    )
  })
}

/** Agent states read as they were before the agent was suspended (a node's cache, `times` reads), then the store's. */
function staleAgentStates(store: Store, times: number): AgentStates {
  let left = times
  return {
    async read() {
      const states = await store.agentStates()
      return left-- > 0 ? { ...states, [AGENT]: 'active' } : states
    },
    invalidate: () => undefined,
  }
}

/** Issue 17, defect 4: routing never chooses an inactive agent, and the cases one held are decided again. */
for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`routing around an inactive agent on ${engine}`, () => {
    let t: TestApp
    beforeAll(async () => {
      t = await startTestApp({ engine })
    })
    afterAll(async () => {
      await t?.close()
    })

    const inject = (method: 'GET' | 'POST', url: string, key: string, payload?: object) =>
      t.app.server.inject({ method, url, headers: bearer(key), ...(payload === undefined ? {} : { payload }) })
    let n = 0
    const open = async (text: string) => {
      const r = await inject('POST', '/v1/cases', t.keys.service, {
        customer: `cu_${engine}_${++n}`,
        channel: 'chat',
        message: { text },
      })
      expect(r.statusCode).toBe(201)
      return r.json() as { id: string; handler: Record<string, unknown>; decision: Record<string, unknown> }
    }
    const lifecycle = async (verb: 'suspend' | 'activate' | 'retire', reason: string) => {
      const r = await inject('POST', `/v1/agents/${AGENT}/${verb}`, t.keys.admin, { reason })
      expect(r.statusCode).toBe(200)
      return r.json() as {
        agent: { state: string; updatedAt: string }
        revokedCases: string[]
        rerouted: { caseId: string; handler: Record<string, unknown>; decisionId: string }[]
      }
    }
    const queued = async (queue: string) => {
      const r = await inject('GET', `/v1/queues/${queue}/cases?limit=500`, t.keys.operator)
      expect(r.statusCode).toBe(200)
      return (r.json() as { items: { caseId: string; reason: Record<string, unknown> }[] }).items
    }
    const auditSince = async (from: number): Promise<AuditEntry[]> => {
      const size = await t.app.store.auditSize()
      return (await t.app.store.readAudit(from, size)).map((e) => JSON.parse(e.entry) as AuditEntry)
    }
    /** The stored decision, decided again from its stored facts and policy version (invariant 2). */
    const expectReplay = async (decisionId: string) => {
      const d = (await inject('GET', `/v1/decisions/${decisionId}`, t.keys.admin)).json()
      const version = (await t.app.store.listPolicyVersions()).find((v) => v.hash === d.policy.hash)
      expect(version).toBeDefined()
      const policy = compilePolicy(version!.source, version!.file, knownNames(t.app.services.workspace))
      const replay = decideRoute(policy, d.facts as Facts)
      expect({ outcome: replay.outcome, rules: replay.rules, handler: replay.handler }).toEqual({
        outcome: d.outcome,
        rules: d.rules,
        handler: d.handler,
      })
      return d
    }
    const heldByAgent = () => t.app.store.listCasesHeldBy(AGENT)

    it('suspending the agent decides its cases again, audited, into the fallback queue where humans see them', async () => {
      const alone = await open(ORDER)
      expect(alone.handler).toEqual({ kind: 'agent', agentId: AGENT })
      const drafted = await open(ACCOUNT)
      expect(drafted.handler).toMatchObject({ kind: 'hybrid', queue: 'accounts', agentId: AGENT })
      const from = await t.app.store.auditSize()

      const s = await lifecycle('suspend', 'incident 17')
      expect(s.agent.state).toBe('suspended')
      expect(s.revokedCases).toEqual(expect.arrayContaining([alone.id, drafted.id]))
      const rerouted = new Map(s.rerouted.map((r) => [r.caseId, r]))
      for (const id of [alone.id, drafted.id]) {
        expect(rerouted.get(id)?.handler).toEqual({ kind: 'operator', queue: 'general' })
      }
      expect(await heldByAgent()).toEqual([])

      const general = new Map((await queued('general')).map((i) => [i.caseId, i]))
      expect(general.get(alone.id)?.reason).toMatchObject({
        rules: ['order-status', 'agent-inactive'],
        trigger: 'agent_inactive',
        reason: `agent '${AGENT}' suspended: incident 17`,
      })
      expect(general.get(drafted.id)?.reason).toMatchObject({ rules: ['account-change-intent', 'agent-inactive'] })
      expect((await queued('accounts')).map((i) => i.caseId)).not.toContain(drafted.id)

      const got = (await inject('GET', `/v1/cases/${alone.id}`, t.keys.operator)).json()
      expect(got.handler).toEqual({ kind: 'operator', queue: 'general' })
      expect(got.handlers.at(-1)).toMatchObject({
        rules: ['order-status', 'agent-inactive'],
        trigger: 'agent_inactive',
      })

      const audit = await auditSince(from)
      const of = (type: string, caseId?: string) =>
        audit.filter((e) => e.type === type && (caseId === undefined || e.caseId === caseId))
      expect(of('agent.suspended')).toEqual([
        expect.objectContaining({ data: expect.objectContaining({ agentId: AGENT, reason: 'incident 17' }) }),
      ])
      for (const id of [alone.id, drafted.id]) {
        expect(of('credential.revoked', id)).toHaveLength(1)
        const [decided] = of('case.decided', id)
        expect(decided?.data).toMatchObject({
          trigger: 'agent_inactive',
          reason: `agent '${AGENT}' suspended: incident 17`,
          handler: { kind: 'operator', queue: 'general' },
        })
        expect((decided?.data.rules as string[] | undefined)?.at(-1)).toBe('agent-inactive')
        expect(of('case.handed_off', id)).toEqual([
          expect.objectContaining({
            data: expect.objectContaining({ to: { kind: 'operator', queue: 'general' } }),
          }),
        ])
        const d = await expectReplay(rerouted.get(id)!.decisionId)
        expect(d.facts.agents[AGENT]).toEqual({ state: 'suspended' })
      }
      // the durable follow-up stored with the suspension was done by the request itself, and cancelled
      const timer = await t.app.store.getTimer('agent_reroute', `${AGENT}@${s.agent.updatedAt}`)
      expect(timer?.state).toBe('cancelled')
    })

    it('while it is suspended, a new case goes to the fallback queue with the reason, and replays the same', async () => {
      const c = await open(ORDER)
      expect(c.handler).toEqual({ kind: 'operator', queue: 'general' })
      expect(c.decision).toMatchObject({ rules: ['order-status', 'agent-inactive'], trigger: 'agent_inactive' })
      const d = await expectReplay(c.decision.id as string)
      expect(d.facts.agents[AGENT]).toEqual({ state: 'suspended' })
      expect(d.explanation[1]).toMatchObject({
        id: 'agent-inactive',
        reads: { [`agents.${AGENT}.state`]: 'suspended' },
      })
      expect((await queued('general')).map((i) => i.caseId)).toContain(c.id)
      // a later message is decided the same way
      const m = await inject('POST', `/v1/cases/${c.id}/messages`, t.keys.service, { message: { text: ORDER } })
      expect(m.json().decision.rules).toEqual(['order-status', 'agent-inactive'])
      expect(m.json().handler).toEqual({ kind: 'operator', queue: 'general' })
    })

    it('refuses to hand a case back to the suspended agent', async () => {
      const c = await open(ORDER)
      const op = (await t.app.services.keys.create('operator', 'linus', HELPDESK_ADMIN, 'linus')).key
      const back = await inject('POST', `/v1/cases/${c.id}/handback`, op, { agentId: AGENT, reason: 'easy one' })
      expect(back.statusCode).toBe(409)
      expect(back.json().code).toBe('HANDBACK_REFUSED')
      expect(back.json().detail).toContain('agent-inactive')
    })

    it('a decision made while the agent was active but committed after its suspension is made again (commit guard)', async () => {
      const deps = { ...t.app.services.intake, agentStates: staleAgentStates(t.app.store, 1) }
      const opened = await openCase(deps, HELPDESK, { customerId: `cu_${engine}_stale`, channel: 'chat', text: ORDER })
      expect(opened.handler).toEqual({ kind: 'operator', queue: 'general' })
      expect(opened.decision.rules).toEqual(['order-status', 'agent-inactive'])
      const again = await receiveMessage(
        { ...t.app.services.intake, agentStates: staleAgentStates(t.app.store, 1) },
        HELPDESK,
        opened.id,
        { text: ORDER },
      )
      expect(again.decision.rules).toEqual(['order-status', 'agent-inactive'])
      expect(await heldByAgent()).toEqual([])
    })

    it('under concurrent intake, no case is left with the agent once it is suspended', async () => {
      await lifecycle('activate', 'incident closed')
      const before = (await open(ORDER)).id
      const opens = Array.from({ length: 24 }, () => open(ORDER))
      const suspended = lifecycle('suspend', 'incident 18')
      const more = Array.from({ length: 24 }, () => open(ORDER))
      const [all, s] = await Promise.all([Promise.all([...opens, ...more]), suspended])
      expect(all).toHaveLength(48)
      expect(s.rerouted.map((r) => r.caseId)).toContain(before)
      // every case decided for the agent before the suspension was decided again by it; none after reached it
      expect(await heldByAgent()).toEqual([])
      for (const c of all) {
        const got = await t.app.store.getCase(c.id)
        expect(got?.handler).toEqual({ kind: 'operator', queue: 'general' })
      }
    })

    it('suspended from the CLI, its cases are decided again by the durable follow-up on the next timer poll', async () => {
      await lifecycle('activate', 'incident 18 closed')
      const c = await open(ORDER)
      expect(c.handler.kind).toBe('agent')
      const cli = await batonAgents(t, 'suspend', AGENT, '--reason', 'from the terminal')
      expect(cli.err).toBe('')
      expect(cli.code).toBe(0)
      expect(cli.out).toMatch(/suspended; credentials revoked on 1 case\(s\), which Baton decides again/)
      await t.app.services.work.timers.pollOnce()
      expect(await heldByAgent()).toEqual([])
      const got = (await inject('GET', `/v1/cases/${c.id}`, t.keys.operator)).json()
      expect(got.handler).toEqual({ kind: 'operator', queue: 'general' })
      expect(got.decisions.at(-1)).toMatchObject({ rules: ['order-status', 'agent-inactive'] })
      expect((await queued('general')).map((i) => i.caseId)).toContain(c.id)
    }, 60_000)

    it('reactivated, it gets new cases again; retired, never again', async () => {
      await lifecycle('activate', 'back')
      expect((await open(ORDER)).handler).toEqual({ kind: 'agent', agentId: AGENT })
      const r = await lifecycle('retire', 'replaced')
      expect(r.rerouted.length).toBeGreaterThanOrEqual(1)
      const c = await open(ORDER)
      expect(c.handler).toEqual({ kind: 'operator', queue: 'general' })
      expect((c.decision.explanation as { reason: string }[])[1]?.reason).toContain('is retired')
      expect(await heldByAgent()).toEqual([])
    })
  })
}

const HELPDESK_ADMIN: Actor = { kind: 'admin', id: 'test', roles: ['admin'] }

describe('an agent provisioned and never activated', () => {
  let t: TestApp
  let dir: string
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'baton-provisioned-'))
    cpSync(SHOP, dir, { recursive: true })
    const agents = join(dir, 'agents.yaml')
    writeFileSync(agents, readFileSync(agents, 'utf8').replace('state: active', 'state: provisioned'))
    t = await startTestApp({ workspace: dir })
  })
  afterAll(async () => {
    await t?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('gets no case: the route goes to the fallback queue with the reason', async () => {
    const r = await t.app.server.inject({
      method: 'POST',
      url: '/v1/cases',
      headers: bearer(t.keys.service),
      payload: { customer: 'cu_p', channel: 'chat', message: { text: ORDER } },
    })
    expect(r.statusCode).toBe(201)
    expect(r.json().handler).toEqual({ kind: 'operator', queue: 'general' })
    expect(r.json().decision.explanation[1].reason).toContain('is provisioned')
  })
})

import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type App, createApp } from '../src/app.js'
import { configFrom } from '../src/config.js'
import { verify } from '../src/events/signature.js'
import { SHOP } from './support/app.js'
import { freshDatabase, pgAvailable } from './support/pg.js'

const ADMIN_ACTOR = { kind: 'admin' as const, id: 'test', roles: ['admin'] }

interface Harness {
  readonly app: App
  readonly admin: string
  readonly service: string
  /** Operator keys by operator id (operators.yaml). */
  readonly ops: Record<string, string>
  close(): Promise<void>
}

/** A Baton on a copy of the shop workspace whose billing queue has a 2 s SLA, with fast timer and webhook loops. */
async function start(engine: 'sqlite' | 'postgres'): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-queues-'))
  const workspace = join(dir, 'shop')
  cpSync(SHOP, workspace, { recursive: true })
  const queues = readFileSync(join(workspace, 'queues.yaml'), 'utf8')
  writeFileSync(join(workspace, 'queues.yaml'), queues.replace(/(id: billing[\s\S]*?sla: )15m/, '$12s'))
  const pgdb = engine === 'postgres' ? await freshDatabase() : undefined
  const config = configFrom(
    {},
    {
      dataDir: join(dir, 'data'),
      workspace,
      databaseUrl: pgdb?.url,
      watchPolicy: false,
      logLevel: 'silent',
      // the test's webhook receivers listen on 127.0.0.1, which Baton refuses by default
      webhookAllowPrivate: true,
    },
  )
  const app = await createApp(config, {
    logger: pino({ level: 'silent' }),
    work: { timerIntervalMs: 100, webhookIntervalMs: 50, streamPollMs: 50, webhookBaseBackoffMs: 50 },
  })
  const admin = app.generatedAdminKey
  if (admin === undefined) throw new Error('expected a generated admin key')
  const service = (await app.services.keys.create('service', 'helpdesk', ADMIN_ACTOR)).key
  const ops: Record<string, string> = {}
  for (const o of app.services.workspace.operators) {
    ops[o.id] = (await app.services.keys.create('operator', o.name, ADMIN_ACTOR, o.id)).key
  }
  return {
    app,
    admin,
    service,
    ops,
    async close() {
      await app.close()
      await pgdb?.drop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

const auth = (key: string) => ({ authorization: `Bearer ${key}` })

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`queues, escalation and events on ${engine}`, () => {
    let h: Harness
    beforeAll(async () => {
      h = await start(engine)
    })
    afterAll(async () => {
      await h?.close()
    })

    const inject = (method: 'GET' | 'POST' | 'DELETE', url: string, key: string, payload?: object) =>
      h.app.server.inject({ method, url, headers: auth(key), ...(payload === undefined ? {} : { payload }) })
    const open = async (text: string, signals?: Record<string, unknown>) => {
      const r = await inject('POST', '/v1/cases', h.service, {
        customer: `cu_${Math.random().toString(36).slice(2)}`,
        channel: 'chat',
        message: { text },
        ...(signals === undefined ? {} : { signals }),
      })
      expect(r.statusCode).toBe(201)
      return r.json() as { id: string; handler: { kind: string; queue?: string }; decision: { trigger: string } }
    }
    const say = async (id: string, text: string, signals?: Record<string, unknown>) => {
      const r = await inject('POST', `/v1/cases/${id}/messages`, h.service, {
        message: { text },
        ...(signals === undefined ? {} : { signals }),
      })
      expect(r.statusCode).toBe(200)
      return r.json() as { handler: { kind: string; queue?: string }; handoff: boolean; decision: { trigger: string } }
    }
    const lastHandoff = async (id: string) => {
      const events = await h.app.store.listCaseEvents(id)
      return events.filter((e) => e.type === 'case.handed_off').at(-1)?.data as
        | { to: { kind: string }; cause: { trigger: string; reason?: string } }
        | undefined
    }
    const orderQuestion = 'Hi, where is my order #12345? It was supposed to arrive yesterday.'

    it('lists queues and a queue by priority, with SLA time left and what put each case there', async () => {
      const c = await open('I want to speak to a human about my delivery please')
      expect(c.handler).toMatchObject({ kind: 'operator', queue: 'general' })
      const qs = await inject('GET', '/v1/queues', h.ops.ada!)
      expect(qs.statusCode).toBe(200)
      const general = qs.json().items.find((q: { id: string }) => q.id === 'general')
      expect(general.waiting).toBeGreaterThanOrEqual(1)
      expect(general.operators.map((o: { id: string }) => o.id)).toContain('ada')
      const list = await inject('GET', '/v1/queues/general/cases', h.ops.ada!)
      expect(list.statusCode).toBe(200)
      const item = list.json().items.find((i: { caseId: string }) => i.caseId === c.id)
      expect(item.reason).toMatchObject({ trigger: 'human_request', rules: ['human-requested'] })
      expect(item.slaLeftS).toBeGreaterThan(0)
      expect(item.operatorId).toBeNull()
      expect((await inject('GET', '/v1/queues/nope/cases', h.ops.ada!)).json().code).toBe('QUEUE_NOT_FOUND')
    })

    it('gives a case to exactly one of 4 operators claiming it at once over HTTP, then auto-assigns the rest', async () => {
      const c = await open('Can I talk to a person about my order please')
      const claims = await Promise.all(
        ['ada', 'grace', 'linus', 'ruth'].flatMap((o) =>
          [0, 1, 2].map(() => inject('POST', `/v1/cases/${c.id}/claim`, h.ops[o]!)),
        ),
      )
      const won = claims.filter((r) => r.statusCode === 200)
      expect(won).toHaveLength(1)
      for (const r of claims.filter((x) => x.statusCode !== 200)) {
        expect(r.statusCode).toBe(409)
        expect(r.json().code).toBe('CASE_ALREADY_ASSIGNED')
      }
      const winner = won[0]!.json().operatorId
      const got = await inject('GET', `/v1/cases/${c.id}`, h.admin)
      expect(got.json().handler).toEqual({ kind: 'operator', queue: 'general', operatorId: winner })
      // An operator cannot claim as someone else; an admin must say for whom.
      const other = await open('speak to a human please, real person')
      expect(
        (await inject('POST', `/v1/cases/${other.id}/claim`, h.ops.ada!, { operatorId: 'grace' })).statusCode,
      ).toBe(403)
      expect((await inject('POST', `/v1/cases/${other.id}/claim`, h.admin, {})).statusCode).toBe(400)
      // Auto-assignment drains the queue within capacity, then answers 204.
      for (let i = 0; i < 3; i++) await open('I want a human agent for this')
      let assigned = 0
      for (;;) {
        const r = await inject('POST', '/v1/queues/general/assign-next', h.admin)
        if (r.statusCode === 204) break
        expect(r.statusCode).toBe(200)
        expect(r.json().operatorId).toMatch(/\w/)
        assigned++
      }
      expect(assigned).toBeGreaterThanOrEqual(4)
      // An operator pulling the next case gets it for themselves.
      const next = await open('I need a real person to look at this')
      const pulled = await inject('POST', '/v1/queues/general/assign-next', h.ops.linus!)
      expect(pulled.statusCode).toBe(200)
      expect(pulled.json()).toMatchObject({ caseId: next.id, operatorId: 'linus' })
      const loads = await h.app.store.operatorLoads()
      for (const o of h.app.services.workspace.operators) {
        expect(loads.find((l) => l.operatorId === o.id)?.active ?? 0).toBeLessThanOrEqual(o.capacity)
      }
    })

    it('requires a reason to take a case over or hand it back, and hands back only where the policy allows', async () => {
      const c = await open(orderQuestion)
      expect(c.handler.kind).toBe('agent')
      const noReason = await inject('POST', `/v1/cases/${c.id}/takeover`, h.ops.linus!, {})
      expect(noReason.statusCode).toBe(400)
      expect(noReason.json().errors).toContainEqual({ field: 'reason', message: 'is required' })
      const took = await inject('POST', `/v1/cases/${c.id}/takeover`, h.ops.linus!, {
        reason: 'Customer is a journalist; I handle it myself',
      })
      expect(took.statusCode).toBe(200)
      expect(took.json()).toMatchObject({
        trigger: 'manual',
        handler: { kind: 'operator', queue: 'general', operatorId: 'linus' },
      })
      expect(await lastHandoff(c.id)).toMatchObject({
        cause: { trigger: 'manual', reason: 'Customer is a journalist; I handle it myself' },
      })
      expect((await h.app.store.getWorkItem(c.id))?.operatorId).toBe('linus')

      const backNoReason = await inject('POST', `/v1/cases/${c.id}/handback`, h.ops.linus!, {
        agentId: 'shop-assistant',
      })
      expect(backNoReason.statusCode).toBe(400)
      const back = await inject('POST', `/v1/cases/${c.id}/handback`, h.ops.linus!, {
        agentId: 'shop-assistant',
        reason: 'Only a delivery question after all',
      })
      expect(back.statusCode).toBe(200)
      expect(back.json()).toMatchObject({ trigger: 'handback', handler: { kind: 'agent', agentId: 'shop-assistant' } })
      expect(await h.app.store.getWorkItem(c.id)).toBeUndefined()
      const got = (await inject('GET', `/v1/cases/${c.id}`, h.admin)).json()
      expect(got.handoffs).toBe(2)

      // A case the policy keeps with humans (a credential in it) is not handed back.
      const secret = await open('my key is AKIAZ7VRSQ5TK3PD2M4X please check my order')
      expect(secret.handler).toMatchObject({ kind: 'operator', queue: 'security' })
      const refused = await inject('POST', `/v1/cases/${secret.id}/handback`, h.ops.grace!, {
        agentId: 'shop-assistant',
        reason: 'Looks harmless',
      })
      expect(refused.statusCode).toBe(409)
      expect(refused.json().code).toBe('HANDBACK_REFUSED')
      const audit = await h.app.store.listCaseAudit(secret.id)
      expect(audit.map((e) => JSON.parse(e.entry).type)).toContain('case.handback_refused')
    })

    it('names the trigger of each escalation: low confidence, human request, risk rise, no progress', async () => {
      const a = await open(orderQuestion)
      const low = await say(a.id, 'Is it coming today?', { agent_confidence: 0.2 })
      expect(low).toMatchObject({ handoff: true, decision: { trigger: 'low_confidence' } })
      expect((await lastHandoff(a.id))?.cause.trigger).toBe('low_confidence')

      const b = await open(orderQuestion)
      const human = await say(b.id, 'This is taking too long, I want to speak to a human')
      expect(human.decision.trigger).toBe('human_request')
      expect((await lastHandoff(b.id))?.cause.trigger).toBe('human_request')

      const c = await open(orderQuestion)
      const fraud = await say(c.id, 'Wait, someone used my card for this order, I will file a chargeback')
      expect(fraud.handler).toMatchObject({ kind: 'operator', queue: 'security' })
      expect((await lastHandoff(c.id))?.cause.trigger).toBe('risk_rise')

      const d = await open(orderQuestion)
      let r = await say(d.id, 'Where is my order now?')
      for (let i = 0; i < 3; i++) r = await say(d.id, 'Where is my order now?')
      expect(r.handler.kind).toBe('agent')
      r = await say(d.id, 'Where is my order now?')
      expect(r).toMatchObject({ handoff: true, handler: { kind: 'operator', queue: 'general' } })
      expect((await lastHandoff(d.id))?.cause.trigger).toBe('no_progress')
    })

    it('fires the SLA timer of a waiting case once: breach audited, and the policy escalates it (trigger sla_breach)', async () => {
      const c = await open('I was charged twice for my order, I want a refund')
      expect(c.handler).toMatchObject({ kind: 'hybrid', queue: 'billing' })
      let handoff: Awaited<ReturnType<typeof lastHandoff>>
      for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
        handoff = await lastHandoff(c.id)
        if (handoff?.cause.trigger === 'sla_breach') break
        await new Promise((r) => setTimeout(r, 100))
      }
      expect(handoff).toMatchObject({ to: { kind: 'operator', queue: 'general' }, cause: { trigger: 'sla_breach' } })
      const types = (await h.app.store.listCaseAudit(c.id)).map((e) => JSON.parse(e.entry).type)
      expect(types.filter((t) => t === 'case.sla_breached')).toHaveLength(1)
      expect((await h.app.store.getWorkItem(c.id))?.queue).toBe('general')
    }, 30_000)

    it('streams a case.escalated event live over SSE, and resumes after Last-Event-ID', async () => {
      const address = await h.app.server.listen({ port: 0, host: '127.0.0.1' })
      const c = await open(orderQuestion)
      const ctl = new AbortController()
      const res = await fetch(`${address}/v1/events?types=case.escalated`, {
        headers: auth(h.ops.ada!),
        signal: ctl.signal,
      })
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toMatch(/text\/event-stream/)
      await say(c.id, 'I want to speak to a human now')
      const reader = res.body!.getReader()
      let text = ''
      const deadline = Date.now() + 10_000
      while (!text.includes(`"subject":"${c.id}"`) && Date.now() < deadline) {
        const { value, done } = await reader.read()
        if (done) break
        text += Buffer.from(value).toString()
      }
      ctl.abort()
      const block = text.split('\n\n').find((b) => b.includes(`"subject":"${c.id}"`))
      expect(block).toBeDefined()
      const id = /^id: (\d+)$/m.exec(block!)?.[1]
      expect(/^event: dev\.baton\.case\.escalated$/m.test(block!)).toBe(true)
      const event = JSON.parse(/^data: (.*)$/m.exec(block!)![1]!)
      expect(event).toMatchObject({ specversion: '1.0', type: 'dev.baton.case.escalated', subject: c.id, id })
      expect(event.data.cause.trigger).toBe('human_request')

      // Reconnecting with Last-Event-ID one before replays it.
      const ctl2 = new AbortController()
      const again = await fetch(`${address}/v1/events?types=case.escalated`, {
        headers: { ...auth(h.admin), 'last-event-id': String(Number(id) - 1) },
        signal: ctl2.signal,
      })
      const r2 = again.body!.getReader()
      let t2 = ''
      while (!t2.includes(`id: ${id}`)) t2 += Buffer.from((await r2.read()).value ?? new Uint8Array()).toString()
      ctl2.abort()
      expect(t2).toContain(`"subject":"${c.id}"`)

      // The same through the `after` query parameter (what a browser's EventSource can send).
      const ctl3 = new AbortController()
      const third = await fetch(`${address}/v1/events?types=case.escalated&after=${Number(id) - 1}`, {
        headers: auth(h.admin),
        signal: ctl3.signal,
      })
      expect(third.status).toBe(200)
      const r3 = third.body!.getReader()
      let t3 = ''
      while (!t3.includes(`id: ${id}`)) t3 += Buffer.from((await r3.read()).value ?? new Uint8Array()).toString()
      ctl3.abort()
      expect(t3).toContain(`"subject":"${c.id}"`)
      const bad = await fetch(`${address}/v1/events?after=1.5`, { headers: auth(h.admin) })
      expect(bad.status).toBe(400)
      expect((await fetch(`${address}/v1/events`)).status).toBe(401)
    })

    it('delivers signed CloudEvents to a webhook that fails its first attempts, retrying with backoff', async () => {
      const seen: { headers: IncomingMessage['headers']; body: string; ok: boolean }[] = []
      let failures = 2
      const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
      const receiver = createServer((req, res) => {
        let body = ''
        req.on('data', (d: Buffer) => {
          body += d.toString()
        })
        req.on('end', () => {
          const ok = verify(secret, req.headers as Record<string, string>, body, Math.floor(Date.now() / 1000))
          seen.push({ headers: req.headers, body, ok })
          if (failures > 0) {
            failures--
            res.writeHead(503).end()
          } else res.writeHead(ok ? 204 : 401).end()
        })
      })
      await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r))
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/baton`
      try {
        const created = await inject('POST', '/v1/webhooks', h.admin, { url, events: ['case.escalated'], secret })
        expect(created.statusCode).toBe(201)
        const hookId = created.json().id
        expect((await inject('POST', '/v1/webhooks', h.ops.ada!, { url, events: ['*'] })).statusCode).toBe(403)
        const c = await open(orderQuestion)
        await say(c.id, 'Give me a real person please')
        for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
          if (seen.some((s) => s.ok && s.body.includes(c.id)) && failures === 0 && seen.length >= 3) break
          await new Promise((r) => setTimeout(r, 50))
        }
        const mine = seen.filter((s) => s.body.includes(c.id))
        expect(mine.length).toBeGreaterThanOrEqual(3)
        // Every attempt carries the same event id (receivers dedupe on it) and a signature that verifies.
        expect(new Set(mine.map((s) => s.headers['webhook-id'])).size).toBe(1)
        expect(mine.every((s) => s.ok)).toBe(true)
        expect(mine[0]!.headers['content-type']).toBe('application/cloudevents+json')
        const event = JSON.parse(mine.at(-1)!.body)
        expect(event).toMatchObject({ specversion: '1.0', type: 'dev.baton.case.escalated', subject: c.id })
        // A tampered body does not verify.
        expect(verify(secret, mine[0]!.headers as Record<string, string>, `${mine[0]!.body} `, Date.now() / 1000)).toBe(
          false,
        )
        let listed: { delivery: { delivered: number; attempts: number } } | undefined
        for (const deadline = Date.now() + 5000; Date.now() < deadline; ) {
          const l = (await inject('GET', '/v1/webhooks', h.admin)).json()
          listed = l.items.find((x: { id: string }) => x.id === hookId)
          if ((listed?.delivery.delivered ?? 0) >= 1) break
          await new Promise((r) => setTimeout(r, 50))
        }
        expect(listed?.delivery).toMatchObject({ attempts: 0 })
        expect(listed?.delivery.delivered).toBeGreaterThanOrEqual(1)
        expect(JSON.stringify(listed)).not.toContain(secret)
        expect((await inject('DELETE', `/v1/webhooks/${hookId}`, h.admin)).statusCode).toBe(204)
        expect((await inject('DELETE', `/v1/webhooks/${hookId}`, h.admin)).statusCode).toBe(404)
      } finally {
        await new Promise((r) => receiver.close(r))
      }
    }, 30_000)
  })
}

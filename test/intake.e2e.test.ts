import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { knownNames } from '../src/app.js'
import { compilePolicy } from '../src/policy/compile.js'
import { decideRoute } from '../src/policy/evaluate.js'
import type { Facts } from '../src/policy/types.js'
import { bearer, startTestApp, type TestApp } from './support/app.js'
import { pgAvailable } from './support/pg.js'

// Built from parts so that secret scanners do not flag this repository; the shape is a real AWS key pair.
const AWS_KEY_ID = ['AKIA', 'Z7VRSQ5TK3PD2M4X'].join('')
const AWS_SECRET = ['wJalrXUtnFEMI', 'K7MDENG', 'bPxRfiCYzKEY7a9x2B'].join('/')

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`intake over HTTP on ${engine}`, () => {
    let t: TestApp
    beforeAll(async () => {
      t = await startTestApp({ engine })
    })
    afterAll(async () => {
      await t?.close()
    })

    const post = (url: string, body: unknown, key = t.keys.service) =>
      t.app.server.inject({ method: 'POST', url, headers: bearer(key), payload: body as object })

    it('routes a message holding a cloud access key to a human queue and never returns or stores the key', async () => {
      const text = `My deploy broke, here are my creds: aws_access_key_id=${AWS_KEY_ID} aws_secret_access_key=${AWS_SECRET} please help`
      const r = await post('/v1/cases', { customer: 'cu_alice', channel: 'chat', message: { text } })
      expect(r.statusCode).toBe(201)
      const body = r.json()
      expect(body.handler).toMatchObject({ kind: 'operator', queue: 'security' })
      expect(body.decision.rules[0]).toBe('secret-in-message')
      expect(body.decision.explanation[0].id).toBe('secret-in-message')
      expect(body.decision.explanation[0].reason).toMatch(/\w/)
      expect(body.signals.secrets).toBeGreaterThanOrEqual(1)
      expect(body.text).not.toContain(AWS_KEY_ID)
      expect(body.text).not.toContain(AWS_SECRET)
      expect(body.text).toContain('[REDACTED:')
      expect(r.body).not.toContain(AWS_KEY_ID)

      const got = await t.app.server.inject({ url: `/v1/cases/${body.id}`, headers: bearer(t.keys.operator) })
      expect(got.statusCode).toBe(200)
      expect(got.body).not.toContain(AWS_KEY_ID)
      expect(got.body).not.toContain(AWS_SECRET)
      expect(got.json().messages[0].text).toContain('[REDACTED:')

      // Not in the audit log either (invariant 7): only a keyed hash.
      const size = await t.app.store.auditSize()
      const entries = await t.app.store.readAudit(0, size)
      const all = entries.map((e) => e.entry).join('\n')
      expect(all).not.toContain(AWS_KEY_ID)
      expect(all).not.toContain(AWS_SECRET)
      expect(all).toContain(body.id)
    })

    it('keeps a plain order-status question with the AI agent, then re-routes it when it turns into an account change', async () => {
      const r = await post('/v1/cases', {
        customer: 'cu_bob',
        channel: 'chat',
        message: { text: 'Hi, where is my order #12345? It was supposed to arrive yesterday.' },
      })
      expect(r.statusCode).toBe(201)
      const opened = r.json()
      expect(opened.handler).toEqual({ kind: 'agent', agentId: 'shop-assistant' })
      expect(opened.handoff).toBe(false)

      const m = await post(`/v1/cases/${opened.id}/messages`, {
        message: { text: 'Also, I want to change the email on my account to bob@new.example' },
      })
      expect(m.statusCode).toBe(200)
      const next = m.json()
      expect(next.handler).toMatchObject({ kind: 'hybrid', queue: 'accounts', agentId: 'shop-assistant' })
      expect(next.handoff).toBe(true)
      expect(next.decision.trigger).toBe('approval_intent')

      const got = (await t.app.server.inject({ url: `/v1/cases/${opened.id}`, headers: bearer(t.keys.service) })).json()
      expect(got.messages).toHaveLength(2)
      expect(got.decisions).toHaveLength(2)
      expect(got.handoffs).toBe(1)
      expect(got.handlers.map((h: { handler: { kind: string } }) => h.handler.kind)).toEqual(['agent', 'hybrid'])
      expect(got.handlers[1].rules).toEqual(next.decision.rules)
      const types = got.events.map((e: { type: string }) => e.type)
      expect(types).toEqual([
        'case.opened',
        'message.received',
        'case.decided',
        'message.received',
        'case.decided',
        'case.handed_off',
      ])
    })

    it('replays every stored decision to the same outcome from its recorded facts and policy version (invariant 2)', async () => {
      const r = await post('/v1/cases', {
        customer: 'cu_carol',
        channel: 'email',
        message: { text: 'I want to speak to a human, this is the third time I write.' },
        signals: { intent: 'complaint', intent_confidence: 0.9 },
      })
      expect(r.statusCode).toBe(201)
      const d = (
        await t.app.server.inject({ url: `/v1/decisions/${r.json().decision.id}`, headers: bearer(t.keys.admin) })
      ).json()
      const versions = await t.app.store.listPolicyVersions()
      const version = versions.find((v) => v.hash === d.policy.hash)
      expect(version).toBeDefined()
      const policy = compilePolicy(version!.source, version!.file, knownNames(t.app.services.workspace))
      const replay = decideRoute(policy, d.facts as Facts)
      expect(replay.outcome).toBe(d.outcome)
      expect(replay.rules).toEqual(d.rules)
      expect(replay.handler).toEqual(d.handler)
    })

    it('answers bad input with the right problem, naming the field', async () => {
      const malformed = await t.app.server.inject({
        method: 'POST',
        url: '/v1/cases',
        headers: { ...bearer(t.keys.service), 'content-type': 'application/json' },
        payload: '{"customer": "x", "channel": ',
      })
      expect(malformed.statusCode).toBe(400)
      expect(malformed.headers['content-type']).toMatch(/application\/problem\+json/)
      expect(malformed.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field: 'body' }] })

      const wrongType = await post('/v1/cases', { customer: 'x', channel: 'chat', message: { text: 42 } })
      expect(wrongType.statusCode).toBe(400)
      expect(wrongType.json().errors.map((e: { field: string }) => e.field)).toContain('message.text')

      const missing = await post('/v1/cases', { customer: 'x', message: { text: 'hi' } })
      expect(missing.statusCode).toBe(400)
      expect(missing.json().errors.map((e: { field: string }) => e.field)).toContain('channel')

      const unknownField = await post('/v1/cases', {
        customer: 'x',
        channel: 'chat',
        message: { text: 'hi' },
        colour: 1,
      })
      expect(unknownField.statusCode).toBe(400)
      expect(unknownField.json().errors.map((e: { field: string }) => e.field)).toContain('colour')

      const badSignal = await post('/v1/cases', {
        customer: 'x',
        channel: 'chat',
        message: { text: 'hi' },
        signals: { intent_confidence: 7 },
      })
      expect(badSignal.statusCode).toBe(400)
      expect(badSignal.json().errors.map((e: { field: string }) => e.field)).toContain('signals.intent_confidence')

      const undeclared = await post('/v1/cases', {
        customer: 'x',
        channel: 'chat',
        message: { text: 'hi' },
        signals: { favourite_colour: 'red' },
      })
      expect(undeclared.statusCode).toBe(400)
      expect(undeclared.json().errors.map((e: { field: string }) => e.field)).toContain('signals.favourite_colour')

      const big = await post('/v1/cases', { customer: 'x', channel: 'chat', message: { text: 'a'.repeat(70_000) } })
      expect(big.statusCode).toBe(413)
      expect(big.json().code).toBe('BODY_TOO_LARGE')

      const tooLongText = await post('/v1/cases', {
        customer: 'x',
        channel: 'chat',
        message: { text: 'a'.repeat(16_001) },
      })
      expect(tooLongText.statusCode).toBe(400)
      expect(tooLongText.json().errors[0].field).toBe('message.text')

      const unknownCase = await post('/v1/cases/cs_nope/messages', { message: { text: 'hello' } })
      expect(unknownCase.statusCode).toBe(404)
      expect(unknownCase.json().code).toBe('CASE_NOT_FOUND')

      const noKey = await t.app.server.inject({ method: 'POST', url: '/v1/cases', payload: {} })
      expect(noKey.statusCode).toBe(401)
      expect(noKey.json().code).toBe('UNAUTHENTICATED')

      const wrongKey = await post('/v1/cases', {}, `bk_service_${'A'.repeat(43)}`)
      expect(wrongKey.statusCode).toBe(401)

      const operatorWrites = await post(
        '/v1/cases',
        { customer: 'x', channel: 'chat', message: { text: 'hi' } },
        t.keys.operator,
      )
      expect(operatorWrites.statusCode).toBe(403)
      expect(operatorWrites.json().code).toBe('FORBIDDEN')

      const serviceAdmin = await post('/v1/keys', { role: 'admin', name: 'sneaky' })
      expect(serviceAdmin.statusCode).toBe(403)
    })

    it('refuses a broken policy with its position and keeps the previous version in force', async () => {
      const before = (await t.app.server.inject({ url: '/v1/policy', headers: bearer(t.keys.admin) })).json()
      const broken = `apiVersion: baton.dev/v1
kind: Policy
metadata: { name: shop, version: 99, owner: x@y.z }
routing:
  default: { handler: operator, queue: general, reason: fallback }
  rules:
    - id: typo
      when: signals.intnet == 'order_status'
      route: { handler: agent, agent: shop-assistant }
      reason: typo in the condition
`
      const r = await t.app.server.inject({
        method: 'PUT',
        url: '/v1/policy',
        headers: { ...bearer(t.keys.admin), 'content-type': 'application/yaml' },
        payload: broken,
      })
      expect(r.statusCode).toBe(422)
      expect(r.json().code).toBe('POLICY_INVALID')
      expect(r.json().positions[0]).toMatchObject({ line: 8 })
      const after = (await t.app.server.inject({ url: '/v1/policy', headers: bearer(t.keys.admin) })).json()
      expect(after.hash).toBe(before.hash)
      const still = await post('/v1/cases', {
        customer: 'cu_dan',
        channel: 'chat',
        message: { text: 'where is my order?' },
      })
      expect(still.json().decision.policy.hash).toBe(before.hash)
    })

    it('reads queue depths from the store for a policy whose conditions read them', async () => {
      const busy = `apiVersion: baton.dev/v1
kind: Policy
metadata: { name: shop, version: 100, owner: x@y.z }
routing:
  default: { handler: operator, queue: general, reason: a person reads it }
  rules:
    - id: general-is-busy
      when: queue.general.depth >= 1000000
      route: { handler: agent, agent: shop-assistant }
      reason: never in this test; it makes the policy read the queue
`
      const put = await t.app.server.inject({
        method: 'PUT',
        url: '/v1/policy',
        headers: { ...bearer(t.keys.admin), 'content-type': 'application/yaml' },
        payload: busy,
      })
      expect(put.statusCode).toBe(200)
      const before = (await t.app.store.queueStats()).general?.depth ?? 0
      const r = await post('/v1/cases', { customer: 'cu_q', channel: 'chat', message: { text: 'hello there' } })
      expect(r.statusCode).toBe(201)
      expect(r.json().decision.rules).toEqual(['default'])
      const d = (
        await t.app.server.inject({ url: `/v1/decisions/${r.json().decision.id}`, headers: bearer(t.keys.admin) })
      ).json()
      expect(d.facts.queue.general.depth).toBe(before)
      expect(before).toBeGreaterThan(0)
    })

    it('creates keys for other roles, shows each once, and stops accepting a revoked key at once', async () => {
      const r = await post('/v1/keys', { role: 'service', name: 'zendesk' }, t.keys.admin)
      expect(r.statusCode).toBe(201)
      const { id, key } = r.json()
      const list = await t.app.server.inject({ url: '/v1/keys', headers: bearer(t.keys.admin) })
      expect(list.body).not.toContain(key)
      const ok = await t.app.server.inject({ url: '/v1/policy', headers: bearer(key) })
      expect(ok.statusCode).toBe(200)
      const del = await t.app.server.inject({ method: 'DELETE', url: `/v1/keys/${id}`, headers: bearer(t.keys.admin) })
      expect(del.statusCode).toBe(204)
      const after = await t.app.server.inject({ url: '/v1/policy', headers: bearer(key) })
      expect(after.statusCode).toBe(401)
    })

    it('serves health without a key and the OpenAPI description generated from the routes', async () => {
      expect((await t.app.server.inject({ url: '/healthz' })).statusCode).toBe(200)
      expect((await t.app.server.inject({ url: '/readyz' })).statusCode).toBe(200)
      const doc = (await t.app.server.inject({ url: '/openapi.json' })).json()
      expect(doc.openapi).toMatch(/^3\./)
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining(['/v1/cases', '/v1/cases/{id}/messages', '/v1/keys']),
      )
      expect(doc.paths['/v1/cases'].post.requestBody.content['application/json'].schema.required).toEqual(
        expect.arrayContaining(['customer', 'channel', 'message']),
      )
    })
  })
}

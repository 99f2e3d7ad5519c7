import { existsSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import type { CryptoKey } from 'jose'
import { chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { detectSecrets, keyedHash } from '../src/signals/secrets.js'
import { bearer, startTestApp, type TestApp } from './support/app.js'
import { agentToken as agentTokenFor, registerAgentKey } from './support/assertion.js'
import { startConnector } from './support/connector.js'
import { dumpStore, exportAudit, leakIn } from './support/leaks.js'
import { pgAvailable } from './support/pg.js'

// Invariant 7 over every free text a caller sends (issue 17, defect 1): subject, caller signals, the inline tier,
// customer fields, reasons, names and descriptions are redacted before anything is stored, audited, emitted or
// returned; tool parameters, identifiers and webhook URLs holding a secret are refused.

// Built from parts so that secret scanners do not flag this repository; each has the shape of a real one.
const AWS = ['AKIA', 'Q3EGUBLJ4XKZ7TWM'].join('') // the repro
const GH = ['ghp', '_', 'R7pL2vXc9QmT4kWz8NbY3hJd6FsA1eGu5CiO'].join('')
const STRIPE = ['sk', '_live_', '51HqLyjWDarjtT1zdp7dcXq2'].join('')
const SLACK = ['xoxb', '-', '2948716350-4829163750-hR7tKpX2mQ9vLzW4nB8cY3dF'].join('')
const PG_URL = ['postgres://app', ':', 'Xq9!rT2v@db.internal:5432'].join('')
const NPM = ['npm', '_', 'k3J9xQ2mV7pL4tR8wZ1cB6nY5hD0fG3sA2eU'].join('')
const SENDGRID = ['SG', '.', 'aB3dE5gH7jK9mN1pQ3sT5v', '.', 'W7yZ9bC1dE3fG5hJ7kL9mN1pQ3sT5vW7yZ9bC1dE3fG'].join('')
const CHROMIUM = process.env.BATON_CHROMIUM ?? '/usr/bin/chromium'
const ALL = { AWS, GH, STRIPE, SLACK, PG_URL, NPM, SENDGRID }

const KINDS: Record<keyof typeof ALL, string> = {
  AWS: 'aws-access-key-id',
  GH: 'github-token',
  STRIPE: 'stripe-secret-key',
  SLACK: 'slack-token',
  PG_URL: 'postgres-connection-string',
  NPM: 'npm-token',
  SENDGRID: 'sendgrid-api-key',
}

/** Fails naming the secret and where it showed, if any of `texts` holds one of `secrets`. */
function expectNoLeak(texts: readonly string[], secrets: Record<string, string> = ALL): void {
  for (const [name, secret] of Object.entries(secrets)) {
    const hit = leakIn(texts, secret)
    expect(hit === undefined ? undefined : `${name} in: ${hit.slice(0, 300)}`).toBeUndefined()
  }
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`secrets in every caller text, on ${engine}`, () => {
    let t: TestApp
    let base: string
    let connector: Awaited<ReturnType<typeof startConnector>>
    let agentKey: { privateKey: CryptoKey; publicKey: CryptoKey }
    let ada: string
    let grace: string
    // every answer Baton gave in this suite, checked at the end with the store, the export and the event stream
    const answers: string[] = []

    const call = async (method: 'GET' | 'POST' | 'PUT', url: string, key: string, payload?: object) => {
      const r = await t.app.server.inject({
        method,
        url,
        headers: bearer(key),
        ...(payload === undefined ? {} : { payload }),
      })
      answers.push(r.body)
      return r
    }

    const agentToken = (caseId: string) => agentTokenFor(t.app, agentKey.privateKey, caseId)

    /** The CloudEvents of the SSE stream from the start, read until `done` holds for them (or 20 s pass). */
    async function events(done: (evs: { type: string; data: Record<string, unknown> }[]) => boolean) {
      const ac = new AbortController()
      const timer = setTimeout(() => ac.abort(), 20_000)
      const evs: { type: string; data: Record<string, unknown> }[] = []
      let raw = ''
      try {
        const res = await fetch(`${base}/v1/events?after=-1`, { headers: bearer(ada), signal: ac.signal })
        expect(res.status).toBe(200)
        const reader = (res.body as ReadableStream<Uint8Array>).getReader()
        const decoder = new TextDecoder()
        while (!done(evs)) {
          const { value, done: end } = await reader.read()
          if (end) break
          raw += decoder.decode(value, { stream: true })
          let cut = raw.indexOf('\n\n')
          while (cut >= 0) {
            const block = raw.slice(0, cut)
            raw = raw.slice(cut + 2)
            const data = block.split('\n').find((l) => l.startsWith('data: '))
            if (data !== undefined) evs.push(JSON.parse(data.slice(6)))
            cut = raw.indexOf('\n\n')
          }
        }
      } finally {
        clearTimeout(timer)
        ac.abort()
      }
      return evs
    }

    beforeAll(async () => {
      connector = await startConnector()
      process.env.BATON_SHOP_CONNECTOR_URL = connector.url
      t = await startTestApp({ engine })
      await t.app.server.listen({ port: 0, host: '127.0.0.1' })
      base = `http://127.0.0.1:${(t.app.server.server.address() as AddressInfo).port}`
      agentKey = await registerAgentKey(t.app, t.keys.admin)
      const admin = { kind: 'admin', id: 'test', roles: ['admin'] } as const
      ada = (await t.app.services.keys.create('operator', 'ada', admin, 'ada')).key
      grace = (await t.app.services.keys.create('operator', 'grace', admin, 'grace')).key
    }, 60_000)

    afterAll(async () => {
      await t?.close()
      await connector?.close()
      delete process.env.BATON_SHOP_CONNECTOR_URL
    })

    it('uses secrets the detector knows (else the checks below could not fail)', () => {
      for (const [name, secret] of Object.entries(ALL)) {
        expect({ name, kinds: detectSecrets(`x ${secret} y`).map((f) => f.kind) }).toEqual({
          name,
          kinds: [KINDS[name as keyof typeof ALL]],
        })
      }
    })

    let leakedCase: string
    it('redacts a key in the subject (the issue repro), a caller signal and the tier before anything sees them', async () => {
      const r = await call('POST', '/v1/cases', t.keys.service, {
        customer: { id: 'cu_leak', tier: `gold ${STRIPE}` },
        channel: 'email',
        subject: `key ${AWS} leaked`,
        message: { text: 'Our deploy key leaked, please help us rotate it' },
        signals: { intent_alt: `see ${GH}` },
      })
      expect(r.statusCode, r.body).toBe(201)
      const body = r.json()
      leakedCase = body.id
      // the policy sees the secrets: three of them, their kinds, and the case goes to the security queue
      expect(body.signals.secrets).toBe(3)
      expect(body.signals.secret_kinds).toEqual(['aws-access-key-id', 'github-token', 'stripe-secret-key'])
      expect(body.signals.sensitivity).toContain('secret')
      expect(body.signals.custom.intent_alt).toBe('see [REDACTED:github-token]')
      expect(body.handler).toMatchObject({ kind: 'operator', queue: 'security' })
      expectNoLeak([r.body])

      const got = await call('GET', `/v1/cases/${leakedCase}`, t.keys.operator)
      expect(got.json().subject).toBe('key [REDACTED:aws-access-key-id] leaked')
      const facts = got.json().decisions[0].facts
      expect(facts.signals.custom.intent_alt).toBe('see [REDACTED:github-token]')
      expect(facts.customer.tier).toBe('gold [REDACTED:stripe-secret-key]')
      const list = await call('GET', '/v1/cases', t.keys.operator)
      expect(list.statusCode).toBe(200)
      expect(list.body).toContain('key [REDACTED:aws-access-key-id] leaked')
      expectNoLeak([got.body, list.body])

      // the audit keeps the kind and a keyed hash of each, named by its field
      const audit = await call('GET', `/v1/cases/${leakedCase}/audit`, t.keys.admin)
      const entries = audit.json().entries.map((e: { entry: string }) => JSON.parse(e.entry))
      const opened = entries.find((e: { type: string }) => e.type === 'case.opened')
      const key = t.app.services.intake.secretHashKey
      expect(opened.data.subject).toBe('key [REDACTED:aws-access-key-id] leaked')
      expect(opened.data.secrets).toEqual([{ field: 'subject', kind: 'aws-access-key-id', hash: keyedHash(key, AWS) }])
      const received = entries.find((e: { type: string }) => e.type === 'message.received')
      expect(received.data.secrets).toEqual([
        { field: 'signals.intent_alt', kind: 'github-token', hash: keyedHash(key, GH) },
        { field: 'customer.tier', kind: 'stripe-secret-key', hash: keyedHash(key, STRIPE) },
      ])
      expectNoLeak([audit.body])
    })

    it('redacts a later message’s signal and tier the same way', async () => {
      const r = await call('POST', `/v1/cases/${leakedCase}/messages`, t.keys.service, {
        message: { text: 'Any news?' },
        signals: { intent_alt: `slack ${SLACK}` },
        customer: { tier: NPM },
      })
      expect(r.statusCode, r.body).toBe(200)
      expect(r.json().signals.secrets).toBe(2)
      expect(r.json().signals.custom.intent_alt).toBe('slack [REDACTED:slack-token]')
      expectNoLeak([r.body])
    })

    it('finds keys hidden by a zero-width space, a soft hyphen, full-width letters or a line break (defect 3)', async () => {
      const fullWidth = (x: string) => x.replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0))
      const zwsp = `${NPM.slice(0, 9)}\u200b${NPM.slice(9)}`
      const r = await call('POST', '/v1/cases', t.keys.service, {
        customer: 'cu_hidden',
        channel: 'email',
        subject: `key ${fullWidth(AWS)}`,
        message: {
          text: `tokens: ${zwsp} and ${SLACK.slice(0, 20)}\u00ad${SLACK.slice(20)} and\n${GH.slice(0, 17)}\n${GH.slice(17)} ok`,
        },
      })
      expect(r.statusCode, r.body).toBe(201)
      const body = r.json()
      expect(body.signals.secrets).toBe(4)
      expect(body.signals.secret_kinds).toEqual(['aws-access-key-id', 'github-token', 'npm-token', 'slack-token'])
      expect(body.handler).toMatchObject({ kind: 'operator', queue: 'security' })
      // the original characters are gone, the invisible ones too
      expect(body.text).toBe('tokens: [REDACTED:npm-token] and [REDACTED:slack-token] and\n[REDACTED:github-token] ok')
      const got = await call('GET', `/v1/cases/${body.id}`, t.keys.operator)
      expect(got.json().subject).toBe('key [REDACTED:aws-access-key-id]')
      // hashed as the plain key: the log can tell it is the same secret as a plain one
      const audit = await call('GET', `/v1/cases/${body.id}/audit`, t.keys.admin)
      const entries = audit.json().entries.map((e: { entry: string }) => JSON.parse(e.entry))
      const key = t.app.services.intake.secretHashKey
      expect(entries.find((e: { type: string }) => e.type === 'case.opened').data.secrets[0].hash).toBe(
        keyedHash(key, AWS),
      )
      const hashes = entries.find((e: { type: string }) => e.type === 'message.received').data.secrets
      expect(hashes.map((h: { hash: string }) => h.hash)).toEqual([NPM, SLACK, GH].map((k) => keyedHash(key, k)))
      expectNoLeak([r.body, got.body, audit.body])
    })

    it('redacts customer fields and refuses a customer id or field name that holds a secret', async () => {
      const put = await call('PUT', '/v1/customers/cu_leak', t.keys.service, {
        tier: 'gold',
        attributes: { note: `db is ${PG_URL}`, plan: 'pro', seats: 4 },
      })
      expect(put.statusCode, put.body).toBe(200)
      expect(put.json().attributes).toEqual({
        note: 'db is [REDACTED:postgres-connection-string]',
        plan: 'pro',
        seats: 4,
      })
      const got = await call('GET', '/v1/customers/cu_leak', t.keys.operator)
      expect(got.json().attributes.note).toBe('db is [REDACTED:postgres-connection-string]')

      const badId = await call('PUT', `/v1/customers/${AWS}`, t.keys.service, { tier: 'gold' })
      expect(badId.statusCode).toBe(400)
      expect(badId.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field: 'id' }] })
      const badName = await call('PUT', '/v1/customers/cu_leak2', t.keys.service, {
        tier: 'gold',
        attributes: { [GH]: 'x' },
      })
      expect(badName.statusCode).toBe(400)
      expect(badName.json().errors[0].field).toBe('attributes')
      const badCase = await call('POST', '/v1/cases', t.keys.service, {
        customer: AWS,
        channel: 'chat',
        message: { text: 'hello' },
      })
      expect(badCase.statusCode).toBe(400)
      expect(badCase.json().errors[0].field).toBe('customer')
      expect(await t.app.store.getCustomer('cu_leak2')).toBeUndefined()
      expectNoLeak([put.body, got.body, badId.body, badName.body, badCase.body])
    })

    it('redacts the reasons of a takeover, a refused hand-back, key names and agent descriptions', async () => {
      const take = await call('POST', `/v1/cases/${leakedCase}/takeover`, grace, { reason: `saw ${SENDGRID} in logs` })
      expect(take.statusCode, take.body).toBe(200)
      const back = await call('POST', `/v1/cases/${leakedCase}/handback`, grace, {
        agentId: 'shop-assistant',
        reason: `done with ${NPM}`,
      })
      expect(back.statusCode).toBe(409) // the policy keeps a secret case with a human: refused, and audited
      const decisions = (await call('GET', `/v1/cases/${leakedCase}`, t.keys.operator)).json().decisions
      expect(decisions.at(-1)).toMatchObject({ kind: 'override', reason: 'saw [REDACTED:sendgrid-api-key] in logs' })

      const key = await call('POST', '/v1/keys', t.keys.admin, { role: 'service', name: `ci ${GH}` })
      expect(key.statusCode).toBe(201)
      expect(key.json().name).toBe('ci [REDACTED:github-token]')

      const agent = await call('POST', '/v1/agents', t.keys.admin, {
        id: 'leaky-bot',
        owner: 'dana.ops@shop.example',
        purpose: `answers with ${SLACK}`,
        model: AWS,
        tools: ['reply'],
      })
      expect(agent.statusCode, agent.body).toBe(201)
      expect(agent.json()).toMatchObject({
        purpose: 'answers with [REDACTED:slack-token]',
        model: '[REDACTED:aws-access-key-id]',
      })
      const on = await call('POST', '/v1/agents/leaky-bot/activate', t.keys.admin, { reason: `key ${STRIPE}` })
      expect(on.statusCode, on.body).toBe(200)
      const off = await call('POST', '/v1/agents/leaky-bot/suspend', t.keys.admin, { reason: `rotated ${NPM}` })
      expect(off.statusCode, off.body).toBe(200)
      const review = await call('POST', '/v1/agents/leaky-bot/review', t.keys.admin, { by: `dana ${GH}` })
      expect(review.statusCode, review.body).toBe(200)
      expect(review.json().reviewedBy).toBe('dana [REDACTED:github-token]')
      expectNoLeak([take.body, back.body, key.body, agent.body, on.body, off.body, review.body])
    })

    it('refuses a secret in a tool parameter (nothing stored or executed); approve-then-execute runs the exact parameters', async () => {
      const opened = await call('POST', '/v1/cases', t.keys.service, {
        customer: 'cu_refund',
        channel: 'chat',
        message: { text: 'Hi, where is my order?' },
      })
      expect(opened.json().handler).toMatchObject({ kind: 'agent', agentId: 'shop-assistant' })
      const caseId = opened.json().id
      const token = await agentToken(caseId)
      const before = connector.calls.length

      const leaky = await call('POST', `/v1/cases/${caseId}/actions`, token, {
        tool: 'reply',
        params: { text: `Your key is ${AWS}` },
      })
      expect(leaky.statusCode).toBe(422)
      expect(leaky.json()).toMatchObject({ code: 'PARAMS_INVALID', errors: [{ field: 'params.text' }] })
      expect(leaky.json().errors[0].message).toContain('aws-access-key-id')
      const nested = await call('POST', `/v1/cases/${caseId}/actions`, token, {
        tool: 'refund',
        params: { order_id: GH, amount: 10, currency: 'EUR' },
      })
      expect(nested.statusCode).toBe(422)
      expect(nested.json().errors[0].field).toBe('params.order_id')
      // a tool name is echoed in the refusal: redacted in the answer and in the audited refusal
      const tool = await call('POST', `/v1/cases/${caseId}/actions`, token, { tool: SLACK.slice(0, 64), params: {} })
      expect(tool.statusCode).toBe(404)
      expect(connector.calls.length).toBe(before)
      const refusals = (await t.app.store.readAudit(0, await t.app.store.auditSize()))
        .map((e) => JSON.parse(e.entry))
        .filter((e) => e.type === 'access.refused' && e.caseId === caseId)
      expect(refusals.map((e) => e.data.code)).toEqual(['PARAMS_INVALID', 'PARAMS_INVALID', 'TOOL_NOT_FOUND'])
      // no action and no decision was recorded for them
      expect((await call('GET', `/v1/cases/${caseId}`, t.keys.operator)).json().decisions).toHaveLength(1)

      const params = { order_id: 'A-1001', amount: 120, currency: 'EUR' }
      const proposed = await call('POST', `/v1/cases/${caseId}/actions`, token, { tool: 'refund', params })
      expect(proposed.statusCode, proposed.body).toBe(202)
      const approvalId = proposed.json().approval.id
      const decided = await call('POST', `/v1/approvals/${approvalId}/decision`, ada, {
        decision: 'approve',
        reason: `ok, customer sent ${PG_URL} by mistake`,
      })
      expect(decided.statusCode, decided.body).toBe(200)
      expect(decided.json().approval.reason).toBe('ok, customer sent [REDACTED:postgres-connection-string] by mistake')
      expect(decided.json().action.state).toBe('executed')
      expect(connector.calls.at(-1)?.body.params).toEqual(params)
      expectNoLeak([leaky.body, nested.body, tool.body, decided.body])
    })

    it('refuses a webhook URL with credentials, and never echoes a secret in a problem', async () => {
      const hook = await call('POST', '/v1/webhooks', t.keys.admin, {
        url: `https://hooks${['.', 'example'].join('')}.com/in?auth=1&x=${SLACK}`,
        events: ['*'],
      })
      expect(hook.statusCode).toBe(400)
      expect(hook.json().errors[0].field).toBe('url')
      const missing = await call('GET', `/v1/cases/${AWS}`, t.keys.operator)
      expect(missing.statusCode).toBe(404)
      expect(missing.json().detail).toContain('[REDACTED:aws-access-key-id]')
      // escaped in the path, or in a segment longer than any id: fastify's own answers quoted the path back
      const escaped = await call('GET', `/v1/cases/my%20${AWS}`, t.keys.operator)
      expect(escaped.statusCode).toBe(404)
      const long = await call('GET', `/v1/cases/${'x'.repeat(200)}%20${AWS}`, t.keys.operator)
      expect(long.statusCode).toBe(414)
      expect(long.headers['content-type']).toContain('application/problem+json')
      expect(long.json().code).toBe('URI_TOO_LONG')
      // up to MAX_PARAM_LENGTH (200, above fastify's default 100) a segment is routed, then refused as an id longer
      // than 128: routerOptions is in force
      const within = await call('GET', `/v1/cases/${'x'.repeat(150)}`, t.keys.operator)
      expect(within.statusCode).toBe(400)
      expectNoLeak([hook.body, missing.body, escaped.body, long.body])
    })

    // The console reads the store, so it is the same on both engines: one run in Chromium is enough.
    it.skipIf(engine !== 'sqlite' || (!existsSync(CHROMIUM) && process.env.CI === undefined))(
      'shows the redacted subject as the console page title and queue link, in Chromium',
      async () => {
        const r = await call('POST', '/v1/cases', t.keys.service, {
          customer: 'cu_console',
          channel: 'email',
          subject: `key ${AWS} leaked again`,
          message: { text: 'Same problem as before' },
        })
        expect(r.statusCode).toBe(201)
        const id = r.json().id
        const browser = await chromium.launch({
          executablePath: CHROMIUM,
          args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
        })
        try {
          const page = await browser.newPage({ baseURL: base })
          page.setDefaultTimeout(30_000)
          await page.goto('/console/login')
          await page.getByLabel('API key').fill(grace)
          await page.getByRole('button', { name: 'Sign in' }).click()
          await page.getByRole('heading', { name: 'Queue', level: 1 }).waitFor()
          await page.goto('/console/queue?queue=security')
          const link = page.locator(`a[href="/console/cases/${id}"]`).first()
          expect(await link.textContent()).toBe('key [REDACTED:aws-access-key-id] leaked again')
          answers.push(await page.content())
          await link.click()
          await page.waitForURL(`**/console/cases/${id}`)
          expect(await page.title()).toContain('Case key [REDACTED:aws-access-key-id] leaked again')
          expect(await page.locator('.subtitle').textContent()).toContain(
            'key [REDACTED:aws-access-key-id] leaked again',
          )
          answers.push(await page.title(), await page.content(), (await page.locator('body').textContent()) ?? '')
          expectNoLeak(answers.slice(-4))
        } finally {
          await browser.close()
        }
      },
      120_000,
    )

    it('leaves no secret in any table, the audit export or the event stream', async () => {
      const evs = await events((e) =>
        e.some((x) => x.type === 'dev.baton.approval.decided' && String(x.data.reason).includes('[REDACTED:')),
      )
      const opened = evs.find((e) => e.type === 'dev.baton.case.opened' && e.data.caseId === leakedCase)
      expect(opened?.data.subject).toBe('key [REDACTED:aws-access-key-id] leaked')
      const dump = await dumpStore(t)
      expect(dump.some((c) => c.includes('key [REDACTED:aws-access-key-id] leaked'))).toBe(true)
      expectNoLeak(dump)
      expectNoLeak(await exportAudit(t))
      expectNoLeak(evs.map((e) => JSON.stringify(e)))
      expectNoLeak(answers)
    })
  })
}

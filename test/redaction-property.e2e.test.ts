import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import type { CryptoKey } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { toCloudEvent } from '../src/events/cloudevents.js'
import { detectSecrets } from '../src/signals/secrets.js'
import { bearer, SHOP, startTestApp, type TestApp } from './support/app.js'
import { agentToken, registerAgentKey } from './support/assertion.js'
import { startConnector } from './support/connector.js'
import { dumpStore, exportAudit, leakIn } from './support/leaks.js'
import { pgAvailable } from './support/pg.js'

// Issue 17, "What it must show": for any generated request with a secret (of a kind the detector knows, plain or
// obfuscated) planted in any caller-supplied text field, no stored row, audit entry, event (SSE and webhook),
// response or console page holds it in clear, nor its de-obfuscated form.

const UP = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'
const LOW = 'abcdefghijklmnopqrstuvwxyz'
const DIG = '0123456789'
const ALNUM = UP + LOW + DIG
const chars = (alphabet: string, n: number) =>
  fc.string({ unit: fc.constantFrom(...alphabet.split('')), minLength: n, maxLength: n })

/** Real-looking secrets of kinds the detector knows, random in their bodies. */
const SECRETS = {
  aws: chars(`${UP}234567`, 16).map((b) => `AKIA${b}`),
  github: chars(ALNUM, 36).map((b) => `ghp_${b}`),
  stripe: chars(ALNUM, 24).map((b) => `sk_live_${b}`),
  slack: fc.tuple(chars(DIG, 10), chars(DIG, 10), chars(ALNUM, 24)).map(([a, b, c]) => `xoxb-${a}-${b}-${c}`),
  npm: chars(ALNUM, 36).map((b) => `npm_${b}`),
  sendgrid: fc.tuple(chars(`${ALNUM}_-`, 22), chars(`${ALNUM}_-`, 43)).map(([a, b]) => `SG.${a}.${b}`),
  gitlab: chars(ALNUM, 20).map((b) => `glpat-${b}`),
  postgres: fc.tuple(chars(LOW, 6), chars(ALNUM, 12)).map(([u, p]) => `postgres://${u}:${p}@db.internal:5432`),
  privateKey: fc
    .array(chars(`${ALNUM}+/`, 64), { minLength: 2, maxLength: 3 })
    .map((lines) => `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----`),
}
// the detector must know each as generated (the property is about what it knows)
const secret = fc
  .oneof(...Object.values(SECRETS))
  .filter((s) => detectSecrets(` ${s} `).some((f) => f.start <= 1 && f.end >= s.length + 1))

const fullWidth = (s: string) => s.replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0))
const insert = (s: string, at: number, what: string) => `${s.slice(0, at)}${what}${s.slice(at)}`
const TOKEN = /[A-Za-z0-9_+/=@-]/
/**
 * A place inside `s` between two token characters (a key is split over lines there), from `seed` on; in a PEM
 * block, inside its base64 lines (a break inside the `BEGIN … PRIVATE KEY` armour is not found: SECRETS.md).
 */
function tokenGap(s: string, seed: number): number | undefined {
  const armour = /^-----BEGIN[^\n]*\n|\n-----END[^\n]*$/g
  const outside = [...s.matchAll(armour)].map((m) => [m.index, m.index + m[0].length] as const)
  for (let k = 0; k < s.length; k++) {
    const i = 1 + ((seed + k) % (s.length - 1))
    if (outside.some(([a, b]) => i >= a && i <= b)) continue
    if (TOKEN.test(s[i - 1] ?? '') && TOKEN.test(s[i] ?? '')) return i
  }
  return undefined
}
const OBFUSCATIONS: Record<string, (s: string, at: number) => string> = {
  none: (s) => s,
  'zero-width space': (s, at) => insert(s, 1 + (at % (s.length - 1)), '\u200b'),
  'soft hyphen': (s, at) => insert(s, 1 + (at % (s.length - 1)), '\u00ad'),
  'BOM and word joiner': (s, at) => `\ufeff${insert(s, 1 + (at % (s.length - 1)), '\u2060')}`,
  'full-width': (s) => fullWidth(s),
  'line break': (s, at) => {
    const i = tokenGap(s, at)
    return i === undefined ? s : insert(s, i, at % 2 === 0 ? '\n' : '\r\n  ')
  },
  'all at once': (s, at) => {
    const wide = fullWidth(insert(s, 1 + (at % (s.length - 1)), '\u200b'))
    const i = tokenGap(s, at + 7)
    return i === undefined ? wide : insert(wide, i + (i > 1 + (at % (s.length - 1)) ? 1 : 0), '\n')
  },
}
const words = fc
  .array(fc.constantFrom('my', 'key', 'is', 'please', 'rotate', 'it', 'the', 'token', 'here:', 'thanks!'), {
    maxLength: 4,
  })
  .map((w) => w.join(' '))

interface Ctx {
  readonly t: TestApp
  readonly n: number
  readonly call: (method: 'GET' | 'POST' | 'PUT', url: string, key: string, body?: object) => Promise<Answer>
  readonly agentCase: () => Promise<{ caseId: string; token: string }>
  readonly grace: string
  readonly ada: string
}
interface Answer {
  readonly status: number
  readonly body: string
  json(): Record<string, unknown> & { id?: string }
}
interface Field {
  /** Longest text the field takes (its schema's maxLength). */
  readonly max: number
  /** Sends `text` in the field, checks the status it must get; returns the case the request is about, if any. */
  readonly send: (c: Ctx, text: string) => Promise<string | undefined>
}

const ok = (r: Answer, ...status: number[]) => expect(status, r.body).toContain(r.status)
const open = async (c: Ctx, body: Record<string, unknown>) => {
  const r = await c.call('POST', '/v1/cases', c.t.keys.service, {
    customer: `cu_p${c.n}`,
    channel: 'email',
    message: { text: 'Hi, where is my order #12345?' },
    ...body,
  })
  ok(r, 201)
  return String(r.json().id)
}
const takenOver = async (c: Ctx) => {
  const id = await open(c, {})
  ok(await c.call('POST', `/v1/cases/${id}/takeover`, c.grace, { reason: 'taking it' }), 200)
  return id
}
const agent = async (c: Ctx, body: Record<string, unknown> = {}) => {
  const id = `bot-${c.n}`
  const r = await c.call('POST', '/v1/agents', c.t.keys.admin, {
    id,
    owner: 'dana.ops@shop.example',
    purpose: 'answers order questions',
    tools: ['reply'],
    ...body,
  })
  ok(r, 201)
  return id
}

/** Every text a caller sends, and what must happen to a secret in it: redacted (2xx) or refused (4xx). */
const FIELDS: Record<string, Field> = {
  subject: { max: 500, send: (c, x) => open(c, { subject: x }) },
  'message.text': { max: 16_000, send: (c, x) => open(c, { message: { text: x } }) },
  'signals.intent_alt': { max: 16_000, send: (c, x) => open(c, { signals: { intent_alt: x } }) },
  'customer.tier': { max: 64, send: (c, x) => open(c, { customer: { id: `cu_p${c.n}`, tier: x } }) },
  'later message.text': {
    max: 16_000,
    async send(c, x) {
      const id = await open(c, {})
      ok(await c.call('POST', `/v1/cases/${id}/messages`, c.t.keys.service, { message: { text: x } }), 200)
      return id
    },
  },
  'later signals and tier': {
    max: 64,
    async send(c, x) {
      const id = await open(c, {})
      const body = { message: { text: 'any news?' }, signals: { intent_alt: x }, customer: { tier: x } }
      ok(await c.call('POST', `/v1/cases/${id}/messages`, c.t.keys.service, body), 200)
      return id
    },
  },
  'customer attributes and tier': {
    max: 64,
    async send(c, x) {
      const body = { tier: x, attributes: { note: `see ${x}`, plan: 'pro' } }
      ok(await c.call('PUT', `/v1/customers/cu_attr${c.n}`, c.t.keys.service, body), 200)
      ok(await c.call('GET', `/v1/customers/cu_attr${c.n}`, c.t.keys.operator), 200)
      return undefined
    },
  },
  'takeover reason': {
    max: 2000,
    async send(c, x) {
      const id = await open(c, {})
      ok(await c.call('POST', `/v1/cases/${id}/takeover`, c.grace, { reason: `saw ${x}` }), 200)
      return id
    },
  },
  'hand-back reason': {
    max: 2000,
    async send(c, x) {
      const id = await takenOver(c)
      const r = await c.call('POST', `/v1/cases/${id}/handback`, c.grace, { agentId: 'shop-assistant', reason: x })
      ok(r, 200, 409)
      return id
    },
  },
  'hand-back agentId': {
    max: 64,
    async send(c, x) {
      const id = await takenOver(c)
      ok(await c.call('POST', `/v1/cases/${id}/handback`, c.grace, { agentId: x, reason: 'back to the bot' }), 409)
      return id
    },
  },
  'takeover operatorId': {
    max: 64,
    async send(c, x) {
      const id = await open(c, {})
      const r = await c.call('POST', `/v1/cases/${id}/takeover`, c.t.keys.admin, { reason: 'admin', operatorId: x })
      ok(r, 404)
      return id
    },
  },
  'approval reason': {
    max: 2000,
    async send(c, x) {
      const { caseId, token } = await c.agentCase()
      const params = { order_id: `A-${c.n}`, amount: 120, currency: 'EUR' }
      const r = await c.call('POST', `/v1/cases/${caseId}/actions`, token, { tool: 'refund', params })
      ok(r, 202)
      const approval = (r.json().approval as { id: string }).id
      const decision = c.n % 2 === 0 ? 'approve' : 'deny'
      ok(await c.call('POST', `/v1/approvals/${approval}/decision`, c.ada, { decision, reason: x }), 200)
      return caseId
    },
  },
  'agent purpose and model': {
    max: 200,
    async send(c, x) {
      await agent(c, { purpose: x, model: x })
      return undefined
    },
  },
  'agent lifecycle reason': {
    max: 1000,
    async send(c, x) {
      const id = await agent(c)
      ok(await c.call('POST', `/v1/agents/${id}/activate`, c.t.keys.admin, { reason: x }), 200)
      ok(await c.call('POST', `/v1/agents/${id}/retire`, c.t.keys.admin, { reason: `and ${x}` }), 200)
      return undefined
    },
  },
  'agent review by': {
    max: 200,
    async send(c, x) {
      const id = await agent(c)
      ok(await c.call('POST', `/v1/agents/${id}/review`, c.t.keys.admin, { by: x }), 200)
      return undefined
    },
  },
  'key name': {
    max: 100,
    async send(c, x) {
      ok(await c.call('POST', '/v1/keys', c.t.keys.admin, { role: 'service', name: x }), 201)
      return undefined
    },
  },
  // refused, not redacted: nothing of the request may be stored (a refusal is audited, redacted)
  'tool parameter': {
    max: 4000,
    async send(c, x) {
      const { caseId, token } = await c.agentCase()
      ok(await c.call('POST', `/v1/cases/${caseId}/actions`, token, { tool: 'reply', params: { text: x } }), 422)
      return caseId
    },
  },
  'tool name': {
    max: 64,
    async send(c, x) {
      const { caseId, token } = await c.agentCase()
      ok(await c.call('POST', `/v1/cases/${caseId}/actions`, token, { tool: x, params: {} }), 404)
      return caseId
    },
  },
  'customer id': {
    max: 128,
    async send(c, x) {
      const r = await c.call('POST', '/v1/cases', c.t.keys.service, {
        customer: x,
        channel: 'chat',
        message: { text: 'hello' },
      })
      ok(r, 400)
      ok(await c.call('PUT', `/v1/customers/${encodeURIComponent(x)}`, c.t.keys.service, { tier: 'gold' }), 400, 414)
      return undefined
    },
  },
  'signals.intent': {
    max: 16_000,
    async send(c, x) {
      const r = await c.call('POST', '/v1/cases', c.t.keys.service, {
        customer: `cu_p${c.n}`,
        channel: 'chat',
        message: { text: 'hello' },
        signals: { intent: x, intent_confidence: 0.9 },
      })
      ok(r, 400)
      return undefined
    },
  },
  'webhook url': {
    max: 1900,
    async send(c, x) {
      ok(
        await c.call('POST', '/v1/webhooks', c.t.keys.admin, {
          url: `https://hooks.example.net/in?k=${x}`,
          events: ['*'],
        }),
        400,
      )
      return undefined
    },
  },
}

const request = fc.record({
  field: fc.constantFrom(...Object.keys(FIELDS)),
  secret,
  how: fc.constantFrom(...Object.keys(OBFUSCATIONS)),
  at: fc.nat(),
  before: words,
  after: words,
})

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`a secret in any caller text, on ${engine} (property)`, () => {
    let t: TestApp
    let base: string
    let connector: Awaited<ReturnType<typeof startConnector>>
    let agentKey: { privateKey: CryptoKey; publicKey: CryptoKey }
    let grace: string
    let ada: string
    let consoleCookie: string
    let workspace: string | undefined
    const answers: string[] = []
    const planted: string[] = []
    const webhookBodies: string[] = []
    const sse = { raw: '', done: false }
    const stream = new AbortController()
    let n = 0

    const call: Ctx['call'] = async (method, url, key, body) => {
      const r = await t.app.server.inject({
        method,
        url,
        headers: bearer(key),
        ...(body === undefined ? {} : { payload: body }),
      })
      answers.push(r.body)
      return { status: r.statusCode, body: r.body, json: () => r.json() }
    }
    const agentCase = async () => {
      const r = await call('POST', '/v1/cases', t.keys.service, {
        customer: `cu_a${n}`,
        channel: 'chat',
        message: { text: 'Hi, where is my order #12345?' },
      })
      ok(r, 201)
      const caseId = String(r.json().id)
      return { caseId, token: await agentToken(t.app, agentKey.privateKey, caseId) }
    }
    /** The console pages a viewer would open for the case (or the general ones), as HTML. */
    async function consolePages(caseId: string | undefined): Promise<string[]> {
      const urls = ['/console/queue', '/console/approvals', '/console/agents', '/console/audit']
      if (caseId !== undefined) urls.push(`/console/cases/${caseId}`)
      const pages: string[] = []
      for (const url of urls) {
        const r = await t.app.server.inject({ url, headers: { cookie: consoleCookie, accept: 'text/html' } })
        expect(r.statusCode, url).toBe(200)
        pages.push(r.body)
      }
      return pages
    }

    beforeAll(async () => {
      connector = await startConnector()
      process.env.BATON_SHOP_CONNECTOR_URL = connector.url
      // the shop, with room for every case the property has its operators take over
      workspace = mkdtempSync(join(tmpdir(), 'baton-shop-'))
      cpSync(SHOP, workspace, { recursive: true })
      const operators = join(workspace, 'operators.yaml')
      writeFileSync(operators, readFileSync(operators, 'utf8').replaceAll(/capacity: \d+/g, 'capacity: 1000'))
      t = await startTestApp({
        engine,
        workspace,
        webhookAllowPrivate: true,
        work: {
          webhookIntervalMs: 50,
          post: async (_url, _headers, body) => {
            webhookBodies.push(body)
            return 200
          },
        },
      })
      await t.app.server.listen({ port: 0, host: '127.0.0.1' })
      base = `http://127.0.0.1:${(t.app.server.server.address() as AddressInfo).port}`
      agentKey = await registerAgentKey(t.app, t.keys.admin)
      const admin = { kind: 'admin', id: 'test', roles: ['admin'] } as const
      grace = (await t.app.services.keys.create('operator', 'grace', admin, 'grace')).key
      ada = (await t.app.services.keys.create('operator', 'ada', admin, 'ada')).key
      ok(await call('POST', '/v1/webhooks', t.keys.admin, { url: 'http://127.0.0.1:9/hook', events: ['*'] }), 201)
      // the console, signed in as an admin (every page, every queue)
      const login = await t.app.server.inject({ url: '/console/login' })
      const csrf = /name="_csrf" value="([^"]+)"/.exec(login.body)?.[1] ?? ''
      const loginCookie = String(login.headers['set-cookie']).split(';')[0] ?? ''
      const signedIn = await t.app.server.inject({
        method: 'POST',
        url: '/console/login',
        headers: { cookie: loginCookie, 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ _csrf: csrf, key: t.keys.admin, next: '/console/queue' }).toString(),
      })
      expect(signedIn.statusCode, signedIn.body).toBe(303)
      const cookies = ([] as string[]).concat(signedIn.headers['set-cookie'] ?? [])
      consoleCookie = cookies.map((c) => c.split(';')[0]).join('; ')
      // the event stream, from the start, read for the whole suite
      void fetch(`${base}/v1/events?after=-1`, { headers: bearer(t.keys.admin), signal: stream.signal })
        .then(async (res) => {
          const decoder = new TextDecoder()
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            sse.raw += decoder.decode(chunk, { stream: true })
          }
        })
        .catch(() => undefined)
        .finally(() => {
          sse.done = true
        })
    }, 60_000)

    afterAll(async () => {
      stream.abort()
      await t?.close()
      if (workspace !== undefined) rmSync(workspace, { recursive: true, force: true })
      await connector?.close()
      delete process.env.BATON_SHOP_CONNECTOR_URL
    })

    it('stores, audits, answers and shows none of it', async () => {
      await fc.assert(
        fc.asyncProperty(request, async (r) => {
          const field = FIELDS[r.field]!
          const hidden = OBFUSCATIONS[r.how]!(r.secret, r.at)
          const text = [r.before, hidden, r.after].filter((x) => x !== '').join(' ')
          fc.pre(text.length <= field.max)
          n++
          planted.push(r.secret)
          const from = answers.length
          const caseId = await field.send({ t, n, call, agentCase, grace, ada }, text)
          const seen = [
            ...answers.slice(from),
            ...(await dumpStore(t)),
            ...(await exportAudit(t)),
            ...(await consolePages(caseId)),
          ]
          const hit = leakIn(seen, r.secret)
          expect(hit === undefined ? undefined : hit.slice(0, 400)).toBeUndefined()
        }),
        { numRuns: Number(process.env.REDACTION_RUNS ?? 40) },
      )
      expect(planted.length).toBeGreaterThanOrEqual(40)
    }, 240_000)

    it('emits none of it: every SSE and webhook event of the run, once delivered', async () => {
      const entries = await t.app.store.readAudit(0, await t.app.store.auditSize())
      const published = entries.filter((e) => toCloudEvent(e.entry, 'urn:x') !== null).length
      const count = (s: string) => s.split('\n').filter((l) => l.startsWith('data: ')).length
      await expect.poll(() => count(sse.raw), { timeout: 30_000, interval: 100 }).toBeGreaterThanOrEqual(published)
      await expect
        .poll(() => webhookBodies.length, { timeout: 30_000, interval: 100 })
        .toBeGreaterThanOrEqual(published)
      expect(published).toBeGreaterThan(10)
      for (const s of planted) {
        for (const where of [[sse.raw], webhookBodies]) {
          const hit = leakIn(where, s)
          expect(hit === undefined ? undefined : hit.slice(0, 400)).toBeUndefined()
        }
      }
    }, 60_000)
  })
}

import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestApp, type TestApp } from './support/app.js'
import { pgAvailable } from './support/pg.js'

/*
 * Every query parameter the README documents for the HTTP API (and the audit proofs), through a real listening
 * server: each one does what it says, and a malformed one is refused with VALIDATION_FAILED naming it.
 */

interface Item {
  readonly id: string
  readonly state: string
  readonly handler: { readonly kind: string; readonly queue?: string }
}

interface Ctx {
  readonly all: readonly Item[]
  readonly queue: string
  readonly claimed: string
}

type Row = readonly [
  name: string,
  path: (c: Ctx) => string,
  status: number,
  check?: (body: Record<string, unknown> & { items: never[] }, c: Ctx) => void,
]

const ids = (items: readonly { id?: string; caseId?: string }[]) => items.map((i) => i.id ?? i.caseId)

const ROWS: readonly Row[] = [
  // GET /v1/cases?state=&queue=&handler=&limit=&after=
  [
    'cases ?limit=2',
    () => '/v1/cases?limit=2',
    200,
    (b, c) => {
      expect(ids(b.items)).toEqual(ids(c.all.slice(0, 2)))
      expect(b.next).toBe(c.all[1]?.id)
    },
  ],
  [
    'cases ?limit=2&after=',
    (c) => `/v1/cases?limit=2&after=${c.all[1]?.id}`,
    200,
    (b, c) => expect(ids(b.items)).toEqual(ids(c.all.slice(2, 4))),
  ],
  [
    'cases ?state=open',
    () => '/v1/cases?state=open',
    200,
    (b, c) => expect(ids(b.items)).toEqual(ids(c.all.filter((i) => i.state === 'open'))),
  ],
  ['cases ?state=closed', () => '/v1/cases?state=closed', 200, (b) => expect(b.items).toEqual([])],
  [
    'cases ?handler=agent',
    () => '/v1/cases?handler=agent',
    200,
    (b, c) => expect(ids(b.items)).toEqual(ids(c.all.filter((i) => i.handler.kind === 'agent'))),
  ],
  [
    'cases ?handler=operator',
    () => '/v1/cases?handler=operator',
    200,
    (b, c) => expect(ids(b.items)).toEqual(ids(c.all.filter((i) => i.handler.kind === 'operator'))),
  ],
  [
    'cases ?handler=hybrid',
    () => '/v1/cases?handler=hybrid',
    200,
    (b, c) => expect(ids(b.items)).toEqual(ids(c.all.filter((i) => i.handler.kind === 'hybrid'))),
  ],
  [
    'cases ?queue=',
    (c) => `/v1/cases?queue=${c.queue}`,
    200,
    (b, c) => expect(ids(b.items)).toEqual(ids(c.all.filter((i) => i.handler.queue === c.queue))),
  ],
  [
    'cases ?handler=&queue=&limit=1',
    (c) => `/v1/cases?handler=operator&queue=${c.queue}&limit=1`,
    200,
    (b, c) =>
      expect(ids(b.items)).toEqual(
        ids(c.all.filter((i) => i.handler.kind === 'operator' && i.handler.queue === c.queue).slice(0, 1)),
      ),
  ],
  ['cases ?limit=0', () => '/v1/cases?limit=0', 400],
  ['cases ?limit=501', () => '/v1/cases?limit=501', 400],
  ['cases ?limit=two', () => '/v1/cases?limit=two', 400],
  ['cases ?limit=2.5', () => '/v1/cases?limit=2.5', 400],
  ['cases ?limit= (empty)', () => '/v1/cases?limit=', 400],
  ['cases ?limit=2&limit=3', () => '/v1/cases?limit=2&limit=3', 400],
  // an integer is decimal digits: not what Number() also reads (exponent, hex, binary, sign, spaces)
  ['cases ?limit=1e2', () => '/v1/cases?limit=1e2', 400],
  ['cases ?limit=0x10', () => '/v1/cases?limit=0x10', 400],
  ['cases ?limit=0b11', () => '/v1/cases?limit=0b11', 400],
  ['cases ?limit=+5', () => '/v1/cases?limit=%2B5', 400],
  ['cases ?limit=%205', () => '/v1/cases?limit=%205', 400],
  [
    'cases ?limit= (a full last page has no next)',
    (c) => `/v1/cases?limit=${c.all.length}`,
    200,
    (b, c) => {
      expect(ids(b.items)).toEqual(ids(c.all))
      expect(b.next).toBeNull()
    },
  ],
  ['cases ?state=pending', () => '/v1/cases?state=pending', 400],
  ['cases ?handler=robot', () => '/v1/cases?handler=robot', 400],
  ['cases ?page=2 (unknown)', () => '/v1/cases?page=2', 400],

  // GET /v1/queues/{id}/cases?limit=&assigned=&operatorId=
  [
    'queue cases (waiting only by default)',
    (c) => `/v1/queues/${c.queue}/cases`,
    200,
    (b, c) => {
      expect(b.items.length).toBeGreaterThanOrEqual(2)
      expect(ids(b.items)).not.toContain(c.claimed)
    },
  ],
  ['queue cases ?limit=1', (c) => `/v1/queues/${c.queue}/cases?limit=1`, 200, (b) => expect(b.items).toHaveLength(1)],
  [
    'queue cases ?assigned=true',
    (c) => `/v1/queues/${c.queue}/cases?assigned=true`,
    200,
    (b, c) => expect(ids(b.items)).toContain(c.claimed),
  ],
  [
    'queue cases ?assigned=false',
    (c) => `/v1/queues/${c.queue}/cases?assigned=false`,
    200,
    (b, c) => expect(ids(b.items)).not.toContain(c.claimed),
  ],
  [
    'queue cases ?operatorId=',
    (c) => `/v1/queues/${c.queue}/cases?operatorId=linus`,
    200,
    (b, c) => expect(ids(b.items)).toEqual([c.claimed]),
  ],
  [
    'queue cases ?operatorId= (someone else)',
    (c) => `/v1/queues/${c.queue}/cases?operatorId=ada`,
    200,
    (b) => expect(b.items).toEqual([]),
  ],
  ['queue cases ?limit=2&assigned=true', (c) => `/v1/queues/${c.queue}/cases?limit=2&assigned=true`, 200],
  ['queue cases ?assigned=yes', (c) => `/v1/queues/${c.queue}/cases?assigned=yes`, 400],
  ['queue cases ?limit=0', (c) => `/v1/queues/${c.queue}/cases?limit=0`, 400],
  ['queue cases ?limit=many', (c) => `/v1/queues/${c.queue}/cases?limit=many`, 400],
  ['queue cases ?limit=1e1', (c) => `/v1/queues/${c.queue}/cases?limit=1e1`, 400],
  ['queue cases ?limit=0x2', (c) => `/v1/queues/${c.queue}/cases?limit=0x2`, 400],

  // GET /v1/approvals?state=&limit=
  [
    'approvals ?state=pending',
    () => '/v1/approvals?state=pending',
    200,
    (b) => {
      expect(b.items).toHaveLength(2)
      for (const a of b.items as { state: string }[]) expect(a.state).toBe('pending')
    },
  ],
  ['approvals ?state=approved', () => '/v1/approvals?state=approved', 200, (b) => expect(b.items).toEqual([])],
  ['approvals ?limit=1', () => '/v1/approvals?limit=1', 200, (b) => expect(b.items).toHaveLength(1)],
  ['approvals ?state=maybe', () => '/v1/approvals?state=maybe', 400],
  ['approvals ?limit=0', () => '/v1/approvals?limit=0', 400],
  ['approvals ?limit=1e1', () => '/v1/approvals?limit=1e1', 400],

  // GET /v1/reports/privileges?days=&from=&to=
  [
    'privileges ?days=7',
    () => '/v1/reports/privileges?days=7',
    200,
    (b) => expect(Date.parse(b.to as string) - Date.parse(b.from as string)).toBe(7 * 86_400_000),
  ],
  [
    'privileges ?from=&to=',
    () => '/v1/reports/privileges?from=2026-01-01T00:00:00.000Z&to=2026-02-01T00:00:00.000Z',
    200,
    (b) => expect(b).toMatchObject({ from: '2026-01-01T00:00:00.000Z', to: '2026-02-01T00:00:00.000Z' }),
  ],
  ['privileges ?days=0', () => '/v1/reports/privileges?days=0', 400],
  ['privileges ?from=yesterday', () => '/v1/reports/privileges?from=yesterday', 400],

  // GET /v1/audit/proofs/inclusion?seq=&size= and /consistency?from=&to=
  [
    'inclusion ?seq=',
    () => '/v1/audit/proofs/inclusion?seq=1',
    200,
    (b) => expect(b).toMatchObject({ seq: 1, leafIndex: 1 }),
  ],
  [
    'inclusion ?seq=&size=',
    () => '/v1/audit/proofs/inclusion?seq=0&size=2',
    200,
    (b) => expect(b).toMatchObject({ seq: 0, treeSize: 2 }),
  ],
  ['inclusion ?seq=one', () => '/v1/audit/proofs/inclusion?seq=one', 400],
  ['inclusion ?seq=0x1', () => '/v1/audit/proofs/inclusion?seq=0x1', 400],
  ['consistency ?from=', () => '/v1/audit/proofs/consistency?from=1', 200, (b) => expect(b).toMatchObject({ from: 1 })],
  [
    'consistency ?from=&to=',
    () => '/v1/audit/proofs/consistency?from=1&to=2',
    200,
    (b) => expect(b).toMatchObject({ from: 1, to: 2 }),
  ],
  ['consistency ?from=-1', () => '/v1/audit/proofs/consistency?from=-1', 400],
]

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`documented query parameters over HTTP on ${engine}`, () => {
    let t: TestApp
    let base: string
    let ctx: Ctx
    const get = async (path: string, key = t.keys.admin) => {
      const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } })
      return {
        status: r.status,
        type: r.headers.get('content-type'),
        body: (await r.json()) as Record<string, unknown>,
      }
    }
    const post = async (path: string, key: string, body: unknown, form = false) => {
      const r = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: {
          ...(key === '' ? {} : { authorization: `Bearer ${key}` }),
          'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json',
        },
        body: form ? new URLSearchParams(body as Record<string, string>).toString() : JSON.stringify(body),
      })
      return { status: r.status, body: (await r.json()) as Record<string, unknown> }
    }

    beforeAll(async () => {
      t = await startTestApp({ engine, auditHeadIntervalMs: 3_600_000 })
      await t.app.server.listen({ port: 0, host: '127.0.0.1' })
      base = `http://127.0.0.1:${(t.app.server.server.address() as AddressInfo).port}`
      const texts = [
        'Hi, where is my order #12345? It is late.',
        'I want to speak to a human right now please',
        'I was charged twice for my order, I want my money back',
        'Where is my parcel? Tracking number 99881 shows nothing',
        'Can I talk to a real person? This is not working',
        'Please give me a refund, I was double charged',
        'I need a human agent, a real person please',
      ]
      for (const [i, text] of texts.entries()) {
        const r = await post('/v1/cases', t.keys.service, { customer: `cu_q${i}`, channel: 'chat', message: { text } })
        expect(r.status).toBe(201)
      }
      const all = (await get('/v1/cases')).body.items as Item[]
      expect(all).toHaveLength(texts.length)
      // The fixture has each handler kind, so every filter above is tested against something it must leave out.
      expect(new Set(all.map((i) => i.handler.kind))).toEqual(new Set(['agent', 'operator', 'hybrid']))
      const queue = 'general'
      const inQueue = all.filter((i) => i.handler.kind === 'operator' && i.handler.queue === queue)
      expect(inQueue.length).toBeGreaterThanOrEqual(3)
      const linus = await post('/v1/keys', t.keys.admin, { role: 'operator', name: 'linus', operatorId: 'linus' })
      const claimed = inQueue[0]!.id
      expect((await post(`/v1/cases/${claimed}/claim`, linus.body.key as string, {})).status).toBe(200)

      // Two pending approvals: the agent asks for two medium refunds on a case it holds.
      const secret = (await post('/v1/agents/shop-assistant/credentials', t.keys.admin, { kind: 'secret' })).body.secret
      const agentCase = all.find((i) => i.handler.kind === 'agent')!.id
      const token = await post(
        '/v1/oauth/token',
        '',
        { grant_type: 'client_credentials', client_id: 'shop-assistant', client_secret: secret, case_id: agentCase },
        true,
      )
      expect(token.status).toBe(200)
      for (const order of ['A-1', 'A-2']) {
        const asked = await post(`/v1/cases/${agentCase}/actions`, token.body.access_token as string, {
          tool: 'refund',
          params: { order_id: order, amount: 200, currency: 'EUR' },
        })
        expect(asked.status).toBe(202)
      }
      await t.app.audit.sequenceOnce()
      ctx = { all, queue, claimed }
    })
    afterAll(async () => {
      await t?.close()
    })

    it.each(ROWS.map((r) => [r[0], r] as const))('%s', async (_name, [, path, status, check]) => {
      const r = await get(path(ctx))
      expect(r.status, JSON.stringify(r.body)).toBe(status)
      if (status === 400) {
        expect(r.type).toMatch(/^application\/problem\+json/)
        expect(r.body.code).toBe('VALIDATION_FAILED')
        // the problem names the parameter that was refused
        const name = /[?&]([a-zA-Z]+)=[^&]*$/.exec(path(ctx))?.[1]
        expect((r.body.errors as { field: string }[]).map((e) => e.field)).toContain(`querystring.${name}`)
      }
      check?.(r.body as never, ctx)
    })

    it.each([1, 2, 7, 8])(
      'pages through every case with limit=%i and after, each once, in id order, with no empty last page',
      async (limit) => {
        const seen: string[] = []
        let next: string | null = null
        let pages = 0
        do {
          const r = await get(`/v1/cases?limit=${limit}${next === null ? '' : `&after=${encodeURIComponent(next)}`}`)
          expect(r.status).toBe(200)
          const items = r.body.items as Item[]
          expect(items.length).toBeLessThanOrEqual(limit)
          expect(items.length).toBeGreaterThan(0)
          seen.push(...items.map((i) => i.id))
          next = r.body.next as string | null
          pages++
        } while (next !== null && pages < 20)
        expect(seen).toEqual(ctx.all.map((i) => i.id))
        // `next` only when a page follows: 7 cases are 7 pages of 1, 4 of 2, 1 of 7 or of 8
        expect(pages).toBe(Math.ceil(ctx.all.length / limit))
      },
    )

    it('still refuses a JSON body with a wrong type (bodies are not coerced)', async () => {
      const r = await post('/v1/cases', t.keys.service, {
        customer: 'cu_types',
        channel: 'chat',
        message: { text: 'hello' },
        signals: { intent_confidence: '0.9' },
      })
      expect(r.status).toBe(400)
      expect(JSON.stringify(r.body)).toContain('intent_confidence')
      const claim = await post(`/v1/cases/${ctx.claimed}/claim`, t.keys.admin, { operatorId: 42 })
      expect(claim.status).toBe(400)
    })

    it('replays server-sent events with ?after= and filters them with ?types=', async () => {
      const abort = new AbortController()
      const r = await fetch(`${base}/v1/events?after=-1&types=case.opened`, {
        headers: { authorization: `Bearer ${t.keys.admin}` },
        signal: abort.signal,
      })
      expect(r.status).toBe(200)
      const reader = r.body!.getReader()
      let text = ''
      while ((text.match(/^event: /gm) ?? []).length < ctx.all.length) {
        const { value, done } = await reader.read()
        if (done) break
        text += new TextDecoder().decode(value)
      }
      abort.abort()
      const types = [...text.matchAll(/^event: (.+)$/gm)].map((m) => m[1])
      expect(types).toEqual(ctx.all.map(() => 'dev.baton.case.opened'))
      const bad = await get('/v1/events?after=soon')
      expect(bad.status).toBe(400)
      expect((bad.body.errors as { field: string }[]).map((e) => e.field)).toEqual(['querystring.after'])
    })
  })
}

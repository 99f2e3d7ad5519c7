import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, startTestApp, type TestApp } from './support/app.js'

/** Bodies near the valid shape: the generator keeps most fields plausible so validation is exercised deeply. */
const text = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.constantFrom('where is my order?', 'I want to change my email', 'speak to a human', '', 'x'.repeat(16_001)),
  fc.string({ unit: 'binary', maxLength: 100 }),
)
const scalar = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null))
const signals = fc.dictionary(
  fc.oneof(fc.constantFrom('intent', 'intent_confidence', 'agent_confidence'), fc.string({ maxLength: 12 })),
  scalar,
  { maxKeys: 4 },
)
const body = fc.oneof(
  fc.record(
    {
      customer: fc.oneof(fc.string({ maxLength: 140 }), fc.record({ id: fc.string(), tier: scalar }), scalar),
      channel: fc.oneof(fc.constantFrom('chat', 'email', 'web'), scalar),
      subject: fc.oneof(fc.string({ maxLength: 600 }), scalar),
      message: fc.oneof(fc.record({ text }), fc.record({ text: scalar }), scalar, fc.dictionary(fc.string(), scalar)),
      signals: fc.oneof(signals, scalar),
    },
    { requiredKeys: [] },
  ),
  // Valid bodies (for one route or the other) in every run, so both sides of validation are reached whatever the seed.
  fc.record({ message: fc.record({ text: fc.string({ minLength: 1, maxLength: 200 }) }) }),
  fc.record({
    customer: fc.string({ minLength: 1, maxLength: 40 }),
    channel: fc.constantFrom('chat', 'email', 'web'),
    message: fc.record({ text: fc.string({ minLength: 1, maxLength: 200 }) }),
  }),
  fc.anything(),
  fc.json().map((j) => ({ raw: j })),
)

describe('the server answers every generated body with 2xx or 4xx and keeps serving', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await startTestApp()
  })
  afterAll(async () => {
    await t?.close()
  })

  it('survives 1,200 generated requests to the intake routes', async () => {
    const seed = await t.app.server.inject({
      method: 'POST',
      url: '/v1/cases',
      headers: bearer(t.keys.service),
      payload: { customer: 'cu_fuzz', channel: 'chat', message: { text: 'hello' } },
    })
    expect(seed.statusCode).toBe(201)
    const caseId = seed.json().id as string
    const statuses = new Map<number, number>()
    await fc.assert(
      fc.asyncProperty(body, fc.constantFrom('/v1/cases', `/v1/cases/${caseId}/messages`), async (b, url) => {
        const payload =
          typeof b === 'object' && b !== null && 'raw' in b && typeof (b as { raw: unknown }).raw === 'string'
            ? (b as { raw: string }).raw
            : (JSON.stringify(b) ?? 'null')
        const r = await t.app.server.inject({
          method: 'POST',
          url,
          headers: { ...bearer(t.keys.service), 'content-type': 'application/json' },
          payload,
        })
        statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1)
        expect(r.statusCode, r.body).toBeGreaterThanOrEqual(200)
        expect(r.statusCode, r.body).toBeLessThan(500)
        if (r.statusCode >= 400) {
          expect(r.headers['content-type']).toMatch(/application\/problem\+json/)
          expect(r.json().code).toMatch(/^[A-Z_]+$/)
        }
      }),
      { numRuns: 1200 },
    )
    // The generator reached both sides of validation.
    expect([...statuses.keys()].some((s) => s < 300)).toBe(true)
    expect(statuses.get(400) ?? 0).toBeGreaterThan(100)
    expect((await t.app.server.inject({ url: '/healthz' })).statusCode).toBe(200)
  })
})

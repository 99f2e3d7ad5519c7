import { describe, expect, it } from 'vitest'
import type { AuditEntryBody } from '../audit/entry.js'
import { RefusalLog } from './refusals.js'

function harness(o: { perSecond: number; burst: number; failSummaries?: number }) {
  let t = Date.parse('2026-11-26T12:00:00Z')
  const log: AuditEntryBody[] = []
  let failures = o.failSummaries ?? 0
  const refusals = new RefusalLog(
    async (entries) => {
      if (entries[0]?.type === 'access.refused_suppressed' && failures > 0) {
        failures--
        throw new Error('store down')
      }
      log.push(...entries)
    },
    { perSecond: o.perSecond, burst: o.burst, summaryEveryMs: 60_000, now: () => new Date(t), onError: () => {} },
  )
  const refuse = (route = 'POST /v1/cases/:id/actions', code = 'CREDENTIAL_INVALID') =>
    refusals.record({
      type: 'access.refused',
      at: new Date(t).toISOString(),
      actor: { kind: 'agent', id: 'unknown' },
      data: { code, reason: 'x', route },
    })
  return { refusals, log, refuse, advance: (ms: number) => (t += ms) }
}

const summaries = (log: AuditEntryBody[]) =>
  log.filter((e) => e.type === 'access.refused_suppressed').map((e) => e.data as Record<string, unknown>)

describe('refusal budget', () => {
  it('audits a burst one by one, counts the rest into one summary, and refills with time', async () => {
    const h = harness({ perSecond: 2, burst: 3 })
    for (let i = 0; i < 10; i++) await h.refuse()
    expect(h.log.map((e) => e.type)).toEqual(['access.refused', 'access.refused', 'access.refused'])
    h.advance(1000) // two more tokens
    for (let i = 0; i < 3; i++) await h.refuse('POST /v1/oauth/token', 'UNAUTHENTICATED')
    expect(h.log.filter((e) => e.type === 'access.refused')).toHaveLength(5)
    await h.refusals.stop()
    const [s] = summaries(h.log)
    expect(s).toMatchObject({
      count: 8,
      byRoute: { 'POST /v1/cases/:id/actions': 7, 'POST /v1/oauth/token': 1 },
      byCode: { CREDENTIAL_INVALID: 7, UNAUTHENTICATED: 1 },
      from: '2026-11-26T12:00:00.000Z',
      to: '2026-11-26T12:00:01.000Z',
      budget: { perSecond: 2, burst: 3 },
    })
    // nothing counted: nothing more written
    await h.refusals.stop()
    expect(summaries(h.log)).toHaveLength(1)
  })

  it('keeps the count when a summary cannot be written, and writes it with the next one', async () => {
    const h = harness({ perSecond: 1, burst: 1, failSummaries: 1 })
    for (let i = 0; i < 4; i++) await h.refuse()
    await expect(h.refusals.flush()).rejects.toThrow('store down')
    await h.refuse()
    await h.refusals.stop()
    expect(summaries(h.log).map((s) => s.count)).toEqual([4])
    expect(h.log.filter((e) => e.type === 'access.refused')).toHaveLength(1)
  })

  it('names at most 32 routes in a summary and counts the others together', async () => {
    const h = harness({ perSecond: 1, burst: 1 })
    for (let i = 0; i < 41; i++) await h.refuse(`GET /r${i}`)
    await h.refusals.stop()
    const byRoute = summaries(h.log)[0]?.byRoute as Record<string, number>
    expect(Object.keys(byRoute)).toHaveLength(33)
    expect(byRoute.other).toBe(8)
    expect(Object.values(byRoute).reduce((a, b) => a + b, 0)).toBe(40)
  })
})

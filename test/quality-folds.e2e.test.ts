import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { configFrom } from '../src/config.js'
import type { QualityReport } from '../src/quality/figures.js'
import { decodeFold, FOLD_VERSION } from '../src/quality/fold-codec.js'
import { bearer, startTestApp, type TestApp } from './support/app.js'
import { pgAvailable } from './support/pg.js'

/*
 * The server's fold keeper (BATON_QUALITY_FOLDS_INTERVAL_MS): without any read of the quality figures, the cases'
 * folds are made and kept current in the background, and GET /v1/quality over them answers what the events say.
 */

const ORDER = { intent: 'order_status', intent_confidence: 0.9 }

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`the fold keeper on ${engine}`, () => {
    let t: TestApp
    const window = { since: '1970-01-01T00:00:00.000Z', until: '9999-01-01T00:00:00.000Z' }
    const stale = async () => {
      const out: string[] = []
      for await (const b of t.app.store.scanCaseFolds(window, FOLD_VERSION, 100))
        for (const r of b) if (r.state === null) out.push(r.caseId)
      return out
    }
    const keptFold = async (id: string) => {
      for await (const b of t.app.store.scanCaseFolds(window, FOLD_VERSION, 100))
        for (const r of b) if (r.caseId === id && r.state !== null) return decodeFold(id, r.state)
      throw new Error(`no current fold of ${id}`)
    }
    const settled = async () => {
      for (let i = 0; i < 100; i++) {
        if ((await stale()).length === 0) return true
        await new Promise((r) => setTimeout(r, 50))
      }
      return false
    }
    const post = async (url: string, payload: object) => {
      const r = await t.app.server.inject({ method: 'POST', url, headers: bearer(t.keys.service), payload })
      expect(r.statusCode, r.body).toBeLessThan(300)
      return r.json() as { id: string }
    }

    beforeAll(async () => {
      t = await startTestApp({ engine, qualityFoldsIntervalMs: 100 })
    })
    afterAll(async () => {
      await t?.close()
    })

    it('folds new cases and a changed case again, with nobody reading the figures', async () => {
      const a = await post('/v1/cases', {
        customer: 'cu_1',
        channel: 'chat',
        message: { text: 'Where is my order 1?' },
        signals: ORDER,
      })
      await post('/v1/cases', {
        customer: 'cu_2',
        channel: 'chat',
        message: { text: 'Where is my order 2?' },
        signals: ORDER,
      })
      expect(await settled()).toBe(true)
      expect((await keptFold(a.id)).escalations).toEqual([])
      await post(`/v1/cases/${a.id}/messages`, { message: { text: 'let me talk to a real person' } })
      expect(await settled()).toBe(true)
      // folded again through the new message: the case went to a person
      expect((await keptFold(a.id)).escalations).toMatchObject([{ atIntake: false, trigger: 'human_request' }])
      const r = await t.app.server.inject({ method: 'GET', url: '/v1/quality?since=1d', headers: bearer(t.keys.admin) })
      const q = r.json() as QualityReport
      expect(q.cases.opened).toBe(2)
      expect(q.escalations).toMatchObject({ cases: 1, fromAgent: 1 })
    })
  })
}

describe('BATON_QUALITY_FOLDS_INTERVAL_MS', () => {
  it('is 5 minutes by default, 0 turns the keeper off, and a bad value is refused naming it', () => {
    expect(configFrom({}).qualityFoldsIntervalMs).toBe(300_000)
    expect(configFrom({ BATON_QUALITY_FOLDS_INTERVAL_MS: '0' }).qualityFoldsIntervalMs).toBe(0)
    expect(() => configFrom({ BATON_QUALITY_FOLDS_INTERVAL_MS: 'soon' })).toThrow(/BATON_QUALITY_FOLDS_INTERVAL_MS/)
    expect(() => configFrom({ BATON_QUALITY_FOLDS_INTERVAL_MS: '-1' })).toThrow(/BATON_QUALITY_FOLDS_INTERVAL_MS/)
  })
})

import { describe, expect, it } from 'vitest'
import { BatonError } from '../errors.js'
import { parseArrivalsCsv } from './csv.js'
import { erlangC, erlangMeanWait } from './erlang.js'
import { hourOfWeek, modelFromCounts, parseOperators, poolsFromOperators } from './estimate.js'
import { fewestOperators, type QueueModel, simulate } from './simulate.js'

const flat = (perHour: number) => new Array<number>(168).fill(perHour)

describe('the simulation against Erlang C (M/M/c)', () => {
  // λ = 40 cases/h, mean handle 6 min (μ = 10/h), c = 5: ρ = 0.8, Wq = C(5, 4) / (cμ − λ) ≈ 199.5 s
  const lambda = 40
  const mu = 10
  const c = 5
  const q: QueueModel = { id: 'q', slaSeconds: 300, arrivalsPerHour: flat(lambda), meanHandleSeconds: 3600 / mu }

  it('gives the closed form mean wait within 2% (8 seeded runs of a year, ~2.8 M cases)', () => {
    const expected = erlangMeanWait(c, lambda, mu) * 3600
    expect(expected).toBeCloseTo(199.5, 0)
    let sum = 0
    let served = 0
    for (let seed = 1; seed <= 8; seed++) {
      const r = simulate({ queues: [q], pools: [{ id: 'p', count: c, queues: ['q'] }], demand: 1, days: 365, seed })
      const x = r.queues[0]!
      sum += x.waitS.mean! * x.served
      served += x.served
      expect(x.utilisation).toBeCloseTo(lambda / (c * mu), 1)
    }
    expect(Math.abs(sum / served - expected) / expected).toBeLessThan(0.02)
  }, 30_000)

  it('Erlang C matches a textbook value', () => {
    // c = 2, a = 1 (ρ = 0.5): C = 1/3
    expect(erlangC(2, 1, 1)).toBeCloseTo(1 / 3, 10)
    expect(erlangMeanWait(2, 3, 1)).toBe(Number.POSITIVE_INFINITY)
  })

  it('is deterministic: the same seed gives the same bytes, another seed another run', () => {
    const input = { queues: [q], pools: [{ id: 'p', count: c, queues: ['q'] }], demand: 1.5, days: 7 }
    const a = JSON.stringify(simulate({ ...input, seed: 42 }))
    expect(JSON.stringify(simulate({ ...input, seed: 42 }))).toBe(a)
    expect(JSON.stringify(simulate({ ...input, seed: 43 }))).not.toBe(a)
  })

  it('scales arrivals with the demand and follows the hour of the week', () => {
    const busyMonday = { ...q, arrivalsPerHour: flat(0).map((_, h) => (h < 24 ? 100 : 0)) }
    const r = simulate({
      queues: [busyMonday],
      pools: [{ id: 'p', count: 20, queues: ['q'] }],
      demand: 2,
      days: 7,
      seed: 1,
    })
    const x = r.queues[0]!
    expect(x.arrivals).toBeGreaterThan(4400) // ≈ 24 h × 200
    expect(x.arrivals).toBeLessThan(5200)
    expect(x.arrivalsByHour.slice(24).every((n) => n === 0)).toBe(true)
  })

  it('finds the fewest operators that hold the SLA: at least the offered load, and enough', () => {
    const n = fewestOperators(q, { demand: 1, days: 28, seed: 1, target: 0.8 })
    expect(n).not.toBeNull()
    expect(n!).toBeGreaterThanOrEqual(5) // 4 Erlangs offered
    const at = (k: number) =>
      simulate({ queues: [q], pools: [{ id: 'p', count: k, queues: ['q'] }], demand: 1, days: 28, seed: 1 }).queues[0]!
    expect(at(n!).slaBreachRate!).toBeLessThanOrEqual(0.2)
    expect(at(n! - 1).slaBreachRate!).toBeGreaterThan(0.2)
  })

  it('lets shared operators take the waiting case nearest its SLA across their queues', () => {
    const urgent: QueueModel = { id: 'urgent', slaSeconds: 60, arrivalsPerHour: flat(20), meanHandleSeconds: 240 }
    const slow: QueueModel = { id: 'slow', slaSeconds: 3600, arrivalsPerHour: flat(20), meanHandleSeconds: 240 }
    const r = simulate({
      queues: [urgent, slow],
      pools: [{ id: 'both', count: 3, queues: ['urgent', 'slow'] }],
      demand: 1,
      days: 7,
      seed: 3,
    })
    expect(r.queues[0]!.waitS.mean!).toBeLessThan(r.queues[1]!.waitS.mean!)
    expect(r.pools[0]!.utilisation!).toBeCloseTo((40 * 240) / 3600 / 3, 1)
  })
})

describe('the model', () => {
  it('numbers hours of the week from Monday 00:00 UTC', () => {
    expect(hourOfWeek(Date.parse('2026-11-02T00:30:00Z'))).toBe(0) // a Monday
    expect(hourOfWeek(Date.parse('2026-11-08T23:59:00Z'))).toBe(167) // the Sunday after
  })

  it('measures arrivals per hour of the week over the window', () => {
    const counts = new Map([
      ['general', { byHour: flat(0).map((_, h) => (h === 9 ? 8 : 0)), handled: [300_000, 900_000] }],
    ])
    // two weeks: each hour of the week occurs twice
    const [m] = modelFromCounts(
      counts,
      { since: Date.parse('2026-11-02T00:00:00Z'), until: Date.parse('2026-11-16T00:00:00Z') },
      () => 1800,
    )
    expect(m!.arrivalsPerHour[9]).toBe(4)
    expect(m!.meanHandleSeconds).toBe(600)
  })

  it('groups operators by the queues their skills let them serve, or takes them per queue', () => {
    const queues = [
      { id: 'general', skills: ['general'] },
      { id: 'billing', skills: ['billing'] },
    ]
    expect(
      poolsFromOperators(
        [
          { id: 'a', skills: ['general', 'billing'] },
          { id: 'b', skills: ['general', 'billing'] },
          { id: 'c', skills: ['general'] },
        ],
        queues,
      ),
    ).toEqual([
      { id: 'general+billing', count: 2, queues: ['general', 'billing'] },
      { id: 'general', count: 1, queues: ['general'] },
    ])
    expect(parseOperators('general=12,billing=4', ['general', 'billing'])).toEqual([
      { id: 'general', count: 12, queues: ['general'] },
      { id: 'billing', count: 4, queues: ['billing'] },
    ])
    for (const bad of ['general', 'general=x', 'nope=3', 'general=1,general=2']) {
      expect(() => parseOperators(bad, ['general', 'billing']), bad).toThrow(/--operators/)
    }
  })

  it('reads a CSV of arrivals, and names the row and column of a bad value', () => {
    const sla = new Map([
      ['general', 1800],
      ['billing', 900],
    ])
    const good = 'queue,hour_of_week,arrivals_per_hour,mean_handle_s\ngeneral,0,12,300\ngeneral,1,6,500\nbilling,9,3,\n'
    const models = parseArrivalsCsv(good, 'a.csv', sla)
    expect(models.map((m) => [m.id, m.arrivalsPerHour[0], m.arrivalsPerHour[1], m.meanHandleSeconds])).toEqual([
      ['general', 12, 6, 400],
      ['billing', 0, 0, 600],
    ])
    const error = (text: string) => {
      try {
        parseArrivalsCsv(text, 'a.csv', sla)
      } catch (e) {
        expect(e).toBeInstanceOf(BatonError)
        return (e as BatonError).message
      }
      throw new Error('no error')
    }
    const head = 'queue,hour_of_week,arrivals_per_hour,mean_handle_s\n'
    expect(error(`${head}general,0,12,300\ngeneral,3,lots,300\n`)).toMatch(/^a\.csv: row 3, column arrivals_per_hour: /)
    expect(error(`${head}general,168,1,300\n`)).toMatch(/^a\.csv: row 2, column hour_of_week: /)
    expect(error(`${head}sales,1,1,300\n`)).toMatch(/^a\.csv: row 2, column queue: no queue 'sales'/)
    expect(error(`${head}general,1,1,-5\n`)).toMatch(/^a\.csv: row 2, column mean_handle_s: /)
    expect(error(`${head}general,1,1\n`)).toMatch(/^a\.csv: row 2, column queue: expected 4 columns/)
    expect(error('q,h\n')).toMatch(/^a\.csv: row 1, column /)
  })
})

import { describe, expect, it } from 'vitest'
import { eligibleOperators, priorityRank, slaDeadline, slaLeftSeconds } from './priority.js'

describe('priorityRank', () => {
  const due = Date.UTC(2026, 10, 1, 12, 30)
  it('given equal deadlines, when ranked, then enterprise before premium before standard, and risk pulls forward', () => {
    const r = (tier: string, risky = false, breached = false) => priorityRank({ slaDueMs: due, tier, risky, breached })
    expect(r('enterprise')).toBeLessThan(r('premium'))
    expect(r('premium')).toBeLessThan(r('standard'))
    expect(r('standard', true)).toBeLessThan(r('standard'))
    expect(r('free', false, true)).toBeLessThan(r('enterprise', true))
  })
  it('given an SLA, when the deadline is computed, then time left counts down and goes negative once breached', () => {
    const d = slaDeadline('2026-11-01T12:00:00.000Z', 900)
    expect(d).toBe('2026-11-01T12:15:00.000Z')
    expect(slaLeftSeconds(d, new Date('2026-11-01T12:10:00.000Z'))).toBe(300)
    expect(slaLeftSeconds(d, new Date('2026-11-01T12:16:00.000Z'))).toBe(-60)
  })
  it('given operators, when a queue needs skills and the case a language, then only those who fit are eligible', () => {
    const ops = [
      { id: 'a', skills: ['billing'], languages: ['en'], capacity: 1 },
      { id: 'b', skills: ['billing', 'general'], languages: ['de'], capacity: 1 },
      { id: 'c', skills: ['general'], languages: ['en'], capacity: 1 },
    ]
    expect(eligibleOperators(ops, ['billing'], 'en').map((o) => o.id)).toEqual(['a'])
    expect(eligibleOperators(ops, ['billing'], 'und').map((o) => o.id)).toEqual(['a', 'b'])
  })
})

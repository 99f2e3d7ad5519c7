import { describe, expect, it } from 'vitest'
import { BatonError } from '../errors.js'
import {
  binomialCdf,
  type CalibrationRow,
  calibrateThresholds,
  clopperPearsonUpper,
  messagesNeeded,
} from './calibrate.js'
import { prng } from './train.js'

const OPTS = { maxRate: 0.05, confidence: 0.9, classes: ['human'], seed: 1 }

/** n human messages whose human mass is u^power, u uniform: R(t) = P(mass < t) = t^(1/power), known exactly. */
function draw(seed: number, n: number, power: number): CalibrationRow[] {
  const random = prng(seed)
  const rows: CalibrationRow[] = []
  for (let i = 0; i < n; i++) rows.push({ cls: 'human', mass: { human: random() ** power }, aiEligible: true })
  for (let i = 0; i < 50; i++) rows.push({ cls: 'ai', mass: { human: random() * 0.2 }, aiEligible: true })
  return rows
}

describe('calibrateThresholds (Learn then Test, Clopper–Pearson)', () => {
  it('the binomial pieces agree with known values', () => {
    expect(binomialCdf(0, 10, 0.1)).toBeCloseTo(0.9 ** 10, 12)
    expect(binomialCdf(2, 20, 0.3)).toBeCloseTo(0.0354831, 6)
    // k = 0: the upper limit solves (1 − p)^n = δ
    expect(clopperPearsonUpper(0, 100, 0.9)).toBeCloseTo(1 - 0.1 ** (1 / 100), 9)
    expect(clopperPearsonUpper(5, 5, 0.9)).toBe(1)
    expect(messagesNeeded(0.005, 0.9)).toBe(460)
  })

  it('holds its bound in simulation: over 400 seeded draws the true risk exceeds α in at most δ of them', () => {
    for (const power of [1, 3]) {
      let violations = 0
      const draws = 400
      for (let s = 0; s < draws; s++) {
        const r = calibrateThresholds(draw(1000 + s, 300, power), OPTS)
        const t = r.classes.human!.threshold
        const trueRisk = t ** (1 / power)
        expect(r.classes.human!.bound).toBeLessThanOrEqual(OPTS.maxRate)
        if (trueRisk > OPTS.maxRate) violations++
      }
      // δ = 0.1; three binomial standard deviations of slack over 400 draws
      expect(violations / draws).toBeLessThanOrEqual(0.1 + 3 * Math.sqrt((0.1 * 0.9) / draws))
      // and it is not vacuous: most draws pick a threshold close to the largest safe one (t = α^power)
      expect(violations).toBeGreaterThan(0)
    }
  })

  it('is deterministic for a seed', () => {
    const rows = draw(7, 300, 2)
    expect(calibrateThresholds(rows, OPTS)).toEqual(calibrateThresholds(rows, OPTS))
    expect(calibrateThresholds(rows, { ...OPTS, seed: 2 }).classes).toEqual(calibrateThresholds(rows, OPTS).classes)
  })

  it('refuses a rate outside (0, 1) and a split too small to give the bound', () => {
    const code = (f: () => unknown) => {
      try {
        f()
      } catch (e) {
        return e instanceof BatonError ? e.code : String(e)
      }
      return 'no error'
    }
    expect(code(() => calibrateThresholds(draw(1, 300, 1), { ...OPTS, maxRate: 0 }))).toBe('VALIDATION_FAILED')
    expect(code(() => calibrateThresholds(draw(1, 300, 1), { ...OPTS, maxRate: 1.5 }))).toBe('VALIDATION_FAILED')
    expect(code(() => calibrateThresholds(draw(1, 300, 1), { ...OPTS, confidence: 1 }))).toBe('VALIDATION_FAILED')
    // 0.005 at 90 % needs 460 human messages
    expect(() => calibrateThresholds(draw(1, 300, 1), { ...OPTS, maxRate: 0.005 })).toThrow(
      /300 calibration messages.*460/,
    )
  })
})

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { BatonError } from '../errors.js'
import { classMass, classMassOfIntent, parseIntentClasses } from './classes.js'
import { intentClassSignal } from './detector.js'
import { softmax } from './model.js'

const LABELS = ['card_arrival', 'exchange_rate', 'lost_or_stolen_card', 'request_refund', 'terminate_account']
const MAP = JSON.stringify({
  intents: {
    card_arrival: 'ai',
    exchange_rate: 'ai',
    lost_or_stolen_card: 'human',
    request_refund: 'approval',
    terminate_account: 'human',
  },
})

describe('intent classes', () => {
  const classes = parseIntentClasses(MAP, 'intent-classes.json', LABELS)

  it('gives each class the sum of the calibrated probabilities of its intents (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -20, max: 20, noNaN: true }), { minLength: 5, maxLength: 5 }),
        fc.double({ min: 0.1, max: 5, noNaN: true }),
        (logits, temperature) => {
          const p = softmax(Float64Array.from(logits), temperature)
          const mass = classMass(classes, LABELS, p)
          expect(mass.ai).toBeCloseTo(p[0]! + p[1]!, 12)
          expect(mass.human).toBeCloseTo(p[2]! + p[4]!, 12)
          expect(mass.approval).toBeCloseTo(p[3]!, 12)
          // the signal intake sets: the same to 6 decimals, never in the AI's favour
          const signal = intentClassSignal(classes, LABELS, p)
          expect(signal.human!).toBeGreaterThanOrEqual(mass.human! - 1e-12)
          expect(signal.human! - mass.human!).toBeLessThan(1e-6)
          expect(signal.ai!).toBeLessThanOrEqual(mass.ai! + 1e-12)
          expect(mass.ai! - signal.ai!).toBeLessThan(1e-6)
        },
      ),
    )
  })

  it('counts the mass of intents the map does not name against the AI', () => {
    const partial = parseIntentClasses(
      JSON.stringify({ intents: { card_arrival: 'ai', lost_or_stolen_card: 'human', request_refund: 'approval' } }),
      'm.json',
      LABELS,
    )
    const p = [0.5, 0.2, 0.1, 0.1, 0.1]
    const mass = classMass(partial, LABELS, p)
    expect(mass.ai).toBeCloseTo(0.5, 12)
    expect(mass.human).toBeCloseTo(0.1 + 0.3, 12)
    expect(mass.approval).toBeCloseTo(0.1 + 0.3, 12)
  })

  it("takes a caller's intent as given; no intent or unknown is all against the AI", () => {
    expect(classMassOfIntent(classes, 'request_refund')).toEqual({ ai: 0, approval: 1, human: 0 })
    expect(classMassOfIntent(classes, 'unknown')).toEqual({ ai: 0, approval: 1, human: 1 })
    expect(classMassOfIntent(classes, '')).toEqual({ ai: 0, approval: 1, human: 1 })
  })

  it('refuses a map naming an intent the model does not have, naming the file and the field', () => {
    const bad = JSON.stringify({ intents: { card_arrival: 'ai', lost_or_stolen_crad: 'human' } })
    let e: unknown
    try {
      parseIntentClasses(bad, 'ws/intent-classes.json', LABELS)
    } catch (err) {
      e = err
    }
    expect(e).toBeInstanceOf(BatonError)
    expect((e as BatonError).code).toBe('WORKSPACE_INVALID')
    expect((e as Error).message).toContain('ws/intent-classes.json: intents.lost_or_stolen_crad: unknown intent')
    expect((e as Error).message).toContain("did you mean 'lost_or_stolen_card'?")
    expect(() => parseIntentClasses('{"intents": {"card_arrival": "AI!"}}', 'm.json', LABELS)).toThrow(
      /m\.json: intents\.card_arrival: expected a class name/,
    )
    expect(() => parseIntentClasses('[]', 'm.json', LABELS)).toThrow(/expected an object 'intents'/)
  })
})

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { SHARED_DATA, sharedDataMissing } from '../../test/support/shared-data.js'
import { decodeModel, encodeModel } from './codec.js'
import { evaluateModel } from './metrics.js'
import { classify, UNKNOWN_INTENT } from './model.js'
import { trainIntentModel } from './pipeline.js'
import { parseRiskMap, summarizeRouting } from './routing-eval.js'
import { splitValidation } from './split.js'
import { DEFAULT_TRAIN, type LabelledText, trainSoftmax } from './train.js'

// Real data beside the repository (CI has ../shared next to it): Banking77 (CC-BY-4.0), CLINC150 (CC-BY-3.0).
const missing = sharedDataMissing('banking77/train.jsonl', 'clinc150/val.jsonl')
const rows = (file: string) =>
  (missing === undefined ? readFileSync(join(SHARED_DATA, file), 'utf8') : '')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as LabelledText & { domain?: string })

const INTENTS = [
  'card_arrival',
  'lost_or_stolen_card',
  'exchange_rate',
  'request_refund',
  'change_pin',
  'terminate_account',
  'top_up_failed',
  'apple_pay_or_google_pay',
]
const bank = rows('banking77/train.jsonl').filter((r) => INTENTS.includes(r.label))
const { train, validation: test } = splitValidation(bank, 0.25, 11)
const oos = rows('clinc150/val.jsonl')
  .filter((r) => r.label === 'oos')
  .map((r) => r.text)
const FAST = { ...DEFAULT_TRAIN, epochs: 4 }

describe.skipIf(missing !== undefined)('the built-in intent classifier, given a small real Banking77 sample', () => {
  let trained: ReturnType<typeof trainIntentModel>
  let m: ReturnType<typeof trainIntentModel>['model']
  beforeAll(() => {
    trained = trainIntentModel(train, { train: FAST, outOfScope: oos.slice(0, 50), validation: 0.2 })
    m = trained.model
  })

  it('when trained, classifies held-out messages of eight intents well', () => {
    const r = evaluateModel(m, test)
    expect(r.n).toBe(test.length)
    expect(r.accuracy).toBeGreaterThan(0.9)
    expect(r.macro_f1).toBeGreaterThan(0.9)
    expect(Object.keys(r.per_intent).sort()).toEqual([...INTENTS].sort())
  })

  it('returns the top intents, most probable first, with probabilities that sum to at most 1', () => {
    const p = classify(m, 'I lost my card somewhere in town yesterday', 3)
    expect(p.intent).toBe('lost_or_stolen_card')
    expect(p.top).toHaveLength(3)
    expect(p.top[0]!.confidence).toBeGreaterThanOrEqual(p.top[1]!.confidence)
    expect(p.top.reduce((s, t) => s + t.confidence, 0)).toBeLessThanOrEqual(1 + 1e-9)
  })

  it('is calibrated by temperature: the fitted confidence tracks accuracy better than the raw one', () => {
    expect(trained.validation.temperature).toBeGreaterThan(0)
    expect(trained.validation.ece).toBeLessThanOrEqual(trained.validation.ece_before + 1e-9)
    const r = evaluateModel(m, test)
    expect(r.ece).toBeLessThan(0.1)
  })

  it('says unknown for most out-of-scope queries and for few in-scope ones', () => {
    const held = oos.slice(50)
    const unknown = held.filter((t) => classify(m, t).intent === UNKNOWN_INTENT).length / held.length
    const inScopeUnknown = test.filter((d) => classify(m, d.text).intent === UNKNOWN_INTENT).length / test.length
    expect(unknown).toBeGreaterThan(0.6)
    expect(inScopeUnknown).toBeLessThan(0.15)
  })

  it('survives the model file: decoding what was encoded gives the same answers (int8 weights)', () => {
    const back = decodeModel(encodeModel(m))
    expect(back.labels).toEqual(m.labels)
    expect(back.temperature).toBe(m.temperature)
    for (const d of test.slice(0, 40)) {
      const a = classify(m, d.text)
      const b = classify(back, d.text)
      expect(b.top[0]!.intent).toBe(a.top[0]!.intent)
      expect(Math.abs(b.confidence - a.confidence)).toBeLessThan(0.02)
    }
  })

  it('refuses a file that is not a model with WORKSPACE_INVALID', () => {
    expect(() => decodeModel('{"format":"other"}', 'x.json')).toThrow(
      expect.objectContaining({ code: 'WORKSPACE_INVALID' }),
    )
    expect(() => decodeModel('not json', 'x.json')).toThrow(expect.objectContaining({ code: 'WORKSPACE_INVALID' }))
  })
})

describe.skipIf(missing !== undefined)('training is a pure function of data and seed', () => {
  const small = train.slice(0, 200)
  it('gives the same weights twice for the same seed', () => {
    const a = trainSoftmax(small, { ...FAST, epochs: 1 })
    const b = trainSoftmax(small, { ...FAST, epochs: 1 })
    expect(Buffer.from(a.weights.buffer).equals(Buffer.from(b.weights.buffer))).toBe(true)
  })
})

describe('the validation split', () => {
  it('keeps texts that differ only in case and spacing on the same side, and stratifies by label', () => {
    const data: LabelledText[] = []
    for (let i = 0; i < 20; i++) data.push({ text: `message number ${i}`, label: i % 2 ? 'a' : 'b' })
    data.push({ text: 'Message  NUMBER 3', label: 'a' })
    const { train: tr, validation: va } = splitValidation(data, 0.3, 1)
    expect(tr.length + va.length).toBe(data.length)
    const side = (t: string) => (va.some((d) => d.text === t) ? 'validation' : 'train')
    expect(side('Message  NUMBER 3')).toBe(side('message number 3'))
    expect(va.filter((d) => d.label === 'a').length).toBeGreaterThan(0)
    expect(va.filter((d) => d.label === 'b').length).toBeGreaterThan(0)
  })
})

describe('routing quality against a risk map', () => {
  const risk = parseRiskMap('{"intents":{"a":"ai","b":"approval","h":"human"}}', 'map.json')
  it('counts human messages left with an agent as unsafe and ai messages left with an agent as automated', () => {
    const r = summarizeRouting(
      [
        { label: 'h', handler: 'agent', micros: 10, intakeMicros: 20 },
        { label: 'h', handler: 'operator', micros: 10, intakeMicros: 20 },
        { label: 'h', handler: 'hybrid', micros: 10, intakeMicros: 20 },
        { label: 'h', handler: 'operator', micros: 10, intakeMicros: 20 },
        { label: 'a', handler: 'agent', micros: 30, intakeMicros: 40 },
        { label: 'a', handler: 'operator', micros: 10, intakeMicros: 20 },
        { label: 'b', handler: 'hybrid', micros: 10, intakeMicros: 20 },
        { label: 'oos', handler: 'operator', micros: 10, intakeMicros: 20 },
      ],
      risk,
    )
    expect(r.n).toBe(8)
    expect(r.unsafe_automation_rate).toBe(0.25)
    expect(r.automation_rate).toBe(0.5)
    expect(r.by_class.unmapped).toEqual({ n: 1, agent: 0, hybrid: 0, operator: 1 })
    expect(r.p99_decision_us).toBe(30)
  })
  it('refuses a map with a class outside ai, approval, human', () => {
    expect(() => parseRiskMap('{"intents":{"a":"maybe"}}', 'm.json')).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    )
  })
})

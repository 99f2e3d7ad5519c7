import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, startTestApp, type TestApp } from './support/app.js'
import { SHARED_DATA, sharedDataMissing } from './support/shared-data.js'

const run = promisify(execFile)
const ROOT = resolve(import.meta.dirname, '..')
// Real data beside the repository (CI has ../shared next to it). Bitext: CDLA-Sharing-1.0, (c) Bitext Innovations, 2023.
const DATA = SHARED_DATA
const missing = sharedDataMissing('bitext-customer-support/train.jsonl', 'clinc150/val.jsonl', 'risk-maps/bitext.json')
const BANK = resolve(ROOT, 'examples/bank')

async function baton(...args: string[]): Promise<unknown> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: ROOT,
    maxBuffer: 16 * 1024 * 1024,
    env: { ...process.env, BATON_LLM_BASE_URL: '' },
  })
  return JSON.parse(stdout.trim().split('\n').at(-1)!)
}

describe.skipIf(missing !== undefined)('baton intents and baton eval routing, as a user runs them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'baton-intents-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const f = (n: string) => join(dir, n)

  it('splits Bitext, trains on one part, and scores the other: accuracy, macro-F1, per intent, confusions', async () => {
    const split = (await baton(
      'intents',
      'split',
      '--data',
      join(DATA, 'bitext-customer-support/train.jsonl'),
      '--train-out',
      f('train.jsonl'),
      '--heldout-out',
      f('heldout.jsonl'),
      '--share',
      '0.2',
    )) as { train: number; heldout: number }
    expect(split.train + split.heldout).toBe(3612)
    const trained = (await baton(
      'intents',
      'train',
      '--data',
      f('train.jsonl'),
      '--out',
      f('model.json'),
      '--epochs',
      '2',
      '--oos',
      join(DATA, 'clinc150/val.jsonl'),
    )) as { intents: number; out_of_scope: number; validation: { accuracy: number } }
    expect(trained.intents).toBe(27)
    expect(trained.out_of_scope).toBe(100)
    expect(trained.validation.accuracy).toBeGreaterThan(0.95)
    const report = (await baton('intents', 'eval', '--model', f('model.json'), '--data', f('heldout.jsonl'))) as {
      n: number
      accuracy: number
      macro_f1: number
      per_intent: Record<string, { f1: number }>
      confusion: Record<string, Record<string, number>>
    }
    expect(report.n).toBe(split.heldout)
    expect(report.accuracy).toBeGreaterThan(0.95)
    expect(report.macro_f1).toBeGreaterThan(0.95)
    expect(Object.keys(report.per_intent)).toHaveLength(27)
    expect(typeof report.confusion).toBe('object')
  }, 120_000)

  it('routes held-out messages through the real intake of the shop workspace: no unsafe automation', async () => {
    // every 4th held-out message keeps the run short; all classes stay represented
    const lines = readFileSync(f('heldout.jsonl'), 'utf8').trim().split('\n')
    writeFileSync(f('sample.jsonl'), `${lines.filter((_, i) => i % 4 === 0).join('\n')}\n`)
    const r = (await baton(
      'eval',
      'routing',
      '--workspace',
      'examples/shop',
      '--model',
      f('model.json'),
      '--data',
      f('sample.jsonl'),
      '--risk-map',
      join(DATA, 'risk-maps/bitext.json'),
    )) as {
      n: number
      unsafe_automation_rate: number
      automation_rate: number
      by_class: Record<string, { n: number; agent: number }>
      p99_decision_us: number
    }
    expect(r.n).toBe(Math.ceil(lines.length / 4))
    expect(r.by_class.human!.n).toBeGreaterThan(10)
    expect(r.unsafe_automation_rate).toBeLessThanOrEqual(0.01)
    expect(r.automation_rate).toBeGreaterThanOrEqual(0.85)
    expect(r.p99_decision_us).toBeGreaterThan(0)
  }, 120_000)
})

describe('intake with the bank workspace and its committed model', () => {
  let t: TestApp
  beforeAll(async () => {
    t = await startTestApp({ workspace: BANK })
  })
  afterAll(async () => {
    await t?.close()
  })
  const open = (text: string, signals?: Record<string, unknown>) =>
    t.app.server.inject({
      method: 'POST',
      url: '/v1/cases',
      headers: bearer(t.keys.service),
      payload: { customer: `cu_${text.length}`, channel: 'chat', message: { text }, ...(signals ? { signals } : {}) },
    })

  it('classifies the message and lets the policy route it by risk class', async () => {
    const lost = (await open('I think my card was stolen, I cannot find it anywhere')).json()
    expect(lost.signals.intent).toBe('lost_or_stolen_card')
    expect(lost.signals.intent_confidence).toBeGreaterThan(0.5)
    expect(lost.handler).toEqual({ kind: 'operator', queue: 'cards-security' })

    const arrival = (await open('My new card still has not arrived, how long does delivery take?')).json()
    expect(arrival.signals.intent).toMatch(/card_arrival|card_delivery_estimate/)
    expect(arrival.handler).toEqual({ kind: 'agent', agentId: 'bank-assistant' })

    const refund = (await open('I would like a refund for an item I bought with my card')).json()
    expect(refund.signals.intent).toBe('request_refund')
    expect(refund.handler).toMatchObject({ kind: 'hybrid', queue: 'payments' })
  })

  it('sends what nothing fits to a person', async () => {
    const r = (await open('what is the best recipe for a chocolate cake')).json()
    expect(r.signals.intent).toBe('unknown')
    expect(r.handler).toEqual({ kind: 'operator', queue: 'general' })
    expect(r.decision.rules).toEqual(['unknown-intent'])
  })

  it("keeps the caller's intent over the classifier's", async () => {
    const r = (
      await open('My card was eaten by the machine', { intent: 'card_arrival', intent_confidence: 0.99 })
    ).json()
    expect(r.signals.intent).toBe('card_arrival')
    expect(r.handler.kind).toBe('agent')
  })
})

import { execFile } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, startTestApp, type TestApp } from './support/app.js'
import { pgAvailable } from './support/pg.js'
import { SHARED_DATA, sharedDataMissing } from './support/shared-data.js'

const run = promisify(execFile)
const ROOT = resolve(import.meta.dirname, '..')
const BANK = resolve(ROOT, 'examples/bank')
const DATA = SHARED_DATA
const missing = sharedDataMissing('banking77/train.jsonl', 'risk-maps/banking77.json')

/** The real CLI: exit code, stdout's last line parsed when it is JSON, stderr. */
async function baton(...args: string[]): Promise<{ code: number; json: unknown; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, BATON_LLM_BASE_URL: '' },
    })
    const last = stdout.trim().split('\n').at(-1) ?? ''
    return { code: 0, json: last.startsWith('{') ? JSON.parse(last) : last, stderr }
  } catch (e) {
    const err = e as { code?: number; stderr?: string }
    return { code: err.code ?? -1, json: undefined, stderr: err.stderr ?? '' }
  }
}

const engines = pgAvailable ? (['sqlite', 'postgres'] as const) : (['sqlite'] as const)

describe.each(engines)('risk-class signals through HTTP intake (%s)', (engine) => {
  let t: TestApp
  beforeAll(async () => {
    t = await startTestApp({ engine, workspace: BANK })
  })
  afterAll(async () => {
    await t?.close()
  })
  const open = async (text: string) => {
    const r = await t.app.server.inject({
      method: 'POST',
      url: '/v1/cases',
      headers: bearer(t.keys.service),
      payload: { customer: `cu_${engine}_${text.length}`, channel: 'chat', message: { text } },
    })
    expect(r.statusCode).toBe(201)
    return r.json()
  }
  const thresholds = () => {
    const policy = readFileSync(join(BANK, 'policy.yaml'), 'utf8')
    const at = (c: string) => Number(policy.match(new RegExp(`signals\\.intent_class\\.${c} >= ([0-9.]+)`))![1])
    return { human: at('human'), approval: at('approval') }
  }

  it('sends a message whose top intent is the assistant’s to a person when enough mass is on human intents', async () => {
    const r = await open('Where is my card? It should have come by now')
    // the top intent alone would give the case to the assistant (assistant-intent)
    expect(r.signals.intent).toBe('card_arrival')
    const mass = r.signals.intent_class as Record<string, number>
    expect(Object.keys(mass).sort()).toEqual(['ai', 'approval', 'human'])
    expect(mass.ai! + mass.approval! + mass.human!).toBeCloseTo(1, 5)
    expect(mass.human).toBeGreaterThanOrEqual(thresholds().human)
    expect(r.handler).toEqual({ kind: 'operator', queue: 'general' })
    expect(r.decision.rules).toEqual(['human-class-mass'])
    // the decision's stored facts hold the signal it was made on
    const got = await t.app.server.inject({ method: 'GET', url: `/v1/cases/${r.id}`, headers: bearer(t.keys.operator) })
    expect(got.statusCode).toBe(200)
    expect(got.json().decisions[0].facts.signals.intent_class).toEqual(mass)
  })

  it('makes the case hybrid on approval mass, and leaves a clear question with the assistant', async () => {
    const rate = await open('What is the exchange rate for euros?')
    expect(rate.signals.intent).toBe('exchange_rate')
    expect(rate.signals.intent_class.human).toBeLessThan(thresholds().human)
    expect(rate.signals.intent_class.approval).toBeGreaterThanOrEqual(thresholds().approval)
    expect(rate.handler).toMatchObject({ kind: 'hybrid', queue: 'general', agentId: 'bank-assistant' })
    expect(rate.decision.rules).toEqual(['approval-class-mass'])

    const declined = await open('Why was my transfer declined?')
    expect(declined.signals.intent_class.human).toBeLessThan(thresholds().human)
    expect(declined.signals.intent_class.approval).toBeLessThan(thresholds().approval)
    expect(declined.handler).toEqual({ kind: 'agent', agentId: 'bank-assistant' })
  })
})

describe.skipIf(missing !== undefined)('baton intents calibrate and baton eval routing, as a user runs them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'baton-calibrate-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const f = (n: string) => join(dir, n)
  const MAP = join(DATA, 'risk-maps/banking77.json')
  /** A copy of the bank workspace under `dir`, for a command that rewrites its policy. */
  const bankCopy = (name: string) => {
    const ws = f(name)
    cpSync(BANK, ws, { recursive: true })
    return ws
  }

  beforeAll(async () => {
    // the README's splits: test held back first, then the calibration split; the bank model saw neither
    for (const [data, share, seed, train, held] of [
      [join(DATA, 'banking77/train.jsonl'), '0.15', '20261202', 'rest.jsonl', 'test.jsonl'],
      [f('rest.jsonl'), '0.4', '20261203', 'train.jsonl', 'cal.jsonl'],
    ] as const) {
      const r = await baton(
        'intents',
        'split',
        '--data',
        data,
        '--share',
        share,
        '--seed',
        seed,
        '--train-out',
        f(train),
        '--heldout-out',
        f(held),
      )
      expect(r.code).toBe(0)
    }
  }, 120_000)

  it('chooses the thresholds with a bound, writes them into the policy, and does the same again for a seed', async () => {
    const calibrate = (ws: string) =>
      baton(
        'intents',
        'calibrate',
        '--workspace',
        ws,
        '--data',
        f('cal.jsonl'),
        '--risk-map',
        MAP,
        '--max-unsafe',
        '0.005',
        '--seed',
        '5',
      )
    const [a, b] = [bankCopy('a'), bankCopy('b')]
    const before = readFileSync(join(a, 'policy.yaml'), 'utf8')
    const [ra, rb] = [await calibrate(a), await calibrate(b)]
    expect(ra.code).toBe(0)
    const out = ra.json as {
      thresholds: Record<string, number>
      bound: Record<string, number>
      calibration_n: number
      classes: Record<string, { n: number; left_with_ai: number }>
      expected_automation: number
      version: number
      method: string
    }
    expect(out.method).toMatch(/Learn then Test.*Clopper-Pearson/)
    expect(out.calibration_n).toBe(3402)
    expect(out.classes.human!.n).toBe(499)
    expect(out.bound.human).toBeLessThanOrEqual(0.005)
    expect(out.bound.approval).toBeLessThanOrEqual(0.005)
    expect(out.expected_automation).toBeGreaterThan(0.5)
    // the committed bank policy was calibrated by this very command
    expect(out.thresholds).toEqual({ approval: 0.00681, human: 0.00165 })
    const after = readFileSync(join(a, 'policy.yaml'), 'utf8')
    expect(after).toContain(`signals.intent_class.human >= ${out.thresholds.human}`)
    expect(after).toMatch(new RegExp(`\\n  version: ${out.version}\\n`))
    expect(out.version).toBe(Number(before.match(/\n {2}version: (\d+)\n/)![1]) + 1)
    // deterministic: the same output and the same policy file from a fresh copy
    expect(rb.json).toEqual({ ...out, policy: join(b, 'policy.yaml') })
    expect(readFileSync(join(b, 'policy.yaml'), 'utf8')).toBe(after)
    // the written policy still passes its own tests
    const tested = await baton('policy', 'test', join(a, 'policy.yaml'))
    expect(tested.code).toBe(0)
  }, 180_000)

  it('says what is wrong and exits 1 on a map with unknown intents, too few human messages, a rate outside (0, 1)', async () => {
    const ws = bankCopy('bad')
    const badMap = f('bad-map.json')
    writeFileSync(badMap, JSON.stringify({ intents: { lost_or_stolen_card: 'human', card_arival: 'ai' } }))
    const args = (map: string, rate: string) => [
      'intents',
      'calibrate',
      '--workspace',
      ws,
      '--data',
      f('cal.jsonl'),
      '--risk-map',
      map,
      '--max-unsafe',
      rate,
    ]
    const unknown = await baton(...args(badMap, '0.005'))
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toMatch(
      /bad-map\.json: intents\.card_arival: unknown intent 'card_arival'.*did you mean 'card_arrival'/,
    )
    const few = await baton(...args(MAP, '0.001'))
    expect(few.code).toBe(1)
    expect(few.stderr).toMatch(/calibration messages, the bound 0\.001 at confidence 0\.9 needs at least 2302/)
    for (const rate of ['0', '1.5']) {
      const r = await baton(...args(MAP, rate))
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/--max-unsafe: expected a rate in \(0, 1\)/)
    }
    // nothing was written
    expect(readFileSync(join(ws, 'policy.yaml'), 'utf8')).toBe(readFileSync(join(BANK, 'policy.yaml'), 'utf8'))
  }, 180_000)

  it('baton eval routing prints the upper confidence bound of unsafe automation beside the point figure', async () => {
    const lines = readFileSync(f('test.jsonl'), 'utf8').trim().split('\n')
    writeFileSync(f('sample.jsonl'), `${lines.filter((_, i) => i % 3 === 0).join('\n')}\n`)
    const r = await baton(
      'eval',
      'routing',
      '--workspace',
      'examples/bank',
      '--data',
      f('sample.jsonl'),
      '--risk-map',
      MAP,
    )
    expect(r.code).toBe(0)
    const s = r.json as {
      unsafe_automation_rate: number
      unsafe_automation_ucb: number
      confidence: number
      by_class: Record<string, { n: number; agent: number }>
    }
    expect(s.confidence).toBe(0.9)
    const human = s.by_class.human!
    expect(s.unsafe_automation_rate).toBe(Math.round((human.agent / human.n) * 1e4) / 1e4)
    expect(s.unsafe_automation_ucb).toBeGreaterThan(s.unsafe_automation_rate)
    // with none of n left with the AI, the one-sided Clopper–Pearson bound is 1 − δ^(1/n)
    if (human.agent === 0) expect(s.unsafe_automation_ucb).toBeCloseTo(1 - 0.1 ** (1 / human.n), 4)
  }, 120_000)
})

import { execFile } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, SHOP, startTestApp, type TestApp } from './support/app.js'

const ROOT = resolve(import.meta.dirname, '..')
const BANK = resolve(ROOT, 'examples/bank')
const run = promisify(execFile)

/** A copy of the shop workspace (its model included) with `edit` applied to its policy. */
function shopCopy(edit: (policy: string) => string): string {
  const dir = mkdtempSync(join(tmpdir(), 'baton-intents-'))
  for (const f of [
    'agents.yaml',
    'operators.yaml',
    'queues.yaml',
    'tools.yaml',
    'intents.model.json',
    'intent-classes.json',
  ]) {
    cpSync(join(SHOP, f), join(dir, f))
  }
  writeFileSync(join(dir, 'policy.yaml'), edit(readFileSync(join(SHOP, 'policy.yaml'), 'utf8')))
  return dir
}

async function baton(...args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT })
    return { code: 0, stdout }
  } catch (e) {
    const x = e as { code: number; stdout: string }
    return { code: x.code, stdout: x.stdout }
  }
}

interface Problem {
  code: string
  errors: { field: string; message: string }[]
}

/** A caller's intent is one of the workspace's labels, compared exactly, or the request is refused (issue 17, 5). */
describe('caller intents through HTTP', () => {
  const apps: TestApp[] = []
  afterAll(async () => {
    for (const a of apps) await a.close()
  })
  async function start(workspace: string): Promise<TestApp> {
    const t = await startTestApp({ workspace })
    apps.push(t)
    return t
  }
  const open = (t: TestApp, signals: Record<string, unknown>, text = 'Hello, I have a question about my order') =>
    t.app.server.inject({
      method: 'POST',
      url: '/v1/cases',
      headers: bearer(t.keys.service),
      payload: { customer: 'cu_intent', channel: 'chat', message: { text }, signals },
    })
  /** The refusal names signals.intent and says what was expected; nothing is written. */
  async function refused(t: TestApp, signals: Record<string, unknown>, field = 'signals.intent'): Promise<string> {
    const before = await t.app.store.auditSize()
    const r = await open(t, signals)
    expect(r.statusCode).toBe(400)
    const p = r.json() as Problem
    expect(p.code).toBe('VALIDATION_FAILED')
    const e = p.errors.find((x) => x.field === field)
    expect(e).toBeDefined()
    expect(await t.app.store.auditSize()).toBe(before)
    return e!.message
  }

  describe('the shop: a model and a declared list', () => {
    let t: TestApp
    beforeAll(async () => {
      t = await start(SHOP)
    })

    it('refuses Complaint (not folded to complaint) and launch_missiles, which used to reach the AI at 0.95', async () => {
      expect(await refused(t, { intent: 'Complaint', intent_confidence: 0.95 })).toMatch(/did you mean 'complaint'/)
      expect(await refused(t, { intent: 'launch_missiles', intent_confidence: 0.95 })).toMatch(
        /unknown intent 'launch_missiles'/,
      )
      expect(await refused(t, { intent: ' complaint', intent_confidence: 0.95 })).toMatch(/unknown intent/)
    })

    it('routes a label of the model, and a label the policy declares, as before', async () => {
      const complaint = await open(t, { intent: 'complaint', intent_confidence: 0.95 })
      expect(complaint.statusCode).toBe(201)
      expect(complaint.json().handler).toMatchObject({ kind: 'operator', queue: 'general' })
      expect(complaint.json().decision.rules).toEqual(['complaint-or-person-intent'])
      const refund = await open(t, { intent: 'refund', intent_confidence: 0.9 }, 'I want my money back')
      expect(refund.statusCode).toBe(201)
      expect(refund.json().signals.intent).toBe('refund')
      const unknown = await open(t, { intent: 'unknown', intent_confidence: 0.95 })
      expect(unknown.statusCode).toBe(201)
      // a caller's `unknown` puts all the class mass against the AI (intent-classes.json): a person, by that rule
      expect(unknown.json().signals.intent_class).toEqual({ ai: 0, approval: 1, human: 1 })
      expect(unknown.json().handler).toMatchObject({ kind: 'operator', queue: 'general' })
      expect(unknown.json().decision.rules).toEqual(['human-class-mass'])
    })

    it('refuses a confidence sent without its intent', async () => {
      expect(await refused(t, { intent_confidence: 0.95 }, 'signals.intent_confidence')).toMatch(/signals\.intent/)
    })

    it('checks the intent of a later message too', async () => {
      const first = await open(t, { intent: 'complaint', intent_confidence: 0.9 })
      const id = first.json().id as string
      const before = await t.app.store.auditSize()
      const r = await t.app.server.inject({
        method: 'POST',
        url: `/v1/cases/${id}/messages`,
        headers: bearer(t.keys.service),
        payload: { message: { text: 'and another thing' }, signals: { intent: 'COMPLAINT', intent_confidence: 0.9 } },
      })
      expect(r.statusCode).toBe(400)
      expect((r.json() as Problem).errors.map((e) => e.field)).toEqual(['signals.intent'])
      expect(await t.app.store.auditSize()).toBe(before)
    })
  })

  it('the bank: a model whose labels are not all lowercase is compared exactly', async () => {
    const t = await start(BANK)
    expect(await refused(t, { intent: 'refund_not_showing_up', intent_confidence: 0.9 })).toMatch(
      /did you mean 'Refund_not_showing_up'/,
    )
    const exact = await open(t, { intent: 'Refund_not_showing_up', intent_confidence: 0.9 })
    expect(exact.statusCode).toBe(201)
    expect(exact.json().signals.intent).toBe('Refund_not_showing_up')
    // the shop's helpdesk labels mean nothing here
    expect(await refused(t, { intent: 'refund', intent_confidence: 0.9 })).toMatch(/unknown intent 'refund'/)
  })

  it('a workspace with no model and no declared list accepts no intent but unknown', async () => {
    const dir = shopCopy((p) => p.replace(/^intents: .*$/m, ''))
    try {
      rmSync(join(dir, 'intents.model.json'))
      expect(readFileSync(join(dir, 'policy.yaml'), 'utf8')).not.toMatch(/^intents:/m)
      const t = await start(dir)
      expect(await refused(t, { intent: 'complaint', intent_confidence: 0.9 })).toMatch(
        /no intent model .* declares no intents:/,
      )
      const unknown = await open(t, { intent: 'unknown', intent_confidence: 0.9 })
      expect(unknown.statusCode).toBe(201)
      // without a caller intent, nothing classifies the message: intent '' and confidence 0, as before
      const plain = await open(t, {})
      expect(plain.statusCode).toBe(201)
      expect(plain.json().signals).toMatchObject({ intent: '', intent_confidence: 0 })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('baton policy check names a bad intents: entry by file:line:col, and baton policy test fails a test no caller could send', async () => {
    const dir = shopCopy((p) =>
      p
        .replace(/^intents: .*$/m, 'intents: [refund, order_status, account_change, product_question, refund]')
        .replace(
          'given: { signals: { intent: complaint, intent_confidence: 0.95 } }',
          'given: { signals: { intent: Complaint, intent_confidence: 0.95 } }',
        ),
    )
    try {
      const file = join(dir, 'policy.yaml')
      const lines = readFileSync(file, 'utf8').split('\n')
      const line = lines.findIndex((l) => l.startsWith('intents:')) + 1
      const column = lines[line - 1]!.lastIndexOf('refund') + 1
      const check = await baton('policy', 'check', file)
      expect(check.code).toBe(1)
      expect(check.stdout).toContain(
        `${file}:${line}:${column}: error: intents[4]: duplicate intent label 'refund', first declared at line ${line}:11`,
      )
      const fixed = readFileSync(file, 'utf8').replace(', product_question, refund]', ', product_question]')
      writeFileSync(file, fixed)
      const test = await baton('policy', 'test', file)
      expect(test.code).toBe(1)
      expect(test.stdout).toMatch(
        /FAIL .*policy\.yaml:\d+ a complaint goes to a person: given\.signals\.intent: unknown intent 'Complaint'.*did you mean 'complaint'/,
      )
      expect(test.stdout).toMatch(/\d+ passed, 1 failed/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

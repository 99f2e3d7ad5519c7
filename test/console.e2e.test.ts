import { existsSync, mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import type { CryptoKey } from 'jose'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, startTestApp, type TestApp } from './support/app.js'
import { agentToken as agentTokenFor, registerAgentKey } from './support/assertion.js'
import { startConnector } from './support/connector.js'

const CHROMIUM = process.env.BATON_CHROMIUM ?? '/usr/bin/chromium'
const SHOTS = resolve(import.meta.dirname, '../docs/screenshots')
// A loaded two-core machine: wait for conditions, generously, never for fixed times.
const WAIT = 30_000
const STEP = 120_000
const SEEDED = 1000
const ADMIN_ACTOR = { kind: 'admin', id: 'test', roles: ['admin'] } as const

/** expect.poll with the suite's patience (its default gives up after one second). */
const poll = <T>(fn: () => Promise<T> | T) => expect.poll(fn, { timeout: WAIT, interval: 100 })

interface Decision {
  rules: string[]
  trigger: string
  explanation: { id: string; reason: string; reads: Record<string, unknown> }[]
}

// CI installs Chromium (.ci/run) and must run this suite; a developer without it is told, not failed.
describe.skipIf(!existsSync(CHROMIUM) && process.env.CI === undefined)('operator console in Chromium', () => {
  let t: TestApp
  let connector: Awaited<ReturnType<typeof startConnector>>
  let agentKey: { privateKey: CryptoKey; publicKey: CryptoKey }
  let base: string
  let browser: Browser
  const contexts: BrowserContext[] = []
  let page: Page
  const keys: Record<'ada' | 'linus', string> = { ada: '', linus: '' }
  const offsite: string[] = []

  const inject = (method: 'GET' | 'POST', url: string, key: string, payload?: object) =>
    t.app.server.inject({ method, url, headers: bearer(key), ...(payload === undefined ? {} : { payload }) })

  async function shot(p: Page, name: string) {
    await p.screenshot({ path: join(SHOTS, `${name}.png`) })
  }

  async function newPage(): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, baseURL: base })
    context.setDefaultTimeout(WAIT)
    contexts.push(context)
    const p = await context.newPage()
    p.on('request', (r) => {
      const u = new URL(r.url())
      if (u.protocol === 'data:' || u.protocol === 'about:') return
      if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') offsite.push(r.url())
    })
    return p
  }

  async function signIn(p: Page, key: string) {
    await p.goto('/console/login')
    await p.getByLabel('API key').fill(key)
    await p.getByRole('button', { name: 'Sign in' }).click()
    await p.getByRole('heading', { name: 'Queue', level: 1 }).waitFor()
  }

  /** The AI agent's access token for one case (RFC 7523 assertion → token endpoint). */
  const agentToken = (caseId: string) => agentTokenFor(t.app, agentKey.privateKey, caseId)

  /** A refund the agent proposes on a case: the policy asks a billing operator to approve it. */
  async function proposeRefund(caseId: string, params: Record<string, unknown>): Promise<string> {
    const r = await inject('POST', `/v1/cases/${caseId}/actions`, await agentToken(caseId), { tool: 'refund', params })
    expect(r.statusCode, r.body).toBe(202)
    expect(r.json()).toMatchObject({ outcome: 'approve', approval: { approverRole: 'billing' } })
    return r.json().approval.id
  }

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true })
    connector = await startConnector()
    process.env.BATON_SHOP_CONNECTOR_URL = connector.url
    t = await startTestApp({ auditHeadIntervalMs: 200 })
    await t.app.server.listen({ port: 0, host: '127.0.0.1' })
    base = `http://127.0.0.1:${(t.app.server.server.address() as AddressInfo).port}`
    agentKey = await registerAgentKey(t.app, t.keys.admin)
    // Ada holds the billing role; Linus is an operator without it.
    for (const id of ['ada', 'linus'] as const) {
      keys[id] = (await t.app.services.keys.create('operator', id, ADMIN_ACTOR, id)).key
    }
    // A working day's backlog: the queue must stay usable with a thousand open cases.
    const backlog = [
      { text: 'I want to speak to a human about my parcel, nobody answers', intent: 'complaint' },
      { text: 'Please change the email on my account to me@new.example', intent: 'account_change' },
      { text: 'I was charged twice for order 5521, I want my money back', intent: 'refund' },
      { text: 'My lawyer will contact you about the broken blender', intent: 'complaint' },
      { text: 'Hi, where is my order #12345?', intent: 'order_status' },
    ]
    for (let i = 0; i < SEEDED; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) => {
          const b = backlog[(i + j) % backlog.length]!
          return inject('POST', '/v1/cases', t.keys.service, {
            customer: `cu_${i + j}`,
            channel: j % 2 === 0 ? 'chat' : 'email',
            subject: `${b.intent.replace('_', ' ')} #${i + j}`,
            message: { text: `${b.text} (ref ${i + j})` },
            signals: { intent: b.intent, intent_confidence: 0.9 },
          }).then((r) => expect(r.statusCode).toBe(201))
        }),
      )
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
    page = await newPage()
  }, 300_000)

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined)
    await browser?.close()
    await t?.close()
    await connector?.close()
    delete process.env.BATON_SHOP_CONNECTOR_URL
  })

  it(
    'refuses a service key and an unknown key at sign-in',
    async () => {
      await page.goto('/')
      await poll(() => page.url()).toContain('/console/login')
      await shot(page, 'login')
      await page.getByLabel('API key').fill(t.keys.service)
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.getByRole('alert').filter({ hasText: 'cannot sign in' }).waitFor()
      await page.getByLabel('API key').fill(`bk_operator_${'A'.repeat(43)}`)
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.getByRole('alert').filter({ hasText: 'unknown or revoked' }).waitFor()
    },
    STEP,
  )

  it(
    'signs in with an operator key into an HttpOnly, SameSite=Strict session; the queue pages a thousand cases',
    async () => {
      await page.getByLabel('API key').fill(keys.ada)
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.getByRole('heading', { name: 'Queue', level: 1 }).waitFor()
      const session = (await page.context().cookies()).find((c) => c.name === 'baton_session')
      expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' })
      expect(session?.value).not.toContain(keys.ada)
      expect(await page.locator('header').textContent()).toContain('billing')
      const total = Number(await page.locator('#queue-summary [data-total]').getAttribute('data-total'))
      expect(total).toBeGreaterThanOrEqual(SEEDED / 2)
      expect(await page.locator('#queue-rows tr').count()).toBe(50)
      expect(await page.getByRole('link', { name: 'Next →' }).count()).toBe(1)
      // Keyboard first: the first Tab reaches the skip link, which moves focus to the content.
      await page.keyboard.press('Tab')
      expect(await page.locator(':focus').textContent()).toBe('Skip to content')
    },
    STEP,
  )

  let escalated: string
  let decision: Decision
  it(
    'shows an escalated case in the queue live, without a reload',
    async () => {
      await page.evaluate(() => {
        ;(globalThis as unknown as { marker: number }).marker = 42
      })
      // An enterprise customer's order question stays with the AI, then turns into a double charge: escalated to
      // the billing queue with the assistant drafting (hybrid); the enterprise tier puts it first.
      expect(
        (
          await t.app.server.inject({
            method: 'PUT',
            url: '/v1/customers/cu_vip',
            headers: bearer(t.keys.service),
            payload: { tier: 'enterprise' },
          })
        ).statusCode,
      ).toBe(200)
      const open = await inject('POST', '/v1/cases', t.keys.service, {
        customer: 'cu_vip',
        channel: 'chat',
        subject: 'Charged twice',
        message: { text: 'Hi, where is my order #777?' },
        signals: { intent: 'order_status', intent_confidence: 0.95 },
      })
      expect(open.json().handler.kind).toBe('agent')
      escalated = open.json().id
      const m = await inject('POST', `/v1/cases/${escalated}/messages`, t.keys.service, {
        message: { text: 'I was charged twice for this order, I want my money back' },
        signals: { intent: 'refund', intent_confidence: 0.95 },
      })
      expect(m.json().handler).toMatchObject({ kind: 'hybrid', queue: 'billing' })
      decision = m.json().decision
      const row = page.locator(`#queue-rows tr[data-case="${escalated}"]`)
      await row.waitFor()
      expect(await page.evaluate(() => (globalThis as unknown as { marker: number }).marker)).toBe(42)
      expect(await row.locator('.rule').textContent()).toBe(decision.rules[0])
      expect(await page.locator('#queue-rows tr').first().getAttribute('data-case')).toBe(escalated)
      await shot(page, 'queue')
    },
    STEP,
  )

  it(
    'claims the case from the queue',
    async () => {
      await page.locator(`#queue-rows tr[data-case="${escalated}"] button.claim`).click()
      await page.waitForURL(`**/console/cases/${escalated}`)
      await poll(() => page.locator('#case-handler').textContent()).toContain('claimed by ada')
      const work = await t.app.store.getWorkItem(escalated)
      expect(work?.operatorId).toBe('ada')
    },
    STEP,
  )

  let approvalId: string
  it(
    'reads why the case was escalated, its AI → human timeline, its pending refund and its audit proofs',
    async () => {
      approvalId = await proposeRefund(escalated, { order_id: 'A-777', amount: 120, currency: 'EUR' })
      await page.reload()
      await page.getByRole('heading', { name: 'Why it is with a human' }).waitFor()
      const text = ((await page.locator('#why').textContent()) ?? '').replace(/\s+/g, ' ')
      expect(text).toContain(`Rule ${decision.rules[0]}`)
      expect(text).toContain(decision.explanation[0]!.reason)
      expect(text).toContain(`trigger ${decision.trigger}`)
      for (const [k, v] of Object.entries(decision.explanation[0]!.reads)) {
        expect(text).toContain(`${k} = ${JSON.stringify(v)}`)
      }
      const steps = page.locator('ol.timeline > li')
      expect(await steps.count()).toBe(3)
      expect(await steps.nth(0).getAttribute('class')).toBe('ai')
      expect(await steps.nth(1).getAttribute('class')).toBe('human')
      expect(await steps.nth(2).textContent()).toContain('taken by ada')
      // The pending action, with its exact parameters.
      const pending = page.locator(`#actions article[data-approval="${approvalId}"]`)
      expect(await pending.locator('pre.params').textContent()).toContain('"amount": 120')
      // Each audit entry of the case is proved, in the browser, against the latest signed head.
      const proofs = page.locator('#audit-proofs')
      await poll(async () => [
        await proofs.getAttribute('data-pending'),
        await proofs.getAttribute('data-failed'),
      ]).toEqual(['0', '0'])
      expect(Number(await proofs.getAttribute('data-verified'))).toBeGreaterThanOrEqual(8)
      await poll(() => page.locator('#audit-head-status').textContent()).toContain('head signature ✓')
      await page.screenshot({ path: join(SHOTS, 'case.png'), fullPage: true })
    },
    STEP,
  )

  let second: { caseId: string; approvalId: string }
  it(
    'an operator without the billing role cannot approve',
    async () => {
      const other = await newPage()
      await signIn(other, keys.linus)
      await other.getByRole('link', { name: 'Approvals' }).click()
      const item = other.locator(`article[data-approval="${approvalId}"]`)
      await item.waitFor()
      expect(await item.locator('.blocked').textContent()).toContain('billing')
      expect(await item.locator('form.decide').count()).toBe(0)
      // Even forced through the API with the session's own CSRF token, the approvals capability refuses.
      const csrf = await other.locator('meta[name="csrf-token"]').getAttribute('content')
      const forced = await other.request.post(`/v1/approvals/${approvalId}/decision`, {
        headers: { 'x-csrf-token': csrf ?? '' },
        data: { decision: 'approve', reason: 'let me' },
      })
      expect(forced.status()).toBe(403)
      expect((await forced.json()).code).toBe('APPROVER_NOT_ELIGIBLE')
      expect((await t.app.store.getApproval(approvalId))?.state).toBe('pending')
      await other.context().close()
    },
    STEP,
  )

  it(
    'approves a pending refund with a reason and sees it executed; a new one appears live',
    async () => {
      await page.getByRole('link', { name: 'Approvals' }).click()
      const item = page.locator(`article[data-approval="${approvalId}"]`)
      await item.waitFor()
      expect(await item.locator('pre.params').textContent()).toContain('"order_id": "A-777"')
      // A second refund proposed while the inbox is open appears without a reload.
      const other = await inject('POST', '/v1/cases', t.keys.service, {
        customer: 'cu_vip2',
        channel: 'email',
        subject: 'Refund please',
        message: { text: 'I was charged twice, please refund me' },
        signals: { intent: 'refund', intent_confidence: 0.95 },
      })
      second = {
        caseId: other.json().id,
        approvalId: await proposeRefund(other.json().id, { order_id: 'B-9', amount: 300, currency: 'GBP' }),
      }
      await page.locator(`article[data-approval="${second.approvalId}"]`).waitFor()
      await shot(page, 'approvals')
      await item.getByLabel(/Reason/).fill('Duplicate charge confirmed in the payment provider')
      await item.getByRole('button', { name: 'Approve' }).click()
      const outcome = page.locator(`#decision-log [data-approval="${approvalId}"]`)
      await poll(() => outcome.textContent()).toMatch(/Approved\. Action executed \(connector answered 200\)/)
      const calls = connector.calls.filter((c) => (c.body.params as { order_id?: string }).order_id === 'A-777')
      expect(calls).toHaveLength(1)
      expect(calls[0]!.body.params).toEqual({ order_id: 'A-777', amount: 120, currency: 'EUR' })
      expect(await t.app.store.getApproval(approvalId)).toMatchObject({ state: 'approved', decidedBy: 'ada' })
      await poll(() =>
        page.locator(`tr[data-approval="${approvalId}"] [data-action-state]`).getAttribute('data-action-state'),
      ).toBe('executed')
    },
    STEP,
  )

  it(
    'takes a case over from the AI with a reason',
    async () => {
      const r = await inject('POST', '/v1/cases', t.keys.service, {
        customer: 'cu_takeover',
        channel: 'chat',
        subject: 'Order question',
        message: { text: 'Where is my order #4242?' },
        signals: { intent: 'order_status', intent_confidence: 0.95 },
      })
      expect(r.json().handler.kind).toBe('agent')
      const id = r.json().id as string
      await page.goto(`/console/cases/${id}`)
      await page.getByLabel('Reason to take over from the AI').fill('The customer is a known reseller; I handle it')
      await page.getByRole('button', { name: 'Take over' }).click()
      await poll(() => page.locator('#case-handler').textContent()).toContain('Human')
      const last = page.locator('ol.timeline > li').last()
      expect(await last.getAttribute('class')).toBe('human')
      expect(await last.textContent()).toContain('manual')
      expect((await t.app.store.getCase(id))?.handler.kind).toBe('operator')
    },
    STEP,
  )

  it(
    'shows the signed tree head verified by Baton and in the browser, and a case’s proofs',
    async () => {
      await page.getByRole('link', { name: 'Audit' }).click()
      await page.getByRole('heading', { name: 'Latest signed tree head' }).waitFor()
      await poll(() => page.locator('#head-browser-check').textContent()).toContain('✓ Ed25519 signature valid')
      await page.getByLabel('Case id').fill(escalated)
      await page.getByRole('button', { name: 'Show proofs' }).click()
      const proofs = page.locator('#audit-proofs')
      await poll(async () => [
        await proofs.getAttribute('data-pending'),
        await proofs.getAttribute('data-failed'),
      ]).toEqual(['0', '0'])
      await shot(page, 'audit')
    },
    STEP,
  )

  it(
    'draws the overview charts with the locally served Chart.js',
    async () => {
      await page.getByRole('link', { name: 'Overview' }).click()
      await poll(() => page.locator('body').getAttribute('data-charts-drawn')).toBe('5')
      await shot(page, 'overview')
    },
    STEP,
  )

  it(
    'an analyst sees the quality figures with their charts and previews a candidate policy on past decisions',
    async () => {
      const analyst = (await t.app.services.keys.create('analyst', 'analyst', ADMIN_ACTOR)).key
      const a = await newPage()
      await a.goto('/console/login')
      await a.getByLabel('API key').fill(analyst)
      await a.getByRole('button', { name: 'Sign in' }).click()
      // an analyst lands on Quality; the navigation offers the figures only
      await a.getByRole('heading', { name: 'Quality', level: 1 }).waitFor()
      const nav = a.getByRole('navigation', { name: 'Main' })
      expect(await nav.getByRole('link').allTextContents()).toEqual(['Overview', 'Quality'])
      await poll(() => a.locator('body').getAttribute('data-charts-drawn')).toBe('4')
      const opened = await a.locator('.figure', { hasText: 'Escalation' }).first().textContent()
      expect(opened).toMatch(/of \d+ cases/)
      // the same numbers as the API
      const api = (await inject('GET', '/v1/quality', analyst)).json()
      await expect
        .poll(() => a.locator('.figure', { hasText: 'Automation' }).textContent())
        .toContain(`${api.automation.automated} of ${api.automation.closed} closed`)
      // the candidate sends order questions to a person: the backlog's order questions would change
      const source = await (await inject('GET', '/v1/policy/source', t.keys.admin)).body
      const candidate = source
        .replace('version: 3', 'version: 4')
        .replace(
          "route: { handler: agent, agent: shop-assistant }\n      reason: Order status questions are the assistant's job",
          'route: { handler: operator, queue: general }\n      reason: Order status questions go to a person',
        )
      await a.getByLabel('Candidate policy (YAML)').fill(candidate)
      await a.getByRole('button', { name: 'Preview' }).click()
      await a.locator('#preview-summary').waitFor()
      expect(await a.locator('#preview-summary').textContent()).toMatch(/would change \(AI → human [1-9]/)
      expect(await a.locator('#preview-rules').textContent()).toContain('order-status')
      await shot(a, 'quality')
      // a candidate that does not compile: its position
      await a
        .getByLabel('Candidate policy (YAML)')
        .fill(candidate.replace('signals.topics.order_status', 'signals.topics.nope'))
      await a.getByRole('button', { name: 'Preview' }).click()
      await poll(() => a.locator('#preview-result li').first().textContent()).toMatch(/^candidate\.yaml:\d+:\d+: /)
      // nothing else is open to an analyst
      const queue = await a.goto('/console/queue')
      expect(queue?.status()).toBe(403)
      // and an operator has no Quality page
      expect((await page.goto('/console/quality'))?.status()).toBe(403)
      await page.goBack()
    },
    STEP,
  )

  it(
    'lists agents with owners, lifecycle, granted vs used tools; only an admin may suspend',
    async () => {
      await page.getByRole('link', { name: 'Agents' }).click()
      const row = page.locator('tr[data-agent="shop-assistant"]')
      await row.waitFor()
      expect(await row.textContent()).toContain('dana.ops@shop.example')
      expect(await row.textContent()).toContain('refund (2)')
      expect(await row.locator('form.lifecycle').count()).toBe(0)
      const admin = await newPage()
      await signIn(admin, t.keys.admin)
      await admin.getByRole('link', { name: 'Agents' }).click()
      const adminRow = admin.locator('tr[data-agent="shop-assistant"]')
      await adminRow.waitFor()
      await shot(admin, 'agents')
      await adminRow.getByLabel('Reason').fill('Incident 42: investigating refunds')
      await adminRow.getByRole('button', { name: 'Suspend' }).click()
      await poll(() => admin.locator('tr[data-agent="shop-assistant"] [data-state]').getAttribute('data-state')).toBe(
        'suspended',
      )
      expect((await t.app.store.getAgent('shop-assistant'))?.state).toBe('suspended')
      await admin.context().close()
    },
    STEP,
  )

  it(
    'refuses state changes without the CSRF token; an API key still wins over the cookie',
    async () => {
      const noToken = await page.request.post('/v1/cases', {
        data: { customer: 'x', channel: 'chat', message: { text: 'hi' } },
      })
      expect(noToken.status()).toBe(403)
      // its own code and title, not a role problem
      expect(await noToken.json()).toMatchObject({
        code: 'CSRF_FAILED',
        title: 'Console request failed its CSRF check',
      })
      const noTokenApproval = await page.request.post(`/v1/approvals/${second.approvalId}/decision`, {
        data: { decision: 'approve', reason: 'csrf' },
      })
      expect(noTokenApproval.status()).toBe(403)
      expect((await t.app.store.getApproval(second.approvalId))?.state).toBe('pending')
      expect((await page.request.get(`/v1/cases/${escalated}`)).status()).toBe(200)
      expect((await page.request.post('/console/logout', { form: { _csrf: 'nope' } })).status()).toBe(403)
      // An operator key may not open cases, whatever session the browser holds.
      const keyed = await page.request.post('/v1/cases', {
        headers: bearer(keys.ada),
        data: { customer: 'x', channel: 'chat', message: { text: 'hi' } },
      })
      expect(keyed.status()).toBe(403)
    },
    STEP,
  )

  it(
    'signs out: the session ends and pages ask to sign in again',
    async () => {
      await page.getByRole('button', { name: 'Sign out' }).click()
      await page.getByLabel('API key').waitFor()
      expect((await page.context().cookies()).find((c) => c.name === 'baton_session')).toBeUndefined()
      await page.goto('/console/queue')
      await page.getByLabel('API key').waitFor()
      expect(page.url()).toContain('/console/login?next=')
    },
    STEP,
  )

  it('sent no request anywhere but this Baton', () => {
    expect(offsite).toEqual([])
  })
})

import { mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, startTestApp, type TestApp } from './support/app.js'

const CHROMIUM = process.env.BATON_CHROMIUM ?? '/usr/bin/chromium'
const SHOTS = resolve(import.meta.dirname, '../docs/screenshots')
// A loaded two-core machine: wait for conditions, generously, never for fixed times.
const WAIT = 30_000
const SEEDED = 1000
const STEP = 120_000

describe('operator console in Chromium', () => {
  let t: TestApp
  let base: string
  let browser: Browser
  let context: BrowserContext
  let page: Page
  const offsite: string[] = []

  const post = (url: string, body: object, key = t.keys.service) =>
    t.app.server.inject({ method: 'POST', url, headers: bearer(key), payload: body })

  async function shot(name: string) {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false })
  }

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true })
    t = await startTestApp({ auditHeadIntervalMs: 200 })
    await t.app.server.listen({ port: 0, host: '127.0.0.1' })
    base = `http://127.0.0.1:${(t.app.server.server.address() as AddressInfo).port}`
    // A working day's backlog: the queue must stay usable with a thousand open cases.
    const texts = [
      'I want to speak to a human about my order, nobody answers',
      'Please change the email on my account to me@new.example',
      'I was charged twice for order 5521, I want my money back',
      'My lawyer will contact you about the broken blender',
      'Hi, where is my order #12345?',
    ]
    for (let i = 0; i < SEEDED; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          post('/v1/cases', {
            customer: `cu_${i + j}`,
            channel: j % 2 === 0 ? 'chat' : 'email',
            subject: `Backlog ${i + j}`,
            message: { text: `${texts[(i + j) % texts.length]} (ref ${i + j})` },
          }).then((r) => expect(r.statusCode).toBe(201)),
        ),
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
    context = await browser.newContext({ viewport: { width: 1360, height: 900 }, baseURL: base })
    context.setDefaultTimeout(WAIT)
    page = await context.newPage()
    page.on('request', (r) => {
      const u = new URL(r.url())
      if (u.protocol === 'data:' || u.protocol === 'about:') return
      if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') offsite.push(r.url())
    })
  }, 240_000)

  afterAll(async () => {
    await browser?.close()
    await t?.close()
  })

  it(
    'refuses a service key and a wrong key at sign-in',
    async () => {
      await page.goto('/')
      await expect.poll(() => page.url()).toContain('/console/login')
      await shot('login')
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
    'signs in with an operator key into an HttpOnly, SameSite=Strict session and shows the queue',
    async () => {
      await page.getByLabel('API key').fill(t.keys.operator)
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.getByRole('heading', { name: 'Queue', level: 1 }).waitFor()
      const cookies = await context.cookies()
      const session = cookies.find((c) => c.name === 'baton_session')
      expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' })
      expect(session?.value).not.toContain(t.keys.operator)
      // 1,000 open cases: paginated, the most urgent first.
      const total = Number(await page.locator('#queue-summary [data-total]').getAttribute('data-total'))
      expect(total).toBeGreaterThanOrEqual(SEEDED * 0.7)
      expect(await page.locator('#queue-rows tr').count()).toBe(50)
      await expect.poll(() => page.locator('#queue-rows tr').first().locator('.prio').textContent()).toBe('P2')
    },
    STEP,
  )

  let escalated: string
  let decision: { rules: string[]; trigger: string; explanation: { id: string; reason: string }[] }
  it(
    'shows an escalated case in the queue live, without a reload',
    async () => {
      await page.locator('#queue-rows tr').first().waitFor()
      const marker = await page.evaluate(() => {
        ;(globalThis as unknown as { marker: number }).marker = 1
        return 1
      })
      // Opens as a plain question for the AI, then turns into fraud: escalated to security (P1, 5 minute SLA).
      const open = await post('/v1/cases', {
        customer: 'cu_live',
        channel: 'chat',
        subject: 'Live escalation',
        message: { text: 'Hi, where is my order #777?' },
      })
      expect(open.json().handler.kind).toBe('agent')
      escalated = open.json().id
      const m = await post(`/v1/cases/${escalated}/messages`, {
        message: { text: 'Someone used my card on your shop, there is an unauthorized charge!' },
      })
      expect(m.json().handler).toMatchObject({ kind: 'operator', queue: 'security' })
      decision = m.json().decision
      const row = page.locator(`#queue-rows tr[data-case="${escalated}"]`)
      await row.waitFor()
      expect(await page.evaluate(() => (globalThis as unknown as { marker: number }).marker)).toBe(marker)
      await expect.poll(() => row.locator('.rule').textContent()).toBe(decision.rules[0])
      expect(await row.locator('.prio').textContent()).toBe('P1')
      await shot('queue')
    },
    STEP,
  )

  it(
    'reads why a case was escalated: rule, reason, trigger and the signal values read',
    async () => {
      await page.locator(`#queue-rows tr[data-case="${escalated}"] a`).click()
      await page.getByRole('heading', { name: 'Why it is with a human' }).waitFor()
      const why = page.locator('#why')
      const text = ((await why.textContent()) ?? '').replace(/\s+/g, ' ')
      expect(text).toContain(`Rule ${decision.rules[0]}`)
      expect(text).toContain(decision.explanation[0]!.reason)
      expect(text).toContain(`trigger ${decision.trigger}`)
      expect(text).toMatch(/signals\.risk\.fraud = true/)
      // The timeline reads AI → human.
      const steps = page.locator('ol.timeline > li')
      expect(await steps.count()).toBe(2)
      expect(await steps.nth(0).getAttribute('class')).toBe('ai')
      expect(await steps.nth(1).getAttribute('class')).toBe('human')
      // Each audit entry of the case is proved, in the browser, against the latest signed head.
      const proofs = page.locator('#audit-proofs')
      await expect
        .poll(async () => [await proofs.getAttribute('data-pending'), await proofs.getAttribute('data-failed')], {
          timeout: WAIT,
        })
        .toEqual(['0', '0'])
      expect(Number(await proofs.getAttribute('data-verified'))).toBeGreaterThanOrEqual(6)
      await expect.poll(() => page.locator('#audit-head-status').textContent()).toContain('head signature ✓')
      await shot('case')
    },
    STEP,
  )

  it(
    'shows the signed tree head verified by Baton and in the browser, and a case’s proofs',
    async () => {
      await page.getByRole('link', { name: 'Audit' }).click()
      await page.getByRole('heading', { name: 'Latest signed tree head' }).waitFor()
      await expect.poll(() => page.locator('#head-browser-check').textContent()).toContain('✓ Ed25519 signature valid')
      await page.getByLabel('Case id').fill(escalated)
      await page.getByRole('button', { name: 'Show proofs' }).click()
      await expect.poll(() => page.locator('#audit-proofs').getAttribute('data-failed')).toBe('0')
      await shot('audit')
    },
    STEP,
  )

  it(
    'draws the overview charts with the locally served Chart.js',
    async () => {
      await page.getByRole('link', { name: 'Overview' }).click()
      await expect.poll(() => page.locator('body').getAttribute('data-charts-drawn')).toBe('5')
      await shot('overview')
    },
    STEP,
  )

  it(
    'lists agents with owners, lifecycle and granted tools',
    async () => {
      await page.getByRole('link', { name: 'Agents' }).click()
      const row = page.locator('tr[data-agent="shop-assistant"]')
      await row.waitFor()
      expect(await row.textContent()).toContain('dana.ops@shop.example')
      await shot('agents')
    },
    STEP,
  )

  it(
    'shows the approvals inbox',
    async () => {
      await page.getByRole('link', { name: 'Approvals' }).click()
      await page.getByRole('heading', { name: 'Approvals', level: 1 }).waitFor()
      await shot('approvals')
    },
    STEP,
  )

  it(
    'refuses state changes without the CSRF token, and API keys still work as before',
    async () => {
      // The session cookie reaches the API, but a state change needs the token too.
      const noToken = await page.request.post('/v1/cases', {
        data: { customer: 'x', channel: 'chat', message: { text: 'hi' } },
      })
      expect(noToken.status()).toBe(403)
      const read = await page.request.get(`/v1/cases/${escalated}`)
      expect(read.status()).toBe(200)
      const logoutNoToken = await page.request.post('/console/logout', { form: { _csrf: 'nope' } })
      expect(logoutNoToken.status()).toBe(403)
      // A key wins over the cookie: an operator key may not open cases, whatever session the browser holds.
      const keyed = await page.request.post('/v1/cases', {
        headers: bearer(t.keys.operator),
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
      expect((await context.cookies()).find((c) => c.name === 'baton_session')).toBeUndefined()
      await page.goto('/console/queue')
      await page.getByLabel('API key').waitFor()
      expect(page.url()).toContain('/console/login?next=')
    },
    STEP,
  )

  it(
    'sent no request anywhere but this Baton',
    () => {
      expect(offsite).toEqual([])
    },
    STEP,
  )
})

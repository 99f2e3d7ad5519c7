import type { LookupAddress } from 'node:dns'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type App, createApp } from '../src/app.js'
import { configFrom } from '../src/config.js'
import { SHOP } from './support/app.js'

/** A JSON answer; the members tests read. */
// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary members of answers
type Json = Record<string, any>

/** A listening Baton with its admin key; `resolve` stands in for DNS when given. */
async function baton(
  allowPrivate: boolean,
  resolve?: (host: string) => Promise<readonly LookupAddress[]>,
): Promise<{ app: App; url: string; admin: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-hooks-'))
  const config = configFrom(
    {},
    { dataDir: dir, workspace: SHOP, watchPolicy: false, logLevel: 'silent', webhookAllowPrivate: allowPrivate },
  )
  const app = await createApp(config, {
    logger: pino({ level: 'silent' }),
    work: { webhookIntervalMs: 50, webhookBaseBackoffMs: 50, ...(resolve === undefined ? {} : { resolve }) },
  })
  const url = await app.server.listen({ port: 0, host: '127.0.0.1' })
  return { app, url, admin: app.generatedAdminKey!, dir }
}

/** Webhook targets over real HTTP: non-public addresses refused unless BATON_WEBHOOK_ALLOW_PRIVATE=1. */
describe('webhook URLs to private, loopback, link-local and metadata addresses', () => {
  let receiver: Server
  let receiverPort: number
  const received: string[] = []
  const opened: { app: App; dir: string }[] = []

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      received.push(String(req.headers['webhook-id']))
      req.resume()
      res.end()
    })
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r))
    receiverPort = (receiver.address() as AddressInfo).port
  })
  afterAll(async () => {
    for (const o of opened) {
      await o.app.close()
      rmSync(o.dir, { recursive: true, force: true })
    }
    await new Promise((r) => receiver.close(r))
  })

  const subscribe = async (b: { url: string; admin: string }, url: string, events = ['case.opened']) => {
    const r = await fetch(`${b.url}/v1/webhooks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${b.admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url, events }),
    })
    return { status: r.status, body: (await r.json()) as Json }
  }
  /** Opens a case: an audit entry of type case.opened, which the subscriptions below want. */
  const openCase = async (b: { url: string; admin: string }, customer: string) => {
    const c = await fetch(`${b.url}/v1/cases`, {
      method: 'POST',
      headers: { authorization: `Bearer ${b.admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ customer, channel: 'chat', message: { text: 'Where is my order?' } }),
    })
    expect(c.status).toBe(201)
  }
  const hooks = async (b: { url: string; admin: string }) =>
    ((await (await fetch(`${b.url}/v1/webhooks`, { headers: { authorization: `Bearer ${b.admin}` } })).json()) as Json)
      .items as Json[]

  it('refuses each with VALIDATION_FAILED naming url, and subscribes nothing', async () => {
    const b = await baton(false)
    opened.push(b)
    for (const url of [
      `http://127.0.0.1:${receiverPort}/hook`,
      'http://127.9.9.9/hook',
      'http://10.1.2.3/hook',
      'http://172.16.0.1/hook',
      'http://172.31.255.254/hook',
      'http://192.168.1.10/hook',
      'http://169.254.169.254/latest/meta-data/',
      'http://0.0.0.0/hook',
      'http://2130706433/hook',
      'http://[::1]/hook',
      'http://[fd00::1]/hook',
      'http://[fd00:ec2::254]/latest/meta-data/',
      'http://[fc00::1]/hook',
      'http://[fe80::1]/hook',
      'http://[::ffff:127.0.0.1]/hook',
      'http://[::ffff:169.254.169.254]/hook',
      // a name that resolves to loopback (getaddrinfo, as delivery would)
      `http://localhost:${receiverPort}/hook`,
      'http://nothing-here.invalid/hook',
    ]) {
      const r = await subscribe(b, url)
      expect(r.status, `${url}: ${JSON.stringify(r.body)}`).toBe(400)
      expect(r.body.code).toBe('VALIDATION_FAILED')
      expect(r.body.errors).toEqual([{ field: 'url', message: expect.any(String) }])
    }
    expect(await hooks(b)).toEqual([])
    // Just outside the private ranges: a public address is subscribed (and unsubscribed at once).
    const ok = await subscribe(b, 'http://172.32.0.1:9/hook', ['approval.decided'])
    expect(ok.status, JSON.stringify(ok.body)).toBe(201)
    const del = await fetch(`${b.url}/v1/webhooks/${ok.body.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${b.admin}` },
    })
    expect(del.status).toBe(204)
  })

  it('at delivery, refuses a name that resolved to a public address when subscribed and to 127.0.0.1 now', async () => {
    // DNS rebinding: the first answer is public, every later one is the receiver's loopback address.
    let asked = 0
    const resolve = async (host: string): Promise<readonly LookupAddress[]> => {
      if (host !== 'hooks.rebind.test') throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' })
      asked++
      return asked === 1 ? [{ address: '93.184.215.14', family: 4 }] : [{ address: '127.0.0.1', family: 4 }]
    }
    const b = await baton(false, resolve)
    opened.push(b)
    const sub = await subscribe(b, `http://hooks.rebind.test:${receiverPort}/hook`)
    expect(sub.status, JSON.stringify(sub.body)).toBe(201)
    const before = received.length
    await openCase(b, 'cu_rebind')
    await expect
      .poll(async () => (await hooks(b)).find((h) => h.id === sub.body.id)?.delivery.lastError, {
        timeout: 10_000,
        interval: 50,
      })
      .toMatch(/resolves to 127\.0\.0\.1/)
    expect((await hooks(b)).find((h) => h.id === sub.body.id)?.delivery.delivered).toBe(0)
    expect(received.length).toBe(before)
  })

  it('with BATON_WEBHOOK_ALLOW_PRIVATE=1, subscribes and delivers to 127.0.0.1', async () => {
    const b = await baton(true)
    opened.push(b)
    const sub = await subscribe(b, `http://127.0.0.1:${receiverPort}/hook`)
    expect(sub.status, JSON.stringify(sub.body)).toBe(201)
    const before = received.length
    await openCase(b, 'cu_inside')
    await expect.poll(() => received.length, { timeout: 10_000, interval: 50 }).toBeGreaterThan(before)
  })
})

import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { openStore } from '../src/app.js'
import { verify } from '../src/events/signature.js'
import { formatKey } from '../src/identity/keys.js'
import { SHOP } from './support/app.js'
import { freshDatabase, pgAvailable } from './support/pg.js'
import { startServer } from './support/server.js'

const SLA_S = 4

const kill = (proc: ChildProcess, signal: NodeJS.Signals) =>
  new Promise<void>((r) => {
    proc.once('exit', () => r())
    proc.kill(signal)
  })

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(
    `durable timers and webhooks across SIGKILL (${engine})`,
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'baton-timers-crash-'))
      let dropDb: (() => Promise<void>) | undefined
      afterAll(async () => {
        await dropDb?.()
        rmSync(dir, { recursive: true, force: true })
      })

      it('fires each pending SLA and approval-expiry timer exactly once after a restart, and delivers its webhook event', async () => {
        const workspace = join(dir, 'shop')
        cpSync(SHOP, workspace, { recursive: true })
        const queues = readFileSync(join(workspace, 'queues.yaml'), 'utf8')
        writeFileSync(join(workspace, 'queues.yaml'), queues.replace(/(id: billing[\s\S]*?sla: )15m/, `$1${SLA_S}s`))
        const adminKey = formatKey('admin', randomBytes(32))
        const env: Record<string, string> = {
          BATON_DATA_DIR: join(dir, 'data'),
          BATON_ADMIN_KEY: adminKey,
          BATON_WORKSPACE: workspace,
          BATON_APPROVAL_TTL_S: String(SLA_S),
          // the webhook receiver below listens on 127.0.0.1, which Baton refuses by default
          BATON_WEBHOOK_ALLOW_PRIVATE: '1',
        }
        if (engine === 'postgres') {
          const db = await freshDatabase()
          dropDb = db.drop
          env.BATON_DATABASE_URL = db.url
        }
        // The receiver fails everything until the first server is gone, then verifies and accepts.
        const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
        let accepting = false
        const received = new Map<string, { ok: boolean; subject: string }>()
        const receiver = createServer((req, res) => {
          let body = ''
          req.on('data', (d: Buffer) => {
            body += d.toString()
          })
          req.on('end', () => {
            if (!accepting) return void res.writeHead(500).end()
            const ok = verify(secret, req.headers as Record<string, string>, body, Math.floor(Date.now() / 1000))
            received.set(String(req.headers['webhook-id']), { ok, subject: JSON.parse(body).subject })
            res.writeHead(200).end()
          })
        })
        await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r))
        const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/in`

        const headers = { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }
        const first = await startServer(env)
        const ids: string[] = []
        let approvalCase = ''
        try {
          const hook = await fetch(`${first.url}/v1/webhooks`, {
            method: 'POST',
            headers,
            body: JSON.stringify({ url: hookUrl, events: ['case.sla_breached'], secret }),
          })
          expect(hook.status).toBe(201)
          for (let i = 0; i < 6; i++) {
            const r = await fetch(`${first.url}/v1/cases`, {
              method: 'POST',
              headers,
              body: JSON.stringify({
                customer: `cu_t${i}`,
                channel: 'chat',
                message: { text: `I was charged twice for order ${i}, I want a refund` },
              }),
            })
            expect(r.status).toBe(201)
            const b = (await r.json()) as { id: string; handler: { queue: string } }
            expect(b.handler.queue).toBe('billing')
            ids.push(b.id)
          }
          // An approval pending at the kill: the agent asks for a large refund on a case it holds.
          const cred = await fetch(`${first.url}/v1/agents/shop-assistant/credentials`, {
            method: 'POST',
            headers,
            body: JSON.stringify({ kind: 'secret' }),
          })
          expect(cred.status).toBe(201)
          const clientSecret = ((await cred.json()) as { secret: string }).secret
          const opened = await fetch(`${first.url}/v1/cases`, {
            method: 'POST',
            headers,
            body: JSON.stringify({
              customer: 'cu_appr',
              channel: 'chat',
              message: { text: 'Hi, where is my order? It is late.' },
            }),
          })
          const agentCase = (await opened.json()) as { id: string; handler: { kind: string } }
          expect(agentCase.handler.kind).toBe('agent')
          approvalCase = agentCase.id
          const tok = await fetch(`${first.url}/v1/oauth/token`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({
              grant_type: 'client_credentials',
              client_id: 'shop-assistant',
              client_secret: clientSecret,
              case_id: agentCase.id,
            }).toString(),
          })
          expect(tok.status).toBe(200)
          const accessToken = ((await tok.json()) as { access_token: string }).access_token
          const asked = await fetch(`${first.url}/v1/cases/${agentCase.id}/actions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' },
            body: JSON.stringify({ tool: 'refund', params: { order_id: 'A-77', amount: 400, currency: 'EUR' } }),
          })
          expect(asked.status).toBe(202)
        } finally {
          // Killed before any SLA is due: the timers are only rows now.
          await kill(first.proc, 'SIGKILL')
        }
        await new Promise((r) => setTimeout(r, (SLA_S + 1) * 1000))
        accepting = true

        const second = await startServer(env)
        try {
          const breaches = async () => {
            const store = openStore({ dataDir: env.BATON_DATA_DIR!, databaseUrl: env.BATON_DATABASE_URL })
            try {
              const out = new Map<string, number>()
              for (const id of ids) {
                const types = (await store.listCaseAudit(id)).map((e) => JSON.parse(e.entry).type as string)
                out.set(id, types.filter((t) => t === 'case.sla_breached').length)
              }
              return out
            } finally {
              await store.close()
            }
          }
          const approvalExpiries = async () => {
            const store = openStore({ dataDir: env.BATON_DATA_DIR!, databaseUrl: env.BATON_DATABASE_URL })
            try {
              const types = (await store.listCaseAudit(approvalCase)).map((e) => JSON.parse(e.entry).type as string)
              return types.filter((t) => t === 'approval.expired').length
            } finally {
              await store.close()
            }
          }
          let counts = new Map<string, number>()
          for (const deadline = Date.now() + 45_000; Date.now() < deadline; ) {
            counts = await breaches()
            const expiredApprovals = await approvalExpiries()
            if ([...counts.values()].every((n) => n >= 1) && received.size >= ids.length && expiredApprovals >= 1) break
            await new Promise((r) => setTimeout(r, 250))
          }
          expect([...counts.values()]).toEqual(ids.map(() => 1))
          // The approval pending at the kill expired by its timer after the restart, once.
          expect(await approvalExpiries()).toBe(1)
          // Webhook delivery resumed after the restart: one event per breach, each signed.
          expect(new Set([...received.values()].map((v) => v.subject))).toEqual(new Set(ids))
          expect([...received.values()].every((v) => v.ok)).toBe(true)
        } finally {
          await kill(second.proc, 'SIGKILL')
        }
        // And a third life fires nothing again.
        const third = await startServer(env)
        try {
          await new Promise((r) => setTimeout(r, 2500))
        } finally {
          await kill(third.proc, 'SIGTERM')
        }
        const store = openStore({ dataDir: env.BATON_DATA_DIR!, databaseUrl: env.BATON_DATABASE_URL })
        try {
          for (const id of ids) {
            const types = (await store.listCaseAudit(id)).map((e) => JSON.parse(e.entry).type as string)
            expect(types.filter((t) => t === 'case.sla_breached')).toHaveLength(1)
            expect(types.filter((t) => t === 'case.handed_off')).toHaveLength(1)
          }
          const approvalTypes = (await store.listCaseAudit(approvalCase)).map((e) => JSON.parse(e.entry).type as string)
          expect(approvalTypes.filter((t) => t === 'approval.requested')).toHaveLength(1)
          expect(approvalTypes.filter((t) => t === 'approval.expired')).toHaveLength(1)
        } finally {
          await store.close()
          await new Promise((r) => receiver.close(r))
        }
      }, 120_000)
    },
  )
}

import type { ChildProcess } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type CryptoKey, exportJWK, generateKeyPair } from 'jose'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatKey } from '../src/identity/keys.js'
import { SHOP } from './support/app.js'
import { signAssertion } from './support/assertion.js'
import { runCli } from './support/audit.js'
import { freshDatabase, pgAvailable } from './support/pg.js'
import { startServer } from './support/server.js'

/*
 * Three real `baton serve` processes on one PostgreSQL database, each with its own data directory and workspace copy
 * (as on three machines), sharing the database URL, the secrets key file's contents, the audit signing key and an
 * admin key. A client sends each request to a random node.
 */

/** Longest time for a policy activated on one node to be in force on every node (NOTIFY; fallback poll 2 s). */
const POLICY_EVERYWHERE_MS = 2500
/** Longest time for a surviving node to sign heads after the sequencer's node is SIGKILLed (1 s rounds). */
const SEQUENCER_TAKEOVER_MS = 3000
/** Longest lateness of a timer due after its node was SIGKILLed (the survivors armed a wake-up from its NOTIFY). */
const TIMER_LATENESS_MS = 3000
/** Longest lateness of a timer while its node lives: the NOTIFY arms every node's wake-up for its due time. */
const TIMER_PROMPT_MS = 1000
/**
 * Longest time for an API key revoked on one node to be refused on the others, which had it cached: the revocation's
 * NOTIFY clears their caches. Under the cache's own 1 s, so that this passes only through the NOTIFY.
 */
const KEY_REVOKED_EVERYWHERE_MS = 500

type Node = { proc: ChildProcess; url: string; output: () => string; pid: number; alive: boolean }

const ADMIN = formatKey('admin', randomBytes(32))
const SEQUENCER_LOCK = 0x6261746f6e736571n

describe.skipIf(!pgAvailable)('several nodes on one PostgreSQL database', () => {
  const root = mkdtempSync(join(tmpdir(), 'baton-multinode-'))
  const nodes: Node[] = []
  let db: { url: string; drop: () => Promise<void> }
  let admin: pg.Client
  const receiver = { hits: new Map<string, number>(), server: undefined as Server | undefined, url: '' }

  const alive = () => nodes.filter((n) => n.alive)
  const any = () => {
    const live = alive()
    return live[Math.floor(Math.random() * live.length)]!
  }
  async function call(node: Node, method: string, path: string, body?: unknown, key = ADMIN) {
    const r = await fetch(`${node.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined
          ? {}
          : typeof body === 'string'
            ? { 'content-type': 'application/yaml' }
            : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    })
    const text = await r.text()
    return { status: r.status, body: text === '' ? undefined : JSON.parse(text) }
  }
  async function openCase(node: Node, text: string) {
    const r = await call(node, 'POST', '/v1/cases', {
      customer: `cu_${randomUUID().slice(0, 8)}`,
      channel: 'chat',
      message: { text },
    })
    expect(r.status, JSON.stringify(r.body)).toBe(201)
    return r.body as { id: string; handler: { kind: string }; decision: { policy: { version: number } } }
  }
  const orderQuestion = () => 'Hi, where is my order? It is late.'

  /** Registers a fresh key for the shop's agent on `node` (admin) and returns its private half. */
  async function registerAgent(node: Node) {
    const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
    const jwk = await exportJWK(pair.publicKey)
    const reg = await call(node, 'POST', '/v1/agents/shop-assistant/credentials', {
      kind: 'public_key',
      jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x },
    })
    expect(reg.status, JSON.stringify(reg.body)).toBe(201)
    return pair.privateKey
  }
  /** The agent's access token for one case, from `node`'s token endpoint (a client assertion, RFC 7523). */
  async function agentToken(node: Node, privateKey: CryptoKey, caseId: string): Promise<string> {
    const tok = await fetch(`${node.url}/v1/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: await signAssertion(privateKey),
        case_id: caseId,
      }),
    })
    expect(tok.status).toBe(200)
    return ((await tok.json()) as { access_token: string }).access_token
  }

  async function startNode(i: number, extra: Record<string, string> = {}): Promise<Node> {
    const dir = join(root, `node${i}`)
    const started = await startServer({
      BATON_DATABASE_URL: db.url,
      BATON_DATA_DIR: join(dir, 'data'),
      BATON_WORKSPACE: join(dir, 'workspace'),
      BATON_SECRETS_KEY_FILE: join(root, 'secrets.key'),
      BATON_AUDIT_SIGNING_KEY_FILE: join(root, 'audit-signing-key.pem'),
      BATON_ADMIN_KEY: ADMIN,
      BATON_WEBHOOK_ALLOW_PRIVATE: '1',
      BATON_APPROVAL_TTL_S: '3',
      ...extra,
    })
    return { ...started, pid: started.proc.pid!, alive: true }
  }

  beforeAll(async () => {
    db = await freshDatabase()
    admin = new pg.Client({ connectionString: db.url })
    await admin.connect()
    for (let i = 0; i < 3; i++) cpSync(SHOP, join(root, `node${i}`, 'workspace'), { recursive: true })
    // The first node creates the secrets key and the audit signing key; the others are given the same files.
    nodes.push(await startNode(0, { BATON_WATCH_POLICY: '1' }))
    nodes.push(...(await Promise.all([startNode(1), startNode(2)])))
    receiver.server = createServer((req, res) => {
      const id = String(req.headers['webhook-id'])
      req.resume()
      req.on('end', () => {
        receiver.hits.set(id, (receiver.hits.get(id) ?? 0) + 1)
        res.writeHead(204).end()
      })
    })
    await new Promise<void>((r) => receiver.server!.listen(0, '127.0.0.1', r))
    receiver.url = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}/hook`
  }, 60_000)

  afterAll(async () => {
    for (const n of nodes) if (n.alive) n.proc.kill('SIGTERM')
    await Promise.all(
      nodes.map(
        (n) =>
          new Promise((r) =>
            n.proc.exitCode !== null || n.proc.signalCode !== null ? r(null) : n.proc.once('exit', r),
          ),
      ),
    )
    receiver.server?.close()
    await admin?.end()
    await db?.drop()
    rmSync(root, { recursive: true, force: true })
  })

  it('concurrent messages on one case from different nodes are applied in one order, none lost', async () => {
    const c = await openCase(any(), orderQuestion())
    const texts = Array.from(
      { length: 12 },
      (_, i) => `message ${i}: ${i % 4 === 3 ? 'I want to change the email on my account' : 'any news on my order?'}`,
    )
    const answers = await Promise.all(
      texts.map((text) => call(any(), 'POST', `/v1/cases/${c.id}/messages`, { message: { text } })),
    )
    // Each is applied, or refused whole after its retries (409 CONFLICT): never a 5xx, never half-applied.
    for (const a of answers) expect([200, 409], JSON.stringify(a.body)).toContain(a.status)
    const accepted = texts.filter((_, i) => answers[i]!.status === 200)
    expect(accepted.length).toBeGreaterThanOrEqual(6)
    const got = (await call(any(), 'GET', `/v1/cases/${c.id}`)).body
    const stored = got.messages.map((m: { text: string }) => m.text)
    expect(stored).toHaveLength(1 + accepted.length)
    expect(new Set(stored.slice(1))).toEqual(new Set(accepted))
    // One decision per message, events dense in one order, the handler history a chain ending at the handler now.
    expect(got.decisions).toHaveLength(1 + accepted.length)
    expect(got.events.map((e: { seq: number }) => e.seq)).toEqual(got.events.map((_: unknown, i: number) => i + 1))
    expect(got.handlers.at(-1).handler).toEqual(got.handler)
    // Each recorded change is a change: no two nodes handed the case to the same handler from the same state.
    for (let i = 1; i < got.handlers.length; i++)
      expect(got.handlers[i].handler).not.toEqual(got.handlers[i - 1].handler)
    const handedOff = got.events.filter((e: { type: string }) => e.type === 'case.handed_off')
    expect(handedOff).toHaveLength(got.handlers.length - 1)
    // Every node reads the same case.
    for (const n of alive()) expect((await call(n, 'GET', `/v1/cases/${c.id}`)).body.events).toEqual(got.events)
  })

  it('webhooks and SSE deliver each event once across nodes', async () => {
    const hook = await call(nodes[0]!, 'POST', '/v1/webhooks', { url: receiver.url, events: ['case.opened'] })
    expect(hook.status).toBe(201)
    const streams = [nodes[1]!, nodes[2]!].map((n) => sse(n, 'case.opened'))
    await Promise.all(streams.map((s) => s.ready))
    const opened = await Promise.all(Array.from({ length: 15 }, () => openCase(any(), orderQuestion())))
    const ids = new Set(opened.map((c) => c.id))
    const seen = (events: { id: string; data: { caseId: string } }[]) => events.filter((e) => ids.has(e.data.caseId))
    const started = Date.now()
    await until(() => streams.every((s) => seen(s.events).length >= ids.size), 10_000)
    const sseMs = Date.now() - started
    await until(() => [...receiver.hits.keys()].length >= ids.size, 10_000)
    await new Promise((r) => setTimeout(r, 1000)) // time for a duplicate to show, were there one
    for (const s of streams) {
      const mine = seen(s.events)
      expect(mine).toHaveLength(ids.size)
      expect(new Set(mine.map((e) => e.id)).size).toBe(ids.size)
      s.close()
    }
    expect(
      [...receiver.hits.values()].every((n) => n === 1),
      JSON.stringify([...receiver.hits]),
    ).toBe(true)
    expect(receiver.hits.size).toBe(ids.size)
    console.log(`multinode: SSE on two nodes saw all ${ids.size} events ${sseMs} ms after the last open was answered`)
  })

  it('a handoff on node A ends the agent credential on B and C at once', async () => {
    const [a, b, c] = nodes as [Node, Node, Node]
    const key = await registerAgent(a)
    const opened = await openCase(b, orderQuestion())
    expect(opened.handler.kind).toBe('agent')
    const token = await agentToken(b, key, opened.id)
    const introspect = (n: Node) => call(n, 'POST', '/v1/oauth/introspect', { token })
    for (const n of [a, b, c]) expect((await introspect(n)).body.active).toBe(true)
    const took = await call(a, 'POST', `/v1/cases/${opened.id}/takeover`, { reason: 'VIP', operatorId: 'linus' })
    expect(took.status, JSON.stringify(took.body)).toBe(200)
    // The very next requests, no waiting: the case's authority epoch moved in the shared store.
    const [onB, onC] = await Promise.all([introspect(b), introspect(c)])
    expect(onB.body).toEqual({ active: false })
    expect(onC.body).toEqual({ active: false })
    const act = await fetch(`${c.url}/v1/cases/${opened.id}/actions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tool: 'reply', params: { text: 'hello' } }),
    })
    expect(act.status).toBe(401)
    expect(((await act.json()) as { code: string }).code).toBe('CREDENTIAL_REVOKED')
  })

  it('an API key revoked on node A is refused on B and C within the stated time, though they had it cached', async () => {
    const [a, b, c] = nodes as [Node, Node, Node]
    const made = await call(a, 'POST', '/v1/keys', { role: 'service', name: 'helpdesk' })
    expect(made.status, JSON.stringify(made.body)).toBe(201)
    const { id, key } = made.body as { id: string; key: string }
    // each node has it in its cache now
    for (const n of [a, b, c]) expect((await call(n, 'GET', '/v1/policy', undefined, key)).status).toBe(200)
    expect((await call(a, 'DELETE', `/v1/keys/${id}`)).status).toBe(204)
    expect((await call(a, 'GET', '/v1/policy', undefined, key)).status).toBe(401)
    const revokedAt = Date.now()
    for (const n of [b, c]) {
      for (;;) {
        const r = await call(n, 'GET', '/v1/policy', undefined, key)
        if (r.status === 401) break
        expect(r.status).toBe(200)
        expect(Date.now() - revokedAt).toBeLessThan(KEY_REVOKED_EVERYWHERE_MS)
        await new Promise((done) => setTimeout(done, 10))
      }
    }
    expect(Date.now() - revokedAt).toBeLessThan(KEY_REVOKED_EVERYWHERE_MS)
  })

  it('a policy activated on one node is in force on every node within the stated time', async () => {
    const file = join(root, 'node0', 'workspace', 'policy.yaml')
    const source = readFileSync(file, 'utf8')
    const current = (await call(nodes[1]!, 'GET', '/v1/policy')).body.version as number
    const inForce = async (version: number) => {
      const started = Date.now()
      await until(async () => {
        const versions = await Promise.all(alive().map(async (n) => (await call(n, 'GET', '/v1/policy')).body.version))
        return versions.every((v) => v === version)
      }, 10_000)
      const ms = Date.now() - started
      // Every decision names the version it used, on whichever node decided.
      for (const n of alive()) expect((await openCase(n, orderQuestion())).decision.policy.version).toBe(version)
      return ms
    }
    // PUT on node 1.
    const put = await call(nodes[1]!, 'PUT', '/v1/policy', source.replace(/^(\s*version:\s*)\d+/m, `$1${current + 1}`))
    expect(put.status, JSON.stringify(put.body)).toBe(200)
    const putMs = await inForce(current + 1)
    // A file change on node 0 (watched; the watch debounces up to 1 s before node 0 activates it).
    writeFileSync(file, source.replace(/^(\s*version:\s*)\d+/m, `$1${current + 2}`))
    const fileMs = await inForce(current + 2)
    console.log(`multinode: policy in force on all nodes ${putMs} ms after PUT, ${fileMs} ms after a file change`)
    expect(putMs).toBeLessThan(POLICY_EVERYWHERE_MS)
    expect(fileMs).toBeLessThan(POLICY_EVERYWHERE_MS + 1000)
  })

  it('a timer set on one node fires at its due time on some node, woken by NOTIFY (the fallback poll is 5 s)', async () => {
    const node = any()
    const key = await registerAgent(node)
    const opened = await openCase(node, orderQuestion())
    const token = await agentToken(node, key, opened.id)
    const big = await fetch(`${node.url}/v1/cases/${opened.id}/actions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tool: 'refund', params: { order_id: 'A-3', amount: 400, currency: 'EUR' } }),
    })
    expect(big.status).toBe(202)
    const approval = ((await big.json()) as { approval: { id: string; expiresAt: string } }).approval
    const dueAt = Date.parse(approval.expiresAt)
    await until(async () => {
      const r = await admin.query<{ state: string }>(
        `select state from timers where kind = 'approval_expiry' and key = $1`,
        [approval.id],
      )
      return r.rows[0]?.state === 'fired'
    }, 10_000)
    const lateMs = Date.now() - dueAt
    console.log(`multinode: approval timer set on one node fired ${lateMs} ms after due (fallback poll 5 s)`)
    expect(lateMs).toBeLessThan(TIMER_PROMPT_MS)
  })

  it('the sequencer and the timers move to a surviving node when the one holding them is SIGKILLed; the log verifies', async () => {
    const holderPid = async (): Promise<number | undefined> => {
      const r = await admin.query<{ app: string }>(
        `select a.application_name as app from pg_locks l join pg_stat_activity a on a.pid = l.pid
          where l.locktype = 'advisory' and l.granted and ((l.classid::bigint << 32) | l.objid::bigint) = $1
            and l.database = (select oid from pg_database where datname = current_database())`,
        [SEQUENCER_LOCK.toString()],
      )
      const app = r.rows[0]?.app
      return app === undefined ? undefined : Number(app.split(':').at(-1))
    }
    await until(async () => (await holderPid()) !== undefined, 5000)
    const pid = (await holderPid())!
    const holder = nodes.find((n) => n.pid === pid)
    expect(holder, `the lock holder ${pid} is one of the nodes`).toBeDefined()
    // A timer scheduled by the holder: an approval that expires 3 s from now (BATON_APPROVAL_TTL_S).
    const key = await registerAgent(holder!)
    const opened = await openCase(holder!, orderQuestion())
    const token = await agentToken(holder!, key, opened.id)
    const big = await fetch(`${holder!.url}/v1/cases/${opened.id}/actions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tool: 'refund', params: { order_id: 'A-2', amount: 400, currency: 'EUR' } }),
    })
    expect(big.status).toBe(202)
    const approval = ((await big.json()) as { approval: { id: string; expiresAt: string } }).approval
    const dueAt = Date.parse(approval.expiresAt)

    holder!.proc.kill('SIGKILL')
    holder!.alive = false
    const killedAt = Date.now()
    await new Promise((r) => holder!.proc.once('exit', r))
    // Writes go on at the survivors; a new holder signs heads that cover them.
    const after = await openCase(any(), orderQuestion())
    const size = Number((await admin.query<{ n: string }>('select count(*) as n from audit_entries')).rows[0]!.n)
    await until(async () => {
      const head = await call(any(), 'GET', '/v1/audit/head')
      return head.status === 200 && head.body.size >= size
    }, 10_000)
    const takeoverMs = Date.now() - killedAt
    const newHolder = await holderPid()
    expect(alive().map((n) => n.pid)).toContain(newHolder)
    expect(after.id).toBeDefined()

    await until(async () => (await call(any(), 'GET', `/v1/approvals/${approval.id}`)).body.state === 'expired', 15_000)
    const lateMs = Date.now() - dueAt
    console.log(
      `multinode: sequencer signing again on a survivor ${takeoverMs} ms after SIGKILL; approval timer fired ${lateMs} ms after due on a survivor`,
    )
    expect(takeoverMs).toBeLessThan(SEQUENCER_TAKEOVER_MS)
    expect(lateMs).toBeLessThan(TIMER_LATENESS_MS)

    // The log stays dense and verifies, written by three nodes, one of them killed.
    const seqs = await admin.query<{ n: string; max: string }>(
      'select count(*) as n, max(seq) as max from audit_entries',
    )
    expect(Number(seqs.rows[0]!.max) + 1).toBe(Number(seqs.rows[0]!.n))
    const verify = await runCli(['audit', 'verify'], { BATON_DATABASE_URL: db.url })
    expect(verify.code, verify.stdout + verify.stderr).toBe(0)
  }, 90_000) // a SIGKILL, a 3 s approval expiry and the verify CLI: ~10 s alone, more beside the whole suite
})

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** An SSE subscriber: every event of `types` the node streams, parsed. */
function sse(node: Node, types: string) {
  const events: { id: string; data: { caseId: string } }[] = []
  const abort = new AbortController()
  let resolveReady: () => void = () => undefined
  const ready = new Promise<void>((r) => {
    resolveReady = r
  })
  void (async () => {
    const r = await fetch(`${node.url}/v1/events?types=${types}`, {
      headers: { authorization: `Bearer ${ADMIN}` },
      signal: abort.signal,
    })
    resolveReady()
    const decoder = new TextDecoder()
    let buffer = ''
    try {
      for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        let end = buffer.indexOf('\n\n')
        while (end >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const data = block.split('\n').find((l) => l.startsWith('data: '))
          if (data !== undefined) {
            const ev = JSON.parse(data.slice(6)) as { id: string; data: { caseId: string } }
            events.push(ev)
          }
          end = buffer.indexOf('\n\n')
        }
      }
    } catch {
      // aborted
    }
  })()
  return { events, ready, close: () => abort.abort() }
}

import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { type CallToolResult, McpError } from '@modelcontextprotocol/sdk/types.js'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { canonicalDigest } from '../src/approvals/approval.js'
import { bearer, startTestApp, type TestApp } from './support/app.js'
import { signAssertion } from './support/assertion.js'
import { startConnector } from './support/connector.js'
import {
  type AgentKey,
  agentKey,
  CaseTokenProvider,
  caseToken,
  connectWithToken,
  eventually,
  startUpstream,
  upstreamCalls,
} from './support/mcp.js'
import { mcpWorkspace } from './support/mcp-workspace.js'
import { pgAvailable } from './support/pg.js'

interface AuditJson {
  readonly type: string
  readonly caseId?: string
  readonly actor: { readonly kind: string; readonly id: string }
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary members of entry data
  readonly data: Record<string, any>
}

const ACCEPT = 'application/json, text/event-stream'
const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`MCP gateway over HTTP on ${engine}`, () => {
    let t: TestApp
    let base: string
    let mcpUrl: string
    let key: AgentKey
    let secondKey: AgentKey
    let connector: Awaited<ReturnType<typeof startConnector>>
    let upstream: Awaited<ReturnType<typeof startUpstream>>
    let crashy: Awaited<ReturnType<typeof startUpstream>>
    let logs: string
    let workspace: string
    const ops: Record<string, string> = {}
    const open: { close(): Promise<void> }[] = []
    const env = ['BATON_SHOP_CONNECTOR_URL', 'MCP_UPSTREAM_URL', 'MCP_CRASHY_URL', 'NODE_BINARY', 'UPSTREAM_LOG']

    beforeAll(async () => {
      logs = mkdtempSync(join(tmpdir(), 'baton-mcp-logs-'))
      connector = await startConnector()
      ;[upstream, crashy] = await Promise.all([
        startUpstream(join(logs, 'upstream.jsonl')),
        startUpstream(join(logs, 'crashy.jsonl')),
      ])
      process.env.BATON_SHOP_CONNECTOR_URL = connector.url
      process.env.MCP_UPSTREAM_URL = upstream.url
      process.env.MCP_CRASHY_URL = crashy.url
      process.env.NODE_BINARY = process.execPath
      process.env.UPSTREAM_LOG = join(logs, 'stdio.jsonl')
      workspace = mcpWorkspace()
      t = await startTestApp({ engine, workspace })
      base = await t.app.server.listen({ port: 0, host: '127.0.0.1' })
      mcpUrl = `${base}/mcp`
      key = await agentKey()
      secondKey = await agentKey()
      for (const [agent, k] of [
        ['shop-assistant', key],
        ['second-bot', secondKey],
      ] as const) {
        const r = await post(`/v1/agents/${agent}/credentials`, t.keys.admin, { kind: 'public_key', jwk: k.publicJwk })
        expect(r.status).toBe(201)
      }
      for (const id of ['ada', 'linus']) {
        const k = await post('/v1/keys', t.keys.admin, { role: 'operator', name: id, operatorId: id })
        ops[id] = ((await k.json()) as { key: string }).key
      }
    }, 60_000)
    afterAll(async () => {
      for (const c of open) await c.close().catch(() => undefined)
      await t?.close()
      await Promise.all([connector?.close(), upstream?.stop(), crashy?.stop()])
      for (const name of env) delete process.env[name]
      rmSync(logs, { recursive: true, force: true })
      if (workspace !== undefined) rmSync(dirname(workspace), { recursive: true, force: true })
    })

    function post(path: string, k: string, body: unknown, method = 'POST'): Promise<Response> {
      return fetch(`${base}${path}`, {
        method,
        headers: { ...bearer(k), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    }

    async function openCase(
      o: { text?: string; intent?: string; agent?: string; customer?: string } = {},
    ): Promise<string> {
      const r = await post('/v1/cases', t.keys.service, {
        customer: o.customer ?? `cu_${randomUUID().slice(0, 8)}`,
        channel: 'chat',
        message: { text: o.text ?? 'Hi, where is my order? It is late.' },
        ...(o.intent === undefined ? {} : { signals: { intent: o.intent, intent_confidence: 0.95 } }),
      })
      const body = (await r.json()) as { id: string; handler: unknown }
      expect(r.status, JSON.stringify(body)).toBe(201)
      expect(body.handler).toEqual({ kind: 'agent', agentId: o.agent ?? 'shop-assistant' })
      return body.id
    }

    async function auditOf(caseId?: string): Promise<AuditJson[]> {
      await t.app.store.flushAudit()
      const size = await t.app.store.auditSize()
      const all = (await t.app.store.readAudit(0, size)).map((e) => JSON.parse(e.entry) as AuditJson)
      return caseId === undefined ? all : all.filter((e) => e.caseId === caseId)
    }

    async function session(
      caseId: string,
      o: { scope?: string; agentId?: string; key?: AgentKey } = {},
    ): Promise<{
      client: Client
      transport: StreamableHTTPClientTransport
      token: string
      changes: { n: number }
      setToken(next: string): void
    }> {
      const k = o.key ?? key
      const opts = {
        ...(o.scope === undefined ? {} : { scope: o.scope }),
        ...(o.agentId ? { agentId: o.agentId } : {}),
      }
      let token = await caseToken(base, k, caseId, opts)
      const changes = { n: 0 }
      const c = await connectWithToken(mcpUrl, () => token, {
        onListChanged: () => {
          changes.n++
        },
      })
      open.push(c.client)
      // The server's stream for notifications is opened by the SDK right after initialization.
      await new Promise((r) => setTimeout(r, 100))
      return {
        ...c,
        get token() {
          return token
        },
        changes,
        setToken(next: string) {
          token = next
        },
      }
    }

    /** A raw JSON-RPC POST to /mcp (what a broken or hostile client sends). */
    function raw(body: string, headers: Record<string, string>): Promise<Response> {
      return fetch(mcpUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: ACCEPT,
          'mcp-protocol-version': '2025-11-25',
          ...headers,
        },
        body,
      })
    }

    async function expectHttp401(p: Promise<unknown>): Promise<void> {
      const e = await p.then(
        () => undefined,
        (x: unknown) => x,
      )
      expect(e).toBeInstanceOf(StreamableHTTPError)
      expect((e as StreamableHTTPError).code).toBe(401)
    }

    it('takes a standard client from a bare 401 to a working session through the discovery documents', async () => {
      const caseId = await openCase()
      const bare = await raw(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }), {})
      expect(bare.status).toBe(401)
      expect(bare.headers.get('www-authenticate')).toBe(
        `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`,
      )
      const prm = (await (await fetch(`${base}/.well-known/oauth-protected-resource/mcp`)).json()) as object
      expect(prm).toMatchObject({
        resource: mcpUrl,
        authorization_servers: [base],
        bearer_methods_supported: ['header'],
      })
      expect((await (await fetch(`${base}/.well-known/oauth-protected-resource`)).json()) as object).toEqual(prm)
      const asm = (await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json()) as object
      expect(asm).toMatchObject({
        issuer: base,
        token_endpoint: `${base}/v1/oauth/token`,
        jwks_uri: `${base}/.well-known/jwks.json`,
        grant_types_supported: ['client_credentials'],
        token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_post'],
      })

      // The SDK client does the discovery itself: 401 → resource metadata → authorization server metadata → token
      // endpoint (private_key_jwt with the case; the assertion's audience is the issuer the metadata names).
      const client = new Client({ name: 'discovering-agent', version: '1.0.0' })
      const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
        authProvider: new CaseTokenProvider({ agentId: 'shop-assistant', key, caseId, issuer: base }),
      })
      open.push(client)
      await client.connect(transport)
      expect(transport.sessionId).toMatch(/^mcps_/)
      expect(client.getServerCapabilities()?.tools).toEqual({ listChanged: true })
      const { tools } = await client.listTools()
      expect(tools.map((x) => x.name)).toContain('reply')
      const r = await client.callTool({ name: 'reply', arguments: { text: 'It left the warehouse this morning.' } })
      expect(r.isError).toBeFalsy()
      const audit = await auditOf(caseId)
      expect(audit.find((e) => e.type === 'credential.issued')?.actor).toEqual({ kind: 'agent', id: 'shop-assistant' })
      expect(audit.find((e) => e.type === 'mcp.session_opened')?.data.client).toEqual({
        name: 'discovering-agent',
        version: '1.0.0',
      })
      const decided = audit.find((e) => e.type === 'action.decided')
      expect(decided).toMatchObject({ actor: { id: 'shop-assistant' }, data: { tool: 'reply', outcome: 'allow' } })
      expect(decided?.data.via).toEqual({ face: 'mcp', session: expect.stringMatching(/^[0-9a-f]{16}$/) })
    })

    it("lists exactly the tools the agent's authority allows on its case, with their schemas, and tells of changes", async () => {
      const customer = `cu_${randomUUID().slice(0, 8)}`
      const caseId = await openCase({ customer })
      const narrow = await session(caseId, { scope: 'reply order_status' })
      expect((await narrow.client.listTools()).tools.map((x) => x.name)).toEqual([
        'reply',
        'order_status',
        'baton_case',
        'baton_request_handoff',
        'baton_approval_status',
      ])

      const s = await session(caseId)
      const listed = (await s.client.listTools()).tools
      const names = listed.map((x) => x.name)
      // Granted and possible; not granted (cancel_subscription); certainly denied for an unverified customer
      // (disclose_order).
      expect(names).toEqual([
        'reply',
        'order_status',
        'refund',
        'change_email',
        'reset_password',
        'close_case',
        'kb_search',
        'store_credit',
        'kb_crash',
        'kb_broken',
        'kb_stdio_crash',
        'baton_case',
        'baton_request_handoff',
        'baton_approval_status',
      ])
      const refund = listed.find((x) => x.name === 'refund')!
      expect(refund).toMatchObject({
        title: 'Refund',
        description: 'Refund an amount to the original payment method',
        annotations: { destructiveHint: true, readOnlyHint: false },
        _meta: { 'dev.baton/outcomes': ['allow', 'approve', 'escalate'] },
      })
      expect(refund.inputSchema).toEqual(t.app.services.authority.catalog.get('refund')!.params)
      // Imported from the upstream MCP server as it gave it (JSON Schema 2020-12, $defs and all), its title too.
      const kb = listed.find((x) => x.name === 'kb_search')!
      expect(kb.title).toBe('Knowledge base search')
      expect(kb.inputSchema).toMatchObject({
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        $defs: { limit: { type: 'integer', minimum: 1, maximum: 10 } },
        properties: { limit: { $ref: '#/$defs/limit' } },
        additionalProperties: false,
      })
      expect(listed.find((x) => x.name === 'store_credit')?.title).toBe('Store credit')

      // The customer is verified: disclose_order becomes possible, and the session is told.
      const put = await post(`/v1/customers/${customer}`, t.keys.service, { tier: 'standard', verified: true }, 'PUT')
      expect(put.status).toBe(200)
      await eventually(() => s.changes.n > 0)
      expect((await s.client.listTools()).tools.map((x) => x.name)).toContain('disclose_order')

      const caseView = await s.client.callTool({ name: 'baton_case', arguments: {} })
      expect(caseView.structuredContent).toMatchObject({
        id: caseId,
        handler: { kind: 'agent', agentId: 'shop-assistant' },
        customer: { id: customer, verified: true },
        messages: [{ author: 'customer', text: expect.stringContaining('where is my order') }],
      })
    })

    it('a risk the agent raises changes the list: notified, the old credential is refused with 401, a new one sees fewer tools', async () => {
      const caseId = await openCase()
      const s = await session(caseId)
      expect((await s.client.listTools()).tools.map((x) => x.name)).toContain('refund')
      const r = await s.client.callTool({
        name: 'reply',
        arguments: { text: 'Let me check that for you.' },
        _meta: { 'dev.baton/risk': ['fraud'] },
      })
      expect(r.isError).toBeFalsy()
      await eventually(() => s.changes.n > 0)
      await expectHttp401(s.client.listTools())
      // Same session, a new token: the fraud override escalates refunds and credential changes, so they are gone.
      s.setToken(await caseToken(base, key, caseId))
      const names = (await s.client.listTools()).tools.map((x) => x.name)
      expect(names).toContain('reply')
      expect(names).not.toContain('refund')
      expect(names).not.toContain('change_email')
      expect(names).not.toContain('reset_password')
    })

    it('at a handoff the session is notified and the next request fails with 401', async () => {
      const caseId = await openCase()
      const s = await session(caseId)
      await s.client.listTools()
      const take = await post(`/v1/cases/${caseId}/takeover`, ops.linus!, { reason: 'I will take this one' })
      expect(take.status).toBe(200)
      await eventually(() => s.changes.n > 0)
      await expectHttp401(s.client.listTools())
      const res = await raw(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }), {
        authorization: `Bearer ${s.token}`,
        'mcp-session-id': s.transport.sessionId!,
      })
      expect(res.status).toBe(401)
      expect(res.headers.get('www-authenticate')).toMatch(
        /^Bearer resource_metadata="[^"]+", error="invalid_token", error_description="[^"]*authority changed/,
      )
      expect(
        (await auditOf(caseId)).some((e) => e.type === 'access.refused' && e.data.code === 'CREDENTIAL_REVOKED'),
      ).toBe(true)
    })

    it('allow: the connector runs once and its answer comes back as the tool result', async () => {
      const caseId = await openCase()
      const s = await session(caseId)
      const before = connector.calls.length
      const r = await s.client.callTool({ name: 'refund', arguments: { order_id: 'A-1', amount: 20, currency: 'EUR' } })
      expect(r.isError).toBeFalsy()
      expect(connector.calls.length).toBe(before + 1)
      expect(connector.calls.at(-1)?.body).toMatchObject({ tool: 'refund', caseId })
      expect(JSON.parse(text(r))).toEqual({ ok: true, ref: `ref_${before + 1}`, path: '/refund' })
      expect(r._meta?.['dev.baton/action']).toMatchObject({
        outcome: 'allow',
        state: 'executed',
        rules: ['small-refund'],
      })
      const audit = await auditOf(caseId)
      expect(audit.filter((e) => e.type === 'action.executed')).toHaveLength(1)
    })

    it('approve: waits for approval; an operator approves over HTTP; the approved parameters run once', async () => {
      const caseId = await openCase()
      const s = await session(caseId)
      const before = connector.calls.length
      const params = { order_id: 'A-2', amount: 400, currency: 'EUR' }
      const r = await s.client.callTool({ name: 'refund', arguments: params })
      expect(r.isError).toBeFalsy()
      const action = r._meta?.['dev.baton/action'] as { approval: { id: string }; state: string }
      expect(action.state).toBe('awaiting_approval')
      expect(text(r)).toContain(action.approval.id)
      expect(connector.calls.length).toBe(before)
      const status = async () =>
        (await s.client.callTool({ name: 'baton_approval_status', arguments: { approval_id: action.approval.id } }))
          .structuredContent as { state: string; action: { state: string; result: { status: number } } }
      expect((await status()).state).toBe('pending')

      const decide = (k: string) =>
        post(`/v1/approvals/${action.approval.id}/decision`, k, { decision: 'approve', reason: 'fine' })
      expect((await decide(ops.ada!)).status).toBe(200)
      expect(connector.calls.length).toBe(before + 1)
      expect(connector.calls.at(-1)?.body).toMatchObject({ tool: 'refund', params })
      expect(await status()).toMatchObject({
        state: 'approved',
        action: { state: 'executed', result: { status: 200 } },
      })
      expect((await decide(ops.ada!)).status).toBe(409)
      expect(connector.calls.length).toBe(before + 1)
    })

    it("deny: an error result with the rule's reason; nothing runs", async () => {
      const caseId = await openCase()
      const s = await session(caseId)
      const before = upstreamCalls(join(logs, 'upstream.jsonl')).length
      const r = await s.client.callTool({ name: 'store_credit', arguments: { account: 'ext-99', amount: 5 } })
      expect(r.isError).toBe(true)
      expect(text(r)).toContain("Store credit goes only to the customer's own account")
      expect(r.structuredContent).toMatchObject({ outcome: 'deny', state: 'denied', rules: ['no-outside-credit'] })
      expect(upstreamCalls(join(logs, 'upstream.jsonl'))).toHaveLength(before)
    })

    it('escalate: the case goes to a human, and the next call on the session fails with 401', async () => {
      const caseId = await openCase()
      const s = await session(caseId)
      const before = connector.calls.length
      const r = await s.client.callTool({
        name: 'refund',
        arguments: { order_id: 'A-3', amount: 5000, currency: 'EUR' },
      })
      expect(r.isError).toBe(true)
      expect(text(r)).toContain('billing queue')
      expect(connector.calls.length).toBe(before)
      await expectHttp401(s.client.callTool({ name: 'reply', arguments: { text: 'hello?' } }))
      const handedOff = (await auditOf(caseId)).find((e) => e.type === 'case.handed_off')
      expect(handedOff?.data.cause.trigger).toBe('action_escalated')
    })

    it('baton_request_handoff hands the case to a human by policy, audited; the credential dies', async () => {
      const caseId = await openCase()
      const s = await session(caseId)
      // A secret the agent repeats in its reason is not stored (invariant 7).
      const leaked = ['AKIA', 'Q3EGUBLJ4XKZ7TWM'].join('')
      const r = await s.client.callTool({
        name: 'baton_request_handoff',
        arguments: { reason: `The customer is upset and pasted ${leaked}` },
      })
      expect(r.isError).toBeFalsy()
      expect(r.structuredContent).toMatchObject({
        handler: { kind: 'operator', queue: 'general' },
        trigger: 'human_request',
      })
      const audit = await auditOf(caseId)
      expect(audit.find((e) => e.type === 'case.handed_off')?.data.cause).toMatchObject({
        trigger: 'human_request',
        reason: 'The customer is upset and pasted [REDACTED:aws-access-key-id]',
        requestedBy: 'shop-assistant',
      })
      expect(JSON.stringify(audit)).not.toContain(leaked)
      await expectHttp401(s.client.listTools())
    })

    it('fronts an upstream MCP server: the call goes through with a per-call credential; approvals run once there', async () => {
      const caseId = await openCase()
      const s = await session(caseId)
      const log = join(logs, 'upstream.jsonl')
      const before = upstreamCalls(log).length
      const r = await s.client.callTool({ name: 'kb_search', arguments: { query: 'returns', limit: 2 } })
      expect(r.isError).toBeFalsy()
      expect(text(r)).toBe('3 articles about returns')
      expect(r.structuredContent).toEqual({ query: 'returns', hits: 3 })
      const calls = upstreamCalls(log)
      expect(calls).toHaveLength(before + 1)
      const call = calls.at(-1)!
      expect(call).toMatchObject({ tool: 'search', arguments: { query: 'returns', limit: 2 } })
      const action = r._meta?.['dev.baton/action'] as { actionId: string }
      expect(call.meta['dev.baton/action']).toBe(action.actionId)
      const jwks = (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as Parameters<
        typeof createLocalJWKSet
      >[0]
      const { payload } = await jwtVerify(String(call.meta['dev.baton/credential']), createLocalJWKSet(jwks), {
        algorithms: ['EdDSA'],
        audience: upstream.url,
      })
      expect(payload).toMatchObject({
        case: caseId,
        kind: 'call',
        tools: ['kb_search'],
        pd: canonicalDigest(call.arguments),
      })
      // The upstream's schema is Baton's: a limit of 50 is refused before anything is decided.
      const bad = await s.client.callTool({ name: 'kb_search', arguments: { query: 'returns', limit: 50 } })
      expect(bad.isError).toBe(true)
      expect(bad.structuredContent).toMatchObject({ code: 'PARAMS_INVALID', errors: [{ field: 'params.limit' }] })
      expect(upstreamCalls(log)).toHaveLength(before + 1)
      // A secret in an argument is refused as over HTTP (invariant 7), and not read back to the model either.
      const key = ['AKIA', 'Q3EGUBLJ4XKZ7TWM'].join('')
      const leaky = await s.client.callTool({ name: 'kb_search', arguments: { query: `key ${key}`, limit: 2 } })
      expect(leaky.isError).toBe(true)
      expect(leaky.structuredContent).toMatchObject({ code: 'PARAMS_INVALID', errors: [{ field: 'params.query' }] })
      expect(JSON.stringify(leaky)).not.toContain(key)
      expect(upstreamCalls(log)).toHaveLength(before + 1)

      const credit = await s.client.callTool({ name: 'store_credit', arguments: { account: 'acc-1', amount: 60 } })
      const pending = credit._meta?.['dev.baton/action'] as { approval: { id: string } }
      expect(upstreamCalls(log)).toHaveLength(before + 1)
      const ok = await post(`/v1/approvals/${pending.approval.id}/decision`, ops.ada!, {
        decision: 'approve',
        reason: 'ok',
      })
      expect(ok.status).toBe(200)
      expect(upstreamCalls(log)).toHaveLength(before + 2)
      expect(upstreamCalls(log).at(-1)).toMatchObject({ tool: 'transfer', arguments: { account: 'acc-1', amount: 60 } })
      expect(
        (
          await post(`/v1/approvals/${pending.approval.id}/decision`, ops.ada!, {
            decision: 'approve',
            reason: 'again',
          })
        ).status,
      ).toBe(409)
      expect(upstreamCalls(log)).toHaveLength(before + 2)
    })

    it('an upstream that fails or crashes mid-call: a clean error, recorded as failed and never as executed', async () => {
      const caseId = await openCase()
      const s = await session(caseId)
      const broken = await s.client.callTool({ name: 'kb_broken', arguments: {} })
      expect(broken.isError).toBe(true)
      expect(text(broken)).toBe('upstream says no')

      for (const tool of ['kb_crash', 'kb_stdio_crash']) {
        const started = Date.now()
        const r = await s.client.callTool({ name: tool, arguments: {} })
        expect(Date.now() - started).toBeLessThan(5000)
        expect(r.isError).toBe(true)
        expect(text(r)).toMatch(/failed: .*(closed|terminated|fetch failed|other side)/i)
        expect(r.structuredContent).toMatchObject({ outcome: 'allow', state: 'failed' })
      }
      expect(upstreamCalls(join(logs, 'crashy.jsonl')).map((c) => c.tool)).toEqual(['broken', 'crash'])
      expect(upstreamCalls(join(logs, 'stdio.jsonl')).map((c) => c.tool)).toEqual(['crash'])
      const audit = await auditOf(caseId)
      expect(audit.filter((e) => e.type === 'action.executed')).toHaveLength(0)
      expect(audit.filter((e) => e.type === 'action.failed').map((e) => e.data.tool)).toEqual([
        'kb_broken',
        'kb_crash',
        'kb_stdio_crash',
      ])
      // The gateway keeps serving, and the stdio upstream is started again for the next call.
      expect((await s.client.callTool({ name: 'kb_search', arguments: { query: 'x' } })).isError).toBeFalsy()
      const again = await s.client.callTool({ name: 'kb_stdio_crash', arguments: {} })
      expect(again.structuredContent).toMatchObject({ state: 'failed' })
      expect(upstreamCalls(join(logs, 'stdio.jsonl'))).toHaveLength(2)
    })

    it("a second agent cannot use the first one's session, nor the agent its session with another case's token", async () => {
      const first = await openCase()
      const other = await openCase({ intent: 'newsletter_subscription', agent: 'second-bot' })
      const s = await session(first)
      const sid = s.transport.sessionId!
      const secondToken = await caseToken(base, secondKey, other, { agentId: 'second-bot' })
      const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' })
      const stolen = await raw(ping, { authorization: `Bearer ${secondToken}`, 'mcp-session-id': sid })
      expect(stolen.status).toBe(404)
      // The SDK client of the second agent, handed the session id, gets the same.
      const intruder = new Client({ name: 'intruder', version: '1' })
      const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
        sessionId: sid,
        requestInit: { headers: { authorization: `Bearer ${secondToken}` } },
      })
      await transport.start()
      const e = await transport.send({ jsonrpc: '2.0', id: 2, method: 'tools/list' }).then(
        () => undefined,
        (x: unknown) => x,
      )
      expect((e as StreamableHTTPError).code).toBe(404)
      await transport.close()
      void intruder

      const anotherCase = await openCase()
      const wrongCase = await raw(ping, {
        authorization: `Bearer ${await caseToken(base, key, anotherCase)}`,
        'mcp-session-id': sid,
      })
      expect(wrongCase.status).toBe(403)
      expect(((await wrongCase.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
        'CREDENTIAL_SCOPE',
      )
      // The owner's session is unharmed.
      expect((await s.client.listTools()).tools.length).toBeGreaterThan(3)
      const refused = (await auditOf()).filter((e) => e.type === 'access.refused' && e.data.route === 'POST /mcp')
      expect(refused.some((e) => e.actor.id === 'second-bot' && e.data.code === 'FORBIDDEN')).toBe(true)
      expect(refused.some((e) => e.caseId === anotherCase && e.data.code === 'CREDENTIAL_SCOPE')).toBe(true)
    })

    it('the console case page shows MCP calls beside HTTP ones, with the session', async () => {
      const caseId = await openCase()
      const s = await session(caseId)
      await s.client.callTool({ name: 'refund', arguments: { order_id: 'A-7', amount: 10, currency: 'EUR' } })
      const http = await post(`/v1/cases/${caseId}/actions`, s.token, { tool: 'reply', params: { text: 'Done.' } })
      expect(http.status).toBe(200)
      const ref = (await auditOf(caseId)).find((e) => e.type === 'mcp.session_opened')?.data.session as string
      expect(ref).toMatch(/^[0-9a-f]{16}$/)

      // Sign in to the console as an operator, as a browser does, and read the case page.
      const form = await fetch(`${base}/console/login`)
      const loginCookie = (form.headers.get('set-cookie') ?? '').split(';')[0]!
      const csrf = /name="_csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? ''
      const signIn = await fetch(`${base}/console/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: loginCookie },
        body: new URLSearchParams({ key: ops.linus!, _csrf: csrf, next: `/console/cases/${caseId}` }).toString(),
      })
      expect(signIn.status).toBe(303)
      const cookie = signIn.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; ')
      const page = await fetch(`${base}/console/cases/${caseId}`, { headers: { cookie, accept: 'text/html' } })
      expect(page.status).toBe(200)
      const html = await page.text()
      const calls = html.slice(
        html.indexOf('id="tool-calls"'),
        html.indexOf('</table>', html.indexOf('id="tool-calls"')),
      )
      const rows = calls.split('<tr data-action=').slice(1)
      expect(rows).toHaveLength(2)
      expect(rows[0]).toContain('>refund<')
      expect(rows[0]).toContain('MCP')
      expect(rows[0]).toContain(`session ${ref}`)
      expect(rows[0]).toContain('executed (200)')
      expect(rows[1]).toContain('>reply<')
      expect(rows[1]).toContain('HTTP API')
      expect(html).toContain(`${ref}</span> opened by shop-assistant with baton-test-agent 1.0.0`)
    })

    it("a customer's delegate on its customer's case: its scopes' tools, the customer confirms, a revoked grant ends the session", async () => {
      // The delegate, a customer's grant to it, its token (RFC 8693 exchange of the grant) and the customer's case.
      const acme = await agentKey()
      const registered = await post('/v1/delegates', t.keys.admin, {
        id: `acme-${engine}`,
        name: 'Acme assistant',
        vendor: 'Acme Inc.',
        contact: 'ops@acme.example',
        jwk: acme.publicJwk,
      })
      expect(registered.status).toBe(201)
      const customer = `cu_${randomUUID().slice(0, 8)}`
      const grant = (await (
        await post(`/v1/customers/${customer}/grants`, t.keys.service, {
          delegate: `acme-${engine}`,
          scopes: ['case:read', 'order:status', 'refund:request'],
          expires_at: new Date(Date.now() + 3600_000).toISOString(),
        })
      ).json()) as { id: string }
      const exchanged = await fetch(`${base}/v1/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: grant.id,
          subject_token_type: 'urn:baton:params:oauth:token-type:grant',
          actor_token: await signAssertion(acme.privateKey, `acme-${engine}`),
          actor_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        }).toString(),
      })
      expect(exchanged.status).toBe(200)
      const delegateToken = ((await exchanged.json()) as { access_token: string }).access_token
      const caseId = await openCase({ customer })
      const changes = { n: 0 }
      const d = await connectWithToken(`${mcpUrl}?case=${caseId}`, () => delegateToken, {
        onListChanged: () => {
          changes.n++
        },
      })
      open.push(d.client)
      await new Promise((r) => setTimeout(r, 100))

      // What its scopes unlock and the policy lets a delegate have; reading the case; no handoff (that is the shop's).
      expect((await d.client.listTools()).tools.map((x) => x.name)).toEqual([
        'order_status',
        'refund',
        'baton_case',
        'baton_approval_status',
      ])
      const before = connector.calls.length
      const asked = await d.client.callTool({
        name: 'refund',
        arguments: { order_id: 'A-9', amount: 30, currency: 'EUR' },
      })
      expect(asked.isError).toBeFalsy()
      expect(asked.structuredContent).toMatchObject({ outcome: 'confirm', state: 'awaiting_confirmation' })
      expect(text(asked)).toContain("customer's own confirmation")
      const over = await d.client.callTool({
        name: 'refund',
        arguments: { order_id: 'A-9', amount: 80, currency: 'EUR' },
      })
      expect(over.isError).toBe(true)
      expect(over.structuredContent).toMatchObject({ code: 'LIMIT_EXCEEDED' })
      expect(connector.calls.length).toBe(before)
      const view = (await d.client.callTool({ name: 'baton_case', arguments: {} })).structuredContent as Record<
        string,
        unknown
      >
      expect(view).toMatchObject({ id: caseId, customerId: customer, state: 'open' })
      expect(view.handler).toBeUndefined()
      const audit = await auditOf(caseId)
      expect(audit.find((e) => e.type === 'action.decided' && e.actor.kind === 'delegate')?.data).toMatchObject({
        tool: 'refund',
        outcome: 'confirm',
        via: { face: 'mcp' },
      })

      // The delegate names its case, one of its own customer's; an agent cannot use its session.
      const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' })
      expect((await raw(ping, { authorization: `Bearer ${delegateToken}` })).status).toBe(400)
      const elsewhere = await openCase()
      const other = await fetch(`${mcpUrl}?case=${elsewhere}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: ACCEPT, authorization: `Bearer ${delegateToken}` },
        body: ping,
      })
      expect(other.status).toBe(404)
      const agentToken = await caseToken(base, key, caseId)
      expect(
        (await raw(ping, { authorization: `Bearer ${agentToken}`, 'mcp-session-id': d.transport.sessionId! })).status,
      ).toBe(404)

      // The customer revokes the grant: the session is told, and its next request is refused with 401.
      const revoked = await fetch(`${base}/v1/customers/${customer}/grants/${grant.id}`, {
        method: 'DELETE',
        headers: bearer(t.keys.service),
      })
      expect(revoked.status).toBe(200)
      await eventually(() => changes.n > 0)
      await expectHttp401(d.client.listTools())
    })

    it('bad input gets the error the specification names, is audited, and the server keeps serving', async () => {
      const caseId = await openCase()
      const s = await session(caseId)
      const h = { authorization: `Bearer ${s.token}`, 'mcp-session-id': s.transport.sessionId! }
      const jsonOf = async (r: Response) => (await r.json()) as { error: { code: number } }

      const malformed = await raw('{"jsonrpc": "2.0", "id": 1, "method": ', h)
      expect(malformed.status).toBe(400)
      expect((await jsonOf(malformed)).error.code).toBe(-32700)
      const notRpc = await raw(JSON.stringify({ hello: 'world' }), h)
      expect(notRpc.status).toBe(400)
      expect((await jsonOf(notRpc)).error.code).toBe(-32700)
      const oversized = await raw(
        JSON.stringify({
          jsonrpc: '2.0',
          id: 2,
          method: 'tools/call',
          params: { name: 'reply', arguments: { text: 'x'.repeat(70_000) } },
        }),
        h,
      )
      expect(oversized.status).toBe(413)

      const unknownMethod = await s.client
        .request(
          { method: 'resources/list', params: {} },
          (await import('@modelcontextprotocol/sdk/types.js')).ListResourcesResultSchema,
        )
        .then(
          () => undefined,
          (x: unknown) => x,
        )
      expect(unknownMethod).toBeInstanceOf(McpError)
      expect((unknownMethod as McpError).code).toBe(-32601)
      const unknownTool = await s.client.callTool({ name: 'nope', arguments: {} }).then(
        () => undefined,
        (x: unknown) => x,
      )
      expect((unknownTool as McpError).code).toBe(-32602)
      const notListed = await s.client
        .callTool({ name: 'cancel_subscription', arguments: { subscription_id: 's1' } })
        .then(
          () => undefined,
          (x: unknown) => x,
        )
      expect((notListed as McpError).code).toBe(-32602)
      const badParams = await s.client.callTool({
        name: 'refund',
        arguments: { order_id: 'A', amount: -5, currency: 'XXX' },
      })
      expect(badParams.isError).toBe(true)
      expect((badParams.structuredContent as { errors: { field: string }[] }).errors.map((x) => x.field)).toEqual(
        expect.arrayContaining(['params.amount', 'params.currency']),
      )
      const badRisk = await s.client.callTool({
        name: 'reply',
        arguments: { text: 'hi' },
        _meta: { 'dev.baton/risk': ['aliens'] },
      })
      expect(badRisk.isError).toBe(true)

      const audit = await auditOf(caseId)
      expect(audit.some((e) => e.type === 'action.decided')).toBe(false)
      const codes = audit.filter((e) => e.type === 'access.refused').map((e) => e.data.code)
      expect(codes).toEqual(
        expect.arrayContaining([
          'VALIDATION_FAILED',
          'NOT_FOUND',
          'TOOL_NOT_FOUND',
          'TOOL_NOT_GRANTED',
          'PARAMS_INVALID',
        ]),
      )
      // Still serving, this session and others.
      expect((await s.client.callTool({ name: 'reply', arguments: { text: 'Still here.' } })).isError).toBeFalsy()
      expect((await (await session(await openCase())).client.listTools()).tools.length).toBeGreaterThan(3)
      // No agent token at all, or an API key: 401.
      expect(
        (
          await raw(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping' }), {
            authorization: `Bearer ${t.keys.admin}`,
          })
        ).status,
      ).toBe(401)
      // A page of another origin: 403 (DNS rebinding).
      expect(
        (await raw(JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'ping' }), { ...h, origin: 'http://evil.example' }))
          .status,
      ).toBe(403)
    })
  })
}

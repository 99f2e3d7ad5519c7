import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import autocannon from 'autocannon'
import { agentKey, caseToken } from '../test/support/mcp.js'
import { cpuUs, type Figure, figure, startBenchBaton } from './harness.js'

const CONNECTIONS = 16
const ROUNDS = 3
const SLICE_S = Number(process.env.BENCH_SLICE_S ?? 4)
const REPLY = { text: 'Your parcel left the warehouse this morning.' }

async function post(base: string, path: string, key: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const json = (await res.json()) as Record<string, unknown>
  if (res.status >= 300) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`)
  return json
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? Number.NaN
}

/**
 * mcp_call_vs_http_action: allowed `tools/call` per second through the MCP gateway (a session opened by the SDK
 * client; each call authenticated, the tool list checked, then the same decision path as an HTTP action) divided by
 * `POST /v1/cases/{id}/actions` for the same tool, policy, token and case, on the same server and connections, in
 * alternating slices (the median of the per-round ratios).
 */
export async function mcpCallVsHttpAction(): Promise<Figure> {
  const baton = await startBenchBaton()
  const { adminKey } = baton
  const client = new Client({ name: 'baton-bench', version: '1.0.0' })
  try {
    const key = await agentKey()
    await post(baton.url, '/v1/agents/shop-assistant/credentials', adminKey, { kind: 'public_key', jwk: key.publicJwk })
    const opened = await post(baton.url, '/v1/cases', adminKey, {
      customer: 'cu_bench',
      channel: 'chat',
      message: { text: 'Hi, where is my order #12345? It was supposed to arrive yesterday.' },
      signals: { intent: 'order_status', intent_confidence: 0.95 },
    })
    const caseId = String(opened.id)
    const token = await caseToken(baton.url, key, caseId)
    const transport = new StreamableHTTPClientTransport(new URL(`${baton.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    })
    await client.connect(transport)
    const check = await client.callTool({ name: 'reply', arguments: REPLY })
    if (check.isError) throw new Error(`bench tools/call failed: ${JSON.stringify(check)}`)
    const sessionId = transport.sessionId ?? ''

    let id = 0
    const mcpLoad = () =>
      autocannon({
        url: baton.url,
        connections: CONNECTIONS,
        duration: SLICE_S,
        requests: [
          {
            method: 'POST',
            path: '/mcp',
            headers: {
              'content-type': 'application/json',
              accept: 'application/json, text/event-stream',
              authorization: `Bearer ${token}`,
              'mcp-session-id': sessionId,
              'mcp-protocol-version': transport.protocolVersion ?? '2025-11-25',
            },
            // Request ids must differ within a session (the transport routes each answer by id).
            setupRequest: (req) => ({
              ...req,
              body: JSON.stringify({
                jsonrpc: '2.0',
                id: ++id,
                method: 'tools/call',
                params: { name: 'reply', arguments: REPLY },
              }),
            }),
          },
        ],
      })
    const httpLoad = () =>
      autocannon({
        url: baton.url,
        connections: CONNECTIONS,
        duration: SLICE_S,
        requests: [
          {
            method: 'POST',
            path: `/v1/cases/${caseId}/actions`,
            headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
            body: JSON.stringify({ tool: 'reply', params: REPLY }),
          },
        ],
      })
    // Warm-up of both paths, then alternating slices so the machine's swings hit both sides alike.
    await Promise.all([mcpLoad(), httpLoad()].map((p) => p.catch(() => undefined)))
    const ratios: number[] = []
    const mcp: autocannon.Result[] = []
    const http: autocannon.Result[] = []
    // Baton's CPU (all threads) per answered call on each side: steadier than rates on a shared machine.
    const cpu = { mcp: [] as number[], http: [] as number[] }
    const measured = async (side: 'mcp' | 'http', load: () => Promise<autocannon.Result>) => {
      const before = cpuUs(baton.proc.pid)
      const r = await load()
      cpu[side].push((cpuUs(baton.proc.pid) - before) / Math.max(1, r.requests.total))
      return r
    }
    for (let round = 0; round < ROUNDS; round++) {
      http.push(await measured('http', httpLoad))
      mcp.push(await measured('mcp', mcpLoad))
      ratios.push((mcp.at(-1)?.requests.average ?? 0) / (http.at(-1)?.requests.average ?? 1))
    }
    const after = await client.callTool({ name: 'reply', arguments: REPLY })
    if (after.isError) throw new Error(`bench session broken after the load: ${JSON.stringify(after)}`)
    const mean = (rs: autocannon.Result[]) => rs.reduce((a, r) => a + r.requests.average, 0) / rs.length
    return figure('mcp_call_vs_http_action', mean(mcp), 'calls/s', mean(http), median(ratios), '>= 0.5', {
      connections: CONNECTIONS,
      rounds: ROUNDS,
      slice_s: SLICE_S,
      ratios: ratios.map((r) => Number(r.toFixed(3))),
      mcp_p99_ms: Math.max(...mcp.map((r) => r.latency.p99)),
      http_p99_ms: Math.max(...http.map((r) => r.latency.p99)),
      mcp_cpu_us_per_call: Math.round(median(cpu.mcp)),
      http_cpu_us_per_call: Math.round(median(cpu.http)),
      mcp_non_2xx: mcp.reduce((a, r) => a + r.non2xx + r.errors, 0),
      http_non_2xx: http.reduce((a, r) => a + r.non2xx + r.errors, 0),
      tool: 'reply (allow, decided and recorded; no connector), one session, Streamable HTTP with JSON answers',
      store: 'sqlite WAL, group commit (BATON_SQLITE_SYNC=group)',
    })
  } finally {
    await client.close().catch(() => undefined)
    await baton.stop()
  }
}

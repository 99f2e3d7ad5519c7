import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, startTestApp, type TestApp } from './support/app.js'
import { agentKey, caseToken, startBearerProxy, startUpstream } from './support/mcp.js'
import { conformanceWorkspace } from './support/mcp-workspace.js'

const ROOT = resolve(import.meta.dirname, '..')
const CLI = join(ROOT, 'node_modules/@modelcontextprotocol/conformance/dist/index.js')
const BASELINE = join(ROOT, 'test/mcp-conformance-baseline.yml')

/** The scenarios that apply to a tools-only gateway; every other one is in the baseline, with the reason. */
const APPLY = [
  'server-initialize',
  'ping',
  'tools-list',
  'tools-call-simple-text',
  'tools-call-image',
  'tools-call-audio',
  'tools-call-embedded-resource',
  'tools-call-mixed-content',
  'tools-call-error',
  'json-schema-2020-12',
  'server-sse-multiple-streams',
  'dns-rebinding-protection',
]

/**
 * The official MCP conformance suite (server mode) against Baton's /mcp: a real Baton listening on a port, an agent
 * token for one case held by a reverse proxy in front of it (the suite's client sends no credentials, as a host
 * configured with a bearer header would not need to), the suite's fixture tools fronted from an upstream MCP server.
 */
describe('MCP conformance suite (@modelcontextprotocol/conformance, server mode)', () => {
  let t: TestApp
  let proxy: Awaited<ReturnType<typeof startBearerProxy>>
  let upstream: Awaited<ReturnType<typeof startUpstream>>
  let workspace: string
  let out: string
  let token = ''

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'baton-mcp-conformance-'))
    upstream = await startUpstream(join(out, 'upstream.jsonl'))
    process.env.MCP_UPSTREAM_URL = upstream.url
    proxy = await startBearerProxy(() => token)
    workspace = conformanceWorkspace()
    t = await startTestApp({ workspace, publicUrl: proxy.url })
    proxy.target.url = await t.app.server.listen({ port: 0, host: '127.0.0.1' })
    const key = await agentKey()
    const post = (path: string, k: string, body: unknown) =>
      fetch(`${proxy.target.url}${path}`, {
        method: 'POST',
        headers: { ...bearer(k), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    expect(
      (await post('/v1/agents/shop-assistant/credentials', t.keys.admin, { kind: 'public_key', jwk: key.publicJwk }))
        .status,
    ).toBe(201)
    const opened = await post('/v1/cases', t.keys.service, {
      customer: 'cu_conformance',
      channel: 'chat',
      message: { text: 'Hi, where is my order? It is late.' },
    })
    token = await caseToken(proxy.target.url, key, ((await opened.json()) as { id: string }).id)
  }, 60_000)
  afterAll(async () => {
    await t?.close()
    await Promise.all([proxy?.close(), upstream?.stop()])
    delete process.env.MCP_UPSTREAM_URL
    if (workspace !== undefined) rmSync(dirname(workspace), { recursive: true, force: true })
    rmSync(out, { recursive: true, force: true })
  })

  it('passes every scenario that applies to a tools-only gateway; the others are the baseline, each with its reason', async () => {
    const run = await new Promise<{ code: number | null; output: string }>((done) => {
      const p = spawn(
        process.execPath,
        [
          CLI,
          'server',
          '--url',
          `${proxy.url}/mcp`,
          '--suite',
          'all',
          '--expected-failures',
          BASELINE,
          '-o',
          join(out, 'results'),
        ],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      )
      let output = ''
      p.stdout.on('data', (d: Buffer) => {
        output += d.toString()
      })
      p.stderr.on('data', (d: Buffer) => {
        output += d.toString()
      })
      p.once('exit', (code) => done({ code, output }))
    })
    // Per scenario: every check it made, by status.
    const results = new Map<string, string[]>()
    for (const dir of readdirSync(join(out, 'results'))) {
      const scenario = dir.replace(/^server-/, '').replace(/-\d{4}-\d\d-\d\dT.*$/, '')
      const checks = JSON.parse(readFileSync(join(out, 'results', dir, 'checks.json'), 'utf8')) as { status: string }[]
      results.set(
        scenario,
        checks.map((c) => c.status).filter((s) => s === 'SUCCESS' || s === 'FAILURE' || s === 'WARNING'),
      )
    }
    for (const scenario of APPLY) {
      expect(results.get(scenario), `${scenario}: ${run.output.slice(-3000)}`).toEqual(
        expect.arrayContaining(['SUCCESS']),
      )
      expect(results.get(scenario), scenario).not.toContain('FAILURE')
    }
    // Counted passed by the suite with nothing checked: SSE polling of a POST answer, where answers are JSON.
    expect(results.get('server-sse-polling')).toEqual([])
    const baseline = readFileSync(BASELINE, 'utf8')
      .split('\n')
      .filter((l) => /^ {2}- /.test(l))
      .map((l) => l.slice(4).trim())
    expect([...results.keys()].sort()).toEqual([...APPLY, 'server-sse-polling', ...baseline].sort())
    expect(run.code, run.output.slice(-3000)).toBe(0)
  }, 120_000)
})

import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createServer as createHttpServer, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { PrivateKeyJwtProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { type CryptoKey, exportJWK, generateKeyPair } from 'jose'
import { signAssertion } from './assertion.js'
import { UPSTREAM_SCRIPT } from './mcp-workspace.js'

const ROOT = resolve(import.meta.dirname, '../..')

/** An agent's Ed25519 key pair, the private half also as a JWK (what the SDK's private_key_jwt provider takes). */
export interface AgentKey {
  readonly privateKey: CryptoKey
  readonly publicJwk: { kty: string; crv: string; x: string }
  readonly privateJwk: Record<string, unknown>
}

export async function agentKey(): Promise<AgentKey> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
  const pub = await exportJWK(publicKey)
  const priv = await exportJWK(privateKey)
  return {
    privateKey,
    publicJwk: { kty: String(pub.kty), crv: String(pub.crv), x: String(pub.x) },
    privateJwk: { ...priv },
  }
}

/**
 * The SDK's own private_key_jwt client (RFC 7523, client_credentials) with the one thing Baton adds to a token
 * request: the case the token is for (`case_id`).
 */
export class CaseTokenProvider extends PrivateKeyJwtProvider {
  readonly #caseId: string
  constructor(o: { agentId: string; key: AgentKey; caseId: string; issuer: string }) {
    super({
      clientId: o.agentId,
      privateKey: o.key.privateJwk,
      algorithm: 'EdDSA',
      jwtLifetimeSeconds: 60,
      expectedIssuer: o.issuer,
    })
    this.#caseId = o.caseId
  }
  override prepareTokenRequest(scope?: string): URLSearchParams {
    const p = super.prepareTokenRequest(scope)
    p.set('case_id', this.#caseId)
    return p
  }
}

/** An access token for one case from the token endpoint (over real HTTP). */
export async function caseToken(
  base: string,
  key: AgentKey,
  caseId: string,
  o: { agentId?: string; scope?: string } = {},
): Promise<string> {
  const res = await fetch(`${base}/v1/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await signAssertion(key.privateKey, o.agentId ?? 'shop-assistant'),
      case_id: caseId,
      ...(o.scope === undefined ? {} : { scope: o.scope }),
    }).toString(),
  })
  const body = (await res.json()) as { access_token?: string }
  if (res.status !== 200 || body.access_token === undefined) {
    throw new Error(`token for ${caseId}: ${res.status} ${JSON.stringify(body)}`)
  }
  return body.access_token
}

/** An SDK client connected to Baton's /mcp with a fixed bearer token (no re-authentication: a 401 surfaces). */
export async function connectWithToken(
  mcpUrl: string,
  token: () => string,
  o: { onListChanged?: () => void; sessionId?: string } = {},
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'baton-test-agent', version: '1.0.0' })
  if (o.onListChanged !== undefined) {
    const fire = o.onListChanged
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => fire())
  }
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
    fetch: (url, init) => {
      const headers = new Headers(init?.headers)
      headers.set('authorization', `Bearer ${token()}`)
      return fetch(url, { ...init, headers })
    },
    ...(o.sessionId === undefined ? {} : { sessionId: o.sessionId }),
  })
  await client.connect(transport)
  return { client, transport }
}

/** Starts `test/support/mcp-upstream.ts --http` as its own process; resolves once it listens. */
export function startUpstream(log: string): Promise<{ url: string; proc: ChildProcess; stop(): Promise<void> }> {
  return new Promise((done, fail) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', UPSTREAM_SCRIPT, '--http'], {
      cwd: ROOT,
      env: { ...process.env, UPSTREAM_LOG: log },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /LISTENING (\S+)/.exec(out)
      if (m?.[1]) {
        const url = m[1]
        done({
          url,
          proc,
          stop: () =>
            new Promise((r) => {
              if (proc.exitCode !== null || proc.signalCode !== null) return r()
              proc.once('exit', () => r())
              proc.kill('SIGTERM')
            }),
        })
      }
    })
    proc.stderr?.on('data', (d: Buffer) => {
      err += d.toString()
    })
    proc.once('exit', (code) => fail(new Error(`upstream exited with ${code}: ${err}`)))
  })
}

/** The calls an upstream logged (one JSON line each). */
export function upstreamCalls(
  log: string,
): { tool: string; arguments: Record<string, unknown>; meta: Record<string, unknown> }[] {
  if (!existsSync(log)) return []
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l))
}

/** Resolves once `check` holds, polling every 25 ms; fails after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 25))
  }
}

/**
 * A reverse proxy in front of Baton that adds `Authorization: Bearer <token()>` to requests that carry none (what an
 * MCP host configured with a bearer header does), passing everything else through as it is, streams included.
 */
export async function startBearerProxy(
  token: () => string,
): Promise<{ url: string; target: { url: string }; close(): Promise<void> }> {
  const target = { url: '' }
  const server = createHttpServer((req, res) => {
    const to = new URL(req.url ?? '/', target.url)
    const headers = { ...req.headers }
    headers.authorization ??= `Bearer ${token()}`
    const out = httpRequest(to, { method: req.method, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    out.on('error', () => res.destroy())
    res.on('close', () => out.destroy())
    req.pipe(out)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    target,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

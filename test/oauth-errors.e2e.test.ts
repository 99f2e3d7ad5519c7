import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, startTestApp, type TestApp } from './support/app.js'
import { signAssertion } from './support/assertion.js'

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const FORM = 'application/x-www-form-urlencoded'
/** A JSON answer; the members tests read. */
// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary members of answers
type Json = Record<string, any>
const json = async (r: Response) => (await r.json()) as Json

/** The token endpoint over a real socket: OAuth error statuses (RFC 6749 §5.2) and client-assertion lifetimes. */
describe('token endpoint over HTTP', () => {
  let t: TestApp
  let base: string
  let agentKey: { privateKey: CryptoKey; publicKey: CryptoKey }

  beforeAll(async () => {
    t = await startTestApp()
    await t.app.server.listen({ port: 0, host: '127.0.0.1' })
    base = `http://127.0.0.1:${(t.app.server.server.address() as AddressInfo).port}`
    agentKey = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
    const jwk = await exportJWK(agentKey.publicKey)
    const r = await fetch(`${base}/v1/agents/shop-assistant/credentials`, {
      method: 'POST',
      headers: { ...bearer(t.keys.admin), 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'public_key', jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x } }),
    })
    expect(r.status).toBe(201)
  })
  afterAll(async () => {
    await t?.close()
  })

  async function openAgentCase(): Promise<string> {
    const r = await fetch(`${base}/v1/cases`, {
      method: 'POST',
      headers: { ...bearer(t.keys.service), 'content-type': 'application/json' },
      body: JSON.stringify({
        customer: `cu_${randomUUID().slice(0, 8)}`,
        channel: 'chat',
        message: { text: 'Hi, where is my order? It is late.' },
      }),
    })
    const body = await json(r)
    expect(r.status).toBe(201)
    expect(body.handler).toEqual({ kind: 'agent', agentId: 'shop-assistant' })
    return body.id
  }

  async function tokenRequest(form: Record<string, string>, contentType = FORM) {
    const r = await fetch(`${base}/v1/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body: contentType === FORM ? new URLSearchParams(form).toString() : JSON.stringify(form),
    })
    return {
      status: r.status,
      type: r.headers.get('content-type'),
      cache: r.headers.get('cache-control'),
      body: await json(r),
    }
  }

  const grant = async (caseId: string, assertion?: string, extra: Record<string, string> = {}) =>
    tokenRequest({
      grant_type: 'client_credentials',
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: assertion ?? (await signAssertion(agentKey.privateKey)),
      case_id: caseId,
      ...extra,
    })

  /** An assertion with the given iat and exp, seconds from now. */
  function assertionAt(iatFromNow: number | undefined, expFromNow: number): Promise<string> {
    const now = Math.floor(Date.now() / 1000)
    const jwt = new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA' })
      .setIssuer('shop-assistant')
      .setSubject('shop-assistant')
      .setAudience('urn:baton')
      .setExpirationTime(now + expFromNow)
      .setJti(randomUUID())
    if (iatFromNow !== undefined) jwt.setIssuedAt(now + iatFromNow)
    return jwt.sign(agentKey.privateKey)
  }

  function expectOAuthError(
    r: Awaited<ReturnType<typeof tokenRequest>>,
    status: number,
    error: string,
    code: string,
  ): void {
    expect(r.status, JSON.stringify(r.body)).toBe(status)
    expect(r.type).toContain('application/problem+json')
    expect(r.cache).toBe('no-store')
    expect(r.body).toMatchObject({ status, error, code })
    expect(typeof r.body.error_description).toBe('string')
  }

  it('answers invalid_scope and invalid_grant with 400 and invalid_client with 401, Baton code beside OAuth error', async () => {
    const caseId = await openAgentCase()
    expectOAuthError(
      await grant(caseId, undefined, { scope: 'reply cancel_subscription' }),
      400,
      'invalid_scope',
      'TOOL_NOT_GRANTED',
    )
    expectOAuthError(await grant('cs_nothing_here'), 400, 'invalid_grant', 'CASE_NOT_FOUND')
    // A case a human holds is not the agent's to act on.
    const human = await fetch(`${base}/v1/cases`, {
      method: 'POST',
      headers: { ...bearer(t.keys.service), 'content-type': 'application/json' },
      body: JSON.stringify({
        customer: 'cu_h',
        channel: 'chat',
        message: { text: 'I want to speak to a human please' },
      }),
    })
    const humanCase = (await json(human)).id as string
    expectOAuthError(await grant(humanCase), 400, 'invalid_grant', 'NOT_CASE_HANDLER')
    expectOAuthError(await grant(caseId, 'not.a.jwt'), 401, 'invalid_client', 'CREDENTIAL_INVALID')
    expectOAuthError(
      await tokenRequest({ grant_type: 'client_credentials', case_id: caseId }),
      401,
      'invalid_client',
      'UNAUTHENTICATED',
    )
    expectOAuthError(
      await tokenRequest({ grant_type: 'password', case_id: caseId }),
      400,
      'unsupported_grant_type',
      'VALIDATION_FAILED',
    )
    // The body's own shape is an OAuth error too, not a bare problem.
    expectOAuthError(
      await grant(caseId, undefined, { scope: 'x'.repeat(5000) }),
      400,
      'invalid_request',
      'VALIDATION_FAILED',
    )
    // The suspended agent: unauthorized_client, 400.
    const s = await fetch(`${base}/v1/agents/shop-assistant/suspend`, {
      method: 'POST',
      headers: { ...bearer(t.keys.admin), 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'probe' }),
    })
    expect(s.status).toBe(200)
    try {
      expectOAuthError(await grant(caseId), 400, 'unauthorized_client', 'AGENT_INACTIVE')
    } finally {
      const a = await fetch(`${base}/v1/agents/shop-assistant/activate`, {
        method: 'POST',
        headers: { ...bearer(t.keys.admin), 'content-type': 'application/json' },
        body: JSON.stringify({ reason: 'probe done' }),
      })
      expect(a.status).toBe(200)
    }
    // the suspension sent the agent's cases to humans (issue 17, defect 4): a new case is the agent's again
    const ok = await grant(await openAgentCase())
    expect(ok.status, JSON.stringify(ok.body)).toBe(200)
    expect(ok.cache).toBe('no-store')
  })

  it('refuses a client assertion that lives longer than 300 s, lacks iat, or is issued in the future', async () => {
    const caseId = await openAgentCase()
    const yearAhead = await grant(caseId, await assertionAt(0, 365 * 24 * 3600))
    expectOAuthError(yearAhead, 401, 'invalid_client', 'CREDENTIAL_INVALID')
    expect(yearAhead.body.error_description).toMatch(/exp - iat/)
    expectOAuthError(await grant(caseId, await assertionAt(0, 301)), 401, 'invalid_client', 'CREDENTIAL_INVALID')
    const noIat = await grant(caseId, await assertionAt(undefined, 120))
    expectOAuthError(noIat, 401, 'invalid_client', 'CREDENTIAL_INVALID')
    expect(noIat.body.error_description).toMatch(/iat/)
    const future = await grant(caseId, await assertionAt(120, 240))
    expectOAuthError(future, 401, 'invalid_client', 'CREDENTIAL_INVALID')
    expect(future.body.error_description).toMatch(/future/)
    // Within the documented bounds: 300 s of life, an agent clock up to 30 s ahead.
    expect((await grant(caseId, await assertionAt(0, 300))).status).toBe(200)
    expect((await grant(caseId, await assertionAt(20, 200))).status).toBe(200)
  })
})

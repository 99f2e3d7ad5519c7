import { randomUUID } from 'node:crypto'
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from 'jose'
import type { App } from '../../src/app.js'

/**
 * An agent's client assertion (RFC 7523) as Baton's token endpoint takes it: EdDSA, `iss` = `sub` = the agent, the
 * default audience `urn:baton`, valid two minutes, a fresh `jti`. `nowMs`: issued at that time (an app on a test
 * clock), else now.
 */
export function signAssertion(
  privateKey: CryptoKey,
  agentId = 'shop-assistant',
  aud = 'urn:baton',
  nowMs?: number,
): Promise<string> {
  const iat = Math.floor((nowMs ?? Date.now()) / 1000)
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA' })
    .setIssuer(agentId)
    .setSubject(agentId)
    .setAudience(aud)
    .setIssuedAt(iat)
    .setExpirationTime(iat + 120)
    .setJti(randomUUID())
    .sign(privateKey)
}

/** Registers a fresh Ed25519 key for `agentId` through the API (admin), returning the key pair. */
export async function registerAgentKey(
  app: App,
  adminKey: string,
  agentId = 'shop-assistant',
): Promise<{ privateKey: CryptoKey; publicKey: CryptoKey }> {
  const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
  const jwk = await exportJWK(pair.publicKey)
  const r = await app.server.inject({
    method: 'POST',
    url: `/v1/agents/${agentId}/credentials`,
    headers: { authorization: `Bearer ${adminKey}` },
    payload: { kind: 'public_key', jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x } },
  })
  if (r.statusCode !== 201) throw new Error(`agent key not registered: ${r.statusCode} ${r.body}`)
  return pair
}

/** The agent's access token for one case: a client assertion (RFC 7523, issued at `nowMs`) at the token endpoint. */
export async function agentToken(app: App, privateKey: CryptoKey, caseId: string, nowMs?: number): Promise<string> {
  const r = await app.server.inject({
    method: 'POST',
    url: '/v1/oauth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await signAssertion(privateKey, 'shop-assistant', 'urn:baton', nowMs),
      case_id: caseId,
    }).toString(),
  })
  if (r.statusCode !== 200) throw new Error(`no access token: ${r.statusCode} ${r.body}`)
  return r.json().access_token
}

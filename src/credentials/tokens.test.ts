import { createHmac, generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { isBatonError } from '../errors.js'
import { CredentialSigner, type MintInput } from './tokens.js'

const { privateKey, publicKey } = generateKeyPairSync('ed25519')
const signer = new CredentialSigner(privateKey, publicKey, 'urn:baton')
const NOW = new Date('2026-11-01T12:00:00Z')
const input: MintInput = {
  aud: 'urn:baton/api',
  sub: 'shop-assistant',
  case: 'cs_1',
  tools: ['reply'],
  epoch: 3,
  kind: 'access',
  jti: 'tok_1',
  ttlSeconds: 300,
}
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

describe('credentials', () => {
  it('mints an EdDSA JWT that verifies with the claims it was given; exp is seconds', async () => {
    const { token, claims } = await signer.mint(input, NOW)
    expect(claims.exp - claims.iat).toBe(300)
    expect(claims.iat).toBe(NOW.getTime() / 1000)
    const back = await signer.verify(token, 'urn:baton/api', new Date(NOW.getTime() + 299_000))
    expect(back).toMatchObject({ sub: 'shop-assistant', case: 'cs_1', epoch: 3, tools: ['reply'], iss: 'urn:baton' })
    expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())).toMatchObject({
      alg: 'EdDSA',
      kid: signer.keyId,
    })
  })

  it('refuses expiry, another audience, alg none, HS256 with the public key, and a tampered payload', async () => {
    const { token } = await signer.mint(input, NOW)
    const fails = async (t: string, code: string, at = NOW, aud = 'urn:baton/api') =>
      expect(signer.verify(t, aud, at)).rejects.toSatisfy((e) => isBatonError(e, code as 'CREDENTIAL_INVALID'))
    await fails(token, 'CREDENTIAL_EXPIRED', new Date(NOW.getTime() + 300_000))
    await fails(token, 'CREDENTIAL_INVALID', NOW, 'https://other.example')
    const [h, p, sig] = token.split('.')
    await fails(`${b64({ alg: 'none' })}.${p}.`, 'CREDENTIAL_INVALID')
    const jwk = (await signer.jwks()).keys[0]!
    const hs = b64({ alg: 'HS256' })
    const mac = createHmac('sha256', Buffer.from(String(jwk.x), 'base64url'))
      .update(`${hs}.${p}`)
      .digest('base64url')
    await fails(`${hs}.${p}.${mac}`, 'CREDENTIAL_INVALID')
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString())
    await fails(`${h}.${b64({ ...claims, case: 'cs_2' })}.${sig}`, 'CREDENTIAL_INVALID')
  })

  it('caps lifetimes', async () => {
    await expect(signer.mint({ ...input, ttlSeconds: 0 }, NOW)).rejects.toThrow(TypeError)
    await expect(signer.mint({ ...input, ttlSeconds: 7200 }, NOW)).rejects.toThrow(TypeError)
  })
})

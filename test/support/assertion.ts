import { randomUUID } from 'node:crypto'
import { type CryptoKey, SignJWT } from 'jose'

/**
 * An agent's client assertion (RFC 7523) as Baton's token endpoint takes it: EdDSA, `iss` = `sub` = the agent, the
 * default audience `urn:baton`, valid two minutes, a fresh `jti`.
 */
export function signAssertion(privateKey: CryptoKey, agentId = 'shop-assistant', aud = 'urn:baton'): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA' })
    .setIssuer(agentId)
    .setSubject(agentId)
    .setAudience(aud)
    .setIssuedAt()
    .setExpirationTime('2m')
    .setJti(randomUUID())
    .sign(privateKey)
}

#!/usr/bin/env node
// What a customer's AI agent (a Baton delegate) does on its side, for the README walkthrough "Delegated agents":
//   node examples/delegate-client.mjs keygen FILE        a new Ed25519 key in FILE (0600); prints its public JWK
//   node examples/delegate-client.mjs assert FILE ID     prints a fresh RFC 7523 assertion signed by FILE for ID
// Uses jose from this checkout's node_modules (npm ci). BATON_ISSUER names the audience (default urn:baton).
import { randomUUID } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose'

const [command, file, id] = process.argv.slice(2)
if (command === 'keygen' && file !== undefined) {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
  writeFileSync(file, JSON.stringify(await exportJWK(privateKey)), { mode: 0o600 })
  const { kty, crv, x } = await exportJWK(publicKey)
  process.stdout.write(`${JSON.stringify({ kty, crv, x })}\n`)
} else if (command === 'assert' && file !== undefined && id !== undefined) {
  const key = await importJWK(JSON.parse(readFileSync(file, 'utf8')), 'EdDSA')
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA' })
    .setIssuer(id)
    .setSubject(id)
    .setAudience(process.env.BATON_ISSUER ?? 'urn:baton')
    .setIssuedAt()
    .setExpirationTime('2m')
    .setJti(randomUUID())
    .sign(key)
  process.stdout.write(`${assertion}\n`)
} else {
  process.stderr.write('usage: delegate-client.mjs keygen FILE | assert FILE DELEGATE_ID\n')
  process.exit(2)
}

import { createHash, generateKeyPairSync, verify } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { isBatonError } from '../errors.js'
import { EMPTY_ROOT, fromHex } from './entry.js'
import {
  checkHeadSignature,
  HeadSigner,
  headFromJson,
  headMessage,
  headToJson,
  keyIdOf,
  keysOfRecords,
  parsePublicKeys,
} from './head.js'

const { privateKey, publicKey } = generateKeyPairSync('ed25519')
const signer = new HeadSigner(privateKey)
const root = fromHex('d26fbb5eace7d43c7f4f9a45b58a3019eacd629d2615fa1c11befc4f8c8f911f')
const unsigned = { size: 5, root, timestamp: '2026-11-01T12:00:00.000Z' }

describe('signed tree heads', () => {
  it('sign the RFC 8785 canonical JSON of {log, root, size, timestamp}, byte for byte', () => {
    expect(headMessage(unsigned)).toBe(
      '{"log":"baton","root":"d26fbb5eace7d43c7f4f9a45b58a3019eacd629d2615fa1c11befc4f8c8f911f","size":5,"timestamp":"2026-11-01T12:00:00.000Z"}',
    )
    const head = signer.sign(unsigned)
    // A third party needs only node:crypto (or any Ed25519 library) and the documented text.
    expect(verify(null, Buffer.from(headMessage(unsigned)), publicKey, head.signature)).toBe(true)
    expect(head.signature).toHaveLength(64)
  })

  it('name the key by the first 16 hex of SHA-256 of its SPKI DER', () => {
    const der = publicKey.export({ type: 'spki', format: 'der' })
    expect(signer.keyId).toBe(createHash('sha256').update(der).digest('hex').slice(0, 16))
    expect(keyIdOf(publicKey)).toBe(signer.keyId)
  })

  it('verify with the named key and reject any changed bit, an unknown key, or another key', () => {
    const head = signer.sign(unsigned)
    const keys = new Map([[signer.keyId, publicKey]])
    expect(checkHeadSignature(head, keys)).toEqual({ ok: true })
    for (let bit = 0; bit < 8 * 64; bit += 37) {
      const sig = new Uint8Array(head.signature)
      sig[bit >> 3]! ^= 1 << (bit & 7)
      expect(checkHeadSignature({ ...head, signature: sig }, keys).ok).toBe(false)
    }
    const r = new Uint8Array(root)
    r[31]! ^= 1
    expect(checkHeadSignature({ ...head, root: r }, keys).ok).toBe(false)
    expect(checkHeadSignature({ ...head, size: 6 }, keys).ok).toBe(false)
    expect(checkHeadSignature({ ...head, timestamp: '2026-11-01T12:00:00.001Z' }, keys).ok).toBe(false)
    expect(checkHeadSignature(head, new Map())).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not a known/),
    })
    const other = generateKeyPairSync('ed25519').publicKey
    expect(checkHeadSignature(head, new Map([[signer.keyId, other]])).ok).toBe(false)
  })

  it('refuse to sign what the message cannot state exactly', () => {
    expect(() => headMessage({ ...unsigned, size: -1 })).toThrow(TypeError)
    expect(() => headMessage({ ...unsigned, root: EMPTY_ROOT.subarray(1) })).toThrow(TypeError)
    expect(() => headMessage({ ...unsigned, timestamp: '2026-11-01 12:00' })).toThrow(TypeError)
  })

  it('round-trip through JSON and name the first bad field', () => {
    const head = signer.sign(unsigned)
    expect(headFromJson(JSON.parse(JSON.stringify(headToJson(head))))).toEqual(head)
    const bad = { ...headToJson(head), root: 'zz' }
    expect(() => headFromJson(bad)).toThrow(/head\.root/)
    try {
      headFromJson({ ...headToJson(head), keyId: 'nope' })
    } catch (e) {
      expect(isBatonError(e, 'AUDIT_PROOF_INVALID')).toBe(true)
    }
  })
})

describe('public key files', () => {
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const b64 = publicKey.export({ type: 'spki', format: 'der' }).toString('base64')
  const second = generateKeyPairSync('ed25519').publicKey

  it('read PEM (several blocks), base64 SPKI, a private key, and the well-known document', () => {
    expect([...parsePublicKeys(pem).keys()]).toEqual([signer.keyId])
    expect(parsePublicKeys(`${pem}\n${second.export({ type: 'spki', format: 'pem' })}`).size).toBe(2)
    expect([...parsePublicKeys(b64).keys()]).toEqual([signer.keyId])
    expect([...parsePublicKeys(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()).keys()]).toEqual([
      signer.keyId,
    ])
    const doc = JSON.stringify({ log: 'baton', keys: [{ keyId: signer.keyId, publicKey: pem }] })
    expect([...parsePublicKeys(doc).keys()]).toEqual([signer.keyId])
    expect(() => parsePublicKeys('hello')).toThrow()
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' })
    expect(() => parsePublicKeys(rsa.toString())).toThrow(/Ed25519/)
  })

  it('distrust a stored key record whose id does not match its key', () => {
    const { keys, bad } = keysOfRecords([
      { keyId: signer.keyId, publicKey: pem, createdAt: 'x', retiredAt: null },
      { keyId: '0123456789abcdef', publicKey: pem, createdAt: 'x', retiredAt: null },
    ])
    expect([...keys.keys()]).toEqual([signer.keyId])
    expect(bad).toEqual([{ keyId: '0123456789abcdef', reason: `its public key has id ${signer.keyId}` }])
  })
})

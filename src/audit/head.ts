import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto'
import { BatonError } from '../errors.js'
import type { AuditKeyRecord, SignedTreeHead } from '../store/ports.js'
import { fromHex, HASH_SIZE, toHex } from './entry.js'
import type { ProofCheck } from './merkle.js'

/*
 * Signed tree heads. Pure: keys come in as KeyObjects, time as a string; Ed25519 signing is deterministic.
 *
 * The signed bytes of a head are the UTF-8 bytes of the RFC 8785 canonical JSON of
 *   { "log": "baton", "root": <lowercase hex of the 32-byte root>, "size": <tree size>, "timestamp": <RFC 3339> }
 * which, for these four members, is exactly
 *   {"log":"baton","root":"<64 hex>","size":<decimal integer>,"timestamp":"<YYYY-MM-DDTHH:MM:SS.sssZ>"}
 * with no whitespace. The signature is pure Ed25519 (RFC 8032, not pre-hashed) over those bytes; the key id is the
 * first 16 hex characters of SHA-256 of the public key's SPKI DER encoding.
 */

export const LOG_NAME = 'baton'

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
const KEY_ID = /^[0-9a-f]{16}$/

/** A head before it is signed. */
export interface UnsignedHead {
  readonly size: number
  readonly root: Uint8Array
  readonly timestamp: string
}

/** The exact text whose UTF-8 bytes are signed. Throws `TypeError` on a size, root or timestamp out of shape. */
export function headMessage(head: UnsignedHead): string {
  if (!Number.isSafeInteger(head.size) || head.size < 0) throw new TypeError(`head size must be ≥ 0, got ${head.size}`)
  if (!(head.root instanceof Uint8Array) || head.root.length !== HASH_SIZE) {
    throw new TypeError('head root must be a 32-byte hash')
  }
  if (typeof head.timestamp !== 'string' || !TIMESTAMP.test(head.timestamp)) {
    throw new TypeError(`head timestamp must be RFC 3339 UTC with milliseconds, got ${String(head.timestamp)}`)
  }
  return `{"log":"${LOG_NAME}","root":"${toHex(head.root)}","size":${head.size},"timestamp":"${head.timestamp}"}`
}

/** Signs tree heads with one Ed25519 private key (a class: it holds the key). */
export class HeadSigner {
  readonly #key: KeyObject
  readonly keyId: string
  /** The public key, PEM (SPKI). */
  readonly publicKeyPem: string

  constructor(privateKey: KeyObject) {
    if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') {
      throw new TypeError('HeadSigner needs an Ed25519 private key')
    }
    this.#key = privateKey
    const pub = createPublicKey(privateKey)
    this.keyId = keyIdOf(pub)
    this.publicKeyPem = pub.export({ type: 'spki', format: 'pem' }).toString()
  }

  sign(head: UnsignedHead): SignedTreeHead {
    const signature = new Uint8Array(sign(null, Buffer.from(headMessage(head), 'utf8'), this.#key))
    const root = new Uint8Array(head.root)
    return { size: head.size, root, timestamp: head.timestamp, keyId: this.keyId, signature }
  }
}

/** First 16 hex characters of SHA-256 of the key's SPKI DER. */
export function keyIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(der).digest('hex').slice(0, 16)
}

/** Checks a head's signature with the key it names, from `keys` (key id → public key). */
export function checkHeadSignature(head: SignedTreeHead, keys: ReadonlyMap<string, KeyObject>): ProofCheck {
  const key = keys.get(head.keyId)
  if (key === undefined) return { ok: false, reason: `signed by key ${head.keyId}, which is not a known public key` }
  let message: string
  try {
    message = headMessage(head)
  } catch (e) {
    return { ok: false, reason: (e as Error).message }
  }
  let good = false
  try {
    good = verify(null, Buffer.from(message, 'utf8'), key, head.signature)
  } catch {
    good = false
  }
  return good ? { ok: true } : { ok: false, reason: `signature does not verify with key ${head.keyId}` }
}

/** An Ed25519 private key from PKCS#8 PEM. Throws `TypeError` on anything else. */
export function parsePrivateKey(pem: string): KeyObject {
  let key: KeyObject
  try {
    key = createPrivateKey(pem)
  } catch (e) {
    throw new TypeError(`not a PEM private key: ${(e as Error).message}`, { cause: e })
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw new TypeError(`expected an Ed25519 key, found ${key.asymmetricKeyType}`)
  return key
}

function ed25519Public(input: string | Buffer, format: 'pem' | 'der'): KeyObject {
  const key =
    format === 'pem' ? createPublicKey(input) : createPublicKey({ key: input as Buffer, format: 'der', type: 'spki' })
  if (key.asymmetricKeyType !== 'ed25519')
    throw new TypeError(`expected an Ed25519 key, found ${key.asymmetricKeyType}`)
  return key
}

/**
 * Public keys from a key file's text, by key id: one or more PEM blocks (SPKI, or a private key whose public half is
 * taken), base64 SPKI DER lines, or the JSON document of `/.well-known/baton-audit-keys`. Throws
 * `BatonError('VALIDATION_FAILED')` when nothing in it is an Ed25519 key.
 */
export function parsePublicKeys(text: string): Map<string, KeyObject> {
  const keys: KeyObject[] = []
  const trimmed = text.trim()
  try {
    if (trimmed.startsWith('{')) {
      const doc = JSON.parse(trimmed) as { keys?: readonly { publicKey?: unknown }[] }
      for (const k of doc.keys ?? []) if (typeof k.publicKey === 'string') keys.push(ed25519Public(k.publicKey, 'pem'))
    } else if (trimmed.includes('-----BEGIN')) {
      for (const m of trimmed.matchAll(/-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g)) {
        keys.push(m[1]!.includes('PRIVATE') ? createPublicKey(parsePrivateKey(m[0])) : ed25519Public(m[0], 'pem'))
      }
    } else {
      for (const line of trimmed.split(/\s+/)) {
        if (line !== '') keys.push(ed25519Public(Buffer.from(line, 'base64'), 'der'))
      }
    }
  } catch (e) {
    throw new BatonError('VALIDATION_FAILED', `public key file: ${(e as Error).message}`, { cause: e })
  }
  if (keys.length === 0) throw new BatonError('VALIDATION_FAILED', 'public key file: no Ed25519 public key found')
  return new Map(keys.map((k) => [keyIdOf(k), k]))
}

/** The stored keys as a lookup, each checked against its recorded id. Returns the bad records separately. */
export function keysOfRecords(records: readonly AuditKeyRecord[]): {
  readonly keys: Map<string, KeyObject>
  readonly bad: readonly { readonly keyId: string; readonly reason: string }[]
} {
  const keys = new Map<string, KeyObject>()
  const bad: { keyId: string; reason: string }[] = []
  for (const r of records) {
    try {
      const k = ed25519Public(r.publicKey, 'pem')
      const id = keyIdOf(k)
      if (id !== r.keyId) bad.push({ keyId: r.keyId, reason: `its public key has id ${id}` })
      else keys.set(id, k)
    } catch (e) {
      bad.push({ keyId: r.keyId, reason: `unreadable public key: ${(e as Error).message}` })
    }
  }
  return { keys, bad }
}

/** A signed head as JSON (HTTP, export, proofs): hashes and signature in lowercase hex. */
export interface HeadJson {
  readonly log: string
  readonly size: number
  readonly root: string
  readonly timestamp: string
  readonly keyId: string
  readonly signature: string
}

export function headToJson(h: SignedTreeHead): HeadJson {
  return {
    log: LOG_NAME,
    size: h.size,
    root: toHex(h.root),
    timestamp: h.timestamp,
    keyId: h.keyId,
    signature: toHex(h.signature),
  }
}

/** Reads a head from JSON. Throws `BatonError('AUDIT_PROOF_INVALID')` naming the first field out of shape. */
export function headFromJson(v: unknown): SignedTreeHead {
  const bad = (field: string, what: string): never => {
    throw new BatonError('AUDIT_PROOF_INVALID', `head.${field}: expected ${what}`)
  }
  if (typeof v !== 'object' || v === null) return bad('', 'an object')
  const o = v as Record<string, unknown>
  if (o['log'] !== undefined && o['log'] !== LOG_NAME) bad('log', `"${LOG_NAME}"`)
  const size = o['size']
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) bad('size', 'a non-negative integer')
  const hex = (field: string, bytes: number): Uint8Array => {
    const x = o[field]
    if (typeof x !== 'string' || x.length !== bytes * 2) return bad(field, `${bytes} bytes of hex`)
    try {
      return fromHex(x)
    } catch {
      return bad(field, `${bytes} bytes of hex`)
    }
  }
  const timestamp = o['timestamp']
  if (typeof timestamp !== 'string' || !TIMESTAMP.test(timestamp)) bad('timestamp', 'an RFC 3339 UTC timestamp')
  const keyId = o['keyId']
  if (typeof keyId !== 'string' || !KEY_ID.test(keyId)) bad('keyId', '16 lowercase hex characters')
  return {
    size: size as number,
    root: hex('root', HASH_SIZE),
    timestamp: timestamp as string,
    keyId: keyId as string,
    signature: hex('signature', 64),
  }
}

import * as crypto from 'node:crypto'
import canonicalizeModule from 'canonicalize'

type Canonicalize = (input: unknown) => string | undefined
// canonicalize is CommonJS (`module.exports = fn`) while its typings declare an ES default export, so under NodeNext
// the default import is the function at runtime but typed as the module; accept either shape.
const canonicalize: Canonicalize =
  typeof canonicalizeModule === 'function'
    ? (canonicalizeModule as Canonicalize)
    : (canonicalizeModule as unknown as { default: Canonicalize }).default

/**
 * One audit event before it is sequenced. The sequencer gives it a `seq`; `canonicalEntry(seq, body)` is then the
 * exact byte string stored and hashed into the Merkle tree (the leaf's data).
 */
export interface AuditEntryBody {
  /** Event type, e.g. `case.routed`, `action.approved`. */
  readonly type: string
  /** RFC 3339 timestamp, supplied by the caller (the core reads no clock). */
  readonly at: string
  readonly caseId?: string
  readonly actor?: { readonly kind: string; readonly id: string }
  /** Any JSON value. `undefined` members are dropped, as in JSON; bigint and non-finite numbers are refused. */
  readonly data: unknown
}

/** The largest `seq` written as a JSON number; larger ones are written as decimal strings (see `canonicalEntry`). */
export const MAX_NUMERIC_SEQ = 2n ** 53n - 1n

/** Length in bytes of every hash in the tree (SHA-256). */
export const HASH_SIZE = 32

/**
 * RFC 8785 canonical JSON of `{ seq, ...body }`: the leaf data of entry `seq`.
 *
 * `seq` is a JSON number while it is ≤ 2^53 − 1 (every JSON parser reads it exactly) and a decimal string above
 * that, so no reader silently rounds it. Throws `TypeError` for a negative or fractional `seq`, a body that carries
 * its own `seq`, or a body canonical JSON cannot represent (bigint, NaN, Infinity, a missing `type` or `at`).
 */
export function canonicalEntry(seq: bigint | number, body: AuditEntryBody): string {
  const n = toSeq(seq)
  if (typeof body !== 'object' || body === null) throw new TypeError('audit entry body must be an object')
  if (typeof body.type !== 'string' || body.type === '') throw new TypeError('audit entry body needs a non-empty type')
  if (typeof body.at !== 'string') throw new TypeError('audit entry body needs an RFC 3339 `at` string')
  if (Object.hasOwn(body, 'seq')) throw new TypeError('audit entry body must not carry its own seq')
  const jsonSeq = n <= MAX_NUMERIC_SEQ ? Number(n) : n.toString()
  let text: string | undefined
  try {
    text = canonicalize({ ...body, seq: jsonSeq })
  } catch (e) {
    throw new TypeError(`audit entry body is not canonical-JSON serialisable: ${(e as Error).message}`, { cause: e })
  }
  if (text === undefined) throw new TypeError('audit entry body is not canonical-JSON serialisable')
  return text
}

function toSeq(seq: bigint | number): bigint {
  if (typeof seq === 'bigint') {
    if (seq < 0n) throw new TypeError(`seq must be ≥ 0, got ${seq}`)
    return seq
  }
  if (!Number.isSafeInteger(seq) || seq < 0) throw new TypeError(`seq must be a non-negative safe integer, got ${seq}`)
  return BigInt(seq)
}

// crypto.hash (one-shot, Node ≥ 20.12) is about twice as fast as createHash().update().digest() for 33–65 bytes.
const oneShot = typeof crypto.hash === 'function'
const sha256: (data: Uint8Array) => Uint8Array = oneShot
  ? (data) => crypto.hash('sha256', data, 'buffer')
  : (data) => crypto.createHash('sha256').update(data).digest()
const sha256String: (data: string) => Uint8Array = oneShot
  ? (data) => crypto.hash('sha256', data, 'buffer')
  : (data) => crypto.createHash('sha256').update(data, 'utf8').digest()

/** Plain SHA-256 of `data` (no RFC 6962 domain prefix), e.g. for digests of stored payloads. */
export function sha256Bytes(data: Uint8Array): Uint8Array {
  return sha256(data)
}

/** MTH({}) = SHA-256(""), RFC 6962 §2.1: the root of the empty tree. */
export const EMPTY_ROOT: Uint8Array = sha256(new Uint8Array(0))

// Reused input buffers: crypto.hash reads them synchronously, so one per prefix size is safe.
const NODE_SCRATCH = Buffer.alloc(1 + 2 * HASH_SIZE)
NODE_SCRATCH[0] = 0x01
const LEAF_SCRATCH_SIZE = 1024
const LEAF_SCRATCH = Buffer.alloc(1 + LEAF_SCRATCH_SIZE)

/** RFC 6962 leaf hash: SHA-256(0x00 || entry). A string is hashed as its UTF-8 bytes. */
export function leafHash(entry: Uint8Array | string): Uint8Array {
  // Hashing the string '\0' + entry lets crypto.hash do the UTF-8 encoding in one pass (fastest measured path).
  if (typeof entry === 'string') return sha256String(`\u0000${entry}`)
  if (!(entry instanceof Uint8Array)) throw new TypeError('leafHash expects a Uint8Array or a string')
  const buf =
    entry.length <= LEAF_SCRATCH_SIZE
      ? LEAF_SCRATCH.subarray(0, 1 + entry.length)
      : Buffer.allocUnsafe(1 + entry.length)
  buf[0] = 0x00
  buf.set(entry, 1)
  return sha256(buf)
}

/**
 * RFC 6962 interior node hash: SHA-256(0x01 || left || right). The children are hashed as given (any length), so
 * the hasher known-answer vectors with raw children work; the tree code only ever passes 32-byte hashes.
 */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.length === HASH_SIZE && right.length === HASH_SIZE) {
    NODE_SCRATCH.set(left, 1)
    NODE_SCRATCH.set(right, 1 + HASH_SIZE)
    return sha256(NODE_SCRATCH)
  }
  const buf = Buffer.allocUnsafe(1 + left.length + right.length)
  buf[0] = 0x01
  buf.set(left, 1)
  buf.set(right, 1 + left.length)
  return sha256(buf)
}

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('toHex expects a Uint8Array')
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

const HEX = /^(?:[0-9a-fA-F]{2})*$/

/** Bytes of a hex string (either case, even length). Throws `TypeError` on anything else. */
export function fromHex(hex: string): Uint8Array {
  if (typeof hex !== 'string' || !HEX.test(hex)) {
    const shown = typeof hex === 'string' ? JSON.stringify(hex.length > 20 ? `${hex.slice(0, 20)}…` : hex) : typeof hex
    throw new TypeError(`expected an even-length hex string, found ${shown}`)
  }
  return new Uint8Array(Buffer.from(hex, 'hex'))
}

/** Byte-wise equality (not constant-time: tree hashes are public). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

import * as crypto from 'node:crypto'

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
  readonly actor?: AuditActor
  /** Any JSON value. `undefined` members are dropped, as in JSON; bigint and non-finite numbers are refused. */
  readonly data: unknown
}

/** Who caused an audited change. A delegate's entries also name the customer, the chain of delegates and grants, and the scope. */
export interface AuditActor {
  readonly kind: string
  readonly id: string
  readonly delegation?: {
    readonly customer: string
    readonly chain: readonly string[]
    readonly grants: readonly string[]
    readonly grant: string
    readonly scope?: string
    /** The delegate token's id. */
    readonly token: string
  }
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
  return writeEntry(seq, body, '')
}

/** An entry's stored text and its RFC 6962 leaf hash. */
export interface AuditLeaf {
  /** `canonicalEntry(seq, body)`. */
  readonly entry: string
  /** `leafHash(entry)`: SHA-256(0x00 || UTF-8 of `entry`). */
  readonly leafHash: Uint8Array
}

/**
 * `canonicalEntry(seq, body)` and its `leafHash` in one pass, as the store writes them. Throws as `canonicalEntry`.
 */
export function auditLeaf(seq: bigint | number, body: AuditEntryBody): AuditLeaf {
  // The text is written after the 0x00 prefix and hashed as one string; the entry is the rest of that string, which
  // V8 shares rather than copies. Hashing `\0${entry}` instead would copy the text once more for the hash.
  const prefixed = writeEntry(seq, body, '\u0000')
  // The hash goes to the database driver, which needs its bytes off V8's heap: a Buffer from Node's shared pool is
  // cheaper to bind than a fresh on-heap Uint8Array, which the binding would first have to move.
  const leafHash = oneShot
    ? copyDigest(crypto.hash('sha256', prefixed, 'binary'), Buffer.allocUnsafe(HASH_SIZE))
    : crypto.createHash('sha256').update(prefixed, 'utf8').digest()
  return { leafHash, entry: prefixed.slice(1) }
}

/**
 * The checks on a body's shape that `canonicalEntry` makes (its serialisability is checked by serialising it):
 * `TypeError` for a non-object, a missing or empty `type`, a missing `at`, or a body carrying its own `seq`.
 */
export function checkAuditBody(body: AuditEntryBody): void {
  if (typeof body !== 'object' || body === null) throw new TypeError('audit entry body must be an object')
  if (typeof body.type !== 'string' || body.type === '') throw new TypeError('audit entry body needs a non-empty type')
  if (typeof body.at !== 'string') throw new TypeError('audit entry body needs an RFC 3339 `at` string')
  if (Object.hasOwn(body, 'seq')) throw new TypeError('audit entry body must not carry its own seq')
}

/** `prefix` followed by the canonical entry. */
function writeEntry(seq: bigint | number, body: AuditEntryBody, prefix: string): string {
  const jsonSeq = seqJson(seq)
  checkAuditBody(body)
  // The body's keys plus `seq`, written in place rather than through `{ ...body, seq }`: no copy of the body.
  const keys = Object.keys(body)
  keys.push('seq')
  const saved = out
  out = prefix
  try {
    writeMembers(body as unknown as Record<string, unknown>, sortKeys(keys), 'seq', jsonSeq)
    return out
  } catch (e) {
    // A cyclic body overflows the stack (RangeError); report every unserialisable body the same way.
    throw new TypeError(`audit entry body is not canonical-JSON serialisable: ${(e as Error).message}`, { cause: e })
  } finally {
    out = saved
  }
}

/**
 * RFC 8785 (JCS) canonical JSON of `value`: object keys sorted by UTF-16 code units at every depth, no whitespace,
 * numbers as ECMAScript `Number.prototype.toString` (what `JSON.stringify` writes for a finite number), strings
 * escaped as `JSON.stringify` escapes them. Non-JSON members are treated as `JSON.stringify` treats them: `undefined`,
 * functions and symbols are dropped from objects and written as `null` in arrays, `toJSON()` is honoured.
 * Throws `TypeError` for a bigint, NaN or ±Infinity anywhere, and for a top-level value with no JSON text.
 */
export function canonicalJson(value: unknown): string {
  if (skipped(value)) throw new TypeError(`${typeof value} has no canonical JSON text`)
  const saved = out
  out = ''
  try {
    write(value)
    return out
  } finally {
    out = saved
  }
}

// The text being written. Appending to one string is the fastest way to build it in V8; saved and restored around
// each call, so a `toJSON` that itself serialises cannot interleave its output with ours.
let out = ''

// Strings without a quote, backslash, control character or surrogate are written as they are; JSON.stringify
// handles the rest (it escapes lone surrogates as \udxxx, as RFC 8785 inherits from ECMAScript).
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/

function quote(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`
}

// Entries repeat a small vocabulary of keys; remembering each one's `"key":` saves a scan and a concatenation per
// member. Bounded, so arbitrary caller keys cannot grow it without limit.
const MEMBER_NAMES = new Map<string, string>()
const MEMBER_NAMES_MAX = 4096

function memberName(k: string): string {
  let q = MEMBER_NAMES.get(k)
  if (q === undefined) {
    q = `${quote(k)}:`
    if (MEMBER_NAMES.size < MEMBER_NAMES_MAX && k.length <= 64) MEMBER_NAMES.set(k, q)
  }
  return q
}

function skipped(v: unknown): boolean {
  return v === undefined || typeof v === 'function' || typeof v === 'symbol'
}

/** Sorts in place by UTF-16 code units (RFC 8785 §3.2.3); insertion sort is faster for the few keys entries have. */
function sortKeys(keys: string[]): string[] {
  if (keys.length > 16) return keys.sort()
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!
    let j = i - 1
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!
      j--
    }
    keys[j + 1] = k
  }
  return keys
}

/** `{…}` of `obj`'s members named in `keys` (sorted); `extraKey` reads `extraValue` instead of `obj`. */
function writeMembers(obj: Record<string, unknown>, keys: readonly string[], extraKey?: string, extraValue?: unknown) {
  out += '{'
  let first = true
  for (const k of keys) {
    const x = k === extraKey ? extraValue : obj[k]
    if (skipped(x)) continue
    if (first) first = false
    else out += ','
    out += memberName(k)
    write(x)
  }
  out += '}'
}

function write(v: unknown): void {
  switch (typeof v) {
    case 'string':
      out += NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`
      return
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`${v} is not allowed in canonical JSON`)
      // Number#toString is the ECMAScript shortest round-trip form RFC 8785 §3.2.2.3 prescribes; -0 gives "0".
      out += `${v}`
      return
    case 'boolean':
      out += v ? 'true' : 'false'
      return
    case 'object': {
      if (v === null) {
        out += 'null'
        return
      }
      if (Array.isArray(v)) {
        out += '['
        for (let i = 0; i < v.length; i++) {
          if (i > 0) out += ','
          const x: unknown = v[i]
          if (skipped(x)) out += 'null'
          else write(x)
        }
        out += ']'
        return
      }
      const obj = v as Record<string, unknown>
      if (typeof obj['toJSON'] === 'function') {
        write((obj['toJSON'] as () => unknown)())
        return
      }
      writeMembers(obj, sortKeys(Object.keys(obj)))
      return
    }
    case 'bigint':
      throw new TypeError('a bigint is not allowed in canonical JSON')
    default:
      throw new TypeError(`${typeof v} has no canonical JSON text`)
  }
}

/** `seq` as canonicalEntry writes it: a number up to MAX_NUMERIC_SEQ, a decimal string above. */
function seqJson(seq: bigint | number): number | string {
  if (typeof seq === 'number') {
    // A safe integer is ≤ MAX_NUMERIC_SEQ: no bigint round trip for the common case.
    if (!Number.isSafeInteger(seq) || seq < 0)
      throw new TypeError(`seq must be a non-negative safe integer, got ${seq}`)
    return seq
  }
  if (typeof seq !== 'bigint') throw new TypeError(`seq must be a number or a bigint, got ${typeof seq}`)
  if (seq < 0n) throw new TypeError(`seq must be ≥ 0, got ${seq}`)
  return seq <= MAX_NUMERIC_SEQ ? Number(seq) : seq.toString()
}

// crypto.hash (one-shot, Node ≥ 20.12) is about twice as fast as createHash().update().digest() for 33–65 bytes.
// Its 'buffer' output allocates a fresh off-heap Buffer per call; the digest as a 'binary' (latin1) string, one char
// per byte, copied into a 32-byte Uint8Array (which V8 keeps on its own heap) measured 0.3–0.4 µs less per hash for
// hashes that stay in JavaScript (verification, tree building). auditLeaf's go to the database: see there.
const oneShot = typeof crypto.hash === 'function'
const sha256: (data: Uint8Array) => Uint8Array = oneShot
  ? (data) => digestBytes(crypto.hash('sha256', data, 'binary'))
  : (data) => crypto.createHash('sha256').update(data).digest()
const sha256String: (data: string) => Uint8Array = oneShot
  ? (data) => digestBytes(crypto.hash('sha256', data, 'binary'))
  : (data) => crypto.createHash('sha256').update(data, 'utf8').digest()

function digestBytes(binary: string): Uint8Array {
  return copyDigest(binary, new Uint8Array(HASH_SIZE))
}

/** Writes a digest given as a 'binary' string (one char per byte) into `bytes`. */
function copyDigest(binary: string, bytes: Uint8Array): Uint8Array {
  for (let i = 0; i < HASH_SIZE; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

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

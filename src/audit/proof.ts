import type { KeyObject } from 'node:crypto'
import { BatonError } from '../errors.js'
import type { Store } from '../store/ports.js'
import { bytesEqual, fromHex, HASH_SIZE, leafHash, toHex } from './entry.js'
import { checkHeadSignature, type HeadJson, headFromJson, headToJson, LOG_NAME } from './head.js'
import { checkInclusion, inclusionProof, type ProofCheck } from './merkle.js'
import { storeNodeReader } from './sequencer.js'

/*
 * A self-contained inclusion proof: everything a third party needs to check, without Baton, that one audit entry is
 * in the log Baton signed. To check a bundle with only SHA-256 and Ed25519:
 *   1. leaf = SHA-256(0x00 || UTF-8 bytes of `entry`); it must equal `leafHash`;
 *   2. the `seq` member of `entry` (JSON) must equal `seq` and `leafIndex`; `treeSize` must equal `head.size`;
 *   3. fold `proof` from the leaf as in RFC 9162 §2.1.3.2 (inclusion proof verification) for (leafIndex, treeSize);
 *      the result must equal `head.root`;
 *   4. the Ed25519 signature `head.signature` must verify over the UTF-8 bytes of
 *      {"log":"baton","root":"<head.root>","size":<head.size>,"timestamp":"<head.timestamp>"}
 *      with the public key whose id (first 16 hex of SHA-256 of its SPKI DER) is `head.keyId`.
 */

export const INCLUSION_FORMAT = 'baton-inclusion-proof'

export interface InclusionBundle {
  readonly format: typeof INCLUSION_FORMAT
  readonly log: string
  readonly seq: number
  /** The entry's canonical JSON text, exactly as hashed. */
  readonly entry: string
  readonly leafHash: string
  readonly leafIndex: number
  readonly treeSize: number
  /** Sibling hashes, bottom-up (RFC 9162 PATH). */
  readonly proof: readonly string[]
  readonly head: HeadJson
}

/** The inclusion proof of entry `seq` against the signed head of `size` (default: the latest head). */
export async function proveInclusion(
  store: Pick<Store, 'latestHead' | 'headAt' | 'readAudit' | 'getTreeNodes'>,
  seq: number,
  size?: number,
): Promise<InclusionBundle> {
  const head = size === undefined ? await store.latestHead() : await store.headAt(size)
  if (head === undefined) {
    throw new BatonError(
      'AUDIT_HEAD_NOT_FOUND',
      size === undefined ? 'no signed tree head yet' : `no signed tree head of size ${size}`,
    )
  }
  if (seq >= head.size) {
    throw new BatonError('AUDIT_HEAD_NOT_FOUND', `entry ${seq} is not in the signed tree of size ${head.size} yet`)
  }
  const [e] = await store.readAudit(seq, seq + 1)
  if (e === undefined) throw new BatonError('AUDIT_ENTRY_NOT_FOUND', `no audit entry ${seq}`)
  const proof = await inclusionProof(storeNodeReader(store), BigInt(seq), BigInt(head.size))
  return {
    format: INCLUSION_FORMAT,
    log: LOG_NAME,
    seq,
    entry: e.entry,
    leafHash: toHex(e.leafHash),
    leafIndex: seq,
    treeSize: head.size,
    proof: proof.map(toHex),
    head: headToJson(head),
  }
}

/** Checks a bundle (parsed JSON of any shape) as a third party would; the reason names the first step that failed. */
export function checkInclusionBundle(v: unknown, keys: ReadonlyMap<string, KeyObject>): ProofCheck {
  if (typeof v !== 'object' || v === null) return { ok: false, reason: 'expected a JSON object' }
  const b = v as Record<string, unknown>
  if (b['format'] !== INCLUSION_FORMAT) return { ok: false, reason: `format: expected "${INCLUSION_FORMAT}"` }
  const { entry, seq, leafIndex, treeSize } = b
  if (typeof entry !== 'string') return { ok: false, reason: 'entry: expected a string' }
  for (const [name, x] of [
    ['seq', seq],
    ['leafIndex', leafIndex],
    ['treeSize', treeSize],
  ] as const) {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) {
      return { ok: false, reason: `${name}: expected a non-negative integer` }
    }
  }
  let head: ReturnType<typeof headFromJson>
  let stated: Uint8Array
  let proof: Uint8Array[]
  try {
    head = headFromJson(b['head'])
    if (typeof b['leafHash'] !== 'string') return { ok: false, reason: 'leafHash: expected hex' }
    stated = fromHex(b['leafHash'])
    if (!Array.isArray(b['proof'])) return { ok: false, reason: 'proof: expected an array of hex hashes' }
    proof = b['proof'].map((p: unknown) => {
      if (typeof p !== 'string') throw new TypeError('proof: expected an array of hex hashes')
      return fromHex(p)
    })
  } catch (e) {
    return { ok: false, reason: (e as Error).message }
  }
  const leaf = leafHash(entry)
  if (stated.length !== HASH_SIZE || !bytesEqual(leaf, stated)) {
    return { ok: false, reason: `leafHash: SHA-256(0x00 || entry) is ${toHex(leaf)}` }
  }
  let embedded: unknown
  try {
    embedded = (JSON.parse(entry) as { seq?: unknown }).seq
  } catch {
    return { ok: false, reason: 'entry: not JSON' }
  }
  if (embedded !== seq)
    return { ok: false, reason: `entry says seq ${String(embedded)}, the bundle says ${String(seq)}` }
  if (leafIndex !== seq) return { ok: false, reason: `leafIndex ${String(leafIndex)} is not seq ${String(seq)}` }
  if (treeSize !== head.size) return { ok: false, reason: `treeSize ${String(treeSize)} is not head.size ${head.size}` }
  const inc = checkInclusion(leaf, BigInt(leafIndex as number), BigInt(treeSize as number), proof, head.root)
  if (!inc.ok) return { ok: false, reason: `inclusion: ${inc.reason}` }
  const sig = checkHeadSignature(head, keys)
  if (!sig.ok) return { ok: false, reason: `head: ${sig.reason}` }
  return { ok: true }
}

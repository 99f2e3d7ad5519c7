import { BatonError } from '../errors.js'
import { bytesEqual, EMPTY_ROOT, HASH_SIZE, nodeHash, toHex } from './entry.js'

/*
 * RFC 6962 / RFC 9162 Merkle tree math. Sizes and indices are bigint everywhere.
 *
 * Storage model: the hash of every *complete* subtree, addressed by (level, index) = the subtree over leaves
 * [index·2^level, (index+1)·2^level); level 0 holds the leaf hashes. In the RFC's tree every node is either such a
 * complete subtree or lies on the right edge of a tree whose size is not a power of two; a right-edge node over
 * [start, size) is the right-to-left fold of the complete subtrees that tile the range, largest first. So a proof
 * node is either one stored hash or an "ephemeral" fold of at most log2(n) stored hashes, and each proof holds at
 * most one ephemeral node: an inclusion or consistency proof costs O(log n) reads.
 */

/** A complete subtree: leaves [index·2^level, (index+1)·2^level). */
export interface SubtreeAddress {
  readonly level: number
  readonly index: bigint
}

/**
 * One proof element: a stored complete subtree, or an ephemeral right-edge node whose hash is the right-to-left fold
 * `nodeHash(parts[0], nodeHash(parts[1], … parts[last]))` of 2 or more stored subtrees, given left to right.
 */
export type NodeRef =
  | { readonly kind: 'stored'; readonly level: number; readonly index: bigint }
  | { readonly kind: 'ephemeral'; readonly parts: readonly SubtreeAddress[] }

/**
 * Read access to stored complete-subtree hashes (a store, or a Map in tests).
 *
 * `get(level, index)` returns the 32-byte hash of that complete subtree; it is only asked for subtrees entirely inside
 * the tree size the caller asked about, i.e. nodes `TreeBuilder.append` has emitted. A missing node is the store's
 * failure to report (throw, e.g. `BatonError('AUDIT_ENTRY_NOT_FOUND')`). `getMany`, when present, is used instead
 * of `get` to fetch all of a proof's nodes in one round trip; it returns the hashes in the order asked.
 */
export interface NodeReader {
  get(level: number, index: bigint): Promise<Uint8Array> | Uint8Array
  getMany?(addresses: readonly SubtreeAddress[]): Promise<readonly Uint8Array[]> | readonly Uint8Array[]
}

/** Outcome of a proof check: the reason names the first thing that did not hold. */
export type ProofCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string }

/** Outcome of recomputing a root from a proof. */
export type RootResult =
  | { readonly ok: true; readonly root: Uint8Array }
  | { readonly ok: false; readonly reason: string }

// ---------------------------------------------------------------------------------------------------------------
// bigint bit helpers

function isPowerOfTwo(n: bigint): boolean {
  return n > 0n && (n & (n - 1n)) === 0n
}

/** Number of bits of n (n ≥ 0): bitLength(0) = 0, bitLength(5) = 3. */
function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length
}

/** Largest power of two strictly below n (n ≥ 2), the RFC's split point k. */
function splitPoint(n: bigint): bigint {
  return 1n << BigInt(bitLength(n - 1n) - 1)
}

function assertSize(name: string, n: bigint): void {
  if (typeof n !== 'bigint') throw new TypeError(`${name} must be a bigint, got ${typeof n}`)
  if (n < 0n) throw new RangeError(`${name} must be ≥ 0, got ${n}`)
}

// ---------------------------------------------------------------------------------------------------------------
// node addresses

/**
 * The complete subtrees tiling leaves [start, end), left to right, largest first. `start` must be a multiple of the
 * next power of two ≥ end − start (true of every range in the RFC tree and of [0, size)), so each piece is aligned.
 */
function tile(start: bigint, end: bigint): SubtreeAddress[] {
  const out: SubtreeAddress[] = []
  let at = start
  let rest = end - start
  while (rest > 0n) {
    const level = bitLength(rest) - 1
    out.push({ level, index: at >> BigInt(level) })
    const width = 1n << BigInt(level)
    at += width
    rest -= width
  }
  return out
}

function rangeRef(start: bigint, end: bigint): NodeRef {
  const parts = tile(start, end)
  const only = parts[0]
  if (parts.length === 1 && only !== undefined) return { kind: 'stored', level: only.level, index: only.index }
  return { kind: 'ephemeral', parts }
}

/**
 * The complete subtrees whose right-to-left fold is the root of a tree of `treeSize` leaves (its frontier), left to
 * right: one per set bit of `treeSize`, largest first. Empty for the empty tree.
 */
export function frontierAddresses(treeSize: bigint): readonly SubtreeAddress[] {
  assertSize('treeSize', treeSize)
  return tile(0n, treeSize)
}

/**
 * The nodes of the inclusion proof of leaf `leafIndex` in a tree of `treeSize` leaves: RFC 9162 §2.1.3.1
 * PATH(m, D[n]), bottom-up (the order of the proof). Throws `RangeError` unless 0 ≤ leafIndex < treeSize.
 */
export function inclusionProofNodes(leafIndex: bigint, treeSize: bigint): readonly NodeRef[] {
  assertSize('leafIndex', leafIndex)
  assertSize('treeSize', treeSize)
  if (leafIndex >= treeSize) throw new RangeError(`leafIndex ${leafIndex} is not below treeSize ${treeSize}`)
  const topDown: NodeRef[] = []
  let a = 0n
  let b = treeSize
  while (b - a > 1n) {
    const k = splitPoint(b - a)
    if (leafIndex < a + k) {
      topDown.push(rangeRef(a + k, b))
      b = a + k
    } else {
      topDown.push(rangeRef(a, a + k))
      a += k
    }
  }
  return topDown.reverse()
}

/**
 * The nodes of the consistency proof between tree sizes `size1` and `size2`: RFC 9162 §2.1.4.1
 * SUBPROOF(m, D[n], true), bottom-up. Empty when size1 = size2, and when size1 = 0 (Baton's rule, see
 * `checkConsistency`). Throws `RangeError` unless 0 ≤ size1 ≤ size2.
 */
export function consistencyProofNodes(size1: bigint, size2: bigint): readonly NodeRef[] {
  assertSize('size1', size1)
  assertSize('size2', size2)
  if (size1 > size2) throw new RangeError(`size1 ${size1} is larger than size2 ${size2}`)
  if (size1 === 0n || size1 === size2) return []
  const topDown: NodeRef[] = []
  let a = 0n
  let b = size2
  let complete = true // SUBPROOF's b flag: is [a, b) still the whole old tree's ancestor with nothing left of it?
  // Invariant: a < size1 ≤ b, so the loop ends when b reaches size1.
  while (size1 !== b) {
    const k = splitPoint(b - a)
    if (size1 <= a + k) {
      topDown.push(rangeRef(a + k, b))
      b = a + k
    } else {
      topDown.push(rangeRef(a, a + k))
      a += k
      complete = false
    }
  }
  // [a, size1) is a complete subtree here (a is a multiple of size1 − a, a power of two).
  if (!complete) topDown.push(rangeRef(a, size1))
  return topDown.reverse()
}

/** Every stored subtree the given proof nodes read, in proof order (duplicates kept). */
export function addressesOf(refs: readonly NodeRef[]): readonly SubtreeAddress[] {
  const out: SubtreeAddress[] = []
  for (const ref of refs) {
    if (ref.kind === 'stored') out.push({ level: ref.level, index: ref.index })
    else out.push(...ref.parts)
  }
  return out
}

/** Folds hashes right to left: h0 ⊕ (h1 ⊕ (… ⊕ hn)). The empty list folds to the empty-tree root. */
function foldRight(hashes: readonly Uint8Array[]): Uint8Array {
  let acc = hashes[hashes.length - 1]
  if (acc === undefined) return EMPTY_ROOT
  for (let i = hashes.length - 2; i >= 0; i--) acc = nodeHash(hashes[i]!, acc)
  return acc
}

/**
 * The hashes of `refs`, given a synchronous lookup of stored subtrees: ephemeral nodes are folded right to left.
 * The async `inclusionProof`/`consistencyProof` use it after fetching; it is exported for callers holding the
 * nodes already (tests, an in-memory tree).
 */
export function assembleProof(
  refs: readonly NodeRef[],
  lookup: (level: number, index: bigint) => Uint8Array,
): Uint8Array[] {
  return refs.map((ref) =>
    ref.kind === 'stored' ? lookup(ref.level, ref.index) : foldRight(ref.parts.map((p) => lookup(p.level, p.index))),
  )
}

const keyOf = (level: number, index: bigint): string => `${level}/${index}`

async function fetchAll(reader: NodeReader, addresses: readonly SubtreeAddress[]): Promise<Map<string, Uint8Array>> {
  const hashes = reader.getMany
    ? await reader.getMany(addresses)
    : await Promise.all(addresses.map((a) => reader.get(a.level, a.index)))
  if (hashes.length !== addresses.length) {
    throw new BatonError('AUDIT_INVALID', `node reader returned ${hashes.length} hashes for ${addresses.length} nodes`)
  }
  const map = new Map<string, Uint8Array>()
  addresses.forEach((a, i) => {
    const h = hashes[i]
    if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) {
      const found = h instanceof Uint8Array ? `${h.length} bytes` : typeof h
      throw new BatonError(
        'AUDIT_INVALID',
        `stored node (level ${a.level}, index ${a.index}): expected a 32-byte hash, found ${found}`,
      )
    }
    map.set(keyOf(a.level, a.index), h)
  })
  return map
}

async function resolve(reader: NodeReader, refs: readonly NodeRef[]): Promise<Uint8Array[]> {
  const map = await fetchAll(reader, addressesOf(refs))
  return assembleProof(refs, (level, index) => map.get(keyOf(level, index))!)
}

/** RFC 9162 inclusion proof of leaf `leafIndex` in the tree of `treeSize` leaves, read from stored subtrees. */
export async function inclusionProof(reader: NodeReader, leafIndex: bigint, treeSize: bigint): Promise<Uint8Array[]> {
  return resolve(reader, inclusionProofNodes(leafIndex, treeSize))
}

/** RFC 9162 consistency proof from `size1` to `size2` (empty when size1 is 0 or equals size2). */
export async function consistencyProof(reader: NodeReader, size1: bigint, size2: bigint): Promise<Uint8Array[]> {
  return resolve(reader, consistencyProofNodes(size1, size2))
}

/** MTH of the first `treeSize` leaves, from the frontier's stored subtrees: O(log n) reads. */
export async function rootAt(reader: NodeReader, treeSize: bigint): Promise<Uint8Array> {
  const addresses = frontierAddresses(treeSize)
  const map = await fetchAll(reader, addresses)
  return foldRight(addresses.map((a) => map.get(keyOf(a.level, a.index))!))
}

/** MTH(D[n]) of the given leaf hashes (RFC 6962 §2.1), iteratively in O(n) time and O(log n) memory. */
export function rootFromLeaves(leafHashes: readonly Uint8Array[]): Uint8Array {
  const b = new TreeBuilder()
  for (const h of leafHashes) b.push(h)
  return b.root()
}

// ---------------------------------------------------------------------------------------------------------------
// verification (RFC 9162 §2.1.3.2 and §2.1.4.2)

function badHash(name: string, h: Uint8Array): string | undefined {
  if (!(h instanceof Uint8Array)) return `${name} is not a byte array`
  if (h.length !== HASH_SIZE) return `${name} is ${h.length} bytes, expected ${HASH_SIZE}`
  return undefined
}

function badProof(proof: readonly Uint8Array[]): string | undefined {
  if (!Array.isArray(proof)) return 'proof is not an array'
  for (let i = 0; i < proof.length; i++) {
    const bad = badHash(`proof[${i}]`, proof[i]!)
    if (bad) return bad
  }
  return undefined
}

/**
 * The root a valid inclusion proof implies (RFC 9162 §2.1.3.2 without the final comparison). Fails on an index
 * outside the tree, a hash that is not 32 bytes, or a proof with too many or too few nodes.
 */
export function rootFromInclusionProof(
  leafHash: Uint8Array,
  leafIndex: bigint,
  treeSize: bigint,
  proof: readonly Uint8Array[],
): RootResult {
  if (typeof leafIndex !== 'bigint' || typeof treeSize !== 'bigint') {
    return { ok: false, reason: 'leafIndex and treeSize must be bigints' }
  }
  if (leafIndex < 0n || treeSize < 0n) return { ok: false, reason: 'negative leafIndex or treeSize' }
  if (leafIndex >= treeSize) return { ok: false, reason: `leafIndex ${leafIndex} is not below treeSize ${treeSize}` }
  const bad = badHash('leafHash', leafHash) ?? badProof(proof)
  if (bad) return { ok: false, reason: bad }
  let fn = leafIndex
  let sn = treeSize - 1n
  let r = leafHash
  for (const p of proof) {
    if (sn === 0n) return { ok: false, reason: `proof has more than the expected nodes (${proof.length} given)` }
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r)
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n
        sn >>= 1n
      }
    } else {
      r = nodeHash(r, p)
    }
    fn >>= 1n
    sn >>= 1n
  }
  if (sn !== 0n) return { ok: false, reason: `proof has fewer than the expected nodes (${proof.length} given)` }
  return { ok: true, root: r }
}

/** Checks an inclusion proof against a root, saying why it fails. */
export function checkInclusion(
  leafHash: Uint8Array,
  leafIndex: bigint,
  treeSize: bigint,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): ProofCheck {
  const badRoot = badHash('root', root)
  if (badRoot) return { ok: false, reason: badRoot }
  const r = rootFromInclusionProof(leafHash, leafIndex, treeSize, proof)
  if (!r.ok) return r
  if (!bytesEqual(r.root, root))
    return { ok: false, reason: `computed root ${toHex(r.root)} does not match ${toHex(root)}` }
  return { ok: true }
}

/** True iff `proof` proves leaf `leafHash` at `leafIndex` in the tree of `treeSize` leaves with root `root`. */
export function verifyInclusion(
  leafHash: Uint8Array,
  leafIndex: bigint,
  treeSize: bigint,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  return checkInclusion(leafHash, leafIndex, treeSize, proof, root).ok
}

/**
 * Checks a consistency proof between tree heads (size1, root1) and (size2, root2), saying why it fails.
 *
 * All hashes must be 32 bytes, always (a Baton root is a SHA-256; vectors that compare non-hash roots are refused).
 * - size1 > size2: fails.
 * - size1 = size2: valid iff the proof is empty and root1 = root2 (= the empty-tree root when both are 0).
 * - size1 = 0 (Baton's rule; RFC 9162 defines proofs only for 0 < size1): valid iff the proof is empty and root1 is
 *   the empty-tree root SHA-256(""). The empty tree is a prefix of every tree, so there is nothing to prove; but the
 *   old head must really be the empty tree's. This is C2SP CCTV's reading; transparency-dev refuses every size1 = 0.
 *   Accepting lets a monitor that pinned the log's genesis head (size 0) move forward without a special case, and
 *   refusing a non-empty proof or a wrong root1 keeps it strict.
 * - otherwise RFC 9162 §2.1.4.2, with exact proof length enforced (no extra or missing nodes).
 */
export function checkConsistency(
  size1: bigint,
  size2: bigint,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): ProofCheck {
  if (typeof size1 !== 'bigint' || typeof size2 !== 'bigint') return { ok: false, reason: 'sizes must be bigints' }
  if (size1 < 0n || size2 < 0n) return { ok: false, reason: 'negative tree size' }
  if (size1 > size2) return { ok: false, reason: `size1 ${size1} is larger than size2 ${size2}` }
  const bad = badHash('root1', root1) ?? badHash('root2', root2) ?? badProof(proof)
  if (bad) return { ok: false, reason: bad }
  if (size1 === 0n) {
    if (proof.length !== 0) return { ok: false, reason: 'a proof from the empty tree must be empty' }
    if (!bytesEqual(root1, EMPTY_ROOT)) return { ok: false, reason: 'root1 is not the empty-tree root' }
  }
  if (size1 === size2) {
    if (proof.length !== 0) return { ok: false, reason: 'equal sizes need an empty proof' }
    return bytesEqual(root1, root2) ? { ok: true } : { ok: false, reason: 'equal sizes but different roots' }
  }
  if (size1 === 0n) return { ok: true }
  if (proof.length === 0) return { ok: false, reason: 'empty proof' }

  // RFC 9162 §2.1.4.2
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof]
  let fn = size1 - 1n
  let sn = size2 - 1n
  while ((fn & 1n) === 1n) {
    fn >>= 1n
    sn >>= 1n
  }
  let fr = path[0]!
  let sr = fr
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!
    if (sn === 0n) return { ok: false, reason: `proof has more than the expected nodes (${proof.length} given)` }
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(c, fr)
      sr = nodeHash(c, sr)
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n
        sn >>= 1n
      }
    } else {
      sr = nodeHash(sr, c)
    }
    fn >>= 1n
    sn >>= 1n
  }
  if (sn !== 0n) return { ok: false, reason: `proof has fewer than the expected nodes (${proof.length} given)` }
  if (!bytesEqual(fr, root1)) return { ok: false, reason: 'proof does not reproduce root1' }
  if (!bytesEqual(sr, root2)) return { ok: false, reason: 'proof does not reproduce root2' }
  return { ok: true }
}

/** True iff `proof` shows the tree (size2, root2) extends the tree (size1, root1). See `checkConsistency`. */
export function verifyConsistency(
  size1: bigint,
  size2: bigint,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  return checkConsistency(size1, size2, root1, root2, proof).ok
}

// ---------------------------------------------------------------------------------------------------------------
// incremental builder

/** A complete subtree hash just finished by `TreeBuilder.append`. */
export interface CompletedNode {
  readonly level: number
  readonly index: bigint
  readonly hash: Uint8Array
}

/**
 * An append-only tree in memory as its frontier: the hashes of the complete subtrees that tile [0, size), largest
 * first (one per set bit of size). Appending costs amortised O(1) hashes; `root()` folds the frontier in O(log n).
 * Hashes passed in are kept by reference (and returned in `CompletedNode`s): do not mutate them afterwards.
 */
export class TreeBuilder {
  #size = 0n
  // #frontier[i] is the i-th tiling subtree, left to right; #levels[i] its level.
  readonly #frontier: Uint8Array[] = []
  readonly #levels: number[] = []
  #root: Uint8Array | undefined = EMPTY_ROOT

  /**
   * Resumes a tree of `size` leaves from its frontier (see `frontierAddresses(size)` for which stored subtrees these
   * are, left to right). Throws `TypeError` when the count does not match the size or a hash is not 32 bytes.
   */
  static fromFrontier(size: bigint, hashes: readonly Uint8Array[]): TreeBuilder {
    assertSize('size', size)
    const addresses = tile(0n, size)
    if (hashes.length !== addresses.length) {
      throw new TypeError(`a tree of ${size} leaves has ${addresses.length} frontier hashes, got ${hashes.length}`)
    }
    const b = new TreeBuilder()
    addresses.forEach((a, i) => {
      const h = hashes[i]!
      const bad = badHash(`frontier[${i}]`, h)
      if (bad) throw new TypeError(bad)
      b.#frontier.push(h)
      b.#levels.push(a.level)
    })
    b.#size = size
    b.#root = undefined
    return b
  }

  /** Resumes a tree of `size` leaves by reading its frontier (O(log n) reads). */
  static async fromReader(reader: NodeReader, size: bigint): Promise<TreeBuilder> {
    const addresses = frontierAddresses(size)
    const map = await fetchAll(reader, addresses)
    return TreeBuilder.fromFrontier(
      size,
      addresses.map((a) => map.get(keyOf(a.level, a.index))!),
    )
  }

  /** Number of leaves appended so far. */
  get size(): bigint {
    return this.#size
  }

  /** The frontier hashes, left to right (what `fromFrontier` takes back). */
  frontier(): readonly Uint8Array[] {
    return [...this.#frontier]
  }

  /**
   * Appends one leaf hash and returns the complete subtrees this finished, for the store to persist: the leaf
   * itself (level 0) and each parent it completed, bottom-up.
   */
  append(leafHash: Uint8Array): CompletedNode[] {
    const bad = badHash('leafHash', leafHash)
    if (bad) throw new TypeError(bad)
    let index = this.#size
    let level = 0
    let h = leafHash
    const out: CompletedNode[] = [{ level, index, hash: h }]
    while ((index & 1n) === 1n) {
      this.#levels.pop()
      h = nodeHash(this.#frontier.pop()!, h)
      level++
      index >>= 1n
      out.push({ level, index, hash: h })
    }
    this.#frontier.push(h)
    this.#levels.push(level)
    this.#size++
    this.#root = undefined
    return out
  }

  /** Appends one leaf hash without reporting completed nodes (the fast path for `verify`). */
  push(leafHash: Uint8Array): void {
    if (!(leafHash instanceof Uint8Array) || leafHash.length !== HASH_SIZE) {
      throw new TypeError(badHash('leafHash', leafHash))
    }
    // The frontier's lowest levels are exactly the trailing one-bits of size: merge while the top level is `level`.
    let h = leafHash
    let level = 0
    const levels = this.#levels
    const frontier = this.#frontier
    while (levels.length > 0 && levels[levels.length - 1] === level) {
      levels.pop()
      h = nodeHash(frontier.pop()!, h)
      level++
    }
    frontier.push(h)
    levels.push(level)
    this.#size++
    this.#root = undefined
  }

  /** MTH of the leaves so far (the empty-tree root when none): O(log n) hashes, cached until the next append. */
  root(): Uint8Array {
    this.#root ??= foldRight(this.#frontier)
    return this.#root
  }
}

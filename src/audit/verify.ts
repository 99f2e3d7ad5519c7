import type { KeyObject } from 'node:crypto'
import type { SignedTreeHead, Store, StoredTreeNode } from '../store/ports.js'
import { bytesEqual, EMPTY_ROOT, leafHash, toHex } from './entry.js'
import { checkHeadSignature, keysOfRecords } from './head.js'
import { type CompletedNode, TreeBuilder } from './merkle.js'

/*
 * `verify`: recomputes the whole log from the entries' stored text and compares every stored byte that depends on
 * it. Works on any source of entries and heads (the store, or an export file); it reads no clock and does no I/O of
 * its own.
 *
 * Two passes, which can run on two threads (`checkEntries` anywhere, the tree pass in `verifyLog`):
 *   - the entries pass reads each entry once: density, embedded seq, leaf hash; it hands on the checked leaf hashes;
 *   - the tree pass folds them into the tree, compares stored subtrees and checks signed heads.
 *
 * Checks, in seq order (the first failure wins and names the first bad sequence number):
 *   1. sequence numbers are dense from 0 and each entry's embedded `seq` equals its row's;
 *   2. each stored leaf hash is SHA-256(0x00 || entry text);
 *   3. each stored interior subtree (level ≥ 1) equals the one recomputed from the entries (store only);
 *   4. each signed head's signature verifies with the key it names, and its root is the recomputed root at its size;
 *   5. no signed head and no log counter claims entries that are missing; no stored subtree lies outside the tree.
 */

export type VerifyProblem =
  | 'entry_missing'
  | 'entry_seq_mismatch'
  | 'entry_malformed'
  | 'leaf_hash_mismatch'
  | 'node_missing'
  | 'node_mismatch'
  | 'node_extra'
  | 'head_signature_invalid'
  | 'head_root_mismatch'
  | 'head_beyond_log'

export type VerifyResult =
  | {
      readonly ok: true
      /** Entries checked. */
      readonly entries: number
      /** Size of the largest signed head: entries beyond it are checked but not yet vouched for by a signature. */
      readonly treeSize: number
      readonly heads: number
      readonly warnings: readonly string[]
    }
  | {
      readonly ok: false
      /** The first bad sequence number. */
      readonly seq: number
      readonly problem: VerifyProblem
      /** What was expected and what was found. */
      readonly detail: string
    }

export interface VerifyEntry {
  readonly seq: number
  readonly entry: string
  /** The stored leaf hash, when the source has one. */
  readonly leafHash?: Uint8Array
}

/** A failed check: the first bad sequence number, the problem, and what was expected and found. */
export type VerifyFailure = Extract<VerifyResult, { ok: false }>

/** What the entries pass hands the tree pass: checked leaf hashes in seq order, then at most one failure. */
export type LeafItem =
  | { readonly kind: 'leaves'; readonly from: number; readonly hashes: readonly Uint8Array[] }
  | { readonly kind: 'failure'; readonly failure: VerifyFailure }

export interface VerifyInput {
  /**
   * Entries in seq order, in batches (as stored: gaps and disorder are what verify looks for), or the output of an
   * entries pass run elsewhere (`checkEntries`, e.g. on a worker thread).
   */
  readonly entries: AsyncIterable<readonly VerifyEntry[]> | { readonly leaves: AsyncIterable<LeafItem> }
  /** Signed heads, any order. */
  readonly heads: readonly SignedTreeHead[]
  /** Trusted public keys by key id. */
  readonly keys: ReadonlyMap<string, KeyObject>
  /** Stored interior subtrees, when the source has them. */
  readonly nodes?: {
    scan(ranges: readonly { level: number; from: number; to: number }[]): Promise<readonly StoredTreeNode[]>
    /**
     * Stored subtrees that lie outside the tree of the latest signed head, read at the end (so that a sequencer
     * still running adds heads and nodes together and is never mistaken for an intruder).
     */
    outside(): Promise<{ readonly count: number; readonly treeSize: number }>
  }
  /** How many entries the log itself says it has (the store's sequence counter). */
  readonly claimedSize?: number
  readonly warnings?: readonly string[]
  /** Called after each batch with the number of entries checked so far. */
  readonly onProgress?: (entries: number) => void
}

type Failure = VerifyFailure

const fail = (seq: number, problem: VerifyProblem, detail: string): Failure => ({ ok: false, seq, problem, detail })

/** A failure and the end (exclusive) of the entry range it implicates: the narrowest evidence wins. */
type Found = { readonly failure: Failure; readonly until: number }

const narrower = (a: Found | undefined, b: Found | undefined): Found | undefined =>
  a === undefined
    ? b
    : b === undefined
      ? a
      : b.until < a.until || (b.until === a.until && b.failure.seq < a.failure.seq)
        ? b
        : a

/** Interior subtrees (level ≥ 1) of a tree of n leaves: Σ ⌊n / 2^l⌋ = n − popcount(n). */
export function interiorCount(n: number): number {
  return n - popcount(n)
}

function popcount(n: number): number {
  let c = 0
  for (let x = BigInt(n); x > 0n; x >>= 1n) c += Number(x & 1n)
  return c
}

/*
 * The tail every canonical entry ends with: its top-level keys are sorted and `type` is the only one after `seq`, so
 * the text ends `"seq":<n>,"type":"<string>"}`. In well-formed JSON a `"seq":` right after `{` or `,` is a key, and a
 * key whose member is followed only by `"type":"…"}` belongs to the outermost object: reading the seq there is exact
 * without parsing ~500 bytes of JSON per entry (verify's hottest step). Any other shape takes the full parse.
 */
const SEQ_TAIL = /(0|[1-9]\d*|"(?:0|[1-9]\d*)"),"type":"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"\}$/y

/** The `seq` member of an entry's canonical JSON, as a decimal string; undefined when absent or malformed. */
function embeddedSeq(entry: string): string | undefined {
  const at = entry.lastIndexOf('"seq":')
  if (at > 0 && (entry.charCodeAt(at - 1) === 0x2c || entry.charCodeAt(at - 1) === 0x7b)) {
    SEQ_TAIL.lastIndex = at + 6
    const m = SEQ_TAIL.exec(entry)
    if (m !== null) return m[1]!.charCodeAt(0) === 0x22 ? m[1]!.slice(1, -1) : m[1]!
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(entry)
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined
  const seq = (parsed as { seq?: unknown }).seq
  if (typeof seq === 'number' && Number.isSafeInteger(seq)) return String(seq)
  if (typeof seq === 'string' && /^\d+$/.test(seq)) return seq
  return undefined
}

/**
 * The entries pass: density, embedded seq and leaf hash of every entry, in one read. Yields the checked leaf hashes
 * batch by batch and, at the first bad entry, that failure (and stops).
 */
export async function* checkEntries(entries: AsyncIterable<readonly VerifyEntry[]>): AsyncGenerator<LeafItem> {
  let expected = 0
  for await (const batch of entries) {
    const from = expected
    const hashes: Uint8Array[] = []
    let failure: Failure | undefined
    for (const e of batch) {
      if (e.seq !== expected) {
        failure =
          e.seq > expected
            ? fail(expected, 'entry_missing', `no entry ${expected}: the next stored entry is ${e.seq}`)
            : fail(e.seq, 'entry_seq_mismatch', `entry ${e.seq} appears again after entry ${expected - 1}`)
        break
      }
      const embedded = embeddedSeq(e.entry)
      if (embedded === undefined) {
        failure = fail(e.seq, 'entry_malformed', `entry ${e.seq} is not a JSON object with a seq member`)
        break
      }
      if (embedded !== String(e.seq)) {
        failure = fail(e.seq, 'entry_seq_mismatch', `the entry stored at seq ${e.seq} says it is seq ${embedded}`)
        break
      }
      const h = leafHash(e.entry)
      if (e.leafHash !== undefined && !bytesEqual(h, e.leafHash)) {
        failure = fail(
          e.seq,
          'leaf_hash_mismatch',
          `entry ${e.seq}: SHA-256(0x00 || entry) is ${toHex(h)}, the stored leaf hash is ${toHex(e.leafHash)} (the entry text was changed)`,
        )
        break
      }
      hashes.push(h)
      expected++
    }
    if (hashes.length > 0) yield { kind: 'leaves', from, hashes }
    if (failure !== undefined) {
      yield { kind: 'failure', failure }
      return
    }
  }
}

/** Verifies a log: the entries pass (unless given its output) and the tree pass. See the top of this file. */
export async function verifyLog(input: VerifyInput): Promise<VerifyResult> {
  const heads = [...input.heads].sort((a, b) => a.size - b.size)
  const treeSize = heads.at(-1)?.size ?? 0
  const builder = new TreeBuilder()
  let expected = 0
  let headIdx = 0
  let lastGoodHead = 0

  const checkHead = (h: SignedTreeHead, root: Uint8Array): Failure | undefined => {
    const range = `entries ${lastGoodHead}..${h.size - 1} are vouched for by no valid head`
    const sig = checkHeadSignature(h, input.keys)
    if (!sig.ok)
      return fail(lastGoodHead, 'head_signature_invalid', `signed head of size ${h.size}: ${sig.reason}; ${range}`)
    if (!bytesEqual(h.root, root)) {
      return fail(
        lastGoodHead,
        'head_root_mismatch',
        `signed head of size ${h.size} has root ${toHex(h.root)}, the entries give ${toHex(root)}; ${range}`,
      )
    }
    lastGoodHead = h.size
    return undefined
  }

  while (headIdx < heads.length && heads[headIdx]!.size === 0) {
    const f = checkHead(heads[headIdx]!, EMPTY_ROOT)
    if (f) return f
    headIdx++
  }

  const leaves = Symbol.asyncIterator in input.entries ? checkEntries(input.entries) : input.entries.leaves
  for await (const item of leaves) {
    // Nodes and heads over earlier leaves were compared already, and their ranges end before the bad entry.
    if (item.kind === 'failure') return item.failure
    if (item.from !== expected) throw new TypeError(`leaf batch starts at ${item.from}, expected ${expected}`)
    const completed: CompletedNode[] = []
    let failure: Failure | undefined
    let until = 0
    for (const h of item.hashes) {
      if (input.nodes !== undefined && expected < treeSize) {
        for (const n of builder.append(h)) if (n.level > 0) completed.push(n)
      } else {
        builder.push(h)
      }
      expected++
      while (headIdx < heads.length && heads[headIdx]!.size === expected) {
        failure = checkHead(heads[headIdx]!, builder.root())
        until = heads[headIdx]!.size
        headIdx++
        if (failure !== undefined) break
      }
      if (failure !== undefined) break
    }
    // A stored subtree can localise a change more narrowly than a head: the narrowest evidence wins.
    if (input.nodes !== undefined && completed.length > 0) {
      const found = failure === undefined ? undefined : { failure, until }
      failure = narrower(found, await compareNodes(input.nodes, completed))?.failure
    }
    if (failure !== undefined) return failure
    input.onProgress?.(expected)
  }

  if (input.claimedSize !== undefined && input.claimedSize > expected) {
    return fail(
      expected,
      'entry_missing',
      `the log counter says ${input.claimedSize} entries were appended, but entries stop at ${expected - 1}`,
    )
  }
  if (headIdx < heads.length) {
    const h = heads[headIdx]!
    return fail(
      expected,
      'head_beyond_log',
      `signed head of size ${h.size} covers entries ${expected}..${h.size - 1}, which are missing (the log was truncated)`,
    )
  }
  if (input.nodes !== undefined) {
    const extra = await input.nodes.outside()
    if (extra.count > 0) {
      return fail(
        extra.treeSize,
        'node_extra',
        `the store holds ${extra.count} interior subtrees beyond the signed tree of ${extra.treeSize} entries`,
      )
    }
  }
  return { ok: true, entries: expected, treeSize, heads: heads.length, warnings: input.warnings ?? [] }
}

async function compareNodes(
  nodes: NonNullable<VerifyInput['nodes']>,
  completed: readonly CompletedNode[],
): Promise<Found | undefined> {
  const span = new Map<number, { from: number; to: number }>()
  for (const n of completed) {
    const i = Number(n.index)
    const s = span.get(n.level)
    if (s === undefined) span.set(n.level, { from: i, to: i })
    else {
      s.from = Math.min(s.from, i)
      s.to = Math.max(s.to, i)
    }
  }
  const ranges = [...span].map(([level, r]) => ({ level, from: r.from, to: r.to }))
  const stored = await nodes.scan(ranges)
  // Per level, the stored hashes by index − from (no per-node string keys: a million of them is GC time).
  const byLevel = new Map<number, { from: number; hashes: (Uint8Array | undefined)[] }>()
  for (const r of ranges) byLevel.set(r.level, { from: r.from, hashes: new Array(r.to - r.from + 1) })
  for (const n of stored) {
    const l = byLevel.get(n.level)
    if (l !== undefined) l.hashes[n.index - l.from] = n.hash
  }
  let best: Found | undefined
  for (const n of completed) {
    const first = Number(n.index << BigInt(n.level))
    const last = first + 2 ** n.level - 1
    const l = byLevel.get(n.level)!
    const got = l.hashes[Number(n.index) - l.from]
    const where = `interior subtree (level ${n.level}, index ${n.index}) over entries ${first}..${last}`
    if (got === undefined) {
      best = narrower(best, { failure: fail(first, 'node_missing', `${where} is not stored`), until: last + 1 })
    } else if (!bytesEqual(got, n.hash)) {
      const detail = `${where} is stored as ${toHex(got)}, the entries give ${toHex(n.hash)}`
      best = narrower(best, { failure: fail(first, 'node_mismatch', detail), until: last + 1 })
    }
  }
  return best
}

/**
 * Verifies the log in a store. Trusts the public keys recorded in the store unless `trustedKeys` is given (e.g. the
 * keys published at `/.well-known/baton-audit-keys`, kept elsewhere): a DBA who can rewrite the log can also add a
 * key, so an outside copy of the keys is the stronger check.
 */
export async function verifyStore(
  store: Pick<
    Store,
    'listHeads' | 'latestHead' | 'listAuditKeys' | 'auditSize' | 'scanAudit' | 'scanTreeNodes' | 'countTreeNodes'
  >,
  options: {
    readonly trustedKeys?: ReadonlyMap<string, KeyObject>
    readonly batchSize?: number
    /** The entries pass run elsewhere (a worker thread reading the same store): then this thread only folds. */
    readonly leaves?: AsyncIterable<LeafItem>
    readonly onProgress?: (entries: number, total: number) => void
  } = {},
): Promise<VerifyResult> {
  const [heads, records, claimedSize] = await Promise.all([store.listHeads(), store.listAuditKeys(), store.auditSize()])
  const outside = async () => {
    const count = await store.countTreeNodes() // before the head: nodes commit together with their head
    const size = (await store.latestHead())?.size ?? 0
    return { count: count - interiorCount(size), treeSize: size }
  }
  const recorded = keysOfRecords(records)
  const warnings = recorded.bad.map((b) => `audit key record ${b.keyId} is not trusted: ${b.reason}`)
  const { onProgress } = options
  return verifyLog({
    entries:
      options.leaves === undefined ? store.scanAudit(0, options.batchSize ?? 20_000) : { leaves: options.leaves },
    heads,
    keys: options.trustedKeys ?? recorded.keys,
    nodes: { scan: (r) => store.scanTreeNodes(r), outside },
    claimedSize,
    warnings,
    ...(onProgress === undefined ? {} : { onProgress: (n: number) => onProgress(n, claimedSize) }),
  })
}

import { readFile } from 'node:fs/promises'
import { bytesEqual, EMPTY_ROOT, fromHex, HASH_SIZE, leafHash, nodeHash, toHex } from './entry.js'
import {
  assembleProof,
  checkConsistency,
  checkInclusion,
  consistencyProofNodes,
  frontierAddresses,
  inclusionProofNodes,
  rootFromLeaves,
  TreeBuilder,
} from './merkle.js'

/*
 * Conformance of the Merkle core against published RFC 6962 vector files (transparency-dev/merkle, C2SP CCTV),
 * in the layout of /work/shared/data/rfc6962-vectors/SOURCE.md. `runConformance` is pure on the file's text;
 * `readVectorFile` is the only I/O.
 *
 * One vector is one checked expectation: each leaf hash, each root, each complete-subtree node hash, each inclusion
 * or consistency proof (valid or invalid) and each hasher vector.
 *
 * Where the sources disagree (SOURCE.md: `policy_dependent`) a vector's own `expect_valid` follows its source, so
 * no single verifier can agree with both. Baton's rule (see `checkConsistency`):
 *   - size1 = 0 is valid iff the proof is empty, root1 is the empty-tree root SHA-256("") and root2 is a 32-byte
 *     hash (the empty-tree root too when size2 = 0). CCTV agrees; transparency-dev refuses every size1 = 0.
 *   - every root is a 32-byte hash, so equal sizes with equal non-hash roots are refused (transparency-dev compares
 *     the bytes and accepts them).
 * Vectors in those two areas are held to Baton's rule instead of `expect_valid`; where the two differ the vector is
 * listed in `policy` so the difference stays visible. Every other vector is held to its `expect_valid`.
 */

export interface ConformanceFailure {
  readonly name: string
  readonly reason: string
}

/** A vector whose source expectation differs from Baton's documented rule, and was judged by the rule. */
export interface PolicyDifference {
  readonly name: string
  readonly sourceExpectsValid: boolean
  readonly batonExpectsValid: boolean
  readonly rule: string
}

export interface ConformanceReport {
  /** The file's `name`, when it has one. */
  readonly file?: string
  readonly passed: number
  readonly failed: number
  readonly failures: readonly ConformanceFailure[]
  readonly policy: readonly PolicyDifference[]
}

/** Reads a vector file's text (the only I/O of the conformance check). */
export async function readVectorFile(path: string): Promise<string> {
  return readFile(path, 'utf8')
}

// ---------------------------------------------------------------------------------------------------------------
// JSON with exact integers

const INT_TAG = '\u0000int:'
const INT_TAG_ESCAPED = '\\u0000int:'
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y

/**
 * JSON.parse, except that every integer literal becomes a bigint, read from its source text (2^64 − 1 stays exact).
 * Node 20's JSON.parse has no reviver source access, so integer tokens outside strings are first rewritten into
 * tagged strings that the reviver turns back into bigints.
 */
export function parseJsonWithBigInts(text: string): unknown {
  if (text.includes(INT_TAG_ESCAPED)) throw new SyntaxError('input contains the reserved integer tag')
  const out: string[] = []
  let from = 0
  let i = 0
  while (i < text.length) {
    const ch = text[i]!
    if (ch === '"') {
      i++
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1
      i++
      continue
    }
    if (ch === '-' || (ch >= '0' && ch <= '9')) {
      NUMBER.lastIndex = i
      const m = NUMBER.exec(text)
      if (m === null) {
        i++
        continue
      }
      if (m[1] === undefined && m[2] === undefined) {
        out.push(text.slice(from, i), `"${INT_TAG_ESCAPED}${m[0]}"`)
        from = i + m[0].length
      }
      i += m[0].length
      continue
    }
    i++
  }
  out.push(text.slice(from))
  return JSON.parse(out.join(''), (_key, value: unknown) =>
    typeof value === 'string' && value.startsWith(INT_TAG) ? BigInt(value.slice(INT_TAG.length)) : value,
  )
}

// ---------------------------------------------------------------------------------------------------------------
// field readers (throw VectorError; each vector catches its own)

class VectorError extends Error {}

type Doc = Readonly<Record<string, unknown>>

function isRecord(v: unknown): v is Doc {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function hexField(v: unknown, field: string): Uint8Array {
  if (typeof v !== 'string') throw new VectorError(`${field}: expected a hex string, found ${typeof v}`)
  try {
    return fromHex(v)
  } catch (e) {
    throw new VectorError(`${field}: ${(e as Error).message}`)
  }
}

function hexList(v: unknown, field: string): Uint8Array[] {
  if (!Array.isArray(v)) throw new VectorError(`${field}: expected an array of hex strings`)
  return v.map((x, i) => hexField(x, `${field}[${i}]`))
}

/** An integer given as a JSON integer (parsed to bigint) or, beyond 2^53, as a decimal string. */
function intField(v: unknown, field: string): bigint {
  if (typeof v === 'bigint') return v
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v)
  throw new VectorError(`${field}: expected an integer, found ${JSON.stringify(v)}`)
}

function boolField(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw new VectorError(`${field}: expected a boolean`)
  return v
}

// ---------------------------------------------------------------------------------------------------------------
// the run

const METADATA = new Set(['name', 'description', 'hash', 'leaf_hash_rule', 'node_hash_rule', 'encoding', 'leaves'])
const INCLUSION = new Set(['inclusion_proofs', 'inclusion_proofs_invalid'])
const CONSISTENCY = new Set(['consistency_proofs', 'consistency_proofs_invalid'])
const OTHER_SECTIONS = new Set(['leaf_hashes', 'roots', 'node_hashes', 'hasher_vectors'])

/** The tree of a file's leaves: every complete subtree hash, and the root at every size. */
interface Tree {
  readonly count: bigint
  readonly nodes: ReadonlyMap<string, Uint8Array>
  readonly leafHashes: readonly Uint8Array[]
  /** roots[size], as the builder reported it after each append. */
  readonly roots: readonly Uint8Array[]
}

const key = (level: number, index: bigint): string => `${level}/${index}`

function buildTree(leafHashes: readonly Uint8Array[]): Tree {
  const nodes = new Map<string, Uint8Array>()
  const b = new TreeBuilder()
  const roots: Uint8Array[] = [b.root()]
  for (const h of leafHashes) {
    for (const n of b.append(h)) nodes.set(key(n.level, n.index), n.hash)
    roots.push(b.root())
  }
  return { count: BigInt(leafHashes.length), nodes, leafHashes, roots }
}

function lookupIn(tree: Tree): (level: number, index: bigint) => Uint8Array {
  return (level, index) => {
    const h = tree.nodes.get(key(level, index))
    if (h === undefined) throw new VectorError(`no stored node (level ${level}, index ${index})`)
    return h
  }
}

function sameList(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return a.length === b.length && a.every((x, i) => bytesEqual(x, b[i]!))
}

/**
 * Baton's expectation for a consistency vector in an area where the sources disagree, or undefined outside them.
 */
function batonConsistencyRule(
  size1: bigint,
  size2: bigint,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): { readonly valid: boolean; readonly rule: string } | undefined {
  if (size1 === 0n) {
    const valid =
      proof.length === 0 &&
      bytesEqual(root1, EMPTY_ROOT) &&
      root2.length === HASH_SIZE &&
      (size2 > 0n || bytesEqual(root2, EMPTY_ROOT))
    return { valid, rule: 'from the empty tree: valid iff empty proof and root1 = SHA-256("")' }
  }
  if (size1 === size2 && (root1.length !== HASH_SIZE || root2.length !== HASH_SIZE)) {
    return { valid: false, rule: 'roots must be 32-byte hashes' }
  }
  return undefined
}

/**
 * Checks every vector in one vector file's text. Pure; never throws: a malformed file or vector is a failure.
 */
export function runConformance(vectorsJsonText: string): ConformanceReport {
  const failures: ConformanceFailure[] = []
  const policy: PolicyDifference[] = []
  let passed = 0
  const check = (name: string, run: () => string | undefined): void => {
    let reason: string | undefined
    try {
      reason = run()
    } catch (e) {
      reason = e instanceof Error ? e.message : String(e)
    }
    if (reason === undefined) passed++
    else failures.push({ name, reason })
  }

  let doc: unknown
  try {
    doc = parseJsonWithBigInts(vectorsJsonText)
  } catch (e) {
    return { passed: 0, failed: 1, failures: [{ name: 'file', reason: `not JSON: ${(e as Error).message}` }], policy }
  }
  if (!isRecord(doc)) {
    return { passed: 0, failed: 1, failures: [{ name: 'file', reason: 'expected a JSON object' }], policy }
  }
  const file = typeof doc['name'] === 'string' ? doc['name'] : undefined
  const report = (): ConformanceReport => ({
    ...(file === undefined ? {} : { file }),
    passed,
    failed: failures.length,
    failures,
    policy,
  })

  if (doc['hash'] !== undefined && doc['hash'] !== 'SHA-256') {
    failures.push({ name: 'hash', reason: `expected SHA-256, found ${String(doc['hash'])}` })
    return report()
  }

  let leaves: Uint8Array[] = []
  try {
    leaves = doc['leaves'] === undefined ? [] : hexList(doc['leaves'], 'leaves')
  } catch (e) {
    failures.push({ name: 'leaves', reason: (e as Error).message })
  }
  const tree = buildTree(leaves.map((l) => leafHash(l)))

  for (const [section, value] of Object.entries(doc)) {
    if (METADATA.has(section)) continue
    if (INCLUSION.has(section) || CONSISTENCY.has(section) || OTHER_SECTIONS.has(section)) continue
    if (typeof value === 'string') continue // further free-text metadata
    failures.push({ name: section, reason: 'unknown section: not checked' })
  }

  // leaf hashes
  const leafHashes = doc['leaf_hashes']
  if (leafHashes !== undefined) {
    if (!Array.isArray(leafHashes)) failures.push({ name: 'leaf_hashes', reason: 'expected an array' })
    else
      for (const [i, want] of leafHashes.entries()) {
        check(`leaf_hashes[${i}]`, () => {
          const leaf = leaves[i]
          if (leaf === undefined) return `no leaf ${i} in leaves`
          const got = leafHash(leaf)
          return bytesEqual(got, hexField(want, 'leaf_hash')) ? undefined : `computed ${toHex(got)}`
        })
      }
  }

  // roots: MTH of the leaves, the incremental builder's root, and the root resumed from the stored frontier
  const roots = doc['roots']
  if (roots !== undefined) {
    if (!isRecord(roots)) failures.push({ name: 'roots', reason: 'expected an object of size → root' })
    else
      for (const [sizeText, want] of Object.entries(roots)) {
        check(`roots[${sizeText}]`, () => {
          const size = intField(sizeText, 'tree size')
          if (size < 0n || size > tree.count) return `tree size ${size} needs leaves the file does not have`
          const expected = hexField(want, 'root')
          const got = rootFromLeaves(tree.leafHashes.slice(0, Number(size)))
          if (!bytesEqual(got, expected)) return `computed ${toHex(got)}`
          const built = tree.roots[Number(size)]!
          if (!bytesEqual(built, expected)) return `incremental builder's root is ${toHex(built)}`
          const stored = frontierAddresses(size).map((a) => lookupIn(tree)(a.level, a.index))
          const resumed = TreeBuilder.fromFrontier(size, stored).root()
          if (!bytesEqual(resumed, expected)) return `root from the stored frontier is ${toHex(resumed)}`
          return undefined
        })
      }
  }

  // complete-subtree node hashes: { "level0_leaf_hashes": [...], "level1": [...], ... }
  const nodeHashes = doc['node_hashes']
  if (nodeHashes !== undefined) {
    if (!isRecord(nodeHashes)) failures.push({ name: 'node_hashes', reason: 'expected an object of level → hashes' })
    else
      for (const [levelName, list] of Object.entries(nodeHashes)) {
        const m = /^level(\d+)/.exec(levelName)
        if (m === null || !Array.isArray(list)) {
          failures.push({ name: `node_hashes.${levelName}`, reason: 'expected levelN: [hex]' })
          continue
        }
        const level = Number(m[1])
        for (const [i, want] of list.entries()) {
          check(`node_hashes.${levelName}[${i}]`, () => {
            const got = tree.nodes.get(key(level, BigInt(i)))
            if (got === undefined) return `subtree (level ${level}, index ${i}) is not complete within the leaves`
            return bytesEqual(got, hexField(want, 'node hash')) ? undefined : `computed ${toHex(got)}`
          })
        }
      }
  }

  // inclusion proofs, valid and invalid
  for (const section of INCLUSION) {
    const list = doc[section]
    if (list === undefined) continue
    if (!Array.isArray(list)) {
      failures.push({ name: section, reason: 'expected an array' })
      continue
    }
    list.forEach((v: unknown, i) => {
      const name = `${section}[${i}]${isRecord(v) && typeof v['desc'] === 'string' ? ` ${v['desc']}` : ''}`
      check(name, () => {
        if (!isRecord(v)) return 'expected an object'
        const leafIndex = intField(v['leaf_index'], 'leaf_index')
        const treeSize = intField(v['tree_size'], 'tree_size')
        const leaf = hexField(v['leaf_hash'], 'leaf_hash')
        const root = hexField(v['root'], 'root')
        const proof = hexList(v['proof'], 'proof')
        const expectValid = boolField(v['expect_valid'], 'expect_valid')
        const result = checkInclusion(leaf, leafIndex, treeSize, proof, root)
        if (result.ok !== expectValid) {
          return expectValid ? `rejected a valid proof: ${result.ok ? '' : result.reason}` : 'accepted an invalid proof'
        }
        // A valid proof over the file's own leaves must also be the one Baton generates from stored nodes.
        if (expectValid && treeSize <= tree.count) {
          const generated = assembleProof(inclusionProofNodes(leafIndex, treeSize), lookupIn(tree))
          if (!sameList(generated, proof)) return `generated proof differs: [${generated.map(toHex).join(', ')}]`
        }
        return undefined
      })
    })
  }

  // consistency proofs, valid and invalid
  for (const section of CONSISTENCY) {
    const list = doc[section]
    if (list === undefined) continue
    if (!Array.isArray(list)) {
      failures.push({ name: section, reason: 'expected an array' })
      continue
    }
    list.forEach((v: unknown, i) => {
      const name = `${section}[${i}]${isRecord(v) && typeof v['desc'] === 'string' ? ` ${v['desc']}` : ''}`
      check(name, () => {
        if (!isRecord(v)) return 'expected an object'
        const size1 = intField(v['size1'], 'size1')
        const size2 = intField(v['size2'], 'size2')
        const root1 = hexField(v['root1'], 'root1')
        const root2 = hexField(v['root2'], 'root2')
        const proof = hexList(v['proof'], 'proof')
        const sourceExpects = boolField(v['expect_valid'], 'expect_valid')
        const rule = batonConsistencyRule(size1, size2, root1, root2, proof)
        const expectValid = rule === undefined ? sourceExpects : rule.valid
        if (rule !== undefined && rule.valid !== sourceExpects) {
          policy.push({ name, sourceExpectsValid: sourceExpects, batonExpectsValid: rule.valid, rule: rule.rule })
        }
        const result = checkConsistency(size1, size2, root1, root2, proof)
        if (result.ok !== expectValid) {
          return expectValid ? `rejected a valid proof: ${result.ok ? '' : result.reason}` : 'accepted an invalid proof'
        }
        if (expectValid && size2 <= tree.count) {
          const generated = assembleProof(consistencyProofNodes(size1, size2), lookupIn(tree))
          if (!sameList(generated, proof)) return `generated proof differs: [${generated.map(toHex).join(', ')}]`
        }
        return undefined
      })
    })
  }

  // hasher known answers
  const hasher = doc['hasher_vectors']
  if (hasher !== undefined) {
    if (!Array.isArray(hasher)) failures.push({ name: 'hasher_vectors', reason: 'expected an array' })
    else
      hasher.forEach((v: unknown, i) => {
        const name = `hasher_vectors[${i}]${isRecord(v) && typeof v['desc'] === 'string' ? ` ${v['desc']}` : ''}`
        check(name, () => {
          if (!isRecord(v)) return 'expected an object'
          const expected = hexField(v['expected'], 'expected')
          let got: Uint8Array
          switch (v['op']) {
            case 'empty_root':
              got = EMPTY_ROOT
              break
            case 'leaf_hash':
              got = leafHash(hexField(v['input'], 'input'))
              break
            case 'node_hash':
              got = nodeHash(hexField(v['left'], 'left'), hexField(v['right'], 'right'))
              break
            default:
              return `unknown op ${JSON.stringify(v['op'])}`
          }
          return bytesEqual(got, expected) ? undefined : `computed ${toHex(got)}`
        })
      })
  }

  return report()
}

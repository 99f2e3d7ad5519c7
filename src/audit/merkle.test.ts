import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { bytesEqual, EMPTY_ROOT, leafHash, nodeHash, toHex } from './entry.js'
import {
  checkConsistency,
  consistencyProof,
  consistencyProofNodes,
  frontierAddresses,
  inclusionProof,
  inclusionProofNodes,
  type NodeReader,
  rootAt,
  rootFromInclusionProof,
  rootFromLeaves,
  TreeBuilder,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js'

/** Reference MTH straight from RFC 6962 §2.1's recursive definition. */
function mth(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return EMPTY_ROOT
  if (leaves.length === 1) return leaves[0]!
  let k = 1
  while (k * 2 < leaves.length) k *= 2
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)))
}

const leavesOf = (n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => leafHash(`entry ${i}`))

interface MemTree {
  readonly leaves: readonly Uint8Array[]
  readonly nodes: Map<string, Uint8Array>
}

function memTree(n: number): MemTree {
  const leaves = leavesOf(n)
  const nodes = new Map<string, Uint8Array>()
  const b = new TreeBuilder()
  for (const h of leaves) for (const node of b.append(h)) nodes.set(`${node.level}/${node.index}`, node.hash)
  return { leaves, nodes }
}

/** A reader over a stored tree that fails if asked for a node outside the first `limit` leaves, and counts reads. */
function readerOf(tree: MemTree, limit: bigint, counter = { reads: 0 }): NodeReader {
  return {
    get(level, index) {
      counter.reads++
      if ((index + 1n) << BigInt(level) > limit) throw new Error(`read (${level}, ${index}) beyond size ${limit}`)
      const h = tree.nodes.get(`${level}/${index}`)
      if (h === undefined) throw new Error(`missing (${level}, ${index})`)
      return h
    },
  }
}

const flipBit = (h: Uint8Array, bit: number): Uint8Array => {
  const c = Uint8Array.from(h)
  c[bit >> 3]! ^= 1 << (bit & 7)
  return c
}

const hex = (hs: readonly Uint8Array[]): string[] => hs.map(toHex)

describe('rootFromLeaves and TreeBuilder', () => {
  it('match the recursive MTH for sizes 0..70 and emit every complete subtree exactly once', () => {
    const leaves = leavesOf(70)
    const b = new TreeBuilder()
    const seen = new Set<string>()
    expect(toHex(b.root())).toBe(toHex(EMPTY_ROOT))
    for (let n = 1; n <= 70; n++) {
      for (const node of b.append(leaves[n - 1]!)) {
        const k = `${node.level}/${node.index}`
        expect(seen.has(k)).toBe(false)
        seen.add(k)
        const width = 2 ** node.level
        const start = Number(node.index) * width
        expect(start + width).toBeLessThanOrEqual(n)
        expect(toHex(node.hash)).toBe(toHex(mth(leaves.slice(start, start + width))))
      }
      expect(b.size).toBe(BigInt(n))
      expect(toHex(b.root())).toBe(toHex(mth(leaves.slice(0, n))))
      expect(toHex(rootFromLeaves(leaves.slice(0, n)))).toBe(toHex(mth(leaves.slice(0, n))))
    }
    // 70 leaves complete 70 + 35 + 17 + 8 + 4 + 2 + 1 subtrees
    expect(seen.size).toBe(137)
    expect(toHex(rootFromLeaves([]))).toBe(toHex(EMPTY_ROOT))
  })

  it('push is append without the report', () => {
    const leaves = leavesOf(45)
    const a = new TreeBuilder()
    const p = new TreeBuilder()
    for (const h of leaves) {
      a.append(h)
      p.push(h)
      expect(toHex(p.root())).toBe(toHex(a.root()))
    }
    expect(hex(p.frontier())).toEqual(hex(a.frontier()))
  })

  it('fromFrontier resumes to the same roots and emitted nodes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 200 }), (k, extra) => {
        const leaves = leavesOf(k + extra)
        const full = new TreeBuilder()
        for (const h of leaves.slice(0, k)) full.append(h)
        const resumed = TreeBuilder.fromFrontier(BigInt(k), full.frontier())
        expect(resumed.size).toBe(BigInt(k))
        expect(toHex(resumed.root())).toBe(toHex(full.root()))
        for (const h of leaves.slice(k)) {
          const a = full.append(h)
          const b = resumed.append(h)
          expect(b.map((n) => `${n.level}/${n.index}/${toHex(n.hash)}`)).toEqual(
            a.map((n) => `${n.level}/${n.index}/${toHex(n.hash)}`),
          )
          expect(toHex(resumed.root())).toBe(toHex(full.root()))
        }
      }),
      { numRuns: 60 },
    )
  })

  it('fromReader resumes from the stored frontier nodes', async () => {
    const tree = memTree(100)
    for (const size of [0n, 1n, 37n, 64n, 100n]) {
      const counter = { reads: 0 }
      const b = await TreeBuilder.fromReader(readerOf(tree, size, counter), size)
      expect(counter.reads).toBe(frontierAddresses(size).length)
      expect(toHex(b.root())).toBe(toHex(mth(tree.leaves.slice(0, Number(size)))))
    }
  })

  it('fromFrontier and append refuse malformed input', () => {
    expect(() => TreeBuilder.fromFrontier(3n, [leafHash('a')])).toThrow(TypeError)
    expect(() => TreeBuilder.fromFrontier(1n, [new Uint8Array(31)])).toThrow(TypeError)
    expect(() => TreeBuilder.fromFrontier(-1n, [])).toThrow(RangeError)
    expect(() => new TreeBuilder().append(new Uint8Array(33))).toThrow(TypeError)
    expect(() => new TreeBuilder().push(new Uint8Array(0))).toThrow(TypeError)
  })
})

describe('proof node addresses', () => {
  it('match RFC 9162 §2.1.3.1 for the reference 7-leaf tree (RFC 6962 §2.1.3 examples)', () => {
    // d0's path in a 7-leaf tree: [b, h, l] = leaf 1, node (1,1), ephemeral [4,7) = (1,2) + (0,6)
    expect(inclusionProofNodes(0n, 7n)).toEqual([
      { kind: 'stored', level: 0, index: 1n },
      { kind: 'stored', level: 1, index: 1n },
      {
        kind: 'ephemeral',
        parts: [
          { level: 1, index: 2n },
          { level: 0, index: 6n },
        ],
      },
    ])
    // consistency 3 -> 7 (RFC 6962 §2.1.3: [c, d, g, l])
    expect(consistencyProofNodes(3n, 7n)).toEqual([
      { kind: 'stored', level: 0, index: 2n },
      { kind: 'stored', level: 0, index: 3n },
      { kind: 'stored', level: 1, index: 0n },
      {
        kind: 'ephemeral',
        parts: [
          { level: 1, index: 2n },
          { level: 0, index: 6n },
        ],
      },
    ])
    // 4 -> 7: [l]; 6 -> 7: [i, j, k, a-d] bottom-up
    expect(consistencyProofNodes(4n, 7n)).toHaveLength(1)
    expect(consistencyProofNodes(6n, 7n)).toEqual([
      { kind: 'stored', level: 1, index: 2n },
      { kind: 'stored', level: 0, index: 6n },
      { kind: 'stored', level: 2, index: 0n },
    ])
    expect(consistencyProofNodes(0n, 7n)).toEqual([])
    expect(consistencyProofNodes(7n, 7n)).toEqual([])
  })

  it('refuse out-of-range arguments with RangeError', () => {
    expect(() => inclusionProofNodes(5n, 5n)).toThrow(RangeError)
    expect(() => inclusionProofNodes(-1n, 5n)).toThrow(RangeError)
    expect(() => consistencyProofNodes(6n, 5n)).toThrow(RangeError)
  })

  it('cost O(log n) reads, with at most one ephemeral node', () => {
    for (const n of [2n ** 20n - 1n, 2n ** 40n + 12345n, 2n ** 62n - 3n]) {
      const log = n.toString(2).length
      for (const m of [0n, 1n, n / 3n, n - 2n]) {
        for (const refs of [inclusionProofNodes(m, n), consistencyProofNodes(m + 1n, n)]) {
          const reads = refs.reduce((s, r) => s + (r.kind === 'stored' ? 1 : r.parts.length), 0)
          expect(reads).toBeLessThanOrEqual(2 * log)
          expect(refs.filter((r) => r.kind === 'ephemeral').length).toBeLessThanOrEqual(1)
        }
      }
    }
  })
})

describe('proofs from stored nodes (exhaustive, small trees)', () => {
  it('every inclusion and consistency proof for sizes 1..33 verifies and equals the RFC definition', async () => {
    const tree = memTree(33)
    const refs = new Map<number, Uint8Array>()
    for (let m = 0; m <= 33; m++) refs.set(m, mth(tree.leaves.slice(0, m)))
    for (let m = 1; m <= 33; m++) {
      const size = BigInt(m)
      const reader = readerOf(tree, size)
      const root = refs.get(m)!
      expect(toHex(await rootAt(reader, size))).toBe(toHex(root))
      for (let i = 0; i < m; i++) {
        const proof = await inclusionProof(reader, BigInt(i), size)
        expect(verifyInclusion(tree.leaves[i]!, BigInt(i), size, proof, root)).toBe(true)
        const r = rootFromInclusionProof(tree.leaves[i]!, BigInt(i), size, proof)
        expect(r.ok && bytesEqual(r.root, root)).toBe(true)
      }
      for (let s1 = 0; s1 <= m; s1++) {
        const proof = await consistencyProof(reader, BigInt(s1), size)
        const check = checkConsistency(BigInt(s1), size, refs.get(s1)!, root, proof)
        expect(check).toEqual({ ok: true })
        // the same proof and roots do not pass for a neighbouring old size
        if (s1 > 0 && s1 < m) {
          expect(verifyConsistency(BigInt(s1 - 1), size, refs.get(s1)!, root, proof)).toBe(false)
          expect(verifyConsistency(BigInt(s1 + 1), size, refs.get(s1)!, root, proof)).toBe(false)
        }
      }
    }
  })

  it('flipping any bit of any proof node or of the root breaks verification (7 → 13, leaf 5 of 13)', async () => {
    const tree = memTree(13)
    const reader = readerOf(tree, 13n)
    const root = mth(tree.leaves)
    const root7 = mth(tree.leaves.slice(0, 7))
    const inc = await inclusionProof(reader, 5n, 13n)
    const con = await consistencyProof(reader, 7n, 13n)
    for (let bit = 0; bit < 256; bit++) {
      expect(verifyInclusion(tree.leaves[5]!, 5n, 13n, inc, flipBit(root, bit))).toBe(false)
      expect(verifyInclusion(flipBit(tree.leaves[5]!, bit), 5n, 13n, inc, root)).toBe(false)
      expect(verifyConsistency(7n, 13n, flipBit(root7, bit), root, con)).toBe(false)
      expect(verifyConsistency(7n, 13n, root7, flipBit(root, bit), con)).toBe(false)
      for (let j = 0; j < inc.length; j++) {
        const bad = inc.map((h, k) => (k === j ? flipBit(h, bit) : h))
        expect(verifyInclusion(tree.leaves[5]!, 5n, 13n, bad, root)).toBe(false)
      }
      for (let j = 0; j < con.length; j++) {
        const bad = con.map((h, k) => (k === j ? flipBit(h, bit) : h))
        expect(verifyConsistency(7n, 13n, root7, root, bad)).toBe(false)
      }
    }
  })
})

describe('proofs from stored nodes (property)', () => {
  const trees = new Map<number, MemTree>()
  const treeOf = (n: number): MemTree => {
    let t = trees.get(n)
    if (t === undefined) {
      t = memTree(n)
      trees.set(n, t)
    }
    return t
  }

  // n: stored tree size; m: the size proven at (≤ n); i: a leaf index or old size; j, bit: which node and bit to flip
  const arb = fc
    .record({
      n: fc.integer({ min: 1, max: 300 }),
      m: fc.nat(),
      i: fc.nat(),
      j: fc.nat(),
      bit: fc.integer({ min: 0, max: 255 }),
      extra: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    })
    .map(({ n, m, i, j, bit, extra }) => {
      const size = 1 + (m % n)
      return { n, size, i: i % size, j, bit, extra }
    })

  it('inclusion proofs verify against rootFromLeaves; any single change is rejected', async () => {
    await fc.assert(
      fc.asyncProperty(arb, async ({ n, size, i, j, bit, extra }) => {
        const tree = treeOf(n)
        const big = BigInt(size)
        const counter = { reads: 0 }
        const proof = await inclusionProof(readerOf(tree, big, counter), BigInt(i), big)
        expect(counter.reads).toBeLessThanOrEqual(2 * big.toString(2).length)
        const root = rootFromLeaves(tree.leaves.slice(0, size))
        const leaf = tree.leaves[i]!
        expect(verifyInclusion(leaf, BigInt(i), big, proof, root)).toBe(true)
        expect(verifyInclusion(leaf, BigInt(i), big, proof, flipBit(root, bit))).toBe(false)
        // (a size change that keeps the proof's shape is not detectable from the proof: the signed head binds size)
        expect(verifyInclusion(leaf, BigInt(i), big * 2n, proof, root)).toBe(false)
        expect(verifyInclusion(leaf, BigInt(i), big, [...proof, extra], root)).toBe(false)
        expect(verifyInclusion(leaf, BigInt(i), big, [extra, ...proof], root)).toBe(false)
        if (size > 1) expect(verifyInclusion(leaf, BigInt((i + 1) % size), big, proof, root)).toBe(false)
        if (proof.length > 0) {
          const k = j % proof.length
          expect(verifyInclusion(leaf, BigInt(i), big, proof.with(k, flipBit(proof[k]!, bit)), root)).toBe(false)
          expect(verifyInclusion(leaf, BigInt(i), big, proof.toSpliced(k, 1), root)).toBe(false)
          expect(verifyInclusion(leaf, BigInt(i), big, proof.toSpliced(k, 0, proof[k]!), root)).toBe(false)
        }
      }),
      { numRuns: 300 },
    )
  })

  it('consistency proofs verify against rootFromLeaves; any single change is rejected', async () => {
    await fc.assert(
      fc.asyncProperty(arb, async ({ n, size, i, j, bit, extra }) => {
        const tree = treeOf(n)
        const size1 = i % (size + 1) // 0..size
        const [s1, s2] = [BigInt(size1), BigInt(size)]
        const counter = { reads: 0 }
        const proof = await consistencyProof(readerOf(tree, s2, counter), s1, s2)
        expect(counter.reads).toBeLessThanOrEqual(2 * s2.toString(2).length)
        const root1 = rootFromLeaves(tree.leaves.slice(0, size1))
        const root2 = rootFromLeaves(tree.leaves.slice(0, size))
        expect(verifyConsistency(s1, s2, root1, root2, proof)).toBe(true)
        expect(verifyConsistency(s1, s2, flipBit(root1, bit), root2, proof)).toBe(false)
        // (from the empty tree any 32-byte root2 is consistent: there is nothing to prove)
        if (s1 > 0n || s2 === 0n) expect(verifyConsistency(s1, s2, root1, flipBit(root2, bit), proof)).toBe(false)
        expect(verifyConsistency(s1, s2, root1, root2, [...proof, extra])).toBe(false)
        expect(verifyConsistency(s1, s2, root1, root2, [extra, ...proof])).toBe(false)
        if (s1 > 0n && s1 < s2) expect(verifyConsistency(s1, s2 * 2n, root1, root2, proof)).toBe(false)
        if (proof.length > 0) {
          const k = j % proof.length
          expect(verifyConsistency(s1, s2, root1, root2, proof.with(k, flipBit(proof[k]!, bit)))).toBe(false)
          expect(verifyConsistency(s1, s2, root1, root2, proof.toSpliced(k, 1))).toBe(false)
          expect(verifyConsistency(s1, s2, root1, root2, proof.toSpliced(k, 0, proof[k]!))).toBe(false)
        }
      }),
      { numRuns: 300 },
    )
  })
})

describe('verification edge cases', () => {
  const a = leafHash('a')
  const b = leafHash('b')

  it('rejects an index outside the tree, wrong hash lengths and the empty tree', () => {
    expect(verifyInclusion(a, 0n, 1n, [], a)).toBe(true)
    expect(verifyInclusion(a, 1n, 1n, [], a)).toBe(false)
    expect(verifyInclusion(a, 0n, 0n, [], a)).toBe(false)
    expect(verifyInclusion(a, -1n, 1n, [], a)).toBe(false)
    expect(verifyInclusion(a.subarray(0, 31), 0n, 1n, [], a.subarray(0, 31))).toBe(false)
    expect(verifyInclusion(a, 0n, 2n, [b.subarray(1)], nodeHash(a, b))).toBe(false)
    expect(verifyInclusion(a, 0n, 1n, [], new Uint8Array(0))).toBe(false)
    expect(verifyInclusion(a, 0 as unknown as bigint, 1n, [], a)).toBe(false)
  })

  it('consistency from the empty tree: only an empty proof from the empty-tree root (Baton rule)', () => {
    const r2 = nodeHash(a, b)
    expect(verifyConsistency(0n, 0n, EMPTY_ROOT, EMPTY_ROOT, [])).toBe(true)
    expect(verifyConsistency(0n, 2n, EMPTY_ROOT, r2, [])).toBe(true)
    expect(verifyConsistency(0n, 2n, EMPTY_ROOT, r2, [a])).toBe(false)
    expect(verifyConsistency(0n, 2n, a, r2, [])).toBe(false)
    expect(verifyConsistency(0n, 0n, a, a, [])).toBe(false)
    expect(verifyConsistency(0n, 2n, EMPTY_ROOT, r2.subarray(1), [])).toBe(false)
    expect(verifyConsistency(1n, 0n, a, EMPTY_ROOT, [])).toBe(false)
  })

  it('equal sizes need an empty proof and equal 32-byte roots', () => {
    expect(verifyConsistency(1n, 1n, a, a, [])).toBe(true)
    expect(verifyConsistency(1n, 1n, a, b, [])).toBe(false)
    expect(verifyConsistency(1n, 1n, a, a, [a])).toBe(false)
    const notAHash = new TextEncoder().encode("don't care")
    expect(verifyConsistency(1n, 1n, notAHash, notAHash, [])).toBe(false)
    expect(checkConsistency(2n, 1n, a, a, [])).toMatchObject({ ok: false })
  })
})

describe('big trees: bigint sizes and indices beyond 2^53', () => {
  // A consistent synthetic tree of any size: every leaf is `u` except one `s` at `target`. Complete subtrees not
  // containing the target are uniform; those containing it are computed along its path.
  function syntheticReader(
    target: bigint,
    levels = 64,
  ): { reads: number; get(level: number, index: bigint): Uint8Array } {
    const u = [leafHash('uniform')]
    const s = [leafHash('special')]
    for (let l = 0; l < levels; l++) {
      u.push(nodeHash(u[l]!, u[l]!))
      s.push(((target >> BigInt(l)) & 1n) === 0n ? nodeHash(s[l]!, u[l]!) : nodeHash(u[l]!, s[l]!))
    }
    const reader = {
      reads: 0,
      get(level: number, index: bigint): Uint8Array {
        reader.reads++
        return index === target >> BigInt(level) ? s[level]! : u[level]!
      },
    }
    return reader
  }

  const target = 2n ** 53n + 1n // Number(target) rounds to 2^53
  const size = 2n ** 60n + 12345n
  const special = leafHash('special')

  it('inclusion proofs verify at the exact index and fail at its neighbours', async () => {
    const reader = syntheticReader(target)
    const root = await rootAt(reader, size)
    const proof = await inclusionProof(reader, target, size)
    expect(proof.length).toBe(inclusionProofNodes(target, size).length)
    expect(verifyInclusion(special, target, size, proof, root)).toBe(true)
    for (const wrong of [target - 1n, target + 1n, 2n ** 53n, target ^ 2n, target + 2n ** 40n]) {
      expect(verifyInclusion(special, wrong, size, proof, root)).toBe(false)
    }
    expect(verifyInclusion(special, target, size * 2n, proof, root)).toBe(false)
    expect(verifyInclusion(special, target, size, proof.slice(1), root)).toBe(false)
    expect(verifyInclusion(special, target, size, [...proof, root], root)).toBe(false)
  })

  it('consistency proofs between sizes beyond 2^53 verify, and fail for neighbouring sizes', async () => {
    const reader = syntheticReader(target)
    for (const size1 of [target + 2n, 2n ** 56n, 2n ** 59n + 7n]) {
      const root1 = await rootAt(reader, size1)
      const root2 = await rootAt(reader, size)
      const proof = await consistencyProof(reader, size1, size)
      expect(verifyConsistency(size1, size, root1, root2, proof)).toBe(true)
      expect(verifyConsistency(size1 + 1n, size, root1, root2, proof)).toBe(false)
      expect(verifyConsistency(size1 - 1n, size, root1, root2, proof)).toBe(false)
      expect(verifyConsistency(size1, size * 2n, root1, root2, proof)).toBe(false)
    }
  })

  it('size 2^60: the proof must have exactly 60 nodes', async () => {
    const n = 2n ** 60n
    const reader = syntheticReader(n - 1n)
    const root = await rootAt(reader, n)
    const proof = await inclusionProof(reader, n - 1n, n)
    expect(proof).toHaveLength(60)
    expect(verifyInclusion(special, n - 1n, n, proof, root)).toBe(true)
    const short = rootFromInclusionProof(special, n - 1n, n, proof.slice(0, 59))
    expect(short).toMatchObject({ ok: false, reason: expect.stringContaining('fewer') })
    const long = rootFromInclusionProof(special, n - 1n, n, [...proof, proof[0]!])
    expect(long).toMatchObject({ ok: false, reason: expect.stringContaining('more') })
    expect(verifyInclusion(special, n, n, proof, root)).toBe(false)
  })

  it('a builder resumed at 2^62 - 1 leaves keeps exact sizes and indices', () => {
    const size = 2n ** 62n - 1n
    const reader = syntheticReader(-1n) // no special leaf: all uniform
    const frontier = frontierAddresses(size).map((a) => reader.get(a.level, a.index))
    const b = TreeBuilder.fromFrontier(size, frontier)
    const nodes = b.append(leafHash('uniform'))
    expect(b.size).toBe(2n ** 62n)
    expect(nodes).toHaveLength(63)
    expect(nodes.at(-1)).toMatchObject({ level: 62, index: 0n })
    expect(nodes[0]).toMatchObject({ level: 0, index: size })
    expect(toHex(b.root())).toBe(toHex(reader.get(62, 0n)))
  })
})

describe('NodeReader.getMany and bad stores', () => {
  it('uses getMany when present, in one call per proof', async () => {
    const tree = memTree(50)
    let calls = 0
    const reader: NodeReader = {
      get() {
        throw new Error('get must not be called')
      },
      async getMany(addresses) {
        calls++
        return addresses.map((a) => tree.nodes.get(`${a.level}/${a.index}`)!)
      },
    }
    const proof = await inclusionProof(reader, 3n, 50n)
    expect(calls).toBe(1)
    expect(verifyInclusion(tree.leaves[3]!, 3n, 50n, proof, mth(tree.leaves))).toBe(true)
  })

  it('refuses a stored node that is not a 32-byte hash with AUDIT_INVALID', async () => {
    const reader: NodeReader = { get: () => new Uint8Array(5) }
    await expect(rootAt(reader, 3n)).rejects.toMatchObject({ code: 'AUDIT_INVALID' })
  })
})

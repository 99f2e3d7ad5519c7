import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { SHARED_DATA, sharedDataMissing } from '../../test/support/shared-data.js'
import { parseJsonWithBigInts, readVectorFile, runConformance } from './conformance.js'
import { EMPTY_ROOT, leafHash, nodeHash, toHex } from './entry.js'

const DIR = join(SHARED_DATA, 'rfc6962-vectors')
const missing = sharedDataMissing('rfc6962-vectors')
const files = missing === undefined ? readdirSync(DIR).filter((f) => f.endsWith('.json')) : []

/** Counts a file's vectors independently of runConformance, from its plain JSON structure. */
function countVectors(text: string): number {
  const doc = JSON.parse(text) as Record<string, unknown>
  let n = 0
  for (const [key, value] of Object.entries(doc)) {
    if (key === 'leaves') continue
    if (Array.isArray(value)) n += value.length
    else if (key === 'roots' && value !== null && typeof value === 'object') n += Object.keys(value).length
    else if (key === 'node_hashes' && value !== null && typeof value === 'object') {
      for (const level of Object.values(value)) n += (level as unknown[]).length
    }
  }
  return n
}

describe.skipIf(missing !== undefined)('RFC 6962 vector files', () => {
  it('finds the vector files', () => {
    expect(files.length).toBeGreaterThanOrEqual(2)
  })

  for (const file of files) {
    it(`${file}: every vector passes`, async () => {
      const text = await readVectorFile(join(DIR, file))
      const report = runConformance(text)
      expect(report.failures).toEqual([])
      expect(report.failed).toBe(0)
      expect(report.passed).toBe(countVectors(text))
      expect(report.passed).toBeGreaterThan(0)
    })
  }

  it('the development half holds the expected numbers of vectors', () => {
    const count = (f: string) => countVectors(readFileSync(join(DIR, f), 'utf8'))
    if (files.includes('cctv-16-leaf-tree.json')) expect(count('cctv-16-leaf-tree.json')).toBeGreaterThanOrEqual(33)
    if (files.includes('ct-reference-tree.json')) expect(count('ct-reference-tree.json')).toBeGreaterThanOrEqual(116)
  })
})

describe('runConformance', () => {
  const a = toHex(leafHash('a'))
  const b = toHex(leafHash('b'))
  const root2 = toHex(nodeHash(leafHash('a'), leafHash('b')))
  const empty = toHex(EMPTY_ROOT)
  const notAHash = Buffer.from("don't care 1").toString('hex')

  it('judges the policy-dependent empty-tree and non-hash-root vectors by Baton’s rule, and lists the differences', () => {
    const text = JSON.stringify({
      name: 'policy',
      leaves: ['61', '62'],
      consistency_proofs: [
        // CCTV: valid
        { size1: 0, size2: 0, root1: empty, root2: empty, proof: [], expect_valid: true, policy_dependent: true },
        { size1: 0, size2: 2, root1: empty, root2: root2, proof: [], expect_valid: true, policy_dependent: true },
        // transparency-dev: equal non-hash roots are "consistent"
        { size1: 1, size2: 1, root1: notAHash, root2: notAHash, proof: [], expect_valid: true, policy_dependent: true },
        { size1: 1, size2: 2, root1: a, root2: root2, proof: [b], expect_valid: true },
      ],
      consistency_proofs_invalid: [
        // transparency-dev: every size1 = 0 refused
        { size1: 0, size2: 2, root1: empty, root2: root2, proof: [], expect_valid: false, policy_dependent: true },
        { size1: 0, size2: 2, root1: a, root2: root2, proof: [], expect_valid: false },
        { size1: 0, size2: 2, root1: empty, root2: root2, proof: [b], expect_valid: false },
      ],
    })
    const report = runConformance(text)
    expect(report.failures).toEqual([])
    expect(report.passed).toBe(7)
    expect(report.policy.map((p) => [p.name, p.sourceExpectsValid, p.batonExpectsValid])).toEqual([
      ['consistency_proofs[2]', true, false],
      ['consistency_proofs_invalid[0]', false, true],
    ])
  })

  it('reports wrong expectations, malformed vectors and unknown sections as failures instead of throwing', () => {
    const text = JSON.stringify({
      leaves: ['61', '62'],
      roots: { '2': a, '3': root2 },
      inclusion_proofs: [
        { leaf_index: 0, tree_size: 2, leaf_hash: a, root: root2, proof: [b], expect_valid: false },
        { leaf_index: 0, tree_size: 2, leaf_hash: 'zz', root: root2, proof: [b], expect_valid: true },
      ],
      hasher_vectors: [{ op: 'sha3', expected: a }],
      mystery: [1, 2],
    })
    const report = runConformance(text)
    expect(report.passed).toBe(0)
    expect(report.failures.map((f) => f.name)).toEqual([
      'mystery',
      'roots[2]',
      'roots[3]',
      'inclusion_proofs[0]',
      'inclusion_proofs[1]',
      'hasher_vectors[0]',
    ])
    expect(runConformance('{')).toMatchObject({ failed: 1, failures: [{ name: 'file' }] })
  })

  it('a valid proof must also be the proof Baton generates', () => {
    // a valid-looking but non-canonical proof cannot exist; check a mismatch is caught via a wrong leaf set
    const text = JSON.stringify({
      leaves: ['61', '63'],
      inclusion_proofs: [{ leaf_index: 0, tree_size: 2, leaf_hash: a, root: root2, proof: [b], expect_valid: true }],
    })
    expect(runConformance(text).failures[0]?.reason).toMatch(/generated proof differs/)
  })
})

describe('parseJsonWithBigInts', () => {
  it('keeps integers beyond 2^53 exact and leaves strings and floats alone', () => {
    const v = parseJsonWithBigInts(
      '{"a": 18446744073709551615, "b": [-3, 0, 1.5, 2e3], "c": "12 \\" 34", "d": 9007199254740993}',
    )
    expect(v).toEqual({ a: 18446744073709551615n, b: [-3n, 0n, 1.5, 2000], c: '12 " 34', d: 9007199254740993n })
  })

  it('rejects invalid JSON', () => {
    expect(() => parseJsonWithBigInts('{"a": 01}')).toThrow(SyntaxError)
    expect(() => parseJsonWithBigInts('[1,]')).toThrow(SyntaxError)
  })
})

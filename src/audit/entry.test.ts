import { createHash } from 'node:crypto'
import canonicalizeModule from 'canonicalize'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type AuditEntryBody,
  auditLeaf,
  bytesEqual,
  canonicalEntry,
  canonicalJson,
  EMPTY_ROOT,
  fromHex,
  leafHash,
  MAX_NUMERIC_SEQ,
  nodeHash,
  toHex,
} from './entry.js'

type Canonicalize = (input: unknown) => string | undefined
// The reference implementation: CommonJS (`module.exports = fn`) typed as an ES default export; accept either shape.
const canonicalize: Canonicalize =
  typeof canonicalizeModule === 'function'
    ? (canonicalizeModule as Canonicalize)
    : (canonicalizeModule as unknown as { default: Canonicalize }).default

// Any UTF-16 code unit, lone surrogates included: the strings JSON.stringify escapes and sorting by code units sees.
const codeUnitString = fc.string({ unit: fc.nat(0xffff).map((c) => String.fromCharCode(c)) })

const body: AuditEntryBody = {
  type: 'case.routed',
  at: '2025-03-01T12:00:00Z',
  caseId: 'case_1',
  actor: { kind: 'agent', id: 'agent_7' },
  data: { z: 1, a: [true, null, 'é'], m: { y: 2.5, b: 'x' } },
}

describe('canonicalEntry', () => {
  it('is RFC 8785 canonical JSON of { seq, ...body }, keys sorted at every depth', () => {
    expect(canonicalEntry(7, body)).toBe(
      '{"actor":{"id":"agent_7","kind":"agent"},"at":"2025-03-01T12:00:00Z","caseId":"case_1",' +
        '"data":{"a":[true,null,"é"],"m":{"b":"x","y":2.5},"z":1},"seq":7,"type":"case.routed"}',
    )
  })

  it('gives the same text for number and bigint seq, and for any key order of the body', () => {
    const reordered: AuditEntryBody = {
      data: body.data,
      at: body.at,
      type: body.type,
      caseId: 'case_1',
      actor: { id: 'agent_7', kind: 'agent' },
    }
    expect(canonicalEntry(7n, reordered)).toBe(canonicalEntry(7, body))
  })

  it('writes seq as a number up to 2^53 - 1 and as a decimal string above', () => {
    expect(canonicalEntry(MAX_NUMERIC_SEQ, body)).toContain('"seq":9007199254740991,')
    expect(canonicalEntry(MAX_NUMERIC_SEQ + 1n, body)).toContain('"seq":"9007199254740992",')
    expect(canonicalEntry(2n ** 64n - 1n, body)).toContain('"seq":"18446744073709551615",')
  })

  it('drops undefined members and omits absent optional fields', () => {
    expect(canonicalEntry(0, { type: 't', at: 'a', data: { x: undefined, y: 1 } })).toBe(
      '{"at":"a","data":{"y":1},"seq":0,"type":"t"}',
    )
  })

  it('equals canonicalize of { ...body, seq } for arbitrary data', () => {
    fc.assert(
      fc.property(fc.nat(), fc.jsonValue({ stringUnit: 'binary', maxDepth: 4 }), (seq, data) => {
        const b: AuditEntryBody = { ...body, data }
        expect(canonicalEntry(seq, b)).toBe(canonicalize({ ...b, seq }))
      }),
      { numRuns: 1000 },
    )
  })

  it('refuses a cyclic body with TypeError', () => {
    const data: Record<string, unknown> = {}
    data['self'] = data
    expect(() => canonicalEntry(0, { ...body, data })).toThrow(TypeError)
  })

  it('refuses misuse with TypeError', () => {
    expect(() => canonicalEntry(-1, body)).toThrow(TypeError)
    expect(() => canonicalEntry(1.5, body)).toThrow(TypeError)
    expect(() => canonicalEntry(2 ** 53, body)).toThrow(TypeError)
    expect(() => canonicalEntry(-1n, body)).toThrow(TypeError)
    expect(() => canonicalEntry(0, { ...body, data: 1n })).toThrow(TypeError)
    expect(() => canonicalEntry(0, { ...body, data: Number.NaN })).toThrow(TypeError)
    expect(() => canonicalEntry(0, { ...body, seq: 3 } as AuditEntryBody)).toThrow(TypeError)
    expect(() => canonicalEntry(0, { ...body, type: '' })).toThrow(TypeError)
  })
})

describe('auditLeaf', () => {
  it('is canonicalEntry and its leafHash, for arbitrary data and any seq', () => {
    const seq = fc.oneof(fc.nat(), fc.bigInt({ min: 0n, max: 2n ** 64n }))
    fc.assert(
      fc.property(seq, fc.jsonValue({ stringUnit: 'binary', maxDepth: 4 }), (n, data) => {
        const b: AuditEntryBody = { ...body, data }
        const leaf = auditLeaf(n, b)
        expect(leaf.entry).toBe(canonicalEntry(n, b))
        expect(toHex(leaf.leafHash)).toBe(toHex(leafHash(leaf.entry)))
        const want = createHash('sha256').update('\u0000').update(leaf.entry, 'utf8').digest('hex')
        expect(toHex(leaf.leafHash)).toBe(want)
      }),
      { numRuns: 1000 },
    )
  })

  it('refuses what canonicalEntry refuses, with TypeError', () => {
    const cyclic: Record<string, unknown> = {}
    cyclic['self'] = cyclic
    expect(() => auditLeaf(-1, body)).toThrow(TypeError)
    expect(() => auditLeaf(2 ** 53, body)).toThrow(TypeError)
    expect(() => auditLeaf(0, { ...body, data: cyclic })).toThrow(TypeError)
    expect(() => auditLeaf(0, { ...body, seq: 3 } as AuditEntryBody)).toThrow(TypeError)
    expect(() => auditLeaf('1' as unknown as number, body)).toThrow(TypeError)
  })
})

describe('canonicalJson (RFC 8785)', () => {
  it('equals the canonicalize package byte for byte on arbitrary JSON values, unicode keys and doubles', () => {
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: 'binary' }), (v) => {
        expect(canonicalJson(v)).toBe(canonicalize(v))
      }),
      { numRuns: 2000 },
    )
  })

  it('equals canonicalize for keys and strings of any UTF-16 code units, lone surrogates included', () => {
    const value = fc.dictionary(codeUnitString, fc.oneof(codeUnitString, fc.array(codeUnitString), fc.double()), {
      maxKeys: 12,
    })
    fc.assert(
      fc.property(value, (v) => {
        fc.pre(Object.values(v).every((x) => typeof x !== 'number' || Number.isFinite(x)))
        expect(canonicalJson(v)).toBe(canonicalize(v))
      }),
      { numRuns: 2000 },
    )
  })

  it('writes every finite double as JSON.stringify does and refuses the others', () => {
    fc.assert(
      fc.property(fc.double(), (d) => {
        if (Number.isFinite(d)) expect(canonicalJson(d)).toBe(JSON.stringify(d))
        else expect(() => canonicalJson(d)).toThrow(TypeError)
      }),
      { numRuns: 5000 },
    )
    expect(canonicalJson([-0, 1e21, 1e-7, 5e-324, 0.1 + 0.2])).toBe('[0,1e+21,1e-7,5e-324,0.30000000000000004]')
  })

  it('sorts keys by UTF-16 code units, not code points, and large objects too', () => {
    // U+10000 is the surrogate pair D800 DC00, which sorts below U+FFFF by code units.
    expect(canonicalJson({ '\uffff': 1, '\u{10000}': 2, a: 3, B: 4, '': 5 })).toBe(
      '{"":5,"B":4,"a":3,"\u{10000}":2,"\uffff":1}',
    )
    const big = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${(i * 7) % 40}`, i]))
    expect(canonicalJson(big)).toBe(canonicalize(big))
  })

  it('treats non-JSON members as JSON.stringify does and refuses what has no JSON text', () => {
    expect(canonicalJson({ a: undefined, b: () => 1, c: Symbol('s'), d: [undefined, () => 1], e: new Date(0) })).toBe(
      '{"d":[null,null],"e":"1970-01-01T00:00:00.000Z"}',
    )
    for (const bad of [undefined, () => 1, 1n, { a: [Number.POSITIVE_INFINITY] }, { a: Number.NaN }]) {
      expect(() => canonicalJson(bad)).toThrow(TypeError)
    }
  })
})

describe('hashes (RFC 6962 §2.1)', () => {
  it('EMPTY_ROOT is SHA-256 of the empty string', () => {
    expect(toHex(EMPTY_ROOT)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  })

  it('leafHash is SHA-256(0x00 || data): known answers', () => {
    expect(toHex(leafHash(new Uint8Array(0)))).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d')
    expect(toHex(leafHash(''))).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d')
    expect(toHex(leafHash('L123456'))).toBe('395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56')
    expect(toHex(leafHash(fromHex('00')))).toBe('96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7')
    expect(toHex(leafHash('a'))).toBe('022a6979e6dab7aa5ae4c3e5e45f7e977112a7e63593820dbec1ec738a24f93c')
  })

  it('hashes a string as its UTF-8 bytes, and bytes of any length', () => {
    for (const s of ['é€😀', 'x'.repeat(5000), `${'ü'.repeat(600)}z`]) {
      expect(toHex(leafHash(s))).toBe(toHex(leafHash(new TextEncoder().encode(s))))
    }
    for (const len of [0, 1, 1024, 1025, 3000]) {
      const bytes = new Uint8Array(len).fill(7)
      const want = createHash('sha256')
        .update(new Uint8Array([0]))
        .update(bytes)
        .digest('hex')
      expect(toHex(leafHash(bytes))).toBe(want)
    }
  })

  it('nodeHash is SHA-256(0x01 || left || right), children of any length', () => {
    expect(toHex(nodeHash(new TextEncoder().encode('N123'), new TextEncoder().encode('N456')))).toBe(
      'aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb',
    )
    // root of the 2-leaf CT reference tree
    const l0 = fromHex('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d')
    const l1 = fromHex('96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7')
    expect(toHex(nodeHash(l0, l1))).toBe('fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125')
  })

  it('results do not alias the reused scratch buffers', () => {
    const a = leafHash('a')
    const b = leafHash('b')
    const n1 = nodeHash(a, b)
    const n2 = nodeHash(b, a)
    expect(toHex(a)).toBe('022a6979e6dab7aa5ae4c3e5e45f7e977112a7e63593820dbec1ec738a24f93c')
    expect(bytesEqual(n1, n2)).toBe(false)
    expect(toHex(n1)).toBe(toHex(nodeHash(leafHash('a'), leafHash('b'))))
  })
})

describe('hex', () => {
  it('round-trips and accepts either case', () => {
    const bytes = new Uint8Array([0, 1, 0xab, 0xff])
    expect(toHex(bytes)).toBe('0001abff')
    expect(bytesEqual(fromHex('0001ABff'), bytes)).toBe(true)
    expect(fromHex('').length).toBe(0)
    expect(toHex(bytes.subarray(1, 3))).toBe('01ab')
  })

  it('throws TypeError on bad hex', () => {
    for (const bad of ['0', 'abc', 'zz', '0x00', ' 00', '00 ']) expect(() => fromHex(bad)).toThrow(TypeError)
    expect(() => fromHex(42 as unknown as string)).toThrow(TypeError)
  })
})

import { readFileSync, statSync } from 'node:fs'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type AuditFixture, body, openAuditFixture } from '../../test/support/audit.js'
import { isBatonError } from '../errors.js'
import { createGroupCommitAppender } from '../store/group-commit.js'
import { bytesEqual, leafHash, toHex } from './entry.js'
import { exportLines, verifyExport } from './export.js'
import { parsePublicKeys } from './head.js'
import {
  consistencyProof,
  inclusionProof,
  rootAt,
  rootFromLeaves,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js'
import { checkInclusionBundle, proveInclusion } from './proof.js'
import { createSequencer, storeNodeReader } from './sequencer.js'
import { openSigningKey, rotateSigningKey } from './signing.js'
import { verifyStore } from './verify.js'

let f: AuditFixture
beforeEach(async () => {
  f = await openAuditFixture('sqlite')
})
afterEach(async () => {
  await f.close()
})

const append = (from: number, n: number) =>
  f.store.appendAudit(Array.from({ length: n }, (_, i) => body(from + i, `cs_${(from + i) % 3}`)))

async function allLeaves(): Promise<Uint8Array[]> {
  return (await f.store.readLeafHashes(0, 1_000_000)).map((l) => l.leafHash)
}

async function publicKeys() {
  return parsePublicKeys((await f.store.listAuditKeys()).map((k) => k.publicKey).join('\n'))
}

describe('sequencer', () => {
  it('integrates new entries in batches, one signed head per transaction, and resumes from the stored frontier', async () => {
    const small = createSequencer({
      store: f.store,
      signer: () => f.keys.current(),
      now: () => new Date(),
      batchSize: 7,
    })
    expect(await f.store.auditSize()).toBe(1) // the signing key's own entry
    await append(1, 19)
    const head = await small.sequenceOnce()
    expect((await f.store.listHeads()).map((h) => h.size)).toEqual([7, 14, 20])
    expect(head?.size).toBe(20)
    expect(await small.sequenceOnce()).toEqual(head) // nothing new: no new head

    // A new process resumes from the stored frontier (O(log n) reads) and keeps extending the same tree.
    await append(20, 13)
    const resumed = createSequencer({ store: f.store, signer: () => f.keys.current(), now: () => new Date() })
    const next = await resumed.sequenceOnce()
    expect(next?.size).toBe(33)
    expect(toHex(next!.root)).toBe(toHex(rootFromLeaves(await allLeaves())))
    expect(await f.store.countTreeNodes()).toBe(33 - 2) // n − popcount(n)
    expect(await verifyStore(f.store)).toMatchObject({ ok: true, entries: 33, treeSize: 33, heads: 4 })
  })

  it('refuses to resume from a frontier that does not fold to the signed root', async () => {
    await append(1, 5)
    await f.sequencer.sequenceOnce()
    await f.unguard('audit_nodes')
    await f.exec(`update audit_nodes set hash = ${f.bytes(new Uint8Array(32))} where level = 2 and idx = 0`)
    const fresh = createSequencer({ store: f.store, signer: () => f.keys.current(), now: () => new Date() })
    await append(6, 1)
    await expect(fresh.sequenceOnce()).rejects.toSatisfy((e) => isBatonError(e, 'AUDIT_INVALID'))
  })

  it('two sequencers cannot both move the tree: the loser resumes and catches up', async () => {
    const a = createSequencer({ store: f.store, signer: () => f.keys.current(), now: () => new Date() })
    const b = createSequencer({ store: f.store, signer: () => f.keys.current(), now: () => new Date() })
    await append(1, 4)
    await a.sequenceOnce()
    await b.sequenceOnce()
    await append(5, 4)
    await a.sequenceOnce()
    // b still holds the frontier of size 5: its write is refused whole, and its next round resumes from the store.
    await expect(b.sequenceOnce()).rejects.toSatisfy((e) => isBatonError(e, 'CONFLICT'))
    await append(9, 3)
    expect((await b.sequenceOnce())?.size).toBe(12)
    expect(await f.store.countTreeNodes()).toBe(12 - 2)
    expect(await verifyStore(f.store)).toMatchObject({ ok: true, treeSize: 12 })
  })

  it('signs a head within the interval while it holds the lease, and stops cleanly', async () => {
    const s = createSequencer({ store: f.store, signer: () => f.keys.current(), now: () => new Date() })
    s.start(20)
    await append(1, 3)
    const deadline = Date.now() + 5000
    while ((await f.store.latestHead())?.size !== 4 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10))
    expect((await f.store.latestHead())?.size).toBe(4)
    await s.stop()
    // The lease is free again for another sequencer.
    const lease = await f.store.acquireSequencerLease()
    expect(lease).toBeDefined()
    await lease?.release()
  })
})

describe('proofs from the store (property)', () => {
  it('every inclusion and consistency proof between signed heads verifies; a flipped bit never does', async () => {
    // Heads at irregular sizes: 1, then batches of 1..9 entries up to ~70.
    const sizes: number[] = []
    let n = 1
    for (const step of [0, 1, 2, 5, 3, 8, 1, 9, 4, 7, 6, 2, 9, 3]) {
      await append(n, step)
      n += step
      await f.sequencer.sequenceOnce()
      sizes.push(n)
    }
    const heads = await f.store.listHeads()
    expect(heads.map((h) => h.size)).toEqual([...new Set(sizes)])
    const reader = storeNodeReader(f.store)
    const leaves = await allLeaves()
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: heads.length - 1 }),
        fc.nat({ max: heads.length - 1 }),
        fc.nat(),
        fc.nat({ max: 32 * 8 - 1 }),
        async (i, j, pick, bit) => {
          const [h1, h2] = i <= j ? [heads[i]!, heads[j]!] : [heads[j]!, heads[i]!]
          const leaf = pick % h2.size
          const inc = await inclusionProof(reader, BigInt(leaf), BigInt(h2.size))
          expect(verifyInclusion(leaves[leaf]!, BigInt(leaf), BigInt(h2.size), inc, h2.root)).toBe(true)
          const con = await consistencyProof(reader, BigInt(h1.size), BigInt(h2.size))
          expect(verifyConsistency(BigInt(h1.size), BigInt(h2.size), h1.root, h2.root, con)).toBe(true)
          expect(bytesEqual(await rootAt(reader, BigInt(h1.size)), h1.root)).toBe(true)
          const flip = (h: Uint8Array) => {
            const c = new Uint8Array(h)
            c[bit >> 3]! ^= 1 << (bit & 7)
            return c
          }
          expect(verifyInclusion(leaves[leaf]!, BigInt(leaf), BigInt(h2.size), inc, flip(h2.root))).toBe(false)
          if (inc.length > 0) {
            const k = pick % inc.length
            const bad = inc.map((p, x) => (x === k ? flip(p) : p))
            expect(verifyInclusion(leaves[leaf]!, BigInt(leaf), BigInt(h2.size), bad, h2.root)).toBe(false)
          }
          if (con.length > 0) {
            const k = pick % con.length
            const bad = con.map((p, x) => (x === k ? flip(p) : p))
            expect(verifyConsistency(BigInt(h1.size), BigInt(h2.size), h1.root, h2.root, bad)).toBe(false)
          }
        },
      ),
      { numRuns: 150 },
    )
  })

  it('a self-contained proof checks with nothing but the public key, and nothing altered passes', async () => {
    await append(1, 11)
    await f.sequencer.sequenceOnce()
    const bundle = await proveInclusion(f.store, 6)
    const keys = await publicKeys()
    expect(checkInclusionBundle(JSON.parse(JSON.stringify(bundle)), keys)).toEqual({ ok: true })
    const entry = bundle.entry.replace('message 6', 'message 7')
    expect(checkInclusionBundle({ ...bundle, entry }, keys)).toMatchObject({ ok: false, reason: /leafHash/ })
    expect(checkInclusionBundle({ ...bundle, entry, leafHash: toHex(leafHash(entry)) }, keys)).toMatchObject({
      ok: false,
      reason: /inclusion/,
    })
    expect(checkInclusionBundle({ ...bundle, seq: 5, leafIndex: 5 }, keys)).toMatchObject({ ok: false })
    const sig = bundle.head.signature.replace(/^./, (c) => (c === '0' ? '1' : '0'))
    expect(checkInclusionBundle({ ...bundle, head: { ...bundle.head, signature: sig } }, keys)).toMatchObject({
      ok: false,
      reason: /head: signature/,
    })
    expect(checkInclusionBundle(bundle, new Map())).toMatchObject({ ok: false, reason: /not a known public key/ })
    await expect(proveInclusion(f.store, 12)).rejects.toSatisfy((e) => isBatonError(e, 'AUDIT_HEAD_NOT_FOUND'))
    await expect(proveInclusion(f.store, 1, 5)).rejects.toSatisfy((e) => isBatonError(e, 'AUDIT_HEAD_NOT_FOUND'))
  })
})

describe('signing keys', () => {
  it('are created once with mode 0600 and recorded once', async () => {
    expect(statSync(f.keyFile).mode & 0o777).toBe(0o600)
    const again = await openSigningKey({ store: f.store, file: f.keyFile, now: () => new Date() })
    expect((await again.current())?.keyId).toBe((await f.keys.current())?.keyId)
    expect(await f.store.listAuditKeys()).toHaveLength(1)
    expect(readFileSync(f.keyFile, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/)
  })

  it('rotate: new heads use the new key, old heads stay verifiable with the retired key', async () => {
    await append(1, 4)
    await f.sequencer.sequenceOnce()
    const old = (await f.keys.current())!.keyId
    const r = await rotateSigningKey({
      store: f.store,
      file: f.keyFile,
      now: () => new Date(),
      actor: { kind: 'admin', id: 't' },
    })
    expect(r.retired).toBe(old)
    expect(statSync(f.keyFile).mode & 0o777).toBe(0o600)
    await append(6, 3)
    const head = await f.sequencer.sequenceOnce()
    expect(head?.keyId).toBe(r.keyId)
    const records = await f.store.listAuditKeys()
    expect(records.map((k) => [k.keyId, k.retiredAt === null])).toEqual([
      [old, false],
      [r.keyId, true],
    ])
    expect(await verifyStore(f.store)).toMatchObject({ ok: true, heads: 2 })
    // Trusting only the new key, the head signed before the rotation is not vouched for.
    const onlyNew = new Map([...(await publicKeys())].filter(([id]) => id === r.keyId))
    expect(await verifyStore(f.store, { trustedKeys: onlyNew })).toMatchObject({
      ok: false,
      seq: 0,
      problem: 'head_signature_invalid',
    })
  })

  it('a running node whose key was retired without a successor on disk stops signing', async () => {
    const k = (await f.keys.current())!
    await f.unguard('audit_keys')
    await f.exec(`update audit_keys set retired_at = '2026-01-01T00:00:00.000Z' where key_id = '${k.keyId}'`)
    expect(await f.keys.current()).toBeUndefined()
    await append(1, 2)
    expect(await f.sequencer.sequenceOnce()).toBeUndefined()
  })
})

describe('export', () => {
  it('verifies offline with only the public key, and names the first bad entry of a tampered export', async () => {
    await append(1, 20)
    await f.sequencer.sequenceOnce()
    await append(21, 2)
    const lines: string[] = []
    for await (const l of exportLines(f.store)) lines.push(l)
    const keys = await publicKeys()
    const from = async function* (ls: readonly string[]) {
      yield* ls
    }
    expect(await verifyExport(from(lines), keys)).toMatchObject({ ok: true, entries: 23, treeSize: 21 })
    const i = lines.findIndex((l) => l.includes('"seq":13,'))
    const tampered = lines.map((l, x) => (x === i ? l.replace('message 13', 'message 31') : l))
    expect(await verifyExport(from(tampered), keys)).toMatchObject({
      ok: false,
      seq: 13,
      problem: 'leaf_hash_mismatch',
    })
    // Rewriting the leaf hash too leaves only the signed head to tell; it names the range no valid head vouches for.
    const e = JSON.parse(tampered[i]!) as { entry: string }
    const both = tampered.map((l, x) =>
      x === i ? JSON.stringify({ ...JSON.parse(l), leafHash: toHex(leafHash(e.entry)) }) : l,
    )
    expect(await verifyExport(from(both), keys)).toMatchObject({ ok: false, seq: 0, problem: 'head_root_mismatch' })
    expect(await verifyExport(from(lines.filter((_, x) => x !== i)), keys)).toMatchObject({
      ok: false,
      seq: 13,
      problem: 'entry_missing',
    })
    await expect(verifyExport(from(['{"kind":"nope"}']), keys)).rejects.toSatisfy((x) =>
      isBatonError(x, 'AUDIT_INVALID'),
    )
  })
})

describe('group commit', () => {
  it('writes concurrent appends in few transactions with dense sequence numbers; a bad item fails alone', async () => {
    const w = createGroupCommitAppender(f.store, { maxBatch: 16 })
    const before = await f.store.auditSize()
    await Promise.all(Array.from({ length: 50 }, (_, i) => w.submit(body(i))))
    const written = await f.store.readAudit(before, before + 100)
    expect(written.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => before + i))
    expect(w.stats.items).toBe(50)
    expect(w.stats.transactions).toBeLessThanOrEqual(5)
    const bad = { type: 'x', at: 'now', data: { n: 1n } }
    const results = await Promise.allSettled([w.submit(body(1)), w.submit(bad), w.submit(body(2))])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    await w.close()
    await expect(w.submit(body(3))).rejects.toThrow(TypeError)
    expect(await f.store.auditSize()).toBe(53)
  })
})

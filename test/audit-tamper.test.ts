import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { HeadSigner } from '../src/audit/head.js'
import { TreeBuilder } from '../src/audit/merkle.js'
import { verifyStore } from '../src/audit/verify.js'
import { type AuditFixture, buildLog, openAuditFixture, runCli } from './support/audit.js'
import { pgAvailable } from './support/pg.js'

/*
 * Invariant 8: any change to any stored audit byte is detected by `verify`, which names the first bad entry. Each
 * test plays a DBA: it turns the append-only triggers off with raw SQL and rewrites history.
 */

const engines = [
  { name: 'sqlite', enabled: true },
  { name: 'postgres', enabled: pgAvailable },
] as const

async function withLog(engine: 'sqlite' | 'postgres', fn: (f: AuditFixture) => Promise<void>): Promise<void> {
  const f = await openAuditFixture(engine)
  try {
    await buildLog(f)
    await fn(f)
  } finally {
    await f.close()
  }
}

for (const engine of engines) {
  describe.skipIf(!engine.enabled)(`audit tamper detection (${engine.name})`, () => {
    it('passes an untouched log: 43 entries, heads at 10, 25 and 40', () =>
      withLog(engine.name, async (f) => {
        expect(await verifyStore(f.store)).toEqual({ ok: true, entries: 43, treeSize: 40, heads: 3, warnings: [] })
      }))

    it('names the entry when one byte of its text changed (the real CLI, exit 1)', () =>
      withLog(engine.name, async (f) => {
        const [e] = await f.store.readAudit(17, 18)
        const changed = e!.entry.replace('"message 17"', '"message 18"')
        expect(changed).not.toBe(e!.entry)
        await f.unguard('audit_entries')
        await f.exec(`update audit_entries set entry = '${changed}' where seq = 17`)
        const r = await runCli(['audit', 'verify'], f.env)
        expect(r.stderr).toBe('')
        expect(r.code).toBe(1)
        expect(r.stdout).toMatch(/^FAIL: first bad entry seq 17: leaf_hash_mismatch: /)
      }))

    it('names a deleted entry', () =>
      withLog(engine.name, async (f) => {
        await f.unguard('audit_entries')
        await f.exec('delete from audit_entries where seq = 12')
        expect(await verifyStore(f.store)).toMatchObject({ ok: false, seq: 12, problem: 'entry_missing' })
      }))

    it('names the first of two swapped entries', () =>
      withLog(engine.name, async (f) => {
        const [a] = await f.store.readAudit(20, 21)
        const [b] = await f.store.readAudit(30, 31)
        await f.unguard('audit_entries')
        await f.exec(
          `update audit_entries set entry = '${b!.entry}', leaf_hash = ${f.bytes(b!.leafHash)} where seq = 20;
           update audit_entries set entry = '${a!.entry}', leaf_hash = ${f.bytes(a!.leafHash)} where seq = 30;`,
        )
        expect(await verifyStore(f.store)).toMatchObject({ ok: false, seq: 20, problem: 'entry_seq_mismatch' })
      }))

    it('names the first missing entry when the log is truncated below a signed head', () =>
      withLog(engine.name, async (f) => {
        await f.unguard('audit_entries')
        // The attacker also winds the sequence counter back, so only the signed head can tell.
        await f.exec('delete from audit_entries where seq >= 35; update audit_state set next_seq = 35')
        expect(await verifyStore(f.store)).toMatchObject({ ok: false, seq: 35, problem: 'head_beyond_log' })
      }))

    it('names the first entry only a head forged without the key vouches for', () =>
      withLog(engine.name, async (f) => {
        // The forger computes everything right (nodes, root) but cannot sign with Baton's key.
        const leaves = await f.store.readLeafHashes(0, 100)
        const b = new TreeBuilder()
        const nodes = leaves.flatMap((l) => b.append(l.leafHash)).filter((n) => n.level > 0 && Number(n.index) >= 0)
        const fresh = nodes.filter((n) => (Number(n.index) + 1) * 2 ** n.level > 40)
        const real = await f.keys.current()
        const forged = new HeadSigner(generateKeyPairSync('ed25519').privateKey).sign({
          size: 43,
          root: b.root(),
          timestamp: '2026-12-01T00:00:00.000Z',
        })
        await f.exec(
          `${fresh.map((n) => `insert into audit_nodes (level, idx, hash) values (${n.level}, ${n.index}, ${f.bytes(n.hash)});`).join('\n')}
           insert into audit_heads (size, root, timestamp, key_id, signature)
           values (43, ${f.bytes(forged.root)}, '${forged.timestamp}', '${real!.keyId}', ${f.bytes(forged.signature)});`,
        )
        expect(await verifyStore(f.store)).toMatchObject({ ok: false, seq: 40, problem: 'head_signature_invalid' })
      }))

    it('names the first entry under a changed interior hash', () =>
      withLog(engine.name, async (f) => {
        await f.unguard('audit_nodes')
        // Level 2, index 3 is the subtree over entries 12..15.
        await f.exec(`update audit_nodes set hash = ${f.bytes(new Uint8Array(32).fill(7))} where level = 2 and idx = 3`)
        const r = await verifyStore(f.store)
        expect(r).toMatchObject({ ok: false, seq: 12, problem: 'node_mismatch' })
        expect(!r.ok && r.detail).toMatch(/level 2, index 3\) over entries 12\.\.15/)
      }))

    it('notices a subtree planted beyond the signed tree', () =>
      withLog(engine.name, async (f) => {
        await f.exec(`insert into audit_nodes (level, idx, hash) values (1, 20, ${f.bytes(new Uint8Array(32))})`)
        expect(await verifyStore(f.store)).toMatchObject({ ok: false, seq: 40, problem: 'node_extra' })
      }))

    it('narrows an entry whose text and leaf hash were rewritten together to its level-1 subtree', () =>
      withLog(engine.name, async (f) => {
        const { leafHash } = await import('../src/audit/entry.js')
        const [e] = await f.store.readAudit(5, 6)
        const changed = e!.entry.replace('"message 5"', '"message X"')
        await f.unguard('audit_entries')
        await f.exec(
          `update audit_entries set entry = '${changed}', leaf_hash = ${f.bytes(leafHash(changed))} where seq = 5`,
        )
        // Leaf 5 pairs with leaf 4 in the level-1 subtree: the stored subtree no longer matches.
        expect(await verifyStore(f.store)).toMatchObject({ ok: false, seq: 4, problem: 'node_mismatch' })
      }))
  })
}

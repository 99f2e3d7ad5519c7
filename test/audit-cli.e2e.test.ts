import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AuditFixture, buildLog, openAuditFixture, runCli } from './support/audit.js'
import { SHARED_DATA, sharedDataMissing } from './support/shared-data.js'

const VECTORS = join(SHARED_DATA, 'rfc6962-vectors')
const missing = sharedDataMissing('rfc6962-vectors')
const vectorFiles =
  missing === undefined
    ? readdirSync(VECTORS)
        .filter((f) => f.endsWith('.json'))
        .map((f) => join(VECTORS, f))
    : []

describe.skipIf(missing !== undefined)('baton audit conformance', () => {
  it('passes every RFC 6962 vector file', async () => {
    expect(vectorFiles.length).toBeGreaterThan(0)
    const runs = await Promise.all(vectorFiles.map((file) => runCli(['audit', 'conformance', file])))
    for (const r of runs) {
      expect(r.stderr).toBe('')
      const out = JSON.parse(r.stdout) as { passed: number; failed: number }
      expect(out.failed).toBe(0)
      expect(out.passed).toBeGreaterThan(10)
      expect(r.code).toBe(0)
    }
  })
})

describe('baton audit export, verify --file, prove, check-proof, rotate-key', () => {
  let f: AuditFixture
  let keyFile: string
  beforeAll(async () => {
    f = await openAuditFixture('sqlite')
    await buildLog(f)
    keyFile = join(f.dataDir, 'public.pem')
    writeFileSync(keyFile, (await f.store.listAuditKeys()).map((k) => k.publicKey).join(''))
  })
  afterAll(() => f.close())

  it('checks an export offline with only the public key, and a proof likewise', async () => {
    const exportFile = join(f.dataDir, 'export.jsonl')
    const proofFile = join(f.dataDir, 'proof.json')
    const [exp, prove] = await Promise.all([
      runCli(['audit', 'export', '--out', exportFile], f.env),
      runCli(['audit', 'prove', '17'], f.env),
    ])
    expect(exp.code).toBe(0)
    expect(prove.code).toBe(0)
    writeFileSync(proofFile, prove.stdout)
    const proof = JSON.parse(prove.stdout) as { entry: string; treeSize: number }
    expect(proof).toMatchObject({ seq: 17, leafIndex: 17, treeSize: 40 })
    const badProof = join(f.dataDir, 'bad-proof.json')
    writeFileSync(badProof, JSON.stringify({ ...proof, entry: proof.entry.replace('message 17', 'message 71') }))

    // Offline: nothing but the files (no store in the environment).
    const offline = { BATON_DATA_DIR: join(f.dataDir, 'nowhere') }
    const [verified, checked, refused] = await Promise.all([
      runCli(['audit', 'verify', '--file', exportFile, '--public-key', keyFile], offline),
      runCli(['audit', 'check-proof', proofFile, '--public-key', keyFile], offline),
      runCli(['audit', 'check-proof', badProof, '--public-key', keyFile], offline),
    ])
    expect(verified.stdout).toMatch(/^ok: 43 entries, 3 signed heads, tree size 40/)
    expect(verified.code).toBe(0)
    expect(checked.stdout).toMatch(/^ok: entry 17 is in the log of 40 entries/)
    expect(checked.code).toBe(0)
    expect(refused.stdout).toMatch(/^invalid: leafHash/)
    expect(refused.code).toBe(1)
  })

  it('rotates the signing key; the log still verifies, old heads with the retired key', async () => {
    const r = await runCli(['audit', 'rotate-key'], f.env)
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^new signing key [0-9a-f]{16} .*; retired [0-9a-f]{16}/)
    await f.store.appendAudit([{ type: 'x', at: '2026-11-02T00:00:00.000Z', data: {} }])
    const head = await f.sequencer.sequenceOnce()
    const keys = await f.store.listAuditKeys()
    expect(keys).toHaveLength(2)
    expect(head?.keyId).toBe(keys.find((k) => k.retiredAt === null)?.keyId)
    const v = await runCli(['audit', 'verify', '--json'], f.env)
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, entries: 45, heads: 4, treeSize: 45 })
    expect(v.code).toBe(0)
  })
})

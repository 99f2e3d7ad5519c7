import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fromHex, leafHash, toHex } from '../src/audit/entry.js'
import { checkHeadSignature, headFromJson, parsePublicKeys } from '../src/audit/head.js'
import { verifyConsistency, verifyInclusion } from '../src/audit/merkle.js'
import { bearer, startTestApp, type TestApp } from './support/app.js'
import { pgAvailable } from './support/pg.js'

interface HeadJson {
  size: number
  root: string
  timestamp: string
  keyId: string
  signature: string
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`audit API on ${engine}`, () => {
    let t: TestApp
    let caseId: string
    beforeAll(async () => {
      // Heads only when the test asks for them, so "not yet signed" is observable.
      t = await startTestApp({ engine, auditHeadIntervalMs: 3_600_000 })
      const r = await t.app.server.inject({
        method: 'POST',
        url: '/v1/cases',
        headers: bearer(t.keys.service),
        payload: { customer: 'cu_audit', channel: 'chat', message: { text: 'Where is my parcel? It is late.' } },
      })
      expect(r.statusCode).toBe(201)
      caseId = r.json<{ id: string }>().id
      await t.app.audit.sequenceOnce()
    })
    afterAll(async () => {
      await t?.close()
    })

    const get = (url: string, key: string | null = t.keys.operator) =>
      t.app.server.inject({ method: 'GET', url, headers: key === null ? {} : bearer(key) })

    async function trustedKeys() {
      const r = await get('/.well-known/baton-audit-keys', null)
      expect(r.statusCode).toBe(200)
      return parsePublicKeys(r.body)
    }

    it('publishes the signing keys without authentication', async () => {
      const r = await get('/.well-known/baton-audit-keys', null)
      const doc = r.json<{ keys: { keyId: string; algorithm: string; publicKey: string; retiredAt: null }[] }>()
      expect(doc.keys).toHaveLength(1)
      expect(doc.keys[0]).toMatchObject({ algorithm: 'Ed25519', retiredAt: null })
      expect(doc.keys[0]!.publicKey).toMatch(/^-----BEGIN PUBLIC KEY-----/)
    })

    it('serves the latest signed head to admins and operators only', async () => {
      const r = await get('/v1/audit/head')
      expect(r.statusCode).toBe(200)
      const head = headFromJson(r.json())
      expect(checkHeadSignature(head, await trustedKeys())).toEqual({ ok: true })
      expect((await get('/v1/audit/head', t.keys.admin)).statusCode).toBe(200)
      const svc = await get('/v1/audit/head', t.keys.service)
      expect(svc.statusCode).toBe(403)
      expect(svc.json()).toMatchObject({ code: 'FORBIDDEN' })
      expect((await get(`/v1/cases/${caseId}/audit`, t.keys.service)).statusCode).toBe(403)
      expect((await get('/v1/audit/proofs/inclusion?seq=0', t.keys.service)).statusCode).toBe(403)
      expect((await get('/v1/audit/head', null)).statusCode).toBe(401)
    })

    it('proves an entry over HTTP; the proof verifies against the signed head', async () => {
      const head = headFromJson((await get('/v1/audit/head')).json())
      const seq = head.size - 1
      const e = (await get(`/v1/audit/entries/${seq}`)).json<{ entry: string; leafHash: string; sequenced: boolean }>()
      expect(e.sequenced).toBe(true)
      expect(e.leafHash).toBe(toHex(leafHash(e.entry)))
      const p = await get(`/v1/audit/proofs/inclusion?seq=${seq}`)
      expect(p.statusCode).toBe(200)
      const proof = p.json<{ treeSize: number; proof: string[]; root: string; head: HeadJson; leafHash: string }>()
      expect(proof.treeSize).toBe(head.size)
      expect(proof.head.signature).toBe(toHex(head.signature))
      expect(
        verifyInclusion(fromHex(e.leafHash), BigInt(seq), BigInt(head.size), proof.proof.map(fromHex), head.root),
      ).toBe(true)
      expect(
        verifyInclusion(leafHash(`${e.entry} `), BigInt(seq), BigInt(head.size), proof.proof.map(fromHex), head.root),
      ).toBe(false)
    })

    it('proves consistency between two signed heads, and every case entry against the latest', async () => {
      const first = headFromJson((await get('/v1/audit/head')).json())
      const m = await t.app.server.inject({
        method: 'POST',
        url: `/v1/cases/${caseId}/messages`,
        headers: bearer(t.keys.service),
        payload: { message: { text: 'Any news on my parcel?' } },
      })
      expect(m.statusCode).toBe(200)
      const pending = (await get(`/v1/cases/${caseId}/audit`)).json<{
        entries: { seq: number; sequenced: boolean; proof: null | string[] }[]
      }>()
      const unsigned = pending.entries.filter((x) => !x.sequenced)
      expect(unsigned.length).toBeGreaterThan(0)
      expect(unsigned.every((x) => x.seq >= first.size && x.proof === null)).toBe(true)

      await t.app.audit.sequenceOnce()
      const second = headFromJson((await get('/v1/audit/head')).json())
      expect(second.size).toBeGreaterThan(first.size)
      const c = await get(`/v1/audit/proofs/consistency?from=${first.size}&to=${second.size}`)
      expect(c.statusCode).toBe(200)
      const cons = c.json<{ proof: string[]; fromHead: HeadJson; toHead: HeadJson }>()
      expect(cons.fromHead.signature).toBe(toHex(first.signature))
      expect(
        verifyConsistency(BigInt(first.size), BigInt(second.size), first.root, second.root, cons.proof.map(fromHex)),
      ).toBe(true)
      expect(checkHeadSignature(headFromJson(cons.toHead), await trustedKeys())).toEqual({ ok: true })

      const all = (await get(`/v1/cases/${caseId}/audit`)).json<{
        head: HeadJson
        entries: { seq: number; entry: string; sequenced: boolean; proof: string[] }[]
      }>()
      expect(all.head.size).toBe(second.size)
      expect(all.entries.length).toBeGreaterThanOrEqual(4)
      for (const x of all.entries) {
        expect(JSON.parse(x.entry)).toMatchObject({ seq: x.seq, caseId })
        expect(
          verifyInclusion(leafHash(x.entry), BigInt(x.seq), BigInt(second.size), x.proof.map(fromHex), second.root),
        ).toBe(true)
      }
    })

    it('answers problems with codes: unknown entry, unsigned size, malformed numbers, unknown case', async () => {
      const head = headFromJson((await get('/v1/audit/head')).json())
      const cases: [string, number, string][] = [
        ['/v1/audit/entries/999999', 404, 'AUDIT_ENTRY_NOT_FOUND'],
        [`/v1/audit/proofs/inclusion?seq=0&size=${head.size + 5}`, 404, 'AUDIT_HEAD_NOT_FOUND'],
        [`/v1/audit/proofs/inclusion?seq=${head.size + 5}`, 404, 'AUDIT_HEAD_NOT_FOUND'],
        ['/v1/audit/proofs/inclusion?seq=3&size=2', 400, 'VALIDATION_FAILED'],
        ['/v1/audit/proofs/inclusion?seq=-1', 400, 'VALIDATION_FAILED'],
        ['/v1/audit/proofs/consistency?from=5&to=2', 400, 'VALIDATION_FAILED'],
        ['/v1/audit/entries/99999999999999999', 400, 'VALIDATION_FAILED'],
        ['/v1/cases/cs_nobody/audit', 404, 'CASE_NOT_FOUND'],
      ]
      for (const [url, status, code] of cases) {
        const r = await get(url)
        expect([url, r.statusCode]).toEqual([url, status])
        expect(r.headers['content-type']).toMatch(/application\/problem\+json/)
        expect(r.json()).toMatchObject({ code })
      }
      const empty = await get('/v1/audit/proofs/consistency?from=0&to=1')
      expect(empty.json()).toMatchObject({ proof: [], fromRoot: toHex(new Uint8Array(await emptyRoot())) })
    })

    it('documents every audit route in /openapi.json', async () => {
      const doc = (await get('/openapi.json', null)).json<{ paths: Record<string, unknown> }>()
      for (const p of [
        '/v1/audit/head',
        '/v1/audit/entries/{seq}',
        '/v1/audit/proofs/inclusion',
        '/v1/audit/proofs/consistency',
        '/v1/cases/{id}/audit',
        '/.well-known/baton-audit-keys',
      ]) {
        expect(doc.paths).toHaveProperty([p])
      }
    })
  })
}

async function emptyRoot(): Promise<Uint8Array> {
  const { EMPTY_ROOT } = await import('../src/audit/entry.js')
  return EMPTY_ROOT
}

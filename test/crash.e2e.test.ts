import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { openStore } from '../src/app.js'
import { formatKey } from '../src/identity/keys.js'
import { expectAuditVerifies, expectHeadOverWholeLog, expectWholeCases } from './support/integrity.js'
import { freshDatabase, pgAvailable } from './support/pg.js'
import { startServer } from './support/server.js'

const engines = [
  { name: 'sqlite', enabled: true },
  { name: 'postgres', enabled: pgAvailable },
] as const

for (const engine of engines) {
  describe.skipIf(!engine.enabled)(`SIGKILL during a burst of messages (${engine.name})`, () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'baton-crash-'))
    let dropDb: (() => Promise<void>) | undefined
    afterAll(async () => {
      await dropDb?.()
      rmSync(dataDir, { recursive: true, force: true })
    })

    it('keeps every acknowledged message and decision, and no case is half-written', async () => {
      const adminKey = formatKey('admin', randomBytes(32))
      const env: Record<string, string> = { BATON_DATA_DIR: dataDir, BATON_ADMIN_KEY: adminKey }
      if (engine.name === 'postgres') {
        const db = await freshDatabase()
        dropDb = db.drop
        env.BATON_DATABASE_URL = db.url
      }
      const { proc, url } = await startServer(env)
      // Listen before the kill: the exit event can fire before the workers notice the reset.
      const exited = new Promise((r) => proc.once('exit', r))
      const headers = { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }
      const acked: { caseId: string; messageId: string; decisionId: string }[] = []
      let killed = false
      const worker = async (w: number) => {
        for (let i = 0; !killed; i++) {
          try {
            const r = await fetch(`${url}/v1/cases`, {
              method: 'POST',
              headers,
              body: JSON.stringify({
                customer: `cu_${w}_${i % 3}`,
                channel: 'chat',
                message: { text: `Order ${w}-${i}: where is my parcel? It is late.` },
              }),
            })
            if (r.status !== 201) continue
            const b = (await r.json()) as { id: string; messageId: string; decision: { id: string } }
            acked.push({ caseId: b.id, messageId: b.messageId, decisionId: b.decision.id })
            if (acked.length >= 60 && !killed) {
              killed = true
              proc.kill('SIGKILL')
            }
          } catch {
            // connection reset by the kill: not acknowledged, so no promise was made
          }
        }
      }
      await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)))
      await exited
      expect(acked.length).toBeGreaterThanOrEqual(60)

      // Restart on the same store: everything acknowledged is there.
      const again = await startServer(env)
      try {
        for (const a of acked) {
          const r = await fetch(`${again.url}/v1/cases/${a.caseId}`, { headers })
          expect(r.status).toBe(200)
          const c = (await r.json()) as { messages: { id: string }[]; decisions: { decisionId: string }[] }
          expect(c.messages.map((m) => m.id)).toContain(a.messageId)
          expect(c.decisions.map((d) => d.decisionId)).toContain(a.decisionId)
        }
        // The audit sequencer resumes from the stored frontier and signs a head over everything that survived.
        await expectHeadOverWholeLog(again.url, headers)
      } finally {
        again.proc.kill('SIGTERM')
        await new Promise((r) => again.proc.once('exit', r))
      }

      // No half-written case: each stored case has its whole history, and each event its audit entry.
      const store = openStore({ dataDir, databaseUrl: env.BATON_DATABASE_URL })
      try {
        expect((await expectWholeCases(store)).length).toBeGreaterThanOrEqual(acked.length)
      } finally {
        await store.close()
      }
      // And the whole log verifies: leaves, tree, every signed head.
      await expectAuditVerifies(env)
    }, 120_000)
  })
}

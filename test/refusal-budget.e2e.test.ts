import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, describe, expect, it } from 'vitest'
import { createApp, openStore } from '../src/app.js'
import { configFrom } from '../src/config.js'
import { formatKey } from '../src/identity/keys.js'
import { SHOP } from './support/app.js'
import { freshDatabase, pgAvailable } from './support/pg.js'

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
/** A token with the shape of an agent access token and a signature nobody made. */
const forged = (i: number) =>
  `${b64({ alg: 'EdDSA', typ: 'JWT' })}.${b64({ sub: `bot-${i}`, case: 'cs_x' })}.${randomBytes(64).toString('base64url')}`

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`refused requests within the audit budget (${engine})`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-refusals-'))
    let drop: (() => Promise<void>) | undefined
    const saved = { ...process.env }
    afterAll(async () => {
      process.env = saved
      await drop?.()
      rmSync(dir, { recursive: true, force: true })
    })

    it('a flood of forged agent tokens is refused, each refusal in the log alone or counted, the log bounded', async () => {
      process.env.BATON_REFUSAL_AUDIT_BURST = '5'
      process.env.BATON_REFUSAL_AUDIT_PER_S = '1'
      let databaseUrl: string | undefined
      if (engine === 'postgres') {
        const db = await freshDatabase()
        drop = db.drop
        databaseUrl = db.url
      }
      const dataDir = join(dir, 'data')
      const app = await createApp(
        configFrom(
          {},
          {
            dataDir,
            workspace: SHOP,
            databaseUrl,
            watchPolicy: false,
            logLevel: 'silent',
            adminKey: formatKey('admin', randomBytes(32)),
          },
        ),
        { logger: pino({ level: 'silent' }) },
      )
      const url = await app.server.listen({ port: 0, host: '127.0.0.1' })
      const started = Date.now()
      const FLOOD = 120
      const statuses = await Promise.all(
        Array.from({ length: FLOOD }, (_, i) =>
          fetch(`${url}/v1/cases/cs_x/actions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${forged(i)}`, 'content-type': 'application/json' },
            body: JSON.stringify({ tool: 'refund', params: {} }),
          }).then((r) => r.status),
        ),
      )
      const elapsedS = (Date.now() - started) / 1000
      expect(new Set(statuses)).toEqual(new Set([401]))
      await app.close() // writes the summary of what was counted

      const store = openStore({ dataDir, databaseUrl })
      try {
        const entries = (await store.readAudit(0, await store.auditSize())).map(
          (e) => JSON.parse(e.entry) as { type: string; data: Record<string, unknown> },
        )
        const alone = entries.filter((e) => e.type === 'access.refused')
        const summaries = entries.filter((e) => e.type === 'access.refused_suppressed')
        // the burst, plus what the bucket refilled while the flood lasted
        expect(alone.length).toBeGreaterThanOrEqual(5)
        expect(alone.length).toBeLessThanOrEqual(5 + Math.ceil(elapsedS) + 1)
        expect(summaries).toHaveLength(1)
        const counted = summaries[0]!.data
        expect(counted.count).toBe(FLOOD - alone.length)
        expect(counted.byRoute).toEqual({ 'POST /v1/cases/:id/actions': FLOOD - alone.length })
        expect(counted.byCode).toEqual({ CREDENTIAL_INVALID: FLOOD - alone.length })
      } finally {
        await store.close()
      }
    })
  })
}

import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, describe, expect, it } from 'vitest'
import { type App, createApp } from '../src/app.js'
import { configFrom } from '../src/config.js'
import { formatKey } from '../src/identity/keys.js'
import { SHOP } from './support/app.js'
import { freshDatabase, pgAvailable } from './support/pg.js'

const SECRETS = ['credential_signing_key', 'console_session_secret', 'secret_hash_key']

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`secrets at rest (${engine})`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-sealed-e2e-'))
    const opened: App[] = []
    let drop: (() => Promise<void>) | undefined
    afterAll(async () => {
      for (const a of opened) await a.close().catch(() => undefined)
      await drop?.()
      rmSync(dir, { recursive: true, force: true })
    })

    it('keeps no secret in clear in the store, and a node with another secrets key refuses to start', async () => {
      let databaseUrl: string | undefined
      if (engine === 'postgres') {
        const db = await freshDatabase()
        drop = db.drop
        databaseUrl = db.url
      }
      const adminKey = formatKey('admin', randomBytes(32))
      // one data directory (on SQLite: one database file), the secrets key file named apart from it
      const start = (secretsKeyFile: string, dataDir = join(dir, 'data')) =>
        createApp(
          configFrom(
            {},
            { dataDir, workspace: SHOP, databaseUrl, watchPolicy: false, logLevel: 'silent', adminKey, secretsKeyFile },
          ),
          { logger: pino({ level: 'silent' }) },
        )
      const shared = join(dir, 'shared-secrets.key')
      const first = await start(shared)
      opened.push(first)
      for (const name of SECRETS) expect(await first.store.getSetting(name)).toMatch(/^sealed\.v1\./)
      const token = await first.services.authority.signer.mint(
        {
          aud: first.services.authority.apiAudience,
          sub: 'shop-assistant',
          case: 'cs_x',
          tools: ['reply'],
          epoch: 0,
          kind: 'access',
          jti: 'tok_1',
          ttlSeconds: 60,
        },
        new Date(),
      )
      if (engine === 'sqlite') await first.close() // one process per SQLite file

      // another node (or this one restarted) with its own, different key file: refused, the store untouched
      const wrong = await start(join(dir, 'other-secrets.key')).catch((e: unknown) => e)
      expect(wrong).toBeInstanceOf(Error)
      expect((wrong as Error).message).toMatch(/does not open the stored setting/)
      expect((wrong as Error).message).toMatch(/every node must use the key file that sealed it/)

      // with the shared key file it starts and verifies what the first node signed
      const second = await start(shared)
      opened.push(second)
      const claims = await second.services.authority.signer.verify(
        token.token,
        second.services.authority.apiAudience,
        new Date(),
      )
      expect(claims.sub).toBe('shop-assistant')
    })
  })
}

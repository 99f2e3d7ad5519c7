import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import pino, { type Logger } from 'pino'
import { type App, createApp } from '../../src/app.js'
import { configFrom } from '../../src/config.js'
import { freshDatabase } from './pg.js'

export const SHOP = resolve(import.meta.dirname, '../../examples/shop')

export interface TestApp {
  readonly app: App
  readonly keys: { readonly admin: string; readonly service: string; readonly operator: string }
  readonly dataDir: string
  /** The PostgreSQL database of the suite, when the engine is postgres. */
  readonly databaseUrl?: string | undefined
  close(): Promise<void>
}

/** A real Baton (real store, real policy, real HTTP stack) in this process, with a key for each role. */
export async function startTestApp(
  options: {
    engine?: 'sqlite' | 'postgres'
    workspace?: string
    watchPolicy?: boolean
    /** How often the audit sequencer signs a head (default 1000 ms; large to sequence only by hand). */
    auditHeadIntervalMs?: number
    /** `BATON_PUBLIC_URL`: the address clients reach Baton at (a proxy in front of it). */
    publicUrl?: string
    /** The app's clock (default the system clock). */
    now?: () => Date
    /** Webhooks may go to loopback and private addresses (BATON_WEBHOOK_ALLOW_PRIVATE). */
    webhookAllowPrivate?: boolean
    /** How often the server keeps the case folds current (BATON_QUALITY_FOLDS_INTERVAL_MS; default 5 min). */
    qualityFoldsIntervalMs?: number
    /** Loop intervals and the webhook poster (a test's fake receiver). */
    work?: NonNullable<Parameters<typeof createApp>[1]>['work']
  } = {},
): Promise<TestApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'baton-test-'))
  const pgdb = options.engine === 'postgres' ? await freshDatabase() : undefined
  const config = configFrom(
    {},
    {
      dataDir,
      workspace: options.workspace ?? SHOP,
      databaseUrl: pgdb?.url,
      watchPolicy: options.watchPolicy ?? false,
      logLevel: 'silent',
      ...(options.auditHeadIntervalMs === undefined ? {} : { auditHeadIntervalMs: options.auditHeadIntervalMs }),
      ...(options.publicUrl === undefined ? {} : { publicUrl: options.publicUrl }),
      ...(options.qualityFoldsIntervalMs === undefined
        ? {}
        : { qualityFoldsIntervalMs: options.qualityFoldsIntervalMs }),
      ...(options.webhookAllowPrivate === undefined ? {} : { webhookAllowPrivate: options.webhookAllowPrivate }),
    },
  )
  const app = await createApp(config, {
    logger: pino({ level: 'silent' }),
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.work === undefined ? {} : { work: options.work }),
  })
  const admin = app.generatedAdminKey
  if (admin === undefined) throw new Error('expected a generated admin key on a fresh store')
  const mk = async (role: 'service' | 'operator') =>
    (await app.services.keys.create(role, `test ${role}`, { kind: 'admin', id: 'test', roles: ['admin'] })).key
  const keys = { admin, service: await mk('service'), operator: await mk('operator') }
  return {
    app,
    keys,
    dataDir,
    databaseUrl: pgdb?.url,
    async close() {
      await app.close()
      await pgdb?.drop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` })

/**
 * One Baton node listening on a free loopback port, on the given store: nodes given the same `dataDir` (so the same
 * secrets key) and `databaseUrl` are the nodes of one deployment. Its policy file is not watched; it logs nothing
 * unless given a `logger`.
 */
export async function startNode(options: {
  readonly dataDir: string
  readonly databaseUrl: string | undefined
  readonly adminKey: string
  /** Default: the shop example. */
  readonly workspace?: string
  readonly logger?: Logger
}): Promise<{ readonly app: App; readonly url: string }> {
  const { dataDir, databaseUrl, adminKey } = options
  const config = configFrom(
    {},
    {
      dataDir,
      workspace: options.workspace ?? SHOP,
      databaseUrl,
      watchPolicy: false,
      logLevel: 'silent',
      adminKey,
      port: 0,
    },
  )
  const app = await createApp(config, { logger: options.logger ?? pino({ level: 'silent' }) })
  const url = await app.server.listen({ port: 0, host: '127.0.0.1' })
  return { app, url }
}

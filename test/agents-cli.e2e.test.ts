import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../src/app.js'
import { configFrom } from '../src/config.js'
import { createSqliteStore } from '../src/store/sqlite/database.js'
import { SHOP } from './support/app.js'

const ROOT = resolve(import.meta.dirname, '..')
const dataDir = mkdtempSync(join(tmpdir(), 'baton-agents-cli-'))

/** Runs `baton agents …` in a child process (async: a blocking spawn would stall the test worker). */
function baton(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'agents', ...args],
      {
        cwd: ROOT,
        env: { ...process.env, BATON_DATA_DIR: dataDir, BATON_DATABASE_URL: '', BATON_LOG_LEVEL: 'silent' },
        encoding: 'utf8',
        timeout: 60_000,
      },
      (error, stdout, stderr) => done({ code: error ? Number(error.code ?? 1) : 0, out: stdout, err: stderr }),
    )
  })
}

describe('baton agents (CLI)', () => {
  // The store of a deployment that has started once (the CLI works on an existing store and reads no workspace).
  beforeAll(async () => {
    const config = configFrom({}, { dataDir, workspace: SHOP, watchPolicy: false, logLevel: 'silent' })
    await (await createApp(config, { logger: pino({ level: 'silent' }) })).close()
  })
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

  it('lists, suspends, retires for good, and reviews privileges; every change audited as the CLI user', async () => {
    const list = await baton('list', '--json')
    expect(list.code).toBe(0)
    expect(JSON.parse(list.out.trim().split('\n')[0]!)).toMatchObject({ id: 'shop-assistant', state: 'active' })
    expect((await baton('suspend', 'shop-assistant', '--reason', 'incident 7')).out).toMatch(/suspended/)
    expect((await baton('activate', 'shop-assistant', '--reason', 'fixed')).out).toMatch(/is active/)
    const review = await baton('review', '--json')
    expect(review.code).toBe(1)
    const row = JSON.parse(review.out.trim().split('\n')[0]!)
    expect(row).toMatchObject({ agentId: 'shop-assistant', lastReview: null })
    expect(row.findings.join(' ')).toMatch(/granted but unused/)
    expect((await baton('review', 'shop-assistant', '--by', 'dana.ops@shop.example')).code).toBe(0)
    expect((await baton('retire', 'shop-assistant', '--reason', 'replaced')).code).toBe(0)
    const back = await baton('activate', 'shop-assistant', '--reason', 'oops')
    expect(back.code).toBe(1)
    expect(back.err).toMatch(/AGENT_STATE_INVALID/)
    expect(JSON.parse((await baton('show', 'shop-assistant')).out)).toMatchObject({
      state: 'retired',
      reviewedBy: 'dana.ops@shop.example',
    })

    const store = createSqliteStore(join(dataDir, 'baton.db'))
    try {
      const entries = (await store.readAudit(0, await store.auditSize())).map((e) => JSON.parse(e.entry))
      const types = entries.map((e) => e.type)
      expect(types).toEqual(
        expect.arrayContaining([
          'agent.registered',
          'agent.suspended',
          'agent.activated',
          'agent.reviewed',
          'agent.retired',
        ]),
      )
      const suspended = entries.find((e) => e.type === 'agent.suspended')
      expect(suspended.actor.id).toMatch(/^cli:/)
      expect(suspended.data.reason).toBe('incident 7')
    } finally {
      await store.close()
    }
  }, 120_000)
})

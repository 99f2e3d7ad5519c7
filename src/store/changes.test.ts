import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { body } from '../../test/support/audit.js'
import { freshDatabase, pgAvailable } from '../../test/support/pg.js'
import type { ChangeChannel } from './changes.js'
import type { PolicyVersionRecord, Store } from './ports.js'
import { createPostgresStore } from './postgres/database.js'
import { createSqliteStore } from './sqlite/database.js'

/** Every payload `store` is told on `channel`, in order. */
function record(store: Store, channel: ChangeChannel): (string | undefined)[] {
  const got: (string | undefined)[] = []
  store.changes.subscribe(channel, (p) => got.push(p))
  return got
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const policy = (version: number, hash: string): PolicyVersionRecord => ({
  hash,
  name: 'shop',
  version,
  owner: 'ops',
  file: 'policy.yaml',
  source: `version ${version}`,
  loadedAt: new Date().toISOString(),
})
const activated = (version: number) => ({
  type: 'policy.activated',
  at: new Date().toISOString(),
  actor: { kind: 'admin', id: 'test' },
  data: { version },
})

describe('change feed, SQLite: this process is woken after the commit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'baton-changes-'))
  const store = createSqliteStore(join(dir, 'baton.db'))
  afterAll(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('new audit entries and activated policy versions, never a refused activation', async () => {
    await store.migrate()
    expect(store.changes.shared).toBe(false)
    const audit = record(store, 'audit')
    const policies = record(store, 'policy')
    await store.appendAudit([body(0), body(1)])
    expect(audit).toEqual([String((await store.auditSize()) - 1)])
    await store.activatePolicyVersion(policy(3, 'a'.repeat(64)), activated(3))
    expect(policies).toEqual(['3'])
    // A refused version writes nothing and wakes nobody.
    expect((await store.activatePolicyVersion(policy(2, 'b'.repeat(64)), activated(2))).outcome).toBe('conflict')
    expect(policies).toEqual(['3'])
    expect(audit).toHaveLength(2) // the activation's own audit entry
  })
})

describe.skipIf(!pgAvailable)('change feed, PostgreSQL: every node is woken by NOTIFY at commit', () => {
  let db: { url: string; drop: () => Promise<void> }
  const stores: Store[] = []
  afterAll(async () => {
    for (const s of stores) await s.close()
    await db?.drop()
  })

  it('another store on the database hears audit appends and activations, and catches up after its listener is cut', async () => {
    db = await freshDatabase()
    const errors: unknown[] = []
    const a = createPostgresStore(db.url)
    const b = createPostgresStore(db.url, { onConnectionError: (e) => errors.push(e) })
    stores.push(a, b)
    await a.migrate()
    expect(b.changes.shared).toBe(true)
    const audit = record(b, 'audit')
    const policies = record(b, 'policy')
    // The first `undefined` says b listens (and catches up on anything sent before).
    await until(() => audit.length === 1 && policies.length === 1)
    expect([audit[0], policies[0]]).toEqual([undefined, undefined])

    await a.appendAudit([body(0)])
    await until(() => audit.length === 2)
    expect(audit[1]).toBe(String((await a.auditSize()) - 1))
    await a.activatePolicyVersion(policy(3, 'a'.repeat(64)), activated(3))
    await until(() => policies.length === 2)
    expect(policies[1]).toBe('3')
    expect((await a.activatePolicyVersion(policy(2, 'b'.repeat(64)), activated(2))).outcome).toBe('conflict')

    // The listening connection is cut (as at a database restart): b connects again and says so with `undefined`.
    const admin = new pg.Client({ connectionString: db.url })
    await admin.connect()
    try {
      const cut = await admin.query(
        `select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and query like 'listen %'`,
      )
      expect(cut.rowCount).toBe(1)
    } finally {
      await admin.end()
    }
    await until(() => policies.length === 3)
    expect(policies[2]).toBeUndefined()
    expect(errors.length).toBeGreaterThan(0)
    await a.activatePolicyVersion(policy(4, 'c'.repeat(64)), activated(4))
    await until(() => policies.length === 4)
    expect(policies).toEqual([undefined, '3', undefined, '4'])
  })
})

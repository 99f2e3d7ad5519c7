import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { startCheckpointer } from './checkpointer.js'

const dir = mkdtempSync(join(tmpdir(), 'baton-ckpt-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('WAL checkpoints in a worker', () => {
  it('copies committed pages into the database file while the writer never checkpoints, and stops cleanly', async () => {
    const file = join(dir, 'a.db')
    const db = new SQLite(file)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.pragma('wal_autocheckpoint = 0')
    db.exec('create table t (x text)')
    const insert = db.prepare('insert into t values (?)')
    db.transaction(() => {
      for (let i = 0; i < 2000; i++) insert.run(`row ${i} ${'x'.repeat(100)}`)
    })()
    const before = statSync(file).size
    const checkpointer = startCheckpointer(file, { intervalMs: 10 })
    try {
      const deadline = Date.now() + 5000
      // a checkpoint may copy the pages in more than one pass: wait for what the assertion asks, not for any growth
      while (statSync(file).size <= before + 100 * 1024 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10))
      expect(statSync(file).size).toBeGreaterThan(before + 100 * 1024)
      expect(db.prepare('select count(*) as n from t').get()).toEqual({ n: 2000 })
    } finally {
      await checkpointer.stop()
      db.close()
    }
  })

  it('stops even when the database cannot be opened (the writer keeps its own checkpoints then)', async () => {
    const checkpointer = startCheckpointer(join(dir, 'missing', 'nothing.db'), { intervalMs: 10 })
    await expect(checkpointer.stop()).resolves.toBeUndefined()
  })
})

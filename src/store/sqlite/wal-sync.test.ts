import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { createWalSync } from './wal-sync.js'

const dir = mkdtempSync(join(tmpdir(), 'baton-wal-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('WAL group commit', () => {
  it('shares fsyncs between concurrent callers, and a caller never rides an fsync that started before it', async () => {
    const file = join(dir, 'a.db')
    const db = new SQLite(file)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.exec('create table t (x integer)')
    const wal = createWalSync(`${file}-wal`)
    try {
      db.prepare('insert into t values (1)').run()
      const first = wal.sync() // starts an fsync at once
      // Committed after the first fsync started: these must wait for a second one, and share it.
      db.prepare('insert into t values (2)').run()
      const later = Array.from({ length: 20 }, () => wal.sync())
      expect(new Set(later).size).toBe(1)
      expect(later[0]).not.toBe(first)
      await Promise.all([first, ...later])
      expect(wal.stats).toEqual({ fsyncs: 2, waits: 21 })
      // Idle again: the next caller starts its own fsync.
      await wal.sync()
      expect(wal.stats.fsyncs).toBe(3)
    } finally {
      await wal.close()
      db.close()
    }
  })

  it('fails the waiting commit when the WAL cannot be synced, and recovers once it can', async () => {
    const file = join(dir, 'late.db')
    const wal = createWalSync(`${file}-wal`)
    await expect(wal.sync()).rejects.toMatchObject({ code: 'ENOENT' })
    const db = new SQLite(file)
    db.pragma('journal_mode = WAL')
    db.exec('create table t (x integer)')
    try {
      await expect(wal.sync()).resolves.toBeUndefined()
    } finally {
      await wal.close()
      db.close()
    }
  })
})

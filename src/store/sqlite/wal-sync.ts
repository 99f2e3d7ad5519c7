import { type FileHandle, open } from 'node:fs/promises'

/**
 * Group commit for SQLite in WAL mode with `synchronous=NORMAL`: a commit appends its frames to the WAL without an
 * fsync, and the caller then awaits `sync()` before acknowledging. `sync()` resolves after an fsync of the WAL that
 * started after the call, so everything committed before the call is on disk. Concurrent callers share fsyncs: one
 * runs at a time, and every caller that arrives while it runs waits for the single next one. The fsync runs on
 * libuv's thread pool, so the event loop keeps serving requests meanwhile (with `synchronous=FULL` SQLite would
 * fsync inside every commit, on the main thread).
 */
export interface WalSync {
  sync(): Promise<void>
  close(): Promise<void>
  readonly stats: { readonly fsyncs: number; readonly waits: number }
}

export function createWalSync(walFile: string): WalSync {
  let handle: Promise<FileHandle> | undefined
  let current: Promise<void> | undefined
  let next: Promise<void> | undefined
  const stats = { fsyncs: 0, waits: 0 }

  function start(): Promise<void> {
    stats.fsyncs++
    // The WAL exists once a transaction has committed; it keeps its inode while the database is open (a checkpoint
    // rewinds it in place), so one handle serves for the store's lifetime.
    handle ??= open(walFile, 'r+').catch((e: unknown) => {
      handle = undefined // try again at the next sync rather than failing every later commit
      throw e
    })
    const p: Promise<void> = handle
      .then((h) => h.sync())
      .finally(() => {
        if (current === p) current = undefined
      })
    current = p
    return p
  }

  return {
    stats,
    sync() {
      stats.waits++
      if (current === undefined) return start()
      next ??= current
        .catch(() => undefined)
        .then(() => {
          next = undefined
          return start()
        })
      return next
    },
    async close() {
      await Promise.allSettled([current, next])
      const h = handle
      handle = undefined
      const fh = await h?.catch(() => undefined) // a WAL that never opened has nothing to close
      await fh?.close()
    },
  }
}

import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

/**
 * Checkpoints an SQLite WAL from a worker thread. SQLite's automatic checkpoint runs inside whichever commit crosses
 * the WAL threshold: it copies every new page into the database file and fsyncs both, on the caller's thread,
 * which for Baton is the event loop (about every 30 intake commits, several milliseconds each). Here a second
 * connection runs PASSIVE checkpoints in a worker instead, which never block the writer. The writer keeps its own
 * automatic checkpoint at a higher threshold (see `database.ts`): by then the worker has copied nearly every page,
 * so it is short, and it lets the WAL start over from its beginning even under continuous writes (a checkpoint
 * that a write overlaps cannot); it also holds the WAL's size if the worker falls behind or dies.
 */
export interface Checkpointer {
  /** Stops the worker after its checkpoint in progress, if any, and closes its connection. */
  stop(): Promise<void>
}

/** The worker's whole program (CommonJS, evaluated): no file to locate, under tsx or from `dist` alike. */
const PROGRAM = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const db = new Database(workerData.file)
db.pragma('busy_timeout = 0')
let timer
const tick = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)')
  } catch {
    // busy or locked: the next tick tries again, and the writer's backstop holds the WAL's size meanwhile
  }
  timer = setTimeout(tick, workerData.intervalMs)
}
timer = setTimeout(tick, workerData.intervalMs)
parentPort.on('message', () => {
  clearTimeout(timer)
  db.close()
  parentPort.close()
})
`

export function startCheckpointer(file: string, options: { readonly intervalMs?: number } = {}): Checkpointer {
  const worker = new Worker(PROGRAM, {
    eval: true,
    workerData: {
      file,
      driver: createRequire(import.meta.url).resolve('better-sqlite3'),
      intervalMs: options.intervalMs ?? 100,
    },
  })
  // A worker that fails leaves the checkpoints to the writer's backstop; it must not take the process down.
  worker.on('error', () => undefined)
  worker.unref()
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
  return {
    async stop() {
      worker.ref() // an unreferenced worker would let the process end before it has closed its connection
      worker.postMessage('stop')
      await exited
    },
  }
}

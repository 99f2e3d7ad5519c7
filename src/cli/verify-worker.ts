import { join } from 'node:path'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { HASH_SIZE } from '../audit/entry.js'
import { checkEntries, type LeafItem, type VerifyFailure } from '../audit/verify.js'
import { createPostgresStore } from '../store/postgres/database.js'
import { createSqliteStore } from '../store/sqlite/database.js'

/*
 * `baton audit verify` on two threads: this worker runs the entries pass (read every entry, check density, embedded
 * seq and leaf hash) on its own store connection and streams the checked leaf hashes, packed, to the main thread,
 * which folds the tree, compares stored subtrees and checks heads at the same time.
 */

interface Where {
  readonly databaseUrl: string | undefined
  readonly dataDir: string
  readonly batchSize: number
}

type Message =
  | { readonly kind: 'leaves'; readonly from: number; readonly packed: ArrayBuffer }
  | { readonly kind: 'failure'; readonly failure: VerifyFailure }
  | { readonly kind: 'done' }
  | { readonly kind: 'error'; readonly message: string }

async function runWorker(where: Where): Promise<void> {
  const port = parentPort!
  const store = where.databaseUrl
    ? createPostgresStore(where.databaseUrl, { poolSize: 1 })
    : createSqliteStore(join(where.dataDir, 'baton.db'))
  try {
    for await (const item of checkEntries(store.scanAudit(0, where.batchSize))) {
      if (item.kind === 'failure') {
        port.postMessage({ kind: 'failure', failure: item.failure } satisfies Message)
        continue
      }
      const packed = new Uint8Array(item.hashes.length * HASH_SIZE)
      item.hashes.forEach((h, i) => {
        packed.set(h, i * HASH_SIZE)
      })
      port.postMessage({ kind: 'leaves', from: item.from, packed: packed.buffer } satisfies Message, [packed.buffer])
    }
    port.postMessage({ kind: 'done' } satisfies Message)
  } catch (e) {
    port.postMessage({ kind: 'error', message: e instanceof Error ? e.message : String(e) } satisfies Message)
  } finally {
    await store.close()
  }
}

/**
 * Starts the entries pass on a worker thread over the store the configuration names, and yields its items. The
 * caller runs the tree pass (`verifyStore(store, { leaves })`).
 */
export async function* leavesFromWorker(where: Where): AsyncGenerator<LeafItem> {
  // From dist/ the worker is plain JS; from TypeScript sources (tsx, tests) it first registers tsx's loader, which a
  // worker does not inherit.
  const worker = import.meta.url.endsWith('.ts')
    ? new Worker(
        `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}) })`,
        { eval: true, workerData: where },
      )
    : new Worker(new URL(import.meta.url), { workerData: where })
  const queue: Message[] = []
  let wake: (() => void) | undefined
  const push = (m: Message) => {
    queue.push(m)
    wake?.()
  }
  worker.on('message', push)
  worker.on('error', (e) => push({ kind: 'error', message: e.message }))
  worker.on('exit', (code) => push(code === 0 ? { kind: 'done' } : { kind: 'error', message: `exited with ${code}` }))
  try {
    for (;;) {
      while (queue.length === 0) await new Promise<void>((r) => (wake = r))
      const m = queue.shift()!
      if (m.kind === 'done') return
      if (m.kind === 'error') throw new Error(`verify worker: ${m.message}`)
      if (m.kind === 'failure') {
        yield { kind: 'failure', failure: m.failure }
        return
      }
      const bytes = new Uint8Array(m.packed)
      const hashes: Uint8Array[] = []
      for (let i = 0; i < bytes.length; i += HASH_SIZE) hashes.push(bytes.subarray(i, i + HASH_SIZE))
      yield { kind: 'leaves', from: m.from, hashes }
    }
  } finally {
    await worker.terminate()
  }
}

if (!isMainThread && (workerData as Partial<Where> | undefined)?.batchSize !== undefined) {
  await runWorker(workerData as Where)
}

import type { AuditEntryBody } from '../audit/entry.js'
import type { Store } from './ports.js'

/**
 * A single writer with group commit: items submitted concurrently are written together, one transaction (one
 * fsync) for everything that arrived while the previous transaction was committing, at most `maxBatch` per
 * transaction. `submit` resolves only after the item's transaction is durable.
 *
 * When a batch fails it is retried item by item, so one bad item fails alone and its neighbours still land.
 */
export interface GroupCommitWriter<T, R> {
  submit(item: T): Promise<R>
  /** Waits for everything submitted so far; later submits are refused with `TypeError`. */
  close(): Promise<void>
  /** Transactions committed and items written so far (for metrics and the bench). */
  readonly stats: { readonly transactions: number; readonly items: number }
}

interface Pending<T, R> {
  readonly item: T
  readonly resolve: (r: R) => void
  readonly reject: (e: unknown) => void
}

/** `flush(items)` writes the items in one transaction and returns one result per item, in order. */
export function createGroupCommitWriter<T, R>(
  flush: (items: readonly T[]) => Promise<readonly R[]>,
  options: { readonly maxBatch?: number } = {},
): GroupCommitWriter<T, R> {
  const maxBatch = options.maxBatch ?? 1000
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new TypeError(`maxBatch must be ≥ 1, got ${maxBatch}`)
  let queue: Pending<T, R>[] = []
  let running: Promise<void> | undefined
  let closed = false
  const stats = { transactions: 0, items: 0 }

  async function write(batch: readonly Pending<T, R>[]): Promise<void> {
    try {
      const results = await flush(batch.map((p) => p.item))
      if (results.length !== batch.length)
        throw new TypeError(`flush returned ${results.length} results for ${batch.length}`)
      stats.transactions++
      stats.items += batch.length
      for (const [i, p] of batch.entries()) p.resolve(results[i]!)
    } catch (e) {
      if (batch.length === 1) batch[0]!.reject(e)
      else for (const p of batch) await write([p])
    }
  }

  async function drain(): Promise<void> {
    // Yield once so that submits of the same tick join the first transaction.
    await Promise.resolve()
    while (queue.length > 0) {
      const batch = queue.slice(0, maxBatch)
      queue = queue.slice(batch.length)
      await write(batch)
    }
    running = undefined
  }

  return {
    stats,
    submit(item) {
      if (closed) return Promise.reject(new TypeError('the group-commit writer is closed'))
      return new Promise<R>((resolve, reject) => {
        queue.push({ item, resolve, reject })
        running ??= drain()
      })
    },
    async close() {
      closed = true
      while (running !== undefined) await running
    },
  }
}

/** Audit appends through one group-commit writer: resolves once the entry is durable. */
export function createGroupCommitAppender(
  store: Pick<Store, 'appendAudit'>,
  options: { readonly maxBatch?: number } = {},
): GroupCommitWriter<AuditEntryBody, void> {
  return createGroupCommitWriter(async (bodies) => {
    await store.appendAudit(bodies)
    return bodies.map(() => undefined)
  }, options)
}

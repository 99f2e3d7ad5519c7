import { sql, type Transaction } from 'kysely'
import { isBatonError } from '../errors.js'
import type { Database } from './schema.js'
import { type StoreParts, translate } from './store-parts.js'

/** The store itself failed (not the call): no space, no connection, an I/O error. */
const cannotWrite = (e: unknown): boolean => isBatonError(e, 'STORE_FULL') || isBatonError(e, 'STORE_UNAVAILABLE')

type Outcome<R> = { readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: unknown }

/**
 * Runs concurrent calls of `fn` together: one `tx` for all calls that arrived while the previous one ran (at most
 * `maxBatch`), written by `all` at once; when that fails, each call runs again in its own savepoint, so that a
 * refused call (`CONFLICT`, …) rolls back alone and its neighbours still commit. A failure of the transaction itself
 * (its commit, the WAL sync after it) fails every call in it.
 */
export function batchCommits<T, R>(
  tx: StoreParts['tx'],
  fn: (trx: Transaction<Database>, item: T) => Promise<R>,
  all: (trx: Transaction<Database>, items: readonly T[]) => Promise<readonly R[]>,
  maxBatch = 256,
): (item: T) => Promise<R> {
  interface Pending {
    readonly item: T
    readonly resolve: (r: R) => void
    readonly reject: (e: unknown) => void
  }
  let queue: Pending[] = []
  let running = false

  async function inBatch(trx: Transaction<Database>, batch: readonly Pending[]): Promise<Outcome<R>[]> {
    // A lone call needs no savepoint: its failure rolls the whole transaction back.
    if (batch.length === 1) return [{ ok: true, value: await fn(trx, batch[0]!.item) }]
    // All at once first (one statement per table for the whole batch); when one call is refused, one by one.
    await sql`savepoint commit_batch`.execute(trx)
    try {
      const values = await all(
        trx,
        batch.map((p) => p.item),
      )
      await sql`release commit_batch`.execute(trx)
      return values.map((value) => ({ ok: true, value }))
    } catch (e) {
      // A store that cannot write (disk full, I/O) fails the transaction itself, which SQLite may have rolled back.
      if (cannotWrite(e)) throw e
      await sql`rollback to commit_batch`.execute(trx)
      await sql`release commit_batch`.execute(trx)
    }
    const out: Outcome<R>[] = []
    for (const p of batch) {
      await sql`savepoint commit_item`.execute(trx)
      try {
        out.push({ ok: true, value: await fn(trx, p.item) })
      } catch (e) {
        if (cannotWrite(e)) throw e
        await sql`rollback to commit_item`.execute(trx)
        out.push({ ok: false, error: translate(e) })
      }
      await sql`release commit_item`.execute(trx)
    }
    return out
  }

  async function drain(): Promise<void> {
    // Yield once, so that calls of the same tick join the first transaction.
    await Promise.resolve()
    while (queue.length > 0) {
      const batch = queue.slice(0, maxBatch)
      queue = queue.slice(batch.length)
      let outcomes: Outcome<R>[]
      try {
        outcomes = await tx((trx) => inBatch(trx, batch))
      } catch (e) {
        for (const p of batch) p.reject(e)
        continue
      }
      for (const [i, o] of outcomes.entries()) {
        if (o.ok) batch[i]!.resolve(o.value)
        else batch[i]!.reject(o.error)
      }
    }
    running = false
  }

  return (item) =>
    new Promise<R>((resolve, reject) => {
      queue.push({ item, resolve, reject })
      if (!running) {
        running = true
        void drain()
      }
    })
}

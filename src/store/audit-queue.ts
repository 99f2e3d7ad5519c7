import { type Kysely, sql, type Transaction } from 'kysely'
import { type AuditEntryBody, auditLeaf, canonicalJson, checkAuditBody } from '../audit/entry.js'
import type { Database } from './schema.js'

/**
 * The audit intake queue (PostgreSQL).
 *
 * A writing transaction does not take sequence numbers itself: it inserts its audit bodies into `audit_queue`, in the
 * same transaction as its state change (invariant 1 holds: both commit or neither). The drainer then gives queued
 * bodies their dense sequence numbers, in queue order, in transactions of its own under the `audit_state` counter
 * row, and writes them to `audit_entries` with their leaf hashes.
 *
 * Why: a counter row taken inside every writing transaction stays locked until that transaction's commit is on disk,
 * so on PostgreSQL every write in the system waited for the fsync of the one before it (≈ 1 / fsync transactions per
 * second, however many cores). Queued bodies need no shared lock, so concurrent commits share WAL flushes; the
 * drainer's one transaction then sequences everything that queued meanwhile. SQLite has one writer anyway and keeps
 * the direct append (`audit-append.ts`).
 *
 * Readers of the log (`readAudit`, `scanAudit`, `auditSize`, `listCaseAudit`, the sequencer) call `flush()` first,
 * so a write is in the log by the time anyone reads it; the drainer also runs right after every transaction that
 * queued, and the sequencer's loop drains whatever a crashed node left queued.
 */

/** Transactions opened by a PostgreSQL store's `tx`, each with the callback that notes it queued audit bodies. */
const queuing = new WeakMap<Transaction<Database>, () => void>()

/** Marks `trx` as one whose audit bodies go to the queue; `onQueued` runs when it queues any. */
export function queueAuditOf(trx: Transaction<Database>, onQueued: () => void): void {
  queuing.set(trx, onQueued)
}

/**
 * The `audit_queue` rows of `bodies`. canonicalEntry's own checks run here, so that no body the drainer would refuse
 * ever enters the queue (it would stop the queue behind it): such a body is refused with `TypeError`.
 */
export function queueRows(bodies: readonly AuditEntryBody[]): { body: string }[] {
  return bodies.map((b) => {
    checkAuditBody(b)
    return { body: canonicalJson(b) }
  })
}

/**
 * Queues `bodies` in `trx` when `trx` was marked by `queueAuditOf`; false (nothing written) otherwise. A body that
 * canonical JSON cannot represent is refused here with `TypeError`, as the direct append refuses it, so the writer's
 * transaction fails rather than the drainer's.
 */
export async function queueAuditIn(trx: Transaction<Database>, bodies: readonly AuditEntryBody[]): Promise<boolean> {
  const noted = queuing.get(trx)
  if (noted === undefined) return false
  await trx.insertInto('audit_queue').values(queueRows(bodies)).execute()
  noted()
  return true
}

export interface AuditQueueDrainer {
  /** Starts a drain soon unless one is already due; errors are reported to `onError` and retried by the next call. */
  kick(): void
  /** Resolves once every body committed to the queue before the call is in `audit_entries`. */
  flush(): Promise<void>
  /** Waits for a running drain; later kicks do nothing. */
  close(): Promise<void>
}

/** Bodies sequenced per drain transaction (one multi-row INSERT; 4 parameters a row stays far below 65,535). */
const DRAIN_BATCH = 2000

export function createAuditQueueDrainer(
  db: Kysely<Database>,
  options: {
    readonly onError?: (e: unknown) => void
    /** Notified (pg_notify, delivered at commit) with the last seq of each drain, to wake every node's readers. */
    readonly channel?: string
  } = {},
): AuditQueueDrainer {
  let running: Promise<void> | undefined
  let next: Promise<void> | undefined
  let closed = false

  async function queueEmpty(): Promise<boolean> {
    const r = await sql<{ some: boolean }>`select exists (select 1 from audit_queue) as some`.execute(db)
    return r.rows[0]?.some !== true
  }

  /** One transaction: up to DRAIN_BATCH queued bodies, oldest first, become entries; returns how many. */
  async function drainBatch(): Promise<number> {
    // Checked first so that an empty queue costs a read, not a locking transaction and its WAL flush.
    if (await queueEmpty()) return 0
    return db.transaction().execute(async (trx) => {
      // The counter row orders drainers (of this node and others) and direct appends: dense, in commit order.
      const state = await sql<{ next_seq: number }>`select next_seq from audit_state where id = 1 for update`.execute(
        trx,
      )
      const first = Number(state.rows[0]?.next_seq ?? Number.NaN)
      if (!Number.isSafeInteger(first)) throw new Error('audit_state has no counter row')
      const taken = await sql<{ id: number; body: string }>`
        delete from audit_queue
         where id in (select id from audit_queue order by id limit ${DRAIN_BATCH})
        returning id, body`.execute(trx)
      if (taken.rows.length === 0) return 0
      const queued = taken.rows.sort((a, b) => Number(a.id) - Number(b.id))
      const rows = queued.map((q, i) => {
        const body = JSON.parse(q.body) as AuditEntryBody
        const { entry, leafHash } = auditLeaf(first + i, body)
        return { seq: first + i, entry, leaf_hash: leafHash, created_at: body.at }
      })
      await trx.insertInto('audit_entries').values(rows).execute()
      await sql`update audit_state set next_seq = ${first + rows.length} where id = 1`.execute(trx)
      if (options.channel !== undefined)
        await sql`select pg_notify(${options.channel}, ${String(first + rows.length - 1)})`.execute(trx)
      return rows.length
    })
  }

  async function drainAll(): Promise<void> {
    while ((await drainBatch()) === DRAIN_BATCH) {
      // A full batch: there may be more.
    }
  }

  /** A drain that starts after every drain already running: what a caller needs to see its own commits drained. */
  function schedule(): Promise<void> {
    if (running === undefined) {
      const p = drainAll().finally(() => {
        if (running === p) running = undefined
      })
      running = p
      return p
    }
    if (next === undefined) {
      const after = running
      const p = after
        .catch(() => undefined)
        .then(() => {
          if (next === p) next = undefined
          return schedule()
        })
      next = p
      return p
    }
    return next
  }

  return {
    kick() {
      if (closed || next !== undefined) return
      schedule().catch((e: unknown) => options.onError?.(e))
    },
    async flush() {
      // Bodies committed before this call are visible to this read; none there means nothing of ours to wait for.
      if (await queueEmpty()) return
      if (!closed) return schedule()
      // After close: drain inline (used by reads during shutdown), without leaving work behind.
      await drainAll()
    },
    async close() {
      closed = true
      await next?.catch(() => undefined)
      await running?.catch(() => undefined)
    },
  }
}

import { type Kysely, sql, type Transaction } from 'kysely'
import { BatonError } from '../errors.js'
import { createAuditQueueDrainer, queueAuditOf } from './audit-queue.js'
import { auditStore } from './audit-store.js'
import { authorityStore } from './authority-store.js'
import { caseStore } from './case-store.js'
import { type ChangeChannel, type ChangeFeed, createLocalChangeFeed, PG_CHANNEL } from './changes.js'
import { delegationStore } from './delegation-store.js'
import { storeErrorOf } from './engine-errors.js'
import { historyStore } from './history-store.js'
import { migrateToLatest } from './migrations.js'
import { policyStore } from './policy-store.js'
import type { Engine, SequencerLease, Store } from './ports.js'
import type { Database } from './schema.js'
import { settingsStore } from './settings-store.js'
import { appendedIn, type StoreParts, translate } from './store-parts.js'
import { workStore } from './work-store.js'

/**
 * The one implementation of `Store` over Kysely: the transactions (`tx`, `pipelined`, the wake-ups after commit),
 * the sequencer lease and the store's life, with each capability's persistence in its own file (`case-store.ts`,
 * `audit-store.ts`, `policy-store.ts`, `settings-store.ts`, `authority-store.ts`, `work-store.ts`,
 * `delegation-store.ts`, `history-store.ts`), each given the same `StoreParts`. The engines differ in their dialect,
 * pragmas and triggers, which live in `sqlite/database.ts` and `postgres/database.ts` (same file names); the queries
 * are the same SQL, so they are written once rather than twice.
 */
export function createKyselyStore(
  db: Kysely<Database>,
  engine: Engine,
  options: {
    /** Awaited after each transaction commits and before its result is handed back (SQLite's group commit). */
    readonly afterCommit?: () => Promise<void>
    /** A background drain of PostgreSQL's audit queue failed (it is retried by the next write or read). */
    readonly onDrainError?: (e: unknown) => void
    readonly onClose?: () => Promise<void>
    /** Takes the sequencer lease across processes (PostgreSQL: an advisory lock); absent: one lease per store. */
    readonly acquireLease?: () => Promise<SequencerLease | undefined>
    /** Changes made by every node (PostgreSQL: LISTEN); absent: this process's own, woken after each commit. */
    readonly changes?: ChangeFeed & { close(): Promise<void> }
  } = {},
): Store {
  const afterCommit = options.afterCommit
  const local = options.changes === undefined ? createLocalChangeFeed() : undefined
  const changes: ChangeFeed = options.changes ?? local!
  const drainer =
    engine === 'postgres'
      ? createAuditQueueDrainer(db, {
          ...(options.onDrainError === undefined ? {} : { onError: options.onDrainError }),
          channel: PG_CHANNEL.audit,
        })
      : undefined
  const runOnly = <T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> =>
    db
      .transaction()
      .execute(fn)
      .catch((e: unknown) => {
        throw translate(e)
      })
  /** The in-process wake-ups of the changes `fn`'s transaction made, sent once it committed (and `afterCommit`). */
  const pending = new WeakMap<Transaction<Database>, Map<ChangeChannel, string>>()
  const notifyLocal = (trx: Transaction<Database>, channel: ChangeChannel, payload: string) => {
    let m = pending.get(trx)
    if (m === undefined) {
      m = new Map()
      pending.set(trx, m)
    }
    // the newest seq or version wins; of timers, the earliest due time (RFC 3339 UTC strings order as times)
    const before = m.get(channel)
    m.set(channel, channel === 'timers' && before !== undefined && before < payload ? before : payload)
  }
  const runWith = async <T>(
    fn: (trx: Transaction<Database>) => Promise<T>,
    after?: () => Promise<void>,
  ): Promise<T> => {
    if (local === undefined) return runOnly(fn)
    let sent: Map<ChangeChannel, string> | undefined
    const r = await runOnly((trx) => {
      appendedIn.set(trx, (seq) => notifyLocal(trx, 'audit', String(seq)))
      return fn(trx).finally(() => {
        sent = pending.get(trx)
      })
    })
    await after?.()
    for (const [channel, payload] of sent ?? []) local.emit(channel, payload)
    return r
  }
  const run = <T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> => runWith(fn)
  /** Notifies every node of a change `trx` makes: PostgreSQL delivers the NOTIFY at commit, never on rollback. */
  const notifyIn = async (trx: Transaction<Database>, channel: ChangeChannel, payload: string) => {
    if (local !== undefined) notifyLocal(trx, channel, payload)
    else await sql`select pg_notify(${PG_CHANNEL[channel]}, ${payload})`.execute(trx)
  }
  const runQueuing =
    drainer === undefined
      ? run
      : async <T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> => {
          let queued = false
          const r = await run((trx) => {
            queueAuditOf(trx, () => {
              queued = true
            })
            return fn(trx)
          })
          if (queued) drainer.kick()
          return r
        }
  /** Every audit read waits for what was queued before it (a no-op on SQLite). */
  const settled = async (): Promise<void> => {
    if (drainer === undefined) return
    try {
      await drainer.flush()
    } catch (e) {
      throw translate(e)
    }
  }
  const tx =
    afterCommit === undefined
      ? runQueuing
      : <T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> =>
          runWith(fn, async () => {
            try {
              await afterCommit()
            } catch (e) {
              throw storeErrorOf(e)?.code === 'STORE_FULL'
                ? new BatonError('STORE_FULL', 'the store has no space left to make a commit durable', { cause: e })
                : new BatonError('STORE_UNAVAILABLE', 'the store could not make a commit durable', { cause: e })
            }
          })

  const durable = async (): Promise<void> => {
    try {
      await afterCommit?.()
    } catch (e) {
      throw storeErrorOf(e)?.code === 'STORE_FULL'
        ? new BatonError('STORE_FULL', 'the store has no space left to make a commit durable', { cause: e })
        : new BatonError('STORE_UNAVAILABLE', 'the store could not make a commit durable', { cause: e })
    }
  }
  const pipelined: StoreParts['pipelined'] = <T, R>(
    all: (trx: Transaction<Database>, items: readonly T[]) => Promise<readonly R[]>,
  ) => {
    if (afterCommit === undefined) {
      return (item: T) => tx(async (trx) => (await all(trx, [item]))[0] as R)
    }
    let queue: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = []
    let running = false
    const drain = async (): Promise<void> => {
      // Yield once, so that calls of the same tick join the first transaction.
      await Promise.resolve()
      while (queue.length > 0) {
        const batch = queue.slice(0, 256)
        queue = queue.slice(batch.length)
        let committed: () => void = () => undefined
        const written = new Promise<void>((r) => {
          committed = r
        })
        // `after` runs once the transaction has committed: the next batch may start while this one's sync runs
        const done = runWith(
          (trx) =>
            all(
              trx,
              batch.map((p) => p.item),
            ),
          async () => {
            committed()
            await durable()
          },
        )
        done.then(
          (values) => {
            for (const [i, p] of batch.entries()) p.resolve(values[i] as R)
          },
          (e: unknown) => {
            for (const p of batch) p.reject(e)
          },
        )
        await Promise.race([written, done.catch(() => undefined)])
      }
      running = false
    }
    return (item: T) =>
      new Promise<R>((resolve, reject) => {
        queue.push({ item, resolve, reject })
        if (!running) {
          running = true
          void drain()
        }
      })
  }

  // Capability stores spread into `store` below: `...authorityStore(parts)` and so on.
  const parts: StoreParts = { db, engine, tx, pipelined, notifyIn }
  const work = workStore(parts)
  let lease: SequencerLease | undefined
  const store: Store = {
    ...authorityStore(parts),
    ...historyStore(parts),
    ...delegationStore(parts),
    ...work,
    ...caseStore(parts, work, drainer),
    ...policyStore(parts),
    ...auditStore(parts, settled),
    ...settingsStore(parts),
    ...work,
    engine,
    changes,
    migrate: () => migrateToLatest(db as unknown as Kysely<unknown>, engine),
    async close() {
      await options.changes?.close()
      await drainer?.close()
      await lease?.release()
      await db.destroy()
      await options.onClose?.()
    },
    async health() {
      try {
        await sql`select 1`.execute(db)
        return { ok: true }
      } catch (e) {
        const known = storeErrorOf(e) ?? (e instanceof BatonError ? e : undefined)
        return known === undefined
          ? { ok: false, code: 'STORE_UNAVAILABLE', reason: 'the store does not answer a trivial query' }
          : { ok: false, code: known.code, reason: known.message }
      }
    },
    async acquireSequencerLease() {
      if (lease !== undefined) return undefined
      if (options.acquireLease !== undefined) {
        const taken = await options.acquireLease()
        if (taken === undefined) return undefined
        const held: SequencerLease = {
          held: () => taken.held(),
          async release() {
            if (lease === held) lease = undefined
            await taken.release()
          },
        }
        lease = held
        return held
      }
      // SQLite: the process that opened the file is the only writer; the lease only guards against a second
      // sequencer in this process.
      const local: SequencerLease = {
        held: async () => lease === local,
        async release() {
          if (lease === local) lease = undefined
        },
      }
      lease = local
      return local
    },
  }
  return store
}

import { type Compilable, CompiledQuery, type Kysely, type Transaction } from 'kysely'
import type { AuditEntryBody } from '../audit/entry.js'
import { BatonError } from '../errors.js'
import { appendAuditRows } from './audit-append.js'
import { queueAuditIn } from './audit-queue.js'
import { announcesTimer, type ChangeChannel } from './changes.js'
import { storeErrorOf } from './engine-errors.js'
import type { Database, Engine } from './schema.js'

/**
 * Appends audit entries inside `trx` (invariant 1: the caller's state change and its leaves commit together).
 * Capability stores (`src/store/*-store.ts`) call this from their own transactions.
 */
export async function appendAuditIn(trx: Transaction<Database>, bodies: readonly AuditEntryBody[]): Promise<void> {
  if (bodies.length === 0) return
  // PostgreSQL transactions queue their bodies (no shared lock until commit); see audit-queue.ts.
  if (await queueAuditIn(trx, bodies)) return
  const seqs = await appendAuditRows(trx, bodies)
  appendedIn.get(trx)?.(seqs[seqs.length - 1]!)
}

/** SQLite transactions that note the last seq they appended, to wake this process's audit readers after commit. */
export const appendedIn = new WeakMap<Transaction<Database>, (seq: number) => void>()

/**
 * What a capability store (`src/store/<capability>-store.ts`) gets to build its part of `Store`: the database, the
 * engine (for the few statements that differ) and `tx`, which runs a transaction and maps engine errors to Baton's
 * codes. Write audit leaves with `appendAuditIn(trx, …)` inside the same `tx`.
 */
export interface StoreParts {
  readonly db: Kysely<Database>
  readonly engine: Engine
  readonly tx: <T>(fn: (trx: Transaction<Database>) => Promise<T>) => Promise<T>
  /**
   * A group commit for small writes that cannot fail one by one (only the transaction itself can): calls that
   * arrive while a transaction runs share the next one, written by `all`, and each resolves once its transaction is
   * durable, as with `tx`. On SQLite with group commit the next transaction starts while the previous one's WAL sync
   * runs, so transactions neither wait for one another's sync nor pay a commit each; elsewhere, one `tx` per call.
   */
  /**
   * Notifies every node sharing the store of a change `trx` makes, once it commits and never on rollback (PostgreSQL:
   * `pg_notify`, one round trip; SQLite: this process's feed, after the commit). See `changes.ts`.
   */
  readonly notifyIn: (trx: Transaction<Database>, channel: ChangeChannel, payload: string) => Promise<void>
  readonly pipelined: <T, R>(
    all: (trx: Transaction<Database>, items: readonly T[]) => Promise<readonly R[]>,
  ) => (item: T) => Promise<R>
}

/**
 * Records one-time id `id` of `scope` inside `trx` (see `Store.spendOnce`); false when it is already recorded and
 * unexpired at `now`. Capability stores that spend an id together with other writes call this in their own `tx`.
 */
export async function spendOnceIn(
  trx: Transaction<Database>,
  scope: string,
  id: string,
  expiresAt: string,
  now: Date,
): Promise<boolean> {
  const r = await trx
    .insertInto('spent_ids')
    .values({ scope, id, expires_at: expiresAt })
    // an expired record of the same id no longer counts: it is taken over (its id's own expiry refuses it anyway)
    .onConflict((oc) =>
      oc
        .columns(['scope', 'id'])
        .doUpdateSet({ expires_at: expiresAt })
        .where('spent_ids.expires_at', '<', now.toISOString()),
    )
    .executeTakeFirst()
  return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1
}

/**
 * SQL text by statement shape, for the statements of every intake: Kysely builds and compiles one the first time,
 * later calls bind their parameters to the same text (building a query took more CPU than SQLite took to run it).
 * The first call checks that `parameters` lists the values in the order Kysely bound them.
 */
export function statementCache(): <R>(
  shape: string,
  build: () => Compilable<R>,
  parameters: readonly unknown[],
) => CompiledQuery<R> {
  const texts = new Map<string, string>()
  return (shape, build, parameters) => {
    const text = texts.get(shape)
    if (text !== undefined) return CompiledQuery.raw(text, [...parameters])
    const compiled = build().compile()
    if (compiled.parameters.length !== parameters.length || compiled.parameters.some((p, i) => p !== parameters[i])) {
      throw new TypeError(`statement '${shape}': parameters given out of Kysely's order`)
    }
    texts.set(shape, compiled.sql)
    return compiled
  }
}

/** Maps engine errors to Baton's codes; anything unrecognised passes through unchanged. */
export function translate(e: unknown): unknown {
  if (e instanceof BatonError) return e
  const err = e as { code?: unknown; message?: unknown }
  const code = typeof err.code === 'string' ? err.code : ''
  if (code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') {
    return new BatonError('CONFLICT', 'a record with this id already exists', { cause: e })
  }
  // raised by baton_require_active_agent (migration 0007): the case was to go to an agent that is not active
  if (code === '55000' && typeof err.message === 'string' && err.message.startsWith('baton: agent')) {
    return new BatonError('CONFLICT', err.message.slice('baton: '.length), { cause: e })
  }
  return storeErrorOf(e) ?? e
}

/** Announces a timer `trx` writes due at `dueAt` when it is due within the wake-up horizon (`announcesTimer`). */
export async function announceTimerIn(
  parts: Pick<StoreParts, 'notifyIn'>,
  trx: Transaction<Database>,
  dueAt: string,
): Promise<void> {
  if (announcesTimer(dueAt, new Date())) await parts.notifyIn(trx, 'timers', dueAt)
}

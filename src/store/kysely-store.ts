import {
  type Compilable,
  CompiledQuery,
  type Insertable,
  type Kysely,
  type Selectable,
  sql,
  type Transaction,
} from 'kysely'
import type { AuditEntryBody } from '../audit/entry.js'
import type { CaseEvent, CaseRecord, DecisionRecord } from '../cases/records.js'
import { BatonError, isBatonError } from '../errors.js'
import { admitPolicyVersion } from '../policy/versions.js'
import { appendAuditRows } from './audit-append.js'
import { createAuditQueueDrainer, queueAuditIn, queueAuditOf, queueRows } from './audit-queue.js'
import { authorityStore } from './authority-store.js'
import { type ChangeFeed, createLocalChangeFeed, PG_CHANNEL } from './changes.js'
import { delegationStore } from './delegation-store.js'
import { storeErrorOf } from './engine-errors.js'
import { historyStore } from './history-store.js'
import { migrateToLatest } from './migrations.js'
import type {
  ApiKeyRecord,
  AuditKeyRecord,
  CaseCommit,
  Engine,
  PolicyVersionRecord,
  Role,
  SequencerLease,
  SignedTreeHead,
  Store,
  StoredAuditEntry,
} from './ports.js'
import type { Database } from './schema.js'
import { workStore } from './work-store.js'

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
const appendedIn = new WeakMap<Transaction<Database>, (seq: number) => void>()

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

/** How often a store deletes expired one-time ids (by the next spendOnce). */
const PRUNE_EVERY_MS = 60_000

/** The member of a stored `case.decided` event's data that names the decision holding that data. */
const DECISION_REF = '$decision'

/**
 * The one implementation of `Store` over Kysely. The engines differ in their dialect, pragmas and triggers, which
 * live in `sqlite/database.ts` and `postgres/database.ts` (same file names); the queries are the same SQL, so they
 * are written once here rather than twice.
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
  const pending = new WeakMap<Transaction<Database>, Map<'audit' | 'policy', string>>()
  const notifyLocal = (trx: Transaction<Database>, channel: 'audit' | 'policy', payload: string) => {
    let m = pending.get(trx)
    if (m === undefined) {
      m = new Map()
      pending.set(trx, m)
    }
    m.set(channel, payload)
  }
  const runWith = async <T>(
    fn: (trx: Transaction<Database>) => Promise<T>,
    after?: () => Promise<void>,
  ): Promise<T> => {
    if (local === undefined) return runOnly(fn)
    let sent: Map<'audit' | 'policy', string> | undefined
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
  const notifyIn = async (trx: Transaction<Database>, channel: 'audit' | 'policy', payload: string) => {
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
  const parts: StoreParts = { db, engine, tx, pipelined }
  const work = workStore(parts)
  let lease: SequencerLease | undefined
  const caseIdOf = engine === 'postgres' ? sql`(entry::jsonb ->> 'caseId')` : sql`json_extract(entry, '$.caseId')`

  const statement = statementCache()

  /** The event and decision rows of case commits. */
  function historyRows(commits: readonly CaseCommit[]) {
    // A decided event and its decision record may share one data object (the intake's do): serialise it once.
    const json = new Map<object, string>()
    const jsonOf = (data: object): string => {
      let text = json.get(data)
      if (text === undefined) {
        text = JSON.stringify(data)
        json.set(data, text)
      }
      return text
    }
    // A decided event whose data is its decision record's (the same object) keeps a reference to the decision, not a
    // second copy of it (~1.6 KB a message); listCaseEvents puts the data back.
    const decided = new Map<object, string>()
    for (const c of commits) for (const d of c.decisions) decided.set(d.data, d.id)
    const eventData = (e: CaseCommit['events'][number]): string => {
      const id = e.type === 'case.decided' ? decided.get(e.data) : undefined
      return id === undefined ? jsonOf(e.data) : JSON.stringify({ [DECISION_REF]: id })
    }
    const events = commits.flatMap((c) =>
      c.events.map((e) => ({ case_id: e.caseId, seq: e.seq, type: e.type, data: eventData(e), at: e.at })),
    )
    const decisions = commits.flatMap((c) =>
      c.decisions.map((d) => ({
        id: d.id,
        case_id: d.caseId,
        kind: d.kind,
        outcome: d.outcome,
        data: jsonOf(d.data),
        at: d.at,
      })),
    )
    return { events, decisions }
  }

  /**
   * Refused with CONFLICT unless every agent the new cases of `commits` go to is active (see `requireActiveAgent`;
   * an update checks it in its own statement).
   */
  async function requireActiveAgentsIn(trx: Transaction<Database>, commits: readonly CaseCommit[]): Promise<void> {
    const ids = [
      ...new Set(
        commits.flatMap((c) =>
          c.expectedVersion !== null || c.requireActiveAgent === undefined ? [] : [c.requireActiveAgent],
        ),
      ),
    ]
    if (ids.length === 0) return
    const active = await trx
      .selectFrom('agents')
      .select('id')
      .where('id', 'in', ids)
      .where('state', '=', 'active')
      .$if(engine === 'postgres', (q) => q.forShare())
      .execute()
    const found = new Set(active.map((r) => r.id))
    const gone = ids.find((id) => !found.has(id))
    if (gone !== undefined) throw new BatonError('CONFLICT', `agent '${gone}' is no longer active`)
  }

  /** Writes case commits in order, one statement per table for all of them (a refused one fails them all). */
  async function commitCasesIn(trx: Transaction<Database>, commits: readonly CaseCommit[]): Promise<void> {
    // The agent row first: a suspension locks it, then the cases the agent holds (the same order, no deadlock).
    await requireActiveAgentsIn(trx, commits)
    // Then, so that every writer locks work item → operator load → case in the same order (no deadlock).
    for (const commit of commits) await work.syncCaseIn(trx, commit)
    /** One multi-row INSERT of `rows` into `table`, its compiled text kept per table and row count. */
    const insertRows = async <T extends 'cases' | 'case_events' | 'decisions'>(
      table: T,
      rows: readonly Insertable<Database[T]>[],
    ): Promise<void> => {
      if (rows.length === 0) return
      await trx.executeQuery(
        statement(
          `insert ${table} ×${rows.length}`,
          () => trx.insertInto(table).values(rows as Insertable<Database[T]>[]),
          rows.flatMap((r) => Object.values(r as object)),
        ),
      )
    }
    await insertRows(
      'cases',
      commits.filter((c) => c.expectedVersion === null).map((c) => fromCase(c.case)),
    )
    for (const commit of commits) {
      if (commit.expectedVersion === null) continue
      const row = fromCase(commit.case)
      const expected = commit.expectedVersion
      const agent = commit.requireActiveAgent
      const r = await trx.executeQuery(
        statement(agent === undefined ? 'update case' : 'update case, agent active', () => {
          const q = trx
            .updateTable('cases')
            // The authority epoch moves with every change of handler, risk or state (right-hand columns are the
            // old row): credentials issued before such a change stop working at once (see authority-store.ts).
            .set({
              ...row,
              authority_epoch: sql<number>`case when handler <> ${row.handler} or risk <> ${row.risk} or state <> ${row.state} then authority_epoch + 1 else authority_epoch end`,
            })
            .where('id', '=', row.id)
            .where('version', '=', expected)
          // handed to an agent: only while it is active, its row locked FOR SHARE (see CaseCommit.requireActiveAgent)
          return agent === undefined
            ? q
            : q.where((eb) =>
                eb.exists(
                  eb
                    .selectFrom('agents')
                    .select('agents.id')
                    .where('agents.id', '=', agent)
                    .where('agents.state', '=', sql.lit('active'))
                    .$if(engine === 'postgres', (sub) => sub.forShare()),
                ),
              )
        }, [
          ...Object.values(row),
          row.handler,
          row.risk,
          row.state,
          row.id,
          expected,
          ...(agent === undefined ? [] : [agent]),
        ]),
      )
      if (Number(r.numAffectedRows) !== 1) {
        throw new BatonError(
          'CONFLICT',
          `case ${row.id} changed since version ${commit.expectedVersion}${agent === undefined ? '' : `, or agent '${agent}' is no longer active`}`,
        )
      }
    }
    const { events, decisions } = historyRows(commits)
    await insertRows('case_events', events)
    await insertRows('decisions', decisions)
    await appendAuditIn(
      trx,
      commits.flatMap((c) => c.audit),
    )
  }

  const commitCaseIn = (trx: Transaction<Database>, commit: CaseCommit) => commitCasesIn(trx, [commit])

  /**
   * PostgreSQL, a case opened with nothing to read first: the case, its events and decision, its work item and SLA
   * timer and its queued audit bodies in one statement of data-modifying CTEs, atomic on its own. Nine round trips
   * (BEGIN, six INSERTs, a tier lookup, COMMIT) become one; the drainer sequences the queued bodies right after, as
   * after any commit. Undefined when the general path must write it (reads in the transaction, or SQLite).
   */
  function openCaseAtOnce(commit: CaseCommit): (() => Promise<void>) | undefined {
    if (drainer === undefined || commit.expectedVersion !== null) return undefined
    const newWork = work.newCaseWork(commit)
    if (newWork === 'in-transaction') return undefined
    return async () => {
      const { events, decisions } = historyRows([commit])
      const audit = queueRows(commit.audit)
      const inserts = [
        db.insertInto('cases').values(fromCase(commit.case)),
        ...(events.length > 0 ? [db.insertInto('case_events').values(events)] : []),
        ...(decisions.length > 0 ? [db.insertInto('decisions').values(decisions)] : []),
        ...(newWork === 'none'
          ? []
          : [
              db.insertInto('work_items').values(newWork.workItem),
              db
                .insertInto('timers')
                .values(newWork.timer)
                .onConflict((oc) => oc.columns(['kind', 'key']).doNothing()),
            ]),
        ...(audit.length > 0 ? [db.insertInto('audit_queue').values(audit)] : []),
      ]
      // Opened to an agent: baton_require_active_agent (migration 0007) locks its row FOR SHARE and raises when it
      // is not active, which undoes the whole statement (see CaseCommit.requireActiveAgent).
      const agent = commit.requireActiveAgent
      const guard = agent === undefined ? sql`select 1` : sql`select baton_require_active_agent(${agent})`
      try {
        await sql`with ${sql.join(inserts.map((q, i) => sql`${sql.raw(`w${i}`)} as (${q})`))} ${guard}`.execute(db)
      } catch (e) {
        throw translate(e)
      }
      if (audit.length > 0) drainer.kick()
    }
  }

  // SQLite has one writer connection, so concurrent case commits queue for it anyway: they are written together, one
  // transaction, one statement per table and one WAL sync for all that arrived while the previous one ran (and one
  // by one in savepoints when one of them is refused, so that it fails alone). An intake commit alone put about 25
  // pages into the WAL; in a batch its rows share pages. PostgreSQL keeps one transaction per commit: a batch would
  // hold many cases' row locks at once.
  const commitBatch =
    engine === 'sqlite'
      ? batchCommits(tx, commitCaseIn, async (trx, commits) => {
          await commitCasesIn(trx, commits)
          return commits.map(() => undefined)
        })
      : undefined

  // expired one-time ids are deleted at most once a minute per store, by the next spendOnce
  let lastPrune = 0
  const store: Store = {
    ...authorityStore(parts),
    ...historyStore(parts),
    ...delegationStore(parts),
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

    async createKey(key, audit) {
      await tx(async (trx) => {
        await trx
          .insertInto('api_keys')
          .values({
            id: key.id,
            name: key.name,
            role: key.role,
            hash: key.hash,
            created_at: key.createdAt,
            revoked_at: key.revokedAt,
            principal_id: key.principalId ?? null,
          })
          .execute()
        await appendAuditIn(trx, [audit])
      })
    },
    async revokeKey(id, at, audit) {
      return tx(async (trx) => {
        const r = await trx
          .updateTable('api_keys')
          .set({ revoked_at: at })
          .where('id', '=', id)
          .where('revoked_at', 'is', null)
          .executeTakeFirst()
        if (Number(r.numUpdatedRows) === 0) return false
        await appendAuditIn(trx, [audit])
        return true
      })
    },
    async findKeyByHash(hash) {
      const { rows } = await db.executeQuery(
        statement('key by hash', () => db.selectFrom('api_keys').selectAll().where('hash', '=', hash), [hash]),
      )
      const r = rows[0]
      return r ? toKey(r) : undefined
    },
    async listKeys() {
      const rows = await db.selectFrom('api_keys').selectAll().orderBy('created_at').execute()
      return rows.map(toKey)
    },
    async countKeys(role) {
      const r = await db
        .selectFrom('api_keys')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('role', '=', role)
        .where('revoked_at', 'is', null)
        .executeTakeFirstOrThrow()
      return Number(r.n)
    },

    async putCustomer(c, audit) {
      await tx(async (trx) => {
        const row = {
          id: c.id,
          tier: c.tier,
          verified: c.verified ? 1 : 0,
          attributes: JSON.stringify(c.attributes),
          updated_at: c.updatedAt,
        }
        await trx
          .insertInto('customers')
          .values(row)
          .onConflict((oc) =>
            oc.column('id').doUpdateSet({
              tier: row.tier,
              verified: row.verified,
              attributes: row.attributes,
              updated_at: row.updated_at,
            }),
          )
          .execute()
        await appendAuditIn(trx, [audit])
      })
    },
    async getCustomer(id) {
      const { rows } = await db.executeQuery(
        statement('customer by id', () => db.selectFrom('customers').selectAll().where('id', '=', id), [id]),
      )
      const r = rows[0]
      return r
        ? {
            id: r.id,
            tier: r.tier,
            verified: Number(r.verified) === 1,
            attributes: JSON.parse(r.attributes) as Record<string, unknown>,
            updatedAt: r.updated_at,
          }
        : undefined
    },

    commitCase: (commit) => {
      if (commitBatch !== undefined) return commitBatch(commit)
      return (openCaseAtOnce(commit) ?? (() => tx((trx) => commitCaseIn(trx, commit))))()
    },
    async getCase(id) {
      const { rows } = await db.executeQuery(
        statement('case by id', () => db.selectFrom('cases').selectAll().where('id', '=', id), [id]),
      )
      const r = rows[0]
      return r ? toCase(r) : undefined
    },
    async listCaseEvents(caseId) {
      const rows = await db.selectFrom('case_events').selectAll().where('case_id', '=', caseId).orderBy('seq').execute()
      const events = rows.map(
        (r): CaseEvent => ({
          caseId: r.case_id,
          seq: Number(r.seq),
          type: r.type as CaseEvent['type'],
          data: JSON.parse(r.data) as Record<string, unknown>,
          at: r.at,
        }),
      )
      if (!events.some((e) => typeof e.data[DECISION_REF] === 'string')) return events
      const decisions = await db.selectFrom('decisions').select(['id', 'data']).where('case_id', '=', caseId).execute()
      const byId = new Map(decisions.map((d) => [d.id, d.data]))
      return events.map((e) => {
        const ref = e.data[DECISION_REF]
        if (typeof ref !== 'string') return e
        const data = byId.get(ref)
        if (data === undefined) throw new Error(`case ${caseId} event ${e.seq} names decision ${ref}, not in the store`)
        return { ...e, data: JSON.parse(data) as Record<string, unknown> }
      })
    },
    async listDecisions(caseId) {
      const rows = await db
        .selectFrom('decisions')
        .selectAll()
        .where('case_id', '=', caseId)
        .orderBy('at')
        .orderBy('id')
        .execute()
      return rows.map(toDecision)
    },
    async getDecision(id) {
      const r = await db.selectFrom('decisions').selectAll().where('id', '=', id).executeTakeFirst()
      return r ? toDecision(r) : undefined
    },
    async listOpenCasesOfCustomer(customerId, limit) {
      if (!Number.isSafeInteger(limit) || limit < 0) throw new TypeError(`limit must be an integer ≥ 0, got ${limit}`)
      // The limit is written into the SQL text: SQLite plans with a bound LIMIT, so binding one made it prepare the
      // statement again at every execution (four times the cost of the query itself, on every intake).
      const { rows } = await db.executeQuery(
        statement(
          `open cases of customer, limit ${limit}`,
          () =>
            db
              .selectFrom('cases')
              .selectAll()
              .where('customer_id', '=', customerId)
              .where('state', '=', 'open')
              .orderBy('created_at', 'desc')
              .limit(sql.lit(limit)),
          [customerId, 'open'],
        ),
      )
      return rows.map(toCase)
    },
    async queueStats() {
      const rows = await db
        .selectFrom('cases')
        .select((eb) => ['queue', eb.fn.countAll<number>().as('depth'), eb.fn.min('state_since').as('oldest')])
        .where('state', '=', 'open')
        .where('queue', 'is not', null)
        .groupBy('queue')
        .execute()
      const out: Record<string, { depth: number; oldestSince: string | null }> = {}
      for (const r of rows) if (r.queue !== null) out[r.queue] = { depth: Number(r.depth), oldestSince: r.oldest }
      return out
    },
    async listCases(f) {
      let q = db.selectFrom('cases').selectAll()
      if (f.state !== undefined) q = q.where('state', '=', f.state)
      if (f.queue !== undefined) q = q.where('queue', '=', f.queue)
      if (f.handlerKind !== undefined) q = q.where('handler_kind', '=', f.handlerKind)
      if (f.after !== undefined) q = q.where('id', '>', f.after)
      const rows = await q.orderBy('id').limit(f.limit).execute()
      return rows.map(toCase)
    },

    async activatePolicyVersion(p, audit) {
      return tx(async (trx) => {
        // Serialises activations across nodes for the length of this transaction; SQLite has one writer anyway.
        if (engine === 'postgres') await sql`select pg_advisory_xact_lock(${POLICY_LOCK})`.execute(trx)
        const row = await newestPolicyIn(trx)
        const newest = row === undefined ? undefined : toPolicyVersion(row)
        const verdict = admitPolicyVersion(newest, p)
        if (verdict === 'unchanged' && newest !== undefined) return { outcome: 'unchanged', newest }
        if (verdict === 'conflict' && newest !== undefined) return { outcome: 'conflict', newest }
        await trx
          .insertInto('policies')
          .values({
            hash: p.hash,
            name: p.name,
            version: p.version,
            owner: p.owner,
            file: p.file,
            source: p.source,
            loaded_at: p.loadedAt,
          })
          .execute()
        await appendAuditIn(trx, [audit])
        await notifyIn(trx, 'policy', String(p.version))
        return { outcome: 'activated', newest: p }
      })
    },
    async newestPolicyVersion() {
      const row = await newestPolicyIn(db)
      return row === undefined ? undefined : toPolicyVersion(row)
    },
    async listPolicyVersions() {
      const rows = await db.selectFrom('policies').selectAll().orderBy('loaded_at').execute()
      return rows.map(toPolicyVersion)
    },

    appendAudit: (entries) => tx((trx) => appendAuditIn(trx, entries)),
    flushAudit: settled,
    async readAudit(from, to) {
      await settled()
      const rows = await db
        .selectFrom('audit_entries')
        .selectAll()
        .where('seq', '>=', from)
        .where('seq', '<', to)
        .orderBy('seq')
        .execute()
      return rows.map(toEntry)
    },
    async *scanAudit(from, batchSize) {
      if (!Number.isInteger(batchSize) || batchSize < 1) throw new TypeError(`batchSize must be ≥ 1, got ${batchSize}`)
      await settled()
      let cursor = from
      for (;;) {
        const rows = await db
          .selectFrom('audit_entries')
          .selectAll()
          .where('seq', '>=', cursor)
          .orderBy('seq')
          .limit(batchSize)
          .execute()
        if (rows.length === 0) return
        yield rows.map(toEntry)
        if (rows.length < batchSize) return
        cursor = Number(rows[rows.length - 1]!.seq) + 1
      }
    },
    async readLeafHashes(from, limit) {
      await settled()
      const rows = await db
        .selectFrom('audit_entries')
        .select(['seq', 'leaf_hash'])
        .where('seq', '>=', from)
        .where('seq', '<', from + limit)
        .orderBy('seq')
        .execute()
      return rows.map((r) => ({ seq: Number(r.seq), leafHash: bytesOf(r.leaf_hash) }))
    },
    async listCaseAudit(caseId) {
      await settled()
      // The sequencer indexes cases as it integrates entries; the tail it has not reached yet (about a second of
      // entries) is filtered with the engine's JSON functions. One statement: one snapshot.
      const { rows } = await sql<Database['audit_entries']>`
        select e.seq, e.entry, e.leaf_hash, e.created_at
          from audit_case_entries c join audit_entries e on e.seq = c.seq
         where c.case_id = ${caseId}
        union
        select seq, entry, leaf_hash, created_at
          from audit_entries
         where seq >= (select coalesce(max(size), 0) from audit_heads) and ${caseIdOf} = ${caseId}
        order by seq`.execute(db)
      return rows.map(toEntry)
    },

    async integrateTree(fromSize, nodes, head) {
      for (const n of nodes) {
        if (n.level < 1)
          throw new TypeError('integrateTree stores subtrees of level ≥ 1; leaf hashes live in the entries')
      }
      await tx(async (trx) => {
        const latest = await trx
          .selectFrom('audit_heads')
          .select('size')
          .orderBy('size', 'desc')
          .limit(1)
          .executeTakeFirst()
        const current = latest === undefined ? 0 : Number(latest.size)
        if (current !== fromSize) {
          throw new BatonError('CONFLICT', `the tree has size ${current}, not ${fromSize}: another sequencer moved it`)
        }
        if (head.size <= fromSize) {
          throw new BatonError('CONFLICT', `a head of size ${head.size} does not extend the tree of size ${fromSize}`)
        }
        const state = await trx
          .selectFrom('audit_state')
          .select('next_seq')
          .where('id', '=', 1)
          .executeTakeFirstOrThrow()
        if (head.size > Number(state.next_seq)) {
          throw new BatonError('AUDIT_INVALID', `a head of size ${head.size} covers entries the log does not have`)
        }
        const rows = nodes.map((n) => ({ level: n.level, idx: Number(n.index), hash: n.hash }))
        for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
          await trx
            .insertInto('audit_nodes')
            .values(rows.slice(i, i + INSERT_CHUNK))
            .execute()
        }
        await sql`insert into audit_case_entries (case_id, seq)
          select ${caseIdOf}, seq from audit_entries
           where seq >= ${fromSize} and seq < ${head.size} and ${caseIdOf} is not null
          on conflict do nothing`.execute(trx)
        await trx
          .insertInto('audit_heads')
          .values({
            size: head.size,
            root: head.root,
            timestamp: head.timestamp,
            key_id: head.keyId,
            signature: head.signature,
          })
          .execute()
      })
    },
    async getTreeNodes(addresses) {
      const leaves = new Set<number>()
      const inner = new Map<string, { level: number; idx: number }>()
      for (const a of addresses) {
        const idx = Number(a.index)
        if (a.level === 0) leaves.add(idx)
        else inner.set(`${a.level}/${idx}`, { level: a.level, idx })
      }
      // One statement, one round trip: leaf hashes from the entries, interior subtrees from the tree.
      const parts = []
      if (leaves.size > 0) {
        parts.push(
          sql`select 0 as level, seq as idx, leaf_hash as hash from audit_entries where seq in (${sql.join([...leaves])})`,
        )
      }
      if (inner.size > 0) {
        const match = [...inner.values()].map((n) => sql`(level = ${n.level} and idx = ${n.idx})`)
        parts.push(sql`select level, idx, hash from audit_nodes where ${sql.join(match, sql` or `)}`)
      }
      const found = new Map<string, Uint8Array>()
      if (parts.length > 0) {
        const { rows } = await sql<{ level: number; idx: number; hash: Uint8Array }>`${sql.join(
          parts,
          sql` union all `,
        )}`.execute(db)
        for (const r of rows) found.set(`${Number(r.level)}/${Number(r.idx)}`, bytesOf(r.hash))
      }
      return addresses.map((a) => {
        const h = found.get(`${a.level}/${Number(a.index)}`)
        if (h === undefined) {
          throw new BatonError('AUDIT_ENTRY_NOT_FOUND', `no stored subtree at level ${a.level}, index ${a.index}`)
        }
        return h
      })
    },
    async scanTreeNodes(ranges) {
      if (ranges.length === 0) return []
      const rows = await db
        .selectFrom('audit_nodes')
        .select(['level', 'idx', 'hash'])
        .where((eb) =>
          eb.or(ranges.map((r) => eb.and([eb('level', '=', r.level), eb('idx', '>=', r.from), eb('idx', '<=', r.to)]))),
        )
        .orderBy('level')
        .orderBy('idx')
        .execute()
      return rows.map((r) => ({ level: Number(r.level), index: Number(r.idx), hash: r.hash }))
    },
    async countTreeNodes() {
      const r = await db
        .selectFrom('audit_nodes')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
      return Number(r.n)
    },
    async latestHead() {
      const r = await db.selectFrom('audit_heads').selectAll().orderBy('size', 'desc').limit(1).executeTakeFirst()
      return r ? toHead(r) : undefined
    },
    async headAt(size) {
      const r = await db.selectFrom('audit_heads').selectAll().where('size', '=', size).executeTakeFirst()
      return r ? toHead(r) : undefined
    },
    async listHeads() {
      const rows = await db.selectFrom('audit_heads').selectAll().orderBy('size').execute()
      return rows.map(toHead)
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

    async putAuditKey(key, audit) {
      return tx(async (trx) => {
        const existing = await trx
          .selectFrom('audit_keys')
          .select('key_id')
          .where('key_id', '=', key.keyId)
          .executeTakeFirst()
        if (existing !== undefined) return false
        await trx.insertInto('audit_keys').values(fromAuditKey(key)).execute()
        await appendAuditIn(trx, [audit])
        return true
      })
    },
    async rotateAuditKey(next, retiring, audit) {
      await tx(async (trx) => {
        const existing = await trx
          .selectFrom('audit_keys')
          .select('key_id')
          .where('key_id', '=', next.keyId)
          .executeTakeFirst()
        if (existing === undefined) await trx.insertInto('audit_keys').values(fromAuditKey(next)).execute()
        if (retiring !== null && retiring !== next.keyId) {
          await trx
            .updateTable('audit_keys')
            .set({ retired_at: next.createdAt })
            .where('key_id', '=', retiring)
            .where('retired_at', 'is', null)
            .execute()
        }
        await appendAuditIn(trx, [audit])
      })
    },
    async listAuditKeys() {
      const rows = await db.selectFrom('audit_keys').selectAll().orderBy('created_at').orderBy('key_id').execute()
      return rows.map(
        (r): AuditKeyRecord => ({
          keyId: r.key_id,
          publicKey: r.public_key,
          createdAt: r.created_at,
          retiredAt: r.retired_at,
        }),
      )
    },
    async auditSize() {
      await settled()
      const r = await db.selectFrom('audit_state').select('next_seq').where('id', '=', 1).executeTakeFirstOrThrow()
      return Number(r.next_seq)
    },

    async getSetting(key) {
      const r = await db.selectFrom('kv').select('value').where('key', '=', key).executeTakeFirst()
      return r?.value
    },
    async claimSetting(key, value) {
      return tx(async (trx) => {
        await trx
          .insertInto('kv')
          .values({ key, value })
          .onConflict((oc) => oc.column('key').doNothing())
          .execute()
        const r = await trx.selectFrom('kv').select('value').where('key', '=', key).executeTakeFirstOrThrow()
        return r.value
      })
    },
    async spendOnce(scope, id, expiresAt) {
      const now = new Date()
      // Durable before it answers (through `tx`): a replay refused here must stay refused after a crash.
      const inserted = await tx(async (trx) => {
        if (now.getTime() - lastPrune >= PRUNE_EVERY_MS) {
          lastPrune = now.getTime()
          await trx.deleteFrom('spent_ids').where('expires_at', '<', now.toISOString()).execute()
        }
        return spendOnceIn(trx, scope, id, expiresAt, now)
      })
      return inserted
    },
    async isSpent(scope, id) {
      const r = await db
        .selectFrom('spent_ids')
        .select('expires_at')
        .where('scope', '=', scope)
        .where('id', '=', id)
        .executeTakeFirst()
      return r !== undefined && r.expires_at > new Date().toISOString()
    },
    async putSetting(key, value) {
      // Through `tx`, so that it is durable before it resolves (signing keys and session secrets live here).
      await tx((trx) =>
        trx
          .insertInto('kv')
          .values({ key, value })
          .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
          .execute(),
      )
    },
  }
  return store
}

/**
 * SQL text by statement shape, for the statements of every intake: Kysely builds and compiles one the first time,
 * later calls bind their parameters to the same text (building a query took more CPU than SQLite took to run it).
 * The first call checks that `parameters` lists the values in the order Kysely bound them.
 */
function statementCache(): <R>(
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

/** The store itself failed (not the call): no space, no connection, an I/O error. */
const cannotWrite = (e: unknown): boolean => isBatonError(e, 'STORE_FULL') || isBatonError(e, 'STORE_UNAVAILABLE')

type Outcome<R> = { readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: unknown }

/**
 * Runs concurrent calls of `fn` together: one `tx` for all calls that arrived while the previous one ran (at most
 * `maxBatch`), written by `all` at once; when that fails, each call runs again in its own savepoint, so that a
 * refused call (`CONFLICT`, …) rolls back alone and its neighbours still commit. A failure of the transaction itself
 * (its commit, the WAL sync after it) fails every call in it.
 */
function batchCommits<T, R>(
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

/** Rows per INSERT: 3 parameters a row stays under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters. */
const INSERT_CHUNK = 5000

/** Transaction advisory lock id of policy activation: the bytes of "batonpol" as a signed 64-bit integer. */
const POLICY_LOCK = 0x6261746f6e706f6cn

function newestPolicyIn(db: Kysely<Database> | Transaction<Database>) {
  return db
    .selectFrom('policies')
    .selectAll()
    .orderBy('version', 'desc')
    .orderBy('loaded_at', 'desc')
    .limit(1)
    .executeTakeFirst()
}

function toPolicyVersion(r: Selectable<Database['policies']>): PolicyVersionRecord {
  return {
    hash: r.hash,
    name: r.name,
    version: Number(r.version),
    owner: r.owner,
    file: r.file,
    source: r.source,
    loadedAt: r.loaded_at,
  }
}

/** Drivers return Buffers; hand out plain Uint8Array views of them (no copy), as the port promises. */
function bytesOf(v: Uint8Array): Uint8Array {
  return Buffer.isBuffer(v) ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : new Uint8Array(v)
}

function toEntry(r: Pick<Database['audit_entries'], 'seq' | 'entry' | 'leaf_hash' | 'created_at'>): StoredAuditEntry {
  return { seq: Number(r.seq), entry: r.entry, leafHash: r.leaf_hash, createdAt: r.created_at }
}

function toHead(r: Database['audit_heads']): SignedTreeHead {
  return {
    size: Number(r.size),
    root: bytesOf(r.root),
    timestamp: r.timestamp,
    keyId: r.key_id,
    signature: bytesOf(r.signature),
  }
}

function fromAuditKey(k: AuditKeyRecord): Database['audit_keys'] {
  return { key_id: k.keyId, public_key: k.publicKey, created_at: k.createdAt, retired_at: k.retiredAt }
}

function toKey(r: Database['api_keys']): ApiKeyRecord {
  return {
    id: r.id,
    name: r.name,
    role: r.role as Role,
    hash: r.hash,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
    ...(r.principal_id ? { principalId: r.principal_id } : {}),
  }
}

function fromCase(c: CaseRecord): Database['cases'] {
  return {
    id: c.id,
    customer_id: c.customerId,
    channel: c.channel,
    subject: c.subject,
    state: c.state,
    handler: JSON.stringify(c.handler),
    handler_kind: c.handler.kind,
    queue: c.state === 'open' && c.handler.kind !== 'agent' ? c.handler.queue : null,
    handoffs: c.handoffs,
    messages: c.messages,
    risk: JSON.stringify(c.risk),
    first_text: c.firstText,
    last_event: c.lastEvent,
    version: c.version,
    created_at: c.createdAt,
    updated_at: c.updatedAt,
    state_since: c.stateSince,
    ai_turns: c.aiTurns ?? 0,
  }
}

function toCase(r: Database['cases']): CaseRecord {
  return {
    id: r.id,
    customerId: r.customer_id,
    channel: r.channel,
    subject: r.subject,
    state: r.state as CaseRecord['state'],
    handler: JSON.parse(r.handler) as CaseRecord['handler'],
    handoffs: Number(r.handoffs),
    messages: Number(r.messages),
    risk: JSON.parse(r.risk) as CaseRecord['risk'],
    firstText: r.first_text,
    lastEvent: Number(r.last_event),
    version: Number(r.version),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    stateSince: r.state_since,
    authorityEpoch: Number(r.authority_epoch ?? 0),
    // Omitted while 0 (the usual case: no agent answering): records stay equal to what their writers built.
    ...(Number(r.ai_turns ?? 0) > 0 ? { aiTurns: Number(r.ai_turns) } : {}),
  }
}

export function toDecision(r: Database['decisions']): DecisionRecord {
  return {
    id: r.id,
    caseId: r.case_id,
    kind: r.kind as DecisionRecord['kind'],
    outcome: r.outcome,
    at: r.at,
    data: JSON.parse(r.data) as Record<string, unknown>,
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

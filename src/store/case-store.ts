import { CompiledQuery, type Insertable, sql, type Transaction } from 'kysely'
import type { CaseEvent } from '../cases/records.js'
import { BatonError } from '../errors.js'
import { type AuditQueueDrainer, queueRows } from './audit-queue.js'
import { batchCommits } from './batch-commits.js'
import { fromCase, toCase, toDecision } from './case-rows.js'
import { decisionColumns } from './decision-columns.js'
import type { CaseCommit, CaseStore, CustomerRecord } from './ports.js'
import { groupOpens, type OpenRows, openCasesAtOnce } from './postgres/open-cases.js'
import type { Database, Engine } from './schema.js'
import { appendAuditIn, type StoreParts, statementCache } from './store-parts.js'
import type { WorkStoreInternals } from './work-store.js'

const DECISION_REF = '$decision'

function toCustomer(r: Database['customers']): CustomerRecord {
  return {
    id: r.id,
    tier: r.tier,
    verified: Number(r.verified) === 1,
    attributes: JSON.parse(r.attributes) as Record<string, unknown>,
    updatedAt: r.updated_at,
  }
}

/** A row of `customerWithOpenCases`: an open case's columns (all null when there is none) and the customer's. */
type CustomerWithCaseRow = { [K in keyof Database['cases']]: Database['cases'][K] | null } & {
  readonly cu_id: string | null
  readonly cu_tier: string | null
  readonly cu_verified: number | null
  readonly cu_attributes: string | null
  readonly cu_updated_at: string | null
}

/** The SQL of `customerWithOpenCases` by engine and limit (parameters: the customer id, twice). */
const customerWithOpenCasesTexts = new Map<string, string>()
function customerWithOpenCasesText(engine: Engine, limit: number): string {
  const shape = `${engine} ${limit}`
  let text = customerWithOpenCasesTexts.get(shape)
  if (text === undefined) {
    const [p1, p2] = engine === 'postgres' ? ['$1', '$2'] : ['?', '?']
    text =
      'select c.*, cu.id as cu_id, cu.tier as cu_tier, cu.verified as cu_verified, cu.attributes as cu_attributes, ' +
      `cu.updated_at as cu_updated_at from (select ${p1} as customer_id) k ` +
      'left join customers cu on cu.id = k.customer_id ' +
      `left join (select * from cases where customer_id = ${p2} and state = 'open' order by created_at desc limit ${limit}) c ` +
      'on c.customer_id = k.customer_id order by c.created_at desc'
    customerWithOpenCasesTexts.set(shape, text)
  }
  return text
}

/**
 * Cases, their events and decisions, and customers. `commitCase` is the intake's write path: on SQLite concurrent
 * commits share one transaction (`batchCommits`); on PostgreSQL a case opened with nothing to read first is one
 * statement (`openCaseAtOnce`), any other commit one transaction. `work` keeps the case's work item in step, in the
 * same transaction; `drainer` (PostgreSQL) sequences the audit bodies a commit queued.
 */
export function caseStore(
  { db, engine, tx }: StoreParts,
  work: WorkStoreInternals,
  drainer: AuditQueueDrainer | undefined,
): CaseStore {
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
        // what the quality figures read, in columns of the same row (migration 0009)
        ...decisionColumns(d.data),
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
            // old row): credentials issued before such a change stop working at once (see agent-store.ts).
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
   * PostgreSQL, a case opened with nothing to read first: the rows of its case, events and decision, its work item and
   * SLA timer and its queued audit bodies, which `openCasesAtOnce` writes in one statement, atomic on its own, grouped
   * with the opens of concurrent requests (`groupOpens`). Nine round trips (BEGIN, six INSERTs, a tier lookup, COMMIT)
   * become one statement per group; the drainer sequences the queued bodies right after, as after any commit.
   * Undefined when the general path must write it (reads in the transaction, or SQLite).
   */
  function openCaseRows(commit: CaseCommit): OpenRows | undefined {
    if (drainer === undefined || commit.expectedVersion !== null) return undefined
    const newWork = work.newCaseWork(commit)
    if (newWork === 'in-transaction') return undefined
    const { events, decisions } = historyRows([commit])
    return {
      case: fromCase(commit.case),
      events,
      decisions,
      work: newWork === 'none' ? undefined : newWork,
      audit: queueRows(commit.audit),
      agent: commit.requireActiveAgent,
    }
  }
  const openCase =
    drainer === undefined
      ? undefined
      : groupOpens(async (opens) => {
          await openCasesAtOnce(db, opens)
          if (opens.some((o) => o.audit.length > 0)) drainer.kick()
        })

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

  return {
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
      return r ? toCustomer(r) : undefined
    },
    async customerWithOpenCases(customerId, limit) {
      if (!Number.isSafeInteger(limit) || limit < 0) throw new TypeError(`limit must be an integer ≥ 0, got ${limit}`)
      // One row per open case (at least one row: the customer's columns, null where there is no such customer, and
      // the case's, null where there is no open case). The limit is in the text, as in listOpenCasesOfCustomer.
      const { rows } = await db.executeQuery(
        CompiledQuery.raw(customerWithOpenCasesText(engine, limit), [
          customerId,
          customerId,
        ]) as CompiledQuery<CustomerWithCaseRow>,
      )
      const first = rows[0]
      const customer =
        first?.cu_id === null || first?.cu_id === undefined
          ? undefined
          : toCustomer({
              id: first.cu_id,
              tier: first.cu_tier!,
              verified: first.cu_verified!,
              attributes: first.cu_attributes!,
              updated_at: first.cu_updated_at!,
            })
      const open = rows.filter((r) => r.id !== null).map((r) => toCase(r as Database['cases']))
      return { customer, open }
    },

    commitCase: async (commit) => {
      if (commitBatch !== undefined) return commitBatch(commit)
      const rows = openCaseRows(commit)
      return rows !== undefined && openCase !== undefined ? openCase(rows) : tx((trx) => commitCaseIn(trx, commit))
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
  }
}

import { sql } from 'kysely'
import type { DecisionRecord } from '../cases/records.js'
import type { StoredEvent } from '../quality/history.js'
import { toDecision } from './case-rows.js'
import type { StoreParts } from './store-parts.js'

/** Cases opened in `[since, until)` (RFC 3339 UTC, as stored). */
export interface HistoryWindow {
  readonly since: string
  readonly until: string
}

/** A stored case event as the quality figures read it: a decided event carries its decision without its facts. */
export interface CaseHistoryRow extends StoredEvent {
  readonly caseId: string
  readonly seq: number
}

/** A case opened in a window, with its stored fold when that is current. */
export interface CaseFoldRow {
  readonly caseId: string
  readonly lastEvent: number
  /** The fold's JSON (`src/quality/fold-codec.ts`), or null when none is stored that is current. */
  readonly state: string | null
}

/** A case's history folded through its event `through`, by fold version `fold`. */
export interface StoredCaseFold {
  readonly caseId: string
  readonly through: number
  readonly fold: number
  readonly state: string
}

/** An approval (an operator decides) or a confirmation (the customer decides) on a case, as stored. */
export interface GateRow {
  readonly kind: 'approval' | 'confirmation'
  readonly id: string
  readonly caseId: string
  readonly tool: string
  readonly requester: string
  readonly state: string
  readonly createdAt: string
  readonly decidedAt: string | null
}

/** A tool call an agent asked for, with the decision it got. */
export interface ActionRow {
  readonly id: string
  readonly caseId: string
  readonly agentId: string
  readonly tool: string
  readonly outcome: string
  readonly decisionId: string
  readonly createdAt: string
}

/**
 * Reads of the stored history for decision quality, replay and capacity planning (`src/quality/`,
 * `src/simulate/`). Read-only; each read is a keyset cursor (no transaction held between batches).
 */
export interface HistoryStore {
  /**
   * The events of the cases opened in the window, in (case id, seq) order, as batches of at most `batchSize`: every
   * case's events together and in order. `message.received` carries only `messageId` and `text`; `case.decided`
   * carries its decision's `decisionId`, `kind`, `outcome`, `handler`, `rules`, `trigger`, `policy` and `messageId`
   * (not the facts); `case.opened` also its case's customer and channel. `case.linked` is left out.
   */
  scanCaseHistory(window: HistoryWindow, batchSize: number): AsyncIterable<readonly CaseHistoryRow[]>
  /**
   * The cases opened in the window in id order, as batches of at most `batchSize`, each with its last event's seq and
   * its stored fold (`case_folds`, migration 0011) when that fold is of this `fold` version and through that event;
   * `state` is null otherwise (none stored, an older fold version, or events appended since). `staleOnly`: only the
   * cases whose `state` is null.
   */
  scanCaseFolds(
    window: HistoryWindow,
    fold: number,
    batchSize: number,
    options?: { readonly staleOnly?: boolean },
  ): AsyncIterable<readonly CaseFoldRow[]>
  /**
   * The events of these cases as `scanCaseHistory` reads them, in (case id, seq) order, read in one statement (one
   * snapshot): each row carries its case's `lastEvent` as of that read.
   */
  caseHistoryOf(caseIds: readonly string[]): Promise<(CaseHistoryRow & { readonly lastEvent: number })[]>
  /**
   * Keeps the folds of cases (a derived copy, not history): each replaces the stored one unless that one is through a
   * later event. One transaction.
   */
  putCaseFolds(rows: readonly StoredCaseFold[]): Promise<void>
  /** Approvals, customer confirmations and agent (or delegate) actions on the cases opened in the window. */
  listCaseGates(window: HistoryWindow): Promise<{ readonly gates: GateRow[]; readonly actions: ActionRow[] }>
  /** Stored decisions made in `[since, until)` (by their `at`), with their facts, in id order, in batches. */
  scanDecisions(window: HistoryWindow, batchSize: number): AsyncIterable<readonly DecisionRecord[]>
  /** The stored decisions with these ids (in no particular order; unknown ids are left out). */
  getDecisions(ids: readonly string[]): Promise<DecisionRecord[]>
}

/** The columns of a decision record (not the lean copy beside them). */
const RECORD = ['id', 'case_id', 'kind', 'outcome', 'data', 'at'] as const

const NEEDED = [
  'case.opened',
  'message.received',
  'case.decided',
  'case.handed_off',
  'case.assigned',
  'case.sla_breached',
  'case.closed',
]

export function historyStore({ db, engine }: StoreParts): HistoryStore {
  const pg = engine === 'postgres'
  // The lean data of each event, built by the engine's JSON functions so the facts are never sent over. A decided
  // event's decision is read from its row's lean columns (migration 0009, decision-columns.ts), or, in a row written
  // without them, from its data. SQLite parses a JSON text again for every function call on it, so each text is
  // read by one call: json_extract with several paths (an array of their values), which the reader names again.
  const DECIDED = ['decisionId', 'kind', 'outcome', 'handler', 'rules', 'trigger', 'policy', 'messageId'] as const
  const MESSAGE = ['messageId', 'text'] as const
  const paths = (names: readonly string[]) => sql.raw(names.map((n) => `'$."${n}"'`).join(', '))
  const pgObject = (col: string, names: readonly string[]) =>
    sql.raw(`json_build_object(${names.map((n) => `'${n}', ${col}::jsonb -> '${n}'`).join(', ')})::text`)
  const lean = pg
    ? sql`case e.type
    when 'message.received' then ${pgObject('e.data', MESSAGE)}
    when 'case.decided' then coalesce(
      (select case when d.rules is not null then json_build_object('decisionId', d.id, 'kind', d.kind,
         'outcome', d.outcome, 'handler', d.handler::json, 'rules', d.rules::json, 'trigger', d.trigger,
         'policy', json_build_object('hash', d.policy_hash, 'version', d.policy_version), 'messageId', d.message_id)
       else json_build_object('decisionId', d.id, 'kind', d.kind, 'outcome', d.outcome,
         'handler', d.data::jsonb -> 'handler', 'rules', d.data::jsonb -> 'rules', 'trigger', d.data::jsonb -> 'trigger',
         'policy', d.data::jsonb -> 'policy', 'messageId', d.data::jsonb -> 'messageId') end::text
       from decisions d where d.id = e.data::jsonb ->> '$decision'),
      ${pgObject('e.data', DECIDED)})
    when 'case.opened' then json_build_object('customerId', c.customer_id, 'channel', c.channel)::text
    else e.data end`
    : sql`case e.type
    when 'message.received' then json_extract(e.data, ${paths(MESSAGE)})
    when 'case.decided' then coalesce(
      (select case when d.rules is not null then json_array(d.id, d.kind, d.outcome, json(d.handler), json(d.rules),
         d.trigger, d.policy_hash, d.policy_version, d.message_id)
       else json_array(d.id, d.kind, d.outcome, json_extract(d.data, ${paths(DECIDED.slice(3))})) end
       from decisions d where d.id = json_extract(e.data, '$."$decision"')),
      json_extract(e.data, ${paths(DECIDED)}))
    when 'case.opened' then json_object('customerId', c.customer_id, 'channel', c.channel)
    else e.data end`
  /** The lean data of a row: SQLite's arrays of values named again; PostgreSQL's objects as they are. */
  const dataOf = (type: string, text: string): Record<string, unknown> => {
    const v = JSON.parse(text) as unknown
    if (!Array.isArray(v)) return v as Record<string, unknown>
    if (type === 'message.received') return { messageId: v[0], text: v[1] }
    // the lean columns: [id, kind, outcome, handler, rules, trigger, policy hash, policy version, messageId]
    if (v.length === 9) {
      const [decisionId, kind, outcome, handler, rules, trigger, hash, version, messageId] = v as unknown[]
      return { decisionId, kind, outcome, handler, rules, trigger, policy: { hash, version }, messageId }
    }
    // from the decision row's data: [id, kind, outcome, [handler, rules, trigger, policy, messageId]]; else the 8 paths
    const values = v.length === 4 && Array.isArray(v[3]) ? [v[0], v[1], v[2], ...(v[3] as unknown[])] : v
    return Object.fromEntries(DECIDED.map((n, i) => [n, values[i]]))
  }

  const historyRow = (r: { case_id: string; seq: number; type: string; at: string; data: string }) => ({
    caseId: r.case_id,
    seq: Number(r.seq),
    type: r.type,
    at: r.at,
    data: dataOf(r.type, r.data),
  })

  return {
    async *scanCaseFolds(window, fold, batchSize, options) {
      let after: string | undefined
      const stale = options?.staleOnly
        ? sql`and (f.case_id is null or f.fold <> ${fold} or f.through <> c.last_event)`
        : sql``
      for (;;) {
        const from = after === undefined ? sql`` : sql`and c.id > ${after}`
        const { rows } = await sql<{ id: string; last_event: number; state: string | null }>`
          select c.id, c.last_event,
            case when f.fold = ${fold} and f.through = c.last_event then f.state end as state
          from cases c left join case_folds f on f.case_id = c.id
          where c.created_at >= ${window.since} and c.created_at < ${window.until} ${from} ${stale}
          order by c.id
          limit ${batchSize}`.execute(db)
        if (rows.length === 0) return
        yield rows.map((r) => ({ caseId: r.id, lastEvent: Number(r.last_event), state: r.state }))
        after = rows.at(-1)!.id
        if (rows.length < batchSize) return
      }
    },

    async caseHistoryOf(caseIds) {
      if (caseIds.length === 0) return []
      const { rows } = await sql<{
        case_id: string
        seq: number
        type: string
        at: string
        data: string
        last_event: number
      }>`
        select e.case_id, e.seq, e.type, e.at, ${lean} as data, c.last_event
        from case_events e join cases c on c.id = e.case_id
        where e.case_id in (${sql.join(caseIds)}) and e.type in (${sql.join(NEEDED)})
        order by e.case_id, e.seq`.execute(db)
      return rows.map((r) => ({ ...historyRow(r), lastEvent: Number(r.last_event) }))
    },

    async putCaseFolds(rows) {
      if (rows.length === 0) return
      await db.transaction().execute(async (trx) => {
        for (let i = 0; i < rows.length; i += 500) {
          await trx
            .insertInto('case_folds')
            .values(
              rows
                .slice(i, i + 500)
                .map((r) => ({ case_id: r.caseId, through: r.through, fold: r.fold, state: r.state })),
            )
            .onConflict((oc) =>
              oc
                .column('case_id')
                .doUpdateSet((eb) => ({
                  through: eb.ref('excluded.through'),
                  fold: eb.ref('excluded.fold'),
                  state: eb.ref('excluded.state'),
                }))
                .where('case_folds.through', '<=', (eb) => eb.ref('excluded.through')),
            )
            .execute()
        }
      })
    },

    async *scanCaseHistory(window, batchSize) {
      let after: { caseId: string; seq: number } | undefined
      for (;;) {
        const from = after === undefined ? sql`` : sql`and (e.case_id, e.seq) > (${after.caseId}, ${after.seq})`
        const { rows } = await sql<{ case_id: string; seq: number; type: string; at: string; data: string }>`
          select e.case_id, e.seq, e.type, e.at, ${lean} as data
          from case_events e join cases c on c.id = e.case_id
          where c.created_at >= ${window.since} and c.created_at < ${window.until}
            and e.type in (${sql.join(NEEDED)}) ${from}
          order by e.case_id, e.seq
          limit ${batchSize}`.execute(db)
        if (rows.length === 0) return
        yield rows.map(historyRow)
        const last = rows.at(-1)!
        after = { caseId: last.case_id, seq: Number(last.seq) }
        if (rows.length < batchSize) return
      }
    },

    async listCaseGates(window) {
      const [approvals, confirmations, actions] = await Promise.all([
        db
          .selectFrom('approvals as a')
          .innerJoin('cases as c', 'c.id', 'a.case_id')
          .select(['a.id', 'a.case_id', 'a.tool', 'a.requester', 'a.state', 'a.created_at', 'a.decided_at'])
          .where('c.created_at', '>=', window.since)
          .where('c.created_at', '<', window.until)
          .execute(),
        db
          .selectFrom('confirmations as a')
          .innerJoin('cases as c', 'c.id', 'a.case_id')
          .select(['a.id', 'a.case_id', 'a.tool', 'a.requester', 'a.state', 'a.created_at', 'a.decided_at'])
          .where('c.created_at', '>=', window.since)
          .where('c.created_at', '<', window.until)
          .execute(),
        db
          .selectFrom('actions as a')
          .innerJoin('cases as c', 'c.id', 'a.case_id')
          .select(['a.id', 'a.case_id', 'a.agent_id', 'a.tool', 'a.outcome', 'a.decision_id', 'a.created_at'])
          .where('c.created_at', '>=', window.since)
          .where('c.created_at', '<', window.until)
          .execute(),
      ])
      const gate =
        (kind: GateRow['kind']) =>
        (a: (typeof approvals)[number]): GateRow => ({
          kind,
          id: a.id,
          caseId: a.case_id,
          tool: a.tool,
          requester: a.requester,
          state: a.state,
          createdAt: a.created_at,
          decidedAt: a.decided_at,
        })
      return {
        gates: [...approvals.map(gate('approval')), ...confirmations.map(gate('confirmation'))],
        actions: actions.map((a) => ({
          id: a.id,
          caseId: a.case_id,
          agentId: a.agent_id,
          tool: a.tool,
          outcome: a.outcome,
          decisionId: a.decision_id,
          createdAt: a.created_at,
        })),
      }
    },

    async *scanDecisions(window, batchSize) {
      let after: string | undefined
      for (;;) {
        let q = db
          .selectFrom('decisions')
          .select(RECORD)
          .where('at', '>=', window.since)
          .where('at', '<', window.until)
          .orderBy('id')
          .limit(batchSize)
        if (after !== undefined) q = q.where('id', '>', after)
        const rows = await q.execute()
        if (rows.length === 0) return
        yield rows.map(toDecision)
        after = rows.at(-1)!.id
        if (rows.length < batchSize) return
      }
    },

    async getDecisions(ids) {
      const out: DecisionRecord[] = []
      for (let i = 0; i < ids.length; i += 500) {
        const rows = await db
          .selectFrom('decisions')
          .select(RECORD)
          .where('id', 'in', ids.slice(i, i + 500))
          .execute()
        for (const r of rows) out.push(toDecision(r))
      }
      return out
    },
  }
}

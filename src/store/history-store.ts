import { type RawBuilder, sql } from 'kysely'
import type { DecisionRecord } from '../cases/records.js'
import type { StoredEvent } from '../quality/history.js'
import { type StoreParts, toDecision } from './kysely-store.js'

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
  /** Approvals, customer confirmations and agent (or delegate) actions on the cases opened in the window. */
  listCaseGates(window: HistoryWindow): Promise<{ readonly gates: GateRow[]; readonly actions: ActionRow[] }>
  /** Stored decisions made in `[since, until)` (by their `at`), with their facts, in id order, in batches. */
  scanDecisions(window: HistoryWindow, batchSize: number): AsyncIterable<readonly DecisionRecord[]>
  /** The stored decisions with these ids (in no particular order; unknown ids are left out). */
  getDecisions(ids: readonly string[]): Promise<DecisionRecord[]>
}

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
  // The lean data of each event, built by the engine's JSON functions so the facts are never sent over.
  const field = (col: string, name: string): RawBuilder<unknown> =>
    pg ? sql.raw(`(${col}::jsonb -> '${name}')`) : sql.raw(`(${col} -> '$."${name}"')`)
  const text = (col: string, name: string): RawBuilder<unknown> =>
    pg ? sql.raw(`(${col}::jsonb ->> '${name}')`) : sql.raw(`(${col} ->> '$."${name}"')`)
  const object = (pairs: readonly [string, RawBuilder<unknown>][]): RawBuilder<unknown> => {
    const args = sql.join(pairs.flatMap(([k, v]) => [sql.lit(k), v]))
    return pg ? sql`json_build_object(${args})::text` : sql`json_object(${args})`
  }
  const decidedOf = (col: string, id: RawBuilder<unknown>, kind: RawBuilder<unknown>, outcome: RawBuilder<unknown>) =>
    object([
      ['decisionId', id],
      ['kind', kind],
      ['outcome', outcome],
      ['handler', field(col, 'handler')],
      ['rules', field(col, 'rules')],
      ['trigger', text(col, 'trigger')],
      ['policy', field(col, 'policy')],
      ['messageId', text(col, 'messageId')],
    ])
  const lean = sql`case e.type
    when 'message.received' then ${object([
      ['messageId', text('e.data', 'messageId')],
      ['text', text('e.data', 'text')],
    ])}
    when 'case.decided' then coalesce(
      (select ${decidedOf('d.data', sql.raw('d.id'), sql.raw('d.kind'), sql.raw('d.outcome'))} from decisions d where d.id = ${text('e.data', '$decision')}),
      ${decidedOf('e.data', text('e.data', 'decisionId'), text('e.data', 'kind'), text('e.data', 'outcome'))})
    when 'case.opened' then ${object([
      ['customerId', sql.raw('c.customer_id')],
      ['channel', sql.raw('c.channel')],
    ])}
    else e.data end`

  return {
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
        yield rows.map((r) => ({
          caseId: r.case_id,
          seq: Number(r.seq),
          type: r.type,
          at: r.at,
          data: JSON.parse(r.data) as Record<string, unknown>,
        }))
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
          .selectAll()
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
          .selectAll()
          .where('id', 'in', ids.slice(i, i + 500))
          .execute()
        for (const r of rows) out.push(toDecision(r))
      }
      return out
    },
  }
}

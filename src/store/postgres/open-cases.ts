import { type Insertable, type Kysely, sql } from 'kysely'
import { isBatonError } from '../../errors.js'
import type { Database } from '../schema.js'
import { translate } from '../store-parts.js'

/** The rows of one case open written with nothing to read first (see `caseStore`'s `openCaseRows`). */
export interface OpenRows {
  readonly case: Insertable<Database['cases']>
  readonly events: readonly Insertable<Database['case_events']>[]
  readonly decisions: readonly Insertable<Database['decisions']>[]
  readonly work?: { readonly workItem: Database['work_items']; readonly timer: Database['timers'] } | undefined
  readonly audit: readonly { body: string }[]
  /** The agent the case goes to, which must be active when the statement runs (CaseCommit.requireActiveAgent). */
  readonly agent?: string | undefined
}

/** Case opens per statement at most (≈ 80 parameters each, far below PostgreSQL's 65,535). */
const MAX_GROUP = 64

/**
 * PostgreSQL: the case opens of `opens`, their events, decisions, work items, SLA timers and queued audit bodies in
 * one statement of data-modifying CTEs, one multi-row INSERT per table, atomic on its own. Every agent a case goes to
 * is checked by `baton_require_active_agent` (migration 0007: its row locked FOR SHARE, in id order), which raises
 * when one is not active and so undoes the whole statement. Errors come back translated (`CONFLICT`, …).
 */
export async function openCasesAtOnce(db: Kysely<Database>, opens: readonly OpenRows[]): Promise<void> {
  const all = <R>(pick: (o: OpenRows) => readonly R[]): R[] => opens.flatMap(pick)
  const events = all((o) => o.events)
  const decisions = all((o) => o.decisions)
  const work = all((o) => (o.work === undefined ? [] : [o.work]))
  const audit = all((o) => o.audit)
  const inserts = [
    db.insertInto('cases').values(opens.map((o) => o.case)),
    ...(events.length > 0 ? [db.insertInto('case_events').values(events)] : []),
    ...(decisions.length > 0 ? [db.insertInto('decisions').values(decisions)] : []),
    ...(work.length === 0
      ? []
      : [
          db.insertInto('work_items').values(work.map((w) => w.workItem)),
          db
            .insertInto('timers')
            .values(work.map((w) => w.timer))
            .onConflict((oc) => oc.columns(['kind', 'key']).doNothing()),
        ]),
    ...(audit.length > 0 ? [db.insertInto('audit_queue').values(audit)] : []),
  ]
  const agents = [...new Set(all((o) => (o.agent === undefined ? [] : [o.agent])))].sort()
  const guard =
    agents.length === 0
      ? sql`select 1`
      : sql`select baton_require_active_agent(v.agent) from (values ${sql.join(agents.map((a) => sql`(${a})`))}) as v(agent)`
  try {
    await sql`with ${sql.join(inserts.map((q, i) => sql`${sql.raw(`w${i}`)} as (${q})`))} ${guard}`.execute(db)
  } catch (e) {
    throw translate(e)
  }
}

/** The store itself failed (not one open): no connection, no space. Trying each open alone would only fail again. */
const storeFailed = (e: unknown): boolean => isBatonError(e, 'STORE_UNAVAILABLE') || isBatonError(e, 'STORE_FULL')

/**
 * Group commit of case opens across requests: opens that arrive while a group statement runs are written together by
 * the next one (`write`, at most MAX_GROUP), and each call resolves once its group has committed. When a group is
 * refused (an agent no longer active, an id taken), each of its opens is written again alone, so that one bad open
 * fails alone and the others still commit; when the store itself failed, every open of the group fails with it.
 */
export function groupOpens(write: (opens: readonly OpenRows[]) => Promise<void>): (open: OpenRows) => Promise<void> {
  interface Pending {
    readonly open: OpenRows
    readonly resolve: () => void
    readonly reject: (e: unknown) => void
  }
  let queue: Pending[] = []
  let running = false

  async function writeGroup(group: readonly Pending[]): Promise<void> {
    try {
      await write(group.map((p) => p.open))
      for (const p of group) p.resolve()
      return
    } catch (e) {
      if (group.length === 1 || storeFailed(e)) {
        for (const p of group) p.reject(e)
        return
      }
    }
    await Promise.all(
      group.map((p) =>
        write([p.open]).then(
          () => p.resolve(),
          (e: unknown) => p.reject(e),
        ),
      ),
    )
  }

  async function drain(): Promise<void> {
    // Yield once, so that opens of the same tick join the first group.
    await Promise.resolve()
    while (queue.length > 0) {
      const group = queue.slice(0, MAX_GROUP)
      queue = queue.slice(group.length)
      await writeGroup(group)
    }
    running = false
  }

  return (open) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ open, resolve, reject })
      if (!running) {
        running = true
        void drain()
      }
    })
}

import { sql, type Transaction } from 'kysely'
import { priorityRank, slaDeadline } from '../queues/priority.js'
import { announcesTimer } from './changes.js'
import type { CaseCommit, WorkItem, WorkStore } from './ports.js'
import type { Database } from './schema.js'
import { announceTimerIn, type StoreParts } from './store-parts.js'
import { releaseCapacity, SLA_TIMER, slaTimerKey, takeCapacity, toItem } from './work-items.js'

/** The store half that `commitCase` calls inside its transaction; not part of the port. */
export interface WorkStoreInternals {
  /**
   * Keeps the case's work item in step with the commit, in the commit's transaction: enqueues a case that reaches a
   * human queue (with its SLA timer), requeues it when its queue changes, releases its operator when it leaves.
   */
  syncCaseIn(trx: Transaction<Database>, commit: CaseCommit): Promise<void>
  /**
   * For a new case (`expectedVersion: null`): the work item and SLA timer rows it adds, when writing them needs no
   * read in the transaction (its customer's tier given, no operator's capacity to take). `'none'` when it adds none,
   * `'in-transaction'` when `syncCaseIn` must write them.
   */
  newCaseWork(
    commit: CaseCommit,
  ): { readonly workItem: Database['work_items']; readonly timer: Database['timers'] } | 'none' | 'in-transaction'
}

const DEFAULT_SLA_SECONDS = 30 * 60

/**
 * Queues: a case's work item kept in step with its commits (enqueued with its SLA timer when it reaches a human
 * queue, requeued, released), each queue's SLA and each operator's capacity, and the reads of queues and loads.
 */
export type QueueStore = Pick<
  WorkStore,
  'configureWork' | 'getWorkItem' | 'listQueueItems' | 'queueSummary' | 'operatorLoads'
> &
  WorkStoreInternals

export function queueStore(parts: StoreParts): QueueStore {
  const { db, engine, tx } = parts
  const pg = engine === 'postgres'
  let slaOf = new Map<string, number>()

  /**
   * The work item and SLA timer rows of a case entering the queue its handler names, ranked with `tier`; undefined
   * for a case an AI agent handles.
   */
  function enqueueRows(
    commit: CaseCommit,
    tier: string,
  ): { readonly workItem: Database['work_items']; readonly timer: Database['timers'] } | undefined {
    const c = commit.case
    if (c.handler.kind === 'agent') return undefined
    const queue = c.handler.queue
    const slaSeconds = slaOf.get(queue) ?? DEFAULT_SLA_SECONDS
    const slaDue = slaDeadline(c.stateSince, slaSeconds)
    const risky = Object.values(c.risk).some(Boolean)
    let language = 'und'
    let reason: WorkItem['reason'] = { rules: [], trigger: '', reason: '' }
    for (const e of commit.events) {
      if (e.type === 'message.received') {
        const sig = e.data.signals as { language?: unknown } | undefined
        if (typeof sig?.language === 'string') language = sig.language
      } else if (e.type === 'case.decided' || e.type === 'case.handed_off') {
        const cause = ((e.type === 'case.handed_off' ? e.data.cause : e.data) ?? {}) as {
          rules?: unknown
          trigger?: unknown
          reason?: unknown
          explanation?: { reason?: unknown }[]
        }
        reason = {
          rules: Array.isArray(cause.rules) ? (cause.rules as string[]) : reason.rules,
          trigger: typeof cause.trigger === 'string' ? cause.trigger : reason.trigger,
          reason:
            typeof cause.reason === 'string'
              ? cause.reason
              : typeof cause.explanation?.[0]?.reason === 'string'
                ? cause.explanation[0].reason
                : reason.reason,
        }
      }
    }
    const operatorId = c.handler.kind === 'operator' ? (c.handler.operatorId ?? null) : null
    return {
      workItem: {
        case_id: c.id,
        queue,
        enqueued_at: c.stateSince,
        sla_due: slaDue,
        rank_ms: priorityRank({ slaDueMs: Date.parse(slaDue), tier, risky, breached: false }),
        tier,
        risky: risky ? 1 : 0,
        language,
        reason: JSON.stringify(reason),
        operator_id: operatorId,
        assigned_at: operatorId === null ? null : c.updatedAt,
        breached: 0,
      },
      timer: {
        kind: SLA_TIMER,
        key: slaTimerKey(c.id, c.stateSince),
        due_at: slaDue,
        payload: JSON.stringify({ caseId: c.id, queue, enqueuedAt: c.stateSince }),
        state: 'pending',
        lease_owner: null,
        lease_until: null,
        attempts: 0,
        created_at: c.updatedAt,
        fired_at: null,
        last_error: null,
      },
    }
  }

  async function enqueueIn(trx: Transaction<Database>, commit: CaseCommit): Promise<void> {
    const c = commit.case
    const tier =
      commit.customerTier ??
      (await trx.selectFrom('customers').select('tier').where('id', '=', c.customerId).executeTakeFirst())?.tier ??
      ''
    const rows = enqueueRows(commit, tier)
    if (rows === undefined) return
    if (rows.workItem.operator_id !== null) await takeCapacity(trx, rows.workItem.operator_id)
    await trx.insertInto('work_items').values(rows.workItem).execute()
    await trx
      .insertInto('timers')
      .values(rows.timer)
      .onConflict((oc) => oc.columns(['kind', 'key']).doNothing())
      .execute()
    await announceTimerIn(parts, trx, rows.timer.due_at)
  }

  return {
    newCaseWork(commit) {
      const c = commit.case
      if (c.state !== 'open' || c.handler.kind === 'agent') return 'none'
      if (commit.customerTier === undefined) return 'in-transaction'
      const rows = enqueueRows(commit, commit.customerTier)
      if (rows === undefined) return 'none'
      // an SLA shorter than the wake-up horizon is announced, from the transaction (see TIMER_WAKE_HORIZON_MS)
      return rows.workItem.operator_id === null && !announcesTimer(rows.timer.due_at, new Date())
        ? rows
        : 'in-transaction'
    },
    async syncCaseIn(trx, commit) {
      const c = commit.case
      const human = c.state === 'open' && c.handler.kind !== 'agent'
      if (commit.expectedVersion === null) {
        if (human) await enqueueIn(trx, commit)
        return
      }
      const existing = await trx
        .selectFrom('work_items')
        .selectAll()
        .where('case_id', '=', c.id)
        .$if(pg, (q) => q.forUpdate())
        .executeTakeFirst()
      if (
        human &&
        existing !== undefined &&
        existing.queue === c.handler.queue &&
        existing.enqueued_at === c.stateSince
      ) {
        if (commit.events.some((e) => e.type === 'case.sla_breached') && Number(existing.breached) === 0) {
          await trx
            .updateTable('work_items')
            .set({
              breached: 1,
              rank_ms: priorityRank({
                slaDueMs: Date.parse(existing.sla_due),
                tier: existing.tier,
                risky: Number(existing.risky) === 1,
                breached: true,
              }),
            })
            .where('case_id', '=', c.id)
            .execute()
        }
        return
      }
      if (existing !== undefined) {
        await trx.deleteFrom('work_items').where('case_id', '=', c.id).execute()
        if (existing.operator_id !== null) await releaseCapacity(trx, existing.operator_id)
        await trx
          .updateTable('timers')
          .set({ state: 'cancelled' })
          .where('kind', '=', SLA_TIMER)
          .where('key', '=', slaTimerKey(c.id, existing.enqueued_at))
          .where('state', '=', 'pending')
          .execute()
      }
      if (human) await enqueueIn(trx, commit)
    },

    async configureWork(config) {
      slaOf = new Map(config.queues.map((q) => [q.id, q.slaSeconds]))
      await tx(async (trx) => {
        for (const o of config.operators) {
          await trx
            .insertInto('operator_load')
            .values({ operator_id: o.id, capacity: o.capacity, active: 0 })
            .onConflict((oc) => oc.column('operator_id').doUpdateSet({ capacity: o.capacity }))
            .execute()
        }
        // Another node may be assigning: wait for its transactions and hold new ones off while counting, so the
        // count sees every committed assignment and none lands in between.
        if (pg) await sql`lock table operator_load in share row exclusive mode`.execute(trx)
        await sql`update operator_load set active = (select count(*) from work_items w where w.operator_id = operator_load.operator_id)`.execute(
          trx,
        )
      })
    },
    async getWorkItem(caseId) {
      const r = await db.selectFrom('work_items').selectAll().where('case_id', '=', caseId).executeTakeFirst()
      return r === undefined ? undefined : toItem(r)
    },
    async listQueueItems(queue, o) {
      let q = db.selectFrom('work_items').selectAll().where('queue', '=', queue)
      if (o.operatorId !== undefined) q = q.where('operator_id', '=', o.operatorId)
      else if (o.assigned !== true) q = q.where('operator_id', 'is', null)
      const rows = await q.orderBy('rank_ms').orderBy('case_id').limit(o.limit).execute()
      return rows.map(toItem)
    },
    async queueSummary() {
      const rows = await db
        .selectFrom('work_items')
        .select((eb) => [
          'queue',
          eb.fn.countAll<number>().as('total'),
          eb.fn.count<number>('operator_id').as('assigned'),
          eb.fn.sum<number>('breached').as('breached'),
          sql<string | null>`min(case when operator_id is null then sla_due end)`.as('next_due'),
          sql<string | null>`min(case when operator_id is null then enqueued_at end)`.as('oldest_waiting'),
        ])
        .groupBy('queue')
        .execute()
      const out: Awaited<ReturnType<WorkStore['queueSummary']>> = {}
      for (const r of rows) {
        out[r.queue] = {
          waiting: Number(r.total) - Number(r.assigned),
          assigned: Number(r.assigned),
          breached: Number(r.breached ?? 0),
          nextDue: r.next_due,
          oldestWaiting: r.oldest_waiting,
        }
      }
      return out
    },
    async operatorLoads() {
      const rows = await db.selectFrom('operator_load').selectAll().orderBy('operator_id').execute()
      return rows.map((r) => ({ operatorId: r.operator_id, capacity: Number(r.capacity), active: Number(r.active) }))
    },
  }
}

import { sql, type Transaction } from 'kysely'
import type { AuditEntryBody } from '../audit/entry.js'
import { BatonError } from '../errors.js'
import { priorityRank, slaDeadline } from '../queues/priority.js'
import { announcesTimer } from './changes.js'
import type { Assignment, CaseCommit, WorkItem, WorkStore } from './ports.js'
import type { Database } from './schema.js'
import { announceTimerIn, appendAuditIn, type StoreParts } from './store-parts.js'
import { timerStore } from './timer-store.js'
import { webhookStore } from './webhook-store.js'

export type {
  Assignment,
  OperatorLoad,
  TimerRecord,
  WebhookProgress,
  WebhookRecord,
  WorkItem,
  WorkStore,
} from './ports.js'

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
export const SLA_TIMER = 'sla'

export function slaTimerKey(caseId: string, enqueuedAt: string): string {
  return `${caseId}@${enqueuedAt}`
}

export function workStore(parts: StoreParts): WorkStore & WorkStoreInternals {
  const { db, engine, tx } = parts
  const pg = engine === 'postgres'
  let slaOf = new Map<string, number>()

  function toItem(r: Database['work_items']): WorkItem {
    return {
      caseId: r.case_id,
      queue: r.queue,
      enqueuedAt: r.enqueued_at,
      slaDue: r.sla_due,
      rank: Number(r.rank_ms),
      tier: r.tier,
      risky: Number(r.risky) === 1,
      language: r.language,
      reason: JSON.parse(r.reason) as WorkItem['reason'],
      operatorId: r.operator_id,
      assignedAt: r.assigned_at,
      breached: Number(r.breached) === 1,
    }
  }

  async function takeCapacity(trx: Transaction<Database>, operatorId: string): Promise<void> {
    const r = await trx
      .updateTable('operator_load')
      .set({ active: sql`active + 1` })
      .where('operator_id', '=', operatorId)
      .where(sql<boolean>`active < capacity`)
      .executeTakeFirst()
    if (Number(r.numUpdatedRows) === 1) return
    const known = await trx
      .selectFrom('operator_load')
      .select(['capacity', 'active'])
      .where('operator_id', '=', operatorId)
      .executeTakeFirst()
    if (known === undefined) throw new BatonError('OPERATOR_NOT_FOUND', `no operator '${operatorId}'`)
    throw new BatonError(
      'OPERATOR_AT_CAPACITY',
      `operator '${operatorId}' holds ${known.active} open cases (capacity ${known.capacity})`,
    )
  }

  async function releaseCapacity(trx: Transaction<Database>, operatorId: string): Promise<void> {
    await trx
      .updateTable('operator_load')
      .set({ active: sql`active - 1` })
      .where('operator_id', '=', operatorId)
      .where('active', '>', 0)
      .execute()
  }

  /** Whether any of `ids` has room (after a SKIP LOCKED pick found none: held by concurrent assigners, or full?). */
  async function anyFree(trx: Transaction<Database>, ids: readonly string[]): Promise<boolean> {
    const free = await trx
      .selectFrom('operator_load')
      .select('operator_id')
      .where('operator_id', 'in', ids)
      .where(sql<boolean>`active < capacity`)
      .limit(1)
      .executeTakeFirst()
    return free !== undefined
  }

  /**
   * Names the operator in an open case's handler, marks it owned by a person (`human_owned`) and bumps its event
   * counter; returns the event's case seq.
   */
  async function handCase(trx: Transaction<Database>, caseId: string, operatorId: string, at: string): Promise<number> {
    const handler = pg
      ? sql`(handler::jsonb || jsonb_build_object('operatorId', ${operatorId}::text))::text`
      : sql`json_set(handler, '$.operatorId', ${operatorId})`
    const r = await trx
      .updateTable('cases')
      .set({
        handler: sql`case when handler_kind = 'operator' then ${handler} else handler end`,
        // the operator now holds it because they took it: routing reads case.human_owned
        human_owned: sql`case when handler_kind = 'operator' then 1 else human_owned end`,
        last_event: sql`last_event + 1`,
        version: sql`version + 1`,
        updated_at: at,
      })
      .where('id', '=', caseId)
      .where('state', '=', 'open')
      .returning('last_event')
      .executeTakeFirst()
    if (r === undefined) throw new BatonError('CONFLICT', `case '${caseId}' closed while being assigned`)
    return Number(r.last_event)
  }

  /**
   * Writes assignments onto their cases: the handler of an operator case names its operator (one UPDATE, no read),
   * then one INSERT of the `case.assigned` events and one audit append for them all.
   */
  async function assignIn(
    trx: Transaction<Database>,
    picks: readonly { readonly item: WorkItem; readonly operatorId: string; readonly caseSeq?: number }[],
    at: string,
    actor: { readonly kind: string; readonly id: string },
    how: 'claim' | 'auto',
  ): Promise<Assignment[]> {
    if (picks.length === 0) return []
    const events: { case_id: string; seq: number; type: string; data: string; at: string }[] = []
    const audit: AuditEntryBody[] = []
    for (const { item, operatorId, caseSeq } of picks) {
      const seq = caseSeq ?? (await handCase(trx, item.caseId, operatorId, at))
      const data = { queue: item.queue, operatorId, how, slaDue: item.slaDue, reason: item.reason }
      events.push({ case_id: item.caseId, seq, type: 'case.assigned', data: JSON.stringify(data), at })
      audit.push({
        type: 'case.assigned',
        at,
        caseId: item.caseId,
        actor: { kind: actor.kind, id: actor.id },
        data: { caseSeq: seq, ...data },
      })
    }
    await trx.insertInto('case_events').values(events).execute()
    await appendAuditIn(trx, audit)
    return picks.map(({ item, operatorId }) => ({ item: { ...item, operatorId, assignedAt: at }, operatorId }))
  }

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

  const api: WorkStore & WorkStoreInternals = {
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

    claimCase(input) {
      return tx(async (trx) => {
        const taken = await trx
          .updateTable('work_items')
          .set({ operator_id: input.operatorId, assigned_at: input.at })
          .where('case_id', '=', input.caseId)
          .where('operator_id', 'is', null)
          .returningAll()
          .executeTakeFirst()
        if (taken === undefined) {
          const now = await trx
            .selectFrom('work_items')
            .select(['operator_id', 'queue'])
            .where('case_id', '=', input.caseId)
            .executeTakeFirst()
          if (now === undefined) {
            throw new BatonError('CASE_NOT_QUEUED', `case '${input.caseId}' is not waiting in any queue`)
          }
          throw new BatonError(
            'CASE_ALREADY_ASSIGNED',
            `case '${input.caseId}' is already assigned to operator '${now.operator_id}'`,
          )
        }
        await takeCapacity(trx, input.operatorId)
        const [a] = await assignIn(
          trx,
          [{ item: toItem({ ...taken, operator_id: null, assigned_at: null }), operatorId: input.operatorId }],
          input.at,
          input.actor,
          'claim',
        )
        if (a === undefined) throw new TypeError('assignIn returned nothing for one pick')
        return a
      })
    },

    async assignNext(input) {
      const [first] = await api.assignBatch({ ...input, max: 1 })
      return first
    },

    assignBatch(input) {
      if (!Number.isInteger(input.max) || input.max < 1) throw new TypeError(`max must be ≥ 1, got ${input.max}`)
      return tx(async (trx) => {
        const rows = await trx
          .selectFrom('work_items')
          .selectAll()
          .where('queue', '=', input.queue)
          .where('operator_id', 'is', null)
          .orderBy('rank_ms')
          .orderBy('case_id')
          .limit(input.max + 20)
          .$if(pg, (q) => q.forUpdate().skipLocked())
          .execute()
        const picks: { item: WorkItem; operatorId: string; caseSeq?: number }[] = []
        // Candidate sets known to have no free capacity left in this transaction.
        const full = new Set<string>()
        for (const row of rows) {
          if (picks.length >= input.max) break
          const item = toItem(row)
          const ids = input.candidates(item)
          const key = ids.join('\u0000')
          if (ids.length === 0 || full.has(key)) continue
          if (pg) {
            // One statement per case on PostgreSQL: the operator's capacity, the work item and the case's handler
            // (each step only if the one before it happened), so a batch costs one round trip and plan per case.
            const r = await sql<{ operator_id: string | null; case_id: string | null; last_event: number | null }>`
              with op as (
                update operator_load set active = active + 1
                 where operator_id = (
                   select operator_id from operator_load
                    where operator_id in (${sql.join(ids)}) and active < capacity
                    order by active::float8 / capacity, operator_id
                    limit 1 for update skip locked)
                   and active < capacity
                returning operator_id),
              wi as (
                update work_items set operator_id = op.operator_id, assigned_at = ${input.at} from op
                 where work_items.case_id = ${item.caseId} and work_items.operator_id is null
                returning work_items.case_id, op.operator_id),
              cs as (
                update cases
                   set handler = case when handler_kind = 'operator'
                         then (handler::jsonb || jsonb_build_object('operatorId', wi.operator_id))::text
                         else handler end,
                       human_owned = case when handler_kind = 'operator' then 1 else human_owned end,
                       last_event = last_event + 1, version = version + 1, updated_at = ${input.at}
                  from wi where cases.id = wi.case_id and cases.state = 'open'
                returning cases.last_event)
              select (select operator_id from op) as operator_id, (select case_id from wi) as case_id,
                     (select last_event from cs) as last_event`.execute(trx)
            const row = r.rows[0]
            const operatorId = row?.operator_id ?? undefined
            if (operatorId === undefined) {
              if (picks.length === 0 && (await anyFree(trx, ids))) {
                throw new BatonError('CONFLICT', 'every eligible operator is being assigned now')
              }
              full.add(key)
              continue
            }
            if (row?.case_id == null) throw new BatonError('CONFLICT', `case '${item.caseId}' was taken`)
            if (row.last_event == null) {
              throw new BatonError('CONFLICT', `case '${item.caseId}' closed while being assigned`)
            }
            picks.push({ item, operatorId, caseSeq: Number(row.last_event) })
            continue
          }
          const picked = await sql<{ operator_id: string }>`
            update operator_load set active = active + 1
             where operator_id = (
               select operator_id from operator_load
                where operator_id in (${sql.join(ids)}) and active < capacity
                order by active * 1.0 / capacity, operator_id
                limit 1)
               and active < capacity
            returning operator_id`.execute(trx)
          const operatorId = picked.rows[0]?.operator_id
          if (operatorId === undefined) {
            full.add(key)
            continue
          }
          const r = await trx
            .updateTable('work_items')
            .set({ operator_id: operatorId, assigned_at: input.at })
            .where('case_id', '=', item.caseId)
            .where('operator_id', 'is', null)
            .executeTakeFirst()
          if (Number(r.numUpdatedRows) !== 1) throw new BatonError('CONFLICT', `case '${item.caseId}' was taken`)
          picks.push({ item, operatorId })
        }
        return assignIn(trx, picks, input.at, input.actor, 'auto')
      })
    },

    ...timerStore(parts),
    ...webhookStore(parts),
  }
  return api
}

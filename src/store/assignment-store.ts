import { sql, type Transaction } from 'kysely'
import type { AuditEntryBody } from '../audit/entry.js'
import { BatonError } from '../errors.js'
import type { Assignment, WorkItem, WorkStore } from './ports.js'
import type { Database } from './schema.js'
import { appendAuditIn, type StoreParts } from './store-parts.js'
import { takeCapacity, toItem } from './work-items.js'

/**
 * Assignment: an operator's claim on a waiting case, and the assigner's picks of the least-loaded eligible operator.
 * A case is held by at most one operator and an operator never holds more than their capacity (see `WorkStore`).
 */
export type AssignmentStore = Pick<WorkStore, 'claimCase' | 'assignNext' | 'assignBatch'>

export function assignmentStore(parts: StoreParts): AssignmentStore {
  const { engine, tx } = parts
  const pg = engine === 'postgres'

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

  const api: AssignmentStore = {
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
  }
  return api
}

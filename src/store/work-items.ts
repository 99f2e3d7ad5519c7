import { sql, type Transaction } from 'kysely'
import { BatonError } from '../errors.js'
import type { WorkItem } from './ports.js'
import type { Database } from './schema.js'

// The rows both halves of the work store (queue-store.ts, assignment-store.ts) share: a work item as its queue sees
// it, the SLA timer's key and the operator's load counter (taken and released only by conditional updates, so
// capacity holds under concurrency).

/** The timer kind of a queued case's SLA deadline. */
export const SLA_TIMER = 'sla'

export function slaTimerKey(caseId: string, enqueuedAt: string): string {
  return `${caseId}@${enqueuedAt}`
}

export function toItem(r: Database['work_items']): WorkItem {
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

/** Counts one more open case on the operator; `OPERATOR_NOT_FOUND` or `OPERATOR_AT_CAPACITY` when it cannot. */
export async function takeCapacity(trx: Transaction<Database>, operatorId: string): Promise<void> {
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

export async function releaseCapacity(trx: Transaction<Database>, operatorId: string): Promise<void> {
  await trx
    .updateTable('operator_load')
    .set({ active: sql`active - 1` })
    .where('operator_id', '=', operatorId)
    .where('active', '>', 0)
    .execute()
}

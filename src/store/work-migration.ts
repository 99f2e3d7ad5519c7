import { type Kysely, type Migration, sql } from 'kysely'
import type { Engine } from './ports.js'

/**
 * Migration `0004_work`: operator queues and assignment, durable timers, webhook subscriptions and their delivery
 * state. None of these tables is evidence (the audit log is); they are working state and may be updated.
 */
export function workMigration(engine: Engine): Migration {
  const bigint = engine === 'postgres' ? 'bigint' : 'integer'
  return {
    async up(db: Kysely<unknown>) {
      // One row per open case waiting for (or held by) a human: the queue's view of the case.
      await db.schema
        .createTable('work_items')
        .addColumn('case_id', 'text', (c) => c.primaryKey())
        .addColumn('queue', 'text', (c) => c.notNull())
        .addColumn('enqueued_at', 'text', (c) => c.notNull())
        .addColumn('sla_due', 'text', (c) => c.notNull())
        // Effective deadline in ms since epoch: the SLA deadline pulled forward by tier and risk; lower goes first.
        .addColumn('rank_ms', sql.raw(bigint), (c) => c.notNull())
        .addColumn('tier', 'text', (c) => c.notNull())
        .addColumn('risky', 'integer', (c) => c.notNull())
        .addColumn('language', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('operator_id', 'text')
        .addColumn('assigned_at', 'text')
        .addColumn('breached', 'integer', (c) => c.notNull().defaultTo(0))
        .execute()
      // The waiting cases of a queue in priority order, straight from a partial index (no sort, however long the
      // queue): `operator_id is null` is not an equality, so a plain index on it could not give the order.
      await sql`create index work_items_waiting on work_items (queue, rank_ms, case_id) where operator_id is null`.execute(
        db,
      )
      await db.schema.createIndex('work_items_operator').on('work_items').column('operator_id').execute()
      // Capacity and current load of each operator; `active` moves only by conditional updates (never over capacity).
      await db.schema
        .createTable('operator_load')
        .addColumn('operator_id', 'text', (c) => c.primaryKey())
        .addColumn('capacity', 'integer', (c) => c.notNull())
        .addColumn('active', 'integer', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('timers')
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('due_at', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('lease_owner', 'text')
        .addColumn('lease_until', 'text')
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('fired_at', 'text')
        .addColumn('last_error', 'text')
        .addPrimaryKeyConstraint('timers_pk', ['kind', 'key'])
        .execute()
      await db.schema.createIndex('timers_due').on('timers').columns(['state', 'due_at']).execute()
      await db.schema
        .createTable('webhooks')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('events', 'text', (c) => c.notNull())
        .addColumn('secret', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('deleted_at', 'text')
        // Delivery state: the next audit seq to consider, retries of the event at the cursor, a lease per node.
        .addColumn('cursor', sql.raw(bigint), (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('next_attempt_at', 'text', (c) => c.notNull())
        .addColumn('last_error', 'text')
        .addColumn('lease_owner', 'text')
        .addColumn('lease_until', 'text')
        .addColumn('delivered', sql.raw(bigint), (c) => c.notNull())
        .addColumn('failed', sql.raw(bigint), (c) => c.notNull())
        .execute()
      await db.schema
        .alterTable('cases')
        .addColumn('ai_turns', 'integer', (c) => c.notNull().defaultTo(0))
        .execute()
    },
  }
}

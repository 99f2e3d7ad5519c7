import { type Kysely, sql } from 'kysely'
import type { Engine } from './ports.js'

/**
 * The lean columns of a `decisions` row (migration 0009): a copy of the members of its `data` that the quality
 * figures read, so that they read a few short columns instead of parsing each decision's JSON and its facts (~2 KB).
 * Written in the same INSERT as the row, by every writer of decisions; `data` stays the record. Each column is null
 * where `data` lacks the member or holds it with another type, and reads back as what `historyEventOf` makes of the
 * member in `data` (a missing handler, no rules, trigger '', policy '' and version 0).
 */
export interface DecisionColumns {
  /** `data.handler` as JSON text, when an object. */
  readonly handler: string | null
  /** `data.rules` as JSON text, when an array. */
  readonly rules: string | null
  readonly trigger: string | null
  readonly policy_hash: string | null
  /** `data.policy.version`, when an integer. */
  readonly policy_version: number | null
  readonly message_id: string | null
}

const text = (v: unknown): string | null => (typeof v === 'string' ? v : null)

export function decisionColumns(data: Readonly<Record<string, unknown>>): DecisionColumns {
  const policy = data.policy
  const p = policy !== null && typeof policy === 'object' ? (policy as Record<string, unknown>) : {}
  const handler = data.handler
  return {
    handler:
      handler !== null && typeof handler === 'object' && !Array.isArray(handler) ? JSON.stringify(handler) : null,
    rules: Array.isArray(data.rules) ? JSON.stringify(data.rules) : null,
    trigger: text(data.trigger),
    policy_hash: text(p.hash),
    // an int4 column on PostgreSQL: a version outside it (none a policy document allows) reads as no version
    policy_version:
      typeof p.version === 'number' && Number.isInteger(p.version) && Math.abs(p.version) < 2 ** 31 ? p.version : null,
    message_id: text(data.messageId),
  }
}

const COLUMNS = [
  ['handler', 'text'],
  ['rules', 'text'],
  ['trigger', 'text'],
  ['policy_hash', 'text'],
  ['policy_version', 'integer'],
  ['message_id', 'text'],
] as const

/**
 * Migration `0009_decision_columns`: the lean columns, and each existing row's filled from its data
 * (`backfillDecisionColumns`).
 */
export function decisionColumnsMigration(engine: Engine) {
  return {
    async up(db: Kysely<unknown>) {
      if (engine === 'sqlite') {
        // SQLite's migrations run outside a transaction (kysely): this one is a transaction of its own
        await db.transaction().execute(async (trx) => {
          for (const [name, type] of COLUMNS) await trx.schema.alterTable('decisions').addColumn(name, type).execute()
          await backfillDecisionColumns(trx, engine)
        })
      } else {
        for (const [name, type] of COLUMNS) await db.schema.alterTable('decisions').addColumn(name, type).execute()
        await backfillDecisionColumns(db, engine)
      }
    },
  }
}

/**
 * Fills the lean columns of every decision row from its data in one UPDATE, giving what `decisionColumns` gives (a
 * test compares them). The append-only trigger is lifted for it and put back; run it inside a transaction.
 */
export async function backfillDecisionColumns(db: Kysely<unknown>, engine: Engine): Promise<void> {
  if (engine === 'sqlite') {
    const member = (path: string, type: string) =>
      `case when json_type(data, '${path}') = '${type}' then json_extract(data, '${path}') end`
    await sql`drop trigger decisions_no_update`.execute(db)
    await sql
      .raw(
        `update decisions set
           handler = ${member('$.handler', 'object')},
           rules = ${member('$.rules', 'array')},
           trigger = ${member('$.trigger', 'text')},
           policy_hash = ${member('$.policy.hash', 'text')},
           policy_version = case when json_type(data, '$.policy.version') = 'integer'
             and abs(json_extract(data, '$.policy.version')) < 2147483648
             then json_extract(data, '$.policy.version') end,
           message_id = ${member('$.messageId', 'text')}`,
      )
      .execute(db)
    await sql
      .raw(
        `create trigger decisions_no_update before update on decisions begin select raise(abort, 'decisions is append-only'); end`,
      )
      .execute(db)
    return
  }
  await sql`alter table decisions disable trigger decisions_append_only`.execute(db)
  // json, not jsonb: the handler's and rules' text stays as written
  await sql
    .raw(
      `update decisions set (handler, rules, trigger, policy_hash, policy_version, message_id) = (
         select case when json_typeof(j -> 'handler') = 'object' then (j -> 'handler')::text end,
           case when json_typeof(j -> 'rules') = 'array' then (j -> 'rules')::text end,
           case when json_typeof(j -> 'trigger') = 'string' then j ->> 'trigger' end,
           case when json_typeof(j -> 'policy' -> 'hash') = 'string' then j -> 'policy' ->> 'hash' end,
           case when json_typeof(j -> 'policy' -> 'version') = 'number'
             and (j -> 'policy' ->> 'version') ~ '^-?[0-9]{1,10}$'
             and abs((j -> 'policy' ->> 'version')::bigint) < 2147483648
             then (j -> 'policy' ->> 'version')::integer end,
           case when json_typeof(j -> 'messageId') = 'string' then j ->> 'messageId' end
         from (select decisions.data::json as j) x)`,
    )
    .execute(db)
  await sql`alter table decisions enable trigger decisions_append_only`.execute(db)
}

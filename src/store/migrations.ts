import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely'
import { authorityMigration } from './authority-migration.js'
import { decisionColumnsMigration } from './decision-columns.js'
import { delegationMigration } from './delegation-migration.js'
import type { Engine } from './ports.js'
import { workMigration } from './work-migration.js'

/**
 * Migrations for both engines. The column types differ only where the engines do (blob vs bytea, bigint); the
 * append-only guarantees are enforced by each engine's own triggers so that not even Baton's own code can rewrite
 * history.
 */
function migrations(engine: Engine): Record<string, Migration> {
  const bytes = engine === 'postgres' ? 'bytea' : 'blob'
  const bigint = engine === 'postgres' ? 'bigint' : 'integer'
  return {
    '0001_core': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('api_keys')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull().unique())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('revoked_at', 'text')
          .execute()
        await db.schema
          .createTable('customers')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tier', 'text', (c) => c.notNull())
          .addColumn('verified', 'integer', (c) => c.notNull())
          .addColumn('attributes', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute()
        await db.schema
          .createTable('cases')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('customer_id', 'text', (c) => c.notNull())
          .addColumn('channel', 'text', (c) => c.notNull())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('handler', 'text', (c) => c.notNull())
          .addColumn('handler_kind', 'text', (c) => c.notNull())
          .addColumn('queue', 'text')
          .addColumn('handoffs', 'integer', (c) => c.notNull())
          .addColumn('messages', 'integer', (c) => c.notNull())
          .addColumn('risk', 'text', (c) => c.notNull())
          .addColumn('first_text', 'text', (c) => c.notNull())
          .addColumn('last_event', 'integer', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addColumn('state_since', 'text', (c) => c.notNull())
          .execute()
        await db.schema.createIndex('cases_customer_state').on('cases').columns(['customer_id', 'state']).execute()
        await db.schema.createIndex('cases_queue_state').on('cases').columns(['queue', 'state']).execute()
        await db.schema
          .createTable('case_events')
          .addColumn('case_id', 'text', (c) => c.notNull())
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .addColumn('at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('case_events_pk', ['case_id', 'seq'])
          .execute()
        await db.schema
          .createTable('decisions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('case_id', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('outcome', 'text', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .addColumn('at', 'text', (c) => c.notNull())
          .execute()
        await db.schema.createIndex('decisions_case').on('decisions').columns(['case_id', 'at']).execute()
        await db.schema
          .createTable('policies')
          .addColumn('hash', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('owner', 'text', (c) => c.notNull())
          .addColumn('file', 'text', (c) => c.notNull())
          .addColumn('source', 'text', (c) => c.notNull())
          .addColumn('loaded_at', 'text', (c) => c.notNull())
          .execute()
        await db.schema
          .createTable('audit_entries')
          .addColumn('seq', sql.raw(bigint), (c) => c.primaryKey())
          .addColumn('entry', 'text', (c) => c.notNull())
          .addColumn('leaf_hash', sql.raw(bytes), (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute()
        await db.schema
          .createTable('audit_state')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('next_seq', sql.raw(bigint), (c) => c.notNull())
          .execute()
        await sql`insert into audit_state (id, next_seq) values (1, 0)`.execute(db)
        await db.schema
          .createTable('kv')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .execute()
        // History is append-only: the engine itself refuses to rewrite it.
        for (const table of ['audit_entries', 'case_events', 'decisions']) {
          if (engine === 'sqlite') {
            await sql
              .raw(
                `create trigger ${table}_no_update before update on ${table} begin select raise(abort, '${table} is append-only'); end`,
              )
              .execute(db)
            await sql
              .raw(
                `create trigger ${table}_no_delete before delete on ${table} begin select raise(abort, '${table} is append-only'); end`,
              )
              .execute(db)
          } else {
            await sql
              .raw(
                `create or replace function baton_append_only() returns trigger language plpgsql as $$ begin raise exception '% is append-only', TG_TABLE_NAME using errcode = 'insufficient_privilege'; end $$`,
              )
              .execute(db)
            await sql
              .raw(
                `create trigger ${table}_append_only before update or delete on ${table} for each row execute function baton_append_only()`,
              )
              .execute(db)
            await sql
              .raw(
                `create trigger ${table}_no_truncate before truncate on ${table} for each statement execute function baton_append_only()`,
              )
              .execute(db)
          }
        }
      },
    },
    '0002_audit_tree': {
      async up(db: Kysely<unknown>) {
        // Complete subtrees of level ≥ 1 (level 0 is audit_entries.leaf_hash): proofs cost O(log n) reads.
        await db.schema
          .createTable('audit_nodes')
          .addColumn('level', 'integer', (c) => c.notNull())
          .addColumn('idx', sql.raw(bigint), (c) => c.notNull())
          .addColumn('hash', sql.raw(bytes), (c) => c.notNull())
          .addPrimaryKeyConstraint('audit_nodes_pk', ['level', 'idx'])
          .execute()
        await db.schema
          .createTable('audit_heads')
          .addColumn('size', sql.raw(bigint), (c) => c.primaryKey())
          .addColumn('root', sql.raw(bytes), (c) => c.notNull())
          .addColumn('timestamp', 'text', (c) => c.notNull())
          .addColumn('key_id', 'text', (c) => c.notNull())
          .addColumn('signature', sql.raw(bytes), (c) => c.notNull())
          .execute()
        await db.schema
          .createTable('audit_keys')
          .addColumn('key_id', 'text', (c) => c.primaryKey())
          .addColumn('public_key', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('retired_at', 'text')
          .execute()
        // Which entries name which case, for GET /v1/cases/{id}/audit; an index, not evidence (verify reads entries).
        await db.schema
          .createTable('audit_case_entries')
          .addColumn('case_id', 'text', (c) => c.notNull())
          .addColumn('seq', sql.raw(bigint), (c) => c.notNull())
          .addPrimaryKeyConstraint('audit_case_entries_pk', ['case_id', 'seq'])
          .execute()
        const caseIdOf = engine === 'postgres' ? sql`(entry::jsonb ->> 'caseId')` : sql`json_extract(entry, '$.caseId')`
        await sql`insert into audit_case_entries (case_id, seq) select ${caseIdOf}, seq from audit_entries where ${caseIdOf} is not null`.execute(
          db,
        )
        for (const table of ['audit_nodes', 'audit_heads', 'audit_case_entries']) {
          if (engine === 'sqlite') {
            await sql
              .raw(
                `create trigger ${table}_no_update before update on ${table} begin select raise(abort, '${table} is append-only'); end`,
              )
              .execute(db)
            await sql
              .raw(
                `create trigger ${table}_no_delete before delete on ${table} begin select raise(abort, '${table} is append-only'); end`,
              )
              .execute(db)
          } else {
            await sql
              .raw(
                `create trigger ${table}_append_only before update or delete on ${table} for each row execute function baton_append_only()`,
              )
              .execute(db)
            await sql
              .raw(
                `create trigger ${table}_no_truncate before truncate on ${table} for each statement execute function baton_append_only()`,
              )
              .execute(db)
          }
        }
        // A public key is never deleted or changed; the only update allowed is setting retired_at, once.
        if (engine === 'sqlite') {
          await sql
            .raw(
              `create trigger audit_keys_no_delete before delete on audit_keys begin select raise(abort, 'audit_keys is append-only'); end`,
            )
            .execute(db)
          await sql
            .raw(
              `create trigger audit_keys_retire_only before update on audit_keys when old.retired_at is not null or new.retired_at is null or new.key_id is not old.key_id or new.public_key is not old.public_key or new.created_at is not old.created_at begin select raise(abort, 'audit_keys is append-only: only retired_at may be set, once'); end`,
            )
            .execute(db)
        } else {
          await sql
            .raw(
              `create or replace function baton_audit_keys_retire_only() returns trigger language plpgsql as $$ begin
                 if TG_OP = 'DELETE' or old.retired_at is not null or new.retired_at is null
                    or new.key_id is distinct from old.key_id or new.public_key is distinct from old.public_key
                    or new.created_at is distinct from old.created_at then
                   raise exception 'audit_keys is append-only: only retired_at may be set, once' using errcode = 'insufficient_privilege';
                 end if;
                 return new;
               end $$`,
            )
            .execute(db)
          await sql
            .raw(
              'create trigger audit_keys_retire_only before update or delete on audit_keys for each row execute function baton_audit_keys_retire_only()',
            )
            .execute(db)
          await sql
            .raw(
              'create trigger audit_keys_no_truncate before truncate on audit_keys for each statement execute function baton_append_only()',
            )
            .execute(db)
        }
      },
    },
    '0003_authority': authorityMigration(),
    '0004_work': workMigration(engine),
    // PostgreSQL's audit intake queue (see audit-queue.ts): bodies wait here, written by the transactions that
    // produced them, until the drainer sequences them into audit_entries. SQLite appends directly and has no queue.
    '0005_audit_queue': {
      async up(db: Kysely<unknown>) {
        if (engine !== 'postgres') return
        await sql`create table audit_queue (id bigserial primary key, body text not null)`.execute(db)
      },
    },
    // One-time ids shared by every node and kept across restarts: a client assertion's jti once used, a console
    // session once signed out. Kept until the id's own expiry (`expires_at`), then pruned.
    '0006_spent_ids': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('spent_ids')
          .addColumn('scope', 'text', (c) => c.notNull())
          .addColumn('id', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('spent_ids_pk', ['scope', 'id'])
          .execute()
        await db.schema.createIndex('spent_ids_expiry').on('spent_ids').column('expires_at').execute()
      },
    },
    // PostgreSQL opens a case in one statement (case-store.ts, openCaseAtOnce); one opened to an agent calls this
    // in the same statement: it locks the agent's row FOR SHARE (so a suspension waits for the open, or the open
    // sees the suspension) and raises when the agent is not active, undoing the statement. SQLite checks in its
    // transaction (a single writer) and needs nothing.
    '0007_agent_guard': {
      async up(db: Kysely<unknown>) {
        if (engine !== 'postgres') return
        await sql
          .raw(
            `create or replace function baton_require_active_agent(agent text) returns integer language plpgsql as $$
begin
  perform 1 from agents where id = agent and state = 'active' for share;
  if not found then
    raise exception 'baton: agent ''%'' is no longer active', agent using errcode = 'object_not_in_prerequisite_state';
  end if;
  return 1;
end $$`,
          )
          .execute(db)
      },
    },
    '0008_delegation': delegationMigration(),
    '0009_decision_columns': decisionColumnsMigration(engine),
    // Whether a person holds the case because they took it (takeover, claim, assignment): routing reads it as
    // `case.human_owned`. 0 for every existing case, as their decisions read it (absent facts read false).
    '0010_human_owned': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .alterTable('cases')
          .addColumn('human_owned', 'integer', (c) => c.notNull().defaultTo(0))
          .execute()
      },
    },
    '0011_case_folds': {
      // Each case's history folded for the quality figures (src/quality/fold-codec.ts): a derived copy, rewritten as
      // the case changes and read only when it is through the case's last event, so never a source of truth.
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('case_folds')
          .addColumn('case_id', 'text', (c) => c.primaryKey())
          .addColumn('through', 'integer', (c) => c.notNull())
          .addColumn('fold', 'integer', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .execute()
      },
    },
  }
}

class StaticProvider implements MigrationProvider {
  readonly #engine: Engine
  constructor(engine: Engine) {
    this.#engine = engine
  }
  async getMigrations(): Promise<Record<string, Migration>> {
    const all = migrations(this.#engine)
    if (this.#engine !== 'postgres') return all
    // A migration may rewrite a large table: the sessions' statement_timeout (for requests) does not apply to it.
    return Object.fromEntries(
      Object.entries(all).map(([name, m]) => [
        name,
        {
          async up(db: Kysely<unknown>) {
            await sql`set local statement_timeout = 0`.execute(db)
            await m.up(db)
          },
        },
      ]),
    )
  }
}

export async function migrateToLatest(db: Kysely<unknown>, engine: Engine): Promise<void> {
  const migrator = new Migrator({ db, provider: new StaticProvider(engine), migrationTableName: 'baton_migrations' })
  const { error, results } = await migrator.migrateToLatest()
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')
    throw new Error(`migration ${failed?.migrationName ?? '?'} failed`, { cause: error })
  }
}

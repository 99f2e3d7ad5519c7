import type { Kysely, Migration } from 'kysely'

/**
 * Migration `0008_delegation`: customers' own AI agents (`delegates`), the grants customers give them (`grants`,
 * sub-delegations pointing at their parent), the confirmations customers give actions (`confirmations`), and who
 * asked for an action (`actions.requester_kind`, `actions.grant_id`). These are working state, revoked or settled
 * in place like approvals; their history is the audit log, which records every change in the same transaction.
 */
export function delegationMigration(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('delegates')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('vendor', 'text', (c) => c.notNull())
        .addColumn('contact', 'text', (c) => c.notNull())
        .addColumn('public_jwk', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('grants')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('delegate_id', 'text', (c) => c.notNull())
        .addColumn('parent_id', 'text')
        .addColumn('depth', 'integer', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('limits', 'text', (c) => c.notNull())
        .addColumn('may_subdelegate', 'integer', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('granted_by_kind', 'text', (c) => c.notNull())
        .addColumn('granted_by_id', 'text', (c) => c.notNull())
        .addColumn('note', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .addColumn('revoked_by', 'text')
        .addColumn('revoke_reason', 'text')
        .execute()
      await db.schema.createIndex('grants_customer').on('grants').columns(['customer_id', 'created_at']).execute()
      await db.schema.createIndex('grants_delegate').on('grants').columns(['delegate_id', 'created_at']).execute()
      await db.schema.createIndex('grants_parent').on('grants').column('parent_id').execute()
      await db.schema
        .createTable('confirmations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('case_id', 'text', (c) => c.notNull())
        .addColumn('action_id', 'text', (c) => c.notNull())
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('tool', 'text', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('requester_kind', 'text', (c) => c.notNull())
        .addColumn('requester', 'text', (c) => c.notNull())
        .addColumn('grant_id', 'text')
        .addColumn('rule', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('case_epoch', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('decided_by', 'text')
        .addColumn('decided_at', 'text')
        .addColumn('reason', 'text')
        .execute()
      await db.schema.createIndex('confirmations_state').on('confirmations').columns(['state', 'created_at']).execute()
      await db.schema
        .createIndex('confirmations_customer')
        .on('confirmations')
        .columns(['customer_id', 'created_at'])
        .execute()
      await db.schema
        .alterTable('actions')
        .addColumn('requester_kind', 'text', (c) => c.notNull().defaultTo('agent'))
        .execute()
      await db.schema.alterTable('actions').addColumn('grant_id', 'text').execute()
    },
  }
}

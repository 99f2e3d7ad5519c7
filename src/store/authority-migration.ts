import type { Kysely, Migration } from 'kysely'

/**
 * Migration `0003_authority`: the case's authority epoch, operator and agent principals, agent credentials, the
 * credentials Baton minted, actions and approvals.
 */
export function authorityMigration(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      // The case's authority epoch: every credential carries the epoch it was issued at and stops working once
      // the case's epoch moves (handoff, risk rise, close, agent suspension). Maintained by the store only.
      await db.schema
        .alterTable('cases')
        .addColumn('authority_epoch', 'integer', (c) => c.notNull().defaultTo(0))
        .execute()
      // An operator key may name the operator principal it belongs to (approvals need the person's roles).
      await db.schema.alterTable('api_keys').addColumn('principal_id', 'text').execute()
      await db.schema
        .createTable('operators')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('roles', 'text', (c) => c.notNull())
        .addColumn('skills', 'text', (c) => c.notNull())
        .addColumn('languages', 'text', (c) => c.notNull())
        .addColumn('capacity', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('agents')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('purpose', 'text', (c) => c.notNull())
        .addColumn('model', 'text', (c) => c.notNull())
        .addColumn('tools', 'text', (c) => c.notNull())
        .addColumn('closure', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('reviewed_at', 'text')
        .addColumn('reviewed_by', 'text')
        .execute()
      await db.schema
        .createTable('agent_credentials')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('public_jwk', 'text')
        .addColumn('secret_hash', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .execute()
      await db.schema.createIndex('agent_credentials_agent').on('agent_credentials').column('agent_id').execute()
      await db.schema
        .createTable('issued_credentials')
        .addColumn('jti', 'text', (c) => c.primaryKey())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('case_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('tools', 'text', (c) => c.notNull())
        .addColumn('epoch', 'integer', (c) => c.notNull())
        .addColumn('issued_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute()
      await db.schema
        .createIndex('issued_credentials_agent')
        .on('issued_credentials')
        .columns(['agent_id', 'expires_at'])
        .execute()
      await db.schema
        .createTable('actions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('case_id', 'text', (c) => c.notNull())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('tool', 'text', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('params_digest', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('decision_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('result_status', 'integer')
        .addColumn('result_digest', 'text')
        .addColumn('error', 'text')
        .execute()
      await db.schema.createIndex('actions_agent').on('actions').columns(['agent_id', 'created_at']).execute()
      await db.schema.createIndex('actions_case').on('actions').column('case_id').execute()
      await db.schema
        .createTable('approvals')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('case_id', 'text', (c) => c.notNull())
        .addColumn('action_id', 'text', (c) => c.notNull())
        .addColumn('tool', 'text', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('requester', 'text', (c) => c.notNull())
        .addColumn('approver_role', 'text', (c) => c.notNull())
        .addColumn('queue', 'text', (c) => c.notNull())
        .addColumn('rule', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('case_epoch', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('decided_by', 'text')
        .addColumn('decided_at', 'text')
        .addColumn('reason', 'text')
        .execute()
      await db.schema.createIndex('approvals_state').on('approvals').columns(['state', 'created_at']).execute()
    },
  }
}

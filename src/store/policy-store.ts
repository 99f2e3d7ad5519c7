import { type Kysely, type Selectable, sql, type Transaction } from 'kysely'
import { admitPolicyVersion } from '../policy/versions.js'
import type { PolicyStore, PolicyVersionRecord } from './ports.js'
import type { Database } from './schema.js'
import { appendAuditIn, type StoreParts } from './store-parts.js'

/** Policy versions. An activation tells every node, from inside its transaction, that a new version is in force. */
export function policyStore({ db, engine, tx, notifyIn }: StoreParts): PolicyStore {
  return {
    async activatePolicyVersion(p, audit) {
      return tx(async (trx) => {
        // Serialises activations across nodes for the length of this transaction; SQLite has one writer anyway.
        if (engine === 'postgres') await sql`select pg_advisory_xact_lock(${POLICY_LOCK})`.execute(trx)
        const row = await newestPolicyIn(trx)
        const newest = row === undefined ? undefined : toPolicyVersion(row)
        const verdict = admitPolicyVersion(newest, p)
        if (verdict === 'unchanged' && newest !== undefined) return { outcome: 'unchanged', newest }
        if (verdict === 'conflict' && newest !== undefined) return { outcome: 'conflict', newest }
        await trx
          .insertInto('policies')
          .values({
            hash: p.hash,
            name: p.name,
            version: p.version,
            owner: p.owner,
            file: p.file,
            source: p.source,
            loaded_at: p.loadedAt,
          })
          .execute()
        await appendAuditIn(trx, [audit])
        await notifyIn(trx, 'policy', String(p.version))
        return { outcome: 'activated', newest: p }
      })
    },
    async newestPolicyVersion() {
      const row = await newestPolicyIn(db)
      return row === undefined ? undefined : toPolicyVersion(row)
    },
    async listPolicyVersions() {
      const rows = await db.selectFrom('policies').selectAll().orderBy('loaded_at').execute()
      return rows.map(toPolicyVersion)
    },
  }
}

/** Transaction advisory lock id of policy activation: the bytes of "batonpol" as a signed 64-bit integer. */
const POLICY_LOCK = 0x6261746f6e706f6cn

function newestPolicyIn(db: Kysely<Database> | Transaction<Database>) {
  return db
    .selectFrom('policies')
    .selectAll()
    .orderBy('version', 'desc')
    .orderBy('loaded_at', 'desc')
    .limit(1)
    .executeTakeFirst()
}

function toPolicyVersion(r: Selectable<Database['policies']>): PolicyVersionRecord {
  return {
    hash: r.hash,
    name: r.name,
    version: Number(r.version),
    owner: r.owner,
    file: r.file,
    source: r.source,
    loadedAt: r.loaded_at,
  }
}

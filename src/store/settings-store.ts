import type { ApiKeyRecord, Role, SettingsStore } from './ports.js'
import type { Database } from './schema.js'
import { appendAuditIn, type StoreParts, spendOnceIn, statementCache } from './store-parts.js'

const PRUNE_EVERY_MS = 60_000

/** API keys, settings (`kv`) and one-time ids. */
export function settingsStore({ db, tx, notifyIn }: StoreParts): SettingsStore {
  const statement = statementCache()
  // expired one-time ids are deleted at most once a minute per store, by the next spendOnce
  let lastPrune = 0
  return {
    async createKey(key, audit) {
      await tx(async (trx) => {
        await trx
          .insertInto('api_keys')
          .values({
            id: key.id,
            name: key.name,
            role: key.role,
            hash: key.hash,
            created_at: key.createdAt,
            revoked_at: key.revokedAt,
            principal_id: key.principalId ?? null,
          })
          .execute()
        await appendAuditIn(trx, [audit])
      })
    },
    async revokeKey(id, at, audit) {
      return tx(async (trx) => {
        const r = await trx
          .updateTable('api_keys')
          .set({ revoked_at: at })
          .where('id', '=', id)
          .where('revoked_at', 'is', null)
          .executeTakeFirst()
        if (Number(r.numUpdatedRows) === 0) return false
        await appendAuditIn(trx, [audit])
        // every node's key cache forgets the key once this commits (identity/key-cache.ts)
        await notifyIn(trx, 'keys', id)
        return true
      })
    },
    async findKeyByHash(hash) {
      const { rows } = await db.executeQuery(
        statement('key by hash', () => db.selectFrom('api_keys').selectAll().where('hash', '=', hash), [hash]),
      )
      const r = rows[0]
      return r ? toKey(r) : undefined
    },
    async listKeys() {
      const rows = await db.selectFrom('api_keys').selectAll().orderBy('created_at').execute()
      return rows.map(toKey)
    },
    async countKeys(role) {
      const r = await db
        .selectFrom('api_keys')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('role', '=', role)
        .where('revoked_at', 'is', null)
        .executeTakeFirstOrThrow()
      return Number(r.n)
    },

    async getSetting(key) {
      const r = await db.selectFrom('kv').select('value').where('key', '=', key).executeTakeFirst()
      return r?.value
    },
    async claimSetting(key, value) {
      return tx(async (trx) => {
        await trx
          .insertInto('kv')
          .values({ key, value })
          .onConflict((oc) => oc.column('key').doNothing())
          .execute()
        const r = await trx.selectFrom('kv').select('value').where('key', '=', key).executeTakeFirstOrThrow()
        return r.value
      })
    },
    async spendOnce(scope, id, expiresAt) {
      const now = new Date()
      // Durable before it answers (through `tx`): a replay refused here must stay refused after a crash.
      const inserted = await tx(async (trx) => {
        if (now.getTime() - lastPrune >= PRUNE_EVERY_MS) {
          lastPrune = now.getTime()
          await trx.deleteFrom('spent_ids').where('expires_at', '<', now.toISOString()).execute()
        }
        return spendOnceIn(trx, scope, id, expiresAt, now)
      })
      return inserted
    },
    async isSpent(scope, id) {
      const r = await db
        .selectFrom('spent_ids')
        .select('expires_at')
        .where('scope', '=', scope)
        .where('id', '=', id)
        .executeTakeFirst()
      return r !== undefined && r.expires_at > new Date().toISOString()
    },
    async putSetting(key, value) {
      // Through `tx`, so that it is durable before it resolves (signing keys and session secrets live here).
      await tx((trx) =>
        trx
          .insertInto('kv')
          .values({ key, value })
          .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
          .execute(),
      )
    },
  }
}

function toKey(r: Database['api_keys']): ApiKeyRecord {
  return {
    id: r.id,
    name: r.name,
    role: r.role as Role,
    hash: r.hash,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
    ...(r.principal_id ? { principalId: r.principal_id } : {}),
  }
}

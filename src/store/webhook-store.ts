import type { WebhookRecord, WorkStore } from './ports.js'
import type { Database } from './schema.js'
import { appendAuditIn, type StoreParts } from './store-parts.js'

/** Webhook subscriptions and their delivery progress, leased by one node at a time. */
export type WebhookStore = Pick<
  WorkStore,
  | 'createWebhook'
  | 'listWebhooks'
  | 'getWebhook'
  | 'deleteWebhook'
  | 'leaseDueWebhooks'
  | 'saveWebhookProgress'
  | 'releaseWebhook'
>

export function webhookStore({ db, engine, tx }: StoreParts): WebhookStore {
  const pg = engine === 'postgres'
  return {
    async createWebhook(h, audit) {
      await tx(async (trx) => {
        await trx
          .insertInto('webhooks')
          .values({
            id: h.id,
            url: h.url,
            events: JSON.stringify(h.events),
            secret: h.secret,
            created_at: h.createdAt,
            deleted_at: null,
            cursor: h.cursor,
            attempts: 0,
            next_attempt_at: h.nextAttemptAt,
            last_error: null,
            lease_owner: null,
            lease_until: null,
            delivered: 0,
            failed: 0,
          })
          .execute()
        await appendAuditIn(trx, [audit])
      })
    },
    async listWebhooks() {
      const rows = await db
        .selectFrom('webhooks')
        .selectAll()
        .where('deleted_at', 'is', null)
        .orderBy('created_at')
        .orderBy('id')
        .execute()
      return rows.map(toHook)
    },
    async getWebhook(id) {
      const r = await db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst()
      return r === undefined ? undefined : toHook(r)
    },
    deleteWebhook(id, at, audit) {
      return tx(async (trx) => {
        const r = await trx
          .updateTable('webhooks')
          .set({ deleted_at: at })
          .where('id', '=', id)
          .where('deleted_at', 'is', null)
          .executeTakeFirst()
        if (Number(r.numUpdatedRows) !== 1) return false
        await appendAuditIn(trx, [audit])
        return true
      })
    },
    leaseDueWebhooks(now, owner, leaseUntil) {
      return tx(async (trx) => {
        const due = await trx
          .selectFrom('webhooks')
          .selectAll()
          .where('deleted_at', 'is', null)
          .where('next_attempt_at', '<=', now)
          .where((eb) =>
            eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now), eb('lease_owner', '=', owner)]),
          )
          .$if(pg, (q) => q.forUpdate().skipLocked())
          .execute()
        const out: WebhookRecord[] = []
        for (const h of due) {
          const r = await trx
            .updateTable('webhooks')
            .set({ lease_owner: owner, lease_until: leaseUntil })
            .where('id', '=', h.id)
            .where((eb) =>
              eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now), eb('lease_owner', '=', owner)]),
            )
            .executeTakeFirst()
          if (Number(r.numUpdatedRows) === 1) out.push(toHook(h))
        }
        return out
      })
    },
    async saveWebhookProgress(id, owner, p) {
      const r = await db
        .updateTable('webhooks')
        .set({
          cursor: p.cursor,
          attempts: p.attempts,
          next_attempt_at: p.nextAttemptAt,
          last_error: p.lastError,
          delivered: p.delivered,
          failed: p.failed,
          ...(p.leaseUntil === undefined ? {} : { lease_until: p.leaseUntil }),
        })
        .where('id', '=', id)
        .where('lease_owner', '=', owner)
        .executeTakeFirst()
      return Number(r.numUpdatedRows) === 1
    },
    async releaseWebhook(id, owner) {
      await db
        .updateTable('webhooks')
        .set({ lease_owner: null, lease_until: null })
        .where('id', '=', id)
        .where('lease_owner', '=', owner)
        .execute()
    },
  }
}

function toHook(r: Database['webhooks']): WebhookRecord {
  return {
    id: r.id,
    url: r.url,
    events: JSON.parse(r.events) as string[],
    secret: r.secret,
    createdAt: r.created_at,
    deletedAt: r.deleted_at,
    cursor: Number(r.cursor),
    attempts: Number(r.attempts),
    nextAttemptAt: r.next_attempt_at,
    lastError: r.last_error,
    delivered: Number(r.delivered),
    failed: Number(r.failed),
  }
}

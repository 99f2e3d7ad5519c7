import { sql } from 'kysely'
import type { TimerRecord, WorkStore } from './ports.js'
import type { Database } from './schema.js'
import { announceTimerIn, type StoreParts } from './store-parts.js'

/** Durable timers: scheduled with a change or on their own, leased by one node when due, retried on failure. */
export type TimerStore = Pick<
  WorkStore,
  'scheduleTimer' | 'cancelTimer' | 'getTimer' | 'leaseDueTimers' | 'completeTimer' | 'failTimer' | 'nextTimerDue'
>

/** Pending timers `nextTimerDue` looks at, earliest due first. */
const NEXT_DUE_WINDOW = 20

export function timerStore(parts: StoreParts): TimerStore {
  const { db, engine, tx } = parts
  const pg = engine === 'postgres'
  return {
    async scheduleTimer(kind, key, dueAt, payload) {
      const text = JSON.stringify(payload)
      await tx(async (trx) => {
        await trx
          .insertInto('timers')
          .values({
            kind,
            key,
            due_at: dueAt,
            payload: text,
            state: 'pending',
            lease_owner: null,
            lease_until: null,
            attempts: 0,
            created_at: new Date().toISOString(),
            fired_at: null,
            last_error: null,
          })
          .onConflict((oc) =>
            oc
              .columns(['kind', 'key'])
              .doUpdateSet({ due_at: dueAt, payload: text })
              .where('timers.state', '=', 'pending'),
          )
          .execute()
        await announceTimerIn(parts, trx, dueAt)
      })
    },
    async nextTimerDue(kinds) {
      if (kinds.length === 0) return undefined
      // The earliest pending timers by due time (the timers_due index): leased ones (past due, run or abandoned by
      // their holder) become leasable again when their lease ends.
      const rows = await db
        .selectFrom('timers')
        .select(['due_at', 'lease_until'])
        .where('state', '=', 'pending')
        .where('kind', 'in', kinds)
        .orderBy('due_at')
        .limit(NEXT_DUE_WINDOW)
        .execute()
      let next: string | undefined
      for (const r of rows) {
        const at = r.lease_until !== null && r.lease_until > r.due_at ? r.lease_until : r.due_at
        if (next === undefined || at < next) next = at
      }
      return next
    },
    async cancelTimer(kind, key) {
      const r = await db
        .updateTable('timers')
        .set({ state: 'cancelled' })
        .where('kind', '=', kind)
        .where('key', '=', key)
        .where('state', '=', 'pending')
        .executeTakeFirst()
      return Number(r.numUpdatedRows) === 1
    },
    async getTimer(kind, key) {
      const r = await db
        .selectFrom('timers')
        .selectAll()
        .where('kind', '=', kind)
        .where('key', '=', key)
        .executeTakeFirst()
      return r === undefined ? undefined : toTimer(r)
    },
    leaseDueTimers(kinds, now, owner, leaseUntil, limit) {
      if (kinds.length === 0) return Promise.resolve([])
      return tx(async (trx) => {
        const due = await trx
          .selectFrom('timers')
          .selectAll()
          .where('kind', 'in', kinds)
          .where('state', '=', 'pending')
          .where('due_at', '<=', now)
          .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
          .orderBy('due_at')
          .limit(limit)
          .$if(pg, (q) => q.forUpdate().skipLocked())
          .execute()
        const out: TimerRecord[] = []
        for (const t of due) {
          const r = await trx
            .updateTable('timers')
            .set({ lease_owner: owner, lease_until: leaseUntil, attempts: sql`attempts + 1` })
            .where('kind', '=', t.kind)
            .where('key', '=', t.key)
            .where('state', '=', 'pending')
            .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
            .executeTakeFirst()
          if (Number(r.numUpdatedRows) === 1) out.push(toTimer({ ...t, attempts: Number(t.attempts) + 1 }))
        }
        return out
      })
    },
    async completeTimer(kind, key, owner, at) {
      const r = await db
        .updateTable('timers')
        .set({ state: 'fired', fired_at: at, lease_until: null })
        .where('kind', '=', kind)
        .where('key', '=', key)
        .where('lease_owner', '=', owner)
        .where('state', '=', 'pending')
        .executeTakeFirst()
      return Number(r.numUpdatedRows) === 1
    },
    async failTimer(kind, key, owner, error, retryAt) {
      await db
        .updateTable('timers')
        .set({ last_error: error.slice(0, 500), lease_until: null, due_at: retryAt })
        .where('kind', '=', kind)
        .where('key', '=', key)
        .where('lease_owner', '=', owner)
        .where('state', '=', 'pending')
        .execute()
    },
  }
}

function toTimer(r: Database['timers']): TimerRecord {
  return {
    kind: r.kind,
    key: r.key,
    dueAt: r.due_at,
    payload: JSON.parse(r.payload) as Record<string, unknown>,
    state: r.state as TimerRecord['state'],
    attempts: Number(r.attempts),
    firedAt: r.fired_at,
    lastError: r.last_error,
  }
}

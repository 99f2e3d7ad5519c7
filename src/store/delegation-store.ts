import { sql, type Transaction } from 'kysely'
import type { AuditEntryBody } from '../audit/entry.js'
import type { GrantLink, GrantRecord, GrantState } from '../delegation/grants.js'
import type { DelegateRecord, DelegateState } from '../delegation/principals.js'
import { BatonError } from '../errors.js'
import type { Database } from './schema.js'
import { appendAuditIn, type StoreParts, spendOnceIn } from './store-parts.js'

/** Longest chain the store will walk (a chain past `max_chain` is refused by its reader anyway). */
const MAX_WALK = 16

/**
 * Delegates (customers' own AI agents), the grants customers give them and their sub-delegations. Every state
 * change takes its audit entries and writes them in the same transaction (invariant 1). Nothing here is cached by
 * any node: every delegate request reads the chain it acts under, so a revocation or a suspension committed on one
 * node is in force on every node at the next request.
 *
 * Failures: `CONFLICT` (duplicate id), `DELEGATE_NOT_FOUND`, `DELEGATE_INACTIVE`, `DELEGATE_STATE_INVALID`,
 * `GRANT_NOT_FOUND`, `GRANT_REVOKED`, `STORE_UNAVAILABLE`.
 */
export interface DelegationStore {
  /** Inserts the delegate unless one with its id exists; true when inserted (then `audit` is appended). */
  registerDelegate(d: DelegateRecord, audit: AuditEntryBody): Promise<boolean>
  getDelegate(id: string): Promise<DelegateRecord | undefined>
  listDelegates(): Promise<DelegateRecord[]>
  /**
   * Moves the delegate to `to` if its state is one of `from` (else `DELEGATE_STATE_INVALID`, nothing written).
   * Retiring also revokes every active grant it holds and every sub-delegation below them; `audit(revokedGrants)`
   * builds the entries written in the same transaction.
   */
  transitionDelegate(
    id: string,
    from: readonly DelegateState[],
    to: DelegateState,
    at: string,
    audit: (revokedGrants: readonly string[]) => readonly AuditEntryBody[],
  ): Promise<{ readonly delegate: DelegateRecord; readonly revokedGrants: readonly string[] }>

  /**
   * Inserts a grant with its audit entries. Refused with `DELEGATE_NOT_FOUND` / `DELEGATE_INACTIVE` unless its
   * delegate is active, and for a sub-delegation with `GRANT_REVOKED` unless the parent grant is still active (the
   * parent row is locked on PostgreSQL, so a revocation and a sub-delegation under it cannot interleave).
   */
  createGrant(g: GrantRecord, audit: readonly AuditEntryBody[]): Promise<void>
  getGrant(id: string): Promise<GrantRecord | undefined>
  /**
   * The chain of grant `id`: the customer's own grant first, `id` last, each with its delegate's state now (a
   * delegate that no longer exists reads as `retired`). Empty when `id` does not exist; when a parent is missing the
   * chain starts at the first grant found (whose `parentId` then is not null). One query.
   */
  getGrantChain(id: string): Promise<GrantLink[]>
  /** Grants, newest first, filtered; `activeAt` keeps those neither revoked nor expired at that time. */
  listGrants(filter: {
    readonly customerId?: string
    readonly delegateId?: string
    readonly parentId?: string
    readonly activeAt?: string
    readonly limit: number
  }): Promise<GrantRecord[]>
  /**
   * Revokes grant `id` and every grant below it (its sub-delegations, theirs…) that is still active, in one
   * transaction with `audit(revoked)`. Returns the ids revoked, `id` first; empty (nothing written) when it was
   * already revoked. `GRANT_NOT_FOUND` when there is no such grant.
   */
  revokeGrant(
    id: string,
    by: string,
    at: string,
    reason: string,
    audit: (revoked: readonly string[]) => readonly AuditEntryBody[],
  ): Promise<readonly string[]>
  /**
   * A token exchange: records the actor assertion's one-time id (as `spendOnce`) and the exchange's audit entries in
   * one transaction. False (nothing written) when the id was already spent: a replayed assertion.
   */
  recordExchange(
    spend: { readonly scope: string; readonly id: string; readonly expiresAt: string },
    audit: readonly AuditEntryBody[],
  ): Promise<boolean>
}

interface Exchange {
  readonly spend: { readonly scope: string; readonly id: string; readonly expiresAt: string }
  readonly audit: readonly AuditEntryBody[]
}

export function delegationStore({ db, engine, tx, pipelined }: StoreParts): DelegationStore {
  const lockRow = engine === 'postgres' ? sql` for update` : sql``
  // Token exchanges that arrive together share a commit (a replay is an answer, false, not a failure).
  const recordExchange = pipelined(async (trx, items: readonly Exchange[]) => {
    const now = new Date()
    const out: boolean[] = []
    const audit: AuditEntryBody[] = []
    for (const x of items) {
      const spent = await spendOnceIn(trx, x.spend.scope, x.spend.id, x.spend.expiresAt, now)
      out.push(spent)
      if (spent) audit.push(...x.audit)
    }
    await appendAuditIn(trx, audit)
    return out
  })

  async function descendants(trx: Transaction<Database>, id: string): Promise<string[]> {
    const r = await sql<{ id: string }>`
      with recursive below(id, n) as (
        select id, 0 from grants where parent_id = ${id}
        union all
        select g.id, b.n + 1 from grants g join below b on g.parent_id = b.id where b.n < ${MAX_WALK}
      )
      select below.id from below join grants g on g.id = below.id where g.state = 'active' order by below.n, below.id`.execute(
      trx,
    )
    return r.rows.map((x) => x.id)
  }

  async function revokeIn(
    trx: Transaction<Database>,
    ids: readonly string[],
    by: string,
    at: string,
    reason: string,
  ): Promise<void> {
    if (ids.length === 0) return
    await trx
      .updateTable('grants')
      .set({ state: 'revoked', revoked_at: at, revoked_by: by, revoke_reason: reason })
      .where('id', 'in', [...ids])
      .where('state', '=', 'active')
      .execute()
  }

  return {
    async registerDelegate(d, audit) {
      return tx(async (trx) => {
        const existing = await trx.selectFrom('delegates').select('id').where('id', '=', d.id).executeTakeFirst()
        if (existing !== undefined) return false
        await trx.insertInto('delegates').values(fromDelegate(d)).execute()
        await appendAuditIn(trx, [audit])
        return true
      })
    },
    async getDelegate(id) {
      const r = await db.selectFrom('delegates').selectAll().where('id', '=', id).executeTakeFirst()
      return r ? toDelegate(r) : undefined
    },
    async listDelegates() {
      return (await db.selectFrom('delegates').selectAll().orderBy('id').execute()).map(toDelegate)
    },
    async transitionDelegate(id, from, to, at, audit) {
      return tx(async (trx) => {
        const row = await trx.selectFrom('delegates').selectAll().where('id', '=', id).executeTakeFirst()
        if (row === undefined) throw new BatonError('DELEGATE_NOT_FOUND', `no delegate with id '${id}'`)
        const r = await trx
          .updateTable('delegates')
          .set({ state: to, updated_at: at })
          .where('id', '=', id)
          .where('state', 'in', [...from])
          .executeTakeFirst()
        if (Number(r.numUpdatedRows) !== 1) {
          throw new BatonError('DELEGATE_STATE_INVALID', `delegate '${id}' is ${row.state}; it cannot become ${to}`)
        }
        let revokedGrants: string[] = []
        if (to === 'retired') {
          const own = await trx
            .selectFrom('grants')
            .select('id')
            .where('delegate_id', '=', id)
            .where('state', '=', 'active')
            .orderBy('created_at')
            .execute()
          const all = new Set<string>()
          for (const g of own) {
            all.add(g.id)
            for (const d of await descendants(trx, g.id)) all.add(d)
          }
          revokedGrants = [...all]
          await revokeIn(trx, revokedGrants, `delegate:${id}`, at, 'delegate_retired')
        }
        await appendAuditIn(trx, audit(revokedGrants))
        return { delegate: { ...toDelegate(row), state: to, updatedAt: at }, revokedGrants }
      })
    },

    async createGrant(g, audit) {
      await tx(async (trx) => {
        const d = await trx.selectFrom('delegates').select('state').where('id', '=', g.delegateId).executeTakeFirst()
        if (d === undefined) throw new BatonError('DELEGATE_NOT_FOUND', `no delegate with id '${g.delegateId}'`)
        if (d.state !== 'active') {
          throw new BatonError('DELEGATE_INACTIVE', `delegate '${g.delegateId}' is ${d.state}`)
        }
        if (g.parentId !== null) {
          const p = await sql<{ state: string }>`
            select state from grants where id = ${g.parentId}${lockRow}`.execute(trx)
          const parent = p.rows[0]
          if (parent === undefined) throw new BatonError('GRANT_NOT_FOUND', `no grant with id '${g.parentId}'`)
          if (parent.state !== 'active') throw new BatonError('GRANT_REVOKED', `grant ${g.parentId} was revoked`)
        }
        await trx.insertInto('grants').values(fromGrant(g)).execute()
        await appendAuditIn(trx, audit)
      })
    },
    async getGrant(id) {
      const r = await db.selectFrom('grants').selectAll().where('id', '=', id).executeTakeFirst()
      return r ? toGrant(r) : undefined
    },
    async getGrantChain(id) {
      const r = await sql<Database['grants'] & { delegate_state: string | null }>`
        with recursive chain(id, parent_id, n) as (
          select id, parent_id, 0 from grants where id = ${id}
          union all
          select g.id, g.parent_id, c.n + 1 from grants g join chain c on g.id = c.parent_id where c.n < ${MAX_WALK}
        )
        select g.*, d.state as delegate_state
        from chain c join grants g on g.id = c.id left join delegates d on d.id = g.delegate_id
        order by c.n desc`.execute(db)
      return r.rows.map((row) => {
        const { delegate_state, ...grant } = row
        return { grant: toGrant(grant), delegateState: (delegate_state ?? 'retired') as DelegateState }
      })
    },
    async listGrants(f) {
      let q = db.selectFrom('grants').selectAll()
      if (f.customerId !== undefined) q = q.where('customer_id', '=', f.customerId)
      if (f.delegateId !== undefined) q = q.where('delegate_id', '=', f.delegateId)
      if (f.parentId !== undefined) q = q.where('parent_id', '=', f.parentId)
      if (f.activeAt !== undefined) q = q.where('state', '=', 'active').where('expires_at', '>', f.activeAt)
      const rows = await q.orderBy('created_at', 'desc').orderBy('id').limit(f.limit).execute()
      return rows.map(toGrant)
    },
    async revokeGrant(id, by, at, reason, audit) {
      return tx(async (trx) => {
        // the grant's row first: on PostgreSQL it is then locked against a sub-delegation racing in under it
        const r = await trx
          .updateTable('grants')
          .set({ state: 'revoked', revoked_at: at, revoked_by: by, revoke_reason: reason })
          .where('id', '=', id)
          .where('state', '=', 'active')
          .executeTakeFirst()
        if (Number(r.numUpdatedRows) !== 1) {
          const exists = await trx.selectFrom('grants').select('id').where('id', '=', id).executeTakeFirst()
          if (exists === undefined) throw new BatonError('GRANT_NOT_FOUND', `no grant with id '${id}'`)
          return []
        }
        const below = await descendants(trx, id)
        await revokeIn(trx, below, by, at, 'parent_revoked')
        const revoked = [id, ...below]
        await appendAuditIn(trx, audit(revoked))
        return revoked
      })
    },
    recordExchange(spend, audit) {
      return recordExchange({ spend, audit })
    },
  }
}

function fromDelegate(d: DelegateRecord): Database['delegates'] {
  return {
    id: d.id,
    name: d.name,
    vendor: d.vendor,
    contact: d.contact,
    public_jwk: JSON.stringify(d.publicJwk),
    state: d.state,
    created_at: d.createdAt,
    updated_at: d.updatedAt,
  }
}

function toDelegate(r: Database['delegates']): DelegateRecord {
  return {
    id: r.id,
    name: r.name,
    vendor: r.vendor,
    contact: r.contact,
    publicJwk: JSON.parse(r.public_jwk) as Record<string, unknown>,
    state: r.state as DelegateState,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }
}

function fromGrant(g: GrantRecord): Database['grants'] {
  return {
    id: g.id,
    customer_id: g.customerId,
    delegate_id: g.delegateId,
    parent_id: g.parentId,
    depth: g.depth,
    scopes: JSON.stringify(g.scopes),
    limits: JSON.stringify(g.limits),
    may_subdelegate: g.maySubdelegate ? 1 : 0,
    state: g.state,
    created_at: g.createdAt,
    expires_at: g.expiresAt,
    granted_by_kind: g.grantedBy.kind,
    granted_by_id: g.grantedBy.id,
    note: g.note,
    revoked_at: g.revokedAt,
    revoked_by: g.revokedBy,
    revoke_reason: g.revokeReason,
  }
}

function toGrant(r: Database['grants']): GrantRecord {
  return {
    id: r.id,
    customerId: r.customer_id,
    delegateId: r.delegate_id,
    parentId: r.parent_id,
    depth: Number(r.depth),
    scopes: JSON.parse(r.scopes) as string[],
    limits: JSON.parse(r.limits) as Record<string, string>,
    maySubdelegate: Number(r.may_subdelegate) === 1,
    state: r.state as GrantState,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    grantedBy: { kind: r.granted_by_kind, id: r.granted_by_id },
    note: r.note,
    revokedAt: r.revoked_at,
    revokedBy: r.revoked_by,
    revokeReason: r.revoke_reason,
  }
}

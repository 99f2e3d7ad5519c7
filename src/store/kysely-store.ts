import { type Kysely, type Transaction, sql } from 'kysely'
import { type AuditEntryBody, canonicalEntry, leafHash } from '../audit/entry.js'
import type { CaseEvent, CaseRecord, DecisionRecord } from '../cases/records.js'
import { BatonError } from '../errors.js'
import type { Database } from './schema.js'
import { migrateToLatest } from './migrations.js'
import type {
  ApiKeyRecord,
  CaseCommit,
  CustomerRecord,
  Engine,
  PolicyVersionRecord,
  Role,
  Store,
  StoredAuditEntry,
} from './ports.js'

/**
 * The one implementation of `Store` over Kysely. The engines differ in their dialect, pragmas and triggers, which
 * live in `sqlite/database.ts` and `postgres/database.ts` (same file names); the queries are the same SQL, so they
 * are written once here rather than twice.
 */
export function createKyselyStore(db: Kysely<Database>, engine: Engine): Store {
  const tx = <T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> =>
    db
      .transaction()
      .execute(fn)
      .catch((e: unknown) => {
        throw translate(e)
      })

  async function appendAuditIn(trx: Transaction<Database>, bodies: readonly AuditEntryBody[]): Promise<number[]> {
    if (bodies.length === 0) return []
    // The counter row serialises audit appends across transactions, so sequence numbers are dense and commit
    // in order: a leaf is never visible before the leaves below it.
    const row = await trx
      .updateTable('audit_state')
      .set({ next_seq: sql`next_seq + ${bodies.length}` })
      .where('id', '=', 1)
      .returning('next_seq')
      .executeTakeFirstOrThrow()
    const first = Number(row.next_seq) - bodies.length
    const rows = bodies.map((body, i) => {
      const entry = canonicalEntry(first + i, body)
      return { seq: first + i, entry, leaf_hash: leafHash(entry), created_at: body.at }
    })
    await trx.insertInto('audit_entries').values(rows).execute()
    return rows.map((r) => r.seq)
  }

  const store: Store = {
    engine,
    migrate: () => migrateToLatest(db as unknown as Kysely<unknown>, engine),
    close: () => db.destroy(),
    async ping() {
      try {
        await sql`select 1`.execute(db)
        return true
      } catch {
        return false
      }
    },

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
        return true
      })
    },
    async findKeyByHash(hash) {
      const r = await db.selectFrom('api_keys').selectAll().where('hash', '=', hash).executeTakeFirst()
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

    async putCustomer(c, audit) {
      await tx(async (trx) => {
        const row = {
          id: c.id,
          tier: c.tier,
          verified: c.verified ? 1 : 0,
          attributes: JSON.stringify(c.attributes),
          updated_at: c.updatedAt,
        }
        await trx
          .insertInto('customers')
          .values(row)
          .onConflict((oc) =>
            oc.column('id').doUpdateSet({
              tier: row.tier,
              verified: row.verified,
              attributes: row.attributes,
              updated_at: row.updated_at,
            }),
          )
          .execute()
        await appendAuditIn(trx, [audit])
      })
    },
    async getCustomer(id) {
      const r = await db.selectFrom('customers').selectAll().where('id', '=', id).executeTakeFirst()
      return r
        ? {
            id: r.id,
            tier: r.tier,
            verified: Number(r.verified) === 1,
            attributes: JSON.parse(r.attributes) as Record<string, unknown>,
            updatedAt: r.updated_at,
          }
        : undefined
    },

    async commitCase(commit) {
      return tx(async (trx) => {
        const row = fromCase(commit.case)
        if (commit.expectedVersion === null) {
          await trx.insertInto('cases').values(row).execute()
        } else {
          const r = await trx
            .updateTable('cases')
            .set(row)
            .where('id', '=', row.id)
            .where('version', '=', commit.expectedVersion)
            .executeTakeFirst()
          if (Number(r.numUpdatedRows) !== 1) {
            throw new BatonError('CONFLICT', `case ${row.id} changed since version ${commit.expectedVersion}`)
          }
        }
        if (commit.events.length > 0) {
          await trx
            .insertInto('case_events')
            .values(
              commit.events.map((e) => ({
                case_id: e.caseId,
                seq: e.seq,
                type: e.type,
                data: JSON.stringify(e.data),
                at: e.at,
              })),
            )
            .execute()
        }
        if (commit.decisions.length > 0) {
          await trx
            .insertInto('decisions')
            .values(
              commit.decisions.map((d) => ({
                id: d.id,
                case_id: d.caseId,
                kind: d.kind,
                outcome: d.outcome,
                data: JSON.stringify(d.data),
                at: d.at,
              })),
            )
            .execute()
        }
        const auditSeqs = await appendAuditIn(trx, commit.audit)
        return { auditSeqs }
      })
    },
    async getCase(id) {
      const r = await db.selectFrom('cases').selectAll().where('id', '=', id).executeTakeFirst()
      return r ? toCase(r) : undefined
    },
    async listCaseEvents(caseId) {
      const rows = await db.selectFrom('case_events').selectAll().where('case_id', '=', caseId).orderBy('seq').execute()
      return rows.map(
        (r): CaseEvent => ({
          caseId: r.case_id,
          seq: Number(r.seq),
          type: r.type as CaseEvent['type'],
          data: JSON.parse(r.data) as Record<string, unknown>,
          at: r.at,
        }),
      )
    },
    async listDecisions(caseId) {
      const rows = await db
        .selectFrom('decisions')
        .selectAll()
        .where('case_id', '=', caseId)
        .orderBy('at')
        .orderBy('id')
        .execute()
      return rows.map(toDecision)
    },
    async getDecision(id) {
      const r = await db.selectFrom('decisions').selectAll().where('id', '=', id).executeTakeFirst()
      return r ? toDecision(r) : undefined
    },
    async listOpenCasesOfCustomer(customerId, limit) {
      const rows = await db
        .selectFrom('cases')
        .selectAll()
        .where('customer_id', '=', customerId)
        .where('state', '=', 'open')
        .orderBy('created_at', 'desc')
        .limit(limit)
        .execute()
      return rows.map(toCase)
    },
    async queueStats() {
      const rows = await db
        .selectFrom('cases')
        .select((eb) => ['queue', eb.fn.countAll<number>().as('depth'), eb.fn.min('state_since').as('oldest')])
        .where('state', '=', 'open')
        .where('queue', 'is not', null)
        .groupBy('queue')
        .execute()
      const out: Record<string, { depth: number; oldestSince: string | null }> = {}
      for (const r of rows) if (r.queue !== null) out[r.queue] = { depth: Number(r.depth), oldestSince: r.oldest }
      return out
    },
    async listCases(f) {
      let q = db.selectFrom('cases').selectAll()
      if (f.state !== undefined) q = q.where('state', '=', f.state)
      if (f.queue !== undefined) q = q.where('queue', '=', f.queue)
      if (f.handlerKind !== undefined) q = q.where('handler_kind', '=', f.handlerKind)
      if (f.after !== undefined) q = q.where('id', '>', f.after)
      const rows = await q.orderBy('id').limit(f.limit).execute()
      return rows.map(toCase)
    },

    async savePolicyVersion(p, audit) {
      await tx(async (trx) => {
        const existing = await trx.selectFrom('policies').select('hash').where('hash', '=', p.hash).executeTakeFirst()
        if (existing === undefined) {
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
        }
        await appendAuditIn(trx, [audit])
      })
    },
    async listPolicyVersions() {
      const rows = await db.selectFrom('policies').selectAll().orderBy('loaded_at').execute()
      return rows.map(
        (r): PolicyVersionRecord => ({
          hash: r.hash,
          name: r.name,
          version: Number(r.version),
          owner: r.owner,
          file: r.file,
          source: r.source,
          loadedAt: r.loaded_at,
        }),
      )
    },

    appendAudit: (entries) => tx((trx) => appendAuditIn(trx, entries)),
    async readAudit(from, to) {
      const rows = await db
        .selectFrom('audit_entries')
        .selectAll()
        .where('seq', '>=', from)
        .where('seq', '<', to)
        .orderBy('seq')
        .execute()
      return rows.map(
        (r): StoredAuditEntry => ({
          seq: Number(r.seq),
          entry: r.entry,
          leafHash: new Uint8Array(r.leaf_hash),
          createdAt: r.created_at,
        }),
      )
    },
    async auditSize() {
      const r = await db.selectFrom('audit_state').select('next_seq').where('id', '=', 1).executeTakeFirstOrThrow()
      return Number(r.next_seq)
    },

    async getSetting(key) {
      const r = await db.selectFrom('kv').select('value').where('key', '=', key).executeTakeFirst()
      return r?.value
    },
    async putSetting(key, value) {
      await db
        .insertInto('kv')
        .values({ key, value })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
        .execute()
    },
  }
  return store
}

function toKey(r: Database['api_keys']): ApiKeyRecord {
  return {
    id: r.id,
    name: r.name,
    role: r.role as Role,
    hash: r.hash,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
  }
}

function fromCase(c: CaseRecord): Database['cases'] {
  return {
    id: c.id,
    customer_id: c.customerId,
    channel: c.channel,
    subject: c.subject,
    state: c.state,
    handler: JSON.stringify(c.handler),
    handler_kind: c.handler.kind,
    queue: c.state === 'open' && c.handler.kind !== 'agent' ? c.handler.queue : null,
    handoffs: c.handoffs,
    messages: c.messages,
    risk: JSON.stringify(c.risk),
    first_text: c.firstText,
    last_event: c.lastEvent,
    version: c.version,
    created_at: c.createdAt,
    updated_at: c.updatedAt,
    state_since: c.stateSince,
  }
}

function toCase(r: Database['cases']): CaseRecord {
  return {
    id: r.id,
    customerId: r.customer_id,
    channel: r.channel,
    subject: r.subject,
    state: r.state as CaseRecord['state'],
    handler: JSON.parse(r.handler) as CaseRecord['handler'],
    handoffs: Number(r.handoffs),
    messages: Number(r.messages),
    risk: JSON.parse(r.risk) as CaseRecord['risk'],
    firstText: r.first_text,
    lastEvent: Number(r.last_event),
    version: Number(r.version),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    stateSince: r.state_since,
  }
}

function toDecision(r: Database['decisions']): DecisionRecord {
  return {
    id: r.id,
    caseId: r.case_id,
    kind: r.kind as DecisionRecord['kind'],
    outcome: r.outcome,
    at: r.at,
    data: JSON.parse(r.data) as Record<string, unknown>,
  }
}

/** Maps engine errors to Baton's codes; anything unrecognised passes through unchanged. */
function translate(e: unknown): unknown {
  if (e instanceof BatonError) return e
  const err = e as { code?: unknown; message?: unknown }
  const code = typeof err.code === 'string' ? err.code : ''
  if (code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') {
    return new BatonError('CONFLICT', 'a record with this id already exists', { cause: e })
  }
  if (code === 'ECONNREFUSED' || code === '57P01' || code === 'SQLITE_BUSY' || code === 'SQLITE_IOERR') {
    return new BatonError('STORE_UNAVAILABLE', 'the store is unavailable', { cause: e })
  }
  return e
}

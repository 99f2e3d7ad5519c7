import { sql } from 'kysely'
import { BatonError } from '../errors.js'
import type { AuditKeyRecord, AuditStore, SignedTreeHead, StoredAuditEntry } from './ports.js'
import type { Database } from './schema.js'
import { appendAuditIn, type StoreParts } from './store-parts.js'

/**
 * The audit log: entries, the Merkle tree's stored subtrees, signed heads and head-signing keys. `settled` waits for
 * the entries queued before it to have their sequence numbers (PostgreSQL's audit queue; a no-op on SQLite); every
 * read of entries calls it first.
 */
export function auditStore({ db, engine, tx }: StoreParts, settled: () => Promise<void>): AuditStore {
  const caseIdOf = engine === 'postgres' ? sql`(entry::jsonb ->> 'caseId')` : sql`json_extract(entry, '$.caseId')`

  return {
    appendAudit: (entries) => tx((trx) => appendAuditIn(trx, entries)),
    flushAudit: settled,
    async readAudit(from, to) {
      await settled()
      const rows = await db
        .selectFrom('audit_entries')
        .selectAll()
        .where('seq', '>=', from)
        .where('seq', '<', to)
        .orderBy('seq')
        .execute()
      return rows.map(toEntry)
    },
    async *scanAudit(from, batchSize) {
      if (!Number.isInteger(batchSize) || batchSize < 1) throw new TypeError(`batchSize must be ≥ 1, got ${batchSize}`)
      await settled()
      let cursor = from
      for (;;) {
        const rows = await db
          .selectFrom('audit_entries')
          .selectAll()
          .where('seq', '>=', cursor)
          .orderBy('seq')
          .limit(batchSize)
          .execute()
        if (rows.length === 0) return
        yield rows.map(toEntry)
        if (rows.length < batchSize) return
        cursor = Number(rows[rows.length - 1]!.seq) + 1
      }
    },
    async readLeafHashes(from, limit) {
      await settled()
      const rows = await db
        .selectFrom('audit_entries')
        .select(['seq', 'leaf_hash'])
        .where('seq', '>=', from)
        .where('seq', '<', from + limit)
        .orderBy('seq')
        .execute()
      return rows.map((r) => ({ seq: Number(r.seq), leafHash: bytesOf(r.leaf_hash) }))
    },
    async listCaseAudit(caseId) {
      await settled()
      // The sequencer indexes cases as it integrates entries; the tail it has not reached yet (about a second of
      // entries) is filtered with the engine's JSON functions. One statement: one snapshot.
      const { rows } = await sql<Database['audit_entries']>`
        select e.seq, e.entry, e.leaf_hash, e.created_at
          from audit_case_entries c join audit_entries e on e.seq = c.seq
         where c.case_id = ${caseId}
        union
        select seq, entry, leaf_hash, created_at
          from audit_entries
         where seq >= (select coalesce(max(size), 0) from audit_heads) and ${caseIdOf} = ${caseId}
        order by seq`.execute(db)
      return rows.map(toEntry)
    },

    async integrateTree(fromSize, nodes, head) {
      for (const n of nodes) {
        if (n.level < 1)
          throw new TypeError('integrateTree stores subtrees of level ≥ 1; leaf hashes live in the entries')
      }
      await tx(async (trx) => {
        const latest = await trx
          .selectFrom('audit_heads')
          .select('size')
          .orderBy('size', 'desc')
          .limit(1)
          .executeTakeFirst()
        const current = latest === undefined ? 0 : Number(latest.size)
        if (current !== fromSize) {
          throw new BatonError('CONFLICT', `the tree has size ${current}, not ${fromSize}: another sequencer moved it`)
        }
        if (head.size <= fromSize) {
          throw new BatonError('CONFLICT', `a head of size ${head.size} does not extend the tree of size ${fromSize}`)
        }
        const state = await trx
          .selectFrom('audit_state')
          .select('next_seq')
          .where('id', '=', 1)
          .executeTakeFirstOrThrow()
        if (head.size > Number(state.next_seq)) {
          throw new BatonError('AUDIT_INVALID', `a head of size ${head.size} covers entries the log does not have`)
        }
        const rows = nodes.map((n) => ({ level: n.level, idx: Number(n.index), hash: n.hash }))
        for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
          await trx
            .insertInto('audit_nodes')
            .values(rows.slice(i, i + INSERT_CHUNK))
            .execute()
        }
        await sql`insert into audit_case_entries (case_id, seq)
          select ${caseIdOf}, seq from audit_entries
           where seq >= ${fromSize} and seq < ${head.size} and ${caseIdOf} is not null
          on conflict do nothing`.execute(trx)
        await trx
          .insertInto('audit_heads')
          .values({
            size: head.size,
            root: head.root,
            timestamp: head.timestamp,
            key_id: head.keyId,
            signature: head.signature,
          })
          .execute()
      })
    },
    async getTreeNodes(addresses) {
      const leaves = new Set<number>()
      const inner = new Map<string, { level: number; idx: number }>()
      for (const a of addresses) {
        const idx = Number(a.index)
        if (a.level === 0) leaves.add(idx)
        else inner.set(`${a.level}/${idx}`, { level: a.level, idx })
      }
      // One statement, one round trip: leaf hashes from the entries, interior subtrees from the tree.
      const parts = []
      if (leaves.size > 0) {
        parts.push(
          sql`select 0 as level, seq as idx, leaf_hash as hash from audit_entries where seq in (${sql.join([...leaves])})`,
        )
      }
      if (inner.size > 0) {
        const match = [...inner.values()].map((n) => sql`(level = ${n.level} and idx = ${n.idx})`)
        parts.push(sql`select level, idx, hash from audit_nodes where ${sql.join(match, sql` or `)}`)
      }
      const found = new Map<string, Uint8Array>()
      if (parts.length > 0) {
        const { rows } = await sql<{ level: number; idx: number; hash: Uint8Array }>`${sql.join(
          parts,
          sql` union all `,
        )}`.execute(db)
        for (const r of rows) found.set(`${Number(r.level)}/${Number(r.idx)}`, bytesOf(r.hash))
      }
      return addresses.map((a) => {
        const h = found.get(`${a.level}/${Number(a.index)}`)
        if (h === undefined) {
          throw new BatonError('AUDIT_ENTRY_NOT_FOUND', `no stored subtree at level ${a.level}, index ${a.index}`)
        }
        return h
      })
    },
    async scanTreeNodes(ranges) {
      if (ranges.length === 0) return []
      const rows = await db
        .selectFrom('audit_nodes')
        .select(['level', 'idx', 'hash'])
        .where((eb) =>
          eb.or(ranges.map((r) => eb.and([eb('level', '=', r.level), eb('idx', '>=', r.from), eb('idx', '<=', r.to)]))),
        )
        .orderBy('level')
        .orderBy('idx')
        .execute()
      return rows.map((r) => ({ level: Number(r.level), index: Number(r.idx), hash: r.hash }))
    },
    async countTreeNodes() {
      const r = await db
        .selectFrom('audit_nodes')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
      return Number(r.n)
    },
    async latestHead() {
      const r = await db.selectFrom('audit_heads').selectAll().orderBy('size', 'desc').limit(1).executeTakeFirst()
      return r ? toHead(r) : undefined
    },
    async headAt(size) {
      const r = await db.selectFrom('audit_heads').selectAll().where('size', '=', size).executeTakeFirst()
      return r ? toHead(r) : undefined
    },
    async listHeads() {
      const rows = await db.selectFrom('audit_heads').selectAll().orderBy('size').execute()
      return rows.map(toHead)
    },

    async putAuditKey(key, audit) {
      return tx(async (trx) => {
        const existing = await trx
          .selectFrom('audit_keys')
          .select('key_id')
          .where('key_id', '=', key.keyId)
          .executeTakeFirst()
        if (existing !== undefined) return false
        await trx.insertInto('audit_keys').values(fromAuditKey(key)).execute()
        await appendAuditIn(trx, [audit])
        return true
      })
    },
    async rotateAuditKey(next, retiring, audit) {
      await tx(async (trx) => {
        const existing = await trx
          .selectFrom('audit_keys')
          .select('key_id')
          .where('key_id', '=', next.keyId)
          .executeTakeFirst()
        if (existing === undefined) await trx.insertInto('audit_keys').values(fromAuditKey(next)).execute()
        if (retiring !== null && retiring !== next.keyId) {
          await trx
            .updateTable('audit_keys')
            .set({ retired_at: next.createdAt })
            .where('key_id', '=', retiring)
            .where('retired_at', 'is', null)
            .execute()
        }
        await appendAuditIn(trx, [audit])
      })
    },
    async listAuditKeys() {
      const rows = await db.selectFrom('audit_keys').selectAll().orderBy('created_at').orderBy('key_id').execute()
      return rows.map(
        (r): AuditKeyRecord => ({
          keyId: r.key_id,
          publicKey: r.public_key,
          createdAt: r.created_at,
          retiredAt: r.retired_at,
        }),
      )
    },
    async auditSize() {
      await settled()
      const r = await db.selectFrom('audit_state').select('next_seq').where('id', '=', 1).executeTakeFirstOrThrow()
      return Number(r.next_seq)
    },
  }
}

/** Rows per INSERT: 3 parameters a row stays under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters. */
const INSERT_CHUNK = 5000

/** Drivers return Buffers; hand out plain Uint8Array views of them (no copy), as the port promises. */
function bytesOf(v: Uint8Array): Uint8Array {
  return Buffer.isBuffer(v) ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : new Uint8Array(v)
}

function toEntry(r: Pick<Database['audit_entries'], 'seq' | 'entry' | 'leaf_hash' | 'created_at'>): StoredAuditEntry {
  return { seq: Number(r.seq), entry: r.entry, leafHash: r.leaf_hash, createdAt: r.created_at }
}

function toHead(r: Database['audit_heads']): SignedTreeHead {
  return {
    size: Number(r.size),
    root: bytesOf(r.root),
    timestamp: r.timestamp,
    keyId: r.key_id,
    signature: bytesOf(r.signature),
  }
}

function fromAuditKey(k: AuditKeyRecord): Database['audit_keys'] {
  return { key_id: k.keyId, public_key: k.publicKey, created_at: k.createdAt, retired_at: k.retiredAt }
}

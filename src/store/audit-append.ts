import { sql, type Transaction } from 'kysely'
import { type AuditEntryBody, canonicalEntry, leafHash } from '../audit/entry.js'
import type { Database } from './schema.js'

/**
 * Writes audit leaves directly in `trx`: takes `bodies.length` sequence numbers from the counter row, then inserts
 * the canonical entries with their leaf hashes. The counter row serialises audit appends across transactions, so
 * sequence numbers are dense and commit in order: a leaf is never visible before the leaves below it.
 */
export async function appendAuditRows(
  trx: Transaction<Database>,
  bodies: readonly AuditEntryBody[],
): Promise<number[]> {
  if (bodies.length === 0) return []
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

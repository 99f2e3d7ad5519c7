import { CompiledQuery, sql, type Transaction } from 'kysely'
import { type AuditEntryBody, auditLeaf } from '../audit/entry.js'
import { BatonError } from '../errors.js'
import type { Database } from './schema.js'

/** Rows per INSERT: 4 parameters a row stays far below SQLite's (32766) and PostgreSQL's (65535) limits. */
const ROWS_PER_INSERT = 500

/**
 * Writes audit leaves directly in `trx`: takes `bodies.length` sequence numbers from the counter row, then inserts
 * the canonical entries with their leaf hashes. The counter row serialises audit appends across transactions, so
 * sequence numbers are dense and commit in order: a leaf is never visible before the leaves below it.
 */
export async function appendAuditRows(
  trx: Transaction<Database>,
  bodies: readonly AuditEntryBody[],
): Promise<number[]> {
  const n = bodies.length
  if (n === 0) return []
  const statements = statementsFor(trx)
  const { rows } = await trx.executeQuery(CompiledQuery.raw(statements.take, [n]) as CompiledQuery<CounterRow>)
  const row = rows[0]
  if (row === undefined)
    throw new BatonError('INTERNAL', 'audit_state has no counter row (id 1): is the store migrated?')
  const first = Number(row.next_seq) - n
  const seqs = new Array<number>(n)
  for (let from = 0; from < n; from += ROWS_PER_INSERT) {
    const to = Math.min(n, from + ROWS_PER_INSERT)
    const params: unknown[] = []
    for (let i = from; i < to; i++) {
      const body = bodies[i]!
      const seq = first + i
      const leaf = auditLeaf(seq, body)
      params.push(seq, leaf.entry, leaf.leafHash, body.at)
      seqs[i] = seq
    }
    await trx.executeQuery(CompiledQuery.raw(statements.insert(to - from), params))
  }
  return seqs
}

interface CounterRow {
  /** A number on SQLite, a decimal string on PostgreSQL (bigint). */
  readonly next_seq: number | string
}

interface Statements {
  /** Advances the counter by $1 and returns the new value. */
  readonly take: string
  /** A multi-row INSERT of `rows` rows of (seq, entry, leaf_hash, created_at). */
  insert(rows: number): string
}

// Appends run in every audited transaction. Building and compiling these two statements through the query builder
// cost more than running them on SQLite, so their text is written once per Kysely instance (keyed by its adapter)
// and run as compiled queries in the caller's transaction. The same text serves both engines but for parameters.
const statementsByAdapter = new WeakMap<object, Statements>()

function statementsFor(trx: Transaction<Database>): Statements {
  const adapter = trx.getExecutor().adapter
  let statements = statementsByAdapter.get(adapter)
  if (statements === undefined) {
    // Ask the dialect how it writes a parameter: `$1` (PostgreSQL) or `?` (SQLite).
    const numbered = sql`${0}`.compile(trx).sql === '$1'
    statements = writeStatements(numbered ? (i) => `$${i}` : () => '?')
    statementsByAdapter.set(adapter, statements)
  }
  return statements
}

/** Distinct row counts whose INSERT text is kept: the few a workload repeats (1, 2, a group-commit batch, …). */
const KEPT_INSERTS = 64

function writeStatements(param: (i: number) => string): Statements {
  const inserts = new Map<number, string>()
  return {
    take: `update audit_state set next_seq = next_seq + ${param(1)} where id = 1 returning next_seq`,
    insert(rows) {
      let text = inserts.get(rows)
      if (text === undefined) {
        const values: string[] = []
        for (let r = 0; r < rows; r++) {
          values.push(`(${param(4 * r + 1)}, ${param(4 * r + 2)}, ${param(4 * r + 3)}, ${param(4 * r + 4)})`)
        }
        text = `insert into audit_entries (seq, entry, leaf_hash, created_at) values ${values.join(', ')}`
        if (inserts.size < KEPT_INSERTS) inserts.set(rows, text)
      }
      return text
    },
  }
}

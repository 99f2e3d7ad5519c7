import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { expect } from 'vitest'
import { exportLines } from '../../src/audit/export.js'
import type { TestApp } from './app.js'

/**
 * What a test looks for when it checks that a secret is nowhere: every cell of every table of the store (read
 * straight from the database file or server, not through Baton), the audit export, and whatever else the test adds.
 */

/** Every cell of every table of the test app's store, as text (bytes as UTF-8), one string per cell. */
export async function dumpStore(t: TestApp): Promise<string[]> {
  const cells: string[] = []
  const push = (v: unknown) => {
    if (v === null || v === undefined) return
    cells.push(Buffer.isBuffer(v) ? v.toString('utf8') : typeof v === 'object' ? JSON.stringify(v) : String(v))
  }
  if (t.databaseUrl !== undefined) {
    const client = new pg.Client({ connectionString: t.databaseUrl })
    await client.connect()
    try {
      const tables = await client.query<{ table_name: string }>(
        "select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'",
      )
      expect(tables.rows.length).toBeGreaterThan(5)
      for (const { table_name } of tables.rows) {
        const rows = await client.query(`select * from "${table_name}"`)
        for (const r of rows.rows) for (const v of Object.values(r)) push(v)
      }
    } finally {
      await client.end()
    }
    return cells
  }
  const db = new Database(join(t.dataDir, 'baton.db'), { readonly: true, fileMustExist: true })
  try {
    const tables = db
      .prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'")
      .all() as { name: string }[]
    expect(tables.length).toBeGreaterThan(5)
    for (const { name } of tables) {
      for (const r of db.prepare(`select * from "${name}"`).all() as Record<string, unknown>[]) {
        for (const v of Object.values(r)) push(v)
      }
    }
  } finally {
    db.close()
  }
  return cells
}

/** The audit log as `baton audit export` writes it, one line per string. */
export async function exportAudit(t: TestApp): Promise<string[]> {
  const lines: string[] = []
  for await (const line of exportLines(t.app.store)) lines.push(line)
  return lines
}

// What the detector's normalised view drops: format characters (ZWSP, soft hyphen, BOM, word joiner, bidi marks),
// and line breaks, also as the JSON escapes `\n` and `\r` that stored JSON text holds.
const INVISIBLE = /\p{Cf}|\u034f|\u115f|\u1160|\u3164|\uffa0|[\ufe00-\ufe0f]|\r|\n|\\r|\\n/gu

/** A text as a reader would see it once de-obfuscated: NFKC, invisible characters and line breaks removed. */
export function deobfuscated(text: string): string {
  return text.normalize('NFKC').replace(INVISIBLE, '')
}

/**
 * The first of `texts` that holds `secret` in clear, or in a de-obfuscated form (full-width letters, a zero-width
 * character or a line break inside it), or undefined when none does.
 */
export function leakIn(texts: readonly string[], secret: string): string | undefined {
  const plain = deobfuscated(secret)
  return texts.find((t) => t.includes(secret) || deobfuscated(t).includes(plain))
}

import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import { CompiledQuery, Kysely, SqliteDialect } from 'kysely'
import { type AuditEntryBody, canonicalEntry, leafHash, sha256Bytes } from '../src/audit/entry.js'
import { HeadSigner } from '../src/audit/head.js'
import { inclusionProof } from '../src/audit/merkle.js'
import { createSequencer, storeNodeReader } from '../src/audit/sequencer.js'
import { verifyStore } from '../src/audit/verify.js'
import { leavesFromWorker } from '../src/cli/verify-worker.js'
import { createGroupCommitAppender, createGroupCommitWriter } from '../src/store/group-commit.js'
import { createSqliteStore } from '../src/store/sqlite/database.js'
import { withStatementCache } from '../src/store/sqlite/statement-cache.js'
import { type Figure, figure } from './harness.js'

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 8)
const SLICES = 8
const WRITERS = Number(process.env.BENCH_AUDIT_WRITERS ?? 16)
const MAX_BATCH = 256
const ENTRIES = Number(process.env.BENCH_AUDIT_ENTRIES ?? 1_000_000)

/** A realistic audit body: a routing decision with the rules that matched and the signal values they read. */
function decisionBody(i: number): AuditEntryBody {
  return {
    type: 'case.decided',
    at: new Date(Date.UTC(2026, 10, 1) + i * 37).toISOString(),
    // A case transaction writes about three entries for one (random) case id.
    caseId: `cs_${(Math.floor(i / 3) * 2654435761) % 1_000_003}`,
    actor: { kind: 'service', id: 'key_helpdesk' },
    data: {
      decisionId: `dec_${i}`,
      outcome: i % 3 === 0 ? 'operator' : 'agent',
      handler: i % 3 === 0 ? { kind: 'operator', queue: 'billing' } : { kind: 'agent', agentId: 'triage-bot' },
      rules: ['refund-over-limit', 'default-agent'],
      reads: { 'signals.intent': 'refund', 'signals.intent_confidence': 0.91, 'customer.tier': 'premium' },
      policy: { name: 'shop', version: 3, hash: 'd242beac811dfcdd4f354cf39f3bf93c9d93d3aa0e67b537af7aa877b4a64c2f' },
    },
  }
}

async function drive(submit: (i: number) => Promise<unknown>, seconds: number): Promise<number> {
  let n = 0
  const deadline = Date.now() + seconds * 1000
  await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      while (Date.now() < deadline) {
        await submit(n++)
      }
    }),
  )
  return n / seconds
}

/**
 * audit_append_vs_raw: durable audit appends per second through one group-commit writer (canonical JSON, leaf hash
 * and the sequence counter, all in the transaction) over raw durable inserts of the same rows (precomputed text and
 * hash) through the same writer, the same Kysely/better-sqlite3 stack, WAL with synchronous=FULL.
 *
 * Like for like: the raw table has the audit table's shape (integer primary key, text, blob, text), the raw database
 * the store's pragmas, and the raw rows go in as the store writes them (`appendAuditRows`): one fixed-text multi-row
 * INSERT run as a compiled query in a Kysely transaction. Raw inserts built through the query builder would make the
 * baseline slower than the store's own insert, and the ratio would credit the audit work with that difference.
 */
export async function auditAppendVsRaw(): Promise<Figure> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-audit-'))
  try {
    // Both sides make each commit durable the same way (SQLite's own fsync in the commit), so the ratio is the cost
    // of the audit work alone; the server's default group commit (wal-sync.ts) is measured by intake_http_vs_bare.
    const store = createSqliteStore(join(dir, 'audit.db'), { sync: 'full' })
    await store.migrate()
    const appender = createGroupCommitAppender(store, { maxBatch: MAX_BATCH })

    const rawDb = new SQLite(join(dir, 'raw.db'))
    // The pragmas of createSqliteStore(…, { sync: 'full' }).
    rawDb.pragma('journal_mode = WAL')
    rawDb.pragma('synchronous = FULL')
    rawDb.pragma('foreign_keys = ON')
    rawDb.pragma('busy_timeout = 5000')
    rawDb.exec(
      'create table raw_entries (seq integer primary key, entry text not null, leaf_hash blob not null, created_at text not null)',
    )
    const raw = new Kysely<{ raw_entries: { seq: number; entry: string; leaf_hash: Uint8Array; created_at: string } }>({
      dialect: new SqliteDialect({ database: withStatementCache(rawDb) }), // the store's own stack
    })
    const pool = Array.from({ length: 1024 }, (_, i) => {
      const entry = canonicalEntry(i, decisionBody(i))
      return { entry, leaf_hash: leafHash(entry), created_at: decisionBody(i).at }
    })
    // One statement text per row count, as appendAuditRows keeps them.
    const rawInserts = new Map<number, string>()
    const rawInsert = (rows: number): string => {
      let text = rawInserts.get(rows)
      if (text === undefined) {
        const values = Array.from({ length: rows }, () => '(?, ?, ?, ?)').join(', ')
        text = `insert into raw_entries (seq, entry, leaf_hash, created_at) values ${values}`
        rawInserts.set(rows, text)
      }
      return text
    }
    let rawSeq = 0
    const rawWriter = createGroupCommitWriter(
      async (rows: readonly (typeof pool)[number][]) =>
        raw.transaction().execute(async (trx) => {
          const seqs: number[] = []
          const params: unknown[] = []
          for (const r of rows) {
            const seq = rawSeq++
            seqs.push(seq)
            params.push(seq, r.entry, r.leaf_hash, r.created_at)
          }
          await trx.executeQuery(CompiledQuery.raw(rawInsert(rows.length), params))
          return seqs
        }),
      { maxBatch: MAX_BATCH },
    )

    // Bodies are built before the clock starts, as the raw rows are: both sides measure the durable write only.
    const bodies = Array.from({ length: 1024 }, (_, i) => decisionBody(i))
    // Alternate short slices so that disk and CPU noise hit both alike, and which side goes first, so that a drift
    // (the files growing, the machine's load) favours neither. CPU time per row is reported too: unlike the rates
    // it hardly depends on how long the disk takes to sync.
    const slice = DURATION_S / SLICES / 2
    const audited: number[] = []
    const rawRates: number[] = []
    const cpuUs = { audit: 0, raw: 0 }
    const timed = async (side: keyof typeof cpuUs, run: () => Promise<number>, rates: number[]) => {
      const start = process.cpuUsage()
      rates.push(await run())
      const used = process.cpuUsage(start)
      cpuUs[side] += used.user + used.system
    }
    const rawSlice = () => timed('raw', () => drive((i) => rawWriter.submit(pool[i % pool.length]!), slice), rawRates)
    const auditSlice = () =>
      timed('audit', () => drive((i) => appender.submit(bodies[i % bodies.length]!), slice), audited)
    for (let round = 0; round < SLICES; round++) {
      if (round % 2 === 0) {
        await rawSlice()
        await auditSlice()
      } else {
        await auditSlice()
        await rawSlice()
      }
    }
    await appender.close()
    await rawWriter.close()
    const sum = (xs: number[]) => xs.reduce((x, y) => x + y)
    const a = sum(audited) / audited.length
    const r = sum(rawRates) / rawRates.length
    const stats = appender.stats
    await raw.destroy()
    await store.close()
    return figure('audit_append_vs_raw', a, 'appends/s', r, a / r, '>= 0.7', {
      writers: WRITERS,
      maxBatch: MAX_BATCH,
      meanBatch: Math.round(stats.items / stats.transactions),
      cpuUsPerAppend: Number((cpuUs.audit / (sum(audited) * slice)).toFixed(2)),
      cpuUsPerRawInsert: Number((cpuUs.raw / (sum(rawRates) * slice)).toFixed(2)),
      engine: 'sqlite WAL synchronous=FULL',
      durationS: DURATION_S,
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** A store of `n` sequenced entries, bulk-loaded (not through the appender: that is what the first figure measures). */
async function bigLog(dir: string, n: number) {
  const file = join(dir, 'baton.db')
  const store = createSqliteStore(file)
  await store.migrate()
  const loadStart = process.hrtime.bigint()
  const db = new SQLite(file)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = OFF')
  const insert = db.prepare('insert into audit_entries (seq, entry, leaf_hash, created_at) values (?, ?, ?, ?)')
  const chunk = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const body = decisionBody(i)
      const entry = canonicalEntry(i, body)
      insert.run(i, entry, leafHash(entry), body.at)
    }
  })
  for (let i = 0; i < n; i += 50_000) chunk(i, Math.min(n, i + 50_000))
  db.prepare('update audit_state set next_seq = ? where id = 1').run(n)
  db.pragma('wal_checkpoint(TRUNCATE)')
  db.close()
  const loadS = Number(process.hrtime.bigint() - loadStart) / 1e9

  const key = generateKeyPairSync('ed25519')
  const signer = new HeadSigner(key.privateKey)
  const sequencer = createSequencer({ store, signer: async () => signer, now: () => new Date(), batchSize: 100_000 })
  const seqStart = process.hrtime.bigint()
  const head = await sequencer.sequenceOnce()
  const sequenceS = Number(process.hrtime.bigint() - seqStart) / 1e9
  if (head?.size !== n) throw new Error(`sequenced ${head?.size} of ${n}`)
  return { store, head, trusted: new Map([[signer.keyId, key.publicKey]]), loadS, sequenceS }
}

function p99(samples: number[]): number {
  const s = [...samples].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!
}

/**
 * audit_verify_1m_s and audit_proof_p99_ms on one log of ENTRIES entries.
 * - verify: `verifyStore` (dense seqs, embedded seqs, every leaf hash, every stored interior node, every head) over
 *   the time to read the same entries through the same cursor and SHA-256 their bytes (the I/O and hashing floor).
 * - proof: inclusion proof generation from the store at a random leaf (O(log n) node reads in two queries) over one
 *   indexed row read of an entry (`readAudit(seq, seq + 1)`), both p99 of sequential calls.
 */
export async function auditVerifyAndProofs(): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-verify-'))
  try {
    const { store, head, trusted, loadS, sequenceS } = await bigLog(dir, ENTRIES)

    let t = process.hrtime.bigint()
    let bytes = 0
    for await (const batch of store.scanAudit(0, 20_000)) {
      for (const e of batch) {
        const b = Buffer.from(e.entry, 'utf8')
        sha256Bytes(b)
        bytes += b.length
      }
    }
    const baseS = Number(process.hrtime.bigint() - t) / 1e9
    // As `baton audit verify` runs it: the entries pass on a worker thread, the tree pass here.
    t = process.hrtime.bigint()
    const result = await verifyStore(store, {
      trustedKeys: trusted,
      leaves: leavesFromWorker({ databaseUrl: undefined, dataDir: dir, batchSize: 20_000 }),
    })
    const verifyS = Number(process.hrtime.bigint() - t) / 1e9
    if (!result.ok || result.entries !== ENTRIES) throw new Error(`verify failed: ${JSON.stringify(result)}`)
    const verifyFigure = figure('audit_verify_1m_s', verifyS, 's', baseS, verifyS / baseS, '<= 10', {
      entries: ENTRIES,
      baseline: 'read the same entries through the same cursor and SHA-256 them',
      threads: 2,
      bulkLoadS: Number(loadS.toFixed(1)),
      sequenceS: Number(sequenceS.toFixed(1)),
      entryBytes: bytes,
    })

    const reader = storeNodeReader(store)
    const size = BigInt(head.size)
    const rnd = (i: number) => (i * 2654435761) % ENTRIES
    for (let i = 0; i < 300; i++) {
      await inclusionProof(reader, BigInt(rnd(i)), size)
      await store.readAudit(rnd(i), rnd(i) + 1)
    }
    const proofMs: number[] = []
    const readMs: number[] = []
    let nodes = 0
    for (let i = 0; i < 5000; i++) {
      const seq = rnd(i + 1000)
      let s = process.hrtime.bigint()
      nodes += (await inclusionProof(reader, BigInt(seq), size)).length
      proofMs.push(Number(process.hrtime.bigint() - s) / 1e6)
      s = process.hrtime.bigint()
      await store.readAudit(seq, seq + 1)
      readMs.push(Number(process.hrtime.bigint() - s) / 1e6)
    }
    const proofP99 = p99(proofMs)
    const readP99 = p99(readMs)
    await store.close()
    return [
      verifyFigure,
      figure('audit_proof_p99_ms', proofP99, 'ms', readP99, proofP99 / readP99, '<= 1', {
        entries: ENTRIES,
        proofs: proofMs.length,
        meanProofHashes: Number((nodes / proofMs.length).toFixed(1)),
        baseline: 'p99 of one indexed entry read (readAudit(seq, seq + 1))',
        medianMs: Number([...proofMs].sort((a, b) => a - b)[proofMs.length >> 1]!.toFixed(3)),
      }),
    ]
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

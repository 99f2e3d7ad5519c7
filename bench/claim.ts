// claim_pg_8_vs_1: claims (one case per transaction) per second on PostgreSQL with 8 concurrent workers ÷ 1 worker,
// same run; the auto-assigner's batched transactions are reported beside it.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { Store } from '../src/store/ports.js'
import { createPostgresStore } from '../src/store/postgres/database.js'
import { type Figure, figure } from './harness.js'

const ADMIN_URL =
  process.env.BATON_BENCH_DATABASE_URL ??
  process.env.BATON_TEST_DATABASE_URL ??
  'postgres://postgres@127.0.0.1:5432/postgres'
const CASES = 150_000
const OPERATORS = 64
const SLICE_MS = 4000
const ROUNDS = 2
/** Cases per auto-assigner transaction (the background assigner's unit, in the notes); claims are single-case. */
const BATCH = 10

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}

/** Claims hand out distinct cases from the end of the bulk-loaded range (the assigners take them by priority). */
let nextClaim = CASES - 1

/**
 * Assignments per second by `workers` concurrent workers over `ms`: `'claim'` is `claimCase` (an operator claims
 * one named case: POST /v1/cases/{id}/claim), `1` is `assignNext` (one case per transaction: assign-next), more is
 * `assignBatch` (the auto-assigner's transaction of up to `batch` cases).
 */
async function run(
  store: Store,
  workers: number,
  ms: number,
  candidates: readonly string[],
  batch: number | 'claim',
): Promise<number> {
  let done = 0
  const started = Date.now()
  const deadline = started + ms
  const at = new Date().toISOString()
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (Date.now() < deadline) {
        if (batch === 'claim') {
          const caseId = `cs_${nextClaim--}`
          const operatorId = candidates[nextClaim % candidates.length]!
          try {
            await store.claimCase({ caseId, operatorId, at, actor: { kind: 'operator', id: operatorId } })
            done++
          } catch (e) {
            // Taken by an assigner slice before (they pick by priority, across the whole range): not a claim.
            if ((e as { code?: string }).code !== 'CASE_ALREADY_ASSIGNED') throw e
          }
          continue
        }
        try {
          const input = { queue: 'bench', candidates: () => candidates, at, actor: { kind: 'admin', id: 'bench' } }
          const n =
            batch === 1
              ? (await store.assignNext(input)) === undefined
                ? 0
                : 1
              : (await store.assignBatch({ ...input, max: batch })).length
          if (n === 0) throw new Error('the bench queue ran dry: raise CASES')
          done += n
        } catch (e) {
          if ((e as { code?: string }).code !== 'CONFLICT') throw e
        }
      }
    }),
  )
  // Every assignment counted is in the audit log with its sequence number when the clock stops (PostgreSQL queues
  // audit entries and sequences them just after the commit; see src/store/audit-queue.ts).
  await store.flushAudit()
  return done / ((Date.now() - started) / 1000)
}

export async function claimPg8vs1(): Promise<Figure> {
  const name = `baton_bench_${randomBytes(5).toString('hex')}`
  await withClient(ADMIN_URL, (c) => c.query(`create database ${name}`))
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  const store = createPostgresStore(url.toString(), { poolSize: 10 })
  try {
    await store.migrate()
    const operators = Array.from({ length: OPERATORS }, (_, i) => ({ id: `op_${i}`, capacity: 10_000 }))
    await store.configureWork({ queues: [{ id: 'bench', slaSeconds: 900 }], operators })
    const t0 = Date.parse('2026-11-01T12:00:00.000Z')
    const handler = JSON.stringify({ kind: 'operator', queue: 'bench' })
    await withClient(url.toString(), async (c) => {
      for (let i = 0; i < CASES; i += 5000) {
        const n = Math.min(5000, CASES - i)
        await c.query(
          `insert into cases (id, customer_id, channel, subject, state, handler, handler_kind, queue, handoffs, messages,
             risk, first_text, last_event, version, created_at, updated_at, state_since)
           select 'cs_' || g, 'cu_' || g, 'chat', '', 'open', $1, 'operator', 'bench', 0, 1, '{}', '', 0, 1, $2, $2, $2
             from generate_series($3::int, $4::int) g`,
          [handler, new Date(t0).toISOString(), i, i + n - 1],
        )
        await c.query(
          `insert into work_items (case_id, queue, enqueued_at, sla_due, rank_ms, tier, risky, language, reason,
             operator_id, assigned_at, breached)
           select 'cs_' || g, 'bench', $1, $2, $3::bigint + (g % 1000) * 1000, '', 0, 'en',
             '{"rules":[],"trigger":"","reason":""}', null, null, 0
             from generate_series($4::int, $5::int) g`,
          [new Date(t0).toISOString(), new Date(t0 + 900_000).toISOString(), t0 + 900_000, i, i + n - 1],
        )
      }
      await c.query('analyze')
    })
    const ids = operators.map((o) => o.id)
    await run(store, 8, 1000, ids, BATCH) // warm-up: connections, plans
    let one = 0
    let eight = 0
    let oneNext = 0
    let eightNext = 0
    let oneBatched = 0
    let eightBatched = 0
    // Alternate so that drift (table growth, autovacuum) hits both sides alike.
    for (let r = 0; r < ROUNDS; r++) {
      one += await run(store, 1, SLICE_MS, ids, 'claim')
      eight += await run(store, 8, SLICE_MS, ids, 'claim')
      oneNext += await run(store, 1, SLICE_MS / 2, ids, 1)
      eightNext += await run(store, 8, SLICE_MS / 2, ids, 1)
      oneBatched += await run(store, 1, SLICE_MS / 2, ids, BATCH)
      eightBatched += await run(store, 8, SLICE_MS / 2, ids, BATCH)
    }
    const pair = (a: number, b: number) => ({
      one: Math.round(a / ROUNDS),
      eight: Math.round(b / ROUNDS),
      ratio: Number((b / a).toFixed(3)),
    })
    return figure('claim_pg_8_vs_1', eight / ROUNDS, 'assignments/s', one / ROUNDS, eight / one, '>= 2', {
      workers: 8,
      baseline: '1 worker, same database, alternating 4 s slices',
      perClaim:
        'one transaction (Store.claimCase, POST /v1/cases/{id}/claim): work item taken, capacity-guarded operator update, case handler, event, audit entry (queued; sequenced by the drainer before the clock stops)',
      assignNext: { ...pair(oneNext, eightNext), casesPerTransaction: 1 },
      autoAssignerBatches: { ...pair(oneBatched, eightBatched), casesPerTransaction: BATCH },
      operators: OPERATORS,
      queuedCases: CASES,
      poolSize: 10,
    })
  } finally {
    await store.close()
    await withClient(ADMIN_URL, (c) => c.query(`drop database if exists ${name} with (force)`))
  }
}

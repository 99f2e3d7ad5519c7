import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import pg from 'pg'
import { runCli } from '../test/support/audit.js'
import type { Ack, Observed } from './ledger.js'

/*
 * The readers the soak run checks its ledger with after each restart: the store itself (every acknowledged thing,
 * by SQL on the tables), the HTTP API (what the last server life acknowledged, read back the way a client would),
 * and the real `baton audit verify`.
 */

/** Where a soak run's store is: the data directory, and the PostgreSQL database when the engine is postgres. */
export interface StoreLocation {
  readonly dataDir: string
  readonly databaseUrl?: string | undefined
}

const QUERIES = {
  cases: 'select id from cases',
  decisions: 'select id from decisions',
  approvals: 'select id, state from approvals',
} as const

/** Every case, message, decision and approval in the store (read while the server runs: it only reads). */
export async function readStore(at: StoreLocation): Promise<Observed> {
  type Rows = { cases: { id: string }[]; messages: { id: string }[]; decisions: { id: string }[] } & {
    approvals: { id: string; state: string }[]
  }
  let rows: Rows
  if (at.databaseUrl !== undefined) {
    const c = new pg.Client({ connectionString: at.databaseUrl })
    c.on('error', () => undefined)
    await c.connect()
    try {
      const q = async <R extends pg.QueryResultRow>(text: string) => (await c.query<R>(text)).rows
      rows = {
        cases: await q(QUERIES.cases),
        messages: await q(`select data::json->>'messageId' as id from case_events where type = 'message.received'`),
        decisions: await q(QUERIES.decisions),
        approvals: await q(QUERIES.approvals),
      }
    } finally {
      await c.end().catch(() => undefined)
    }
  } else {
    const db = new SQLite(join(at.dataDir, 'baton.db'), { readonly: true, fileMustExist: true })
    try {
      const q = <R>(text: string) => db.prepare(text).all() as R[]
      rows = {
        cases: q(QUERIES.cases),
        messages: q(`select json_extract(data, '$.messageId') as id from case_events where type = 'message.received'`),
        decisions: q(QUERIES.decisions),
        approvals: q(QUERIES.approvals),
      }
    } finally {
      db.close()
    }
  }
  return {
    cases: new Set(rows.cases.map((r) => r.id)),
    messages: new Set(rows.messages.map((r) => r.id)),
    decisions: new Set(rows.decisions.map((r) => r.id)),
    approvals: new Map(rows.approvals.map((r) => [r.id, r.state])),
  }
}

/**
 * The cases and approvals `acks` name, read through the API (`GET /v1/cases/:id`, `GET /v1/approvals/:id`) with
 * `adminKey` for the cases and `operatorKey` for the approvals; a 404 leaves the thing out, any other failure throws.
 */
export async function readHttp(
  url: string,
  keys: { readonly adminKey: string; readonly operatorKey: string },
  acks: readonly Ack[],
  concurrency = 4,
): Promise<Observed> {
  const cases = new Set<string>()
  const messages = new Set<string>()
  const decisions = new Set<string>()
  const approvals = new Map<string, string>()
  const get = async (path: string, key: string) => {
    const r = await fetch(`${url}${path}`, {
      headers: { authorization: `Bearer ${key}` },
      signal: AbortSignal.timeout(15_000),
    })
    if (r.status === 404) return undefined
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`)
    return r.json() as Promise<unknown>
  }
  const caseIds = [...new Set(acks.flatMap((a) => (a.kind === 'approval.decide' ? [] : [a.caseId])))]
  const approvalIds = [...new Set(acks.flatMap((a) => (a.kind.startsWith('approval.') ? [approvalIdOf(a)] : [])))]
  const jobs = [
    ...caseIds.map((id) => async () => {
      const c = (await get(`/v1/cases/${id}`, keys.adminKey)) as
        | { id: string; messages: { id: string }[]; decisions: { decisionId: string }[] }
        | undefined
      if (c === undefined) return
      cases.add(c.id)
      for (const m of c.messages) messages.add(m.id)
      for (const d of c.decisions) decisions.add(d.decisionId)
    }),
    ...approvalIds.map((id) => async () => {
      const a = (await get(`/v1/approvals/${id}`, keys.operatorKey)) as { id: string; state: string } | undefined
      if (a !== undefined) approvals.set(a.id, a.state)
    }),
  ]
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let job = jobs.shift(); job !== undefined; job = jobs.shift()) await job()
    }),
  )
  return { cases, messages, decisions, approvals }
}

const approvalIdOf = (a: Ack) => ('approvalId' in a ? a.approvalId : '')

/**
 * Waits (up to `ms`) until a signed tree head of the server at `url` covers every audit entry: the restarted
 * sequencer resumed from the stored frontier. True when it did.
 */
export async function headCoversLog(url: string, adminKey: string, ms = 20_000): Promise<boolean> {
  const headers = { authorization: `Bearer ${adminKey}` }
  for (const deadline = Date.now() + ms; Date.now() < deadline; ) {
    const signal = AbortSignal.timeout(15_000)
    const h = await fetch(`${url}/v1/audit/head`, { headers, signal })
    const size = h.status === 200 ? ((await h.json()) as { size: number }).size : 0
    if (size > 0 && (await fetch(`${url}/v1/audit/entries/${size}`, { headers, signal })).status === 404) return true
    await new Promise((r) => setTimeout(r, 100))
  }
  return false
}

export interface Verified {
  readonly ok: boolean
  readonly entries: number
  readonly treeSize: number
  /** Why it did not pass (exit code, stderr, the result), when `ok` is false. */
  readonly why?: string
}

/** Runs the real `baton audit verify --json` (the built CLI) on the store at `at`. */
export async function auditVerify(at: StoreLocation): Promise<Verified> {
  const env = {
    BATON_DATA_DIR: at.dataDir,
    ...(at.databaseUrl === undefined ? {} : { BATON_DATABASE_URL: at.databaseUrl }),
  }
  const r = await runCli(['audit', 'verify', '--json'], env, 'dist')
  let result: { ok?: boolean; entries?: number; treeSize?: number } = {}
  try {
    result = JSON.parse(r.stdout) as typeof result
  } catch {
    // not JSON: reported below
  }
  const ok = r.code === 0 && result.ok === true
  return {
    ok,
    entries: result.entries ?? 0,
    treeSize: result.treeSize ?? 0,
    ...(ok ? {} : { why: `exit ${r.code}: ${r.stdout.trim()} ${r.stderr.trim()}`.trim() }),
  }
}

import { expect } from 'vitest'
import type { Store } from '../../src/store/ports.js'
import { runCli } from './audit.js'

/*
 * What the fault tests (a SIGKILL, a database restart, a full disk) check after the fault: nothing half-written, a
 * dense audit log that verifies.
 */

/**
 * Asserts that each stored case, opened with one message, has its whole history (opened, then the message, one
 * decision), that each case event has its audit entry, and that the log's sequence numbers are dense from 0.
 * Returns the stored cases' ids.
 */
export async function expectWholeCases(store: Store): Promise<string[]> {
  const cases = await store.listCases({ limit: 10_000 })
  let events = 0
  for (const c of cases) {
    const ev = await store.listCaseEvents(c.id)
    expect(ev.map((e) => e.type).slice(0, 2)).toEqual(['case.opened', 'message.received'])
    expect(ev.length).toBe(c.lastEvent)
    expect((await store.listDecisions(c.id)).length).toBe(1)
    events += ev.length
  }
  const entries = await store.readAudit(0, await store.auditSize())
  expect(entries.filter((e) => JSON.parse(e.entry).caseId !== undefined).length).toBe(events)
  expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i))
  return cases.map((c) => c.id)
}

/** Waits (up to `ms`) until a signed tree head of the server at `url` covers every audit entry: the sequencer runs. */
export async function expectHeadOverWholeLog(url: string, headers: Record<string, string>, ms = 20_000): Promise<void> {
  let covered = false
  for (const deadline = Date.now() + ms; !covered && Date.now() < deadline; ) {
    const h = await fetch(`${url}/v1/audit/head`, { headers })
    const size = h.status === 200 ? ((await h.json()) as { size: number }).size : 0
    covered = size > 0 && (await fetch(`${url}/v1/audit/entries/${size}`, { headers })).status === 404
    if (!covered) await new Promise((r) => setTimeout(r, 100))
  }
  expect(covered).toBe(true)
}

/** `baton audit verify --json` on the store `env` names passes: leaves, tree over every entry, every signed head. */
export async function expectAuditVerifies(env: Record<string, string>): Promise<void> {
  const verified = await runCli(['audit', 'verify', '--json'], env)
  expect(verified.stderr).toBe('')
  const result = JSON.parse(verified.stdout) as { ok: boolean; entries: number; treeSize: number }
  expect(result).toMatchObject({ ok: true })
  expect(result.treeSize).toBe(result.entries)
  expect(verified.code).toBe(0)
}

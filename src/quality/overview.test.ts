import { describe, expect, it } from 'vitest'
import type { StoredAuditEntry } from '../store/ports.js'
import { LiveHistory } from './live.js'
import { overviewSnapshot } from './overview.js'

describe('overview, folded live from the audit log', () => {
  const entries = (items: readonly Record<string, unknown>[]): StoredAuditEntry[] =>
    items.map((e, seq) => ({
      seq,
      entry: JSON.stringify({ seq, ...e }),
      leafHash: new Uint8Array(32),
      createdAt: String(e.at),
    }))
  const log = entries([
    { type: 'case.opened', at: '2026-01-01T10:00:00.000Z', caseId: 'a', data: { customerId: 'cu_a' } },
    {
      type: 'case.decided',
      at: '2026-01-01T10:00:00.000Z',
      caseId: 'a',
      data: { decisionId: 'd1', kind: 'route', handler: { kind: 'agent', agentId: 'x' }, rules: ['r'] },
    },
    { type: 'case.opened', at: '2026-01-01T10:01:00.000Z', caseId: 'b', data: { customerId: 'cu_b' } },
    {
      type: 'case.decided',
      at: '2026-01-01T10:01:00.000Z',
      caseId: 'b',
      data: { decisionId: 'd2', kind: 'route', handler: { kind: 'operator', queue: 'q' }, rules: ['to-q'] },
    },
    {
      type: 'case.handed_off',
      at: '2026-01-01T10:02:00.000Z',
      caseId: 'a',
      data: {
        from: { kind: 'agent', agentId: 'x' },
        to: { kind: 'hybrid', queue: 'q', agentId: 'x' },
        cause: { rules: ['pay'], trigger: 'payment' },
        countsAsHandoff: true,
      },
    },
    { type: 'case.assigned', at: '2026-01-01T10:03:00.000Z', caseId: 'a', data: { queue: 'q', operatorId: 'ada' } },
    { type: 'approval.requested', at: '2026-01-01T10:04:00.000Z', caseId: 'a', data: { approvalId: 'p' } },
    {
      type: 'approval.decided',
      at: '2026-01-01T10:04:30.000Z',
      caseId: 'a',
      data: { approvalId: 'p', state: 'approved' },
    },
  ])
  let served = log.length
  const store = {
    async *scanAudit(from: number) {
      yield log.slice(from, served)
    },
  }

  it('folds cases by first handler, escalations by cause, bounces, approval wait and SLA attainment', async () => {
    served = 4
    const live = new LiveHistory(store)
    await live.refresh()
    expect(live.entries).toBe(4)
    served = log.length
    await live.refresh() // incremental: the rest
    const s = overviewSnapshot(
      live.fold.cases.values(),
      { now: Date.parse('2026-01-01T10:20:00.000Z'), slaSeconds: () => 300, maxHandoffs: 4, isOverride: () => false },
      live.entries,
    )
    expect(s.bucketMinutes).toBe(1)
    expect(s.buckets).toHaveLength(21)
    const sum = (xs: readonly (number | null)[]) => xs.reduce<number>((n, x) => n + (x ?? 0), 0)
    expect(sum(s.casesByHandler.agent ?? [])).toBe(1)
    expect(sum(s.casesByHandler.operator ?? [])).toBe(1)
    expect(sum(s.escalationsByCause.trigger ?? [])).toBe(1) // a, by its trigger
    expect(sum(s.escalationsByCause.rule ?? [])).toBe(1) // b, at intake by its rule
    expect(s.handoffsPerCase).toEqual({ labels: ['0', '1', '2', '3', '4+'], counts: [1, 1, 0, 0, 0] })
    expect(s.approvalWait.filter((x) => x !== null)).toEqual([30])
    // b (10:01) still waits 19 minutes later (missed its 5 min); a (10:02) was taken a minute after (met)
    expect(s.slaAttainment.filter((x) => x !== null)).toEqual([0, 100])
    expect(s.totals).toEqual({ cases: 2, escalations: 2, approvals: 1, entries: 8 })
  })
})

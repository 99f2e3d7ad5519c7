import { describe, expect, it } from 'vitest'
import type { StoredAuditEntry } from '../store/ports.js'
import { escapeHtml, html, raw } from './html.js'
import { csrfToken, decodeClaims, encodeClaims, newSessionId } from './session.js'
import { OverviewStats } from './stats.js'

describe('html', () => {
  it('escapes every interpolated value unless it is already markup', () => {
    const evil = `<script>alert("x")</script>' onmouseover='x`
    const out = html`<p title="${evil}">${evil}${html`<b>${evil}</b>`}${raw('<i>ok</i>')}</p>`.toString()
    expect(out).not.toContain('<script>')
    expect(out).not.toContain(`'x`)
    expect(out).toContain('<b>&lt;script&gt;')
    expect(out).toContain('<i>ok</i>')
    expect(escapeHtml('&<>"\'`')).toBe('&amp;&lt;&gt;&quot;&#39;&#96;')
  })

  it('renders arrays, and nothing for null, undefined and false', () => {
    expect(html`${['a', '<b>', null, undefined, false, 0]}`.toString()).toBe('a&lt;b&gt;0')
  })
})

describe('session claims', () => {
  it('round-trips, and refuses expired or malformed values', () => {
    const sid = newSessionId()
    const value = encodeClaims({ sid, keyId: 'key_abc-DEF_1', exp: 2000 })
    expect(decodeClaims(value, 1999)).toEqual({ sid, keyId: 'key_abc-DEF_1', exp: 2000 })
    expect(decodeClaims(value, 2000)).toBeUndefined()
    expect(decodeClaims(`${value}x.1`, 0)).toBeUndefined()
    expect(decodeClaims(`v1.${sid}.key.with.dots.2000`, 0)).toBeUndefined()
  })

  it('binds the CSRF token to the session and the secret', () => {
    const a = newSessionId()
    const b = newSessionId()
    const k1 = new Uint8Array(32).fill(1)
    const k2 = new Uint8Array(32).fill(2)
    expect(csrfToken(k1, a)).toBe(csrfToken(k1, a))
    expect(csrfToken(k1, a)).not.toBe(csrfToken(k1, b))
    expect(csrfToken(k1, a)).not.toBe(csrfToken(k2, a))
  })
})

describe('overview stats', () => {
  const entries = (items: readonly Record<string, unknown>[]): StoredAuditEntry[] =>
    items.map((e, seq) => ({
      seq,
      entry: JSON.stringify({ seq, ...e }),
      leafHash: new Uint8Array(32),
      createdAt: String(e.at),
    }))
  const log = entries([
    { type: 'case.decided', at: '2026-01-01T10:00:00.000Z', caseId: 'a', data: { handler: { kind: 'agent' } } },
    {
      type: 'case.decided',
      at: '2026-01-01T10:01:00.000Z',
      caseId: 'b',
      data: { handler: { kind: 'operator', queue: 'q' } },
    },
    {
      type: 'case.handed_off',
      at: '2026-01-01T10:02:00.000Z',
      caseId: 'a',
      data: {
        from: { kind: 'agent' },
        to: { kind: 'hybrid', queue: 'q' },
        cause: { trigger: 'payment' },
        countsAsHandoff: true,
      },
    },
    { type: 'case.assigned', at: '2026-01-01T10:03:00.000Z', caseId: 'a', data: {} },
    { type: 'approval.requested', at: '2026-01-01T10:04:00.000Z', caseId: 'a', data: { approvalId: 'p' } },
    { type: 'approval.approved', at: '2026-01-01T10:04:30.000Z', caseId: 'a', data: { approvalId: 'p' } },
  ])
  const store = {
    async *scanAudit(from: number) {
      yield log.slice(from)
    },
  }

  it('folds cases by first handler, escalations by trigger, handoffs, approval wait and SLA attainment', async () => {
    const stats = new OverviewStats(store, () => 300)
    await stats.refresh()
    const s = stats.snapshot(new Date('2026-01-01T10:20:00.000Z'))
    expect(s.bucketMinutes).toBe(1)
    const sum = (xs: readonly (number | null)[]) => xs.reduce<number>((n, x) => n + (x ?? 0), 0)
    expect(sum(s.casesByHandler.agent ?? [])).toBe(1)
    expect(sum(s.casesByHandler.operator ?? [])).toBe(1)
    expect(sum(s.escalationsByTrigger.payment ?? [])).toBe(1)
    expect(s.handoffsPerCase.counts).toEqual([1, 1, 0, 0, 0])
    expect(s.approvalWait.filter((x) => x !== null)).toEqual([30])
    // a was taken a minute after it entered the queue (met); b still waits 19 minutes later (missed).
    expect(s.slaAttainment.filter((x) => x !== null)).toEqual([0, 100])
    expect(s.totals).toMatchObject({ cases: 2, escalations: 1, approvals: 1, entries: 6 })
  })
})

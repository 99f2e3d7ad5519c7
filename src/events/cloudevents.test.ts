import { describe, expect, it } from 'vitest'
import { canonicalEntry } from '../audit/entry.js'
import { backoffMs, eventTypeOf, subscribed, toCloudEvent } from './cloudevents.js'
import { formatSecret, sign, verify } from './signature.js'

const entry = (seq: number, type: string, data: unknown, caseId = 'cs_1') =>
  canonicalEntry(seq, { type, at: '2026-11-01T12:00:00.000Z', caseId, actor: { kind: 'service', id: 'k' }, data })

describe('eventTypeOf', () => {
  it('given audit types, when mapped, then case, approval and action events come out and the rest is not published', () => {
    expect(eventTypeOf('case.opened', {})).toBe('dev.baton.case.opened')
    expect(eventTypeOf('case.handed_off', { to: { kind: 'operator' } })).toBe('dev.baton.case.escalated')
    expect(eventTypeOf('case.handed_off', { to: { kind: 'hybrid' } })).toBe('dev.baton.case.escalated')
    expect(eventTypeOf('case.handed_off', { to: { kind: 'agent' } })).toBe('dev.baton.case.handed_back')
    expect(eventTypeOf('case.assigned', {})).toBe('dev.baton.case.assigned')
    expect(eventTypeOf('approval.requested', {})).toBe('dev.baton.approval.requested')
    expect(eventTypeOf('approval.decided', {})).toBe('dev.baton.approval.decided')
    expect(eventTypeOf('approval.expired', {})).toBe('dev.baton.approval.decided')
    expect(eventTypeOf('action.executed', {})).toBe('dev.baton.action.executed')
    for (const t of ['message.received', 'case.decided', 'key.created', 'approval.refused', 'webhook.created']) {
      expect(eventTypeOf(t, {})).toBeNull()
    }
  })
})

describe('toCloudEvent', () => {
  it('given a stored handoff entry, when converted, then it is a CloudEvents 1.0 event whose id is the audit seq', () => {
    const e = toCloudEvent(
      entry(42, 'case.handed_off', { to: { kind: 'operator' }, cause: { trigger: 'fraud' } }),
      'urn:baton:shop',
    )
    expect(e).toEqual({
      specversion: '1.0',
      id: '42',
      source: 'urn:baton:shop',
      type: 'dev.baton.case.escalated',
      time: '2026-11-01T12:00:00.000Z',
      subject: 'cs_1',
      datacontenttype: 'application/json',
      data: {
        to: { kind: 'operator' },
        cause: { trigger: 'fraud' },
        auditSeq: 42,
        auditType: 'case.handed_off',
        caseId: 'cs_1',
        actor: { kind: 'service', id: 'k' },
      },
    })
    expect(toCloudEvent(entry(1, 'message.received', {}), 'x')).toBeNull()
  })

  it('given subscription filters, when matched, then full types, short types and * select', () => {
    expect(subscribed(['case.escalated'], 'dev.baton.case.escalated')).toBe(true)
    expect(subscribed(['dev.baton.case.escalated'], 'dev.baton.case.escalated')).toBe(true)
    expect(subscribed(['*'], 'dev.baton.case.opened')).toBe(true)
    expect(subscribed(['case.assigned'], 'dev.baton.case.opened')).toBe(false)
  })

  it('given retries, when delayed, then the delay doubles up to the cap, with bounded jitter', () => {
    expect([1, 2, 3, 4].map((a) => backoffMs(a, 1000, 5000, 0))).toEqual([1000, 2000, 4000, 5000])
    expect(backoffMs(1, 1000, 5000, 1)).toBe(1200)
  })
})

describe('webhook signatures', () => {
  const secret = formatSecret(new Uint8Array(24).fill(7))
  it('given a signed body, when the receiver verifies it, then it holds, and fails for a changed body, id, secret or an old timestamp', () => {
    const h = sign(secret, '42', 1_800_000_000, '{"a":1}')
    expect(h['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/)
    expect(verify(secret, h, '{"a":1}', 1_800_000_010)).toBe(true)
    expect(verify(secret, h, '{"a":2}', 1_800_000_010)).toBe(false)
    expect(verify(secret, { ...h, 'webhook-id': '43' }, '{"a":1}', 1_800_000_010)).toBe(false)
    expect(verify(formatSecret(new Uint8Array(24).fill(8)), h, '{"a":1}', 1_800_000_010)).toBe(false)
    expect(verify(secret, h, '{"a":1}', 1_800_000_000 + 301)).toBe(false)
    expect(
      verify(secret, { ...h, 'webhook-signature': `v1,bad ${h['webhook-signature']}` }, '{"a":1}', 1_800_000_000),
    ).toBe(true)
  })
})

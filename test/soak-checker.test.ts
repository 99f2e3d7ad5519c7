import { describe, expect, it } from 'vitest'
import { describeLost, findLost, Ledger, type Observed } from '../soak/ledger.js'

/* The soak run's checker (soak/ledger.ts) catches each kind of loss: it is what `npm run soak` trusts for "lost 0". */

function ledger(): Ledger {
  const l = new Ledger()
  l.ack({ kind: 'case.open', life: 0, caseId: 'cs_1', messageId: 'msg_1', decisionId: 'dec_1' })
  l.ack({ kind: 'message.add', life: 1, caseId: 'cs_1', messageId: 'msg_2', decisionId: 'dec_2' })
  l.ack({ kind: 'case.open', life: 1, caseId: 'cs_2', messageId: 'msg_3', decisionId: 'dec_3' })
  l.ack({ kind: 'approval.request', life: 1, caseId: 'cs_2', approvalId: 'apr_1' })
  l.ack({ kind: 'approval.request', life: 2, caseId: 'cs_2', approvalId: 'apr_2' })
  l.ack({ kind: 'approval.decide', life: 2, approvalId: 'apr_1', state: 'denied' })
  return l
}

const everything = (): Observed => ({
  cases: new Set(['cs_1', 'cs_2', 'cs_unacknowledged']),
  messages: new Set(['msg_1', 'msg_2', 'msg_3']),
  decisions: new Set(['dec_1', 'dec_2', 'dec_3']),
  approvals: new Map([
    ['apr_1', 'denied'],
    ['apr_2', 'expired'],
  ]),
})

const without = (o: Observed, part: keyof Observed, id: string): Observed => {
  const copy = { ...o }
  if (part === 'approvals') {
    const m = new Map(o.approvals)
    m.delete(id)
    return { ...copy, approvals: m }
  }
  const s = new Set(o[part])
  s.delete(id)
  return { ...copy, [part]: s }
}

describe('the soak checker', () => {
  it('finds nothing lost when every acknowledged thing is there (more is fine: unacknowledged writes may land)', () => {
    expect(findLost(ledger().acks, everything())).toEqual([])
  })

  it('reports a lost case, message, decision and approval by id', () => {
    const acks = ledger().acks
    expect(findLost(acks, without(everything(), 'cases', 'cs_2'))).toEqual([
      { what: 'case', id: 'cs_2', caseId: 'cs_2', detail: 'opened (201) but not found' },
    ])
    expect(findLost(acks, without(everything(), 'messages', 'msg_2'))).toMatchObject([
      { what: 'message', id: 'msg_2', caseId: 'cs_1' },
    ])
    expect(findLost(acks, without(everything(), 'decisions', 'dec_1'))).toMatchObject([
      { what: 'decision', id: 'dec_1', caseId: 'cs_1' },
    ])
    expect(findLost(acks, without(everything(), 'approvals', 'apr_2'))).toMatchObject([
      { what: 'approval', id: 'apr_2', caseId: 'cs_2' },
    ])
  })

  it('reports an acknowledged approval decision that reads back undecided or gone', () => {
    const pending = { ...everything(), approvals: new Map([...everything().approvals, ['apr_1', 'pending']]) }
    expect(findLost(ledger().acks, pending)).toEqual([
      { what: 'approval decision', id: 'apr_1', detail: 'decided denied (200) but found pending' },
    ])
    const lost = findLost(ledger().acks, without(everything(), 'approvals', 'apr_1'))
    expect(lost.map((l) => l.what)).toEqual(['approval', 'approval decision'])
    expect(describeLost(lost)).toContain('apr_1')
  })

  it('an empty store loses everything acknowledged', () => {
    const none: Observed = { cases: new Set(), messages: new Set(), decisions: new Set(), approvals: new Map() }
    // 2 cases + 3 messages + 3 decisions + 2 approvals + 1 approval decision
    expect(findLost(ledger().acks, none)).toHaveLength(11)
  })

  it('keeps what each server life acknowledged, and hands each undecided approval to one decider', () => {
    const l = ledger()
    expect(l.since(2).map((a) => a.kind)).toEqual(['approval.request', 'approval.decide'])
    expect(l.takeUndecided(0)).toBe('apr_1')
    expect(l.takeUndecided(0)).toBe('apr_2')
    expect(l.takeUndecided(0)).toBeUndefined()
    expect(l.someCase(0.99)).toBe('cs_2')
  })
})

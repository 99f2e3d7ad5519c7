import { describe, expect, it } from 'vitest'
import { type ApprovalRecord, approvalDigest, canonicalDigest, eligibility } from './approval.js'

const NOW = new Date('2026-11-01T12:00:00Z')
const approval: ApprovalRecord = {
  id: 'apr_1',
  caseId: 'cs_1',
  actionId: 'act_1',
  tool: 'refund',
  params: { order_id: 'A-1', amount: 400, currency: 'EUR' },
  digest: '',
  requester: 'shop-assistant',
  approverRole: 'billing',
  queue: 'billing',
  rule: 'medium-refund',
  state: 'pending',
  caseEpoch: 0,
  createdAt: '2026-11-01T11:00:00.000Z',
  expiresAt: '2026-11-01T13:00:00.000Z',
  decidedBy: null,
  decidedAt: null,
  reason: null,
}
const ada = { kind: 'operator', id: 'ada', roles: ['operator', 'billing'] }

describe('approval digest', () => {
  it('is the sha256 of RFC 8785 canonical JSON: member order does not matter, values do', () => {
    const a = approvalDigest({
      tool: 'refund',
      params: { amount: 400, order_id: 'A-1' },
      caseId: 'cs_1',
      requester: 'x',
    })
    const b = approvalDigest({
      tool: 'refund',
      params: { order_id: 'A-1', amount: 400 },
      caseId: 'cs_1',
      requester: 'x',
    })
    const c = approvalDigest({
      tool: 'refund',
      params: { order_id: 'A-1', amount: 401 },
      caseId: 'cs_1',
      requester: 'x',
    })
    const d = approvalDigest({
      tool: 'refund',
      params: { order_id: 'A-1', amount: 400 },
      caseId: 'cs_2',
      requester: 'x',
    })
    expect(a).toBe(b)
    expect(a).not.toBe(c)
    expect(a).not.toBe(d)
    expect(a).toMatch(/^[0-9a-f]{64}$/)
    // RFC 8785 number form: 400.0 and 400 are the same JSON number.
    expect(canonicalDigest({ n: 400.0 })).toBe(canonicalDigest({ n: 400 }))
  })
})

describe('eligibility', () => {
  it('given a pending approval, when a billing operator decides before expiry, then it is eligible', () => {
    expect(eligibility(approval, ada, NOW)).toBeNull()
  })
  it('refuses the requester, other roles, non-operators, late and second decisions', () => {
    expect(eligibility(approval, { kind: 'operator', id: 'linus', roles: ['operator'] }, NOW)?.code).toBe(
      'APPROVER_NOT_ELIGIBLE',
    )
    expect(eligibility(approval, { kind: 'agent', id: 'shop-assistant', roles: ['billing'] }, NOW)?.code).toBe(
      'APPROVER_NOT_ELIGIBLE',
    )
    expect(eligibility(approval, { kind: 'admin', id: 'root', roles: ['billing'] }, NOW)?.code).toBe(
      'APPROVER_NOT_ELIGIBLE',
    )
    expect(eligibility({ ...approval, requester: 'ada' }, ada, NOW)?.code).toBe('APPROVER_NOT_ELIGIBLE')
    expect(eligibility(approval, ada, new Date('2026-11-01T13:00:00Z'))?.code).toBe('APPROVAL_EXPIRED')
    expect(eligibility({ ...approval, state: 'approved' }, ada, NOW)?.code).toBe('APPROVAL_NOT_PENDING')
  })
})

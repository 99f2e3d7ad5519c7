import { describe, expect, it } from 'vitest'
import { limitHolds, parseDelegation } from './document.js'
import {
  chainExpiry,
  chainProblem,
  effectiveScopes,
  type GrantLink,
  type GrantRecord,
  grantInputProblems,
  limitsFor,
} from './grants.js'

const NOW = new Date(Date.UTC(2026, 10, 1, 12, 0, 0))
const iso = (s: number) => new Date(NOW.getTime() + s * 1000).toISOString()
const spec = parseDelegation(
  `apiVersion: baton.dev/v1
kind: Delegation
scopes:
  - name: case:open
    description: open
    routes: ["POST /v1/cases"]
  - name: refund:request
    description: refunds
    tools: [refund]
    limits: params.amount <= 50
    max_grant: 1d
`,
  'delegation.yaml',
  { tools: ['refund'] },
)

const grant = (id: string, over: Partial<GrantRecord> = {}): GrantRecord => ({
  id,
  customerId: 'cu_1',
  delegateId: `d_${id}`,
  parentId: null,
  depth: 1,
  scopes: ['case:open', 'refund:request'],
  limits: {},
  maySubdelegate: true,
  state: 'active',
  createdAt: iso(-60),
  expiresAt: iso(3600),
  grantedBy: { kind: 'service', id: 'key_1' },
  note: '',
  revokedAt: null,
  revokedBy: null,
  revokeReason: null,
  ...over,
})
const link = (g: GrantRecord, delegateState: GrantLink['delegateState'] = 'active'): GrantLink => ({
  grant: g,
  delegateState,
})
const two = (over: Partial<GrantRecord> = {}, first: Partial<GrantRecord> = {}) => [
  link(grant('g1', first)),
  link(grant('g2', { parentId: 'g1', depth: 2, scopes: ['refund:request'], ...over })),
]

describe('a chain of grants', () => {
  it('given a customer grant and a narrower sub-delegation, then it holds', () => {
    expect(chainProblem(two(), NOW, 2)).toBeNull()
    expect(effectiveScopes(two(), spec)).toEqual(['refund:request'])
    expect(chainExpiry(two({ expiresAt: iso(60) }))).toBe(NOW.getTime() + 60_000)
  })

  it.each([
    ['a revoked middle hop', two({}, { state: 'revoked' }), 'GRANT_REVOKED'],
    ['an expired hop', two({ expiresAt: iso(0) }), 'GRANT_EXPIRED'],
    ['a suspended delegate above', [link(grant('g1'), 'suspended'), two()[1]!], 'DELEGATE_INACTIVE'],
    ['a sub-delegation the grant forbids', two({}, { maySubdelegate: false }), 'SUBDELEGATION_FORBIDDEN'],
    [
      'a sub-delegation wider than its parent',
      two({ scopes: ['case:open', 'refund:request'] }, { scopes: ['refund:request'] }),
      'SCOPE_NOT_GRANTED',
    ],
    ['another customer below', two({ customerId: 'cu_2' }), 'DELEGATION_MISMATCH'],
    ['a delegate twice', two({ delegateId: 'd_g1' }), 'DELEGATION_MISMATCH'],
    ['a chain that does not start at a customer grant', [two()[1]!], 'GRANT_NOT_FOUND'],
    ['no grant at all', [], 'GRANT_NOT_FOUND'],
  ])('given %s, then it is refused', (_name, chain, code) => {
    expect(chainProblem(chain, NOW, 3)?.code).toBe(code)
  })

  it('given a chain longer than max_chain, then it is refused', () => {
    expect(chainProblem(two(), NOW, 1)?.code).toBe('CHAIN_TOO_DEEP')
  })

  it('given limits on every hop, then a call must satisfy all of them, whatever a lower hop writes', () => {
    const chain = two(
      { limits: { 'refund:request': 'params.amount <= 500' } },
      { limits: { 'refund:request': 'params.amount <= 20' } },
    )
    const limits = limitsFor(spec, chain, 'refund:request')
    expect(limits.map((l) => l.text)).toEqual(['params.amount <= 50', 'params.amount <= 20', 'params.amount <= 500'])
    expect(limits.every((l) => limitHolds(l, 'refund', { amount: 20 }))).toBe(true)
    expect(limits.every((l) => limitHolds(l, 'refund', { amount: 30 }))).toBe(false)
  })
})

describe('a grant request', () => {
  const input = { delegate: 'd', scopes: ['refund:request'], expiresAt: iso(3600) }
  it('given declared scopes and an expiry within max_grant, then it has no problem', () => {
    expect(grantInputProblems(spec, input, NOW)).toEqual([])
  })
  it('given bad scopes, expiry and limits, then each problem names its field', () => {
    const fields = grantInputProblems(
      spec,
      {
        ...input,
        scopes: ['refund:request', 'refund:approve'],
        expiresAt: iso(2 * 86_400),
        limits: { 'case:open': 'true', 'refund:request': 'actor.id == "x"' },
      },
      NOW,
    ).map((p) => p.field)
    expect(fields).toEqual(['scopes[1]', 'expires_at', 'limits.case:open', 'limits.refund:request'])
    expect(grantInputProblems(spec, { ...input, expiresAt: iso(-1) }, NOW).map((p) => p.message)).toEqual([
      'must be in the future',
    ])
    expect(grantInputProblems(spec, input, NOW, NOW.getTime() + 60_000).map((p) => p.field)).toEqual(['expires_at'])
  })
})

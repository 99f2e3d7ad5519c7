import { describe, expect, it } from 'vitest'
import { isBatonError } from '../errors.js'
import { DEFAULT_MAX_CHAIN, limitHolds, parseDelegation, scopesForRoute, scopesForTool } from './document.js'

const TOOLS = { tools: ['refund', 'order_status', 'reply'] }

const good = `apiVersion: baton.dev/v1
kind: Delegation
scopes:
  - name: case:open
    description: Open a case
    routes: ["POST /v1/cases"]
  - name: refund:request
    description: Ask for small refunds
    tools: [refund]
    limits: params.amount <= 50
    max_grant: 7d
`

function problems(text: string): { line: number; column: number; message: string }[] {
  try {
    parseDelegation(text, 'delegation.yaml', TOOLS)
  } catch (e) {
    if (isBatonError(e, 'DELEGATION_INVALID')) return [...e.positions]
    throw e
  }
  throw new Error('expected DELEGATION_INVALID')
}

describe('delegation.yaml', () => {
  it('given a valid document, then scopes unlock their routes and tools, with limits and grant lengths', () => {
    const spec = parseDelegation(good, 'delegation.yaml', TOOLS)
    expect(spec.maxChain).toBe(DEFAULT_MAX_CHAIN)
    expect([...spec.scopes.keys()]).toEqual(['case:open', 'refund:request'])
    expect(spec.scopes.get('refund:request')?.maxGrantSeconds).toBe(7 * 86_400)
    expect(scopesForRoute(spec, ['case:open', 'refund:request'], 'POST /v1/cases')).toEqual(['case:open'])
    expect(scopesForRoute(spec, ['refund:request'], 'POST /v1/cases')).toEqual([])
    expect(scopesForTool(spec, ['case:open', 'refund:request'], 'refund')).toEqual(['refund:request'])
    const limit = spec.scopes.get('refund:request')?.limit
    expect(limit?.where).toBe('delegation.yaml:10:13')
    expect(limitHolds(limit!, 'refund', { amount: 50 })).toBe(true)
    expect(limitHolds(limit!, 'refund', { amount: 51 })).toBe(false)
    // a missing parameter fails closed
    expect(limitHolds(limit!, 'refund', {})).toBe(false)
  })

  it('given unknown keys, routes, tools and a bad limit, then each is reported with file:line:col', () => {
    const p = problems(`apiVersion: baton.dev/v1
kind: Delegation
scopes:
  - name: case:open
    description: Open a case
    routes: ["POST /v1/keys"]
  - name: refund:request
    description: Refunds
    tools: [refnd]
    limits: params.amount <= 50 && actor.kind == 'x'
`)
    expect(p.map((x) => [x.line, x.column])).toEqual([
      [6, 14],
      [9, 13],
      [10, 36],
    ])
    expect(p[0]?.message).toMatch(/a delegate may not reach 'POST \/v1\/keys'/)
    expect(p[1]?.message).toMatch(/unknown tool 'refnd'.*did you mean 'refund'/)
    expect(p[2]?.message).toMatch(/a limit reads only params and tool, not 'actor.kind'/)
  })

  it('given schema errors, then they are reported with positions', () => {
    const p = problems(`apiVersion: baton.dev/v1
kind: Delegation
max_chain: 0
scopes:
  - name: Case Open
    description: x
    route: []
`)
    expect(p.length).toBeGreaterThanOrEqual(3)
    expect(p.every((x) => x.line >= 3)).toBe(true)
    expect(p.map((x) => x.message).join('\n')).toMatch(/unknown field 'route'/)
  })

  it('given a limit that is not CEL, then the error points into the expression', () => {
    const p = problems(`apiVersion: baton.dev/v1
kind: Delegation
scopes:
  - name: refund:request
    description: Refunds
    tools: [refund]
    limits: "params.amount <<= 50"
`)
    expect(p).toHaveLength(1)
    expect(p[0]?.line).toBe(7)
    expect(p[0]?.column).toBeGreaterThan(13)
    expect(p[0]?.message).toMatch(/CEL/)
  })

  it('given a scope that unlocks nothing, or limits without tools, then it is refused', () => {
    const p = problems(`apiVersion: baton.dev/v1
kind: Delegation
scopes:
  - name: empty
    description: nothing
  - name: limited
    description: x
    routes: ["POST /v1/cases"]
    limits: params.amount <= 1
`)
    expect(p.map((x) => x.message)).toEqual([
      "scope 'empty' unlocks nothing: give it routes or tools",
      "scope 'limited' has limits but no tools: limits read a tool call",
    ])
  })
})

import { describe, expect, it } from 'vitest'
import { agentHoldsCase, statesLeadingTo, transitionProblem } from './principals.js'

describe('agent lifecycle', () => {
  it('allows provisioned → active ⇄ suspended and any → retired', () => {
    expect(transitionProblem('provisioned', 'active')).toBeNull()
    expect(transitionProblem('active', 'suspended')).toBeNull()
    expect(transitionProblem('suspended', 'active')).toBeNull()
    expect(transitionProblem('suspended', 'retired')).toBeNull()
    expect(transitionProblem('provisioned', 'retired')).toBeNull()
  })
  it('never brings a retired agent back, nor suspends a provisioned one', () => {
    expect(transitionProblem('retired', 'active')).toMatch(/final/)
    expect(transitionProblem('retired', 'suspended')).toMatch(/final/)
    expect(transitionProblem('provisioned', 'suspended')).not.toBeNull()
    expect(statesLeadingTo('active').sort()).toEqual(['provisioned', 'suspended'])
    expect(statesLeadingTo('retired').sort()).toEqual(['active', 'provisioned', 'suspended'])
  })
  it('an agent holds a case as its agent or as the drafting agent of a hybrid case', () => {
    expect(agentHoldsCase({ kind: 'agent', agentId: 'a' }, 'a')).toBe('agent')
    expect(agentHoldsCase({ kind: 'hybrid', agentId: 'a' }, 'a')).toBe('hybrid')
    expect(agentHoldsCase({ kind: 'agent', agentId: 'b' }, 'a')).toBeNull()
    expect(agentHoldsCase({ kind: 'operator' }, 'a')).toBeNull()
  })
})

import { describe, expect, it } from 'vitest'
import { cachedAgentStates } from './agent-states.js'
import type { AgentState } from './principals.js'

function fakeStore(states: Record<string, AgentState>) {
  const calls = { n: 0, fail: false }
  return {
    calls,
    states,
    store: {
      async agentStates() {
        calls.n++
        if (calls.fail) throw new Error('store down')
        return { ...states }
      },
    },
  }
}

describe('cachedAgentStates', () => {
  it('given reads within the maximum age, when read again, then the store is asked once', async () => {
    let t = 0
    const f = fakeStore({ bot: 'active' })
    const c = cachedAgentStates(f.store, () => t, 1000)
    expect(await c.read()).toEqual({ bot: 'active' })
    f.states.bot = 'suspended'
    t = 999
    expect(await c.read()).toEqual({ bot: 'active' })
    expect(f.calls.n).toBe(1)
    t = 1000
    expect(await c.read()).toEqual({ bot: 'suspended' })
    expect(f.calls.n).toBe(2)
  })

  it('given an invalidation, when read, then the store is asked at once', async () => {
    const f = fakeStore({ bot: 'active' })
    const c = cachedAgentStates(f.store, () => 0, 1000)
    await c.read()
    f.states.bot = 'retired'
    c.invalidate()
    expect(await c.read()).toEqual({ bot: 'retired' })
    expect(f.calls.n).toBe(2)
  })

  it('given concurrent readers, when read, then they share one query; a failed query is not kept', async () => {
    const f = fakeStore({ bot: 'active' })
    const c = cachedAgentStates(f.store, () => 0, 1000)
    const [a, b] = await Promise.all([c.read(), c.read()])
    expect(a).toEqual(b)
    expect(f.calls.n).toBe(1)
    c.invalidate()
    f.calls.fail = true
    await expect(c.read()).rejects.toThrow('store down')
    f.calls.fail = false
    expect(await c.read()).toEqual({ bot: 'active' })
    expect(f.calls.n).toBe(3)
  })
})

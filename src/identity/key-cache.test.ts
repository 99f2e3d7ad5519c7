import { describe, expect, it } from 'vitest'
import type { ApiKeyRecord } from '../store/ports.js'
import { cachedKeys } from './key-cache.js'

const key = (revokedAt: string | null = null): ApiKeyRecord => ({
  id: 'key_1',
  name: 'helpdesk',
  role: 'service',
  hash: 'h1',
  createdAt: '2026-01-01T00:00:00.000Z',
  revokedAt,
})

/** A store of one key whose reads are counted, and a clock the test moves. */
function given(record: ApiKeyRecord | undefined) {
  const s = { record, reads: 0, t: 0 }
  const store = {
    findKeyByHash: async (hash: string) => {
      s.reads++
      return hash === 'h1' ? s.record : undefined
    },
  }
  return { s, cache: cachedKeys(store, () => s.t, 1000) }
}

describe('cachedKeys', () => {
  it('reads an active key once per maxAgeMs', async () => {
    const { s, cache } = given(key())
    expect(await cache.active('h1')).toEqual(key())
    s.t = 999
    expect(await cache.active('h1')).toEqual(key())
    expect(s.reads).toBe(1)
    s.t = 1000
    await cache.active('h1')
    expect(s.reads).toBe(2)
  })

  it('never keeps an unknown or revoked key', async () => {
    const { s, cache } = given(key('2026-01-02T00:00:00.000Z'))
    expect(await cache.active('h1')).toBeUndefined()
    expect(await cache.active('h1')).toBeUndefined()
    expect(await cache.active('h2')).toBeUndefined()
    expect(s.reads).toBe(3)
  })

  it('stops answering a revoked key at once when invalidated', async () => {
    const { s, cache } = given(key())
    await cache.active('h1')
    s.record = key('2026-01-02T00:00:00.000Z')
    cache.invalidate()
    expect(await cache.active('h1')).toBeUndefined()
  })

  it('does not keep a read that was in flight when the cache was invalidated', async () => {
    const { s, cache } = given(key())
    const inFlight = cache.active('h1')
    cache.invalidate()
    expect(await inFlight).toEqual(key())
    s.record = key('2026-01-02T00:00:00.000Z')
    expect(await cache.active('h1')).toBeUndefined()
  })
})

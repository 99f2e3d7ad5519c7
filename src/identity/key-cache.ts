import type { ApiKeyRecord, Store } from '../store/ports.js'

/**
 * The active API keys, by hash, as authentication reads them, each kept for at most `maxAgeMs` after the store said
 * it was active, so that a request with a key does not cost a store read every time. Unknown and revoked keys are
 * never kept: a new key works at once, a refused one is asked again at its next use.
 *
 * A revocation clears the cache (`invalidate`): on the revoking node as soon as the revocation commits, and on every
 * other node when the store's `keys` change notification arrives (PostgreSQL `NOTIFY`, delivered at commit). So a
 * revoked key stops working at once on every node whose change listener is up, and within `maxAgeMs` on a node whose
 * listener is down (the feed clears the cache again once it listens). A read already in flight when the cache is
 * cleared answers its request but is not kept.
 */
export interface KeyCache {
  /** The key with SHA-256 `hash` (see `hashKey`) when it exists and is not revoked; `undefined` otherwise. */
  active(hash: string): Promise<ApiKeyRecord | undefined>
  /** Forgets every key (a key was revoked, or the change feed may have missed a revocation). */
  invalidate(): void
}

/** Entries kept at most; past it the cache starts over (keys are few; this bounds a flood of distinct valid keys). */
const MAX_ENTRIES = 10_000

export function cachedKeys(store: Pick<Store, 'findKeyByHash'>, now: () => number, maxAgeMs: number): KeyCache {
  let held = new Map<string, { readonly at: number; readonly key: ApiKeyRecord }>()
  let generation = 0
  return {
    async active(hash) {
      const t = now()
      const hit = held.get(hash)
      if (hit !== undefined && t - hit.at < maxAgeMs) return hit.key
      const mine = generation
      const key = await store.findKeyByHash(hash)
      if (key === undefined || key.revokedAt !== null) {
        held.delete(hash)
        return undefined
      }
      // read before a revocation that cleared the cache meanwhile: good for this request, not kept for the next
      if (generation === mine) {
        if (held.size >= MAX_ENTRIES) held = new Map()
        held.set(hash, { at: t, key })
      }
      return key
    },
    invalidate() {
      generation++
      held = new Map()
    },
  }
}

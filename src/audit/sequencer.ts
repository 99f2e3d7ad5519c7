import { BatonError, isBatonError } from '../errors.js'
import type { SequencerLease, SignedTreeHead, Store } from '../store/ports.js'
import { backoff } from '../timers/loop.js'
import { bytesEqual, toHex } from './entry.js'
import type { HeadSigner } from './head.js'
import { type CompletedNode, type NodeReader, TreeBuilder } from './merkle.js'
import type { AuditLog } from './signing.js'

/*
 * The audit sequencer: integrates new audit entries into the stored Merkle tree and signs a tree head for each
 * integration. Not a pure module: it owns a timer. Time comes from `deps.now`, keys from `deps.signer`.
 *
 * It keeps the tree's frontier in memory (resumed from the stored frontier at start, O(log n) reads, never a rebuild)
 * and writes each batch's completed subtrees and its signed head in one transaction (`Store.integrateTree`), so a
 * crash leaves the stored tree at a signed head, never between two.
 */

export interface Sequencer {
  /**
   * Integrates every entry present now (in transactions of at most `batchSize` leaves, one signed head each) and
   * returns the latest head; undefined while the log is empty. Calls are serialised.
   */
  sequenceOnce(): Promise<SignedTreeHead | undefined>
  /** Runs `sequenceOnce` every `intervalMs` while this process holds the sequencer lease. */
  start(intervalMs: number): void
  /** Stops the timer, waits for a running integration and gives the lease up. */
  stop(): Promise<void>
}

export interface SequencerDeps {
  readonly store: Store
  /** The key to sign with now; undefined skips signing (and integrating) this round. */
  readonly signer: () => Promise<HeadSigner | undefined>
  readonly now: () => Date
  readonly log?: AuditLog
  /** Leaves per transaction and head (default 50,000). */
  readonly batchSize?: number
  /**
   * Notifications of new audit entries (`store.changes`): with them, a round integrates only after one arrived (or
   * every `FALLBACK_ROUNDS`th round, in case one was missed) instead of reading the log every round.
   */
  readonly changes?: Store['changes']
}

/** Rounds between integrations that no notification asked for (the fallback behind `changes`). */
export const FALLBACK_ROUNDS = 10

/** Reads stored subtrees through the store, for the proof functions of `merkle.ts`. */
export function storeNodeReader(store: Pick<Store, 'getTreeNodes'>): NodeReader {
  return {
    get: async (level, index) => (await store.getTreeNodes([{ level, index }]))[0]!,
    getMany: (addresses) => store.getTreeNodes(addresses),
  }
}

export function createSequencer(deps: SequencerDeps): Sequencer {
  const { store, now, log } = deps
  const batchSize = deps.batchSize ?? 50_000
  let builder: TreeBuilder | undefined
  let last: SignedTreeHead | undefined
  let chain: Promise<unknown> = Promise.resolve()
  let timer: NodeJS.Timeout | undefined
  let stopped = true
  let lease: SequencerLease | undefined
  let tick: Promise<void> | undefined
  // True when entries may have been appended since the last integration: at start, and at every notification.
  let dirty = true
  let quietRounds = 0
  let offAudit: (() => void) | undefined

  async function resume(): Promise<TreeBuilder> {
    last = await store.latestHead()
    if (last === undefined) return new TreeBuilder()
    const b = await TreeBuilder.fromReader(storeNodeReader(store), BigInt(last.size))
    if (!bytesEqual(b.root(), last.root)) {
      throw new BatonError(
        'AUDIT_INVALID',
        `the stored frontier of size ${last.size} folds to ${toHex(b.root())}, not the signed root ${toHex(last.root)}: run \`baton audit verify\``,
      )
    }
    return b
  }

  async function integrate(): Promise<SignedTreeHead | undefined> {
    builder ??= await resume()
    for (;;) {
      const from = Number(builder.size)
      const leaves = await store.readLeafHashes(from, batchSize)
      // Only a dense prefix: sequence numbers commit in order, so a gap means a reader raced a writer.
      let n = 0
      while (n < leaves.length && leaves[n]!.seq === from + n) n++
      if (n === 0) return last
      const signer = await deps.signer()
      if (signer === undefined) return last
      const next = TreeBuilder.fromFrontier(builder.size, builder.frontier())
      const nodes: CompletedNode[] = []
      for (let i = 0; i < n; i++) {
        for (const node of next.append(leaves[i]!.leafHash)) if (node.level > 0) nodes.push(node)
      }
      const at = now().toISOString()
      // Heads are ordered by size; keep their timestamps ordered too if the clock steps back.
      const timestamp = last !== undefined && last.timestamp > at ? last.timestamp : at
      const head = signer.sign({ size: Number(next.size), root: next.root(), timestamp })
      try {
        await store.integrateTree(from, nodes, head)
      } catch (e) {
        // Another sequencer moved the tree (or the write failed): resume from what is stored next time.
        builder = undefined
        throw e
      }
      builder = next
      last = head
      if (n < batchSize) return last
    }
  }

  function sequenceOnce(): Promise<SignedTreeHead | undefined> {
    const run = chain.then(integrate, integrate)
    chain = run.catch(() => undefined)
    return run
  }

  async function round(): Promise<void> {
    if (lease !== undefined && !(await lease.held())) {
      await lease.release()
      lease = undefined
      builder = undefined
    }
    if (lease === undefined) {
      lease = await store.acquireSequencerLease()
      dirty = true // a new holder resumes from the store
    }
    if (lease === undefined) return
    if (deps.changes !== undefined && !dirty && ++quietRounds < FALLBACK_ROUNDS) return
    quietRounds = 0
    dirty = false
    try {
      await sequenceOnce()
    } catch (e) {
      dirty = true
      if (!isBatonError(e, 'CONFLICT')) throw e
      log?.warn({ err: e.message }, 'audit sequencer lost a race; resuming')
    }
  }

  // Rounds failed in a row (the store away): the first is logged, then the loop backs off until one succeeds.
  let failures = 0

  function schedule(intervalMs: number, delay: number): void {
    if (stopped) return
    timer = setTimeout(() => {
      const started = now().getTime()
      tick = round()
        .then(
          () => {
            if (failures > 0) log?.warn({ failures }, 'audit sequencer resumed')
            failures = 0
          },
          (e: unknown) => {
            if (failures === 0) {
              if (isBatonError(e, 'STORE_UNAVAILABLE') || isBatonError(e, 'STORE_FULL'))
                log?.warn({ err: e.message }, 'audit sequencing paused: the store is unavailable; retrying')
              else log?.error({ err: e }, 'audit sequencing failed; retrying')
            }
            failures++
          },
        )
        .finally(() => {
          tick = undefined
          const wait = failures === 0 ? intervalMs : backoff(intervalMs, failures)
          schedule(intervalMs, Math.max(0, wait - (now().getTime() - started)))
        })
    }, delay)
    timer.unref()
  }

  return {
    sequenceOnce,
    start(intervalMs) {
      if (!Number.isFinite(intervalMs) || intervalMs < 1)
        throw new TypeError(`intervalMs must be ≥ 1, got ${intervalMs}`)
      if (!stopped) return
      stopped = false
      offAudit = deps.changes?.subscribe('audit', () => {
        dirty = true
      })
      schedule(intervalMs, 0)
    },
    async stop() {
      stopped = true
      offAudit?.()
      offAudit = undefined
      clearTimeout(timer)
      await tick
      await chain
      await lease?.release()
      lease = undefined
    },
  }
}

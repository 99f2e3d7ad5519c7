import type { Store } from '../store/ports.js'
import type { AgentState } from './principals.js'

/**
 * Every registered agent's state, as routing reads it (`agents.<id>.state`), kept for at most `maxAgeMs` so that
 * intake does not ask the store for it at every message. An old state is safe: a case decided for an agent that has
 * stopped being active is refused when it is committed (`CaseCommit.requireActiveAgent`), and the writer calls
 * `invalidate()` and decides again; an agent reactivated on another node gets cases again within `maxAgeMs` (until
 * then they go to the fallback queue). The decision's facts record the state it read, so a replay is unaffected.
 */
export interface AgentStates {
  read(): Promise<Readonly<Record<string, AgentState>>>
  /** The next `read` asks the store (after a refused commit, or a lifecycle change made on this node). */
  invalidate(): void
}

export function cachedAgentStates(store: Pick<Store, 'agentStates'>, now: () => number, maxAgeMs: number): AgentStates {
  let held: { readonly at: number; readonly states: Promise<Readonly<Record<string, AgentState>>> } | undefined
  let generation = 0
  return {
    read() {
      const t = now()
      if (held !== undefined && t - held.at < maxAgeMs) return held.states
      const mine = ++generation
      // concurrent readers share one query; a failed one is not kept
      const states = store.agentStates().catch((e: unknown) => {
        if (generation === mine) held = undefined
        throw e
      })
      held = { at: t, states }
      return states
    },
    invalidate() {
      generation++
      held = undefined
    },
  }
}

/** No cache: every read asks the store (tests, the CLI, and whatever is not on the intake path). */
export function storeAgentStates(store: Pick<Store, 'agentStates'>): AgentStates {
  return { read: () => store.agentStates(), invalidate: () => undefined }
}

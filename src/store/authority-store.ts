import { actionStore } from './action-store.js'
import { agentStore } from './agent-store.js'
import type { AuthorityStore } from './ports.js'
import type { StoreParts } from './store-parts.js'

export { APPROVAL_EXPIRY_TIMER, CONFIRMATION_EXPIRY_TIMER } from './action-store.js'
export type { ActionCommit, AuthorityStore, CaseChange, IssuedCredentialRecord, TimerDraft } from './ports.js'

/**
 * Timer kind of the follow-up of an agent's suspension or retirement (key: `<agentId>@<at>`, payload: `agentId`,
 * `reason`, `actor`): the cases the agent held are decided again (`rerouteCasesOf` in `src/queues/work.ts`).
 */
export const AGENT_REROUTE_TIMER = 'agent_reroute'

/** Agents, operators and credentials (`agent-store.ts`); actions, approvals and confirmations (`action-store.ts`). */
export function authorityStore(parts: StoreParts): AuthorityStore {
  return { ...agentStore(parts), ...actionStore(parts) }
}

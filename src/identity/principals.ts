import type { AgentState } from '../workspace/workspace.js'

export { AGENT_STATES, type AgentState } from '../workspace/workspace.js'

/** An AI agent as registered: a workload identity with a named human owner and a lifecycle. */
export interface AgentRecord {
  readonly id: string
  /** The accountable human (an email or operator id). */
  readonly owner: string
  readonly purpose: string
  readonly model: string
  /** Every tool the agent may ever use; policy decides each call within this set. */
  readonly tools: readonly string[]
  /** Outcomes the agent may close a case with. */
  readonly closure: readonly string[]
  readonly state: AgentState
  readonly createdAt: string
  readonly updatedAt: string
  /** Last owner review of the agent's privileges (`baton agents review --confirm`), null if never. */
  readonly reviewedAt: string | null
  readonly reviewedBy: string | null
}

/** A human operator: roles decide what they may approve; skills, languages and capacity serve the queues. */
export interface OperatorRecord {
  readonly id: string
  readonly name: string
  readonly roles: readonly string[]
  readonly skills: readonly string[]
  readonly languages: readonly string[]
  readonly capacity: number
  readonly createdAt: string
  readonly updatedAt: string
}

/**
 * A credential an agent authenticates with at the token endpoint: an Ed25519 public key (JWT assertions, RFC 7523)
 * or a client secret, stored as its SHA-256 (secrets are 256-bit random: a slow hash adds nothing).
 */
export interface AgentCredentialRecord {
  readonly id: string
  readonly agentId: string
  readonly kind: 'public_key' | 'secret'
  /** The public JWK (`kty: OKP, crv: Ed25519`) for `public_key`. */
  readonly publicJwk: Readonly<Record<string, unknown>> | null
  /** sha256 hex of the secret for `secret`. */
  readonly secretHash: string | null
  readonly createdAt: string
  readonly revokedAt: string | null
}

/** Lifecycle: provisioned → active ⇄ suspended, any → retired; retired is final. */
export const AGENT_TRANSITIONS: { readonly [S in AgentState]: readonly AgentState[] } = {
  provisioned: ['active', 'retired'],
  active: ['suspended', 'retired'],
  suspended: ['active', 'retired'],
  retired: [],
}

/** States from which `to` may be reached. */
export function statesLeadingTo(to: AgentState): AgentState[] {
  return (Object.keys(AGENT_TRANSITIONS) as AgentState[]).filter((s) => AGENT_TRANSITIONS[s].includes(to))
}

/** Null when the transition is allowed, else why not (for an `AGENT_STATE_INVALID` message). */
export function transitionProblem(from: AgentState, to: AgentState): string | null {
  if (AGENT_TRANSITIONS[from].includes(to)) return null
  if (from === 'retired') return 'a retired agent cannot change state (retirement is final)'
  return `an agent cannot go from '${from}' to '${to}' (allowed: ${AGENT_TRANSITIONS[from].join(', ') || 'none'})`
}

/** Whether an agent's handler relation to a case lets it act there. */
export function agentHoldsCase(
  handler: { readonly kind: string; readonly agentId?: string },
  agentId: string,
): 'agent' | 'hybrid' | null {
  if (handler.kind === 'agent' && handler.agentId === agentId) return 'agent'
  if (handler.kind === 'hybrid' && handler.agentId === agentId) return 'hybrid'
  return null
}

export const DELEGATE_STATES = ['active', 'suspended', 'retired'] as const
export type DelegateState = (typeof DELEGATE_STATES)[number]

/**
 * A customer's own AI agent, registered as a principal of kind `delegate`: who makes it and who to call about it,
 * and the Ed25519 public key its RFC 7523 assertions (the `actor_token` of a token exchange) are signed with. It
 * holds no authority of its own: everything it may do comes from a customer's grant.
 */
export interface DelegateRecord {
  readonly id: string
  readonly name: string
  /** Who makes or runs it (a company, a product): the accountable party. */
  readonly vendor: string
  /** Whom to contact about it (an email or URL). */
  readonly contact: string
  /** The public JWK (`kty: OKP, crv: Ed25519, x`). */
  readonly publicJwk: Readonly<Record<string, unknown>>
  readonly state: DelegateState
  readonly createdAt: string
  readonly updatedAt: string
}

/** Lifecycle: active ⇄ suspended, any → retired; retired is final. */
export const DELEGATE_TRANSITIONS: { readonly [S in DelegateState]: readonly DelegateState[] } = {
  active: ['suspended', 'retired'],
  suspended: ['active', 'retired'],
  retired: [],
}

/** States from which `to` may be reached. */
export function delegateStatesLeadingTo(to: DelegateState): DelegateState[] {
  return (Object.keys(DELEGATE_TRANSITIONS) as DelegateState[]).filter((s) => DELEGATE_TRANSITIONS[s].includes(to))
}

/** Null when the transition is allowed, else why not (for a `DELEGATE_STATE_INVALID` message). */
export function delegateTransitionProblem(from: DelegateState, to: DelegateState): string | null {
  if (DELEGATE_TRANSITIONS[from].includes(to)) return null
  if (from === 'retired') return 'a retired delegate cannot change state (retirement is final)'
  return `a delegate cannot go from '${from}' to '${to}' (allowed: ${DELEGATE_TRANSITIONS[from].join(', ') || 'none'})`
}

/** Null when `jwk` is an Ed25519 public key without a private part, else what is wrong. */
export function publicJwkProblem(jwk: Readonly<Record<string, unknown>>): string | null {
  const { kty, crv, x } = jwk
  if (kty !== 'OKP' || crv !== 'Ed25519' || typeof x !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(x)) {
    return 'expected an Ed25519 public key {kty: OKP, crv: Ed25519, x}'
  }
  if ('d' in jwk) return 'expected a public key: the JWK has a private part (d)'
  return null
}

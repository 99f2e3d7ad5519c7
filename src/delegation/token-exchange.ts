import { decodeJwt } from 'jose'
import type { Actor, DelegationContext } from '../cases/intake.js'
import type { AuthorityDeps } from '../credentials/deps.js'
import { auditRefusal, verifyClientAssertion } from '../credentials/oauth.js'
import { actChain, actOf, credentialError, type DelegateClaims } from '../credentials/tokens.js'
import { BatonError } from '../errors.js'
import { chainExpiry, chainProblem, effectiveScopes, type GrantLink, type GrantRecord, grantFacts } from './grants.js'

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'
/** Token types of RFC 8693 §3, and Baton's own for a grant reference. */
export const TOKEN_TYPES = {
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  grant: 'urn:baton:params:oauth:token-type:grant',
} as const

/** One-time-id scope of delegates' actor assertions (`Store.recordExchange`). */
const ASSERTION_SCOPE = 'delegate_assertion'

/** The token endpoint's parameters of a token exchange (RFC 8693 §2.1). */
export interface ExchangeRequest {
  readonly grant_type?: string | undefined
  /** A grant id (`subject_token_type` = Baton's grant type) or an upstream delegate's access token. */
  readonly subject_token?: string | undefined
  readonly subject_token_type?: string | undefined
  /** The delegate's client assertion (RFC 7523): it authenticates the delegate. */
  readonly actor_token?: string | undefined
  readonly actor_token_type?: string | undefined
  /** Space-separated scopes within the grant; default: every scope the chain confers. */
  readonly scope?: string | undefined
  readonly requested_token_type?: string | undefined
  readonly audience?: string | undefined
}

export interface ExchangeResponse {
  readonly access_token: string
  readonly issued_token_type: typeof TOKEN_TYPES.accessToken
  readonly token_type: 'Bearer'
  readonly expires_in: number
  readonly scope: string
  /** The grant the token acts under (Baton extension). */
  readonly grant: string
}

/** A verified delegate request: who acts, for which customer, under which chain, with which scopes now. */
export interface DelegateAuth {
  /** Kind `delegate`, with the delegation context every audit entry and decision records. */
  readonly actor: Actor & { readonly delegation: DelegationContext }
  readonly delegateId: string
  readonly customerId: string
  /** The customer's own grant first, the token's grant last. */
  readonly chain: readonly GrantLink[]
  readonly grant: GrantRecord
  /** The token's scopes that the chain still confers. */
  readonly scopes: readonly string[]
  readonly claims: DelegateClaims
}

type Deps = Pick<
  AuthorityDeps,
  'store' | 'signer' | 'now' | 'newId' | 'apiAudience' | 'tokenAudiences' | 'delegation' | 'delegateTokenTtlSeconds'
>

/**
 * Verifies a delegate's access token for a request and re-checks its whole chain in the store: the signature
 * (EdDSA only), issuer, audience and expiry; then every grant from the customer's down to the token's (active,
 * unexpired, each narrowing the one above, within `max_chain`), every delegate on it (active), and that the token's
 * `sub` and `act` are that chain's customer and delegates. Nothing is cached, so a revocation or suspension on any
 * node is in force here at the next request. The reusable entry point for every face that takes delegate tokens
 * (HTTP, MCP). Fails with `CREDENTIAL_INVALID`, `CREDENTIAL_EXPIRED`, `GRANT_NOT_FOUND`, `GRANT_REVOKED`,
 * `GRANT_EXPIRED`, `DELEGATE_INACTIVE`, `CHAIN_TOO_DEEP`, `SUBDELEGATION_FORBIDDEN`, `SCOPE_NOT_GRANTED`,
 * `DELEGATION_MISMATCH`; refusals are audited by the caller.
 */
export async function authenticateDelegate(deps: Deps, token: string): Promise<DelegateAuth> {
  const now = deps.now()
  const claims = await deps.signer.verifyDelegate(token, deps.apiAudience, now)
  const chain = await deps.store.getGrantChain(claims.baton_grant)
  const problem = chainProblem(chain, now, deps.delegation.maxChain)
  if (problem !== null) throw new BatonError(problem.code, problem.message)
  const tail = chain[chain.length - 1] as GrantLink
  if (tail.grant.customerId !== claims.sub) {
    throw new BatonError('DELEGATION_MISMATCH', `the token's subject is not the customer of grant ${tail.grant.id}`)
  }
  const delegates = chain.map((l) => l.grant.delegateId)
  const acting = actChain(claims.act)
  if (acting.length !== delegates.length || acting.some((d, i) => d !== delegates[i])) {
    throw new BatonError('DELEGATION_MISMATCH', "the token's act chain is not the chain of its grant")
  }
  const effective = effectiveScopes(chain, deps.delegation)
  const scopes = claims.scope.split(' ').filter((s) => s !== '' && effective.includes(s))
  return {
    actor: delegateActor(chain, scopes, now, claims.jti),
    delegateId: claims.client_id,
    customerId: claims.sub,
    chain,
    grant: tail.grant,
    scopes,
    claims,
  }
}

/**
 * The actor of the last delegate of a (checked) chain, holding `scopes` (by default every scope the chain confers):
 * what its requests record, and what a policy re-deciding one of its actions later reads.
 */
export function delegateActor(
  chain: readonly GrantLink[],
  scopes: readonly string[],
  now: Date,
  jti: string,
): Actor & { readonly delegation: DelegationContext } {
  const tail = chain[chain.length - 1] as GrantLink
  const delegation: DelegationContext = {
    customerId: tail.grant.customerId,
    grantId: tail.grant.id,
    chain: chain.map((l) => l.grant.delegateId),
    grants: chain.map((l) => l.grant.id),
    scopes,
    grant: grantFacts(tail.grant, scopes, now),
    jti,
  }
  return { kind: 'delegate', id: tail.grant.delegateId, roles: ['delegate'], delegation }
}

/** The same delegate, with the scope that allowed this particular request recorded (for its audit entries). */
export function withScope(auth: DelegateAuth, scope: string): DelegateAuth {
  return { ...auth, actor: { ...auth.actor, delegation: { ...auth.actor.delegation, scope } } }
}

function required(req: ExchangeRequest, name: keyof ExchangeRequest): string {
  const v = req[name]
  if (typeof v !== 'string' || v === '') {
    throw new BatonError('VALIDATION_FAILED', `${name}: is required for a token exchange`, {
      fields: [{ field: name, message: 'is required' }],
    })
  }
  return v
}

/**
 * RFC 8693 token exchange at the token endpoint: a delegate, authenticated by its own assertion (`actor_token`,
 * RFC 7523, good once), exchanges a grant reference or an upstream delegate's token (`subject_token`) for a
 * short-lived access token whose `sub` is the customer, `act` the chain of delegates (nested, the acting one
 * outermost), `scope` within what the chain confers, `baton_grant` the grant, and whose lifetime ends no later than
 * 5 minutes and than the chain's first expiry. Unlike RFC 8693, which treats earlier actors as informational, every
 * hop of the chain is checked here and on every later request. Refusals are audited (within the refusal budget);
 * nothing is issued or recorded for them.
 */
export async function exchangeToken(
  deps: Deps & Pick<AuthorityDeps, 'refusals'>,
  req: ExchangeRequest,
): Promise<ExchangeResponse> {
  const at = deps.now()
  let delegateId = 'unknown'
  try {
    const subjectToken = required(req, 'subject_token')
    const subjectType = required(req, 'subject_token_type')
    const actorToken = required(req, 'actor_token')
    if (subjectType !== TOKEN_TYPES.grant && subjectType !== TOKEN_TYPES.accessToken) {
      throw new BatonError(
        'VALIDATION_FAILED',
        `subject_token_type: expected '${TOKEN_TYPES.grant}' (a grant id) or '${TOKEN_TYPES.accessToken}' (an upstream delegate's token)`,
        { fields: [{ field: 'subject_token_type', message: 'unsupported token type' }] },
      )
    }
    if (req.actor_token_type !== TOKEN_TYPES.jwt) {
      throw new BatonError('VALIDATION_FAILED', `actor_token_type: expected '${TOKEN_TYPES.jwt}'`, {
        fields: [{ field: 'actor_token_type', message: `expected '${TOKEN_TYPES.jwt}'` }],
      })
    }
    if (req.requested_token_type !== undefined && req.requested_token_type !== TOKEN_TYPES.accessToken) {
      throw new BatonError('VALIDATION_FAILED', `requested_token_type: only '${TOKEN_TYPES.accessToken}' is issued`, {
        fields: [{ field: 'requested_token_type', message: 'unsupported token type' }],
      })
    }
    if (req.audience !== undefined && req.audience !== deps.apiAudience) {
      throw new BatonError(
        'VALIDATION_FAILED',
        `audience: Baton issues delegate tokens for '${deps.apiAudience}' only`,
        {
          fields: [{ field: 'audience', message: 'unknown audience' }],
        },
      )
    }

    // the actor: the delegate itself, by its own signed assertion
    let iss: string
    try {
      const unverified = decodeJwt(actorToken)
      iss = typeof unverified.iss === 'string' ? unverified.iss : ''
    } catch (e) {
      throw new BatonError('CREDENTIAL_INVALID', `actor_token: ${credentialError(e).message}`)
    }
    const delegate = iss === '' ? undefined : await deps.store.getDelegate(iss)
    if (delegate === undefined) throw new BatonError('CREDENTIAL_INVALID', 'actor_token: unknown delegate')
    delegateId = delegate.id
    if (delegate.state !== 'active') {
      throw new BatonError('DELEGATE_INACTIVE', `actor_token: delegate '${delegate.id}' is ${delegate.state}`)
    }
    let spend: { scope: string; id: string; expiresAt: string }
    try {
      ;({ spend } = await verifyClientAssertion(
        deps,
        actorToken,
        delegate.id,
        [delegate.publicJwk],
        ASSERTION_SCOPE,
        at,
      ))
    } catch (e) {
      const c = credentialError(e)
      throw new BatonError(c.code, `actor_token: ${c.message}`, { cause: e })
    }

    // the subject: the grant the delegate acts under, named or reached through the upstream delegate's token
    let grant: GrantRecord | undefined
    let chain: readonly GrantLink[] | undefined
    let upstreamScopes: readonly string[] | undefined
    if (subjectType === TOKEN_TYPES.grant) {
      // the grant and the chain above it in one read
      chain = await deps.store.getGrantChain(subjectToken)
      grant = chain.at(-1)?.grant
      if (grant === undefined || grant.id !== subjectToken) {
        throw new BatonError('GRANT_NOT_FOUND', `subject_token: no grant '${subjectToken.slice(0, 64)}'`)
      }
      if (grant.delegateId !== delegate.id) {
        throw new BatonError(
          'DELEGATION_MISMATCH',
          `subject_token: grant ${grant.id} is granted to delegate '${grant.delegateId}', not to '${delegate.id}' (subject and actor do not match)`,
        )
      }
    } else {
      let upstream: DelegateAuth
      try {
        upstream = await authenticateDelegate(deps, subjectToken)
      } catch (e) {
        const c = credentialError(e)
        throw new BatonError(c.code, `subject_token: ${c.message}`, { cause: e })
      }
      if (upstream.delegateId === delegate.id) {
        throw new BatonError('DELEGATION_MISMATCH', 'subject_token: a delegate cannot exchange its own token')
      }
      if (!upstream.grant.maySubdelegate) {
        throw new BatonError('SUBDELEGATION_FORBIDDEN', `grant ${upstream.grant.id} does not allow sub-delegation`)
      }
      if (upstream.chain.length + 1 > deps.delegation.maxChain) {
        throw new BatonError(
          'CHAIN_TOO_DEEP',
          `a chain of ${upstream.chain.length + 1} delegates is longer than max_chain (${deps.delegation.maxChain})`,
        )
      }
      const candidates = await deps.store.listGrants({
        parentId: upstream.grant.id,
        delegateId: delegate.id,
        activeAt: at.toISOString(),
        limit: 2,
      })
      if (candidates.length === 0) {
        throw new BatonError(
          'DELEGATION_MISMATCH',
          `subject_token: '${upstream.delegateId}' has not sub-delegated grant ${upstream.grant.id} to '${delegate.id}' (POST /v1/grants/${upstream.grant.id}/subgrants)`,
        )
      }
      if (candidates.length > 1) {
        throw new BatonError(
          'VALIDATION_FAILED',
          `subject_token: several grants of ${upstream.grant.id} to '${delegate.id}'; name one as subject_token with subject_token_type '${TOKEN_TYPES.grant}'`,
          { fields: [{ field: 'subject_token', message: 'ambiguous' }] },
        )
      }
      grant = candidates[0]
      upstreamScopes = upstream.scopes
    }
    if (grant === undefined) throw new BatonError('GRANT_NOT_FOUND', 'subject_token: no grant')

    chain ??= await deps.store.getGrantChain(grant.id)
    const problem = chainProblem(chain, at, deps.delegation.maxChain)
    if (problem !== null) throw new BatonError(problem.code, problem.message)
    const effective = effectiveScopes(chain, deps.delegation).filter(
      (s) => upstreamScopes === undefined || upstreamScopes.includes(s),
    )
    const asked = req.scope === undefined || req.scope.trim() === '' ? effective : req.scope.trim().split(/\s+/)
    if (asked.length === 0) {
      throw new BatonError(
        'SCOPE_NOT_GRANTED',
        `grant ${grant.id} confers no scope that delegation.yaml still declares`,
      )
    }
    const wider = asked.filter((s) => !effective.includes(s))
    if (wider.length > 0) {
      throw new BatonError(
        'SCOPE_NOT_GRANTED',
        `scope: ${wider.join(', ')} ${wider.length === 1 ? 'is' : 'are'} not within grant ${grant.id} (it confers ${effective.join(', ') || 'nothing'}); a token exchange cannot widen scopes`,
      )
    }
    const left = Math.floor((chainExpiry(chain) - at.getTime()) / 1000)
    const ttl = Math.min(deps.delegateTokenTtlSeconds, left)
    if (ttl < 1) throw new BatonError('GRANT_EXPIRED', `grant ${grant.id} expires within a second`)
    const delegates = chain.map((l) => l.grant.delegateId)
    const { token, claims } = await deps.signer.mintDelegate(
      {
        aud: deps.apiAudience,
        sub: grant.customerId,
        client_id: delegate.id,
        act: actOf(delegates),
        scope: [...new Set(asked)].join(' '),
        baton_grant: grant.id,
        jti: deps.newId('dtk'),
        ttlSeconds: ttl,
      },
      at,
    )
    const iso = at.toISOString()
    const grants = chain.map((l) => l.grant.id)
    const recorded = await deps.store.recordExchange(spend, [
      {
        type: 'delegate.token_issued',
        at: iso,
        actor: {
          kind: 'delegate',
          id: delegate.id,
          delegation: { customer: grant.customerId, chain: delegates, grants, grant: grant.id, token: claims.jti },
        },
        data: {
          jti: claims.jti,
          customerId: grant.customerId,
          delegateId: delegate.id,
          grantId: grant.id,
          chain: delegates,
          grants,
          scope: claims.scope,
          exp: claims.exp,
          subjectTokenType: subjectType,
        },
      },
    ])
    if (!recorded) throw new BatonError('CREDENTIAL_INVALID', 'actor_token: the assertion was replayed')
    return {
      access_token: token,
      issued_token_type: TOKEN_TYPES.accessToken,
      token_type: 'Bearer',
      expires_in: claims.exp - claims.iat,
      scope: claims.scope,
      grant: grant.id,
    }
  } catch (e) {
    if (e instanceof BatonError) {
      await auditRefusal(deps, {
        actor: { kind: 'delegate', id: delegateId.slice(0, 128) },
        code: e.code,
        reason: e.message,
        route: 'POST /v1/oauth/token',
      })
    }
    throw e
  }
}

/** RFC 7662 introspection of a delegate token: active only while `authenticateDelegate` accepts it. */
export async function introspectDelegate(deps: Deps, token: string): Promise<Record<string, unknown>> {
  try {
    const a = await authenticateDelegate(deps, token)
    const c = a.claims
    return {
      active: true,
      scope: a.scopes.join(' '),
      client_id: c.client_id,
      sub: c.sub,
      act: c.act,
      token_type: 'Bearer',
      iss: c.iss,
      aud: c.aud,
      exp: c.exp,
      iat: c.iat,
      jti: c.jti,
      kind: c.kind,
      baton_grant: c.baton_grant,
      chain: a.actor.delegation.chain,
    }
  } catch (e) {
    if (e instanceof BatonError) return { active: false }
    throw e
  }
}

/** Whether a compact JWT's (unverified) payload says it is a delegate token; dispatch only, never trust. */
export function isDelegateToken(token: string): boolean {
  try {
    return decodeJwt(token).kind === 'delegate'
  } catch {
    return false
  }
}

import { createHash, timingSafeEqual } from 'node:crypto'
import { type CryptoKey, decodeJwt, importJWK, jwtVerify } from 'jose'
import type { AuditActor } from '../audit/entry.js'
import type { Actor } from '../cases/intake.js'
import { BatonError, type ErrorCode } from '../errors.js'
import { type AgentRecord, agentHoldsCase } from '../identity/principals.js'
import { redactedText } from '../signals/sensitive.js'
import { type AuthorityDeps, who } from './deps.js'
import { type CredentialClaims, credentialError } from './tokens.js'

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
/** The longest life a client assertion may claim: `exp - iat` (seconds). */
export const MAX_ASSERTION_LIFETIME_S = 300
/** How far in the future an assertion's `iat` may be (the agent's clock running ahead of Baton's), seconds. */
export const ASSERTION_CLOCK_SKEW_S = 30
/** RFC 8693's grant type, taken by `exchangeToken` (src/delegation/token-exchange.ts) at the same endpoint. */
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const MAX_JTI_LENGTH = 256

export interface TokenRequest {
  readonly grant_type?: string | undefined
  readonly client_id?: string | undefined
  readonly client_secret?: string | undefined
  readonly client_assertion_type?: string | undefined
  readonly client_assertion?: string | undefined
  /** The case the token is for (Baton extension; a token is good for one case). */
  readonly case_id?: string | undefined
  /** Space-separated tools; default: every tool the agent is granted. */
  readonly scope?: string | undefined
}

export interface TokenResponse {
  readonly access_token: string
  readonly token_type: 'Bearer'
  readonly expires_in: number
  readonly scope: string
  readonly case_id: string
}

/** An authenticated agent request: the agent and its verified access token. */
export interface AgentAuth {
  readonly actor: Actor
  readonly agent: AgentRecord
  readonly claims: CredentialClaims
}

/** sha256 hex of a client secret (256-bit random: a slow hash adds nothing). */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex')
}

/**
 * The token endpoint (`client_credentials` grant): the agent authenticates with a signed JWT assertion (RFC 7523,
 * EdDSA with a key registered for it) or a client secret, names one case it handles, and gets a short-lived access
 * token for that case and the tools it asked for (within its grant). Refusals are audited.
 */
export async function issueAccessToken(deps: AuthorityDeps, req: TokenRequest): Promise<TokenResponse> {
  const at = deps.now()
  let agentId = req.client_id ?? ''
  try {
    if (req.grant_type !== 'client_credentials') {
      throw new BatonError('VALIDATION_FAILED', `grant_type: expected 'client_credentials' or '${TOKEN_EXCHANGE}'`, {
        fields: [{ field: 'grant_type', message: "expected 'client_credentials'" }],
      })
    }
    agentId = await authenticateClient(deps, req, at)
    const agent = await deps.store.getAgent(agentId)
    if (agent === undefined) throw new BatonError('CREDENTIAL_INVALID', 'unknown client')
    if (agent.state !== 'active') throw new BatonError('AGENT_INACTIVE', `agent '${agent.id}' is ${agent.state}`)
    const caseId = req.case_id ?? ''
    if (caseId === '') {
      throw new BatonError('VALIDATION_FAILED', 'case_id: a token is issued for one case', {
        fields: [{ field: 'case_id', message: 'is required' }],
      })
    }
    const c = await deps.store.getCase(caseId)
    if (c === undefined) throw new BatonError('CASE_NOT_FOUND', `no case with id '${caseId}'`)
    if (c.state !== 'open') throw new BatonError('CASE_CLOSED', `case '${caseId}' is ${c.state}`)
    if (agentHoldsCase(c.handler, agent.id) === null) {
      throw new BatonError('NOT_CASE_HANDLER', `agent '${agent.id}' does not handle case '${caseId}'`)
    }
    const asked = req.scope === undefined || req.scope.trim() === '' ? agent.tools : req.scope.trim().split(/\s+/)
    const notGranted = asked.filter((t) => !agent.tools.includes(t))
    if (notGranted.length > 0) {
      throw new BatonError('TOOL_NOT_GRANTED', `agent '${agent.id}' is not granted ${notGranted.join(', ')}`)
    }
    const { token, claims } = await deps.signer.mint(
      {
        aud: deps.apiAudience,
        sub: agent.id,
        case: caseId,
        tools: asked,
        epoch: c.authorityEpoch ?? 0,
        kind: 'access',
        jti: deps.newId('tok'),
        ttlSeconds: deps.accessTtlSeconds,
      },
      at,
    )
    const iso = at.toISOString()
    await deps.store.recordIssuedCredentials(
      [
        {
          jti: claims.jti,
          agentId: agent.id,
          caseId,
          kind: 'access',
          tools: asked,
          epoch: claims.epoch,
          issuedAt: iso,
          expiresAt: new Date(claims.exp * 1000).toISOString(),
        },
      ],
      [
        {
          type: 'credential.issued',
          at: iso,
          caseId,
          actor: { kind: 'agent', id: agent.id },
          data: { jti: claims.jti, kind: 'access', tools: asked, epoch: claims.epoch, exp: claims.exp },
        },
      ],
    )
    return {
      access_token: token,
      token_type: 'Bearer',
      expires_in: claims.exp - claims.iat,
      scope: asked.join(' '),
      case_id: caseId,
    }
  } catch (e) {
    if (e instanceof BatonError) {
      await auditRefusal(deps, {
        actor: { kind: 'agent', id: agentId || 'unknown' },
        code: e.code,
        reason: e.message,
        route: 'POST /v1/oauth/token',
        caseId: req.case_id,
      })
    }
    throw e
  }
}

async function authenticateClient(deps: AuthorityDeps, req: TokenRequest, at: Date): Promise<string> {
  if (req.client_assertion !== undefined) {
    if (req.client_assertion_type !== JWT_BEARER_ASSERTION) {
      throw new BatonError('VALIDATION_FAILED', `client_assertion_type: expected '${JWT_BEARER_ASSERTION}'`, {
        fields: [{ field: 'client_assertion_type', message: `expected '${JWT_BEARER_ASSERTION}'` }],
      })
    }
    let iss: string
    try {
      const unverified = decodeJwt(req.client_assertion)
      iss = typeof unverified.iss === 'string' ? unverified.iss : ''
    } catch (e) {
      throw credentialError(e)
    }
    if (req.client_id !== undefined && req.client_id !== iss) {
      throw new BatonError('CREDENTIAL_INVALID', 'client_id and the assertion issuer differ')
    }
    const keys = (await deps.store.listAgentCredentials(iss)).filter((c) => c.kind === 'public_key')
    if (keys.length === 0) throw new BatonError('CREDENTIAL_INVALID', 'unknown client or no registered key')
    const checked = await verifyClientAssertion(
      deps,
      req.client_assertion,
      iss,
      keys.map((k) => k.publicJwk ?? {}),
      'client_assertion',
      at,
    )
    // Good once (RFC 7523 §3, item 7), on every node and across restarts: the store records the jti until the
    // assertion expires.
    if (!(await deps.store.spendOnce(checked.spend.scope, checked.spend.id, checked.spend.expiresAt))) {
      throw new BatonError('CREDENTIAL_INVALID', 'the client assertion was replayed')
    }
    return iss
  }
  if (req.client_secret !== undefined && req.client_id !== undefined) {
    const given = Buffer.from(hashSecret(req.client_secret), 'hex')
    const secrets = (await deps.store.listAgentCredentials(req.client_id)).filter((c) => c.kind === 'secret')
    for (const s of secrets) {
      if (s.secretHash !== null && timingSafeEqual(Buffer.from(s.secretHash, 'hex'), given)) return req.client_id
    }
    throw new BatonError('CREDENTIAL_INVALID', 'unknown client or wrong secret')
  }
  throw new BatonError('UNAUTHENTICATED', 'authenticate with client_assertion (RFC 7523) or client_id + client_secret')
}

/**
 * A client assertion lives at most `MAX_ASSERTION_LIFETIME_S` (`exp - iat`) and was issued no later than
 * `ASSERTION_CLOCK_SKEW_S` after `at`; jose has already checked that `exp` is after `at` and that both are numbers.
 * Fails with `CREDENTIAL_INVALID`.
 */
export function checkAssertionLifetime(iat: number, exp: number, at: Date): void {
  // iat and exp are seconds since the epoch (RFC 7519 §4.1.4), not ms
  const nowS = Math.floor(at.getTime() / 1000)
  if (iat > nowS + ASSERTION_CLOCK_SKEW_S) {
    throw new BatonError(
      'CREDENTIAL_INVALID',
      `the assertion's iat is ${iat - nowS} s in the future; at most ${ASSERTION_CLOCK_SKEW_S} s of clock skew is allowed`,
    )
  }
  if (exp <= iat) throw new BatonError('CREDENTIAL_INVALID', "the assertion's exp is not after its iat")
  if (exp - iat > MAX_ASSERTION_LIFETIME_S) {
    throw new BatonError(
      'CREDENTIAL_INVALID',
      `the assertion lives ${exp - iat} s (exp - iat); at most ${MAX_ASSERTION_LIFETIME_S} s is accepted`,
    )
  }
}

/**
 * Verifies a client's RFC 7523 assertion (`iss` = `sub` = `clientId`) against its registered Ed25519 public keys:
 * EdDSA only (so `alg: none` and algorithm confusion are refused before any signature check), one of the token
 * endpoint's audiences, unexpired at `at`, living at most 300 s (`checkAssertionLifetime`), with a `jti` of 1 to 256 characters. Returns
 * the one-time id to spend (`Store.spendOnce`, or with other writes): spending it is what makes the assertion good
 * once, and is the caller's step. Fails with `CREDENTIAL_INVALID` or `CREDENTIAL_EXPIRED`.
 */
export async function verifyClientAssertion(
  deps: Pick<AuthorityDeps, 'tokenAudiences'>,
  assertion: string,
  clientId: string,
  keys: readonly Readonly<Record<string, unknown>>[],
  scope: string,
  at: Date,
): Promise<{ readonly jti: string; readonly spend: { scope: string; id: string; expiresAt: string } }> {
  let lastError: unknown
  for (const k of keys) {
    try {
      const key = await publicKeyOf(k)
      const { payload } = await jwtVerify(assertion, key, {
        algorithms: ['EdDSA'],
        issuer: clientId,
        subject: clientId,
        audience: [...deps.tokenAudiences],
        currentDate: at,
        requiredClaims: ['exp', 'jti', 'iat'],
      })
      checkAssertionLifetime(payload.iat as number, payload.exp as number, at)
      const jti = payload.jti
      if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) {
        throw new BatonError(
          'CREDENTIAL_INVALID',
          `the assertion's jti must be a string of 1 to ${MAX_JTI_LENGTH} characters`,
        )
      }
      // kept until the assertion is refused anyway: at its exp (at most MAX_ASSERTION_LIFETIME_S after its iat)
      const expiresAt = new Date((payload.exp as number) * 1000).toISOString()
      return { jti, spend: { scope, id: `${clientId}:${jti}`, expiresAt } }
    } catch (e) {
      lastError = e
      if (e instanceof BatonError) throw e
    }
  }
  throw lastError === undefined ? new BatonError('CREDENTIAL_INVALID', 'no registered key') : credentialError(lastError)
}

/**
 * Registered public keys, imported once: a JWK's key never changes (a new key is a new JWK), and whether it still
 * counts is read from the store on every request, so this holds no authority. Bounded; cleared when full.
 */
const importedKeys = new Map<string, Promise<CryptoKey | Uint8Array>>()

function publicKeyOf(jwk: Readonly<Record<string, unknown>>): Promise<CryptoKey | Uint8Array> {
  const id = `${String(jwk.kty)}|${String(jwk.crv)}|${String(jwk.x)}`
  let key = importedKeys.get(id)
  if (key === undefined) {
    if (importedKeys.size >= 10_000) importedKeys.clear()
    key = importJWK({ ...(jwk as object), alg: 'EdDSA' }, 'EdDSA')
    // a key that does not import is not remembered
    key.catch(() => importedKeys.delete(id))
    importedKeys.set(id, key)
  }
  return key
}

/**
 * Verifies an agent's access token for an API call: signature (EdDSA only), issuer, audience, expiry, kind, and
 * that the agent is still active. The case-bound checks (case, epoch, handler) are the action's own. Refusals are
 * audited by the caller (`auditRefusal`).
 */
export async function authenticateAgent(deps: AuthorityDeps, token: string): Promise<AgentAuth> {
  const claims = await deps.signer.verify(token, deps.apiAudience, deps.now())
  if (claims.kind !== 'access')
    throw new BatonError('CREDENTIAL_INVALID', `a ${claims.kind} credential is not an access token`)
  const agent = await deps.store.getAgent(claims.sub)
  if (agent === undefined) throw new BatonError('CREDENTIAL_INVALID', 'the credential names an unknown agent')
  if (agent.state !== 'active') {
    throw new BatonError('CREDENTIAL_REVOKED', `agent '${agent.id}' is ${agent.state}: its credentials are revoked`)
  }
  return { actor: { kind: 'agent', id: agent.id, roles: ['agent'] }, agent, claims }
}

export interface Introspection {
  readonly active: boolean
  readonly [claim: string]: unknown
}

/**
 * RFC 7662 introspection of any Baton credential: active only if it verifies, has not expired, its agent is
 * active, the case is open and its authority epoch is the one the credential carries, and (when `paramsDigest` is
 * given, for a call or scoped credential) the parameters are the ones it was minted for.
 */
export async function introspect(
  deps: AuthorityDeps,
  token: string,
  opts: { readonly paramsDigest?: string | undefined } = {},
): Promise<Introspection> {
  const now = deps.now()
  let claims: CredentialClaims
  try {
    const unverified = decodeJwt(token)
    const aud = typeof unverified.aud === 'string' ? unverified.aud : deps.apiAudience
    claims = await deps.signer.verify(token, aud, now)
  } catch {
    return { active: false }
  }
  const [agent, c] = await Promise.all([deps.store.getAgent(claims.sub), deps.store.getCase(claims.case)])
  if (agent?.state !== 'active' || c === undefined || c.state !== 'open') return { active: false }
  if ((c.authorityEpoch ?? 0) !== claims.epoch || agentHoldsCase(c.handler, agent.id) === null) return { active: false }
  if (opts.paramsDigest !== undefined && claims.pd !== opts.paramsDigest) return { active: false }
  return {
    active: true,
    scope: claims.tools.join(' '),
    client_id: claims.sub,
    sub: claims.sub,
    token_type: claims.kind === 'access' ? 'Bearer' : 'N_A',
    iss: claims.iss,
    aud: claims.aud,
    exp: claims.exp,
    iat: claims.iat,
    jti: claims.jti,
    case: claims.case,
    tools: claims.tools,
    kind: claims.kind,
    epoch: claims.epoch,
    ...(claims.pd === undefined ? {} : { pd: claims.pd }),
    ...(claims.act === undefined ? {} : { act: claims.act }),
  }
}

/**
 * Audits an `access.refused` entry: who was refused what, with which code (never the credential itself); over the
 * node's refusal budget, counted into an `access.refused_suppressed` summary instead (`refusals.ts`).
 */
export async function auditRefusal(
  deps: Pick<AuthorityDeps, 'refusals' | 'now'>,
  r: {
    readonly actor: AuditActor
    readonly code: ErrorCode
    readonly reason: string
    readonly route: string
    readonly caseId?: string | undefined
    readonly tool?: string | undefined
    /** The id in the refused URL (an approval, an agent…), when there is one. */
    readonly target?: string | undefined
  },
): Promise<void> {
  // Everything here may come from the refused request (ids in the URL, a forged token's subject, a tool name echoed
  // in the reason): redacted before it is audited (invariant 7).
  const clean = (t: string | undefined) => (t === undefined ? undefined : redactedText(t))
  const caseId = clean(r.caseId)
  const tool = clean(r.tool)
  const target = clean(r.target)
  await deps.refusals.record({
    type: 'access.refused',
    at: deps.now().toISOString(),
    ...(caseId === undefined ? {} : { caseId }),
    actor: {
      kind: r.actor.kind,
      id: redactedText(r.actor.id),
      // a verified delegate's chain, grant and scope come from the store, not from the request
      ...(r.actor.delegation === undefined ? {} : { delegation: r.actor.delegation }),
    },
    data: {
      code: r.code,
      reason: redactedText(r.reason),
      route: redactedText(r.route),
      ...(tool === undefined ? {} : { tool }),
      ...(target === undefined ? {} : { target }),
    },
  })
}

export { who }

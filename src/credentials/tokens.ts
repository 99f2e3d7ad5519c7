import { createHash, type KeyObject, webcrypto } from 'node:crypto'
import { errors, exportJWK, type JWK, jwtVerify, SignJWT } from 'jose'
import { BatonError } from '../errors.js'

/** Kinds of credential Baton mints: an agent's access token, a per-call credential, a scoped credential. */
export type CredentialKind = 'access' | 'call' | 'scoped'

/** Claims of every Baton credential (RFC 7519 names; times in seconds since epoch, RFC 7519 §4.1.4). */
export interface CredentialClaims {
  readonly iss: string
  readonly aud: string
  /** The agent. */
  readonly sub: string
  /** The case this credential is good for, and only it. */
  readonly case: string
  /** Tools it covers. */
  readonly tools: readonly string[]
  /** The case's authority epoch at issue: a credential dies the moment the case's epoch moves. */
  readonly epoch: number
  readonly kind: CredentialKind
  readonly jti: string
  readonly iat: number
  readonly exp: number
  /** For `call` and `scoped`: sha256 hex of the canonical JSON of the exact parameters authorized. */
  readonly pd?: string
  /** For `call` and `scoped`: the action id. */
  readonly act?: string
}

export type MintInput = Omit<CredentialClaims, 'iss' | 'iat' | 'exp'> & { readonly ttlSeconds: number }

/** RFC 8693 §4.1 `act`: the acting party, and nested inside it the one that acted before it. */
export interface ActClaim {
  readonly sub: string
  readonly act?: ActClaim
}

/**
 * Claims of a delegate's access token (RFC 8693 token exchange): `sub` is the customer, `act` the chain of delegates
 * (the acting one outermost), `scope` the scopes it may use, `baton_grant` the grant it acts under.
 */
export interface DelegateClaims {
  readonly iss: string
  readonly aud: string
  /** The customer. */
  readonly sub: string
  /** The acting delegate (RFC 9068 §2.2). */
  readonly client_id: string
  readonly act: ActClaim
  /** Space-separated scopes (RFC 8693 §4.2). */
  readonly scope: string
  readonly baton_grant: string
  readonly kind: 'delegate'
  readonly jti: string
  readonly iat: number
  readonly exp: number
}

/** The delegates of an `act` claim, the customer's own grantee first and the acting delegate last. */
export function actChain(act: ActClaim): string[] {
  const out: string[] = []
  for (let a: ActClaim | undefined = act, n = 0; a !== undefined && n < 16; a = a.act, n++) out.unshift(a.sub)
  return out
}

/** The `act` claim of a chain of delegates (the customer's own grantee first). */
export function actOf(chain: readonly string[]): ActClaim {
  let act: ActClaim | undefined
  for (const sub of chain) act = act === undefined ? { sub } : { sub, act }
  if (act === undefined) throw new TypeError('a delegation chain has at least one delegate')
  return act
}

/** Upper bound of any credential's life, whatever the configuration says. */
export const MAX_TTL_SECONDS = 3600
/** Upper bound of a delegate's access token (5 minutes): every request re-checks its chain anyway. */
export const MAX_DELEGATE_TTL_S = 300

/**
 * Holds Baton's credential signing key (Ed25519) and mints and verifies EdDSA JWTs. Verification pins the
 * algorithm to EdDSA, so `alg: none` and HS256-with-the-public-key confusion are refused before any signature check.
 */
export class CredentialSigner {
  readonly #privateKey: KeyObject
  readonly #publicKey: KeyObject
  readonly issuer: string
  readonly keyId: string
  #jwk: JWK | undefined
  // jose signs through WebCrypto; handing it CryptoKeys imported once (rather than KeyObjects converted on every
  // call) makes a mint + verify about 40% cheaper.
  #cryptoKeys: Promise<{ sign: webcrypto.CryptoKey; verify: webcrypto.CryptoKey }> | undefined

  constructor(privateKey: KeyObject, publicKey: KeyObject, issuer: string) {
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError('the credential key must be Ed25519')
    this.#privateKey = privateKey
    this.#publicKey = publicKey
    this.issuer = issuer
    const spki = publicKey.export({ type: 'spki', format: 'der' })
    this.keyId = createHash('sha256').update(spki).digest('base64url').slice(0, 16)
  }

  #keys(): Promise<{ sign: webcrypto.CryptoKey; verify: webcrypto.CryptoKey }> {
    this.#cryptoKeys ??= Promise.all([
      webcrypto.subtle.importKey(
        'pkcs8',
        this.#privateKey.export({ type: 'pkcs8', format: 'der' }),
        { name: 'Ed25519' },
        false,
        ['sign'],
      ),
      webcrypto.subtle.importKey(
        'spki',
        this.#publicKey.export({ type: 'spki', format: 'der' }),
        { name: 'Ed25519' },
        true,
        ['verify'],
      ),
    ]).then(([sign, verify]) => ({ sign, verify }))
    return this.#cryptoKeys
  }

  /** The public key as a JWKS (`/.well-known/jwks.json`). */
  async jwks(): Promise<{ keys: JWK[] }> {
    this.#jwk ??= { ...(await exportJWK(this.#publicKey)), kid: this.keyId, alg: 'EdDSA', use: 'sig' }
    return { keys: [this.#jwk] }
  }

  /** Mints a credential issued at `now`. */
  async mint(input: MintInput, now: Date): Promise<{ token: string; claims: CredentialClaims }> {
    if (!(input.ttlSeconds > 0 && input.ttlSeconds <= MAX_TTL_SECONDS)) {
      throw new TypeError(`ttlSeconds must be in (0, ${MAX_TTL_SECONDS}], got ${input.ttlSeconds}`)
    }
    const iat = Math.floor(now.getTime() / 1000)
    const { ttlSeconds, ...rest } = input
    const claims: CredentialClaims = { ...rest, iss: this.issuer, iat, exp: iat + ttlSeconds }
    const token = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.keyId, typ: input.kind === 'access' ? 'at+jwt' : 'JWT' })
      .sign((await this.#keys()).sign)
    return { token, claims }
  }

  /** Mints a delegate's access token issued at `now` (typ `at+jwt`, RFC 9068). */
  async mintDelegate(
    input: Omit<DelegateClaims, 'iss' | 'iat' | 'exp' | 'kind'> & { readonly ttlSeconds: number },
    now: Date,
  ): Promise<{ token: string; claims: DelegateClaims }> {
    if (!(input.ttlSeconds > 0 && input.ttlSeconds <= MAX_DELEGATE_TTL_S)) {
      throw new TypeError(`ttlSeconds must be in (0, ${MAX_DELEGATE_TTL_S}], got ${input.ttlSeconds}`)
    }
    const iat = Math.floor(now.getTime() / 1000)
    const { ttlSeconds, ...rest } = input
    const claims: DelegateClaims = { ...rest, kind: 'delegate', iss: this.issuer, iat, exp: iat + ttlSeconds }
    const token = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.keyId, typ: 'at+jwt' })
      .sign((await this.#keys()).sign)
    return { token, claims }
  }

  /**
   * Verifies a delegate's access token as `verify` does (EdDSA only, issuer, audience, expiry without leeway) and
   * that it carries the delegation claims. Fails with `CREDENTIAL_EXPIRED` or `CREDENTIAL_INVALID`; whether its
   * chain still holds is the caller's check (`authenticateDelegate`).
   */
  async verifyDelegate(token: string, audience: string, now: Date): Promise<DelegateClaims> {
    try {
      const { payload } = await jwtVerify(token, (await this.#keys()).verify, {
        algorithms: ['EdDSA'],
        issuer: this.issuer,
        audience,
        currentDate: now,
        typ: 'at+jwt',
        requiredClaims: ['exp', 'iat', 'jti', 'sub'],
      })
      const act = payload.act as ActClaim | undefined
      if (
        payload.kind !== 'delegate' ||
        typeof payload.baton_grant !== 'string' ||
        typeof payload.scope !== 'string' ||
        typeof payload.client_id !== 'string' ||
        typeof act !== 'object' ||
        act === null ||
        typeof act.sub !== 'string' ||
        act.sub !== payload.client_id
      ) {
        throw new BatonError(
          'CREDENTIAL_INVALID',
          'the token is not a delegate access token (kind, act, scope, baton_grant)',
        )
      }
      return payload as unknown as DelegateClaims
    } catch (e) {
      throw credentialError(e)
    }
  }

  /**
   * Verifies signature (EdDSA only), issuer, audience and expiry at `now` (no leeway). Fails with
   * `CREDENTIAL_EXPIRED` or `CREDENTIAL_INVALID`; revocation (the epoch) is the caller's check.
   */
  async verify(token: string, audience: string | readonly string[], now: Date): Promise<CredentialClaims> {
    try {
      const { payload } = await jwtVerify(token, (await this.#keys()).verify, {
        algorithms: ['EdDSA'],
        issuer: this.issuer,
        audience: typeof audience === 'string' ? audience : [...audience],
        currentDate: now,
        requiredClaims: ['exp', 'iat', 'jti', 'sub'],
      })
      if (
        payload.kind === 'delegate' ||
        typeof payload.case !== 'string' ||
        typeof payload.epoch !== 'number' ||
        !Array.isArray(payload.tools) ||
        typeof payload.kind !== 'string'
      ) {
        throw new BatonError('CREDENTIAL_INVALID', 'the credential lacks Baton claims (case, epoch, tools, kind)')
      }
      return payload as unknown as CredentialClaims
    } catch (e) {
      throw credentialError(e)
    }
  }
}

/** Maps jose's errors to Baton's codes: expiry is told apart; everything else is just invalid. */
export function credentialError(e: unknown): BatonError {
  if (e instanceof BatonError) return e
  if (e instanceof errors.JWTExpired) return new BatonError('CREDENTIAL_EXPIRED', 'the credential has expired')
  if (e instanceof errors.JOSEAlgNotAllowed) {
    return new BatonError('CREDENTIAL_INVALID', 'the credential is not signed with EdDSA', { cause: e })
  }
  if (e instanceof errors.JWTClaimValidationFailed) {
    return new BatonError('CREDENTIAL_INVALID', `the credential's '${e.claim}' claim is wrong: ${e.reason}`, {
      cause: e,
    })
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) {
    return new BatonError('CREDENTIAL_INVALID', 'the credential signature does not verify', { cause: e })
  }
  return new BatonError('CREDENTIAL_INVALID', 'the credential is malformed', { cause: e })
}

/** True when `text` has the shape of a compact JWS (three base64url parts; the signature may be empty). */
export function looksLikeJwt(text: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(text)
}

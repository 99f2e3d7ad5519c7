import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * Console sessions: a signed cookie (HMAC-SHA256, @fastify/cookie's signer) holding an opaque random session id, the
 * id of the API key the user signed in with, and an absolute expiry. Nothing secret is in the cookie: the key itself
 * never leaves the login request. The signing secret lives in the store, so every Baton node accepts the cookie and a
 * restart keeps people signed in; each request re-reads the key record, so revoking the key ends its sessions at once,
 * and checks the store's record of signed-out sessions, so signing out ends the session on every node.
 */
export interface SessionClaims {
  /** 32 random bytes, base64url. */
  readonly sid: string
  /** The API key record the user signed in with (`ApiKeyRecord.id`). */
  readonly keyId: string
  /** Expiry, seconds since the epoch. */
  readonly exp: number
}

export const SESSION_COOKIE = 'baton_session'
export const LOGIN_CSRF_COOKIE = 'baton_login_csrf'
/** Sessions end 8 hours after sign-in, whatever happens in between: a working day. */
export const SESSION_TTL_S = 8 * 60 * 60

const FORMAT = /^v1\.([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{1,128})\.(\d{1,12})$/

export function newSessionId(): string {
  return randomBytes(32).toString('base64url')
}

export function encodeClaims(c: SessionClaims): string {
  return `v1.${c.sid}.${c.keyId}.${c.exp}`
}

/** The claims of an (already signature-checked) cookie value, or undefined when malformed or expired. */
export function decodeClaims(value: string, nowS: number): SessionClaims | undefined {
  const m = FORMAT.exec(value)
  if (m === null) return undefined
  const exp = Number(m[3])
  if (!(exp > nowS)) return undefined
  return { sid: m[1]!, keyId: m[2]!, exp }
}

/** The CSRF token of a session: bound to its id by the server's secret, so it cannot be guessed or transplanted. */
export function csrfToken(secret: Uint8Array, sid: string): string {
  return createHmac('sha256', secret).update(`csrf:${sid}`).digest('base64url')
}

export function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

import { createHmac, timingSafeEqual } from 'node:crypto'

/**
 * Webhook signatures in the style of Standard Webhooks (standardwebhooks.com): the signed content is
 * `${webhook-id}.${webhook-timestamp}.${body}`, the signature HMAC-SHA256 with the secret's bytes, sent as
 * `webhook-signature: v1,<base64>` (several space-separated during a secret rotation).
 */
export const SECRET_PREFIX = 'whsec_'

// A type, not an interface: it is also a plain header record (`Record<string, string>`).
export type SignedHeaders = {
  readonly 'webhook-id': string
  /** Unix seconds. */
  readonly 'webhook-timestamp': string
  readonly 'webhook-signature': string
}

/** The secret's key bytes: the base64 after `whsec_`. */
export function secretBytes(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) throw new TypeError(`a webhook secret starts with '${SECRET_PREFIX}'`)
  return Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64')
}

export function formatSecret(bytes: Uint8Array): string {
  return `${SECRET_PREFIX}${Buffer.from(bytes).toString('base64')}`
}

export function sign(secret: string, id: string, timestampS: number, body: string): SignedHeaders {
  const mac = createHmac('sha256', secretBytes(secret)).update(`${id}.${timestampS}.${body}`).digest('base64')
  return { 'webhook-id': id, 'webhook-timestamp': String(timestampS), 'webhook-signature': `v1,${mac}` }
}

/**
 * What a receiver does: recompute the HMAC over the id, timestamp and raw body, compare in constant time with each
 * `v1` signature, and refuse timestamps more than `toleranceS` away from `nowS` (replays).
 */
export function verify(
  secret: string,
  headers: Readonly<Record<string, string | undefined>>,
  body: string,
  nowS: number,
  toleranceS = 300,
): boolean {
  const id = headers['webhook-id']
  const ts = headers['webhook-timestamp']
  const sigs = headers['webhook-signature']
  if (id === undefined || ts === undefined || sigs === undefined || !/^\d+$/.test(ts)) return false
  if (Math.abs(nowS - Number(ts)) > toleranceS) return false
  const expected = createHmac('sha256', secretBytes(secret)).update(`${id}.${ts}.${body}`).digest()
  return sigs.split(' ').some((s) => {
    const [version, mac] = s.split(',', 2)
    if (version !== 'v1' || mac === undefined) return false
    const given = Buffer.from(mac, 'base64')
    return given.length === expected.length && timingSafeEqual(given, expected)
  })
}

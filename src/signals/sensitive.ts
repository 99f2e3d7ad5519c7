import { BatonError } from '../errors.js'
import { detectPii } from './pii.js'
import { redact } from './redact.js'
import { detectSecrets, keyedHash, secretValue } from './secrets.js'
import type { PiiFinding, SecretFinding } from './types.js'

/**
 * The one redaction every free text a caller sends goes through before anything is stored, audited, emitted,
 * returned or shown (invariant 7): a message, a case subject, a caller signal, a reason, a customer field. Secrets
 * and card numbers become `[REDACTED:<kind>]`; a secret is kept only as its kind and a keyed hash.
 */

/** A secret taken out of a caller's text: the field it was in, its kind, and a keyed hash in place of the value. */
export interface SecretRedaction {
  /** Where it was, as a request path: `subject`, `signals.order_ref`, `reason`, `attributes.note`. */
  readonly field: string
  readonly kind: string
  /**
   * HMAC-SHA256 (hex) of the secret under the deployment's hash key, of its de-obfuscated form (`secretValue`);
   * absent only where no key is at hand (the offline CLI).
   */
  readonly hash?: string
}

/** What one text holds that is never stored in clear: its secrets, its personal data, and the spans masked. */
export interface SensitiveSpans {
  readonly secrets: readonly SecretFinding[]
  /** E-mail, phone, card and IBAN findings outside the secrets (a number inside a secret is part of the secret). */
  readonly pii: readonly PiiFinding[]
  /** The spans replaced: every secret and every card number. */
  readonly masked: readonly { readonly start: number; readonly end: number; readonly kind: string }[]
}

export function findSensitive(text: string): SensitiveSpans {
  const secrets = detectSecrets(text)
  const pii = detectPii(text).filter((p) => !secrets.some((s) => p.start < s.end && s.start < p.end))
  const cards = pii.filter((p) => p.kind === 'card').map((p) => ({ start: p.start, end: p.end, kind: 'card' }))
  return { secrets, pii, masked: [...secrets, ...cards] }
}

/** One caller text, redacted, with the secrets it held (kind and keyed hash, named by `field`). */
export function redactFreeText(
  text: string,
  field: string,
  hashKey: Uint8Array | undefined,
): { readonly text: string; readonly secrets: readonly SecretRedaction[] } {
  const found = findSensitive(text)
  if (found.masked.length === 0) return { text, secrets: [] }
  return {
    text: redact(text, found.masked),
    secrets: found.secrets.map((s) =>
      hashKey === undefined
        ? { field, kind: s.kind }
        : { field, kind: s.kind, hash: keyedHash(hashKey, secretValue(text, s)) },
    ),
  }
}

/**
 * Every string in a JSON value (object values and array items, at any depth) redacted as by `redactFreeText`, each
 * named by its path under `field` (`attributes.note`, `signals.order_ref`). Object keys are kept: callers refuse a
 * key that holds a secret (`secretFields`) rather than rename it. Values that hold nothing come back as they were.
 */
export function redactStrings<T>(
  value: T,
  field: string,
  hashKey: Uint8Array | undefined,
): { readonly value: T; readonly secrets: readonly SecretRedaction[] } {
  const secrets: SecretRedaction[] = []
  const walk = (v: unknown, path: string): unknown => {
    if (typeof v === 'string') {
      const r = redactFreeText(v, path, hashKey)
      secrets.push(...r.secrets)
      return r.text
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${path}.${i}`))
    if (typeof v === 'object' && v !== null) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, `${path}.${redactedText(k)}`)]))
    }
    return v
  }
  return { value: walk(value, field) as T, secrets }
}

/** The same redaction without the keyed hashes, for text Baton writes about a refused request (problems, refusals). */
export function redactedText(text: string): string {
  const found = findSensitive(text)
  return found.masked.length === 0 ? text : redact(text, found.masked)
}

/**
 * The paths under `field` of a JSON value (string values and object keys, at any depth) that hold a secret, with its
 * kind: for inputs that are refused rather than redacted (tool parameters, identifiers, field names).
 */
export function secretFields(value: unknown, field: string): { readonly field: string; readonly kind: string }[] {
  const out: { field: string; kind: string }[] = []
  const walk = (v: unknown, path: string): void => {
    if (typeof v === 'string') {
      for (const s of detectSecrets(v)) out.push({ field: path, kind: s.kind })
    } else if (Array.isArray(v)) {
      for (const [i, x] of v.entries()) walk(x, `${path}.${i}`)
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        const name = `${path}.${redactedText(k)}`
        for (const s of detectSecrets(k)) out.push({ field: name, kind: s.kind })
        walk(x, name)
      }
    }
  }
  walk(value, field)
  return out
}

/**
 * Refuses a value that cannot be redacted because it names or reaches something (an id, a field name, a URL): one
 * that holds a secret is refused with `VALIDATION_FAILED` naming `field`, before anything is stored.
 */
export function refuseSecretIn(value: string, field: string, what = 'an identifier'): void {
  const kinds = [...new Set(detectSecrets(value).map((s) => s.kind))]
  if (kinds.length === 0) return
  const message = `holds what looks like a secret (${kinds.join(', ')}); ${what} may not`
  throw new BatonError('VALIDATION_FAILED', `${field}: ${message}`, { fields: [{ field, message }] })
}

import { createHash } from 'node:crypto'
import type { Role } from '../store/ports.js'

const KEY_PATTERN = /^bk_(admin|service|operator|analyst|metrics)_[A-Za-z0-9_-]{43}$/

/** A new API key from 32 random bytes: `bk_<role>_<base64url>`. The role in the text is a hint for humans only. */
export function formatKey(role: Role, random: Uint8Array): string {
  if (random.length !== 32) throw new TypeError('an API key needs exactly 32 random bytes')
  return `bk_${role}_${Buffer.from(random).toString('base64url')}`
}

/** True when the text has the shape of a Baton key; anything else is refused before a store lookup. */
export function looksLikeKey(text: string): boolean {
  return KEY_PATTERN.test(text)
}

/** Keys are stored as their SHA-256: they are 256-bit random, so a slow hash adds nothing. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex')
}

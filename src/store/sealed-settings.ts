import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { BatonError } from '../errors.js'
import type { Store } from './ports.js'
import { createFileOnce, modeWarning } from './secret-file.js'

/*
 * Secrets Baton keeps in the store's settings (the credential signing key, the console session secret, the key of
 * the keyed hash of detected secrets) are sealed with AES-256-GCM under a key that lives outside the database, in
 * BATON_SECRETS_KEY_FILE: a copy of the database (a backup, a replica, a leaked dump) holds no usable secret. Every
 * node of one deployment needs the same key file; a node whose key does not open the stored secrets refuses to start.
 */

const PREFIX = 'sealed.v1.'
const KEY_BYTES = 32
const KEY_FIELD = 'BATON_SECRETS_KEY_FILE'

export interface SealedSettings {
  /**
   * The secret stored under `name`: unsealed from the store, or made by `make` (default: 32 random bytes,
   * base64url), sealed and stored by the first node to ask (the others read that one). A value stored in clear by
   * an earlier version is sealed in place.
   */
  secret(name: string, make?: () => string): Promise<string>
  /** A warning to log at start (the key file is readable by others), if any. */
  readonly warning: string | undefined
}

/** Reads the sealing key from `keyFile`, creating it (mode 0600) when absent, and returns the store's sealed settings. */
export async function openSealedSettings(store: Store, keyFile: string): Promise<SealedSettings> {
  await createFileOnce(keyFile, () => `${randomBytes(KEY_BYTES).toString('base64url')}\n`)
  const key = Buffer.from((await readFile(keyFile, 'utf8')).trim(), 'base64url')
  if (key.length !== KEY_BYTES) {
    throw new BatonError('VALIDATION_FAILED', `${keyFile}: expected ${KEY_BYTES} bytes in base64url`, {
      fields: [{ field: KEY_FIELD, message: `must hold ${KEY_BYTES} random bytes, base64url` }],
    })
  }
  const warning = await modeWarning(keyFile, 'the secrets key')
  return {
    warning,
    async secret(name, make = () => randomBytes(32).toString('base64url')) {
      const stored = (await store.getSetting(name)) ?? (await store.claimSetting(name, seal(key, name, make())))
      if (!stored.startsWith(PREFIX)) {
        // stored in clear before sealing existed: seal it now, same value
        await store.putSetting(name, seal(key, name, stored))
        return stored
      }
      return unseal(key, name, stored, keyFile)
    },
  }
}

/** `sealed.v1.<nonce>.<ciphertext>.<tag>`, base64url; the setting's name is bound as associated data. */
export function seal(key: Uint8Array, name: string, value: string): string {
  const nonce = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  cipher.setAAD(Buffer.from(`baton-setting:${name}`))
  const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()])
  return `${PREFIX}${nonce.toString('base64url')}.${body.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`
}

export function unseal(key: Uint8Array, name: string, sealed: string, keyFile = KEY_FIELD): string {
  const [nonce, body, tag] = sealed.slice(PREFIX.length).split('.')
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(nonce ?? '', 'base64url'), {
      authTagLength: 16,
    })
    decipher.setAAD(Buffer.from(`baton-setting:${name}`))
    decipher.setAuthTag(Buffer.from(tag ?? '', 'base64url'))
    return Buffer.concat([decipher.update(Buffer.from(body ?? '', 'base64url')), decipher.final()]).toString('utf8')
  } catch (e) {
    throw new BatonError(
      'VALIDATION_FAILED',
      `${KEY_FIELD} (${keyFile}) does not open the stored setting '${name}': every node must use the key file that sealed it`,
      { cause: e, fields: [{ field: KEY_FIELD, message: 'not the key that sealed the stored secrets' }] },
    )
  }
}

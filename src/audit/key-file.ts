import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { BatonError } from '../errors.js'
import { createFileOnce, modeWarning, replaceFile } from '../store/secret-file.js'
import { parsePrivateKey } from './head.js'

/*
 * The head-signing key on disk: the audit capability's file adapter (the only part of src/audit that touches the
 * file system or randomness). The key is an Ed25519 private key in PKCS#8 PEM, mode 0600, in a directory of mode
 * 0700 when Baton creates it.
 */

/** Generates a fresh Ed25519 private key. */
export function generateSigningKey(): KeyObject {
  return generateKeyPairSync('ed25519').privateKey
}

function pemOf(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString()
}

async function readKey(file: string): Promise<KeyObject> {
  const text = await readFile(file, 'utf8')
  try {
    return parsePrivateKey(text)
  } catch (e) {
    throw new BatonError('VALIDATION_FAILED', `${file}: ${(e as Error).message}`, {
      cause: e,
      fields: [{ field: 'BATON_AUDIT_SIGNING_KEY_FILE', message: 'not an Ed25519 private key (PKCS#8 PEM)' }],
    })
  }
}

/**
 * Reads the signing key from `file`, creating it (mode 0600) when absent. Creation is atomic and first-wins: two
 * processes starting together end up with the same key. `warning` is set when the file is readable by others.
 */
export async function loadOrCreateSigningKey(
  file: string,
): Promise<{ readonly key: KeyObject; readonly created: boolean; readonly warning?: string }> {
  const created = await createFileOnce(file, () => pemOf(generateSigningKey()))
  const key = await readKey(file)
  const warning = await modeWarning(file, 'the signing key')
  return warning === undefined ? { key, created } : { key, created, warning }
}

/** Replaces the key in `file` with `key` atomically (write, fsync, rename). */
export function replaceSigningKey(file: string, key: KeyObject): Promise<void> {
  return replaceFile(file, pemOf(key))
}

/** Reads the key in `file` as it is now (for a running sequencer that notices a rotation). */
export function readSigningKey(file: string): Promise<KeyObject> {
  return readKey(file)
}

import { generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { BatonError } from '../errors.js'
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

/** Writes `text` to a new temporary file beside `file` (mode 0600, fsynced) and returns its path. */
async function writeTemp(file: string, text: string): Promise<string> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 })
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)
  try {
    await fh.writeFile(text)
    await fh.sync()
  } finally {
    await fh.close()
  }
  return tmp
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY).catch(() => undefined)
  if (fh === undefined) return
  try {
    await fh.sync()
  } catch {
    // some file systems refuse fsync on a directory; the rename itself is still atomic
  } finally {
    await fh.close()
  }
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
  let created = false
  try {
    await stat(file)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
    const tmp = await writeTemp(file, pemOf(generateSigningKey()))
    try {
      await link(tmp, file)
      created = true
      await syncDir(dirname(file))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    } finally {
      await unlink(tmp).catch(() => undefined)
    }
  }
  const key = await readKey(file)
  const mode = (await stat(file)).mode & 0o777
  return mode & 0o077
    ? { key, created, warning: `${file} has mode ${mode.toString(8)}; the signing key should be 0600` }
    : { key, created }
}

/** Replaces the key in `file` with `key` atomically (write, fsync, rename). */
export async function replaceSigningKey(file: string, key: KeyObject): Promise<void> {
  const tmp = await writeTemp(file, pemOf(key))
  try {
    await rename(tmp, file)
  } catch (e) {
    await unlink(tmp).catch(() => undefined)
    throw e
  }
  await syncDir(dirname(file))
}

/** Reads the key in `file` as it is now (for a running sequencer that notices a rotation). */
export function readSigningKey(file: string): Promise<KeyObject> {
  return readKey(file)
}

import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { link, mkdir, open, rename, stat, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'

/*
 * Secret files on disk (signing and sealing keys): created with mode 0600 in a directory of mode 0700, written to a
 * temporary file, fsynced, then linked or renamed into place, so a crash never leaves a half-written key.
 */

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

/**
 * Creates `file` with `make()` as its content unless it exists. Atomic and first-wins: two processes starting
 * together end up with the same file. True when this call created it.
 */
export async function createFileOnce(file: string, make: () => string): Promise<boolean> {
  try {
    await stat(file)
    return false
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
  }
  const tmp = await writeTemp(file, make())
  try {
    await link(tmp, file)
    await syncDir(dirname(file))
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return false
  } finally {
    await unlink(tmp).catch(() => undefined)
  }
}

/** Replaces `file` with `text` atomically (write, fsync, rename). */
export async function replaceFile(file: string, text: string): Promise<void> {
  const tmp = await writeTemp(file, text)
  try {
    await rename(tmp, file)
  } catch (e) {
    await unlink(tmp).catch(() => undefined)
    throw e
  }
  await syncDir(dirname(file))
}

/** A warning when `file` can be read by anyone but its owner, else undefined. */
export async function modeWarning(file: string, what: string): Promise<string | undefined> {
  const mode = (await stat(file)).mode & 0o777
  return mode & 0o077 ? `${file} has mode ${mode.toString(8)}; ${what} should be 0600` : undefined
}

import type { KeyObject } from 'node:crypto'
import { access, rename, unlink } from 'node:fs/promises'
import type { Store } from '../store/ports.js'
import { HeadSigner } from './head.js'
import { generateSigningKey, loadOrCreateSigningKey, readSigningKey, replaceSigningKey } from './key-file.js'

/** What the audit services log; pino's Logger fits. */
export interface AuditLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

/** The signer the sequencer uses now: follows rotations, and refuses to sign with a retired key. */
export interface SigningKeyHolder {
  readonly file: string
  /** The current signer, or undefined when this node's key is retired and no successor is on disk. */
  current(): Promise<HeadSigner | undefined>
}

type KeyStore = Pick<Store, 'putAuditKey' | 'listAuditKeys' | 'rotateAuditKey'>

const pendingOf = (file: string) => `${file}.next`

/**
 * Finishes or abandons a rotation that stopped half way (`rotateSigningKey` writes `<file>.next`, commits, then
 * renames): a successor the store knows replaces the key file, one it does not know is discarded.
 */
async function settleRotation(store: KeyStore, file: string): Promise<void> {
  const pending = pendingOf(file)
  if (
    !(await access(pending).then(
      () => true,
      () => false,
    ))
  )
    return
  const next = new HeadSigner(await readSigningKey(pending))
  const known = (await store.listAuditKeys()).some((k) => k.keyId === next.keyId)
  if (known) await rename(pending, file)
  else await unlink(pending)
}

/**
 * Opens this node's head-signing key: reads `file` (creating it, mode 0600, on first start), and records its public
 * key in the store (audited) when new there.
 */
export async function openSigningKey(deps: {
  readonly store: KeyStore
  readonly file: string
  readonly now: () => Date
  readonly log?: AuditLog
}): Promise<SigningKeyHolder> {
  const { store, file, now, log } = deps
  await settleRotation(store, file)
  const loaded = await loadOrCreateSigningKey(file)
  if (loaded.warning !== undefined) log?.warn({ file }, loaded.warning)
  let signer = await register(loaded.key)
  let warned = false

  async function register(key: KeyObject): Promise<HeadSigner> {
    const s = new HeadSigner(key)
    const at = now().toISOString()
    const added = await store.putAuditKey(
      { keyId: s.keyId, publicKey: s.publicKeyPem, createdAt: at, retiredAt: null },
      { type: 'audit.key_added', at, actor: { kind: 'admin', id: 'system' }, data: { keyId: s.keyId } },
    )
    if (added) log?.info({ keyId: s.keyId, file }, 'audit signing key recorded')
    return s
  }

  return {
    file,
    async current() {
      const records = await store.listAuditKeys()
      const mine = records.find((k) => k.keyId === signer.keyId)
      if (mine === undefined) {
        signer = await register(await readSigningKey(file))
        return signer
      }
      if (mine.retiredAt === null) return signer
      // Retired (by `baton audit rotate-key`): pick up the successor from disk, or stop signing.
      await settleRotation(store, file)
      const next = new HeadSigner(await readSigningKey(file))
      const rec = records.find((k) => k.keyId === next.keyId)
      if (next.keyId !== signer.keyId && (rec === undefined || rec.retiredAt === null)) {
        signer = rec === undefined ? await register(await readSigningKey(file)) : next
        warned = false
        log?.info({ keyId: signer.keyId }, 'audit signing key rotated')
        return signer
      }
      if (!warned) {
        warned = true
        log?.error(
          { keyId: signer.keyId, file },
          'audit signing key is retired and no successor is on disk: no new signed heads until `baton audit rotate-key`',
        )
      }
      return undefined
    },
  }
}

/**
 * Rotates the key in `file`: writes the successor to `<file>.next` (0600), records it and retires the old key in one
 * transaction (audited), then moves it into place. A crash at any point leaves either the old key in force or the
 * new one (settled at the next start). Old heads stay verifiable: retired public keys are kept.
 */
export async function rotateSigningKey(deps: {
  readonly store: KeyStore
  readonly file: string
  readonly now: () => Date
  readonly actor: { readonly kind: string; readonly id: string }
}): Promise<{ readonly retired: string | null; readonly keyId: string }> {
  const { store, file, now } = deps
  await settleRotation(store, file)
  const old = await readSigningKey(file).then(
    (k) => new HeadSigner(k),
    () => undefined,
  )
  const nextKey = generateSigningKey()
  const next = new HeadSigner(nextKey)
  await replaceSigningKey(pendingOf(file), nextKey)
  const at = now().toISOString()
  await store.rotateAuditKey(
    { keyId: next.keyId, publicKey: next.publicKeyPem, createdAt: at, retiredAt: null },
    old?.keyId ?? null,
    {
      type: 'audit.key_rotated',
      at,
      actor: { kind: deps.actor.kind, id: deps.actor.id },
      data: { keyId: next.keyId, retired: old?.keyId ?? null },
    },
  )
  await rename(pendingOf(file), file)
  return { retired: old?.keyId ?? null, keyId: next.keyId }
}

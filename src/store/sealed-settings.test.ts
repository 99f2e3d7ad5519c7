import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isBatonError } from '../errors.js'
import type { Store } from './ports.js'
import { openSealedSettings, seal, unseal } from './sealed-settings.js'
import { createSqliteStore } from './sqlite/database.js'

describe('sealed settings (SQLite store, key file on disk)', () => {
  let dir: string
  let store: Store
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'baton-sealed-'))
    store = createSqliteStore(join(dir, 'baton.db'))
    await store.migrate()
  })
  afterEach(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('creates the key file 0600, stores only sealed text, and gives the same secret back', async () => {
    const keyFile = join(dir, 'keys', 'secrets.key')
    const settings = await openSealedSettings(store, keyFile)
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    expect(settings.warning).toBeUndefined()
    const made = await settings.secret('signing', () => 'the-clear-value')
    expect(made).toBe('the-clear-value')
    const stored = await store.getSetting('signing')
    expect(stored).toMatch(/^sealed\.v1\./)
    expect(stored).not.toContain('the-clear-value')
    expect(stored).not.toContain(Buffer.from('the-clear-value').toString('base64url'))
    // another process with the same key file reads the same secret; `make` is not called again
    const again = await openSealedSettings(store, keyFile)
    expect(await again.secret('signing', () => 'other')).toBe('the-clear-value')
    // the default secret: 32 random bytes
    expect(Buffer.from(await settings.secret('random'), 'base64url')).toHaveLength(32)
  })

  it('gives every racing caller the first secret stored', async () => {
    const keyFile = join(dir, 'secrets.key')
    const [a, b] = await Promise.all([openSealedSettings(store, keyFile), openSealedSettings(store, keyFile)])
    const got = await Promise.all([a, b, a, b].map((s, i) => s.secret('shared', () => `value-${i}`)))
    expect(new Set(got).size).toBe(1)
  })

  it('refuses to open secrets sealed under another key file, naming the setting and the variable', async () => {
    await (await openSealedSettings(store, join(dir, 'one.key'))).secret('signing')
    const other = await openSealedSettings(store, join(dir, 'two.key'))
    const err = await other.secret('signing').catch((e: unknown) => e)
    expect(isBatonError(err, 'VALIDATION_FAILED')).toBe(true)
    expect((err as Error).message).toContain("'signing'")
    expect((err as { fields?: { field: string }[] }).fields?.[0]?.field).toBe('BATON_SECRETS_KEY_FILE')
  })

  it('seals a value an earlier version stored in clear, keeping the value', async () => {
    await store.putSetting('legacy', 'clear-from-before')
    const settings = await openSealedSettings(store, join(dir, 'secrets.key'))
    expect(await settings.secret('legacy')).toBe('clear-from-before')
    expect(await store.getSetting('legacy')).toMatch(/^sealed\.v1\./)
    expect(await settings.secret('legacy')).toBe('clear-from-before')
  })

  it('refuses a key file that does not hold 32 bytes, and warns when others can read it', async () => {
    const bad = join(dir, 'bad.key')
    writeFileSync(bad, 'too-short\n', { mode: 0o600 })
    const err = await openSealedSettings(store, bad).catch((e: unknown) => e)
    expect(isBatonError(err, 'VALIDATION_FAILED')).toBe(true)
    const open = join(dir, 'open.key')
    writeFileSync(open, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o644 })
    expect((await openSealedSettings(store, open)).warning).toMatch(/mode 644/)
  })
})

describe('seal', () => {
  const key = randomBytes(32)
  it('binds the setting name: a sealed value moved to another name does not open', () => {
    const sealed = seal(key, 'a', 'secret')
    expect(unseal(key, 'a', sealed)).toBe('secret')
    expect(() => unseal(key, 'b', sealed)).toThrow(/does not open the stored setting 'b'/)
  })
  it('detects any changed byte and a shortened tag', () => {
    const sealed = seal(key, 'a', 'secret')
    const [nonce, body, tag] = sealed.slice('sealed.v1.'.length).split('.') as [string, string, string]
    const flipped = Buffer.from(body, 'base64url')
    flipped[0] = (flipped[0] ?? 0) ^ 1
    expect(() => unseal(key, 'a', `sealed.v1.${nonce}.${flipped.toString('base64url')}.${tag}`)).toThrow()
    const short = Buffer.from(tag, 'base64url').subarray(0, 4).toString('base64url')
    expect(() => unseal(key, 'a', `sealed.v1.${nonce}.${body}.${short}`)).toThrow()
    // a fresh nonce each time: the same value seals to different text
    expect(seal(key, 'a', 'secret')).not.toBe(sealed)
  })
})

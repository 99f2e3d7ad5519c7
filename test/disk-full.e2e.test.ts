import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { openStore } from '../src/app.js'
import { formatKey } from '../src/identity/keys.js'
import { expectAuditVerifies, expectHeadOverWholeLog, expectWholeCases } from './support/integrity.js'
import { startServer } from './support/server.js'

/*
 * The embedded store's disk fills: a real, small filesystem (a 16 MiB tmpfs mounted for this test) under a real
 * `baton serve`, filled to the last byte by another file. Mounting needs root (CAP_SYS_ADMIN); elsewhere the suite is
 * skipped, saying why.
 */

const mountPoint = mkdtempSync(join(tmpdir(), 'baton-full-'))
const unavailable = ((): string | undefined => {
  if (userInfo().uid !== 0) return 'mounting a small tmpfs needs root'
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0700', 'tmpfs', mountPoint], { stdio: 'pipe' })
    return undefined
  } catch (e) {
    return `cannot mount a tmpfs here: ${(e as Error).message.split('\n')[0]}`
  }
})()
if (unavailable !== undefined) console.warn(`disk-full.e2e: skipped: ${unavailable}`)

/** Writes zeros to `file` until the filesystem refuses (ENOSPC); returns the bytes written. */
function fill(file: string): number {
  const fd = openSync(file, 'w')
  const chunk = Buffer.alloc(64 * 1024)
  let written = 0
  try {
    for (;;) written += writeSync(fd, chunk)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e
  } finally {
    closeSync(fd)
  }
  return written
}

type Answer = { status: number; type: string; code?: string; detail?: string; id?: string }

describe.skipIf(unavailable !== undefined)('the embedded store on a full disk', () => {
  afterAll(() => {
    if (unavailable === undefined) execFileSync('umount', ['-l', mountPoint])
    rmSync(mountPoint, { recursive: true, force: true })
  })

  it('answers 503 STORE_FULL naming the cause, writes nothing partial, and serves again when space returns', async () => {
    const dataDir = join(mountPoint, 'data')
    const adminKey = formatKey('admin', randomBytes(32))
    const env = { BATON_DATA_DIR: dataDir, BATON_ADMIN_KEY: adminKey, BATON_AUDIT_HEAD_INTERVAL_MS: '200' }
    const { proc, url } = await startServer(env)
    let exit: string | undefined
    proc.once('exit', (code, signal) => {
      exit = `exited with ${code ?? signal}`
    })
    const headers = { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }
    let n = 0
    const open = async (): Promise<Answer> => {
      n++
      const r = await fetch(`${url}/v1/cases`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          customer: `cu_${n % 7}`,
          channel: 'chat',
          message: { text: `Order ${n}: where is it?` },
        }),
      })
      const b = (await r.json()) as { id?: string; code?: string; detail?: string }
      return {
        status: r.status,
        type: r.headers.get('content-type') ?? '',
        ...(b.code === undefined ? {} : { code: b.code, detail: b.detail ?? '' }),
        ...(r.status === 201 && b.id !== undefined ? { id: b.id } : {}),
      }
    }
    const answers: Answer[] = []
    const burst = async (until: () => boolean, ms: number) => {
      const deadline = Date.now() + ms
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (!until() && Date.now() < deadline) answers.push(await open())
        }),
      )
    }
    const ballast = join(mountPoint, 'ballast')
    try {
      await burst(() => answers.length >= 20, 20_000)
      expect(answers.every((a) => a.status === 201)).toBe(true)

      // Another file takes every byte left. The WAL may still have room in pages it already holds; then it grows.
      expect(fill(ballast)).toBeGreaterThan(0)
      const refused = () => answers.filter((a) => a.status === 503).length
      await burst(() => refused() >= 10, 30_000)
      expect(refused()).toBeGreaterThanOrEqual(10)
      for (const a of answers.filter((x) => x.status !== 201)) {
        expect(a.status).toBe(503)
        expect(a.type).toMatch(/^application\/problem\+json/)
        expect(a.code).toBe('STORE_FULL')
        expect(a.detail).toMatch(/no space left to write \(SQLITE_FULL\); nothing was written/)
      }
      // Reads are still served, so the node stays ready (each write is refused on its own, naming the cause).
      expect((await fetch(`${url}/readyz`)).status).toBe(200)
      expect(exit).toBeUndefined()

      // Space returns: the very next requests are served, without a restart.
      unlinkSync(ballast)
      const before = answers.length
      await burst(() => answers.length >= before + 20, 20_000)
      expect(answers.slice(before).every((a) => a.status === 201)).toBe(true)
      console.info(
        `disk-full.e2e: ${answers.filter((a) => a.status === 201).length} acknowledged, ${refused()} answered 503 STORE_FULL, every request after the space returned 201`,
      )

      // Every acknowledged case is there, and the sequencer (backed off while it could not write) covers the log.
      for (const a of answers.filter((x) => x.status === 201)) {
        expect((await fetch(`${url}/v1/cases/${a.id}`, { headers })).status).toBe(200)
      }
      await expectHeadOverWholeLog(url, headers)
    } finally {
      rmSync(ballast, { force: true })
      if (exit === undefined) {
        proc.kill('SIGTERM')
        await new Promise((r) => proc.once('exit', r))
      }
    }
    expect(exit ?? 'exited with 0').toBe('exited with 0')

    // Nothing partial: each stored case has its whole history and each event its audit entry; the log is dense.
    const acked = answers.filter((a) => a.status === 201).map((a) => a.id!)
    const store = openStore({ dataDir, databaseUrl: undefined })
    try {
      expect((await expectWholeCases(store)).sort()).toEqual([...acked].sort())
    } finally {
      await store.close()
    }
    await expectAuditVerifies(env)
  }, 180_000)
})

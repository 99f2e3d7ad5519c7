import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const ROOT = resolve(import.meta.dirname, '..')

/** Runs `baton serve` until it listens, asks `GET /v1/policy` with the key it printed (if any), then stops it. */
function serveOnce(dataDir: string): Promise<{ stdout: string; stderr: string; status: number | undefined }> {
  return new Promise((done, fail) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--port', '0'], {
      cwd: ROOT,
      env: {
        ...process.env,
        BATON_DATA_DIR: dataDir,
        BATON_DATABASE_URL: '',
        BATON_ADMIN_KEY: '',
        BATON_LOG_LEVEL: 'info',
        BATON_WATCH_POLICY: '0',
        // warnings must show, so that the test below sees any the server prints
        NODE_NO_WARNINGS: undefined,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    let status: number | undefined
    let asked = false
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000)
    proc.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    proc.stderr.on('data', async (d: Buffer) => {
      stderr += d.toString()
      const url = /^Baton (http:\/\/\S+)/m.exec(stderr)?.[1]
      if (url === undefined || asked || !/^Admin key/m.test(stderr)) return
      asked = true
      const key = /bk_admin_[A-Za-z0-9_-]{43}/.exec(stderr)?.[0]
      if (key !== undefined) {
        status = (await fetch(`${url}/v1/policy`, { headers: { authorization: `Bearer ${key}` } })).status
      }
      proc.kill('SIGTERM')
    })
    proc.once('error', fail)
    proc.once('exit', () => {
      clearTimeout(timer)
      done({ stdout, stderr, status })
    })
  })
}

describe('baton serve output', () => {
  const dir = mkdtempSync(join(tmpdir(), 'baton-serve-out-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('prints the bootstrap admin key once, on stderr, never into the JSON log on stdout', async () => {
    const first = await serveOnce(dir)
    const keys = (s: string) => s.match(/bk_admin_[A-Za-z0-9_-]{43}/g) ?? []
    expect(keys(first.stderr)).toHaveLength(1)
    expect(keys(first.stdout)).toEqual([])
    expect(first.stdout).not.toContain('bk_admin_')
    expect(first.stderr).toMatch(/^Admin key \(shown once, store it now\): bk_admin_/m)
    // the key works
    expect(first.status).toBe(200)
    // stdout is the log: JSON lines and nothing else
    const lines = first.stdout.split('\n').filter((l) => l !== '')
    expect(lines.length).toBeGreaterThanOrEqual(3)
    for (const l of lines) expect(() => JSON.parse(l), l).not.toThrow()
    expect(lines.map((l) => JSON.parse(l).msg)).toContain('policy activated')
    // no deprecation or other process warning at start (fastify's FSTDEP022 was printed on every start)
    expect(first.stderr).not.toMatch(/FSTDEP|Warning/)

    // A second start on the same store prints no key at all.
    const second = await serveOnce(dir)
    expect(second.stdout + second.stderr).not.toContain('bk_admin_')
    expect(second.stderr).toMatch(/^Admin key: created at first start and shown then/m)
    for (const l of second.stdout.split('\n').filter((x) => x !== '')) expect(() => JSON.parse(l), l).not.toThrow()
    expect(second.stderr).not.toMatch(/FSTDEP|Warning/)
  }, 90_000)
})

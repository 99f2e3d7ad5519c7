import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { leakIn } from './support/leaks.js'

const ROOT = resolve(import.meta.dirname, '..')
// Built from parts so that secret scanners do not flag this repository.
const KEY = ['AKIA', 'Q3EGUBLJ4XKZ7TWM'].join('')

/** `baton serve` until it listens; `ask` runs with its URL and admin key; then it is stopped. Returns its output. */
function serve(dataDir: string, ask: (url: string, key: string) => Promise<void>): Promise<string> {
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
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    let asked = false
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000)
    proc.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    proc.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      const url = /^Baton (http:\/\/\S+)/m.exec(stderr)?.[1]
      const key = /bk_admin_[A-Za-z0-9_-]{43}/.exec(stderr)?.[0]
      if (url === undefined || key === undefined || asked) return
      asked = true
      ask(url, key)
        .catch(fail)
        .finally(() => proc.kill('SIGTERM'))
    })
    proc.once('error', fail)
    proc.once('exit', () => {
      clearTimeout(timer)
      done(stdout)
    })
  })
}

describe('the request log of baton serve', () => {
  const dir = mkdtempSync(join(tmpdir(), 'baton-log-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('shows a secret in a request URL (path or query) redacted, like stored text', async () => {
    const log = await serve(dir, async (url, key) => {
      const auth = { authorization: `Bearer ${key}` }
      expect((await fetch(`${url}/v1/cases/${KEY}?x=1`, { headers: auth })).status).toBe(404)
      expect((await fetch(`${url}/v1/cases?after=${KEY}`, { headers: auth })).status).toBe(200)
    })
    const lines = log.split('\n').filter((l) => l !== '')
    const urls = lines.map((l) => JSON.parse(l)).flatMap((l) => (typeof l.req?.url === 'string' ? [l.req.url] : []))
    expect(urls).toContain('/v1/cases/[REDACTED:aws-access-key-id]?x=1')
    expect(urls).toContain('/v1/cases?after=[REDACTED:aws-access-key-id]')
    expect(leakIn(lines, KEY)).toBeUndefined()
  }, 90_000)
})

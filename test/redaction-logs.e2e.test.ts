import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { formatKey } from '../src/identity/keys.js'
import { leakIn } from './support/leaks.js'
import { startServer } from './support/server.js'

// Built from parts so that secret scanners do not flag this repository.
const KEY = ['AKIA', 'Q3EGUBLJ4XKZ7TWM'].join('')

describe('the request log of baton serve', () => {
  const dir = mkdtempSync(join(tmpdir(), 'baton-log-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('shows a secret in a request URL (path or query) redacted, like stored text', async () => {
    const admin = formatKey('admin', randomBytes(32))
    const server = await startServer({
      BATON_DATA_DIR: dir,
      BATON_DATABASE_URL: '',
      BATON_ADMIN_KEY: admin,
      BATON_LOG_LEVEL: 'info',
    })
    try {
      const auth = { authorization: `Bearer ${admin}` }
      expect((await fetch(`${server.url}/v1/cases/${KEY}?x=1`, { headers: auth })).status).toBe(404)
      expect((await fetch(`${server.url}/v1/cases?after=${KEY}`, { headers: auth })).status).toBe(200)
    } finally {
      server.proc.kill('SIGTERM')
      await new Promise((r) => server.proc.once('exit', r))
    }
    const lines = server
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
    const urls = lines.map((l) => JSON.parse(l)).flatMap((l) => (typeof l.req?.url === 'string' ? [l.req.url] : []))
    expect(urls).toContain('/v1/cases/[REDACTED:aws-access-key-id]?x=1')
    expect(urls).toContain('/v1/cases?after=[REDACTED:aws-access-key-id]')
    expect(leakIn(server.output().split('\n'), KEY)).toBeUndefined()
  }, 90_000)
})

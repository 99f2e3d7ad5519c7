import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatKey } from '../src/identity/keys.js'
import { type PrivateCluster, privateClusterUnavailable, startPrivateCluster } from './support/pg-cluster.js'
import { startServer } from './support/server.js'

/*
 * What bad store settings get, through the real CLI: `baton serve` exits 1 with one line naming the setting and the
 * cause, before it listens, and never prints the password. The databases are a private cluster with password
 * authentication (the shared server trusts every connection and cannot refuse a password).
 */

const PASSWORD = 'pw-Zq81x'

/** Starts `baton serve`; resolves with its exit code and stderr once it exits, or 'listened' (then killed). */
function outcome(env: Record<string, string>): Promise<string> {
  return startServer(env).then(
    (s) => {
      s.proc.kill('SIGKILL')
      return 'listened'
    },
    (e: Error) => e.message,
  )
}

/** A port on which nothing listens (taken and released). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 1))
    })
  })
}

if (privateClusterUnavailable !== undefined) console.warn(`serve-bad-store.e2e: skipped: ${privateClusterUnavailable}`)

describe.skipIf(privateClusterUnavailable !== undefined)('baton serve refuses a store it cannot use, by name', () => {
  let cluster: PrivateCluster
  const dirs: string[] = []
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'baton-badstore-'))
    dirs.push(d)
    return d
  }
  beforeAll(async () => {
    cluster = await startPrivateCluster({ password: PASSWORD })
    await cluster.createDatabase('baton')
    // A role that may connect and use the database's tables but create none (PostgreSQL 15: public is not writable).
    await cluster.sql(`create role baton_app login password '${PASSWORD}'`)
  })
  afterAll(async () => {
    await cluster?.destroy()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  it('exits 1 naming BATON_DATABASE_URL and the cause: unreachable, credentials, database, privileges, malformed', async () => {
    const port = cluster.port
    const free = await closedPort()
    const cases: [string, RegExp][] = [
      [
        `postgres://postgres:${PASSWORD}@127.0.0.1:${free}/baton`,
        new RegExp(
          `BATON_DATABASE_URL \\(postgres://postgres@127\\.0\\.0\\.1:${free}/baton\\): cannot connect: the database refused the connection \\(ECONNREFUSED\\)`,
        ),
      ],
      [
        `postgres://postgres:${PASSWORD}@baton-db.invalid/baton`,
        /BATON_DATABASE_URL \(postgres:\/\/postgres@baton-db\.invalid\/baton\): cannot connect: the database host name does not resolve \((ENOTFOUND|EAI_AGAIN)\)/,
      ],
      [
        `postgres://postgres:wrong-${PASSWORD}@127.0.0.1:${port}/baton`,
        /BATON_DATABASE_URL \(postgres:\/\/postgres@127\.0\.0\.1:\d+\/baton\): password authentication failed for user "postgres" \(28P01\): check the user and password/,
      ],
      [
        `postgres://nobody:${PASSWORD}@127.0.0.1:${port}/baton`,
        /BATON_DATABASE_URL \(postgres:\/\/nobody@[^)]+\): password authentication failed for user "nobody" \(28P01\)/,
      ],
      [
        `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/no_such_db`,
        /BATON_DATABASE_URL \([^)]+\/no_such_db\): database "no_such_db" does not exist \(3D000\): create the database first/,
      ],
      [
        `postgres://baton_app:${PASSWORD}@127.0.0.1:${port}/baton`,
        /BATON_DATABASE_URL \(postgres:\/\/baton_app@[^)]+\): permission denied for schema public \(42501\): the user may not create Baton's tables/,
      ],
      [
        'not a url',
        /BATON_DATABASE_URL: expected postgres:\/\/user\[:password\]@host\[:port\]\/database, but the value is not a URL/,
      ],
      [
        `http://postgres:${PASSWORD}@127.0.0.1:${port}/baton`,
        /BATON_DATABASE_URL: expected .*, but its scheme is 'http', not postgres or postgresql/,
      ],
      [
        `postgres://postgres:${PASSWORD}@127.0.0.1:99999/baton`,
        /BATON_DATABASE_URL: expected .*, but it does not parse as a URL/,
      ],
    ]
    // Three processes at a time: each is a whole Node start (tsx), and the machine is shared.
    const outcomes: string[] = []
    for (let i = 0; i < cases.length; i += 3) {
      const batch = cases.slice(i, i + 3).map(([url]) => outcome({ BATON_DATA_DIR: dir(), BATON_DATABASE_URL: url }))
      outcomes.push(...(await Promise.all(batch)))
    }
    for (const [i, [url, expected]] of cases.entries()) {
      const out = outcomes[i]!
      expect(out, url).toMatch(/^server exited with 1: baton: /)
      expect(out, url).toMatch(expected)
      expect(out, url).not.toMatch(/\n\s+at /) // a message, not a stack trace
      expect(out, url).not.toContain(PASSWORD) // the URL is shown without its password
    }
  }, 240_000)

  it('exits 1 naming BATON_SECRETS_KEY_FILE when a node has another secrets key than the one that sealed the store', async () => {
    const url = await cluster.createDatabase('nodes')
    const adminKey = formatKey('admin', randomBytes(32))
    const first = await startServer({ BATON_DATA_DIR: dir(), BATON_DATABASE_URL: url, BATON_ADMIN_KEY: adminKey })
    try {
      expect((await fetch(`${first.url}/readyz`)).status).toBe(200)
      // A second node of the same deployment, whose secrets key file is its own (a new one is created in its dir).
      const other = dir()
      const out = await outcome({ BATON_DATA_DIR: other, BATON_DATABASE_URL: url, BATON_ADMIN_KEY: adminKey })
      expect(out).toMatch(/^server exited with 1: baton: /)
      expect(out).toContain(`BATON_SECRETS_KEY_FILE (${join(other, 'secrets.key')}) does not open the stored setting`)
      expect(out).toMatch(/every node must use the key file that sealed it/)
      expect(out).not.toMatch(/\n\s+at /)
      // The refused node changed nothing: the first still serves.
      expect((await fetch(`${first.url}/readyz`)).status).toBe(200)
    } finally {
      first.proc.kill('SIGTERM')
      await new Promise((r) => first.proc.once('exit', r))
    }
  }, 60_000)
})

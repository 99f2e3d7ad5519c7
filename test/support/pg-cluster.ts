import { execFile } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'

/*
 * A private PostgreSQL cluster for tests that must stop, restart or break the database: their own data directory
 * and port, so the shared server of BATON_TEST_DATABASE_URL (other suites run against it at the same time) is never
 * touched. Needs the server binaries (initdb, pg_ctl). As root they run as the `postgres` user (initdb refuses
 * root), with the data directory handed to it.
 */

const run = promisify(execFile)

/** The directory holding initdb and pg_ctl: BATON_PG_BIN, else the newest /usr/lib/postgresql/<v>/bin. */
function findBinDir(): string | undefined {
  const given = process.env.BATON_PG_BIN
  if (given) return existsSync(join(given, 'pg_ctl')) ? given : undefined
  const base = '/usr/lib/postgresql'
  if (!existsSync(base)) return undefined
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')) && existsSync(join(base, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a))
  return versions[0] === undefined ? undefined : join(base, versions[0], 'bin')
}

const binDir = findBinDir()
const asRoot = userInfo().uid === 0
const hasPostgresUser = (() => {
  try {
    return readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .some((l) => l.startsWith('postgres:'))
  } catch {
    return false
  }
})()

/** Why private clusters cannot run here; undefined when they can. */
export const privateClusterUnavailable: string | undefined =
  binDir === undefined
    ? 'no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or BATON_PG_BIN'
    : asRoot && !hasPostgresUser
      ? 'running as root without a postgres user to run initdb as'
      : undefined

if (privateClusterUnavailable !== undefined && (process.env.BATON_REQUIRE_PG === '1' || process.env.CI)) {
  throw new Error(`private PostgreSQL clusters are required here: ${privateClusterUnavailable}`)
}

export interface PrivateCluster {
  readonly port: number
  /** The data directory (and the Unix socket directory's parent). */
  readonly dir: string
  /** A URL of database `name` (default `postgres`) as the superuser `postgres` (with its password), over TCP. */
  url(name?: string): string
  /** Runs SQL as the superuser on database `postgres` (or `database`). */
  sql(text: string, database?: string): Promise<pg.QueryResult>
  /** Creates a database and returns its URL. */
  createDatabase(name: string): Promise<string>
  /** `pg_ctl restart -m <mode>`: every session is cut (57P01 with `fast`), the server is back when it resolves. */
  restart(mode?: 'fast' | 'immediate' | 'smart'): Promise<void>
  stop(mode?: 'fast' | 'immediate' | 'smart'): Promise<void>
  start(): Promise<void>
  /** Stops the server and deletes its directory. */
  destroy(): Promise<void>
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => (typeof a === 'object' && a !== null ? resolve(a.port) : reject(new Error('no port'))))
    })
  })
}

/** Runs a server binary, as `postgres` when this process is root. */
function tool(name: string, args: readonly string[]) {
  if (binDir === undefined) throw new Error(privateClusterUnavailable)
  const file = join(binDir, name)
  return asRoot ? run('runuser', ['-u', 'postgres', '--', file, ...args]) : run(file, args)
}

/**
 * Initialises and starts a throwaway cluster on a free port (trust authentication, listening on 127.0.0.1 and a
 * socket in its own directory). About a second. Call `destroy()` in `afterAll`.
 */
export async function startPrivateCluster(
  options: {
    /** Server settings (`-c name=value`). */
    readonly settings?: Readonly<Record<string, string>>
    /** TCP connections need this password (scram-sha-256) for the superuser `postgres`; without it, trust. */
    readonly password?: string
  } = {},
): Promise<PrivateCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-pg-'))
  if (asRoot) chownSync(dir, uidOf('postgres'), gidOf('postgres'))
  const data = join(dir, 'data')
  const auth = ['--auth=trust']
  if (options.password !== undefined) {
    const pwfile = join(dir, 'pwfile')
    writeFileSync(pwfile, `${options.password}\n`, { mode: 0o600 })
    if (asRoot) chownSync(pwfile, uidOf('postgres'), gidOf('postgres'))
    auth.splice(0, 1, '--auth-local=trust', '--auth-host=scram-sha-256', `--pwfile=${pwfile}`)
  }
  await tool('initdb', ['-D', data, '-U', 'postgres', ...auth, '-E', 'UTF8', '--no-sync'])
  const port = await freePort()
  const serverOptions = [
    `-p ${port}`,
    `-k ${dir}`,
    '-c listen_addresses=127.0.0.1',
    // A test cluster: durability is not what these tests measure, and fsync would slow everyone's disk.
    '-c fsync=off',
    '-c max_connections=60',
    ...Object.entries(options.settings ?? {}).map(([k, v]) => `-c ${k}=${v}`),
  ].join(' ')
  const ctl = (verb: string, mode?: string) =>
    tool('pg_ctl', [
      '-D',
      data,
      '-w',
      '-t',
      '30',
      '-l',
      join(dir, 'log'),
      ...(mode === undefined ? [] : ['-m', mode]),
      ...(verb === 'stop' ? [] : ['-o', serverOptions]),
      verb,
    ])
  await ctl('start')
  const secret = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}`
  const url = (name = 'postgres') => `postgres://postgres${secret}@127.0.0.1:${port}/${name}`
  let destroyed = false
  const cluster: PrivateCluster = {
    port,
    dir,
    url,
    async sql(text, database) {
      const c = new pg.Client({ connectionString: url(database), connectionTimeoutMillis: 5000 })
      c.on('error', () => undefined)
      await c.connect()
      try {
        return await c.query(text)
      } finally {
        await c.end().catch(() => undefined)
      }
    },
    async createDatabase(name) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new TypeError(`not a plain database name: ${name}`)
      await cluster.sql(`create database ${name}`)
      return url(name)
    },
    async restart(mode = 'fast') {
      await ctl('restart', mode)
    },
    async stop(mode = 'fast') {
      await ctl('stop', mode)
    },
    async start() {
      await ctl('start')
    },
    async destroy() {
      if (destroyed) return
      destroyed = true
      await ctl('stop', 'immediate').catch(() => undefined)
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return cluster
}

function passwdField(user: string, index: number): number {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`))
  const v = Number(line?.split(':')[index])
  if (!Number.isInteger(v)) throw new Error(`no user ${user} in /etc/passwd`)
  return v
}
const uidOf = (user: string) => passwdField(user, 2)
const gidOf = (user: string) => passwdField(user, 3)

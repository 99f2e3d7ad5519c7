import { BatonError } from '../errors.js'

/*
 * Engine errors that say the store cannot do its work now, whatever the request: the database is down, restarting,
 * unreachable or out of space. Both adapters map them here, at the driver (see `error-mapping.ts`), so every caller
 * (HTTP, CLI, background loops) sees `STORE_UNAVAILABLE` or `STORE_FULL` instead of a driver error, and the HTTP face
 * answers 503 instead of 500. Other engine errors (constraints, syntax) pass through unchanged.
 */

/** Socket errors (Node's errno codes) of a connection to the database. */
const NETWORK: ReadonlyMap<string, string> = new Map([
  ['ECONNREFUSED', 'the database refused the connection'],
  ['ECONNRESET', 'the connection to the database was reset'],
  ['ECONNABORTED', 'the connection to the database was aborted'],
  ['EPIPE', 'the connection to the database was closed'],
  ['ETIMEDOUT', 'the connection to the database timed out'],
  ['EHOSTUNREACH', 'the database host is unreachable'],
  ['EHOSTDOWN', 'the database host is down'],
  ['ENETUNREACH', 'the database network is unreachable'],
  ['ENOTFOUND', 'the database host name does not resolve'],
  ['EAI_AGAIN', 'the database host name could not be resolved now'],
])

/** PostgreSQL SQLSTATEs of a server that is going away, coming back, or overloaded. */
const SQLSTATE: ReadonlyMap<string, string> = new Map([
  ['57P01', 'the database is shutting down (administrator command)'],
  ['57P02', 'the database is restarting after a crash'],
  ['57P03', 'the database is starting up or shutting down'],
  ['53300', 'the database has no free connection slots'],
  ['53200', 'the database is out of memory'],
  ['57014', 'the database cancelled the statement (statement timeout)'],
  ['28P01', 'the database refused the credentials'],
  ['28000', 'the database refused the user'],
  ['3D000', 'the database does not exist'],
])

/** pg's own errors for a lost or never-made connection carry no code, only these messages. */
const PG_MESSAGES: readonly (readonly [RegExp, string])[] = [
  [/^Connection terminated due to connection timeout/, 'the database did not accept a connection in time'],
  [/^timeout exceeded when trying to connect/, 'no database connection became free in time'],
  [/^Connection terminated/, 'the connection to the database was lost'],
  [/not queryable/, 'the connection to the database was lost'],
  [/^Query read timeout/, 'the database did not answer in time'],
]

/** SQLite result codes (better-sqlite3's `code`) of a file that cannot be written now. */
const SQLITE_UNAVAILABLE: ReadonlyMap<string, string> = new Map([
  ['SQLITE_BUSY', 'the database file is locked by another writer'],
  ['SQLITE_CANTOPEN', 'the database file cannot be opened'],
  ['SQLITE_READONLY', 'the database file is read-only'],
])

/**
 * The Baton error an engine error stands for when it means the store cannot serve now (`STORE_UNAVAILABLE`) or has
 * no space left (`STORE_FULL`); undefined for every other error. The message names the cause, not the host.
 */
export function storeErrorOf(e: unknown): BatonError | undefined {
  if (e instanceof BatonError || typeof e !== 'object' || e === null) return undefined
  const err = e as { code?: unknown; message?: unknown }
  const code = typeof err.code === 'string' ? err.code : ''
  const message = typeof err.message === 'string' ? err.message : ''
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === '53100') {
    const what = code === '53100' ? 'the database server' : 'the store'
    return new BatonError('STORE_FULL', `${what} has no space left to write (${code}); nothing was written`, {
      cause: e,
    })
  }
  const reason =
    NETWORK.get(code) ??
    SQLSTATE.get(code) ??
    (code.startsWith('08') ? 'the connection to the database failed' : undefined) ??
    SQLITE_UNAVAILABLE.get(code) ??
    (code.startsWith('SQLITE_IOERR') ? 'the database file could not be read or written' : undefined) ??
    (code === '' ? PG_MESSAGES.find(([re]) => re.test(message))?.[1] : undefined)
  if (reason === undefined) return undefined
  return new BatonError('STORE_UNAVAILABLE', `the store is unavailable: ${reason}${code === '' ? '' : ` (${code})`}`, {
    cause: e,
  })
}

/** What `describeStoreUrl` shows of a database URL: scheme, user, host, port and database; never the password. */
export function describeStoreUrl(url: string): string {
  try {
    const u = new URL(url)
    const user = u.username === '' ? '' : `${decodeURIComponent(u.username)}@`
    return `${u.protocol}//${user}${u.host}${u.pathname}`
  } catch {
    return 'the URL'
  }
}

/** Engine errors and Baton errors may wrap others (`cause`); the chain, outermost first, without cycles. */
function causes(e: unknown): unknown[] {
  const chain: unknown[] = []
  for (let c: unknown = e; c !== undefined && c !== null && !chain.includes(c); c = (c as { cause?: unknown }).cause) {
    chain.push(c)
  }
  return chain
}

/** What to do about a refusal PostgreSQL gives at start, by SQLSTATE. */
const START_HINTS: Readonly<Record<string, string>> = {
  '28P01': 'check the user and password in the URL',
  '28000': "check the user in the URL and the server's pg_hba.conf",
  '3D000': 'create the database first (createdb), or name an existing one',
  '42501':
    "the user may not create Baton's tables: run Baton once as the database's owner (or grant the user CREATE on the schema) so that the migrations apply; afterwards it can run as a role with data privileges only (README, Operating it)",
}

/**
 * Why a store could not be opened or migrated at start, in words naming the cause: the server's own message and
 * SQLSTATE with a hint for refusals (credentials, database, privileges), the `STORE_UNAVAILABLE` reason for a
 * database that cannot be reached. Undefined when nothing in the error chain is recognised.
 */
export function explainStartError(e: unknown): string | undefined {
  const chain = causes(e)
  for (const c of chain) {
    const code = (c as { code?: unknown }).code
    if (typeof code === 'string' && START_HINTS[code] !== undefined && !(c instanceof BatonError)) {
      return `${(c as Error).message} (${code}): ${START_HINTS[code]}`
    }
  }
  for (const c of chain) {
    const code = (c as { code?: unknown }).code
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOTDIR') {
      return `cannot create or open the database file: ${(c as Error).message}`
    }
    const known = c instanceof BatonError ? c : storeErrorOf(c)
    if (known !== undefined && (known.code === 'STORE_UNAVAILABLE' || known.code === 'STORE_FULL')) {
      return known.message.replace(/^the store is unavailable: /, 'cannot connect: ')
    }
  }
  return undefined
}

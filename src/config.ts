import { join, resolve } from 'node:path'
import { BatonError } from './errors.js'
import { type LlmSettings, llmSettingsFrom } from './intents/load.js'

export interface Config {
  readonly port: number
  readonly host: string
  readonly dataDir: string
  /** PostgreSQL instead of the embedded store when set. */
  readonly databaseUrl: string | undefined
  /**
   * How the embedded store makes commits durable: `group` (default; commits share one WAL fsync before they are
   * acknowledged) or `full` (SQLite fsyncs inside each commit). Both acknowledge only what is on disk.
   */
  readonly sqliteSync: 'group' | 'full'
  readonly workspace: string
  /** Bootstrap admin key for automation; otherwise one is generated on first start and printed once. */
  readonly adminKey: string | undefined
  readonly logLevel: string
  /** Maximum request body, bytes. */
  readonly bodyLimit: number
  readonly watchPolicy: boolean
  /** Ed25519 key (PKCS#8 PEM) that signs audit tree heads; created with mode 0600 on first start when absent. */
  readonly auditSigningKeyFile: string
  /**
   * Key (32 random bytes, base64url) that seals the secrets Baton keeps in the store (credential signing key, console
   * session secret, keyed-hash key); created with mode 0600 on first start when absent. Every node needs the same one.
   */
  readonly secretsKeyFile: string
  /** Longest wait, ms, between new audit entries and the signed tree head that covers them. */
  readonly auditHeadIntervalMs: number
  /** Longest time a request may take before it is answered 503 `SERVER_TIMEOUT`, ms (streams excepted). */
  readonly requestTimeoutMs: number
  /** How often the case folds of the last 30 days are brought up to date for the quality figures, ms (0: never). */
  readonly qualityFoldsIntervalMs: number
  /** PostgreSQL: longest wait for a connection (new or from the pool), ms; past it `STORE_UNAVAILABLE`. */
  readonly databaseConnectTimeoutMs: number
  /** PostgreSQL: `statement_timeout` of Baton's sessions, ms (0: none). */
  readonly databaseStatementTimeoutMs: number
  /**
   * Webhooks may go to loopback, private, link-local and other non-public addresses (`BATON_WEBHOOK_ALLOW_PRIVATE=1`);
   * refused by default (`src/events/targets.ts`).
   */
  readonly webhookAllowPrivate: boolean
  /** The intent classifier's second opinion (an OpenAI-compatible endpoint, `BATON_LLM_*`); none when absent. */
  readonly llm?: LlmSettings | undefined
  /**
   * Baton's public base URL (`https://baton.example`, no path), as clients reach it behind a proxy: the MCP gateway's
   * resource and the OAuth issuer its metadata documents name. Absent: the address Baton listens on.
   */
  readonly publicUrl?: string | undefined
  /** The MCP gateway's sessions (`/mcp`). */
  readonly mcp?: McpSettings | undefined
}

export interface McpSettings {
  /** A session no request has used for this long is closed, seconds. */
  readonly sessionIdleSeconds: number
  /** Open sessions a node keeps at most; an `initialize` beyond it is refused (503) until one closes. */
  readonly maxSessions: number
  /** Origins (besides Baton's own) whose browsers may call `/mcp`; any other `Origin` is refused (403). */
  readonly allowedOrigins: readonly string[]
}

export const MCP_DEFAULTS: McpSettings = { sessionIdleSeconds: 1800, maxSessions: 1000, allowedOrigins: [] }

export const DEFAULTS = {
  port: 8080,
  host: '127.0.0.1',
  dataDir: './data',
  workspace: 'examples/shop',
  logLevel: 'info',
  bodyLimit: 64 * 1024,
  auditHeadIntervalMs: 1000,
  requestTimeoutMs: 10_000,
  qualityFoldsIntervalMs: 300_000,
  databaseConnectTimeoutMs: 5000,
  databaseStatementTimeoutMs: 30_000,
} as const

/** pino's levels. */
const LOG_LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** Builds the configuration from flags (which win) and the environment. */
export function configFrom(env: NodeJS.ProcessEnv, flags: Partial<Config> = {}): Config {
  const port = flags.port ?? intFrom(env.BATON_PORT, 'BATON_PORT') ?? DEFAULTS.port
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new BatonError('VALIDATION_FAILED', `BATON_PORT: expected 0..65535, found ${port}`, {
      fields: [{ field: 'BATON_PORT', message: 'must be a port number' }],
    })
  }
  const dataDir = resolve(flags.dataDir ?? env.BATON_DATA_DIR ?? DEFAULTS.dataDir)
  const auditHeadIntervalMs =
    flags.auditHeadIntervalMs ??
    intFrom(env.BATON_AUDIT_HEAD_INTERVAL_MS, 'BATON_AUDIT_HEAD_INTERVAL_MS') ??
    DEFAULTS.auditHeadIntervalMs
  if (auditHeadIntervalMs < 1) {
    throw new BatonError(
      'VALIDATION_FAILED',
      `BATON_AUDIT_HEAD_INTERVAL_MS: expected ≥ 1, found ${auditHeadIntervalMs}`,
      {
        fields: [{ field: 'BATON_AUDIT_HEAD_INTERVAL_MS', message: 'must be a positive number of milliseconds' }],
      },
    )
  }
  const sqliteSync = flags.sqliteSync ?? (env.BATON_SQLITE_SYNC || 'group')
  if (sqliteSync !== 'group' && sqliteSync !== 'full') {
    throw new BatonError('VALIDATION_FAILED', `BATON_SQLITE_SYNC: expected 'group' or 'full', found '${sqliteSync}'`, {
      fields: [{ field: 'BATON_SQLITE_SYNC', message: "must be 'group' or 'full'" }],
    })
  }
  const logLevel = flags.logLevel ?? env.BATON_LOG_LEVEL ?? DEFAULTS.logLevel
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new BatonError(
      'VALIDATION_FAILED',
      `BATON_LOG_LEVEL: expected one of ${LOG_LEVELS.join(', ')}, found '${logLevel}'`,
      {
        fields: [{ field: 'BATON_LOG_LEVEL', message: `must be one of ${LOG_LEVELS.join(', ')}` }],
      },
    )
  }
  const requestTimeoutMs = msFrom(env, flags.requestTimeoutMs, 'BATON_REQUEST_TIMEOUT_MS', DEFAULTS.requestTimeoutMs, 1)
  const qualityFoldsIntervalMs = msFrom(
    env,
    flags.qualityFoldsIntervalMs,
    'BATON_QUALITY_FOLDS_INTERVAL_MS',
    DEFAULTS.qualityFoldsIntervalMs,
    0,
  )
  const databaseConnectTimeoutMs = msFrom(
    env,
    flags.databaseConnectTimeoutMs,
    'BATON_DATABASE_CONNECT_TIMEOUT_MS',
    DEFAULTS.databaseConnectTimeoutMs,
    1,
  )
  const databaseStatementTimeoutMs = msFrom(
    env,
    flags.databaseStatementTimeoutMs,
    'BATON_DATABASE_STATEMENT_TIMEOUT_MS',
    DEFAULTS.databaseStatementTimeoutMs,
    0,
  )
  const allowPrivate = env.BATON_WEBHOOK_ALLOW_PRIVATE ?? ''
  if (flags.webhookAllowPrivate === undefined && !['', '0', '1'].includes(allowPrivate)) {
    throw new BatonError(
      'VALIDATION_FAILED',
      `BATON_WEBHOOK_ALLOW_PRIVATE: expected '1' or '0', found '${allowPrivate}'`,
      { fields: [{ field: 'BATON_WEBHOOK_ALLOW_PRIVATE', message: "must be '1' or '0'" }] },
    )
  }
  return {
    port,
    sqliteSync,
    requestTimeoutMs,
    qualityFoldsIntervalMs,
    databaseConnectTimeoutMs,
    databaseStatementTimeoutMs,
    host: flags.host ?? env.BATON_HOST ?? DEFAULTS.host,
    dataDir,
    databaseUrl: checkedDatabaseUrl(flags.databaseUrl ?? (env.BATON_DATABASE_URL || undefined)),
    workspace: resolve(flags.workspace ?? env.BATON_WORKSPACE ?? DEFAULTS.workspace),
    adminKey: flags.adminKey ?? (env.BATON_ADMIN_KEY || undefined),
    logLevel,
    bodyLimit: flags.bodyLimit ?? intFrom(env.BATON_BODY_LIMIT, 'BATON_BODY_LIMIT') ?? DEFAULTS.bodyLimit,
    watchPolicy: flags.watchPolicy ?? env.BATON_WATCH_POLICY !== '0',
    auditSigningKeyFile: resolve(
      flags.auditSigningKeyFile ?? (env.BATON_AUDIT_SIGNING_KEY_FILE || join(dataDir, 'audit-signing-key.pem')),
    ),
    secretsKeyFile: resolve(flags.secretsKeyFile ?? (env.BATON_SECRETS_KEY_FILE || join(dataDir, 'secrets.key'))),
    auditHeadIntervalMs,
    webhookAllowPrivate: flags.webhookAllowPrivate ?? allowPrivate === '1',
    llm: flags.llm ?? llmSettingsFrom(env),
    publicUrl: flags.publicUrl ?? publicUrlFrom(env.BATON_PUBLIC_URL),
    mcp: flags.mcp ?? {
      sessionIdleSeconds:
        intFrom(env.BATON_MCP_SESSION_IDLE_S, 'BATON_MCP_SESSION_IDLE_S', 1, 7 * 86_400) ??
        MCP_DEFAULTS.sessionIdleSeconds,
      maxSessions:
        intFrom(env.BATON_MCP_MAX_SESSIONS, 'BATON_MCP_MAX_SESSIONS', 1, 1_000_000) ?? MCP_DEFAULTS.maxSessions,
      allowedOrigins: (env.BATON_MCP_ALLOWED_ORIGINS ?? '')
        .split(',')
        .map((o) => o.trim())
        .filter((o) => o !== '')
        .map((o) => originFrom(o, 'BATON_MCP_ALLOWED_ORIGINS')),
    },
  }
}

/**
 * A PostgreSQL URL (`postgres[ql]://user[:password]@host[:port]/database`, or a socket directory as `?host=`), or
 * undefined. Refused with the variable named; the message never repeats the URL, which may hold a password.
 */
function checkedDatabaseUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined
  const refuse = (why: string): never => {
    throw new BatonError(
      'VALIDATION_FAILED',
      `BATON_DATABASE_URL: expected postgres://user[:password]@host[:port]/database, but ${why}`,
      { fields: [{ field: 'BATON_DATABASE_URL', message: why }] },
    )
  }
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return refuse(
      /^postgres(ql)?:\/\//.test(url)
        ? 'it does not parse as a URL (a port must be 1-65535; percent-encode @ : / in the password)'
        : 'the value is not a URL',
    )
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    refuse(`its scheme is '${u.protocol.slice(0, -1)}', not postgres or postgresql`)
  }
  if (u.hostname === '' && !u.searchParams.has('host')) refuse('it names no host')
  if (u.port !== '' && (Number(u.port) < 1 || Number(u.port) > 65535)) refuse(`its port ${u.port} is out of range`)
  return url
}

/** A duration in ms from a flag or `name` in `env`: an integer in [min, 1 day]. */
function msFrom(env: NodeJS.ProcessEnv, flag: number | undefined, name: string, fallback: number, min: number): number {
  const v = flag ?? intFrom(env[name], name) ?? fallback
  if (!Number.isInteger(v) || v < min || v > 86_400_000) {
    throw new BatonError('VALIDATION_FAILED', `${name}: expected an integer in [${min}, 86400000] ms, found ${v}`, {
      fields: [{ field: name, message: `must be an integer number of milliseconds in [${min}, 86400000]` }],
    })
  }
  return v
}

/** `BATON_PUBLIC_URL`: an http(s) URL with no path, query or fragment; kept without a trailing slash. */
function publicUrlFrom(v: string | undefined): string | undefined {
  if (v === undefined || v === '') return undefined
  const fail = () =>
    new BatonError('VALIDATION_FAILED', `BATON_PUBLIC_URL: expected an http(s) URL with no path, found '${v}'`, {
      fields: [{ field: 'BATON_PUBLIC_URL', message: 'must be an http(s) URL with no path, query or fragment' }],
    })
  let u: URL
  try {
    u = new URL(v)
  } catch {
    throw fail()
  }
  if (!['http:', 'https:'].includes(u.protocol) || u.pathname !== '/' || u.search !== '' || u.hash !== '') throw fail()
  return u.origin
}

function originFrom(v: string, name: string): string {
  const u = URL.canParse(v) ? new URL(v) : undefined
  if (u !== undefined && u.origin !== 'null' && u.origin === v.replace(/\/$/, '')) return u.origin
  throw new BatonError('VALIDATION_FAILED', `${name}: expected origins like https://app.example, found '${v}'`, {
    fields: [{ field: name, message: 'must be a comma-separated list of origins (scheme://host[:port])' }],
  })
}

function intFrom(v: string | undefined, name: string, min = -Infinity, max = Infinity): number | undefined {
  if (v === undefined || v === '') return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) {
    const range = Number.isFinite(min) ? ` in [${min}, ${max}]` : ''
    throw new BatonError('VALIDATION_FAILED', `${name}: expected an integer${range}, found '${v}'`, {
      fields: [{ field: name, message: `must be an integer${range}` }],
    })
  }
  return n
}

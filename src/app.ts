import { createHash, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import type { FastifyInstance } from 'fastify'
import pino, { type Logger } from 'pino'
import { expireApproval } from './approvals/decide.js'
import { type AuditService, startAuditService } from './audit/service.js'
import type { ActivePolicy, Actor, IntakeDeps } from './cases/intake.js'
import { type Config, MCP_DEFAULTS } from './config.js'
import type { ConnectorCall } from './credentials/deps.js'
import { setUpAuthority } from './credentials/setup.js'
import { expireConfirmation } from './delegation/confirm.js'
import { BatonError, isBatonError } from './errors.js'
import { lookupAll } from './events/poster.js'
import type { WebhookTargets } from './events/targets.js'
import { createServer } from './http/server.js'
import type { PolicyActivated, PolicyTrigger, Services } from './http/services.js'
import { cachedAgentStates } from './identity/agent-states.js'
import { cachedKeys } from './identity/key-cache.js'
import { formatKey, hashKey, looksLikeKey } from './identity/keys.js'
import { loadIntentDetector } from './intents/load.js'
import { type CompiledPolicy, compilePolicy, type KnownNames } from './policy/compile.js'
import { versionConflict } from './policy/versions.js'
import { startFoldKeeper } from './quality/keeper.js'
import { LiveHistory } from './quality/live.js'
import { redactedText, redactFreeText, redactStrings, refuseSecretIn } from './signals/sensitive.js'
import { compileTerms, DEFAULT_RISK_TERMS, mergeTerms } from './signals/terms.js'
import { APPROVAL_EXPIRY_TIMER, CONFIRMATION_EXPIRY_TIMER } from './store/authority-store.js'
import { describeStoreUrl, explainStartError, storeErrorOf } from './store/engine-errors.js'
import type { PolicyVersionRecord, Store } from './store/ports.js'
import { createPostgresStore } from './store/postgres/database.js'
import { openSealedSettings, type SealedSettings } from './store/sealed-settings.js'
import { createSqliteStore } from './store/sqlite/database.js'
import { createPollingLoop } from './timers/loop.js'
import { VERSION } from './version.js'
import { createWorkServices, type WorkOptions } from './work.js'
import { watchFileByPath } from './workspace/policy-watch.js'
import { loadWorkspace, type Workspace } from './workspace/workspace.js'

export { VERSION }

/** How often a node on a shared store checks the store's newest policy version behind its notifications, ms. */
export const POLICY_SYNC_MS = 2000

export interface App {
  readonly server: FastifyInstance
  readonly services: Services
  readonly store: Store
  readonly logger: Logger
  /** The admin key generated at this start, to be printed once; undefined when one already existed or was given. */
  readonly generatedAdminKey: string | undefined
  /** Set when the policy file was refused at start and the store's newer version is in force: why, for serve. */
  readonly policyNotice: string | undefined
  /** The audit log's signing key and sequencer (`audit.sequenceOnce()` in tests). */
  readonly audit: AuditService
  close(): Promise<void>
}

const SYSTEM: Actor = { kind: 'admin', id: 'system', roles: ['admin'] }

/** Opens the store the configuration names: PostgreSQL when a URL is set, else SQLite in the data directory. */
export function openStore(
  config: Pick<Config, 'databaseUrl' | 'dataDir'> &
    Partial<Pick<Config, 'sqliteSync' | 'databaseConnectTimeoutMs' | 'databaseStatementTimeoutMs'>>,
  logger?: Logger,
): Store {
  return config.databaseUrl
    ? createPostgresStore(config.databaseUrl, {
        ...(config.databaseConnectTimeoutMs === undefined ? {} : { connectTimeoutMs: config.databaseConnectTimeoutMs }),
        ...(config.databaseStatementTimeoutMs === undefined
          ? {}
          : { statementTimeoutMs: config.databaseStatementTimeoutMs }),
        ...(logger === undefined
          ? {}
          : {
              onDrainError: (e: unknown) =>
                logger.warn(
                  { err: storeErrorOf(e)?.message ?? e },
                  'audit queue drain failed; retried on the next write or read',
                ),
              onConnectionError: (e: unknown) =>
                logger.warn(
                  { err: storeErrorOf(e)?.message ?? e },
                  'a database connection failed; it is replaced on the next query',
                ),
            }),
      })
    : createSqliteStore(join(config.dataDir, 'baton.db'), { sync: config.sqliteSync ?? 'group' })
}

// Random bytes for ids, drawn from the CSPRNG 4 KiB at a time (as crypto.randomUUID does): one call per id cost
// more than the rest of the id; every byte still serves one id only.
let idPool = Buffer.alloc(0)
let idOffset = 0

export function newId(prefix: string): string {
  // 16 random bytes: unguessable ids, so knowing one case id tells nothing about another.
  if (idOffset + 16 > idPool.length) {
    idPool = randomBytes(4096)
    idOffset = 0
  }
  const id = idPool.toString('base64url', idOffset, idOffset + 16)
  idOffset += 16
  return `${prefix}_${id}`
}

export function knownNames(ws: Workspace) {
  return { agents: ws.agents.map((a) => a.id), queues: ws.queues.map((q) => q.id), tools: ws.tools.map((t) => t.name) }
}

export function activePolicyOf(policy: CompiledPolicy): ActivePolicy {
  return {
    policy,
    riskTerms: compileTerms(mergeTerms(DEFAULT_RISK_TERMS, policy.terms)),
    topicTerms: compileTerms(policy.topics),
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

/**
 * The store's newest policy, compiled against this workspace, to stay in force over an older file at start.
 * @throws BatonError POLICY_INVALID naming both when it no longer compiles (say, a tool it names was removed).
 */
function compileStoredPolicy(newest: PolicyVersionRecord, known: KnownNames, refused: unknown): CompiledPolicy {
  try {
    return compilePolicy(newest.source, newest.file, known)
  } catch (e) {
    throw new BatonError(
      'POLICY_INVALID',
      `${(refused as Error).message}; and the store's newest activated policy, ${newest.name} v${newest.version} ` +
        `(${newest.file}), does not compile against this workspace: ${(e as Error).message}`,
      { cause: e, positions: e instanceof BatonError ? e.positions : [] },
    )
  }
}

/** The composition root: configuration → store → workspace and policy → services → HTTP face. */
export async function createApp(
  config: Config,
  options: {
    readonly logger?: Logger
    readonly store?: Store
    /** How tool connectors are called (default: HTTP, `src/tools/connector.ts`). */
    readonly connector?: ConnectorCall
    /** The clock every use case reads (default the system clock); tests that measure time set their own. */
    readonly now?: () => Date
    /** Loop intervals and the webhook poster of queues, timers and events (tests make them fast). */
    readonly work?: Partial<
      Pick<
        WorkOptions,
        | 'timerIntervalMs'
        | 'webhookIntervalMs'
        | 'autoAssignIntervalMs'
        | 'streamPollMs'
        | 'webhookBaseBackoffMs'
        | 'post'
      >
    > & {
      /** How webhook host names are resolved (default getaddrinfo, `lookupAll`); tests simulate DNS with it. */
      readonly resolve?: WebhookTargets['resolve']
    }
    /**
     * How often a node sharing its store with others checks the store's newest policy version, ms (default
     * POLICY_SYNC_MS): the fallback behind the `policy` notification, so a missed one costs at most this long.
     */
    readonly policySyncMs?: number
  } = {},
): Promise<App> {
  const logger =
    options.logger ??
    pino({
      level: config.logLevel,
      redact: {
        paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'key', 'adminKey'],
        censor: '[redacted]',
      },
      // a request's URL is whatever the caller typed (an id, a query string): redacted like stored text
      serializers: { req: requestForLog },
    })
  let store: Store
  try {
    store = options.store ?? openStore(config, logger)
  } catch (e) {
    throw startError(e, config)
  }
  try {
    await store.migrate()
  } catch (e) {
    await store.close().catch(() => undefined)
    throw startError(e, config)
  }
  const workspace = await loadWorkspace(config.workspace)
  let intents: Awaited<ReturnType<typeof loadIntentDetector>>
  try {
    intents = await loadIntentDetector(workspace.dir, config.llm)
  } catch (e) {
    await store.close().catch(() => undefined)
    throw e
  }
  // a caller's intent must be one of the model's labels (or of the policy's intents:), see validateCallerSignals
  const known = {
    ...knownNames(workspace),
    intents: intents?.model?.labels ?? [],
    intentClasses: intents?.classes?.classes ?? [],
  }
  const now = options.now ?? (() => new Date())

  let settings: SealedSettings
  let secretHashKey: Uint8Array
  try {
    settings = await openSealedSettings(store, config.secretsKeyFile)
    secretHashKey = Buffer.from(await settings.secret('secret_hash_key'), 'base64url')
  } catch (e) {
    await store.close().catch(() => undefined)
    throw e
  }
  if (settings.warning !== undefined) logger.warn(settings.warning)

  const policyFile = workspace.policyFile
  // Relative to the working directory when inside it, else absolute (not `../../tmp/ws/policy.yaml`).
  const relativeFile = relative(process.cwd(), policyFile)
  const displayFile = relativeFile === '' || relativeFile.startsWith('..') ? policyFile : relativeFile
  let active: (ActivePolicy & { loadedAt: string; file: string }) | undefined
  const current = () => {
    if (active === undefined) throw new TypeError('no policy is active yet')
    return active
  }
  /** Why the policy file was not activated at start (the store's newer version is in force), for serve to print. */
  let policyNotice: string | undefined
  // One activation at a time in this process, so the version in force is the last one the store accepted here.
  let activations: Promise<unknown> = Promise.resolve()
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = activations.then(fn, fn)
    activations = run.catch(() => undefined)
    return run
  }
  /** sha256 of the file content last read (activated or refused): a watch event that changed nothing is no news. */
  let lastFileHash: string | undefined

  /** Compiles and activates through the store (higher versions only); the in-memory swap follows the store. */
  async function activateNow(source: string, file: string, actor: Actor, trigger: PolicyTrigger) {
    const compiled = compilePolicy(source, file, known)
    const loadedAt = now().toISOString()
    const { outcome, newest } = await store.activatePolicyVersion(
      {
        hash: compiled.ref.hash,
        name: compiled.ref.name,
        version: compiled.ref.version,
        owner: compiled.owner,
        file,
        source,
        loadedAt,
      },
      {
        type: 'policy.activated',
        at: loadedAt,
        actor: { kind: actor.kind, id: actor.id },
        data: { ...compiled.ref, owner: compiled.owner, file },
      },
    )
    if (outcome === 'conflict') {
      throw versionConflict({ ...compiled.ref, at: { file, ...compiled.doc.metadata.versionAt } }, newest)
    }
    // Swapped only once the store holds the version: every decision names a version the store holds. `unchanged`
    // can still swap here, when another node activated this document first.
    if (active?.policy.ref.hash !== compiled.ref.hash) active = { ...activePolicyOf(compiled), loadedAt, file }
    logger.info(
      { policy: compiled.ref, file, trigger, outcome },
      outcome === 'activated' ? 'policy activated' : 'policy unchanged: already the newest activated version',
    )
    return { ...compiled.ref, outcome }
  }

  function logRefusal(e: unknown, file: string, trigger: PolicyTrigger): void {
    if (!(e instanceof BatonError)) {
      logger.error({ err: e, file, trigger }, 'policy not activated; the previous version stays in force')
      return
    }
    // The caller of PUT and reload is answered too; a file change has nobody else to tell.
    const level = trigger === 'watch' || trigger === 'start' ? 'error' : 'warn'
    const errors =
      e.positions.length > 0 ? e.positions.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`) : [e.message]
    logger[level]({ code: e.code, file, trigger, errors }, 'policy refused; the previous version stays in force')
  }

  async function readPolicyFile(): Promise<string> {
    try {
      return await readFile(policyFile, 'utf8')
    } catch (e) {
      throw new BatonError('POLICY_NOT_FOUND', `cannot read policy file ${displayFile}: ${(e as Error).message}`, {
        cause: e,
      })
    }
  }

  /** Reads the file from disk by its path (never a handle that a replace leaves behind) and activates it. */
  function reloadFile(actor: Actor, trigger: 'watch' | 'reload') {
    return serially(async () => {
      const source = await readPolicyFile()
      const hash = sha256(source)
      if (trigger === 'watch' && hash === lastFileHash) return undefined
      lastFileHash = hash
      try {
        return await activateNow(source, displayFile, actor, trigger)
      } catch (e) {
        // Refused content stays refused until it changes; anything else (the store) is tried at the next event.
        if (!isBatonError(e, 'POLICY_INVALID') && !isBatonError(e, 'POLICY_VERSION_CONFLICT')) lastFileHash = undefined
        throw e
      }
    }).catch((e: unknown) => {
      logRefusal(e, displayFile, trigger)
      throw e
    })
  }

  const policy: Services['policy'] = {
    current,
    activate: (source, file, actor) =>
      serially(() => activateNow(source, file, actor, 'put')).catch((e: unknown) => {
        logRefusal(e, file, 'put')
        throw e
      }),
    reload: async (actor) => (await reloadFile(actor, 'reload')) as PolicyActivated,
  }

  // At start the file is activated like any other; one that is not higher than the store's newest version does not
  // roll the policy back: the newest activated version stays in force (on every node, after every restart).
  try {
    const source = await readPolicyFile()
    lastFileHash = sha256(source)
    try {
      await activateNow(source, displayFile, SYSTEM, 'start')
    } catch (e) {
      const newest = isBatonError(e, 'POLICY_VERSION_CONFLICT') ? await store.newestPolicyVersion() : undefined
      if (newest === undefined) throw e
      const kept = compileStoredPolicy(newest, known, e)
      active = { ...activePolicyOf(kept), loadedAt: now().toISOString(), file: newest.file }
      policyNotice = `${(e as BatonError).message}; the store's newest activated policy, ${newest.name} v${newest.version} (${newest.file}), stays in force`
      logRefusal(e, displayFile, 'start')
      logger.warn({ policy: kept.ref, file: newest.file, trigger: 'start', outcome: 'kept' }, policyNotice)
    }
  } catch (e) {
    await store.close().catch(() => undefined)
    throw e
  }

  // Several nodes on one store: a version activated on any of them is in force here too, woken by the store's
  // `policy` notification and checked every policySyncMs in case one was missed.
  let refusedHash: string | undefined
  /** Puts the store's newest activated version in force here when it is newer than this node's. */
  const adoptNewest = () =>
    serially(async () => {
      const newest = await store.newestPolicyVersion()
      const mine = active?.policy.ref
      if (newest === undefined || newest.hash === mine?.hash || (mine !== undefined && newest.version <= mine.version))
        return
      let compiled: CompiledPolicy
      try {
        compiled = compilePolicy(newest.source, newest.file, known)
      } catch (e) {
        if (refusedHash !== newest.hash) {
          refusedHash = newest.hash
          logger.error(
            { err: (e as Error).message, policy: { name: newest.name, version: newest.version }, trigger: 'node' },
            "another node's policy does not compile against this node's workspace; the previous version stays in force here",
          )
        }
        return
      }
      active = { ...activePolicyOf(compiled), loadedAt: now().toISOString(), file: newest.file }
      logger.info({ policy: compiled.ref, file: newest.file, trigger: 'node' }, 'policy activated by another node')
    })
  const policySync = store.changes.shared
    ? createPollingLoop(adoptNewest, (e) =>
        logger.warn({ err: storeErrorOf(e)?.message ?? e }, 'policy version check failed; retrying'),
      )
    : undefined

  // API keys are read at most 1 s old, and forgotten at every revocation on any node (see key-cache.ts)
  const apiKeys = cachedKeys(store, () => Date.now(), 1000)
  const offKeys = store.changes.subscribe('keys', () => apiKeys.invalidate())
  // routing reads the agents' states at most 1 s old; the commit checks them again (see agent-states.ts)
  const agentStates = cachedAgentStates(store, () => Date.now(), 1000)
  const intake: IntakeDeps = { store, policy: current, now, newId, secretHashKey, intents, agentStates }

  const { resolve: resolveHost, ...workOptions } = options.work ?? {}
  const work = await createWorkServices({
    store,
    workspace,
    policy: current,
    now,
    newId,
    secretHashKey,
    log: logger,
    webhookTargets: { allowPrivate: config.webhookAllowPrivate, resolve: resolveHost ?? lookupAll },
    ...workOptions,
  })

  // The address the server listens on, once it does: the public URL when BATON_PUBLIC_URL is not set.
  let server: FastifyInstance | undefined
  const publicUrl = (): string | undefined => config.publicUrl ?? listenUrl(server)
  const authority = await setUpAuthority({
    store,
    workspace,
    policy: current,
    now,
    newId,
    env: process.env,
    connector: options.connector,
    version: VERSION,
    publicUrl,
    actor: SYSTEM,
    settings,
    secretHashKey,
    onError: (e) => logger.error({ err: e }, 'refusal summary not written; kept for the next one'),
    onUpstreamError: (e, upstream) =>
      logger.warn({ err: e, upstream }, 'upstream MCP server connection failed; opened again on the next call'),
  })
  work.timers.register(APPROVAL_EXPIRY_TIMER, async (t) => {
    await expireApproval(store, String(t.payload.approvalId), now())
  })
  work.timers.register(CONFIRMATION_EXPIRY_TIMER, async (t) => {
    await expireConfirmation(store, String(t.payload.confirmationId), now())
  })

  const services: Services = {
    authority,
    settings,
    work,
    store,
    intake,
    workspace,
    policy,
    keys: {
      active: (hash) => apiKeys.active(hash),
      async create(role, given, actor, principalId) {
        if (principalId !== undefined) {
          if (role !== 'operator') {
            throw new BatonError('VALIDATION_FAILED', 'operatorId: only an operator key names an operator', {
              fields: [{ field: 'operatorId', message: "only with role 'operator'" }],
            })
          }
          if ((await store.getOperator(principalId)) === undefined) {
            throw new BatonError('OPERATOR_NOT_FOUND', `no operator with id '${principalId}'`)
          }
        }
        const key = formatKey(role, randomBytes(32))
        const named = redactFreeText(given, 'name', secretHashKey)
        const name = named.text
        const record = {
          id: newId('key'),
          name,
          role,
          hash: hashKey(key),
          createdAt: now().toISOString(),
          revokedAt: null,
          principalId: principalId ?? null,
        }
        await store.createKey(record, {
          type: 'key.created',
          at: record.createdAt,
          actor: { kind: actor.kind, id: actor.id },
          data: {
            keyId: record.id,
            role,
            name,
            ...(principalId === undefined ? {} : { operatorId: principalId }),
            ...(named.secrets.length === 0 ? {} : { secrets: named.secrets }),
          },
        })
        return { record, key }
      },
      async revoke(id, actor) {
        const at = now().toISOString()
        const revoked = await store.revokeKey(id, at, {
          type: 'key.revoked',
          at,
          actor: { kind: actor.kind, id: actor.id },
          data: { keyId: id },
        })
        // this node at once, not when its own NOTIFY comes back
        if (revoked) apiKeys.invalidate()
        return revoked
      },
    },
    customers: {
      async put(id, given, actor) {
        // invariant 7: the tier and every attribute are redacted before they are stored; an id or a field name
        // that holds a secret is refused
        refuseSecretIn(id, 'id')
        for (const name of Object.keys(given.attributes)) refuseSecretIn(name, 'attributes')
        const tier = redactFreeText(given.tier, 'tier', secretHashKey)
        const attributes = redactStrings(given.attributes, 'attributes', secretHashKey)
        const secrets = [...tier.secrets, ...attributes.secrets]
        const input = { ...given, tier: tier.text, attributes: attributes.value }
        const record = { id, ...input, updatedAt: now().toISOString() }
        await store.putCustomer(record, {
          type: 'customer.updated',
          at: record.updatedAt,
          actor: { kind: actor.kind, id: actor.id },
          data: { customerId: id, tier: input.tier, verified: input.verified, ...(secrets.length ? { secrets } : {}) },
        })
        return record
      },
    },
    quality: { store, queues: workspace.queues, policy: () => current().policy, known, now, keepFolds: true },
    live: new LiveHistory(store),
    ready: () => store.health(),
    publicUrl,
  }

  const generatedAdminKey = await bootstrapAdmin(services, config.adminKey)

  const audit = await startAuditService({
    store,
    keyFile: config.auditSigningKeyFile,
    intervalMs: config.auditHeadIntervalMs,
    now,
    log: logger,
  })

  const http = await createServer(services, {
    logger,
    bodyLimit: config.bodyLimit,
    version: VERSION,
    requestTimeoutMs: config.requestTimeoutMs,
    mcp: config.mcp ?? MCP_DEFAULTS,
  })
  server = http
  work.start()
  const folds =
    config.qualityFoldsIntervalMs > 0
      ? startFoldKeeper({ store, now, intervalMs: config.qualityFoldsIntervalMs, log: logger })
      : undefined
  const offPolicy = policySync
    ? store.changes.subscribe('policy', (version) => {
        if (version === undefined || Number(version) > (active?.policy.ref.version ?? 0))
          policySync.runOnce().catch(() => undefined) // a failure is retried by the loop
      })
    : undefined
  // The first pass runs now: a version activated elsewhere since this node read the store is adopted at once.
  policySync?.start(options.policySyncMs ?? POLICY_SYNC_MS)

  const watcher = config.watchPolicy
    ? watchFileByPath(
        policyFile,
        () => {
          reloadFile(SYSTEM, 'watch').catch(() => undefined) // logged by reloadFile
        },
        { onError: (e) => logger.warn({ err: e, file: displayFile }, 'policy watch failed; re-armed in 1 s') },
      )
    : undefined

  return {
    server: http,
    services,
    store,
    logger,
    generatedAdminKey,
    policyNotice,
    audit,
    async close() {
      watcher?.close()
      offPolicy?.()
      offKeys()
      await policySync?.stop()
      await http.close()
      await folds?.stop()
      await work.stop()
      await authority.refusals.stop().catch((e) => logger.error({ err: e }, 'refusal summary not written at stop'))
      await authority.upstreams?.close()
      await audit.stop()
      await store.close()
    },
  }
}

/**
 * `http://host:port` of the server's first listening address; undefined before it listens, and for a wildcard
 * address (`0.0.0.0`, `::`), which names no host a client could use.
 */
function listenUrl(server: FastifyInstance | undefined): string | undefined {
  const a = server?.addresses()[0]
  if (a === undefined || typeof a === 'string' || a.address === '0.0.0.0' || a.address === '::') return undefined
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address
  return `http://${host}:${a.port}`
}

/**
 * A store that cannot be opened or migrated at start, as an error naming the setting at fault (BATON_DATABASE_URL,
 * shown without its password, or BATON_DATA_DIR) and the cause, for `baton serve` to print before it exits 1.
 */
function startError(e: unknown, config: Pick<Config, 'databaseUrl' | 'dataDir'>): unknown {
  const why = explainStartError(e)
  if (why === undefined) return e
  const setting = config.databaseUrl
    ? `BATON_DATABASE_URL (${describeStoreUrl(config.databaseUrl)})`
    : `BATON_DATA_DIR (${config.dataDir})`
  const field = config.databaseUrl ? 'BATON_DATABASE_URL' : 'BATON_DATA_DIR'
  return new BatonError(e instanceof BatonError ? e.code : 'STORE_UNAVAILABLE', `${setting}: ${why}`, {
    cause: e,
    fields: [{ field, message: why }],
  })
}

/** A request as a log line shows it (fastify's fields), its URL through the same redaction as what callers send. */
function requestForLog(req: {
  method?: string
  url?: string
  host?: string
  ip?: string
  socket?: { remotePort?: number }
}) {
  return {
    method: req.method,
    url: typeof req.url === 'string' ? redactedText(req.url) : req.url,
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  }
}

async function bootstrapAdmin(services: Services, given: string | undefined): Promise<string | undefined> {
  const { store } = services
  if (given !== undefined) {
    if (!looksLikeKey(given) || !given.startsWith('bk_admin_')) {
      throw new BatonError(
        'VALIDATION_FAILED',
        'BATON_ADMIN_KEY: expected a key of the form bk_admin_<43 base64url chars>',
        {
          fields: [{ field: 'BATON_ADMIN_KEY', message: 'malformed' }],
        },
      )
    }
    if ((await store.findKeyByHash(hashKey(given))) === undefined) {
      const at = new Date().toISOString()
      const record = {
        id: newId('key'),
        name: 'bootstrap (BATON_ADMIN_KEY)',
        role: 'admin' as const,
        hash: hashKey(given),
        createdAt: at,
        revokedAt: null,
      }
      await store.createKey(record, {
        type: 'key.created',
        at,
        actor: { kind: SYSTEM.kind, id: SYSTEM.id },
        data: { keyId: record.id, role: 'admin', name: record.name },
      })
    }
    return undefined
  }
  if ((await store.countKeys('admin')) > 0) return undefined
  const { key } = await services.keys.create('admin', 'bootstrap (generated at first start)', SYSTEM)
  return key
}

import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto'
import type { ActivePolicy, Actor } from '../cases/intake.js'
import { BatonError } from '../errors.js'
import { seedPrincipals } from '../identity/registry.js'
import type { Store } from '../store/ports.js'
import type { SealedSettings } from '../store/sealed-settings.js'
import { buildCatalog } from '../tools/catalog.js'
import { httpConnector } from '../tools/connector.js'
import { McpUpstreams } from '../tools/upstream.js'
import type { Workspace } from '../workspace/workspace.js'
import type { AuthorityDeps, ConnectorCall, McpToolCall } from './deps.js'
import { RefusalLog } from './refusals.js'
import { CredentialSigner, MAX_DELEGATE_TTL_S, MAX_TTL_SECONDS } from './tokens.js'

const SETTING = 'credential_signing_key'

export interface AuthorityOptions {
  readonly store: Store
  readonly workspace: Workspace
  readonly policy: () => ActivePolicy
  readonly now: () => Date
  readonly newId: (prefix: string) => string
  /**
   * `BATON_ISSUER` (default `urn:baton`), `BATON_ACCESS_TOKEN_TTL_S` (300), `BATON_CALL_CREDENTIAL_TTL_S` (60),
   * `BATON_APPROVAL_TTL_S` (86400), `BATON_DELEGATE_TOKEN_TTL_S` (300), `BATON_CONFIRMATION_TTL_S` (3600), and the
   * variables tools.yaml's connector URLs name.
   */
  readonly env: Readonly<Record<string, string | undefined>>
  readonly connector?: ConnectorCall | undefined
  /** How upstream MCP servers are called (default: `McpUpstreams`, connected here to import their tools). */
  readonly mcp?: McpToolCall | undefined
  /** Baton's version, as it introduces itself to upstream MCP servers. */
  readonly version: string
  /**
   * Baton's public base URL (`BATON_PUBLIC_URL`, else the address it listens on), once known: the issuer its OAuth
   * metadata names, which clients of the MCP gateway then put in their assertions' `aud` (as the MCP SDK does).
   */
  readonly publicUrl?: (() => string | undefined) | undefined
  readonly actor: Actor
  /** Called when the connection to an upstream MCP server fails (it is opened again on the next call). */
  readonly onUpstreamError?: ((e: unknown, upstream: string) => void) | undefined
  /** Called with what failed in the background (a refusal summary the store did not take). */
  readonly onError?: ((e: unknown) => void) | undefined
  /** Where the signing key is kept: the store's settings, sealed by the secrets key file. */
  readonly settings: SealedSettings
  /** Key of the keyed hash that stands in for a redacted secret. */
  readonly secretHashKey: Uint8Array
}

/**
 * Builds what the authority use cases need: the credential signing key (Ed25519, kept in the store's settings,
 * sealed, so every node signs with the same key and restarts keep issued credentials valid), the tool catalog, and the
 * workspace's agents and operators registered.
 */
export async function setUpAuthority(
  o: AuthorityOptions,
): Promise<AuthorityDeps & { randomSecret: () => string; readonly upstreams: McpUpstreams | undefined }> {
  // Another node may race us: the first key stored is every node's key.
  const pkcs8 = await o.settings.secret(SETTING, () =>
    generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64url'),
  )
  const privateKey = createPrivateKey({ key: Buffer.from(pkcs8, 'base64url'), format: 'der', type: 'pkcs8' })
  const issuer = o.env.BATON_ISSUER ?? 'urn:baton'
  const signer = new CredentialSigner(privateKey, createPublicKey(privateKey), issuer)
  // Tools fronting MCP servers take their schemas from those servers: connected (and checked) before anything else.
  const mcp =
    o.mcp === undefined
      ? await McpUpstreams.connect(o.workspace.tools, o.env, {
          version: o.version,
          ...(o.onUpstreamError === undefined ? {} : { log: o.onUpstreamError }),
        })
      : undefined
  let catalog: ReturnType<typeof buildCatalog>
  try {
    catalog = buildCatalog(o.workspace.tools, o.env, mcp?.imported)
  } catch (e) {
    await mcp?.upstreams.close()
    throw e
  }
  await seedPrincipals(o, o.workspace.agents, o.workspace.operators, o.actor)
  const refusals = new RefusalLog((entries) => o.store.appendAudit(entries), {
    perSecond: intSetting(o.env, 'BATON_REFUSAL_AUDIT_PER_S', 10, 1, 1_000_000),
    burst: intSetting(o.env, 'BATON_REFUSAL_AUDIT_BURST', 100, 1, 1_000_000),
    summaryEveryMs: 10_000,
    now: o.now,
    onError: o.onError ?? (() => undefined),
  })
  const audiences = [issuer, `${issuer}/v1/oauth/token`, ...(o.env.BATON_TOKEN_AUDIENCE?.split(',') ?? [])]
  return {
    store: o.store,
    refusals,
    policy: o.policy,
    catalog,
    signer,
    connector: o.connector ?? httpConnector,
    mcp: o.mcp ?? (mcp as NonNullable<typeof mcp>).upstreams.call,
    upstreams: mcp?.upstreams,
    now: o.now,
    newId: o.newId,
    apiAudience: `${issuer}/api`,
    // A getter: the public URL is known only once the server listens (port 0 in tests).
    get tokenAudiences() {
      const base = o.publicUrl?.()
      return [...audiences, ...(base === undefined ? [] : [base, `${base}/`, `${base}/v1/oauth/token`])]
    },
    accessTtlSeconds: intSetting(o.env, 'BATON_ACCESS_TOKEN_TTL_S', 300, 1, MAX_TTL_SECONDS),
    callTtlSeconds: intSetting(o.env, 'BATON_CALL_CREDENTIAL_TTL_S', 60, 1, MAX_TTL_SECONDS),
    approvalTtlSeconds: intSetting(o.env, 'BATON_APPROVAL_TTL_S', 86_400, 1, 365 * 86_400),
    delegation: o.workspace.delegation,
    delegateTokenTtlSeconds: intSetting(o.env, 'BATON_DELEGATE_TOKEN_TTL_S', 300, 1, MAX_DELEGATE_TTL_S),
    confirmationTtlSeconds: intSetting(o.env, 'BATON_CONFIRMATION_TTL_S', 3600, 1, 7 * 86_400),
    randomSecret: () => `bas_${randomBytes(32).toString('base64url')}`,
    secretHashKey: o.secretHashKey,
  }
}

/** An integer setting from the environment, `fallback` when unset; anything else outside [min, max] is refused. */
function intSetting(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const v = env[name]
  const n = v === undefined || v === '' ? fallback : Number(v)
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new BatonError('VALIDATION_FAILED', `${name}: expected an integer in [${min}, ${max}], found '${v}'`, {
      fields: [{ field: name, message: `must be an integer in [${min}, ${max}]` }],
    })
  }
  return n
}

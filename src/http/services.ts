import type { ActivePolicy, Actor, IntakeDeps } from '../cases/intake.js'
import type { AuthorityDeps } from '../credentials/deps.js'
import type { PolicyRef } from '../policy/types.js'
import type { LiveHistory } from '../quality/live.js'
import type { QualityDeps } from '../quality/read.js'
import type { ApiKeyRecord, CustomerRecord, Role, Store, StoreHealth } from '../store/ports.js'
import type { SealedSettings } from '../store/sealed-settings.js'
import type { WorkServices } from '../work.js'
import type { Workspace } from '../workspace/workspace.js'

/** What an activation did: `unchanged` when the document was already the newest activated version. */
export type PolicyActivated = PolicyRef & { readonly outcome: 'activated' | 'unchanged' }

/** What made Baton activate a policy, as logged. */
export type PolicyTrigger = 'start' | 'watch' | 'reload' | 'put'

/** What the faces call. Built once by the composition root (`app.ts`); each face translates and authorizes. */
export interface Services {
  readonly store: Store
  readonly intake: IntakeDeps
  readonly workspace: Workspace
  /** Queues and assignment, durable timers, webhooks and the event stream. */
  readonly work: WorkServices
  readonly policy: {
    current(): ActivePolicy & { readonly loadedAt: string; readonly file: string }
    /**
     * Compiles and activates new policy text through the store. Throws POLICY_INVALID (does not compile) or
     * POLICY_VERSION_CONFLICT (not higher than the store's newest version, and not that document); the previous
     * version stays. Each activation and refusal is logged.
     */
    activate(source: string, file: string, actor: Actor): Promise<PolicyActivated>
    /** Re-reads the workspace policy file from disk, by its path, and activates it as `activate` does. */
    reload(actor: Actor): Promise<PolicyActivated>
  }
  readonly keys: {
    /**
     * The key with SHA-256 `hash` when it exists and is not revoked (what authentication asks); read through a cache
     * of at most 1 s that every revocation clears on every node listening for changes (`identity/key-cache.ts`).
     */
    active(hash: string): Promise<ApiKeyRecord | undefined>
    /** `principalId`: for an operator key, the operator principal it belongs to (checked to exist). */
    create(role: Role, name: string, actor: Actor, principalId?: string): Promise<{ record: ApiKeyRecord; key: string }>
    revoke(id: string, actor: Actor): Promise<boolean>
  }
  readonly customers: {
    put(
      id: string,
      input: { tier: string; verified: boolean; attributes: Record<string, unknown> },
      actor: Actor,
    ): Promise<CustomerRecord>
  }
  /** Decision quality, replay, preview and capacity figures over the stored history (`src/quality/`). */
  readonly quality: QualityDeps
  /** The history folded live from the audit log (the console's Overview, `/metrics`). */
  readonly live: LiveHistory
  /** Readiness: the store's health (`/readyz`). */
  readonly ready: () => Promise<StoreHealth>
  /** Baton's public base URL: `BATON_PUBLIC_URL`, else the address it listens on (undefined before it listens). */
  readonly publicUrl: () => string | undefined
  /** Agents, credentials, tool actions and approvals (`src/credentials/`, `src/tools/`, `src/approvals/`). */
  readonly authority: AuthorityDeps & { readonly randomSecret: () => string }
  /** Secrets kept in the store's settings, sealed by the secrets key file. */
  readonly settings: SealedSettings
}

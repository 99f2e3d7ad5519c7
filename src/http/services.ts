import type { ActivePolicy, Actor, IntakeDeps } from '../cases/intake.js'
import type { AuthorityDeps } from '../credentials/deps.js'
import type { PolicyRef } from '../policy/types.js'
import type { ApiKeyRecord, CustomerRecord, Role, Store } from '../store/ports.js'
import type { SealedSettings } from '../store/sealed-settings.js'
import type { WorkServices } from '../work.js'
import type { Workspace } from '../workspace/workspace.js'

/** What the faces call. Built once by the composition root (`app.ts`); each face translates and authorizes. */
export interface Services {
  readonly store: Store
  readonly intake: IntakeDeps
  readonly workspace: Workspace
  /** Queues and assignment, durable timers, webhooks and the event stream. */
  readonly work: WorkServices
  readonly policy: {
    current(): ActivePolicy & { readonly loadedAt: string; readonly file: string }
    /** Compiles and activates new policy text; on error throws POLICY_INVALID and the previous version stays. */
    activate(source: string, file: string, actor: Actor): Promise<PolicyRef>
    /** Re-reads the workspace policy file. */
    reload(actor: Actor): Promise<PolicyRef>
  }
  readonly keys: {
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
  readonly ready: () => Promise<boolean>
  /** Agents, credentials, tool actions and approvals (`src/credentials/`, `src/tools/`, `src/approvals/`). */
  readonly authority: AuthorityDeps & { readonly randomSecret: () => string }
  /** Secrets kept in the store's settings, sealed by the secrets key file. */
  readonly settings: SealedSettings
}

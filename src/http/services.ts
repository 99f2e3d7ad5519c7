import type { ActivePolicy, Actor, IntakeDeps } from '../cases/intake.js'
import type { PolicyRef } from '../policy/types.js'
import type { ApiKeyRecord, CustomerRecord, Role, Store } from '../store/ports.js'
import type { Workspace } from '../workspace/workspace.js'

/** What the faces call. Built once by the composition root (`app.ts`); each face translates and authorizes. */
export interface Services {
  readonly store: Store
  readonly intake: IntakeDeps
  readonly workspace: Workspace
  readonly policy: {
    current(): ActivePolicy & { readonly loadedAt: string; readonly file: string }
    /** Compiles and activates new policy text; on error throws POLICY_INVALID and the previous version stays. */
    activate(source: string, file: string, actor: Actor): Promise<PolicyRef>
    /** Re-reads the workspace policy file. */
    reload(actor: Actor): Promise<PolicyRef>
  }
  readonly keys: {
    create(role: Role, name: string, actor: Actor): Promise<{ record: ApiKeyRecord; key: string }>
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
}

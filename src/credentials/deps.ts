import type { ActivePolicy, Actor } from '../cases/intake.js'
import type { Store } from '../store/ports.js'
import type { ToolCatalog } from '../tools/catalog.js'
import type { RefusalLog } from './refusals.js'
import type { CredentialSigner } from './tokens.js'

/** Calls a tool's connector; the HTTP adapter is `src/tools/connector.ts`, tests may pass their own. */
export type ConnectorCall = (req: {
  readonly url: string
  readonly method: 'POST' | 'PUT'
  readonly credential: string
  readonly idempotencyKey: string
  readonly body: unknown
}) => Promise<{ readonly status: number; readonly body: Uint8Array }>

/** What the authority use cases (tokens, actions, approvals, registry) need; built by `app.ts`. */
export interface AuthorityDeps {
  readonly store: Store
  /** Audits refused requests within a budget, counting the rest (`refusals.ts`). */
  readonly refusals: RefusalLog
  readonly policy: () => ActivePolicy
  readonly catalog: ToolCatalog
  readonly signer: CredentialSigner
  readonly connector: ConnectorCall
  readonly now: () => Date
  readonly newId: (prefix: string) => string
  /** Audience of agent access tokens (Baton's API). */
  readonly apiAudience: string
  /** Audiences a client assertion may name (the token endpoint's URLs, and the issuer). */
  readonly tokenAudiences: readonly string[]
  readonly accessTtlSeconds: number
  readonly callTtlSeconds: number
  readonly approvalTtlSeconds: number
  /** Key of the keyed hash that stands in for a secret redacted out of a reason or a description (invariant 7). */
  readonly secretHashKey: Uint8Array
}

/** The audit `actor` of an actor. */
export function who(actor: Actor): { kind: string; id: string } {
  return { kind: actor.kind, id: actor.id }
}

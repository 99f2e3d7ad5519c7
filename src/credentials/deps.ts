import type { AuditActor } from '../audit/entry.js'
import { type ActivePolicy, type Actor, actorRef } from '../cases/intake.js'
import type { DelegationSpec } from '../delegation/document.js'
import type { Store } from '../store/ports.js'
import type { McpUpstream, ToolCatalog } from '../tools/catalog.js'
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

/** What an upstream MCP tool answered (MCP `CallToolResult`, the parts Baton passes on). */
export interface McpToolResult {
  readonly content: readonly unknown[]
  readonly structuredContent?: Readonly<Record<string, unknown>> | undefined
  readonly isError: boolean
}

/**
 * Calls a tool of an upstream MCP server (`connector.kind: mcp`; the adapter is `src/tools/upstream.ts`). `meta`
 * goes as the request's `_meta` (the per-call credential, the action id). Throws when the call itself failed (the
 * connection closed, a time-out, an MCP error); a result with `isError` is the tool's own failure.
 */
export type McpToolCall = (req: {
  readonly upstream: McpUpstream
  readonly tool: string
  readonly arguments: Readonly<Record<string, unknown>>
  readonly meta: Readonly<Record<string, unknown>>
}) => Promise<McpToolResult>

/** What the authority use cases (tokens, actions, approvals, registry) need; built by `app.ts`. */
export interface AuthorityDeps {
  readonly store: Store
  /** Audits refused requests within a budget, counting the rest (`refusals.ts`). */
  readonly refusals: RefusalLog
  readonly policy: () => ActivePolicy
  readonly catalog: ToolCatalog
  readonly signer: CredentialSigner
  readonly connector: ConnectorCall
  /** Calls tools of upstream MCP servers. */
  readonly mcp: McpToolCall
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
  /** What customers may delegate (the workspace's `delegation.yaml`). */
  readonly delegation: DelegationSpec
  /** Lifetime of a delegate's access token (≤ 300 s, and never past its chain's first grant expiry). */
  readonly delegateTokenTtlSeconds: number
  /** How long a customer has to confirm an action a delegate asked for. */
  readonly confirmationTtlSeconds: number
}

/** The audit `actor` of an actor (for a delegate with its customer, chain, grant and scope). */
export function who(actor: Actor): AuditActor {
  return actorRef(actor)
}

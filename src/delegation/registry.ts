import type { AuditEntryBody } from '../audit/entry.js'
import type { Actor } from '../cases/intake.js'
import { type AuthorityDeps, who } from '../credentials/deps.js'
import { BatonError } from '../errors.js'
import { redactFreeText, refuseSecretIn, type SecretRedaction } from '../signals/sensitive.js'
import { chainExpiry, effectiveScopes, type GrantInput, type GrantRecord, grantInputProblems } from './grants.js'
import {
  type DelegateRecord,
  type DelegateState,
  delegateStatesLeadingTo,
  delegateTransitionProblem,
  publicJwkProblem,
} from './principals.js'
import type { DelegateAuth } from './token-exchange.js'

// The key of the keyed hash that stands in for a redacted secret; the offline CLI has none and records the kind only.
type Deps = Pick<AuthorityDeps, 'store' | 'now' | 'newId' | 'delegation'> & {
  readonly secretHashKey?: Uint8Array | undefined
}

/** Free text a person typed (a grant note, a reason), redacted before it is stored or audited (invariant 7). */
export function redacted(
  deps: { readonly secretHashKey?: Uint8Array | undefined },
  text: string,
  field: string,
  secrets: SecretRedaction[],
): string {
  const r = redactFreeText(text, field, deps.secretHashKey)
  secrets.push(...r.secrets)
  return r.text
}

export interface DelegateInput {
  readonly id: string
  readonly name: string
  readonly vendor: string
  readonly contact: string
  readonly jwk: Readonly<Record<string, unknown>>
}

/** Registers a customer's AI agent as a principal of kind `delegate`, active, with its public key (audited). */
export async function registerDelegate(deps: Deps, actor: Actor, input: DelegateInput): Promise<DelegateRecord> {
  const problem = publicJwkProblem(input.jwk)
  if (problem !== null) {
    throw new BatonError('VALIDATION_FAILED', `jwk: ${problem}`, { fields: [{ field: 'jwk', message: problem }] })
  }
  refuseSecretIn(input.id, 'id')
  const iso = deps.now().toISOString()
  const { kty, crv, x } = input.jwk
  const secrets: SecretRedaction[] = []
  const record: DelegateRecord = {
    id: input.id,
    name: redacted(deps, input.name, 'name', secrets),
    vendor: redacted(deps, input.vendor, 'vendor', secrets),
    contact: redacted(deps, input.contact, 'contact', secrets),
    publicJwk: { kty, crv, x },
    state: 'active',
    createdAt: iso,
    updatedAt: iso,
  }
  const ok = await deps.store.registerDelegate(record, {
    type: 'delegate.registered',
    at: iso,
    actor: who(actor),
    data: {
      delegateId: record.id,
      name: record.name,
      vendor: record.vendor,
      contact: record.contact,
      jwk: record.publicJwk,
      ...(secrets.length === 0 ? {} : { secrets }),
    },
  })
  if (!ok) throw new BatonError('CONFLICT', `delegate '${input.id}' already exists`)
  return record
}

/**
 * Moves a delegate through its lifecycle, audited with the reason (`delegate.activated`, `delegate.suspended`,
 * `delegate.retired`). Suspension takes effect at once on every node without touching its grants: every request
 * re-checks each delegate of its chain, so every token of the delegate and every token below it in a chain dies.
 * Retiring is final and revokes its grants and their sub-delegations (one `grant.revoked` entry each).
 */
export async function transitionDelegate(
  deps: Deps,
  actor: Actor,
  id: string,
  to: DelegateState,
  reason: string,
): Promise<{ delegate: DelegateRecord; revokedGrants: readonly string[] }> {
  const current = await deps.store.getDelegate(id)
  if (current === undefined) throw new BatonError('DELEGATE_NOT_FOUND', `no delegate with id '${id}'`)
  const problem = delegateTransitionProblem(current.state, to)
  if (problem !== null) throw new BatonError('DELEGATE_STATE_INVALID', `delegate '${id}': ${problem}`)
  const iso = deps.now().toISOString()
  const secrets: SecretRedaction[] = []
  const why = redacted(deps, reason, 'reason', secrets)
  const type = to === 'active' ? 'delegate.activated' : to === 'suspended' ? 'delegate.suspended' : 'delegate.retired'
  return deps.store.transitionDelegate(id, delegateStatesLeadingTo(to), to, iso, (revoked) => [
    {
      type,
      at: iso,
      actor: who(actor),
      data: { delegateId: id, from: current.state, to, reason: why, revokedGrants: revoked },
    },
    ...revoked.map((grantId) => ({
      type: 'grant.revoked',
      at: iso,
      actor: who(actor),
      data: { grantId, delegateId: id, cause: 'delegate_retired', reason: why },
    })),
  ])
}

function invalid(problems: readonly { field: string; message: string }[]): BatonError {
  return new BatonError('VALIDATION_FAILED', problems.map((p) => `${p.field}: ${p.message}`).join('; '), {
    fields: problems,
  })
}

function grantCreated(
  g: GrantRecord,
  actor: Actor,
  chain: readonly string[],
  secrets: readonly SecretRedaction[],
): AuditEntryBody {
  return {
    type: 'grant.created',
    at: g.createdAt,
    actor: who(actor),
    data: {
      grantId: g.id,
      customerId: g.customerId,
      delegateId: g.delegateId,
      parentId: g.parentId,
      depth: g.depth,
      chain,
      scopes: g.scopes,
      limits: g.limits,
      maySubdelegate: g.maySubdelegate,
      expiresAt: g.expiresAt,
      note: g.note,
      ...(secrets.length === 0 ? {} : { secrets }),
    },
  }
}

/**
 * The helpdesk, having authenticated the human customer, grants one of their delegates scopes for them (audited
 * `grant.created`). Scopes must be declared in delegation.yaml, the expiry within their `max_grant`, limits valid
 * CEL over the tool call for scopes that unlock tools; the delegate must be active.
 */
export async function grantToDelegate(
  deps: Deps,
  actor: Actor,
  customerId: string,
  input: GrantInput,
): Promise<GrantRecord> {
  const now = deps.now()
  const problems = grantInputProblems(deps.delegation, input, now)
  if (problems.length > 0) throw invalid(problems)
  refuseSecretIn(customerId, 'customer')
  const secrets: SecretRedaction[] = []
  const g: GrantRecord = {
    id: deps.newId('gr'),
    customerId,
    delegateId: input.delegate,
    parentId: null,
    depth: 1,
    scopes: [...input.scopes],
    limits: { ...(input.limits ?? {}) },
    maySubdelegate: input.maySubdelegate ?? false,
    state: 'active',
    createdAt: now.toISOString(),
    expiresAt: new Date(Date.parse(input.expiresAt)).toISOString(),
    grantedBy: { kind: actor.kind, id: actor.id },
    note: redacted(deps, input.note ?? '', 'note', secrets),
    revokedAt: null,
    revokedBy: null,
    revokeReason: null,
  }
  await deps.store.createGrant(g, [grantCreated(g, actor, [g.delegateId], secrets)])
  return g
}

/**
 * A delegate passes part of its grant on to another delegate (a sub-delegation, audited `grant.created` with the
 * whole chain). Only under the grant its own token names, where that grant allows it, within `max_chain`, with
 * scopes within the ones its token and chain hold, expiring no later than the chain; limits only ever add (every
 * hop's are checked on every call), so nothing can be widened.
 */
export async function subdelegate(
  deps: Deps,
  auth: DelegateAuth,
  parentId: string,
  input: GrantInput,
): Promise<GrantRecord> {
  const now = deps.now()
  if (auth.grant.id !== parentId) {
    throw new BatonError('DELEGATION_MISMATCH', `the token acts under grant ${auth.grant.id}, not ${parentId}`)
  }
  if (!auth.grant.maySubdelegate) {
    throw new BatonError('SUBDELEGATION_FORBIDDEN', `grant ${parentId} does not allow sub-delegation`)
  }
  if (auth.chain.length + 1 > deps.delegation.maxChain) {
    throw new BatonError(
      'CHAIN_TOO_DEEP',
      `a chain of ${auth.chain.length + 1} delegates is longer than max_chain (${deps.delegation.maxChain})`,
    )
  }
  if (auth.chain.some((l) => l.grant.delegateId === input.delegate)) {
    throw new BatonError('DELEGATION_MISMATCH', `delegate '${input.delegate}' is already in the chain`)
  }
  const held = effectiveScopes(auth.chain, deps.delegation).filter((s) => auth.scopes.includes(s))
  const wider = input.scopes.filter((s) => !held.includes(s))
  if (wider.length > 0 && input.scopes.every((s) => deps.delegation.scopes.has(s))) {
    throw new BatonError(
      'SCOPE_NOT_GRANTED',
      `scopes: ${wider.join(', ')} ${wider.length === 1 ? 'is' : 'are'} not held by this token (it holds ${held.join(', ') || 'nothing'}); a sub-delegation can only narrow`,
    )
  }
  const problems = grantInputProblems(deps.delegation, input, now, chainExpiry(auth.chain))
  if (problems.length > 0) throw invalid(problems)
  const secrets: SecretRedaction[] = []
  const g: GrantRecord = {
    id: deps.newId('gr'),
    customerId: auth.customerId,
    delegateId: input.delegate,
    parentId,
    depth: auth.chain.length + 1,
    scopes: [...input.scopes],
    limits: { ...(input.limits ?? {}) },
    maySubdelegate: input.maySubdelegate ?? false,
    state: 'active',
    createdAt: now.toISOString(),
    expiresAt: new Date(Date.parse(input.expiresAt)).toISOString(),
    grantedBy: { kind: 'delegate', id: auth.delegateId },
    note: redacted(deps, input.note ?? '', 'note', secrets),
    revokedAt: null,
    revokedBy: null,
    revokeReason: null,
  }
  const chain = [...auth.chain.map((l) => l.grant.delegateId), g.delegateId]
  await deps.store.createGrant(g, [grantCreated(g, auth.actor, chain, secrets)])
  return g
}

/**
 * Revokes a customer's grant and every sub-delegation below it (one `grant.revoked` entry each), in force at once
 * on every node: every delegate request reads its chain from the store. `GRANT_NOT_FOUND` unless the grant is the
 * customer's. Revoking a revoked grant changes nothing.
 */
export async function revokeGrant(
  deps: Deps,
  actor: Actor,
  customerId: string,
  grantId: string,
  reason: string,
): Promise<{ readonly grant: GrantRecord; readonly revoked: readonly string[] }> {
  const g = await deps.store.getGrant(grantId)
  if (g === undefined || g.customerId !== customerId) {
    throw new BatonError('GRANT_NOT_FOUND', `customer '${customerId}' has no grant '${grantId}'`)
  }
  const iso = deps.now().toISOString()
  const secrets: SecretRedaction[] = []
  const why = redacted(deps, reason, 'reason', secrets)
  const revoked = await deps.store.revokeGrant(grantId, actor.id, iso, why, (ids) =>
    ids.map((id, i) => ({
      type: 'grant.revoked',
      at: iso,
      actor: who(actor),
      data: {
        grantId: id,
        customerId,
        cause: i === 0 ? 'revoked' : 'parent_revoked',
        ...(i === 0 ? {} : { parentOf: grantId }),
        reason: why,
        ...(secrets.length === 0 ? {} : { secrets }),
      },
    })),
  )
  const after = (await deps.store.getGrant(grantId)) ?? g
  return { grant: after, revoked }
}

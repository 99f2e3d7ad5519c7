import type { ErrorCode } from '../errors.js'
import { type CompiledLimit, compileLimit, type DelegationSpec } from './document.js'
import type { DelegateState } from './principals.js'

export const GRANT_STATES = ['active', 'revoked'] as const
export type GrantState = (typeof GRANT_STATES)[number]

/**
 * What a customer (or, for a sub-delegation, a delegate holding a grant that allows it) lets one delegate do for
 * that customer: scopes from `delegation.yaml`, optional extra limits per scope (CEL over the tool call, checked
 * together with every earlier hop's), until `expiresAt`. A grant is revoked, never edited; expiry is read from the
 * clock (an expired grant stays `active` in the store and is refused by `chainProblem`).
 */
export interface GrantRecord {
  readonly id: string
  readonly customerId: string
  readonly delegateId: string
  /** The grant this one narrows (a sub-delegation); null for the customer's own grant. */
  readonly parentId: string | null
  /** 1 for the customer's own grant, 2 for a sub-delegation of it, … */
  readonly depth: number
  readonly scopes: readonly string[]
  /** Scope → CEL condition over `params`/`tool`, on top of the scope's own limit and every earlier hop's. */
  readonly limits: Readonly<Record<string, string>>
  readonly maySubdelegate: boolean
  readonly state: GrantState
  readonly createdAt: string
  readonly expiresAt: string
  /** Who made the grant: the helpdesk's service key for the customer, or the delegate that sub-delegated. */
  readonly grantedBy: { readonly kind: string; readonly id: string }
  /** Free text (secrets redacted). */
  readonly note: string
  readonly revokedAt: string | null
  readonly revokedBy: string | null
  readonly revokeReason: string | null
}

/** One hop of a chain as the store reads it: the grant and the state of its delegate now. */
export interface GrantLink {
  readonly grant: GrantRecord
  readonly delegateState: DelegateState
}

export interface ChainProblem {
  readonly code: ErrorCode
  readonly message: string
}

/**
 * Whether a chain of grants (the customer's own grant first, the one a token names last) still confers authority at
 * `now`: it starts at a customer grant, every grant is active and unexpired, for one customer, to an active
 * delegate, each hop narrows the one before it (scopes within it, allowed to sub-delegate), no delegate appears
 * twice, and it is no longer than `maxChain`. Null when it holds. Pure; every delegate request runs it.
 */
export function chainProblem(chain: readonly GrantLink[], now: Date, maxChain: number): ChainProblem | null {
  const root = chain[0]
  if (root === undefined) return { code: 'GRANT_NOT_FOUND', message: 'the grant does not exist' }
  if (root.grant.parentId !== null) {
    return { code: 'GRANT_NOT_FOUND', message: `grant ${root.grant.id} names a parent grant that does not exist` }
  }
  if (chain.length > maxChain) {
    return {
      code: 'CHAIN_TOO_DEEP',
      message: `the delegation chain has ${chain.length} delegates; at most ${maxChain} are allowed (max_chain)`,
    }
  }
  const seen = new Set<string>()
  const t = now.getTime()
  for (const [i, { grant: g, delegateState }] of chain.entries()) {
    const hop = `grant ${g.id} (hop ${i + 1}, delegate '${g.delegateId}')`
    if (g.customerId !== root.grant.customerId) {
      return { code: 'DELEGATION_MISMATCH', message: `${hop} is for another customer than the chain` }
    }
    if (g.state !== 'active') return { code: 'GRANT_REVOKED', message: `${hop} was revoked` }
    if (t >= Date.parse(g.expiresAt)) return { code: 'GRANT_EXPIRED', message: `${hop} expired at ${g.expiresAt}` }
    if (delegateState !== 'active') {
      return { code: 'DELEGATE_INACTIVE', message: `delegate '${g.delegateId}' of ${hop} is ${delegateState}` }
    }
    if (seen.has(g.delegateId)) {
      return { code: 'DELEGATION_MISMATCH', message: `delegate '${g.delegateId}' appears twice in the chain` }
    }
    seen.add(g.delegateId)
    if (g.depth !== i + 1) return { code: 'DELEGATION_MISMATCH', message: `${hop} has depth ${g.depth}` }
    const parent = chain[i - 1]?.grant
    if (parent !== undefined) {
      if (g.parentId !== parent.id) return { code: 'DELEGATION_MISMATCH', message: `${hop} is not under ${parent.id}` }
      if (!parent.maySubdelegate) {
        return { code: 'SUBDELEGATION_FORBIDDEN', message: `grant ${parent.id} does not allow sub-delegation` }
      }
      const wider = g.scopes.filter((s) => !parent.scopes.includes(s))
      if (wider.length > 0) {
        return { code: 'SCOPE_NOT_GRANTED', message: `${hop} holds ${wider.join(', ')}, which ${parent.id} does not` }
      }
    }
  }
  return null
}

/** The scopes the last hop of a (valid) chain confers: within every hop's and still declared in delegation.yaml. */
export function effectiveScopes(chain: readonly GrantLink[], spec: DelegationSpec): string[] {
  const tail = chain.at(-1)
  if (tail === undefined) return []
  return tail.grant.scopes.filter((s) => spec.scopes.has(s) && chain.every((l) => l.grant.scopes.includes(s)))
}

/** When the first grant of the chain expires: no token of the chain may outlive it. */
export function chainExpiry(chain: readonly GrantLink[]): number {
  return Math.min(...chain.map((l) => Date.parse(l.grant.expiresAt)))
}

const compiled = new Map<string, CompiledLimit>()

/**
 * Every limit a call under `scope` must satisfy along a chain: the scope's own (delegation.yaml) and each hop's
 * `limits[scope]`. Limits only ever add: a sub-delegation that writes a looser limit still gets the tighter one above it.
 */
export function limitsFor(spec: DelegationSpec, chain: readonly GrantLink[], scope: string): CompiledLimit[] {
  const out: CompiledLimit[] = []
  const own = spec.scopes.get(scope)?.limit
  if (own !== null && own !== undefined) out.push(own)
  for (const { grant } of chain) {
    const text = grant.limits[scope]
    if (text === undefined) continue
    const where = `grant ${grant.id} limits.${scope}`
    const key = `${where}\u0000${text}`
    let limit = compiled.get(key)
    if (limit === undefined) {
      const c = compileLimit(text, where)
      // a stored limit that no longer compiles (it did when granted) fails closed
      limit = 'limit' in c ? c.limit : { text, where, program: () => false }
      if (compiled.size > 10_000) compiled.clear()
      compiled.set(key, limit)
    }
    out.push(limit)
  }
  return out
}

/** The delegation facts a policy reads as `actor.grant.*`. */
export interface GrantFacts {
  readonly id: string
  readonly scopes: readonly string[]
  readonly depth: number
  readonly expires_in_s: number
  readonly may_subdelegate: boolean
  /** The customer for a customer grant, the granting delegate for a sub-delegation. */
  readonly granted_by: string
}

export function grantFacts(g: GrantRecord, scopes: readonly string[], now: Date): GrantFacts {
  return {
    id: g.id,
    scopes,
    depth: g.depth,
    expires_in_s: Math.max(0, Math.floor((Date.parse(g.expiresAt) - now.getTime()) / 1000)),
    may_subdelegate: g.maySubdelegate,
    granted_by: g.parentId === null ? g.customerId : g.grantedBy.id,
  }
}

/** What the helpdesk (for a customer) or a delegate (for a sub-delegation) asks to grant. */
export interface GrantInput {
  readonly delegate: string
  readonly scopes: readonly string[]
  /** RFC 3339. */
  readonly expiresAt: string
  readonly limits?: Readonly<Record<string, string>> | undefined
  readonly maySubdelegate?: boolean | undefined
  readonly note?: string | undefined
}

/**
 * The problems with a grant request, each naming its field (empty when none): scopes declared in delegation.yaml,
 * an expiry in the future and within the shortest `max_grant` of the scopes (and, under `parent`, not past the
 * parent chain's own expiry), limits only for granted scopes that unlock tools, each a CEL condition over the call.
 */
export function grantInputProblems(
  spec: DelegationSpec,
  input: GrantInput,
  now: Date,
  parentExpiry?: number,
): { field: string; message: string }[] {
  const out: { field: string; message: string }[] = []
  const declared = [...spec.scopes.keys()]
  for (const [i, s] of input.scopes.entries()) {
    if (!spec.scopes.has(s)) {
      out.push({
        field: `scopes[${i}]`,
        message:
          declared.length === 0
            ? `unknown scope '${s}': the workspace declares no scopes (delegation.yaml)`
            : `unknown scope '${s}', expected one of: ${declared.join(', ')}`,
      })
    }
  }
  if (new Set(input.scopes).size !== input.scopes.length) out.push({ field: 'scopes', message: 'lists a scope twice' })
  const exp = Date.parse(input.expiresAt)
  if (!Number.isFinite(exp)) out.push({ field: 'expires_at', message: 'expected an RFC 3339 date-time' })
  else if (exp <= now.getTime()) out.push({ field: 'expires_at', message: 'must be in the future' })
  else {
    const known = input.scopes.map((s) => spec.scopes.get(s)).filter((s) => s !== undefined)
    const longest = Math.min(...known.map((s) => s.maxGrantSeconds))
    if (known.length > 0 && exp > now.getTime() + longest * 1000) {
      const by = known.find((s) => s.maxGrantSeconds === longest)
      out.push({
        field: 'expires_at',
        message: `too far: scope '${by?.name}' allows grants of at most ${longest} s (until ${new Date(now.getTime() + longest * 1000).toISOString()})`,
      })
    }
    if (parentExpiry !== undefined && exp > parentExpiry) {
      out.push({
        field: 'expires_at',
        message: `a sub-delegation cannot outlive the grant above it (${new Date(parentExpiry).toISOString()})`,
      })
    }
  }
  for (const [scope, text] of Object.entries(input.limits ?? {})) {
    const field = `limits.${scope}`
    if (!input.scopes.includes(scope)) {
      out.push({ field, message: `is a limit for scope '${scope}', which this grant does not hold` })
      continue
    }
    if ((spec.scopes.get(scope)?.tools.length ?? 0) === 0) {
      out.push({ field, message: `scope '${scope}' unlocks no tool; a limit reads a tool call` })
      continue
    }
    if (typeof text !== 'string' || text.trim() === '' || text.length > 2000) {
      out.push({ field, message: 'expected a CEL condition of 1 to 2000 characters' })
      continue
    }
    const c = compileLimit(text, field)
    if ('problem' in c) out.push({ field, message: `at ${c.index}: ${c.problem}` })
  }
  return out
}

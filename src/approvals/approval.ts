import { createHash } from 'node:crypto'
import { canonicalJson } from '../audit/entry.js'

export const APPROVAL_STATES = ['pending', 'approved', 'denied', 'expired', 'superseded'] as const
export type ApprovalState = (typeof APPROVAL_STATES)[number]

/** A proposed action waiting for a human: bound to the exact tool, parameters, case and requester by `digest`. */
export interface ApprovalRecord {
  readonly id: string
  readonly caseId: string
  /** The action row this approval gates (its execution state and result live there). */
  readonly actionId: string
  readonly tool: string
  readonly params: Readonly<Record<string, unknown>>
  /** sha256 hex of RFC 8785 canonical JSON of {tool, params, caseId, requester}. */
  readonly digest: string
  /** The agent that asked. */
  readonly requester: string
  /** The role the deciding human must hold (the rule's `approver_role`). */
  readonly approverRole: string
  readonly queue: string
  /** The tool rule that asked for approval. */
  readonly rule: string
  readonly state: ApprovalState
  /** The case's authority epoch when requested; a different epoch at decision time means re-evaluation. */
  readonly caseEpoch: number
  readonly createdAt: string
  readonly expiresAt: string
  readonly decidedBy: string | null
  readonly decidedAt: string | null
  readonly reason: string | null
}

/**
 * sha256 hex of the RFC 8785 canonical JSON of `value` (the audit log's own `canonicalJson`, equal byte for byte to
 * the `canonicalize` package, see entry.test.ts). Throws TypeError for what canonical JSON cannot hold.
 */
export function canonicalDigest(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value), 'utf8').digest('hex')
}

/** The digest an approval is bound to (invariant 5: exactly these parameters, for this case, asked by this agent). */
export function approvalDigest(a: {
  readonly tool: string
  readonly params: Readonly<Record<string, unknown>>
  readonly caseId: string
  readonly requester: string
}): string {
  return canonicalDigest({ tool: a.tool, params: a.params, caseId: a.caseId, requester: a.requester })
}

/** Who is deciding: an operator principal with roles, or something that is not one. */
export interface Decider {
  readonly kind: string
  readonly id: string
  readonly roles: readonly string[]
}

export type EligibilityProblem =
  | { readonly code: 'APPROVAL_NOT_PENDING'; readonly message: string }
  | { readonly code: 'APPROVAL_EXPIRED'; readonly message: string }
  | { readonly code: 'APPROVER_NOT_ELIGIBLE'; readonly message: string }

/**
 * Whether `who` may decide `a` at `now`: the approval is pending and unexpired, the decider is a human operator
 * principal holding the rule's role, and is not the requester (four eyes). Null when eligible.
 */
export function eligibility(a: ApprovalRecord, who: Decider, now: Date): EligibilityProblem | null {
  if (a.state !== 'pending') {
    return { code: 'APPROVAL_NOT_PENDING', message: `approval ${a.id} is already ${a.state}; nothing was done` }
  }
  if (now.getTime() >= Date.parse(a.expiresAt)) {
    return { code: 'APPROVAL_EXPIRED', message: `approval ${a.id} expired at ${a.expiresAt}` }
  }
  if (who.kind !== 'operator') {
    return {
      code: 'APPROVER_NOT_ELIGIBLE',
      message: `approvals are decided by a human operator, not by a ${who.kind} credential`,
    }
  }
  if (who.id === a.requester) {
    return { code: 'APPROVER_NOT_ELIGIBLE', message: 'the requester cannot decide its own approval (four eyes)' }
  }
  if (a.approverRole !== '' && !who.roles.includes(a.approverRole)) {
    return {
      code: 'APPROVER_NOT_ELIGIBLE',
      message: `this approval needs an operator with role '${a.approverRole}'; '${who.id}' has ${who.roles.length > 0 ? who.roles.map((r) => `'${r}'`).join(', ') : 'none'}`,
    }
  }
  return null
}

import { canonicalDigest } from '../approvals/approval.js'

export const CONFIRMATION_STATES = ['pending', 'confirmed', 'declined', 'expired', 'superseded'] as const
export type ConfirmationState = (typeof CONFIRMATION_STATES)[number]

/**
 * An action waiting for the customer's own confirmation (tool rule outcome `confirm`): bound to the exact tool,
 * parameters, case, customer and requester by `digest`, good once, until `expiresAt`. The helpdesk shows it to the
 * customer and answers for them (`POST /v1/confirmations/{id}` with its service key), never the delegate that asked.
 */
export interface ConfirmationRecord {
  readonly id: string
  readonly caseId: string
  readonly actionId: string
  /** The customer whose confirmation is needed: the case's customer. */
  readonly customerId: string
  readonly tool: string
  readonly params: Readonly<Record<string, unknown>>
  /** sha256 hex of RFC 8785 canonical JSON of {tool, params, caseId, customerId, requester}. */
  readonly digest: string
  readonly requesterKind: 'agent' | 'delegate'
  /** The delegate (or agent) that asked. */
  readonly requester: string
  /** The grant a delegate asked under; re-checked with its whole chain when the customer answers. */
  readonly grantId: string | null
  /** The tool rule that asked for confirmation. */
  readonly rule: string
  readonly state: ConfirmationState
  readonly caseEpoch: number
  readonly createdAt: string
  readonly expiresAt: string
  /** The service key that answered for the customer. */
  readonly decidedBy: string | null
  readonly decidedAt: string | null
  readonly reason: string | null
}

/** The digest a confirmation is bound to: exactly these parameters, on this case, for this customer, asked by this requester. */
export function confirmationDigest(c: {
  readonly tool: string
  readonly params: Readonly<Record<string, unknown>>
  readonly caseId: string
  readonly customerId: string
  readonly requester: string
}): string {
  return canonicalDigest({
    tool: c.tool,
    params: c.params,
    caseId: c.caseId,
    customerId: c.customerId,
    requester: c.requester,
  })
}

export type ConfirmationProblem =
  | { readonly code: 'CONFIRMATION_NOT_PENDING'; readonly message: string }
  | { readonly code: 'CONFIRMATION_EXPIRED'; readonly message: string }
  | { readonly code: 'CONFIRMER_NOT_ELIGIBLE'; readonly message: string }

/**
 * Whether `who` may answer confirmation `c` at `now` for `customerId`: only the helpdesk's service key, for the
 * confirmation's own customer, while it is pending and unexpired (expiry fails closed). Null when eligible.
 */
export function confirmationProblem(
  c: ConfirmationRecord,
  who: { readonly kind: string },
  customerId: string,
  now: Date,
): ConfirmationProblem | null {
  if (who.kind !== 'service') {
    return {
      code: 'CONFIRMER_NOT_ELIGIBLE',
      message: `the customer confirms through the helpdesk's service key, not a ${who.kind} credential`,
    }
  }
  if (customerId !== c.customerId) {
    return { code: 'CONFIRMER_NOT_ELIGIBLE', message: `confirmation ${c.id} belongs to another customer` }
  }
  if (c.state !== 'pending') {
    return { code: 'CONFIRMATION_NOT_PENDING', message: `confirmation ${c.id} is already ${c.state}; nothing was done` }
  }
  if (now.getTime() >= Date.parse(c.expiresAt)) {
    return { code: 'CONFIRMATION_EXPIRED', message: `confirmation ${c.id} expired at ${c.expiresAt}` }
  }
  return null
}

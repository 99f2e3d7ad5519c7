/**
 * The one error type Baton throws for expected failures, with a closed list of stable codes.
 * Faces map each code to their own vocabulary (HTTP status, CLI exit code); messages say what was
 * expected and what was found. `TypeError` is kept for programmer misuse.
 */
export const ERROR_CODES = [
  'VALIDATION_FAILED',
  'BODY_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'HEADERS_TOO_LARGE',
  'URI_TOO_LONG',
  'REQUEST_TIMEOUT',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'CSRF_FAILED',
  'NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'CASE_NOT_FOUND',
  'CASE_CLOSED',
  'CUSTOMER_NOT_FOUND',
  'QUEUE_NOT_FOUND',
  'CASE_NOT_QUEUED',
  'CASE_ALREADY_ASSIGNED',
  'OPERATOR_AT_CAPACITY',
  'HANDBACK_REFUSED',
  'WEBHOOK_NOT_FOUND',
  'KEY_NOT_FOUND',
  'CONFLICT',
  'POLICY_INVALID',
  'POLICY_NOT_FOUND',
  'POLICY_VERSION_CONFLICT',
  'WORKSPACE_INVALID',
  'SIGNAL_INVALID',
  'STORE_UNAVAILABLE',
  'STORE_FULL',
  'SERVER_TIMEOUT',
  'STORE_NOT_FOUND',
  'AUDIT_ENTRY_NOT_FOUND',
  'AUDIT_INVALID',
  'AUDIT_HEAD_NOT_FOUND',
  'AUDIT_PROOF_INVALID',
  'AGENT_NOT_FOUND',
  'AGENT_INACTIVE',
  'AGENT_STATE_INVALID',
  'OPERATOR_NOT_FOUND',
  'CREDENTIAL_INVALID',
  'CREDENTIAL_EXPIRED',
  'CREDENTIAL_REVOKED',
  'CREDENTIAL_SCOPE',
  'NOT_CASE_HANDLER',
  'TOOL_NOT_FOUND',
  'TOOL_NOT_GRANTED',
  'PARAMS_INVALID',
  'PARAMS_MISMATCH',
  'CONNECTOR_FAILED',
  'APPROVAL_NOT_FOUND',
  'APPROVAL_NOT_PENDING',
  'APPROVAL_EXPIRED',
  'APPROVAL_ALREADY_EXECUTED',
  'APPROVER_NOT_ELIGIBLE',
  'DELEGATION_INVALID',
  'DELEGATE_NOT_FOUND',
  'DELEGATE_INACTIVE',
  'DELEGATE_STATE_INVALID',
  'DELEGATION_MISMATCH',
  'GRANT_NOT_FOUND',
  'GRANT_REVOKED',
  'GRANT_EXPIRED',
  'SCOPE_NOT_GRANTED',
  'SUBDELEGATION_FORBIDDEN',
  'CHAIN_TOO_DEEP',
  'LIMIT_EXCEEDED',
  'CONFIRMATION_NOT_FOUND',
  'CONFIRMATION_NOT_PENDING',
  'CONFIRMATION_EXPIRED',
  'CONFIRMER_NOT_ELIGIBLE',
  'INTERNAL',
] as const

export type ErrorCode = (typeof ERROR_CODES)[number]

/** A problem with one input field, named by its JSON pointer-ish path (`message.text`, `signals.intent`). */
export interface FieldProblem {
  readonly field: string
  readonly message: string
}

/** A position in a source file (1-based line and column). */
export interface SourcePosition {
  readonly file: string
  readonly line: number
  readonly column: number
}

export class BatonError extends Error {
  readonly code: ErrorCode
  readonly fields: readonly FieldProblem[]
  readonly positions: readonly (SourcePosition & { readonly message: string })[]

  constructor(
    code: ErrorCode,
    message: string,
    options: {
      cause?: unknown
      fields?: readonly FieldProblem[]
      positions?: readonly (SourcePosition & { readonly message: string })[]
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'BatonError'
    this.code = code
    this.fields = options.fields ?? []
    this.positions = options.positions ?? []
  }
}

export function isBatonError(e: unknown, code?: ErrorCode): e is BatonError {
  return e instanceof BatonError && (code === undefined || e.code === code)
}

import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { BatonError, type ErrorCode, type FieldProblem } from '../errors.js'
import { redactedText } from '../signals/sensitive.js'
import { storeErrorOf } from '../store/engine-errors.js'

/** HTTP status of each error code. A new code that lacks a status stops this file compiling. */
export const STATUS: { readonly [C in ErrorCode]: number } = {
  VALIDATION_FAILED: 400,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  HEADERS_TOO_LARGE: 431,
  URI_TOO_LONG: 414,
  REQUEST_TIMEOUT: 408,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  CSRF_FAILED: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CASE_NOT_FOUND: 404,
  CASE_CLOSED: 409,
  CUSTOMER_NOT_FOUND: 404,
  QUEUE_NOT_FOUND: 404,
  CASE_NOT_QUEUED: 409,
  CASE_ALREADY_ASSIGNED: 409,
  OPERATOR_AT_CAPACITY: 409,
  HANDBACK_REFUSED: 409,
  WEBHOOK_NOT_FOUND: 404,
  KEY_NOT_FOUND: 404,
  CONFLICT: 409,
  POLICY_INVALID: 422,
  POLICY_NOT_FOUND: 404,
  POLICY_VERSION_CONFLICT: 409,
  WORKSPACE_INVALID: 422,
  SIGNAL_INVALID: 400,
  STORE_UNAVAILABLE: 503,
  STORE_FULL: 503,
  SERVER_TIMEOUT: 503,
  STORE_NOT_FOUND: 503,
  AUDIT_ENTRY_NOT_FOUND: 404,
  AUDIT_INVALID: 500,
  AUDIT_HEAD_NOT_FOUND: 404,
  AUDIT_PROOF_INVALID: 422,
  AGENT_NOT_FOUND: 404,
  AGENT_INACTIVE: 403,
  AGENT_STATE_INVALID: 409,
  OPERATOR_NOT_FOUND: 404,
  CREDENTIAL_INVALID: 401,
  CREDENTIAL_EXPIRED: 401,
  CREDENTIAL_REVOKED: 401,
  CREDENTIAL_SCOPE: 403,
  NOT_CASE_HANDLER: 403,
  TOOL_NOT_FOUND: 404,
  TOOL_NOT_GRANTED: 403,
  PARAMS_INVALID: 422,
  PARAMS_MISMATCH: 409,
  CONNECTOR_FAILED: 502,
  APPROVAL_NOT_FOUND: 404,
  APPROVAL_NOT_PENDING: 409,
  APPROVAL_EXPIRED: 409,
  APPROVAL_ALREADY_EXECUTED: 409,
  APPROVER_NOT_ELIGIBLE: 403,
  DELEGATION_INVALID: 422,
  DELEGATE_NOT_FOUND: 404,
  DELEGATE_INACTIVE: 403,
  DELEGATE_STATE_INVALID: 409,
  DELEGATION_MISMATCH: 403,
  GRANT_NOT_FOUND: 404,
  GRANT_REVOKED: 403,
  GRANT_EXPIRED: 403,
  SCOPE_NOT_GRANTED: 403,
  SUBDELEGATION_FORBIDDEN: 403,
  CHAIN_TOO_DEEP: 403,
  LIMIT_EXCEEDED: 403,
  CONFIRMATION_NOT_FOUND: 404,
  CONFIRMATION_NOT_PENDING: 409,
  CONFIRMATION_EXPIRED: 409,
  CONFIRMER_NOT_ELIGIBLE: 403,
  INTERNAL: 500,
}

const TITLES: { readonly [C in ErrorCode]: string } = {
  VALIDATION_FAILED: 'Request validation failed',
  BODY_TOO_LARGE: 'Request body too large',
  UNSUPPORTED_MEDIA_TYPE: 'Unsupported media type',
  HEADERS_TOO_LARGE: 'Request header fields too large',
  URI_TOO_LONG: 'URI too long',
  REQUEST_TIMEOUT: 'Request timed out',
  UNAUTHENTICATED: 'Authentication required',
  FORBIDDEN: 'Not allowed for this role',
  CSRF_FAILED: 'Console request failed its CSRF check',
  NOT_FOUND: 'Not found',
  METHOD_NOT_ALLOWED: 'Method not allowed',
  CASE_NOT_FOUND: 'Case not found',
  CASE_CLOSED: 'Case is closed',
  CUSTOMER_NOT_FOUND: 'Customer not found',
  QUEUE_NOT_FOUND: 'Queue not found',
  CASE_NOT_QUEUED: 'Case is not waiting in a queue',
  CASE_ALREADY_ASSIGNED: 'Case is already assigned',
  OPERATOR_AT_CAPACITY: 'Operator is at capacity',
  HANDBACK_REFUSED: 'Hand-back refused by policy',
  WEBHOOK_NOT_FOUND: 'Webhook not found',
  KEY_NOT_FOUND: 'Key not found',
  CONFLICT: 'Conflict',
  POLICY_INVALID: 'Policy is invalid',
  POLICY_NOT_FOUND: 'Policy not found',
  POLICY_VERSION_CONFLICT: 'Policy version is not higher than the newest activated',
  WORKSPACE_INVALID: 'Workspace is invalid',
  SIGNAL_INVALID: 'Signal is invalid',
  STORE_UNAVAILABLE: 'Store unavailable',
  STORE_FULL: 'Store full',
  SERVER_TIMEOUT: 'No answer in time',
  STORE_NOT_FOUND: 'No Baton store there',
  AUDIT_ENTRY_NOT_FOUND: 'Audit entry not found',
  AUDIT_INVALID: 'Audit log is invalid',
  AUDIT_HEAD_NOT_FOUND: 'Signed tree head not found',
  AUDIT_PROOF_INVALID: 'Audit proof is invalid',
  AGENT_NOT_FOUND: 'Agent not found',
  AGENT_INACTIVE: 'Agent is not active',
  AGENT_STATE_INVALID: 'Agent lifecycle transition not allowed',
  OPERATOR_NOT_FOUND: 'Operator not found',
  CREDENTIAL_INVALID: 'Credential is invalid',
  CREDENTIAL_EXPIRED: 'Credential has expired',
  CREDENTIAL_REVOKED: 'Credential was revoked',
  CREDENTIAL_SCOPE: 'Credential does not cover this request',
  NOT_CASE_HANDLER: 'Not the handler of this case',
  TOOL_NOT_FOUND: 'Tool not found',
  TOOL_NOT_GRANTED: 'Tool not granted to this agent',
  PARAMS_INVALID: 'Tool parameters are invalid',
  PARAMS_MISMATCH: 'Parameters differ from those authorized',
  CONNECTOR_FAILED: 'Tool connector failed',
  APPROVAL_NOT_FOUND: 'Approval not found',
  APPROVAL_NOT_PENDING: 'Approval is no longer pending',
  APPROVAL_EXPIRED: 'Approval has expired',
  APPROVAL_ALREADY_EXECUTED: 'Approval was already executed',
  APPROVER_NOT_ELIGIBLE: 'Not eligible to decide this approval',
  DELEGATION_INVALID: 'Delegation document is invalid',
  DELEGATE_NOT_FOUND: 'Delegate not found',
  DELEGATE_INACTIVE: 'Delegate is not active',
  DELEGATE_STATE_INVALID: 'Delegate lifecycle transition not allowed',
  DELEGATION_MISMATCH: 'Grant, delegate or customer do not match',
  GRANT_NOT_FOUND: 'Grant not found',
  GRANT_REVOKED: 'Grant was revoked',
  GRANT_EXPIRED: 'Grant has expired',
  SCOPE_NOT_GRANTED: 'Scope not granted',
  SUBDELEGATION_FORBIDDEN: 'The grant does not allow sub-delegation',
  CHAIN_TOO_DEEP: 'Delegation chain too deep',
  LIMIT_EXCEEDED: 'Parameters exceed the granted limit',
  CONFIRMATION_NOT_FOUND: 'Confirmation not found',
  CONFIRMATION_NOT_PENDING: 'Confirmation is no longer pending',
  CONFIRMATION_EXPIRED: 'Confirmation has expired',
  CONFIRMER_NOT_ELIGIBLE: 'Not eligible to confirm for this customer',
  INTERNAL: 'Internal error',
}

/** RFC 9457 problem details, with Baton's stable `code` and, for validation, the fields at fault. */
export interface Problem {
  readonly type: string
  readonly title: string
  readonly status: number
  readonly code: ErrorCode
  readonly detail?: string
  readonly instance?: string
  readonly errors?: readonly FieldProblem[]
  readonly positions?: BatonError['positions']
}

/**
 * The problem document of an error. Its detail, fields and instance may echo the request (an unknown id, a field
 * name): they go through the same redaction as stored text, so an answer never carries a secret either.
 */
export function problemOf(e: BatonError, instance?: string): Problem {
  return {
    type: `https://baton.dev/problems/${e.code.toLowerCase().replaceAll('_', '-')}`,
    title: TITLES[e.code],
    status: STATUS[e.code],
    code: e.code,
    detail: redactedText(e.message),
    ...(instance === undefined ? {} : { instance: redactedText(instance) }),
    ...(e.fields.length > 0
      ? { errors: e.fields.map((f) => ({ field: redactedText(f.field), message: redactedText(f.message) })) }
      : {}),
    ...(e.positions.length > 0
      ? { positions: e.positions.map((p) => ({ ...p, message: redactedText(p.message) })) }
      : {}),
  }
}

export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  return reply.code(p.status).type('application/problem+json').send(p)
}

/** Turns Fastify's own validation and parsing errors into field-naming Baton errors. */
export function toBatonError(err: FastifyError): BatonError | undefined {
  if (err.validation) {
    const where = err.validationContext ?? 'body'
    const fields = err.validation.map((v) => {
      const base = v.instancePath
        .split('/')
        .filter((s) => s !== '')
        .join('.')
      const params = v.params as Record<string, unknown>
      const leaf =
        typeof params.missingProperty === 'string'
          ? params.missingProperty
          : typeof params.additionalProperty === 'string'
            ? params.additionalProperty
            : ''
      const field = [where === 'body' ? '' : where, base, leaf].filter((s) => s !== '').join('.') || where
      const message =
        typeof params.additionalProperty === 'string'
          ? 'unknown field'
          : typeof params.missingProperty === 'string'
            ? 'is required'
            : (v.message ?? 'is invalid')
      return { field, message }
    })
    return new BatonError('VALIDATION_FAILED', fields.map((f) => `${f.field}: ${f.message}`).join('; '), { fields })
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new BatonError('BODY_TOO_LARGE', err.message)
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new BatonError('UNSUPPORTED_MEDIA_TYPE', err.message, {
        fields: [{ field: 'content-type', message: 'unsupported media type' }],
      })
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new BatonError('VALIDATION_FAILED', err.message, { fields: [{ field: 'body', message: err.message }] })
  }
  if (err.statusCode === 400 || err instanceof SyntaxError) {
    return new BatonError('VALIDATION_FAILED', `malformed request body: ${err.message}`, {
      fields: [{ field: 'body', message: 'is not valid JSON' }],
    })
  }
  if (err.statusCode === 415) {
    return new BatonError('UNSUPPORTED_MEDIA_TYPE', err.message, {
      fields: [{ field: 'content-type', message: 'unsupported media type' }],
    })
  }
  return undefined
}

export function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  // storeErrorOf: a driver error that escaped the store's own mapping still means 503, not 500.
  const be = err instanceof BatonError ? err : (toBatonError(err) ?? storeErrorOf(err))
  if (be !== undefined) {
    if (STATUS[be.code] === 503) req.log.warn({ code: be.code, reason: be.message }, 'request refused: unavailable')
    else if (STATUS[be.code] >= 500) req.log.error({ err: be }, 'request failed')
    return sendProblem(reply, problemOf(be, req.url.split('?')[0]))
  }
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return reply
      .code(err.statusCode)
      .type('application/problem+json')
      .send({ type: 'about:blank', title: err.message, status: err.statusCode, code: 'VALIDATION_FAILED' })
  }
  req.log.error({ err }, 'unhandled error')
  return reply
    .code(500)
    .type('application/problem+json')
    .send({ type: 'about:blank', title: 'Internal error', status: 500, code: 'INTERNAL' })
}

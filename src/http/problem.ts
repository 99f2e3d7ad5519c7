import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { BatonError, type ErrorCode, type FieldProblem } from '../errors.js'

/** HTTP status of each error code. A new code that lacks a status stops this file compiling. */
export const STATUS: { readonly [C in ErrorCode]: number } = {
  VALIDATION_FAILED: 400,
  BODY_TOO_LARGE: 413,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CASE_NOT_FOUND: 404,
  CASE_CLOSED: 409,
  CUSTOMER_NOT_FOUND: 404,
  KEY_NOT_FOUND: 404,
  CONFLICT: 409,
  POLICY_INVALID: 422,
  POLICY_NOT_FOUND: 404,
  WORKSPACE_INVALID: 422,
  SIGNAL_INVALID: 400,
  STORE_UNAVAILABLE: 503,
  AUDIT_ENTRY_NOT_FOUND: 404,
  AUDIT_INVALID: 500,
  AUDIT_HEAD_NOT_FOUND: 404,
  AUDIT_PROOF_INVALID: 422,
  INTERNAL: 500,
}

const TITLES: { readonly [C in ErrorCode]: string } = {
  VALIDATION_FAILED: 'Request validation failed',
  BODY_TOO_LARGE: 'Request body too large',
  UNAUTHENTICATED: 'Authentication required',
  FORBIDDEN: 'Not allowed for this role',
  NOT_FOUND: 'Not found',
  CASE_NOT_FOUND: 'Case not found',
  CASE_CLOSED: 'Case is closed',
  CUSTOMER_NOT_FOUND: 'Customer not found',
  KEY_NOT_FOUND: 'Key not found',
  CONFLICT: 'Conflict',
  POLICY_INVALID: 'Policy is invalid',
  POLICY_NOT_FOUND: 'Policy not found',
  WORKSPACE_INVALID: 'Workspace is invalid',
  SIGNAL_INVALID: 'Signal is invalid',
  STORE_UNAVAILABLE: 'Store unavailable',
  AUDIT_ENTRY_NOT_FOUND: 'Audit entry not found',
  AUDIT_INVALID: 'Audit log is invalid',
  AUDIT_HEAD_NOT_FOUND: 'Signed tree head not found',
  AUDIT_PROOF_INVALID: 'Audit proof is invalid',
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

export function problemOf(e: BatonError, instance?: string): Problem {
  return {
    type: `https://baton.dev/problems/${e.code.toLowerCase().replaceAll('_', '-')}`,
    title: TITLES[e.code],
    status: STATUS[e.code],
    code: e.code,
    detail: e.message,
    ...(instance === undefined ? {} : { instance }),
    ...(e.fields.length > 0 ? { errors: e.fields } : {}),
    ...(e.positions.length > 0 ? { positions: e.positions } : {}),
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
    return new BatonError('VALIDATION_FAILED', err.message, {
      fields: [{ field: 'content-type', message: 'unsupported media type' }],
    })
  }
  return undefined
}

export function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const be = err instanceof BatonError ? err : toBatonError(err)
  if (be !== undefined) {
    if (STATUS[be.code] >= 500) req.log.error({ err: be }, 'request failed')
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

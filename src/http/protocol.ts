import { maxHeaderSize, STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifySchema, RouteOptions } from 'fastify'
import { BatonError, type ErrorCode } from '../errors.js'
import { problemOf } from './problem.js'
import { problem } from './schemas.js'

/**
 * HTTP protocol hygiene shared by every route: the media types a body may have (415 otherwise), 405 with `Allow` for a
 * known path asked with a method it does not have, and problem documents for what node:http refuses before any route
 * runs (431 header fields too large, 400 malformed request, 408 time-out).
 */

/** What a body is taken as when a route says nothing (`schema.consumes`, which also goes into /openapi.json). */
export const JSON_BODY: readonly string[] = ['application/json']
/** OAuth clients send forms (RFC 6749 §4.4.2, RFC 7662 §2.1); JSON is taken too. */
export const FORM_OR_JSON_BODY: readonly string[] = ['application/x-www-form-urlencoded', 'application/json']
export const FORM_BODY: readonly string[] = ['application/x-www-form-urlencoded']
/** A policy document: YAML (a file is text, so `text/plain` too). */
export const YAML_BODY: readonly string[] = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/plain']

const BODY_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** The media type of a `content-type` header, lower case, without parameters; undefined when absent or empty. */
export function mediaTypeOf(header: string | undefined): string | undefined {
  const media = header?.split(';')[0]?.trim().toLowerCase()
  return media === undefined || media === '' ? undefined : media
}

function hasBody(req: FastifyRequest): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/**
 * Refuses, before the body is read, a body whose media type the route does not take (`schema.consumes`, default
 * JSON): 415 `UNSUPPORTED_MEDIA_TYPE` naming the types it takes, also in the `Accept` header (RFC 9110 §15.5.16).
 * Without this, a JSON body sent as `text/plain` or a form reached the schema as a string and was refused as
 * "unknown field".
 */
export function registerMediaTypeCheck(app: FastifyInstance): void {
  app.addHook('preParsing', async (req, reply) => {
    if (!BODY_METHODS.has(req.method) || req.routeOptions.url === undefined || !hasBody(req)) return
    const consumes = (req.routeOptions.schema as { consumes?: readonly string[] } | undefined)?.consumes ?? JSON_BODY
    const media = mediaTypeOf(req.headers['content-type'])
    if (media !== undefined && consumes.includes(media)) return
    reply.header('accept', consumes.join(', '))
    const expected = consumes.join(', ')
    throw new BatonError(
      'UNSUPPORTED_MEDIA_TYPE',
      `${req.method} ${req.routeOptions.url} takes a body of type ${expected}; ${media === undefined ? 'the request has no content-type' : `found '${media}'`}`,
      { fields: [{ field: 'content-type', message: `expected ${expected}` }] },
    )
  })
}

/**
 * /openapi.json (a `transform` of @fastify/swagger, so the served answers are untouched): every route with a body
 * also answers 415. A route with its own error handler (the OAuth token endpoint) answers in its own terms and
 * documents them itself.
 */
export function documentMediaTypes(input: {
  readonly schema: FastifySchema
  readonly url: string
  readonly route: RouteOptions
}): { schema: FastifySchema; url: string } {
  const schema = input.schema as FastifySchema & { response?: Record<string, unknown> }
  if (schema?.body === undefined || input.route.errorHandler !== undefined || schema.response?.[415] !== undefined) {
    return { schema, url: input.url }
  }
  return {
    url: input.url,
    schema: {
      ...schema,
      response: {
        ...(schema.response ?? { '2XX': { description: 'Default Response' } }),
        415: { description: 'The body is not of a media type this route takes (see requestBody)', ...problem },
      },
    },
  }
}

/**
 * Records every route's method and path pattern, and returns the methods a concrete path has (empty when no route
 * matches it at all): the 404 handler answers 405 with `Allow` when they are not empty. Must be called before any
 * route is registered.
 */
export function trackRouteMethods(app: FastifyInstance): (path: string) => readonly string[] {
  const routes: { pattern: RegExp; methods: Set<string> }[] = []
  const byUrl = new Map<string, Set<string>>()
  app.addHook('onRoute', (route) => {
    let methods = byUrl.get(route.url)
    if (methods === undefined) {
      methods = new Set()
      byUrl.set(route.url, methods)
      routes.push({ pattern: patternOf(route.url), methods })
    }
    for (const m of Array.isArray(route.method) ? route.method : [route.method]) methods.add(m)
    if (methods.has('GET')) methods.add('HEAD')
  })
  return (path) => {
    const allowed = new Set<string>()
    for (const r of routes) if (r.pattern.test(path)) for (const m of r.methods) allowed.add(m)
    return [...allowed].sort()
  }
}

/** A find-my-way path (`/v1/cases/:id/messages`, `/assets/*`) as a regular expression over concrete paths. */
function patternOf(url: string): RegExp {
  const source = url
    .split('/')
    .map((seg) => {
      if (seg === '*') return '.*'
      if (seg.startsWith(':')) return '[^/]+'
      return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    })
    .join('/')
  return new RegExp(`^${source}$`)
}

/**
 * 405 with `Allow` for a known path asked with a method it does not have, else 404; decided when the request arrives
 * (in `onRequest`, before the not-found route would read it), so a body the request carries is never read nor judged first.
 */
export function registerNotFound(app: FastifyInstance, allowedMethods: (path: string) => readonly string[]): void {
  const refuse = (req: FastifyRequest, reply: FastifyReply): BatonError => {
    const path = req.url.split('?')[0] ?? req.url
    const allowed = allowedMethods(path)
    if (allowed.length === 0) return new BatonError('NOT_FOUND', `no route ${req.method} ${path}`)
    reply.header('allow', allowed.join(', '))
    return new BatonError(
      'METHOD_NOT_ALLOWED',
      `${req.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`,
    )
  }
  app.addHook('onRequest', async (req, reply) => {
    if (req.is404) throw refuse(req, reply)
  })
  app.setNotFoundHandler(async (req, reply) => {
    throw refuse(req, reply)
  })
}

/**
 * node:http's `clientError`: a request refused before it reached a route (fastify's `clientErrorHandler`). Answers
 * with a problem document and closes the connection, as node and fastify do with their plain ones.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection has nobody left to answer (https://nodejs.org/api/http.html#event-clienterror).
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [code, detail]: [ErrorCode, string] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? ['HEADERS_TOO_LARGE', `the request's header fields exceed ${maxHeaderSize} bytes in all`]
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ['REQUEST_TIMEOUT', 'the request did not arrive in time']
        : ['VALIDATION_FAILED', 'the request is not valid HTTP']
  const problem = problemOf(new BatonError(code, detail))
  const status = problem.status
  const body = JSON.stringify(problem)
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    )
  }
  socket.destroy(err)
}

/** Longest path segment a route parameter takes (fastify's `maxParamLength`; ids are at most 128 characters). */
export const MAX_PARAM_LENGTH = 200

/**
 * Fastify's own refusals before routing (`frameworkErrors`): a path segment longer than `MAX_PARAM_LENGTH` (414) or
 * a malformed percent-escape (400), as problem documents. Fastify's plain ones quoted the path back, and a path may
 * hold anything a caller typed, a secret too.
 */
export function frameworkErrors(error: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  const e =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? new BatonError('URI_TOO_LONG', `a path segment is longer than ${MAX_PARAM_LENGTH} characters`)
      : error.code === 'FST_ERR_BAD_URL'
        ? new BatonError('VALIDATION_FAILED', 'the path is not a valid URL (a malformed percent-escape)', {
            fields: [{ field: 'path', message: 'malformed percent-escape' }],
          })
        : new BatonError('INTERNAL', 'the request could not be routed')
  const p = problemOf(e)
  void reply.code(p.status).type('application/problem+json').send(p)
}

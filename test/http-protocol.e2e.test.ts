import type { AddressInfo } from 'node:net'
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, startTestApp, type TestApp } from './support/app.js'

/** A JSON answer; the members tests read. */
// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary members of answers
type Json = Record<string, any>
const CASE = { customer: 'cu_proto', channel: 'chat', message: { text: 'Where is my parcel?' } }

/** Sends raw bytes on a fresh connection and resolves with everything the server wrote before it closed. */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let got = ''
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => {
      got += d
    })
    socket.on('error', (e: NodeJS.ErrnoException) => {
      // the server closes after answering; a reset that follows the answer is not the test's concern
      if (got !== '' && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) resolve(got)
      else reject(e)
    })
    socket.on('close', () => resolve(got))
    socket.write(request)
  })
}

/** Status, lower-cased headers and body of a raw HTTP/1.1 answer. */
function parseAnswer(raw: string): { status: number; headers: Record<string, string>; body: string } {
  const end = raw.indexOf('\r\n\r\n')
  const [statusLine, ...lines] = raw.slice(0, end).split('\r\n')
  const headers: Record<string, string> = {}
  for (const l of lines) {
    const i = l.indexOf(':')
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim()
  }
  return { status: Number(statusLine?.split(' ')[1]), headers, body: raw.slice(end + 4) }
}

/** Media types, methods, header limits and the console's CSRF check, over a real listening socket. */
describe('HTTP protocol answers over a real socket', () => {
  let t: TestApp
  let base: string
  let port: number

  beforeAll(async () => {
    t = await startTestApp()
    await t.app.server.listen({ port: 0, host: '127.0.0.1' })
    port = (t.app.server.server.address() as AddressInfo).port
    base = `http://127.0.0.1:${port}`
  })
  afterAll(async () => {
    await t?.close()
  })

  async function call(method: string, path: string, headers: Record<string, string>, body?: string) {
    const r = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body }) })
    const text = await r.text()
    const json = (r.headers.get('content-type')?.includes('json') ? JSON.parse(text) : {}) as Json
    return { status: r.status, headers: r.headers, text, json }
  }

  describe('415 for a body of a media type the route does not take', () => {
    it('refuses a JSON case sent as text/plain, as a form, or without a content type, naming the expected type', async () => {
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/yaml', undefined]) {
        const r = await call(
          'POST',
          '/v1/cases',
          { ...bearer(t.keys.service), ...(type === undefined ? {} : { 'content-type': type }) },
          JSON.stringify(CASE),
        )
        expect(r.status, `${type}: ${r.text}`).toBe(415)
        expect(r.headers.get('content-type')).toContain('application/problem+json')
        expect(r.headers.get('accept')).toBe('application/json')
        expect(r.json).toMatchObject({
          status: 415,
          code: 'UNSUPPORTED_MEDIA_TYPE',
          errors: [{ field: 'content-type', message: 'expected application/json' }],
        })
        expect(r.json.detail).toContain('application/json')
        expect(JSON.stringify(r.json)).not.toContain('unknown field')
      }
      const ok = await call(
        'POST',
        '/v1/cases',
        { ...bearer(t.keys.service), 'content-type': 'application/json; charset=utf-8' },
        JSON.stringify(CASE),
      )
      expect(ok.status, ok.text).toBe(201)
    })

    it('PUT /v1/policy takes YAML and refuses JSON; the token endpoint takes a form and answers OAuth-style', async () => {
      const source = await call('GET', '/v1/policy/source', bearer(t.keys.admin))
      expect(source.status).toBe(200)
      const yaml = await call(
        'PUT',
        '/v1/policy',
        { ...bearer(t.keys.admin), 'content-type': 'application/yaml' },
        source.text,
      )
      expect(yaml.status, yaml.text).toBe(200)
      const asJson = await call(
        'PUT',
        '/v1/policy',
        { ...bearer(t.keys.admin), 'content-type': 'application/json' },
        JSON.stringify(source.text),
      )
      expect(asJson.status).toBe(415)
      expect(asJson.json.code).toBe('UNSUPPORTED_MEDIA_TYPE')
      expect(asJson.headers.get('accept')).toContain('application/yaml')

      const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: 'shop-assistant' }).toString()
      const asForm = await call(
        'POST',
        '/v1/oauth/token',
        { 'content-type': 'application/x-www-form-urlencoded' },
        form,
      )
      // past the media type: the client did not authenticate
      expect(asForm.status).toBe(401)
      expect(asForm.json).toMatchObject({ error: 'invalid_client', code: 'UNAUTHENTICATED' })
      const asText = await call('POST', '/v1/oauth/token', { 'content-type': 'text/plain' }, form)
      expect(asText.status).toBe(400)
      expect(asText.json).toMatchObject({ error: 'invalid_request', code: 'UNSUPPORTED_MEDIA_TYPE' })
      const introspected = await call(
        'POST',
        '/v1/oauth/introspect',
        { ...bearer(t.keys.service), 'content-type': 'application/x-www-form-urlencoded' },
        new URLSearchParams({ token: 'not-a-token' }).toString(),
      )
      expect(introspected.status).toBe(200)
      expect(introspected.json).toEqual({ active: false })
    })
  })

  it('/openapi.json names the media types each route takes and the 415 of a route with a body', async () => {
    const doc = (await call('GET', '/openapi.json', {})).json
    expect(Object.keys(doc.paths['/v1/policy'].put.requestBody.content)).toContain('application/yaml')
    expect(Object.keys(doc.paths['/v1/policy'].put.requestBody.content)).not.toContain('application/json')
    expect(Object.keys(doc.paths['/v1/oauth/token'].post.requestBody.content)).toContain(
      'application/x-www-form-urlencoded',
    )
    expect(Object.keys(doc.paths['/v1/cases'].post.requestBody.content)).toEqual(['application/json'])
    expect(doc.paths['/v1/cases'].post.responses['415']).toBeDefined()
    expect(doc.paths['/v1/policy'].put.responses['415']).toBeDefined()
    // the token endpoint answers in OAuth's terms: 400 and 401
    expect(Object.keys(doc.paths['/v1/oauth/token'].post.responses)).toEqual(['200', '400', '401', '503'])
  })

  describe('405 with Allow for a known path and a method it does not have', () => {
    it('PATCH, PUT and DELETE on case and policy paths; an unknown path stays 404', async () => {
      const opened = await call(
        'POST',
        '/v1/cases',
        { ...bearer(t.keys.service), 'content-type': 'application/json' },
        JSON.stringify(CASE),
      )
      const id = opened.json.id as string
      for (const [method, path, allow] of [
        ['PATCH', `/v1/cases/${id}`, 'GET, HEAD'],
        ['DELETE', `/v1/cases/${id}`, 'GET, HEAD'],
        ['PATCH', '/v1/cases', 'GET, HEAD, POST'],
        ['DELETE', '/v1/policy', 'GET, HEAD, PUT'],
        ['GET', '/v1/oauth/token', 'POST'],
      ] as const) {
        const r = await call(
          method,
          path,
          // a content type without a body (DELETE) must not be judged before the method
          { ...bearer(t.keys.admin), 'content-type': 'application/json' },
          method === 'PATCH' ? '{"state":"closed"}' : undefined,
        )
        expect(r.status, `${method} ${path}: ${r.text}`).toBe(405)
        expect(r.headers.get('allow')).toBe(allow)
        expect(r.headers.get('content-type')).toContain('application/problem+json')
        expect(r.json).toMatchObject({ status: 405, code: 'METHOD_NOT_ALLOWED' })
      }
      const unknown = await call('PATCH', '/v1/nothing-here', bearer(t.keys.admin))
      expect(unknown.status).toBe(404)
      expect(unknown.headers.get('allow')).toBeNull()
      expect(unknown.json.code).toBe('NOT_FOUND')
    })
  })

  describe('431 for header fields too large', () => {
    it('answers a problem document on the raw socket', async () => {
      const raw = await rawExchange(
        port,
        `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${'a'.repeat(32 * 1024)}\r\n\r\n`,
      )
      const answer = parseAnswer(raw)
      expect(answer.status, raw.slice(0, 200)).toBe(431)
      expect(answer.headers['content-type']).toContain('application/problem+json')
      expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body))
      expect(JSON.parse(answer.body)).toMatchObject({
        status: 431,
        code: 'HEADERS_TOO_LARGE',
        title: 'Request header fields too large',
      })
      // and a request that is not HTTP at all gets one too
      const garbage = parseAnswer(await rawExchange(port, 'HELLO THERE\r\n\r\n'))
      expect(garbage.status).toBe(400)
      expect(JSON.parse(garbage.body)).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' })
      // the server is still serving
      expect((await call('GET', '/healthz', {})).status).toBe(200)
    })
  })

  describe('a console session without its CSRF token', () => {
    async function signIn(key: string): Promise<{ cookie: string; csrf: string }> {
      const form = await fetch(`${base}/console/login`)
      const pair = form.headers
        .getSetCookie()
        .find((c) => c.startsWith('baton_login_csrf='))
        ?.split(';')[0]
      expect(pair).toBeDefined()
      const login = await fetch(`${base}/console/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: pair! },
        body: new URLSearchParams({
          key,
          _csrf: pair!.slice(pair!.indexOf('=') + 1),
          next: '/console/queue',
        }).toString(),
      })
      expect(login.status).toBe(303)
      const cookie = login.headers
        .getSetCookie()
        .find((c) => c.startsWith('baton_session='))
        ?.split(';')[0]
      expect(cookie).toBeDefined()
      const page = await (
        await fetch(`${base}/console/queue`, { headers: { cookie: cookie!, accept: 'text/html' } })
      ).text()
      const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(page)?.[1]
      expect(csrf).toBeDefined()
      return { cookie: cookie!, csrf: csrf! }
    }

    it('is refused as CSRF_FAILED, not as a role problem; with the token the role decides', async () => {
      const { cookie, csrf } = await signIn(t.keys.admin)
      const post = (headers: Record<string, string>) =>
        call('POST', '/v1/cases', { cookie, 'content-type': 'application/json', ...headers }, JSON.stringify(CASE))
      for (const [headers, hint] of [
        [{}, /none was sent/],
        [{ 'x-csrf-token': 'forged' }, /differs/],
        [{ 'x-csrf-token': csrf, origin: 'https://evil.example' }, /Origin/],
      ] as const) {
        const r = await post(headers)
        expect(r.status, r.text).toBe(403)
        expect(r.headers.get('content-type')).toContain('application/problem+json')
        expect(r.json).toMatchObject({ status: 403, code: 'CSRF_FAILED' })
        expect(r.json.title).not.toBe('Not allowed for this role')
        expect(r.json.detail).toMatch(hint)
      }
      expect((await post({ 'x-csrf-token': csrf })).status).toBe(201)
      // an operator session with its token passes CSRF and meets the role check instead
      const op = await signIn(t.keys.operator)
      const asOperator = await call(
        'POST',
        '/v1/cases',
        { cookie: op.cookie, 'x-csrf-token': op.csrf, 'content-type': 'application/json' },
        JSON.stringify(CASE),
      )
      expect(asOperator.status).toBe(403)
      expect(asOperator.json.code).toBe('FORBIDDEN')
    })
  })
})

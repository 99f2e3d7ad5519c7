import { randomUUID } from 'node:crypto'
import {
  type CryptoKey,
  createLocalJWKSet,
  decodeJwt,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  UnsecuredJWT,
} from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestApp, type TestApp } from './support/app.js'
import { signAssertion } from './support/assertion.js'
import { startConnector } from './support/connector.js'
import { signIn } from './support/console-session.js'
import { pgAvailable } from './support/pg.js'

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const GRANT_TYPE = 'urn:baton:params:oauth:token-type:grant'
const ACCESS_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt'
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

interface AuditJson {
  readonly seq: number
  readonly type: string
  readonly caseId?: string
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary members of entries
  readonly actor?: Record<string, any>
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary members of entries
  readonly data: Record<string, any>
}
// biome-ignore lint/suspicious/noExplicitAny: JSON answers
type Json = any

/** A GitHub token shape the secret detector knows (random, so not a published example). */
const SECRET = `ghp_${randomUUID().replaceAll('-', '')}abcd`
const inAnHour = () => new Date(Date.now() + 3600_000).toISOString()
const customerId = () => `cu_${randomUUID().slice(0, 8)}`

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`customers' delegates over real HTTP on ${engine}`, () => {
    let t: TestApp
    let base: string
    let connector: Awaited<ReturnType<typeof startConnector>>
    const keys: Record<string, { privateKey: CryptoKey; publicKey: CryptoKey }> = {}
    let agentKey: { privateKey: CryptoKey; publicKey: CryptoKey }
    let billing: string

    beforeAll(async () => {
      connector = await startConnector()
      process.env.BATON_SHOP_CONNECTOR_URL = connector.url
      t = await startTestApp({ engine })
      base = await t.app.server.listen({ port: 0, host: '127.0.0.1' })
      for (const id of ['acme', 'courier', 'third']) {
        keys[id] = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
        const jwk = await exportJWK(keys[id]!.publicKey)
        const r = await call('POST', '/v1/delegates', t.keys.admin, {
          id,
          name: `${id} assistant`,
          vendor: `${id} Inc.`,
          contact: `ops@${id}.example`,
          jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x },
        })
        expect(r.status, JSON.stringify(r.body)).toBe(201)
      }
      agentKey = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
      const jwk = await exportJWK(agentKey.publicKey)
      expect(
        (
          await call('POST', '/v1/agents/shop-assistant/credentials', t.keys.admin, {
            kind: 'public_key',
            jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x },
          })
        ).status,
      ).toBe(201)
      billing = (await call('POST', '/v1/keys', t.keys.admin, { role: 'operator', name: 'ada', operatorId: 'ada' }))
        .body.key
    })
    afterAll(async () => {
      await t?.close()
      await connector?.close()
      delete process.env.BATON_SHOP_CONNECTOR_URL
    })

    async function call(
      method: string,
      path: string,
      token: string,
      body?: unknown,
    ): Promise<{ status: number; body: Json }> {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
      const text = await res.text()
      return { status: res.status, body: text === '' ? null : JSON.parse(text) }
    }

    async function token(form: Record<string, string>): Promise<{ status: number; body: Json }> {
      const res = await fetch(`${base}/v1/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form).toString(),
      })
      return { status: res.status, body: await res.json() }
    }

    const assertion = (id: string, aud = 'urn:baton') => signAssertion(keys[id]!.privateKey, id, aud)

    async function exchangeRaw(id: string, subject: string, type = GRANT_TYPE, scope?: string, actor?: string) {
      return token({
        grant_type: EXCHANGE,
        subject_token: subject,
        subject_token_type: type,
        actor_token: actor ?? (await assertion(id)),
        actor_token_type: JWT_TYPE,
        ...(scope === undefined ? {} : { scope }),
      })
    }

    async function exchange(id: string, subject: string, type = GRANT_TYPE, scope?: string): Promise<string> {
      const r = await exchangeRaw(id, subject, type, scope)
      expect(r.status, JSON.stringify(r.body)).toBe(200)
      return r.body.access_token
    }

    async function grant(customer: string, body: Record<string, unknown>): Promise<Json> {
      const r = await call('POST', `/v1/customers/${customer}/grants`, t.keys.service, {
        expires_at: inAnHour(),
        ...body,
      })
      expect(r.status, JSON.stringify(r.body)).toBe(201)
      return r.body
    }

    async function audit(): Promise<AuditJson[]> {
      const size = await t.app.store.auditSize()
      return (await t.app.store.readAudit(0, size)).map((e) => JSON.parse(e.entry) as AuditJson)
    }

    async function issuedCount(): Promise<number> {
      return (await audit()).filter((e) => e.type === 'delegate.token_issued').length
    }

    async function refused(code: string, actorId?: string): Promise<AuditJson[]> {
      return (await audit()).filter(
        (e) =>
          e.type === 'access.refused' && e.data.code === code && (actorId === undefined || e.actor?.id === actorId),
      )
    }

    const ALL = ['case:open', 'case:message', 'case:read', 'order:status', 'refund:request']

    /** A customer, a grant of `scopes` to acme, acme's token, and a case it opened. */
    async function delegatedCase(scopes = ALL, extra: Record<string, unknown> = {}) {
      const customer = customerId()
      const g = await grant(customer, { delegate: 'acme', scopes, ...extra })
      const tok = await exchange('acme', g.id)
      // the delegate opens the case when it may, else the helpdesk does
      const opened = await call('POST', '/v1/cases', scopes.includes('case:open') ? tok : t.keys.service, {
        customer,
        channel: scopes.includes('case:open') ? 'api' : 'chat',
        message: { text: 'Hello, my parcel for order A-1234 arrived damaged; I would like a refund of 30 EUR.' },
      })
      expect(opened.status, JSON.stringify(opened.body)).toBe(201)
      return { customer, grant: g, token: tok, caseId: opened.body.id as string }
    }

    const refund = (caseId: string, tok: string, amount: number) =>
      call('POST', `/v1/cases/${caseId}/actions`, tok, {
        tool: 'refund',
        params: { order_id: 'A-1234', amount, currency: 'EUR' },
      })

    it('registers a delegate, grants it scopes, exchanges the grant (RFC 8693) and acts for the customer; a confirmed refund executes once', async () => {
      const customer = customerId()
      const listed = await call('GET', '/v1/delegates/acme', t.keys.operator)
      expect(listed.body).toMatchObject({ id: 'acme', state: 'active', vendor: 'acme Inc.' })
      const g = await grant(customer, { delegate: 'acme', scopes: ALL, note: 'set up in chat' })
      expect(g).toMatchObject({ customerId: customer, delegateId: 'acme', depth: 1, parentId: null, state: 'active' })

      const issued = await exchangeRaw('acme', g.id, GRANT_TYPE, 'case:open case:read refund:request')
      expect(issued.status).toBe(200)
      expect(issued.body).toMatchObject({
        token_type: 'Bearer',
        issued_token_type: ACCESS_TYPE,
        scope: 'case:open case:read refund:request',
        grant: g.id,
      })
      expect(issued.body.expires_in).toBeLessThanOrEqual(300)
      const tok = issued.body.access_token as string
      const jwks = (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as Parameters<
        typeof createLocalJWKSet
      >[0]
      const { payload, protectedHeader } = await jwtVerify(tok, createLocalJWKSet(jwks), { algorithms: ['EdDSA'] })
      expect(protectedHeader.typ).toBe('at+jwt')
      expect(payload).toMatchObject({
        sub: customer,
        client_id: 'acme',
        act: { sub: 'acme' },
        scope: 'case:open case:read refund:request',
        baton_grant: g.id,
      })
      expect((payload.exp as number) - (payload.iat as number)).toBeLessThanOrEqual(300)
      const intro = await call('POST', '/v1/oauth/introspect', t.keys.service, { token: tok })
      expect(intro.body).toMatchObject({ active: true, sub: customer, client_id: 'acme', baton_grant: g.id })

      const opened = await call('POST', '/v1/cases', tok, {
        customer,
        channel: 'api',
        message: { text: 'Hi, order A-77 arrived broken, please refund 30 EUR.' },
      })
      expect(opened.status, JSON.stringify(opened.body)).toBe(201)
      const caseId = opened.body.id as string
      const read = await call('GET', `/v1/cases/${caseId}`, tok)
      expect(read.status).toBe(200)
      expect(read.body).toMatchObject({ id: caseId, customerId: customer, state: 'open' })
      expect(read.body.messages[0]).toMatchObject({ author: 'delegate' })
      expect(read.body.decisions).toBeUndefined()
      // case:message was not asked for in this exchange
      const noScope = await call('POST', `/v1/cases/${caseId}/messages`, tok, { message: { text: 'hello?' } })
      expect(noScope.status).toBe(403)
      expect(noScope.body.code).toBe('SCOPE_NOT_GRANTED')

      // Ask ≠ approve: the refund waits for the customer's own confirmation.
      const before = connector.calls.length
      const asked = await refund(caseId, tok, 30)
      expect(asked.status, JSON.stringify(asked.body)).toBe(202)
      expect(asked.body).toMatchObject({ outcome: 'confirm', state: 'awaiting_confirmation' })
      expect(asked.body.decision.rules).toEqual(['delegate-refund-needs-customer'])
      const cnf = asked.body.confirmation.id as string
      expect(connector.calls.length).toBe(before)

      // The helpdesk shows the customer the exact parameters, and answers for them after it authenticated them.
      const shown = await call('GET', `/v1/confirmations/${cnf}`, t.keys.service)
      expect(shown.body).toMatchObject({
        state: 'pending',
        customerId: customer,
        requester: 'acme',
        requesterKind: 'delegate',
        grantId: g.id,
        params: { order_id: 'A-1234', amount: 30, currency: 'EUR' },
      })
      const pending = await call('GET', `/v1/confirmations?state=pending&customer=${customer}`, t.keys.service)
      expect(pending.body.items.map((c: { id: string }) => c.id)).toEqual([cnf])
      const confirmed = await call('POST', `/v1/confirmations/${cnf}`, t.keys.service, {
        customer,
        decision: 'confirm',
        params: shown.body.params,
        reason: 'customer confirmed in the app',
      })
      expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(200)
      expect(confirmed.body).toMatchObject({ confirmation: { state: 'confirmed' }, action: { state: 'executed' } })
      expect(connector.calls.length).toBe(before + 1)
      expect(connector.calls.at(-1)?.body).toMatchObject({ tool: 'refund', caseId, params: { amount: 30 } })

      // Everything is audited with the whole chain, the grant and the scope that allowed it.
      const entries = (await audit()).filter((e) => e.caseId === caseId || e.data.grantId === g.id)
      const byType = (type: string) => entries.find((e) => e.type === type)
      expect(byType('grant.created')?.data).toMatchObject({ grantId: g.id, customerId: customer, scopes: ALL })
      expect(byType('delegate.token_issued')?.data).toMatchObject({
        grantId: g.id,
        chain: ['acme'],
        customerId: customer,
      })
      expect(byType('case.opened')?.actor).toMatchObject({
        kind: 'delegate',
        id: 'acme',
        delegation: { customer, chain: ['acme'], grant: g.id, scope: 'case:open' },
      })
      expect(byType('case.read')?.actor?.delegation).toMatchObject({ scope: 'case:read' })
      expect(byType('action.decided')?.actor?.delegation).toMatchObject({ grant: g.id, scope: 'refund:request' })
      expect(byType('confirmation.requested')?.data).toMatchObject({ confirmationId: cnf, requester: 'acme' })
      expect(byType('confirmation.decided')?.data).toMatchObject({ state: 'confirmed' })
      expect(byType('confirmation.decided')?.actor).toMatchObject({ kind: 'service' })
      expect(byType('action.executed')).toBeDefined()
      expect(JSON.stringify(entries)).not.toContain(tok)

      // The decision recorded the delegate's facts, for replay.
      const decision = (await t.app.store.listDecisions(caseId)).find((d) => d.kind === 'action')
      expect((decision!.data.facts as Json).actor).toMatchObject({
        kind: 'delegate',
        id: 'acme',
        chain: ['acme'],
        scopes: ['case:open', 'case:read', 'refund:request'],
        grant: { id: g.id, depth: 1 },
      })
    })

    it('publishes confirmation.requested as a CloudEvent', async () => {
      const d = await delegatedCase()
      const ctl = new AbortController()
      const after = (await t.app.store.auditSize()) - 1
      const res = await fetch(`${base}/v1/events?types=confirmation.requested&after=${after}`, {
        headers: { authorization: `Bearer ${t.keys.admin}` },
        signal: ctl.signal,
      })
      expect(res.status).toBe(200)
      const asked = await refund(d.caseId, d.token, 25)
      const reader = res.body!.getReader()
      let text = ''
      const deadline = Date.now() + 10_000
      while (!text.includes(asked.body.confirmation.id) && Date.now() < deadline) {
        const { value, done } = await reader.read()
        if (done) break
        text += Buffer.from(value).toString()
      }
      ctl.abort()
      const block = text.split('\n\n').find((b) => b.includes(asked.body.confirmation.id))
      expect(block).toMatch(/^event: dev\.baton\.confirmation\.requested$/m)
      const event = JSON.parse(/^data: (.*)$/m.exec(block!)![1]!)
      expect(event).toMatchObject({
        type: 'dev.baton.confirmation.requested',
        subject: d.caseId,
        data: { confirmationId: asked.body.confirmation.id, customerId: d.customer, tool: 'refund' },
      })
    })

    it('routes a case a delegate opens about an account change to a person (actor.kind in routing rules)', async () => {
      const customer = customerId()
      const g = await grant(customer, { delegate: 'acme', scopes: ['case:open'] })
      const tok = await exchange('acme', g.id)
      const r = await call('POST', '/v1/cases', tok, {
        customer,
        channel: 'api',
        message: { text: 'Please change the email on my account to new@example.com' },
      })
      expect(r.status).toBe(201)
      expect(r.body.handler).toEqual({ kind: 'operator', queue: 'accounts' })
      expect(r.body.decision.rules).toEqual(['delegate-account-change'])
      expect(r.body.decision.trigger).toBe('account_change')
      // the same message from the helpdesk is drafted by the assistant for accounts
      const h = await call('POST', '/v1/cases', t.keys.service, {
        customer,
        channel: 'chat',
        message: { text: 'Please change the email on my account to new@example.com' },
      })
      expect(h.body.handler).toMatchObject({ kind: 'hybrid', queue: 'accounts' })
    })

    it('refuses what a delegate may not claim: another customer, customer attributes, signals, risk', async () => {
      const d = await delegatedCase()
      const other = await call('POST', '/v1/cases', d.token, {
        customer: customerId(),
        channel: 'api',
        message: { text: 'where is my order?' },
      })
      expect(other.status).toBe(403)
      expect(other.body.code).toBe('CREDENTIAL_SCOPE')
      const tier = await call('POST', '/v1/cases', d.token, {
        customer: { id: d.customer, tier: 'enterprise', verified: true },
        channel: 'api',
        message: { text: 'where is my order?' },
      })
      expect(tier.status).toBe(400)
      expect(tier.body.errors[0].field).toBe('customer')
      const signals = await call('POST', `/v1/cases/${d.caseId}/messages`, d.token, {
        message: { text: 'refund please' },
        signals: { intent: 'order_status', intent_confidence: 1 },
      })
      expect(signals.status).toBe(400)
      expect(signals.body.errors[0].field).toBe('signals')
      const risk = await call('POST', `/v1/cases/${d.caseId}/actions`, d.token, {
        tool: 'order_status',
        params: { order_id: 'A-1234' },
        risk: ['fraud'],
      })
      expect(risk.status).toBe(400)
      expect((await refused('VALIDATION_FAILED', 'acme')).length).toBeGreaterThan(0)
    })

    it('refuses a delegate token on every route no scope unlocks, always', async () => {
      const d = await delegatedCase()
      for (const [method, path] of [
        ['GET', '/v1/approvals'],
        ['POST', '/v1/keys'],
        ['GET', '/v1/cases'],
        ['GET', `/v1/cases/${d.caseId}/audit`],
        ['GET', '/v1/delegates'],
        ['GET', `/v1/customers/${d.customer}/grants`],
        ['DELETE', `/v1/customers/${d.customer}/grants/${d.grant.id}`],
        ['POST', `/v1/customers/${d.customer}/grants`],
      ] as const) {
        const r = await call(method, path, d.token, method === 'GET' || method === 'DELETE' ? undefined : {})
        expect(r.status, `${method} ${path}`).toBe(403)
        expect(r.body.code).toBe('FORBIDDEN')
      }
      expect((await refused('FORBIDDEN', 'acme')).length).toBeGreaterThanOrEqual(8)
      expect((await t.app.store.getGrant(d.grant.id))?.state).toBe('active')
    })

    it('delegate confirms its own action: refused, audited, the confirmation stays pending', async () => {
      const d = await delegatedCase()
      const asked = await refund(d.caseId, d.token, 20)
      const cnf = asked.body.confirmation.id as string
      const before = connector.calls.length
      for (const path of [`/v1/confirmations/${cnf}`, `/v1/confirmations/${cnf}`]) {
        const r = await call('POST', path, d.token, {
          customer: d.customer,
          decision: 'confirm',
          params: { order_id: 'A-1234', amount: 20, currency: 'EUR' },
        })
        expect(r.status).toBe(403)
        expect(r.body.code).toBe('FORBIDDEN')
      }
      expect((await call('GET', `/v1/confirmations/${cnf}`, d.token)).status).toBe(403)
      // an operator is not the customer either
      const op = await call('POST', `/v1/confirmations/${cnf}`, billing, { customer: d.customer, decision: 'confirm' })
      expect(op.status).toBe(403)
      expect((await call('GET', `/v1/confirmations/${cnf}`, t.keys.service)).body.state).toBe('pending')
      expect(connector.calls.length).toBe(before)
      const refusals = await refused('FORBIDDEN', 'acme')
      expect(refusals.some((e) => e.data.route === 'POST /v1/confirmations/:id' && e.data.target === cnf)).toBe(true)
      expect(refusals.find((e) => e.data.target === cnf)?.actor?.delegation).toMatchObject({ grant: d.grant.id })
    })

    it('delegate approves via the operator endpoint: refused for any approval, always', async () => {
      // an approval the assistant asked for (a medium refund needs a billing approver)
      const opened = await call('POST', '/v1/cases', t.keys.service, {
        customer: customerId(),
        channel: 'chat',
        message: { text: 'Hi, where is my order? It is late.' },
      })
      expect(opened.body.handler.kind).toBe('agent')
      const agentToken = await token({
        grant_type: 'client_credentials',
        client_assertion_type: ASSERTION_TYPE,
        client_assertion: await signAssertion(agentKey.privateKey),
        case_id: opened.body.id,
      })
      const big = await call('POST', `/v1/cases/${opened.body.id}/actions`, agentToken.body.access_token, {
        tool: 'refund',
        params: { order_id: 'A-9', amount: 450, currency: 'EUR' },
      })
      expect(big.status).toBe(202)
      const approval = big.body.approval.id as string
      const d = await delegatedCase()
      for (const path of [`/v1/approvals/${approval}/decision`, `/v1/approvals/${approval}/execute`]) {
        const r = await call('POST', path, d.token, { decision: 'approve', reason: 'the customer wants it' })
        expect(r.status, path).toBe(403)
        expect(r.body.code).toBe('FORBIDDEN')
      }
      expect((await call('GET', `/v1/approvals/${approval}`, billing)).body.state).toBe('pending')
      expect((await refused('FORBIDDEN', 'acme')).some((e) => e.data.target === approval)).toBe(true)
    })

    it('scope widening in exchange: refused with invalid_scope, audited, nothing issued', async () => {
      const customer = customerId()
      const g = await grant(customer, { delegate: 'acme', scopes: ['case:open', 'case:read'] })
      const n = await issuedCount()
      const r = await exchangeRaw('acme', g.id, GRANT_TYPE, 'case:open refund:request')
      expect(r.status).toBe(400)
      expect(r.body).toMatchObject({ error: 'invalid_scope', code: 'SCOPE_NOT_GRANTED' })
      expect(r.body.error_description).toMatch(/refund:request is not within grant/)
      expect(await issuedCount()).toBe(n)
      expect((await refused('SCOPE_NOT_GRANTED', 'acme')).some((e) => e.data.route === 'POST /v1/oauth/token')).toBe(
        true,
      )
      // and a token of a narrower exchange cannot widen itself later
      const narrow = await exchange('acme', g.id, GRANT_TYPE, 'case:open')
      const d = await call('POST', '/v1/cases', narrow, { customer, channel: 'api', message: { text: 'hi' } })
      expect(d.status).toBe(201)
      expect((await call('GET', `/v1/cases/${d.body.id}`, narrow)).body.code).toBe('SCOPE_NOT_GRANTED')
    })

    it('sub-delegation widening scopes or limits: scopes refused; a looser limit still gets the tighter one above it', async () => {
      const d = await delegatedCase(['case:read', 'order:status', 'refund:request'], {
        may_subdelegate: true,
        limits: { 'refund:request': 'params.amount <= 20' },
      })
      const wider = await call('POST', `/v1/grants/${d.grant.id}/subgrants`, d.token, {
        delegate: 'courier',
        scopes: ['refund:request', 'case:open'],
        expires_at: d.grant.expiresAt,
      })
      expect(wider.status).toBe(403)
      expect(wider.body.code).toBe('SCOPE_NOT_GRANTED')
      const outliving = await call('POST', `/v1/grants/${d.grant.id}/subgrants`, d.token, {
        delegate: 'courier',
        scopes: ['refund:request'],
        expires_at: new Date(Date.now() + 2 * 3600_000).toISOString(),
      })
      expect(outliving.status).toBe(400)
      expect(outliving.body.errors[0].field).toBe('expires_at')
      const sub = await call('POST', `/v1/grants/${d.grant.id}/subgrants`, d.token, {
        delegate: 'courier',
        scopes: ['refund:request', 'case:read'],
        expires_at: d.grant.expiresAt,
        limits: { 'refund:request': 'params.amount <= 100' },
      })
      expect(sub.status, JSON.stringify(sub.body)).toBe(201)
      expect(sub.body).toMatchObject({ parentId: d.grant.id, depth: 2, grantedBy: { kind: 'delegate', id: 'acme' } })
      // the courier reaches it through acme's token (RFC 8693: the upstream token as subject)
      const courier = await exchangeRaw('courier', d.token, ACCESS_TYPE)
      expect(courier.status, JSON.stringify(courier.body)).toBe(200)
      expect(decodeJwt(courier.body.access_token)).toMatchObject({
        sub: d.customer,
        client_id: 'courier',
        act: { sub: 'courier', act: { sub: 'acme' } },
        baton_grant: sub.body.id,
      })
      const over = await refund(d.caseId, courier.body.access_token, 40)
      expect(over.status).toBe(403)
      expect(over.body.code).toBe('LIMIT_EXCEEDED')
      expect(over.body.detail).toMatch(new RegExp(`params.amount <= 20.*grant ${d.grant.id}`))
      const within = await refund(d.caseId, courier.body.access_token, 15)
      expect(within.status).toBe(202)
      expect(within.body.outcome).toBe('confirm')
      const decided = (await audit()).find(
        (e) => e.type === 'action.decided' && e.data.actionId === within.body.actionId,
      )
      expect(decided?.actor?.delegation).toMatchObject({
        chain: ['acme', 'courier'],
        grants: [d.grant.id, sub.body.id],
      })
    })

    it('sub-delegation where the grant forbids it: refused at the grant and at the exchange', async () => {
      const d = await delegatedCase(['case:read', 'order:status'])
      const r = await call('POST', `/v1/grants/${d.grant.id}/subgrants`, d.token, {
        delegate: 'courier',
        scopes: ['order:status'],
        expires_at: d.grant.expiresAt,
      })
      expect(r.status).toBe(403)
      expect(r.body.code).toBe('SUBDELEGATION_FORBIDDEN')
      const n = await issuedCount()
      const x = await exchangeRaw('courier', d.token, ACCESS_TYPE)
      expect(x.status).toBe(400)
      expect(x.body).toMatchObject({ error: 'invalid_request', code: 'SUBDELEGATION_FORBIDDEN' })
      expect(await issuedCount()).toBe(n)
      expect((await t.app.store.listGrants({ parentId: d.grant.id, limit: 10 })).length).toBe(0)
    })

    it('chain deeper than max_chain: refused at the grant and at the exchange', async () => {
      const d = await delegatedCase(['case:read', 'order:status'], { may_subdelegate: true })
      const sub = await call('POST', `/v1/grants/${d.grant.id}/subgrants`, d.token, {
        delegate: 'courier',
        scopes: ['order:status'],
        expires_at: d.grant.expiresAt,
        may_subdelegate: true,
      })
      expect(sub.status).toBe(201)
      const courier = await exchange('courier', d.token, ACCESS_TYPE)
      const deeper = await call('POST', `/v1/grants/${sub.body.id}/subgrants`, courier, {
        delegate: 'third',
        scopes: ['order:status'],
        expires_at: sub.body.expiresAt,
      })
      expect(deeper.status).toBe(403)
      expect(deeper.body.code).toBe('CHAIN_TOO_DEEP')
      const x = await exchangeRaw('third', courier, ACCESS_TYPE)
      expect(x.status).toBe(400)
      expect(x.body).toMatchObject({ error: 'invalid_request', code: 'CHAIN_TOO_DEEP' })
      // nor by writing a deeper grant by hand into the store: every request re-checks the depth
      const now = new Date().toISOString()
      await t.app.store.createGrant(
        {
          ...sub.body,
          id: `gr_forged_${randomUUID().slice(0, 6)}`,
          delegateId: 'third',
          parentId: sub.body.id,
          depth: 3,
          createdAt: now,
        },
        [],
      )
      const forged = (await t.app.store.listGrants({ parentId: sub.body.id, limit: 1 }))[0]!
      const y = await exchangeRaw('third', forged.id)
      expect(y.status).toBe(400)
      expect(y.body.code).toBe('CHAIN_TOO_DEEP')
    })

    it('revoked middle hop: the tail’s token dies at once; a suspended delegate above it too', async () => {
      const d = await delegatedCase(['case:read', 'order:status'], { may_subdelegate: true })
      const sub = await call('POST', `/v1/grants/${d.grant.id}/subgrants`, d.token, {
        delegate: 'courier',
        scopes: ['case:read', 'order:status'],
        expires_at: d.grant.expiresAt,
      })
      const courier = await exchange('courier', sub.body.id)
      expect((await call('GET', `/v1/cases/${d.caseId}`, courier)).status).toBe(200)
      const lookup = await call('POST', `/v1/cases/${d.caseId}/actions`, courier, {
        tool: 'order_status',
        params: { order_id: 'A-1234' },
      })
      expect(lookup.status, JSON.stringify(lookup.body)).toBe(200)

      // suspending the middle delegate kills the tail's token at once, and reactivating restores it
      await call('POST', '/v1/delegates/acme/suspend', t.keys.admin, { reason: 'vendor incident' })
      const suspended = await call('GET', `/v1/cases/${d.caseId}`, courier)
      expect(suspended.status).toBe(403)
      expect(suspended.body.code).toBe('DELEGATE_INACTIVE')
      await call('POST', '/v1/delegates/acme/activate', t.keys.admin, { reason: 'fixed' })
      expect((await call('GET', `/v1/cases/${d.caseId}`, courier)).status).toBe(200)

      // the customer revokes acme's grant: courier's token (two hops below) is refused at the next request
      const revoked = await call(
        'DELETE',
        `/v1/customers/${d.customer}/grants/${d.grant.id}?reason=lost%20trust`,
        t.keys.service,
      )
      expect(revoked.status).toBe(200)
      expect(revoked.body.revoked).toEqual([d.grant.id, sub.body.id])
      for (const r of [
        await call('GET', `/v1/cases/${d.caseId}`, courier),
        await call('POST', `/v1/cases/${d.caseId}/actions`, courier, {
          tool: 'order_status',
          params: { order_id: 'A-1' },
        }),
        await call('GET', `/v1/cases/${d.caseId}`, d.token),
      ]) {
        expect(r.status).toBe(403)
        expect(r.body.code).toBe('GRANT_REVOKED')
      }
      expect((await call('POST', '/v1/oauth/introspect', t.keys.service, { token: courier })).body).toEqual({
        active: false,
      })
      const x = await exchangeRaw('courier', sub.body.id)
      expect(x.body).toMatchObject({ error: 'invalid_request', code: 'GRANT_REVOKED' })
      const entries = (await audit()).filter((e) => e.type === 'grant.revoked' && e.data.customerId === d.customer)
      expect(entries.map((e) => [e.data.grantId, e.data.cause])).toEqual([
        [d.grant.id, 'revoked'],
        [sub.body.id, 'parent_revoked'],
      ])
      expect((await refused('GRANT_REVOKED', 'courier')).length).toBeGreaterThan(0)
    })

    it('revoked grant while a confirmation is pending: the confirmation is refused and nothing executes', async () => {
      const d = await delegatedCase()
      const asked = await refund(d.caseId, d.token, 30)
      const cnf = asked.body.confirmation.id as string
      await call('DELETE', `/v1/customers/${d.customer}/grants/${d.grant.id}`, t.keys.service)
      const before = connector.calls.length
      const r = await call('POST', `/v1/confirmations/${cnf}`, t.keys.service, {
        customer: d.customer,
        decision: 'confirm',
        params: { order_id: 'A-1234', amount: 30, currency: 'EUR' },
      })
      expect(r.status).toBe(403)
      expect(r.body.code).toBe('GRANT_REVOKED')
      expect(connector.calls.length).toBe(before)
      expect((await call('GET', `/v1/confirmations/${cnf}`, t.keys.service)).body.state).toBe('superseded')
      expect((await t.app.store.getAction(asked.body.actionId))?.state).toBe('rejected')
    })

    it("delegate reads another customer's case: refused for reading, writing and tools", async () => {
      const d = await delegatedCase()
      const theirs = await call('POST', '/v1/cases', t.keys.service, {
        customer: customerId(),
        channel: 'chat',
        message: { text: 'Where is my order #44821?' },
      })
      const id = theirs.body.id as string
      for (const r of [
        await call('GET', `/v1/cases/${id}`, d.token),
        await call('POST', `/v1/cases/${id}/messages`, d.token, { message: { text: 'refund me' } }),
        await call('POST', `/v1/cases/${id}/actions`, d.token, { tool: 'order_status', params: { order_id: 'A-1' } }),
      ]) {
        expect(r.status).toBe(403)
        expect(r.body.code).toBe('CREDENTIAL_SCOPE')
      }
      const refusals = (await refused('CREDENTIAL_SCOPE', 'acme')).filter((e) => e.caseId === id)
      expect(refusals.length).toBe(3)
      expect((await t.app.store.listCaseEvents(id)).filter((e) => e.type === 'message.received')).toHaveLength(1)
    })

    it('parameter limit exceeded (refund:request 51 with a limit of 50): refused, nothing recorded', async () => {
      const d = await delegatedCase()
      const decided = async () => (await t.app.store.listDecisions(d.caseId)).filter((x) => x.kind === 'action').length
      const n = await decided()
      const r = await refund(d.caseId, d.token, 51)
      expect(r.status).toBe(403)
      expect(r.body.code).toBe('LIMIT_EXCEEDED')
      expect(r.body.detail).toMatch(/'params.amount <= 50' \(examples\/shop\/delegation.yaml:\d+:\d+\)/)
      expect(await decided()).toBe(n)
      expect((await refused('LIMIT_EXCEEDED', 'acme')).some((e) => e.caseId === d.caseId)).toBe(true)
      expect((await refund(d.caseId, d.token, 50)).status).toBe(202)
    })

    it('confirmation replayed: the second answer is refused and the refund executes once', async () => {
      const d = await delegatedCase()
      const asked = await refund(d.caseId, d.token, 40)
      const cnf = asked.body.confirmation.id as string
      const before = connector.calls.length
      const body = {
        customer: d.customer,
        decision: 'confirm',
        params: { order_id: 'A-1234', amount: 40, currency: 'EUR' },
      }
      const first = await call('POST', `/v1/confirmations/${cnf}`, t.keys.service, body)
      expect(first.status).toBe(200)
      const second = await call('POST', `/v1/confirmations/${cnf}`, t.keys.service, body)
      expect(second.status).toBe(409)
      expect(second.body.code).toBe('CONFIRMATION_NOT_PENDING')
      const decline = await call('POST', `/v1/confirmations/${cnf}`, t.keys.service, { ...body, decision: 'decline' })
      expect(decline.status).toBe(409)
      expect(connector.calls.length).toBe(before + 1)
      expect(
        (await audit()).filter((e) => e.type === 'confirmation.refused' && e.data.confirmationId === cnf),
      ).toHaveLength(2)
    })

    it('confirmation of changed parameters: refused, still pending; another customer cannot confirm it either', async () => {
      const d = await delegatedCase()
      const asked = await refund(d.caseId, d.token, 30)
      const cnf = asked.body.confirmation.id as string
      const before = connector.calls.length
      const changed = await call('POST', `/v1/confirmations/${cnf}`, t.keys.service, {
        customer: d.customer,
        decision: 'confirm',
        params: { order_id: 'A-1234', amount: 31, currency: 'EUR' },
      })
      expect(changed.status).toBe(409)
      expect(changed.body.code).toBe('PARAMS_MISMATCH')
      const missing = await call('POST', `/v1/confirmations/${cnf}`, t.keys.service, {
        customer: d.customer,
        decision: 'confirm',
      })
      expect(missing.status).toBe(400)
      const someoneElse = await call('POST', `/v1/confirmations/${cnf}`, t.keys.service, {
        customer: customerId(),
        decision: 'confirm',
        params: { order_id: 'A-1234', amount: 30, currency: 'EUR' },
      })
      expect(someoneElse.status).toBe(403)
      expect(someoneElse.body.code).toBe('CONFIRMER_NOT_ELIGIBLE')
      expect(connector.calls.length).toBe(before)
      expect((await call('GET', `/v1/confirmations/${cnf}`, t.keys.service)).body.state).toBe('pending')
      const declined = await call('POST', `/v1/confirmations/${cnf}`, t.keys.service, {
        customer: d.customer,
        decision: 'decline',
        reason: 'changed my mind; my card is 4111 1111 1111 1111 and password hunter2',
      })
      expect(declined.status).toBe(200)
      expect(declined.body.action.state).toBe('rejected')
    })

    it('refuses each bad token exchange with its RFC 8693 error and reason, audited, issuing nothing', async () => {
      const customer = customerId()
      const g = await grant(customer, { delegate: 'acme', scopes: ['case:open', 'case:read'] })
      const courierGrant = await grant(customerId(), { delegate: 'courier', scopes: ['case:open'] })
      const revokedGrant = await grant(customer, { delegate: 'acme', scopes: ['case:open'] })
      await call('DELETE', `/v1/customers/${customer}/grants/${revokedGrant.id}`, t.keys.service)
      const shortGrant = await grant(customer, {
        delegate: 'acme',
        scopes: ['case:open'],
        expires_at: new Date(Date.now() + 1500).toISOString(),
      })
      const n = await issuedCount()
      const publicX = (await exportJWK(keys.acme!.publicKey)).x as string
      const used = await assertion('acme')
      expect((await exchangeRaw('acme', g.id, GRANT_TYPE, undefined, used)).status).toBe(200)
      const opened = await call('POST', '/v1/cases', t.keys.service, {
        customer: customerId(),
        channel: 'chat',
        message: { text: 'Where is my order #44821?' },
      })
      const agentToken = (
        await token({
          grant_type: 'client_credentials',
          client_assertion_type: ASSERTION_TYPE,
          client_assertion: await signAssertion(agentKey.privateKey),
          case_id: opened.body.id,
        })
      ).body.access_token as string
      await new Promise((r) => setTimeout(r, 1600))
      const cases: [string, Promise<{ status: number; body: Json }>, string, string][] = [
        ['subject/actor mismatch', exchangeRaw('courier', g.id), 'invalid_request', 'DELEGATION_MISMATCH'],
        ["another customer's grant", exchangeRaw('acme', courierGrant.id), 'invalid_request', 'DELEGATION_MISMATCH'],
        [
          'a widened scope',
          exchangeRaw('acme', g.id, GRANT_TYPE, 'case:open order:status'),
          'invalid_scope',
          'SCOPE_NOT_GRANTED',
        ],
        ['an unknown grant', exchangeRaw('acme', 'gr_nope'), 'invalid_request', 'GRANT_NOT_FOUND'],
        ['a revoked grant', exchangeRaw('acme', revokedGrant.id), 'invalid_request', 'GRANT_REVOKED'],
        ['an expired grant', exchangeRaw('acme', shortGrant.id), 'invalid_request', 'GRANT_EXPIRED'],
        [
          'a replayed assertion',
          exchangeRaw('acme', g.id, GRANT_TYPE, undefined, used),
          'invalid_request',
          'CREDENTIAL_INVALID',
        ],
        [
          'alg none',
          exchangeRaw(
            'acme',
            g.id,
            GRANT_TYPE,
            undefined,
            new UnsecuredJWT({})
              .setIssuer('acme')
              .setSubject('acme')
              .setAudience('urn:baton')
              .setIssuedAt()
              .setExpirationTime('2m')
              .setJti(randomUUID())
              .encode(),
          ),
          'invalid_request',
          'CREDENTIAL_INVALID',
        ],
        [
          'HS256 with the public key (algorithm confusion)',
          exchangeRaw(
            'acme',
            g.id,
            GRANT_TYPE,
            undefined,
            await new SignJWT({})
              .setProtectedHeader({ alg: 'HS256' })
              .setIssuer('acme')
              .setSubject('acme')
              .setAudience('urn:baton')
              .setIssuedAt()
              .setExpirationTime('2m')
              .setJti(randomUUID())
              .sign(new TextEncoder().encode(publicX)),
          ),
          'invalid_request',
          'CREDENTIAL_INVALID',
        ],
        [
          'a wrong audience',
          exchangeRaw('acme', g.id, GRANT_TYPE, undefined, await assertion('acme', 'https://evil.example')),
          'invalid_request',
          'CREDENTIAL_INVALID',
        ],
        [
          "another delegate's key",
          exchangeRaw('acme', g.id, GRANT_TYPE, undefined, await signAssertion(keys.courier!.privateKey, 'acme')),
          'invalid_request',
          'CREDENTIAL_INVALID',
        ],
        [
          "an agent's case token as subject",
          exchangeRaw('courier', agentToken, ACCESS_TYPE),
          'invalid_request',
          'CREDENTIAL_INVALID',
        ],
        [
          'a missing actor token type',
          token({
            grant_type: EXCHANGE,
            subject_token: g.id,
            subject_token_type: GRANT_TYPE,
            actor_token: await assertion('acme'),
          }),
          'invalid_request',
          'VALIDATION_FAILED',
        ],
      ]
      for (const [name, pending, error, code] of cases) {
        const r = await pending
        expect(r.status, name).toBe(400)
        expect(r.body, name).toMatchObject({ error, code })
        expect(typeof r.body.detail, name).toBe('string')
      }
      // a suspended delegate
      await call('POST', '/v1/delegates/third/suspend', t.keys.admin, { reason: 'test' })
      const thirdGrant = await t.app.store.listGrants({ delegateId: 'third', limit: 1 })
      const suspended = await exchangeRaw('third', thirdGrant[0]?.id ?? 'gr_none')
      expect(suspended.status).toBe(400)
      expect(suspended.body).toMatchObject({ error: 'invalid_request', code: 'DELEGATE_INACTIVE' })
      await call('POST', '/v1/delegates/third/activate', t.keys.admin, { reason: 'test done' })
      expect(await issuedCount()).toBe(n + 1)
      for (const code of [
        'DELEGATION_MISMATCH',
        'GRANT_REVOKED',
        'GRANT_EXPIRED',
        'CREDENTIAL_INVALID',
        'DELEGATE_INACTIVE',
      ]) {
        expect(
          (await refused(code)).some((e) => e.data.route === 'POST /v1/oauth/token'),
          code,
        ).toBe(true)
      }
      // a delegate token of one customer on another customer's case is refused (see the reading test), and an agent
      // token is not a delegate token anywhere
      const agentOnGrant = await call('POST', `/v1/grants/${g.id}/subgrants`, agentToken, {
        delegate: 'courier',
        scopes: ['case:open'],
        expires_at: g.expiresAt,
      })
      expect(agentOnGrant.status).toBe(403)
    })

    it('describes every delegation route in the OpenAPI document', async () => {
      const doc = (await (await fetch(`${base}/openapi.json`)).json()) as Json
      const routes: [string, string][] = [
        ['get', '/v1/delegation/scopes'],
        ['post', '/v1/delegates'],
        ['get', '/v1/delegates'],
        ['get', '/v1/delegates/{id}'],
        ['post', '/v1/delegates/{id}/suspend'],
        ['post', '/v1/delegates/{id}/activate'],
        ['post', '/v1/delegates/{id}/retire'],
        ['get', '/v1/delegates/{id}/grants'],
        ['post', '/v1/customers/{id}/grants'],
        ['get', '/v1/customers/{id}/grants'],
        ['get', '/v1/customers/{id}/grants/{grant}'],
        ['delete', '/v1/customers/{id}/grants/{grant}'],
        ['post', '/v1/grants/{id}/subgrants'],
        ['get', '/v1/confirmations'],
        ['get', '/v1/confirmations/{id}'],
        ['post', '/v1/confirmations/{id}'],
      ]
      for (const [method, path] of routes) {
        const op = doc.paths[path]?.[method]
        expect(op, `${method} ${path}`).toBeDefined()
        expect(op.summary.length, `${method} ${path}`).toBeGreaterThan(10)
        expect(op.tags).toEqual(['delegation'])
      }
      expect(doc.paths['/v1/grants/{id}/subgrants'].post.security).toEqual([{ delegateToken: [] }])
      expect(doc.paths['/v1/cases/{id}/actions'].post.security).toContainEqual({ delegateToken: [] })
      expect(doc.components.securitySchemes.delegateToken.bearerFormat).toBe('JWT')
      const token = doc.paths['/v1/oauth/token'].post
      expect(token.summary).toMatch(/token-exchange \(RFC 8693\)/)
      const form = token.requestBody.content['application/x-www-form-urlencoded'].schema.properties
      for (const k of ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type']) {
        expect(form[k]).toBeDefined()
      }
      const grant = doc.paths['/v1/customers/{id}/grants'].post.requestBody.content['application/json'].schema
      expect(grant.required).toEqual(['delegate', 'scopes', 'expires_at'])
    })

    it('shows in the console who a case is for and by which delegate, and the grants per customer and per delegate', async () => {
      const d = await delegatedCase()
      await refund(d.caseId, d.token, 12)
      const cookie = await signIn(base, t.keys.operator)
      const page = async (path: string) => {
        const res = await fetch(`${base}${path}`, { headers: { cookie, accept: 'text/html' } })
        expect(res.status, path).toBe(200)
        return res.text()
      }
      const casePage = await page(`/console/cases/${d.caseId}`)
      const line = new RegExp(
        `for customer <strong>${d.customer}</strong>, by delegate <strong class="delegate">acme</strong> \\(grant <a[^>]*>${d.grant.id}</a>\\)`,
      )
      expect(casePage).toMatch(line)
      expect(casePage).toMatch(/id="confirmations"[\s\S]*refund[\s\S]*pending/)
      const byCustomer = await page(`/console/delegates?customer=${d.customer}`)
      expect(byCustomer).toContain(`data-grant="${d.grant.id}" data-state="active"`)
      expect(byCustomer).toContain(`Grants of customer ${d.customer}`)
      const byDelegate = await page('/console/delegates?delegate=acme')
      expect(byDelegate).toContain(`data-grant="${d.grant.id}"`)
      expect(byDelegate).toMatch(/data-delegate="courier"/)
      await call('DELETE', `/v1/customers/${d.customer}/grants/${d.grant.id}`, t.keys.service)
      expect(await page(`/console/delegates?customer=${d.customer}`)).toContain(
        `data-grant="${d.grant.id}" data-state="revoked"`,
      )
      // a delegate token is no console session
      const asDelegate = await fetch(`${base}/console/delegates`, {
        redirect: 'manual',
        headers: { authorization: `Bearer ${d.token}`, accept: 'text/html' },
      })
      expect(asDelegate.status).toBe(303)
    })

    it('registers delegates with a checked key, refuses bad grants naming the field, and lists grants per customer and delegate', async () => {
      const bad = await call('POST', '/v1/delegates', t.keys.admin, {
        id: 'bad',
        name: 'x',
        vendor: 'x',
        contact: 'x@y.z',
        jwk: { kty: 'RSA', crv: 'P-256', x: 'abc' },
      })
      expect(bad.status).toBe(400)
      expect(bad.body.errors[0].field).toBe('jwk')
      expect((await call('POST', '/v1/delegates', t.keys.service, {})).status).toBe(403)
      const customer = customerId()
      const cases = [
        [{ delegate: 'acme', scopes: ['refund:approve'] }, 'scopes[0]'],
        [
          {
            delegate: 'acme',
            scopes: ['refund:request'],
            expires_at: new Date(Date.now() + 40 * 86_400_000).toISOString(),
          },
          'expires_at',
        ],
        [{ delegate: 'acme', scopes: ['case:open'], limits: { 'case:open': 'true' } }, 'limits.case:open'],
        [
          { delegate: 'acme', scopes: ['refund:request'], limits: { 'refund:request': 'params.amount <' } },
          'limits.refund:request',
        ],
        [{ delegate: 'acme', scopes: ['case:open'], expires_at: 'tomorrow' }, 'expires_at'],
      ] as const
      for (const [body, field] of cases) {
        const r = await call('POST', `/v1/customers/${customer}/grants`, t.keys.service, {
          expires_at: inAnHour(),
          ...body,
        })
        expect(r.status, field).toBe(400)
        expect(
          r.body.errors.map((e: { field: string }) => e.field),
          field,
        ).toContain(field)
      }
      const ghost = await call('POST', `/v1/customers/${customer}/grants`, t.keys.service, {
        delegate: 'ghost',
        scopes: ['case:open'],
        expires_at: inAnHour(),
      })
      expect(ghost.status).toBe(404)
      // grants are the customer's consent, given through the helpdesk: not by an admin or an operator key
      for (const k of [t.keys.admin, billing]) {
        const r = await call('POST', `/v1/customers/${customer}/grants`, k, {
          delegate: 'acme',
          scopes: ['case:open'],
          expires_at: inAnHour(),
        })
        expect(r.status).toBe(403)
      }
      expect(await t.app.store.listGrants({ customerId: customer, limit: 10 })).toEqual([])
      const g = await grant(customer, {
        delegate: 'courier',
        scopes: ['case:open'],
        note: `token ${SECRET} in it`,
      })
      expect(g.note).not.toContain(SECRET)
      expect(g.note).toMatch(/\[REDACTED:/)
      expect(
        (await call('GET', `/v1/customers/${customer}/grants`, t.keys.service)).body.items.map(
          (x: { id: string }) => x.id,
        ),
      ).toEqual([g.id])
      expect(
        (await call('GET', '/v1/delegates/courier/grants?active=true', t.keys.operator)).body.items.some(
          (x: { id: string }) => x.id === g.id,
        ),
      ).toBe(true)
      const scopes = await call('GET', '/v1/delegation/scopes', t.keys.service)
      expect(scopes.body.maxChain).toBe(2)
      expect(scopes.body.items.find((x: { name: string }) => x.name === 'refund:request')).toMatchObject({
        tools: ['refund'],
        limits: 'params.amount <= 50',
      })
      expect(JSON.stringify(await audit())).not.toContain(SECRET)
    })
  })
}

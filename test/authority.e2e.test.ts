import { createHash, createHmac, randomUUID } from 'node:crypto'
import { type CryptoKey, createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { canonicalDigest } from '../src/approvals/approval.js'
import { APPROVAL_EXPIRY_TIMER } from '../src/store/authority-store.js'
import { bearer, startTestApp, type TestApp } from './support/app.js'
import { signAssertion } from './support/assertion.js'
import { startConnector } from './support/connector.js'
import { pgAvailable } from './support/pg.js'

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
/** An audit entry as JSON; the fields tests read. */
interface AuditJson {
  readonly type: string
  readonly caseId?: string
  readonly actor: { readonly kind: string; readonly id: string }
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary members of entry data
  readonly data: Record<string, any>
}
const orderIdOf = (c: { body: Record<string, unknown> }) =>
  (c.body.params as { order_id?: string } | undefined)?.order_id

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`agent authority over HTTP on ${engine}`, () => {
    let t: TestApp
    let connector: Awaited<ReturnType<typeof startConnector>>
    let agentKey: { privateKey: CryptoKey; publicKey: CryptoKey }
    const ops: Record<string, string> = {}

    beforeAll(async () => {
      connector = await startConnector()
      process.env.BATON_SHOP_CONNECTOR_URL = connector.url
      t = await startTestApp({ engine })
      agentKey = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
      const jwk = await exportJWK(agentKey.publicKey)
      const r = await t.app.server.inject({
        method: 'POST',
        url: '/v1/agents/shop-assistant/credentials',
        headers: bearer(t.keys.admin),
        payload: { kind: 'public_key', jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x } },
      })
      expect(r.statusCode).toBe(201)
      for (const id of ['ada', 'linus', 'grace']) {
        const k = await t.app.server.inject({
          method: 'POST',
          url: '/v1/keys',
          headers: bearer(t.keys.admin),
          payload: { role: 'operator', name: id, operatorId: id },
        })
        expect(k.statusCode).toBe(201)
        ops[id] = k.json().key
      }
    })
    afterAll(async () => {
      await t?.close()
      await connector?.close()
      delete process.env.BATON_SHOP_CONNECTOR_URL
    })

    const inject = t0()
    function t0() {
      return (method: 'GET' | 'POST', url: string, key: string, payload?: unknown) =>
        t.app.server.inject({
          method,
          url,
          headers: bearer(key),
          ...(payload === undefined ? {} : { payload: payload as object }),
        })
    }

    async function openAgentCase(customer = `cu_${randomUUID().slice(0, 8)}`): Promise<string> {
      const r = await inject('POST', '/v1/cases', t.keys.service, {
        customer,
        channel: 'chat',
        message: { text: 'Hi, where is my order? It is late.' },
      })
      expect(r.statusCode).toBe(201)
      expect(r.json().handler).toEqual({ kind: 'agent', agentId: 'shop-assistant' })
      return r.json().id
    }

    const assertion = (agentId = 'shop-assistant', key = agentKey.privateKey, aud = 'urn:baton') =>
      signAssertion(key, agentId, aud)

    async function tokenRequest(form: Record<string, string>) {
      return t.app.server.inject({
        method: 'POST',
        url: '/v1/oauth/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams(form).toString(),
      })
    }

    async function token(caseId: string, scope?: string): Promise<string> {
      const r = await tokenRequest({
        grant_type: 'client_credentials',
        client_assertion_type: ASSERTION_TYPE,
        client_assertion: await assertion(),
        case_id: caseId,
        ...(scope === undefined ? {} : { scope }),
      })
      expect(r.statusCode, r.body).toBe(200)
      expect(r.json().token_type).toBe('Bearer')
      expect(r.json().expires_in).toBeLessThanOrEqual(300)
      return r.json().access_token
    }

    const act = (caseId: string, tok: string, body: unknown) => inject('POST', `/v1/cases/${caseId}/actions`, tok, body)

    async function auditOf(caseId?: string) {
      const size = await t.app.store.auditSize()
      const all = (await t.app.store.readAudit(0, size)).map((e) => JSON.parse(e.entry) as AuditJson)
      return caseId === undefined ? all : all.filter((e) => e.caseId === caseId)
    }

    async function expectRefusedAndAudited(
      r: { statusCode: number; json: () => { code?: string } },
      status: number,
      code: string,
      caseId?: string,
    ) {
      expect(r.statusCode).toBe(status)
      expect(r.json().code).toBe(code)
      const refused = (await auditOf()).filter((e) => e.type === 'access.refused' && e.data.code === code)
      expect(refused.length).toBeGreaterThan(0)
      if (caseId !== undefined) expect(refused.some((e) => e.caseId === caseId)).toBe(true)
    }

    it('serves the JWKS and the token endpoint issues a short-lived EdDSA access token bound to one case', async () => {
      const caseId = await openAgentCase()
      const tok = await token(caseId)
      const jwks = (await t.app.server.inject({ url: '/.well-known/jwks.json' })).json()
      expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' })
      expect(jwks.keys[0].d).toBeUndefined()
      const { payload, protectedHeader } = await jwtVerify(tok, createLocalJWKSet(jwks), { algorithms: ['EdDSA'] })
      expect(protectedHeader.alg).toBe('EdDSA')
      expect(payload).toMatchObject({ iss: 'urn:baton', sub: 'shop-assistant', case: caseId, kind: 'access' })
      expect(typeof payload.jti).toBe('string')
      expect((payload.exp as number) - (payload.iat as number)).toBeLessThanOrEqual(300)
      const intro = await inject('POST', '/v1/oauth/introspect', t.keys.service, { token: tok })
      expect(intro.json()).toMatchObject({ active: true, sub: 'shop-assistant', case: caseId })
      expect((await auditOf(caseId)).some((e) => e.type === 'credential.issued')).toBe(true)
    })

    it('an agent refunds a small amount: allowed, executed once through the connector with a per-call credential, audited', async () => {
      const caseId = await openAgentCase()
      const tok = await token(caseId)
      const before = connector.calls.length
      const params = { order_id: 'A-100', amount: 20, currency: 'EUR' }
      const r = await act(caseId, tok, { tool: 'refund', params })
      expect(r.statusCode, r.body).toBe(200)
      const body = r.json()
      expect(body).toMatchObject({ outcome: 'allow', state: 'executed', tool: 'refund' })
      expect(body.decision.rules).toEqual(['small-refund'])
      expect(connector.calls.length).toBe(before + 1)
      const call = connector.calls.at(-1)!
      expect(call.url).toBe('/refund')
      expect(call.body).toMatchObject({ tool: 'refund', params, caseId })
      expect(call.headers['idempotency-key']).toBe(body.actionId)
      // The per-call credential: verifiable with the JWKS, for this tool service, case and exact parameters.
      const jwks = (await t.app.server.inject({ url: '/.well-known/jwks.json' })).json()
      const cred = String(call.headers.authorization).slice(7)
      const { payload } = await jwtVerify(cred, createLocalJWKSet(jwks), {
        algorithms: ['EdDSA'],
        audience: `${connector.url}/refund`,
      })
      expect(payload).toMatchObject({ case: caseId, tools: ['refund'], kind: 'call', pd: canonicalDigest(params) })
      const expectedDigest = createHash('sha256')
        .update(JSON.stringify({ ok: true, ref: `ref_${connector.calls.length}`, path: '/refund' }))
        .digest('hex')
      expect(body.result).toEqual({ status: 200, digest: expectedDigest, error: null })
      const audit = await auditOf(caseId)
      const decided = audit.find((e) => e.type === 'action.decided' && e.data.actionId === body.actionId)
      expect(decided).toMatchObject({ actor: { kind: 'agent', id: 'shop-assistant' }, data: { outcome: 'allow' } })
      expect(decided?.data.explanation[0].id).toBe('small-refund')
      const executed = audit.find((e) => e.type === 'action.executed' && e.data.actionId === body.actionId)
      expect(executed?.data).toMatchObject({ status: 200, responseDigest: expectedDigest })
      expect(JSON.stringify(audit)).not.toContain(cred)
      expect(JSON.stringify(audit)).not.toContain(tok)
    })

    it('refuses parameters that fail the tool schema before policy, naming the field', async () => {
      const caseId = await openAgentCase()
      const tok = await token(caseId)
      const r = await act(caseId, tok, { tool: 'refund', params: { order_id: 'A-1', amount: -5, currency: 'XXX' } })
      expect(r.statusCode).toBe(422)
      expect(r.json().code).toBe('PARAMS_INVALID')
      const fields = r.json().errors.map((e: { field: string }) => e.field)
      expect(fields).toContain('params.amount')
      expect(fields).toContain('params.currency')
      expect((await auditOf(caseId)).some((e) => e.type === 'action.decided')).toBe(false)
    })

    it('expires a pending approval by its durable timer, once, and audits it', async () => {
      const caseId = await openAgentCase()
      const tok = await token(caseId)
      const big = await act(caseId, tok, { tool: 'refund', params: { order_id: 'A-9', amount: 450, currency: 'EUR' } })
      expect(big.statusCode).toBe(202)
      const approvalId = big.json().approval.id as string
      // The timer was written with the approval, due at its expiry.
      const timer = await t.app.store.getTimer(APPROVAL_EXPIRY_TIMER, approvalId)
      expect(timer).toMatchObject({ state: 'pending', dueAt: big.json().approval.expiresAt })
      const timers = t.app.services.work.timers
      expect(await timers.pollOnce()).toBe(0)

      // Move the approval's expiry, and its timer, into the past (as if a day went by).
      const past = new Date(Date.now() - 1000).toISOString()
      await sqlOn(t, 'update approvals set expires_at = ? where id = ?', [past, approvalId])
      await sqlOn(t, 'update timers set due_at = ? where kind = ? and key = ?', [
        past,
        APPROVAL_EXPIRY_TIMER,
        approvalId,
      ])
      expect(await timers.pollOnce()).toBe(1)
      expect(await timers.pollOnce()).toBe(0)
      expect((await t.app.store.getApproval(approvalId))?.state).toBe('expired')
      expect((await t.app.store.getTimer(APPROVAL_EXPIRY_TIMER, approvalId))?.state).toBe('fired')
      const expired = (await auditOf(caseId)).filter((e) => e.type === 'approval.expired')
      expect(expired).toHaveLength(1)
      // An operator who would have been eligible can no longer approve it.
      const late = await inject('POST', `/v1/approvals/${approvalId}/decision`, ops.ada!, {
        decision: 'approve',
        reason: 'too late',
      })
      expect(late.statusCode).toBeGreaterThanOrEqual(400)
      expect(late.statusCode).toBeLessThan(500)
    })

    it('a large refund needs approval; a refund on a case with fraud is escalated and the case moves to a human', async () => {
      const caseId = await openAgentCase()
      const tok = await token(caseId)
      const big = await act(caseId, tok, { tool: 'refund', params: { order_id: 'A-2', amount: 400, currency: 'EUR' } })
      expect(big.statusCode).toBe(202)
      expect(big.json()).toMatchObject({ outcome: 'approve', state: 'awaiting_approval' })
      expect(big.json().approval.approverRole).toBe('billing')

      const before = connector.calls.length
      const fraud = await act(caseId, tok, {
        tool: 'refund',
        params: { order_id: 'A-2', amount: 10, currency: 'EUR' },
        risk: ['fraud'],
      })
      expect(fraud.statusCode, fraud.body).toBe(200)
      expect(fraud.json()).toMatchObject({ outcome: 'escalate', state: 'escalated' })
      expect(fraud.json().decision.rules).toEqual(['fraud-freezes-account-and-money'])
      expect(fraud.json().handler).toEqual({ kind: 'operator', queue: 'security' })
      expect(connector.calls.length).toBe(before)
      const got = (await inject('GET', `/v1/cases/${caseId}`, t.keys.operator)).json()
      expect(got.handler).toEqual({ kind: 'operator', queue: 'security' })
      // The agent's authority ended with the escalation: at once, not at expiry.
      const again = await act(caseId, tok, { tool: 'reply', params: { text: 'hello' } })
      await expectRefusedAndAudited(again, 401, 'CREDENTIAL_REVOKED', caseId)
      const intro = await inject('POST', '/v1/oauth/introspect', t.keys.service, { token: tok })
      expect(intro.json()).toEqual({ active: false })
      const audit = await auditOf(caseId)
      expect(audit.map((e) => e.type)).toEqual(expect.arrayContaining(['case.handed_off', 'credential.revoked']))
    })

    it('an agent closes a case within its closure authority; the close ends its credentials', async () => {
      const caseId = await openAgentCase()
      const tok = await token(caseId)
      const r = await act(caseId, tok, { tool: 'close_case', params: { outcome: 'resolved' } })
      expect(r.statusCode, r.body).toBe(200)
      expect(r.json()).toMatchObject({ outcome: 'allow', state: 'executed' })
      expect((await inject('GET', `/v1/cases/${caseId}`, t.keys.operator)).json().state).toBe('closed')
      await expectRefusedAndAudited(
        await act(caseId, tok, { tool: 'reply', params: { text: 'bye' } }),
        401,
        'CREDENTIAL_REVOKED',
        caseId,
      )
      const types = (await auditOf(caseId)).map((e) => e.type)
      expect(types).toEqual(expect.arrayContaining(['case.closed', 'credential.revoked']))
    })

    it('a credential-mode tool hands back a credential scoped to the case, tool and exact parameters', async () => {
      const caseId = await openAgentCase()
      const tok = await token(caseId)
      const params = { order_id: 'A-12345' }
      const r = await act(caseId, tok, { tool: 'order_status', params })
      expect(r.statusCode).toBe(200)
      expect(r.json()).toMatchObject({ outcome: 'allow', state: 'credential_issued' })
      const cred = r.json().credential.token as string
      expect(r.json().credential.audience).toBe(`${connector.url}/orders`)
      const same = await inject('POST', '/v1/oauth/introspect', t.keys.service, { token: cred, params })
      expect(same.json()).toMatchObject({ active: true, tools: ['order_status'], case: caseId })
      // Parameters changed between authorization and execution: refused.
      const changed = await inject('POST', '/v1/oauth/introspect', t.keys.service, {
        token: cred,
        params: { order_id: 'B-99999' },
      })
      expect(changed.json()).toEqual({ active: false })
    })

    describe('security', () => {
      it('a token for case A used on case B', async () => {
        const a = await openAgentCase()
        const b = await openAgentCase()
        const tok = await token(a)
        const r = await act(b, tok, { tool: 'reply', params: { text: 'hi' } })
        await expectRefusedAndAudited(r, 403, 'CREDENTIAL_SCOPE', b)
      })

      it('a tool the agent is not granted, and one outside the token scope', async () => {
        const caseId = await openAgentCase()
        const tok = await token(caseId, 'reply')
        const r = await act(caseId, tok, { tool: 'cancel_subscription', params: { subscription_id: 'S-1' } })
        await expectRefusedAndAudited(r, 403, 'TOOL_NOT_GRANTED', caseId)
        const out = await act(caseId, tok, { tool: 'refund', params: { order_id: 'A-1', amount: 5, currency: 'EUR' } })
        await expectRefusedAndAudited(out, 403, 'CREDENTIAL_SCOPE', caseId)
        const ask = await tokenRequest({
          grant_type: 'client_credentials',
          client_assertion_type: ASSERTION_TYPE,
          client_assertion: await assertion(),
          case_id: caseId,
          scope: 'reply cancel_subscription',
        })
        await expectRefusedAndAudited(ask, 400, 'TOOL_NOT_GRANTED', caseId)
        expect(ask.json().error).toBe('invalid_scope')
      })

      it('after a handoff the credential fails at once', async () => {
        const caseId = await openAgentCase()
        const tok = await token(caseId)
        expect((await act(caseId, tok, { tool: 'reply', params: { text: 'one moment' } })).statusCode).toBe(200)
        const m = await inject('POST', `/v1/cases/${caseId}/messages`, t.keys.service, {
          message: { text: 'Actually I want to speak to a human please' },
        })
        expect(m.json().handoff).toBe(true)
        const r = await act(caseId, tok, { tool: 'reply', params: { text: 'still here?' } })
        await expectRefusedAndAudited(r, 401, 'CREDENTIAL_REVOKED', caseId)
        const again = await tokenRequest({
          grant_type: 'client_credentials',
          client_assertion_type: ASSERTION_TYPE,
          client_assertion: await assertion(),
          case_id: caseId,
        })
        await expectRefusedAndAudited(again, 400, 'NOT_CASE_HANDLER', caseId)
        expect(again.json().error).toBe('invalid_grant')
      })

      it('expired, wrong audience, alg none, HS256 confusion and a tampered payload', async () => {
        const caseId = await openAgentCase()
        const signer = t.app.services.authority.signer
        const base = {
          aud: t.app.services.authority.apiAudience,
          sub: 'shop-assistant',
          case: caseId,
          tools: ['reply'],
          epoch: 0,
          kind: 'access' as const,
          jti: randomUUID(),
          ttlSeconds: 60,
        }
        const expired = await signer.mint(base, new Date(Date.now() - 120_000))
        await expectRefusedAndAudited(
          await act(caseId, expired.token, { tool: 'reply', params: { text: 'x' } }),
          401,
          'CREDENTIAL_EXPIRED',
          caseId,
        )
        const wrongAud = await signer.mint({ ...base, aud: 'https://elsewhere.example' }, new Date())
        await expectRefusedAndAudited(
          await act(caseId, wrongAud.token, { tool: 'reply', params: { text: 'x' } }),
          401,
          'CREDENTIAL_INVALID',
          caseId,
        )
        const good = await token(caseId)
        const [h, p] = good.split('.')
        const claims = JSON.parse(Buffer.from(p!, 'base64url').toString())
        const none = `${b64({ alg: 'none', typ: 'JWT' })}.${p}.`
        await expectRefusedAndAudited(
          await act(caseId, none, { tool: 'reply', params: { text: 'x' } }),
          401,
          'CREDENTIAL_INVALID',
        )
        // HS256 "confusion": an HMAC keyed with Baton's public key, as a verifier that trusts the header would accept.
        const jwk = (await t.app.server.inject({ url: '/.well-known/jwks.json' })).json().keys[0]
        const hsHeader = b64({ alg: 'HS256', typ: 'JWT', kid: jwk.kid })
        const mac = createHmac('sha256', Buffer.from(jwk.x, 'base64url')).update(`${hsHeader}.${p}`).digest('base64url')
        await expectRefusedAndAudited(
          await act(caseId, `${hsHeader}.${p}.${mac}`, { tool: 'reply', params: { text: 'x' } }),
          401,
          'CREDENTIAL_INVALID',
        )
        const tampered = `${h}.${b64({ ...claims, tools: [...claims.tools, 'superpower'], exp: claims.exp + 3600 })}.${good.split('.')[2]}`
        await expectRefusedAndAudited(
          await act(caseId, tampered, { tool: 'reply', params: { text: 'x' } }),
          401,
          'CREDENTIAL_INVALID',
        )
        // The untouched token still works.
        expect((await act(caseId, good, { tool: 'reply', params: { text: 'x' } })).statusCode).toBe(200)
      })

      it('an agent calling admin or operator endpoints, and an operator key used as an agent', async () => {
        const caseId = await openAgentCase()
        const tok = await token(caseId)
        await expectRefusedAndAudited(await inject('GET', '/v1/keys', tok), 403, 'FORBIDDEN')
        await expectRefusedAndAudited(await inject('GET', `/v1/cases/${caseId}`, tok), 403, 'FORBIDDEN', caseId)
        await expectRefusedAndAudited(
          await inject('POST', '/v1/agents/shop-assistant/activate', tok, { reason: 'self-service' }),
          403,
          'FORBIDDEN',
        )
        const asAgent = await act(caseId, ops.ada!, { tool: 'reply', params: { text: 'x' } })
        await expectRefusedAndAudited(asAgent, 403, 'FORBIDDEN', caseId)
        const asService = await act(caseId, t.keys.service, { tool: 'reply', params: { text: 'x' } })
        expect(asService.statusCode).toBe(403)
      })

      it('a suspended agent loses every credential at once; reactivated it must ask again', async () => {
        const caseId = await openAgentCase()
        const tok = await token(caseId)
        const s = await inject('POST', '/v1/agents/shop-assistant/suspend', t.keys.admin, { reason: 'incident 42' })
        expect(s.statusCode).toBe(200)
        expect(s.json().revokedCases).toContain(caseId)
        try {
          await expectRefusedAndAudited(
            await act(caseId, tok, { tool: 'reply', params: { text: 'x' } }),
            401,
            'CREDENTIAL_REVOKED',
            caseId,
          )
          const ask = await tokenRequest({
            grant_type: 'client_credentials',
            client_assertion_type: ASSERTION_TYPE,
            client_assertion: await assertion(),
            case_id: caseId,
          })
          await expectRefusedAndAudited(ask, 400, 'AGENT_INACTIVE', caseId)
        } finally {
          const a = await inject('POST', '/v1/agents/shop-assistant/activate', t.keys.admin, { reason: 'resolved' })
          expect(a.statusCode).toBe(200)
        }
        // The case went to a human at the suspension and stays there; the old token stays dead (the epoch moved).
        expect(s.json().rerouted).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ caseId, handler: { kind: 'operator', queue: 'general' } }),
          ]),
        )
        expect((await act(caseId, tok, { tool: 'reply', params: { text: 'x' } })).statusCode).toBe(401)
        // Reactivated, the agent gets new cases, and tokens for them, again.
        const next = await openAgentCase()
        expect((await act(next, await token(next), { tool: 'reply', params: { text: 'x' } })).statusCode).toBe(200)
        const audit = await auditOf()
        const susp = audit.find((e) => e.type === 'agent.suspended')
        expect(susp).toMatchObject({
          actor: { kind: 'admin' },
          data: { agentId: 'shop-assistant', reason: 'incident 42' },
        })
      })

      it('a retired agent: credentials revoked, cannot be reactivated', async () => {
        const reg = await inject('POST', '/v1/agents', t.keys.admin, {
          id: 'helper-bot',
          owner: 'dana.ops@shop.example',
          purpose: 'Drafts replies',
          tools: ['reply'],
          state: 'active',
        })
        expect(reg.statusCode, reg.body).toBe(201)
        const cred = await inject('POST', '/v1/agents/helper-bot/credentials', t.keys.admin, { kind: 'secret' })
        const secret = cred.json().secret as string
        expect(secret).toMatch(/^bas_/)
        const caseId = await openAgentCase()
        // A credential minted while active (for a case it does not hold; the state check comes first).
        const minted = await t.app.services.authority.signer.mint(
          {
            aud: t.app.services.authority.apiAudience,
            sub: 'helper-bot',
            case: caseId,
            tools: ['reply'],
            epoch: 0,
            kind: 'access',
            jti: randomUUID(),
            ttlSeconds: 60,
          },
          new Date(),
        )
        expect(
          (await inject('POST', '/v1/agents/helper-bot/retire', t.keys.admin, { reason: 'replaced' })).statusCode,
        ).toBe(200)
        await expectRefusedAndAudited(
          await act(caseId, minted.token, { tool: 'reply', params: { text: 'x' } }),
          401,
          'CREDENTIAL_REVOKED',
          caseId,
        )
        const back = await inject('POST', '/v1/agents/helper-bot/activate', t.keys.admin, { reason: 'oops' })
        expect(back.statusCode).toBe(409)
        expect(back.json().code).toBe('AGENT_STATE_INVALID')
        const ask = await tokenRequest({
          grant_type: 'client_credentials',
          client_id: 'helper-bot',
          client_secret: secret,
          case_id: caseId,
        })
        await expectRefusedAndAudited(ask, 401, 'CREDENTIAL_INVALID', caseId)
      })

      it('a client assertion is good once, and must be signed by a registered key', async () => {
        const caseId = await openAgentCase()
        const once = await assertion()
        const form = { grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, case_id: caseId }
        expect((await tokenRequest({ ...form, client_assertion: once })).statusCode).toBe(200)
        const replay = await tokenRequest({ ...form, client_assertion: once })
        expect(replay.statusCode).toBe(401)
        const stranger = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
        const forged = await tokenRequest({
          ...form,
          client_assertion: await assertion('shop-assistant', stranger.privateKey),
        })
        expect(forged.statusCode).toBe(401)
        expect(forged.json().code).toBe('CREDENTIAL_INVALID')
      })
    })

    describe('approvals', () => {
      it('a 400 refund needs a billing operator other than the requester; executes once; replays refused; all audited', async () => {
        const caseId = await openAgentCase()
        const tok = await token(caseId)
        const params = { order_id: 'A-400', amount: 400, currency: 'EUR' }
        const r = await act(caseId, tok, { tool: 'refund', params })
        expect(r.statusCode).toBe(202)
        const approvalId = r.json().approval.id as string
        const pending = (await inject('GET', '/v1/approvals?state=pending', ops.ada!)).json().items
        expect(pending.map((a: { id: string }) => a.id)).toContain(approvalId)
        const a = (await inject('GET', `/v1/approvals/${approvalId}`, ops.linus!)).json()
        expect(a).toMatchObject({
          state: 'pending',
          approverRole: 'billing',
          requester: 'shop-assistant',
          tool: 'refund',
        })
        expect(a.digest).toBe(canonicalDigest({ tool: 'refund', params, caseId, requester: 'shop-assistant' }))
        const decide = (key: string, decision = 'approve') =>
          inject('POST', `/v1/approvals/${approvalId}/decision`, key, { decision, reason: 'customer is right' })

        // The agent's own credential cannot approve.
        const self = await decide(tok)
        expect(self.statusCode).toBe(403)
        expect(self.json().code).toBe('FORBIDDEN')
        // An operator without the billing role cannot approve; neither can a key that names no operator.
        const linus = await decide(ops.linus!)
        expect(linus.statusCode).toBe(403)
        expect(linus.json().code).toBe('APPROVER_NOT_ELIGIBLE')
        expect((await decide(t.keys.operator)).json().code).toBe('APPROVER_NOT_ELIGIBLE')
        expect((await decide(t.keys.admin)).json().code).toBe('APPROVER_NOT_ELIGIBLE')
        expect(connector.calls.filter((c) => orderIdOf(c) === 'A-400')).toHaveLength(0)

        const ok = await decide(ops.ada!)
        expect(ok.statusCode, ok.body).toBe(200)
        expect(ok.json()).toMatchObject({
          approval: { state: 'approved', decidedBy: 'ada' },
          action: { state: 'executed' },
        })
        expect(ok.json().result.status).toBe(200)
        const calls = () => connector.calls.filter((c) => orderIdOf(c) === 'A-400')
        expect(calls()).toHaveLength(1)
        expect(calls()[0]!.body.params).toEqual(params)

        const second = await decide(ops.ada!)
        expect(second.statusCode).toBe(409)
        expect(second.json().code).toBe('APPROVAL_NOT_PENDING')
        const replay = await inject('POST', `/v1/approvals/${approvalId}/execute`, ops.ada!)
        expect(replay.statusCode).toBe(409)
        expect(replay.json().code).toBe('APPROVAL_ALREADY_EXECUTED')
        expect(calls()).toHaveLength(1)

        const audit = await auditOf(caseId)
        const types = audit.map((e) => e.type)
        expect(types).toEqual(expect.arrayContaining(['approval.requested', 'approval.decided', 'action.executed']))
        const decided = audit.find((e) => e.type === 'approval.decided')
        expect(decided).toMatchObject({
          actor: { kind: 'operator', id: 'ada' },
          data: { reason: 'customer is right', state: 'approved' },
        })
        const refused = audit.filter((e) => e.type === 'approval.refused').map((e) => e.data.code)
        expect(refused).toEqual(
          expect.arrayContaining(['APPROVER_NOT_ELIGIBLE', 'APPROVAL_NOT_PENDING', 'APPROVAL_ALREADY_EXECUTED']),
        )
        const agentRefused = (await auditOf()).filter(
          (e) => e.type === 'access.refused' && e.actor.kind === 'agent' && e.data.target === approvalId,
        )
        expect(agentRefused).toHaveLength(1)
      })

      it('a denial executes nothing', async () => {
        const caseId = await openAgentCase()
        const r = await act(caseId, await token(caseId), {
          tool: 'refund',
          params: { order_id: 'A-401', amount: 300, currency: 'EUR' },
        })
        const id = r.json().approval.id
        const d = await inject('POST', `/v1/approvals/${id}/decision`, ops.ada!, {
          decision: 'deny',
          reason: 'not eligible',
        })
        expect(d.json()).toMatchObject({ approval: { state: 'denied' }, action: { state: 'rejected' } })
        expect(connector.calls.some((c) => orderIdOf(c) === 'A-401')).toBe(false)
      })

      it('an approval whose case changed handler or risk is re-evaluated before it can execute', async () => {
        const caseId = await openAgentCase()
        const r = await act(caseId, await token(caseId), {
          tool: 'refund',
          params: { order_id: 'A-402', amount: 200, currency: 'EUR' },
        })
        const id = r.json().approval.id
        const m = await inject('POST', `/v1/cases/${caseId}/messages`, t.keys.service, {
          message: { text: 'I think someone used my card, there is an unauthorized charge' },
        })
        expect(m.json().handler.kind).toBe('operator')
        const d = await inject('POST', `/v1/approvals/${id}/decision`, ops.ada!, { decision: 'approve', reason: 'ok' })
        expect(d.statusCode).toBe(200)
        expect(d.json().approval.state).toBe('superseded')
        expect(d.json().reevaluation.reason).toMatch(/no longer handles/)
        expect(connector.calls.some((c) => orderIdOf(c) === 'A-402')).toBe(false)
      })

      it('parameters changed after the request are refused at execution', async () => {
        const caseId = await openAgentCase()
        const r = await act(caseId, await token(caseId), {
          tool: 'refund',
          params: { order_id: 'A-403', amount: 100, currency: 'EUR' },
        })
        const id = r.json().approval.id
        // Someone with database access raises the amount behind Baton's back.
        await tamperApprovalParams(t, id, { order_id: 'A-403', amount: 900, currency: 'EUR' })
        const d = await inject('POST', `/v1/approvals/${id}/decision`, ops.ada!, { decision: 'approve', reason: 'ok' })
        expect(d.statusCode).toBe(409)
        expect(d.json().code).toBe('PARAMS_MISMATCH')
        expect(connector.calls.some((c) => orderIdOf(c) === 'A-403')).toBe(false)
      })
    })

    it('a hybrid case: the agent may only propose; an operator of any role decides', async () => {
      const r = await inject('POST', '/v1/cases', t.keys.service, {
        customer: 'cu_hybrid',
        channel: 'chat',
        message: { text: 'I want to change the email on my account please' },
      })
      expect(r.json().handler).toMatchObject({ kind: 'hybrid', agentId: 'shop-assistant' })
      const caseId = r.json().id as string
      const p = await act(caseId, await token(caseId), { tool: 'reply', params: { text: 'Sure, one moment' } })
      expect(p.statusCode).toBe(202)
      expect(p.json()).toMatchObject({ outcome: 'approve', state: 'awaiting_approval' })
      expect(p.json().decision.rules).toEqual(['reply', 'hybrid-proposal'])
      const d = await inject('POST', `/v1/approvals/${p.json().approval.id}/decision`, ops.linus!, {
        decision: 'approve',
        reason: 'fine to send',
      })
      expect(d.json()).toMatchObject({
        approval: { state: 'approved', decidedBy: 'linus' },
        action: { state: 'authorized' },
      })
      // A credential-mode tool in a hybrid case: approved, then the agent collects its scoped credential once.
      const tok = await token(caseId)
      const look = await act(caseId, tok, { tool: 'order_status', params: { order_id: 'A-77777' } })
      expect(look.statusCode).toBe(202)
      const lookId = look.json().approval.id as string
      const early = await inject('POST', `/v1/approvals/${lookId}/credential`, tok)
      expect(early.json().code).toBe('APPROVAL_NOT_PENDING')
      await inject('POST', `/v1/approvals/${lookId}/decision`, ops.grace!, { decision: 'approve', reason: 'ok' })
      const got = await inject('POST', `/v1/approvals/${lookId}/credential`, tok)
      expect(got.statusCode, got.body).toBe(200)
      const intro = await inject('POST', '/v1/oauth/introspect', t.keys.service, {
        token: got.json().credential.token,
        params: { order_id: 'A-77777' },
      })
      expect(intro.json()).toMatchObject({ active: true, kind: 'scoped', tools: ['order_status'] })
      const twice = await inject('POST', `/v1/approvals/${lookId}/credential`, tok)
      expect(twice.statusCode).toBe(409)
      expect(twice.json().code).toBe('APPROVAL_ALREADY_EXECUTED')
      const byOperator = await inject('POST', `/v1/approvals/${lookId}/credential`, ops.grace!)
      expect(byOperator.statusCode).toBe(403)
    })

    it('publishes every new route in the OpenAPI document', async () => {
      const doc = (await t.app.server.inject({ url: '/openapi.json' })).json()
      for (const path of [
        '/v1/cases/{id}/actions',
        '/v1/oauth/token',
        '/v1/oauth/introspect',
        '/.well-known/jwks.json',
        '/v1/agents',
        '/v1/agents/{id}/suspend',
        '/v1/approvals',
        '/v1/approvals/{id}/decision',
      ]) {
        expect(Object.keys(doc.paths)).toContain(path)
      }
      expect(doc.paths['/v1/cases/{id}/actions'].post.requestBody).toBeDefined()
    })

    it('lists agents and the privilege report', async () => {
      const list = (await inject('GET', '/v1/agents', t.keys.admin)).json().items
      expect(list.map((a: { id: string }) => a.id)).toContain('shop-assistant')
      const rep = await inject('GET', '/v1/reports/privileges?days=1', t.keys.admin)
      expect(rep.statusCode).toBe(200)
      const sa = rep.json().items.find((r: { agentId: string }) => r.agentId === 'shop-assistant')
      expect(sa.used.refund).toBeGreaterThan(0)
      expect(sa.unused).toContain('change_email')
      expect(sa.findings.join(' ')).toMatch(/never reviewed/)
      expect(sa.outstandingCredentials).toBeGreaterThan(0)
      await inject('POST', '/v1/agents/shop-assistant/review', t.keys.admin, { by: 'dana.ops@shop.example' })
      const again = (await inject('GET', '/v1/reports/privileges?days=1', t.keys.admin)).json()
      const sa2 = again.items.find((r: { agentId: string }) => r.agentId === 'shop-assistant')
      expect(sa2.lastReview.by).toBe('dana.ops@shop.example')
    })
  })
}

async function tamperApprovalParams(t: TestApp, id: string, params: Record<string, unknown>): Promise<void> {
  if (t.databaseUrl === undefined) {
    const SQLite = (await import('better-sqlite3')).default
    const db = new SQLite(`${t.dataDir}/baton.db`)
    db.prepare('update approvals set params = ? where id = ?').run(JSON.stringify(params), id)
    db.close()
  } else {
    const pg = (await import('pg')).default
    const c = new pg.Client({ connectionString: t.databaseUrl })
    await c.connect()
    await c.query('update approvals set params = $1 where id = $2', [JSON.stringify(params), id])
    await c.end()
  }
}

/** Runs one statement on the test app's database (`?` placeholders, rewritten to `$n` for PostgreSQL). */
async function sqlOn(t: TestApp, text: string, params: readonly unknown[]): Promise<void> {
  if (t.databaseUrl === undefined) {
    const SQLite = (await import('better-sqlite3')).default
    const db = new SQLite(`${t.dataDir}/baton.db`)
    db.prepare(text).run(...params)
    db.close()
  } else {
    const pg = (await import('pg')).default
    const c = new pg.Client({ connectionString: t.databaseUrl })
    await c.connect()
    let n = 0
    await c.query(
      text.replace(/\?/g, () => `$${++n}`),
      [...params],
    )
    await c.end()
  }
}

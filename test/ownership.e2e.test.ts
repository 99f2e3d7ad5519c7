import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, SHOP, startTestApp, type TestApp } from './support/app.js'
import { pgAvailable } from './support/pg.js'

/*
 * Ownership that holds (issue 16, item 5), through real HTTP on both stores with the example shop: once a person took
 * a case (took it over, claimed it, was assigned it), the next customer message stays with them, even one the
 * shop's `order-status` rule gives the assistant, until they hand it back; the decision names `human-owns-case`.
 * With a policy that lacks the rule, the same message bounces the case back to the AI, and the quality figures
 * count that bounce (`pingPong.fromHumanOwned`).
 */

const SOURCE = readFileSync(join(SHOP, 'policy.yaml'), 'utf8')
// the rule with its comment, and the policy's own tests (two of which name the rule)
const RULE = /\n(?: {4}#.*\n)* {4}- id: human-owns-case\n(?: {6}.*\n)+\n/
const ORDER = { intent: 'order_status', intent_confidence: 0.9 }
const ASSISTANT = { kind: 'agent', agentId: 'shop-assistant' }

interface Decision {
  readonly id: string
  readonly outcome: string
  readonly rules: readonly string[]
  readonly explanation: readonly { readonly id: string; readonly reads: Record<string, unknown> }[]
}
interface Intake {
  readonly id: string
  readonly handler: Record<string, unknown>
  readonly handoff: boolean
  readonly decision: Decision
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`ownership holds (${engine}, HTTP)`, () => {
    let t: TestApp
    let url = ''
    const keys: Record<string, string> = {}

    const call = async (method: 'GET' | 'POST' | 'PUT', path: string, key: string, body?: object | string) => {
      const r = await fetch(`${url}${path}`, {
        method,
        headers: {
          ...bearer(key),
          ...(body === undefined
            ? {}
            : { 'content-type': typeof body === 'string' ? 'application/yaml' : 'application/json' }),
        },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      })
      const text = await r.text()
      return { status: r.status, body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown> }
    }
    const ok = async (method: 'GET' | 'POST' | 'PUT', path: string, key: string, body?: object | string) => {
      const r = await call(method, path, key, body)
      if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`)
      return r.body
    }
    const open = async (text: string, signals?: object) =>
      (await ok('POST', '/v1/cases', t.keys.service, {
        customer: `cu_${Math.random().toString(36).slice(2, 8)}`,
        channel: 'chat',
        message: { text },
        ...(signals === undefined ? {} : { signals }),
      })) as unknown as Intake
    const say = async (caseId: string, text: string, signals?: object) =>
      (await ok('POST', `/v1/cases/${caseId}/messages`, t.keys.service, {
        message: { text },
        ...(signals === undefined ? {} : { signals }),
      })) as unknown as Intake
    const getCase = (id: string) => ok('GET', `/v1/cases/${id}`, t.keys.admin)
    const decision = (id: string) => ok('GET', `/v1/decisions/${id}`, t.keys.admin)

    beforeAll(async () => {
      t = await startTestApp({ engine })
      url = await t.app.server.listen({ port: 0, host: '127.0.0.1' })
      for (const op of ['ada', 'grace']) {
        keys[op] = (await ok('POST', '/v1/keys', t.keys.admin, { role: 'operator', name: op, operatorId: op }))
          .key as string
      }
    }, 60_000)
    afterAll(async () => {
      await t?.close()
    })

    it('keeps a case an operator took over with them, until they hand it back', async () => {
      const c = await open('Where is my order 123?', ORDER)
      expect(c.handler).toEqual(ASSISTANT)
      expect(await getCase(c.id)).toMatchObject({ humanOwned: false })

      await ok('POST', `/v1/cases/${c.id}/takeover`, keys.ada!, { reason: 'the customer is upset' })
      expect(await getCase(c.id)).toMatchObject({
        humanOwned: true,
        handler: { kind: 'operator', queue: 'general', operatorId: 'ada' },
      })

      // an order-status question, which the shop gives the assistant, stays with Ada: the decision says why
      const next = await say(c.id, 'Where is my order now?', ORDER)
      expect(next.handoff).toBe(false)
      expect(next.handler).toEqual({ kind: 'operator', queue: 'general', operatorId: 'ada' })
      expect(next.decision).toMatchObject({ outcome: 'operator', rules: ['human-owns-case'] })
      expect(next.decision.explanation[0]).toMatchObject({
        id: 'human-owns-case',
        reads: { 'case.human_owned': true },
      })
      const recorded = await decision(next.decision.id)
      expect(recorded).toMatchObject({
        rules: ['human-owns-case'],
        facts: { case: { human_owned: true, handler: 'operator', queue: 'general', agent: '' } },
      })

      // Ada hands it back: routing decides as if no person owned it, so the assistant gets it
      const back = await ok('POST', `/v1/cases/${c.id}/handback`, keys.ada!, {
        agentId: 'shop-assistant',
        reason: 'calmed down',
      })
      expect(back).toMatchObject({ handler: ASSISTANT, trigger: 'handback' })
      expect(await decision(back.decisionId as string)).toMatchObject({
        rules: ['order-status'],
        facts: { case: { human_owned: false } },
      })
      expect(await getCase(c.id)).toMatchObject({ humanOwned: false, handler: ASSISTANT })
      const after = await say(c.id, 'And when does it arrive?', ORDER)
      expect(after).toMatchObject({ handler: ASSISTANT, decision: { rules: ['order-status'] } })
    })

    it('a claim or an assignment makes the operator the owner', async () => {
      // to a person by the customer's request, nobody owns it yet
      const claimed = await open('I want to speak to a human please')
      expect(claimed.handler).toEqual({ kind: 'operator', queue: 'general' })
      expect(await getCase(claimed.id)).toMatchObject({ humanOwned: false })
      await ok('POST', `/v1/cases/${claimed.id}/claim`, keys.grace!, {})
      expect(await getCase(claimed.id)).toMatchObject({
        humanOwned: true,
        handler: { kind: 'operator', queue: 'general', operatorId: 'grace' },
      })
      const m1 = await say(claimed.id, 'Where is my order 55?', ORDER)
      expect(m1).toMatchObject({
        handoff: false,
        handler: { kind: 'operator', queue: 'general', operatorId: 'grace' },
        decision: { rules: ['human-owns-case'] },
      })

      const assigned = await open('Let me talk to a real person')
      let picked: Record<string, unknown> | undefined
      for (let i = 0; i < 20 && picked === undefined; i++) {
        const r = await call('POST', '/v1/queues/general/assign-next', t.keys.admin)
        if (r.status === 204) break
        const caseId = (r.body.item as { caseId: string } | undefined)?.caseId ?? r.body.caseId
        if (caseId === assigned.id) picked = r.body
      }
      expect(picked).toBeDefined()
      expect(await getCase(assigned.id)).toMatchObject({ humanOwned: true })
      const m2 = await say(assigned.id, 'Has my order shipped?', ORDER)
      expect(m2).toMatchObject({
        handoff: false,
        handler: { kind: 'operator' },
        decision: { rules: ['human-owns-case'] },
      })
    })

    it('counts a bounce back to the AI from a case a person owned, under a policy without the rule', async () => {
      const before = (await ok('GET', '/v1/quality', t.keys.admin)) as { pingPong: { fromHumanOwned: number } }
      // the hand-back of the first test is the owner's own: not a bounce
      expect(before.pingPong.fromHumanOwned).toBe(0)

      const inForce = (await ok('GET', '/v1/policy', t.keys.admin)) as { version: number }
      const without = SOURCE.replace(RULE, '\n')
        .replace(/\ntests:\n[\s\S]*$/, '\n')
        .replace(/\n {2}version: \d+\n/, `\n  version: ${inForce.version + 1}\n`)
      expect(without).not.toContain('human-owns-case')
      await ok('PUT', '/v1/policy', t.keys.admin, without)

      const c = await open('Where is my order 900?', ORDER)
      await ok('POST', `/v1/cases/${c.id}/takeover`, keys.ada!, { reason: 'checking the parcel myself' })
      const bounced = await say(c.id, 'Where is my order now?', ORDER)
      expect(bounced).toMatchObject({ handoff: true, handler: ASSISTANT, decision: { rules: ['order-status'] } })
      expect(await getCase(c.id)).toMatchObject({ humanOwned: false })

      const after = (await ok('GET', '/v1/quality', t.keys.admin)) as {
        pingPong: { fromHumanOwned: number; fromHumanOwnedCaseIds: string[] }
      }
      expect(after.pingPong).toMatchObject({ fromHumanOwned: 1, fromHumanOwnedCaseIds: [c.id] })
    })
  })
}

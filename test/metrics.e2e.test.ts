import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, startTestApp, type TestApp } from './support/app.js'
import { agentToken, registerAgentKey } from './support/assertion.js'
import { pgAvailable } from './support/pg.js'

/*
 * GET /metrics over a real socket, after a small history whose numbers the test states, parsed by Prometheus
 * text-format parsers: parse-prometheus-text-format (npm, a port of the Prometheus Python client's parser) for the
 * whole exposition, and, since that one folds labelled histograms into one, the Prometheus Python client's own
 * parser (prometheus_client.parser, Debian's python3-prometheus-client) for the histograms. CI installs it
 * (.ci/run); elsewhere that part is skipped when it is missing.
 */

const PYTHON = '/usr/bin/python3'
const REFERENCE = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
# NaN and ±Inf are valid sample values (prom-client's event-loop gauges start as NaN); JSON has no such numbers
value = lambda v: v if math.isfinite(v) else str(v)
print(json.dumps([{"name": f.name, "type": f.type, "samples": [[s.name, s.labels, value(s.value)] for s in f.samples]}
                  for f in text_string_to_metric_families(sys.stdin.read())]))
`
const referenceParser =
  existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import prometheus_client.parser'], { stdio: 'ignore' }).status === 0
if (!referenceParser && (process.env.CI || process.env.BATON_REQUIRE_PG === '1')) {
  throw new Error(`the Prometheus Python client's parser is required here (apt-get install python3-prometheus-client)`)
}

/** Families as the Prometheus Python client parses them: [sample name, labels, value] each. */
function parseReference(
  text: string,
): { name: string; type: string; samples: [string, Record<string, string>, number][] }[] {
  const r = spawnSync(PYTHON, ['-c', REFERENCE], { input: text, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`prometheus_client refused the exposition: ${r.stderr}`)
  return JSON.parse(r.stdout)
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe.skipIf(engine === 'postgres' && !pgAvailable)(`/metrics on ${engine}`, () => {
    let t: TestApp
    let base: string
    const keys: Record<string, string> = {}
    const http = (path: string, key?: string, init: RequestInit = {}) =>
      fetch(`${base}${path}`, { ...init, headers: { ...(key ? bearer(key) : {}), ...init.headers } })
    const post = async (path: string, key: string, body: object) => {
      const r = await http(path, key, {
        method: 'POST',
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      })
      if (r.status >= 300) throw new Error(`${path}: ${r.status} ${await r.text()}`)
      return (await r.json()) as Record<string, unknown>
    }

    beforeAll(async () => {
      t = await startTestApp({ engine })
      base = await t.app.server.listen({ port: 0, host: '127.0.0.1' })
      keys.metrics = (await post('/v1/keys', t.keys.admin, { role: 'metrics', name: 'prometheus' })).key as string
      keys.analyst = (await post('/v1/keys', t.keys.admin, { role: 'analyst', name: 'a' })).key as string
      keys.ada = (await post('/v1/keys', t.keys.admin, { role: 'operator', name: 'ada', operatorId: 'ada' }))
        .key as string
      const order = { intent: 'order_status', intent_confidence: 0.9 }
      // two order questions for the assistant, one asking for a person (to general)
      const a = await post('/v1/cases', t.keys.service, {
        customer: 'cu_1',
        channel: 'chat',
        message: { text: 'Where is my order 1?' },
        signals: order,
      })
      await post('/v1/cases', t.keys.service, {
        customer: 'cu_2',
        channel: 'chat',
        message: { text: 'Where is my order 2?' },
        signals: order,
      })
      await post('/v1/cases', t.keys.service, {
        customer: 'cu_3',
        channel: 'chat',
        message: { text: 'I want to speak to a human please' },
      })
      // the assistant's case a: taken over by an operator
      await post(`/v1/cases/${a.id}/takeover`, keys.ada!, { reason: 'the customer is upset' })
      // a hybrid billing case where the assistant asks for a refund that needs an approver
      const b = await post('/v1/cases', t.keys.service, {
        customer: 'cu_4',
        channel: 'chat',
        message: { text: 'I was charged twice for my order' },
        signals: { intent: 'refund', intent_confidence: 0.9 },
      })
      const key = await registerAgentKey(t.app, t.keys.admin)
      const token = await agentToken(t.app, key.privateKey, b.id as string)
      await post(`/v1/cases/${b.id}/actions`, token, {
        tool: 'refund',
        params: { order_id: 'A-1', amount: 200, currency: 'EUR' },
      })
      // a forged agent token: refused (CREDENTIAL_INVALID)
      const forged = await http(`/v1/cases/${b.id}/actions`, 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln', {
        method: 'POST',
        body: JSON.stringify({ tool: 'reply', params: {} }),
        headers: { 'content-type': 'application/json' },
      })
      expect(forged.status).toBe(401)
    }, 60_000)
    afterAll(async () => {
      await t?.close()
    })

    const scrape = async () => {
      const r = await http('/metrics', keys.metrics)
      expect(r.status).toBe(200)
      expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
      const text = await r.text()
      const families = parsePrometheusTextFormat(text)
      const family = (name: string) => {
        const f = families.find((x) => x.name === name)
        if (f === undefined) throw new Error(`no metric family ${name}`)
        return f
      }
      const value = (name: string, labels: Record<string, string> = {}) => {
        const m = family(name).metrics.filter((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v))
        return m.reduce((n, x) => n + Number(x.value), 0)
      }
      return { text, families, family, value }
    }

    it('exposes the stored history and the live figures in the Prometheus text format', async () => {
      const { family, value } = await scrape()
      expect(family('baton_decisions_total').type).toBe('COUNTER')
      // four intake decisions: two order questions, the person-request, the refund case; and the refund's tool call
      expect(value('baton_decisions_total', { kind: 'route', outcome: 'agent', rule: 'order-status' })).toBe(2)
      expect(value('baton_decisions_total', { kind: 'route', outcome: 'operator', rule: 'human-requested' })).toBe(1)
      expect(value('baton_decisions_total', { kind: 'route', outcome: 'hybrid', rule: 'payment' })).toBe(1)
      expect(value('baton_decisions_total', { kind: 'action', outcome: 'approve', rule: 'medium-refund' })).toBe(1)
      expect(value('baton_handoffs_total', { from: 'agent', to: 'operator', trigger: 'manual' })).toBe(1)
      // escalations: the person-request and the refund case at intake (triggers), the take-over
      expect(value('baton_escalations_total', { cause: 'trigger' })).toBe(2)
      expect(value('baton_escalations_total', { cause: 'operator_took' })).toBe(1)
      expect(value('baton_escalations_total', { cause: 'ping_pong_cap' })).toBe(0)
      expect(value('baton_approvals', { gate: 'approval', state: 'pending' })).toBe(1)
      // waiting: the person-request (general) and the refund case (billing); a's take-over is held, not waiting
      expect(value('baton_queue_depth', { queue: 'general' })).toBe(1)
      expect(value('baton_queue_assigned', { queue: 'general' })).toBe(1)
      expect(value('baton_queue_depth', { queue: 'billing' })).toBe(1)
      expect(value('baton_queue_depth', { queue: 'legal' })).toBe(0)
      expect(value('baton_queue_oldest_wait_seconds', { queue: 'general' })).toBeGreaterThanOrEqual(0)
      expect(value('baton_credentials_issued_total', { principal: 'credential', kind: 'access' })).toBe(1)
      expect(value('baton_refusals_total', { code: 'CREDENTIAL_INVALID' })).toBe(1)
      expect(value('baton_store_errors_total', { code: 'STORE_UNAVAILABLE' })).toBe(0)
      expect(value('baton_store_up')).toBe(1)
      expect(family('baton_intake_duration_seconds').type).toBe('HISTOGRAM')
      expect(family('baton_action_duration_seconds').type).toBe('HISTOGRAM')
      const entries = value('baton_audit_entries')
      expect(entries).toBe(await t.app.store.auditSize())
      expect(value('baton_audit_tree_size') + value('baton_audit_sequencer_lag_entries')).toBe(entries)
      expect(value('baton_process_cpu_seconds_total')).toBeGreaterThan(0)
    })

    it.skipIf(!referenceParser)('histograms of intake and action latency, by the reference parser', async () => {
      const { text } = await scrape()
      const families = parseReference(text)
      const samples = (name: string) => families.find((f) => f.name === name)?.samples ?? []
      const intake = samples('baton_intake_duration_seconds')
      expect(families.find((f) => f.name === 'baton_intake_duration_seconds')?.type).toBe('histogram')
      const count = (all: typeof intake, labels: Record<string, string>, suffix: string) =>
        all.find(([n, l]) => n.endsWith(suffix) && Object.entries(labels).every(([k, v]) => l[k] === v))?.[2]
      // the four case opens, every one 2xx; the +Inf bucket holds them all
      expect(count(intake, { route: '/v1/cases', status: '2xx' }, '_count')).toBe(4)
      expect(count(intake, { route: '/v1/cases', status: '2xx', le: '+Inf' }, '_bucket')).toBe(4)
      expect(count(intake, { route: '/v1/cases', status: '2xx' }, '_sum')).toBeGreaterThan(0)
      const action = samples('baton_action_duration_seconds')
      // the refund (202) and the forged token (401)
      expect(count(action, { status: '2xx' }, '_count')).toBe(1)
      expect(count(action, { status: '4xx' }, '_count')).toBe(1)
    })

    it('follows new history at the next scrape', async () => {
      await post('/v1/cases', t.keys.service, {
        customer: 'cu_5',
        channel: 'chat',
        message: { text: 'Where is my order 5?' },
        signals: { intent: 'order_status', intent_confidence: 0.9 },
      })
      await t.app.audit.sequenceOnce()
      const { value } = await scrape()
      expect(value('baton_decisions_total', { kind: 'route', outcome: 'agent', rule: 'order-status' })).toBe(3)
      expect(value('baton_audit_sequencer_lag_entries')).toBe(0)
      expect(value('baton_audit_sequencer_lag_seconds')).toBe(0)
    })

    it('is for a metrics key or an admin only', async () => {
      expect((await http('/metrics')).status).toBe(401)
      for (const key of [t.keys.operator, t.keys.service, keys.analyst!])
        expect((await http('/metrics', key)).status).toBe(403)
      expect((await http('/metrics', t.keys.admin)).status).toBe(200)
      // a metrics key reads nothing else
      expect((await http('/v1/cases', keys.metrics)).status).toBe(403)
      expect((await http('/v1/quality', keys.metrics)).status).toBe(403)
    })
  })
}

import type { FastifyInstance } from 'fastify'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import { isBatonError } from '../errors.js'
import { AuditCounts, labelsOf } from '../quality/counts.js'
import { causeOf, ESCALATION_CAUSES } from '../quality/figures.js'
import { policyVersions } from '../quality/policies.js'
import type { Role } from '../store/ports.js'
import { errorResponses } from './schemas.js'
import type { Services } from './services.js'

const SCRAPERS: readonly Role[] = ['admin', 'metrics']

/** Routes whose latency is measured, by metric. */
const INTAKE_ROUTES = new Set(['POST /v1/cases', 'POST /v1/cases/:id/messages'])
const ACTION_ROUTES = new Set(['POST /v1/cases/:id/actions'])
const STORE_CODES = ['STORE_UNAVAILABLE', 'STORE_FULL'] as const

/** Seconds; intake is ~1–50 ms here, a refund through a connector up to seconds. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/**
 * `GET /metrics` (Prometheus text format 0.0.4, prom-client), for a `metrics` key or an admin. What the stored history
 * says (decisions, handoffs, escalations, approvals, credentials, refusals: cluster-wide totals, the same on every
 * node) is folded from the audit log by the quality capability (`LiveHistory`, `AuditCounts`, `causeOf`); queues and
 * the audit tree are read from the store at each scrape; latencies and store errors are this process's own.
 */
export function registerMetrics(app: FastifyInstance, s: Services): void {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'baton_' })
  const counts = new AuditCounts()
  s.live.onEntry((e) => counts.add(e))
  const registers = [registry]

  const intake = new Histogram({
    name: 'baton_intake_duration_seconds',
    help: 'Time to answer an intake request (POST /v1/cases, POST /v1/cases/{id}/messages), this node',
    labelNames: ['route', 'status'],
    buckets: BUCKETS,
    registers,
  })
  const action = new Histogram({
    name: 'baton_action_duration_seconds',
    help: "Time to answer an agent's tool call (POST /v1/cases/{id}/actions), connector included, this node",
    labelNames: ['status'],
    buckets: BUCKETS,
    registers,
  })
  const storeErrors = new Counter({
    name: 'baton_store_errors_total',
    help: 'Requests answered 503 because the store could not serve (STORE_UNAVAILABLE, STORE_FULL), this node',
    labelNames: ['code'],
    registers,
  })
  for (const code of STORE_CODES) storeErrors.inc({ code }, 0)
  app.addHook('onResponse', async (req, reply) => {
    const route = `${req.method} ${req.routeOptions.url ?? ''}`
    const seconds = reply.elapsedTime / 1000
    const status = `${Math.floor(reply.statusCode / 100)}xx`
    if (INTAKE_ROUTES.has(route)) intake.observe({ route: req.routeOptions.url ?? '', status }, seconds)
    else if (ACTION_ROUTES.has(route)) action.observe({ status }, seconds)
  })
  app.addHook('onError', async (_req, _reply, e) => {
    for (const code of STORE_CODES) if (isBatonError(e, code)) storeErrors.inc({ code })
  })

  /** A counter whose value is a total from the stored history, set at each scrape. */
  const total = (name: string, help: string, labelNames: string[], read: () => Iterable<[string[], number]>) =>
    new Counter({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset()
        for (const [values, n] of read()) {
          this.inc(Object.fromEntries(labelNames.map((l, i) => [l, values[i] ?? ''])), n)
        }
      },
    })
  const entries = (m: ReadonlyMap<string, number>) => [...m].map(([k, n]) => [labelsOf(k), n] as [string[], number])
  total(
    'baton_decisions_total',
    'Policy decisions recorded in the audit log, by kind (route, action), outcome and the rules that decided',
    ['kind', 'outcome', 'rule'],
    () => entries(counts.decisions),
  )
  total(
    'baton_handoffs_total',
    'Handler changes recorded in the audit log, by the handler kinds they went between and their trigger',
    ['from', 'to', 'trigger'],
    () => entries(counts.handoffs),
  )
  total(
    'baton_credentials_issued_total',
    'Credentials Baton minted: agent access, per-call and scoped credentials, and delegate access tokens',
    ['principal', 'kind'],
    () => entries(counts.issued),
  )
  total(
    'baton_refusals_total',
    'Refused agent and delegate requests, by code (audited one by one or counted into access.refused_suppressed)',
    ['code'],
    () => [...counts.refusals].map(([k, n]) => [[k], n] as [string[], number]),
  )

  // Figures of the folded cases, computed once per scrape (the same definitions as GET /v1/quality).
  let byCause = new Map<string, number>()
  let gates = new Map<string, number>()
  const figures = async () => {
    const versions = policyVersions(await s.store.listPolicyVersions(), s.quality.known)
    const causes = new Map<string, number>(ESCALATION_CAUSES.map((c) => [c, 0]))
    const states = new Map<string, number>()
    for (const c of s.live.fold.cases.values()) {
      for (const e of c.escalations) {
        const cause = causeOf(e, versions)
        causes.set(cause, (causes.get(cause) ?? 0) + 1)
      }
      for (const g of c.gates.values()) {
        const k = `${g.kind}\u0000${g.state}`
        states.set(k, (states.get(k) ?? 0) + 1)
      }
    }
    byCause = causes
    gates = states
  }
  total(
    'baton_escalations_total',
    'Cases reaching a human (at intake or from an AI agent), by cause (README, Decision quality)',
    ['cause'],
    () => [...byCause].map(([k, n]) => [[k], n] as [string[], number]),
  )
  new Gauge({
    name: 'baton_approvals',
    help: 'Approvals and customer confirmations by state (pending is the work waiting now)',
    labelNames: ['gate', 'state'],
    registers,
    collect() {
      this.reset()
      for (const [k, n] of gates) {
        const [gate, state] = labelsOf(k)
        this.set({ gate: gate ?? '', state: state ?? '' }, n)
      }
    },
  })

  const now = () => s.quality.now().getTime()
  /** Set at each scrape: while the store does not answer, what it holds is left out (and baton_store_up is 0). */
  let up = 1
  let queues: Awaited<ReturnType<Services['store']['queueSummary']>> = {}
  const queueGauge = (name: string, help: string, read: (q: string) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['queue'],
      registers,
      collect() {
        this.reset()
        if (up === 0) return
        for (const q of s.workspace.queues) this.set({ queue: q.id }, read(q.id))
      },
    })
  queueGauge(
    'baton_queue_depth',
    'Cases waiting in each queue for an operator (not yet assigned)',
    (q) => queues[q]?.waiting ?? 0,
  )
  queueGauge('baton_queue_assigned', 'Cases of each queue an operator holds', (q) => queues[q]?.assigned ?? 0)
  queueGauge(
    'baton_queue_oldest_wait_seconds',
    'How long the longest-waiting case of each queue has waited (0 when none waits)',
    (q) => {
      const since = queues[q]?.oldestWaiting
      return since ? Math.max(0, (now() - Date.parse(since)) / 1000) : 0
    },
  )
  queueGauge(
    'baton_queue_sla_breached',
    'Cases of each queue that breached their SLA and are still in it (waiting or assigned)',
    (q) => queues[q]?.breached ?? 0,
  )

  let audit = { entries: 0, tree: 0, lagS: 0 }
  const auditNow = async () => {
    const [size, head] = await Promise.all([s.store.auditSize(), s.store.latestHead()])
    const tree = head?.size ?? 0
    let lagS = 0
    if (size > tree) {
      const [first] = await s.store.readAudit(tree, tree + 1)
      if (first !== undefined) lagS = Math.max(0, (now() - Date.parse(first.createdAt)) / 1000)
    }
    audit = { entries: size, tree, lagS }
  }
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read())
      },
    })
  gauge('baton_audit_entries', 'Entries in the audit log', () => audit.entries)
  gauge('baton_audit_tree_size', 'Entries covered by the latest signed tree head', () => audit.tree)
  gauge(
    'baton_audit_sequencer_lag_entries',
    'Audit entries not yet covered by a signed tree head',
    () => audit.entries - audit.tree,
  )
  gauge(
    'baton_audit_sequencer_lag_seconds',
    'Age of the oldest audit entry not yet covered by a signed tree head (0 when none)',
    () => audit.lagS,
  )
  gauge('baton_store_up', '1 while the store answers a trivial query, else 0', () => up)

  app.get(
    '/metrics',
    {
      config: { roles: SCRAPERS },
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics (text exposition format 0.0.4)',
        description:
          'For a `metrics` key (POST /v1/keys {role: metrics}) or an admin. Totals from the stored history (decisions, handoffs, escalations, approvals, credentials, refusals) are the same on every node: aggregate them with max(), not sum(). Latencies and store errors are per node.',
        produces: ['text/plain; version=0.0.4'],
        response: { 200: { type: 'string' }, ...errorResponses },
      },
    },
    async (_req, reply) => {
      const health = await s.store.health()
      up = health.ok ? 1 : 0
      if (health.ok) {
        await s.live.refresh()
        await Promise.all([figures(), auditNow(), s.store.queueSummary().then((q) => (queues = q))])
      }
      return reply.type(registry.contentType).send(await registry.metrics())
    },
  )
}

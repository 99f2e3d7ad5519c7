import type { DecisionRecord } from '../cases/records.js'
import { BatonError } from '../errors.js'
import { activeOwner, privilegeReport } from '../identity/registry.js'
import type { RiskClass } from '../intents/routing-eval.js'
import type { CompiledPolicy, KnownNames } from '../policy/compile.js'
import type { HistoryWindow, StoredCaseFold } from '../store/history-store.js'
import type { Store } from '../store/ports.js'
import type { QueueSpec } from '../workspace/workspace.js'
import { privilegeUse, QualityAccumulator, type QualityOptions, type QualityReport } from './figures.js'
import { type CaseState, emptyCase, evolve } from './fold.js'
import { decodeFold, encodeFold, FOLD_VERSION } from './fold-codec.js'
import { type HistoryEvent, historyEventOf } from './history.js'
import type { LiveHistory } from './live.js'
import { type OverviewSnapshot, overviewSnapshot } from './overview.js'
import { type PolicyVersions, policyVersions } from './policies.js'
import {
  type PreviewSummary,
  PreviewTally,
  policyHashOf,
  type ReplayResult,
  type ReplaySummary,
  ReplayTally,
  replayDecision,
} from './replay.js'
import { windowOf } from './window.js'

/** What the quality use cases read: the store (through its ports), the workspace's queues, the policy, the clock. */
export interface QualityDeps {
  readonly store: Store
  readonly queues: readonly QueueSpec[]
  /** The policy in force (its ping-pong cap). */
  readonly policy: () => CompiledPolicy
  /** Names a stored policy version is compiled against. */
  readonly known: KnownNames
  readonly now: () => Date
  /** Store the case folds the reads make (`FoldOptions.keep`): the server does; the read-only CLI does not. */
  readonly keepFolds?: boolean
}

export interface QualityQuery {
  /** A duration before now (`7d`) or an RFC 3339 date-time; default `7d`. */
  readonly since?: string | undefined
  /** Default now. */
  readonly until?: string | undefined
  readonly queue?: string | undefined
  readonly agent?: string | undefined
}

const BATCH = 5000

/** Stored times are RFC 3339 UTC with ms (`toISOString`), which sort as text. */
export function storedWindow(w: { readonly since: number; readonly until: number }): HistoryWindow {
  return { since: new Date(w.since).toISOString(), until: new Date(w.until).toISOString() }
}

/**
 * Checks a query's filters against the workspace and the registry.
 * @throws BatonError VALIDATION_FAILED naming `since`, `until`, `queue` or `agent`.
 */
export async function qualityOptions(
  deps: QualityDeps,
  q: QualityQuery,
  versions: PolicyVersions,
): Promise<QualityOptions> {
  const now = deps.now().getTime()
  const w = windowOf(q, now)
  if (q.queue !== undefined && !deps.queues.some((x) => x.id === q.queue)) {
    throw new BatonError(
      'VALIDATION_FAILED',
      `queue: no queue '${q.queue}' (known: ${deps.queues.map((x) => x.id).join(', ')})`,
      {
        fields: [{ field: 'queue', message: 'not a queue of the workspace' }],
      },
    )
  }
  if (q.agent !== undefined && (await deps.store.getAgent(q.agent)) === undefined) {
    throw new BatonError('VALIDATION_FAILED', `agent: no agent '${q.agent}' in the registry`, {
      fields: [{ field: 'agent', message: 'not a registered agent' }],
    })
  }
  const sla = new Map(deps.queues.map((x) => [x.id, x.slaSeconds]))
  return {
    since: w.since,
    until: w.until,
    now,
    queue: q.queue,
    agent: q.agent,
    slaSeconds: (queue) => sla.get(queue) ?? DEFAULT_SLA_S,
    maxHandoffs: deps.policy().routing.maxHandoffs,
    isOverride: (hash, rule) => versions.isOverride(hash, rule),
  }
}

/** The SLA of a queue the workspace no longer has (30 min, the workspace default). */
const DEFAULT_SLA_S = 1800

/** How `foldWindow` uses the stored folds (`case_folds`). */
export interface FoldOptions {
  /**
   * Keep the folds it had to make (of cases with no current stored fold) for the next read: the server's reads do,
   * the read-only CLI commands do not.
   */
  readonly keep?: boolean
}

/**
 * Folds the cases of a window from the store into `add`, in case id order. A case whose stored fold is through its
 * last event is read from it; the others are folded from their case events (and, with `keep`, their folds stored).
 * Approvals and agent actions join their case at read time.
 */
export async function foldWindow(
  store: Store,
  window: HistoryWindow,
  add: (c: CaseState) => void,
  options: FoldOptions = {},
): Promise<void> {
  const { gates, actions } = await store.listCaseGates(window)
  const side = new Map<string, HistoryEvent[]>()
  const push = (caseId: string, e: HistoryEvent) => {
    let list = side.get(caseId)
    if (list === undefined) {
      list = []
      side.set(caseId, list)
    }
    list.push(e)
  }
  for (const g of gates) {
    const at = Date.parse(g.createdAt)
    push(g.caseId, {
      type: 'gate_requested',
      caseId: g.caseId,
      at,
      gate: g.kind,
      id: g.id,
      tool: g.tool,
      requester: g.requester,
    })
    if (g.state !== 'pending') {
      push(g.caseId, {
        type: 'gate_settled',
        caseId: g.caseId,
        at: g.decidedAt === null ? at : Date.parse(g.decidedAt),
        gate: g.kind,
        id: g.id,
        state: g.state,
      })
    }
  }
  for (const a of actions) {
    push(a.caseId, {
      type: 'action',
      caseId: a.caseId,
      at: Date.parse(a.createdAt),
      decisionId: a.decisionId,
      agentId: a.agentId,
      tool: a.tool,
      outcome: a.outcome,
    })
  }
  const seal = (c: CaseState) => {
    for (const e of side.get(c.id) ?? []) evolve(c, e)
    add(c)
  }
  for await (const batch of store.scanCaseFolds(window, FOLD_VERSION, BATCH)) {
    const folded = await foldCases(
      store,
      batch.filter((r) => r.state === null).map((r) => r.caseId),
      options.keep === true,
    )
    for (const r of batch) {
      const c = r.state === null ? folded.get(r.caseId) : decodeFold(r.caseId, r.state)
      if (c !== undefined) seal(c)
    }
  }
}

/**
 * Folds these cases from their stored events (lists of ids cost no more than reading a batch's id range in order,
 * measured, and read no events of cases outside the window); with `keep`, stores the folds, before any gate joins
 * them: a stored fold holds the case's events alone.
 */
async function foldCases(store: Store, ids: readonly string[], keep: boolean): Promise<Map<string, CaseState>> {
  const folded = new Map<string, CaseState>()
  const kept: StoredCaseFold[] = []
  for (let i = 0; i < ids.length; i += STALE_BATCH) {
    let current: CaseState | undefined
    let through = 0
    const done = () => {
      if (current === undefined) return
      folded.set(current.id, current)
      if (keep) kept.push({ caseId: current.id, through, fold: FOLD_VERSION, state: encodeFold(current) })
    }
    for (const row of await store.caseHistoryOf(ids.slice(i, i + STALE_BATCH))) {
      if (current?.id !== row.caseId) {
        done()
        current = emptyCase(row.caseId)
        through = row.lastEvent
      }
      const e = historyEventOf(row)
      if (e !== undefined) evolve(current, e)
    }
    done()
  }
  if (kept.length > 0) await store.putCaseFolds(kept)
  return folded
}

/**
 * Brings the stored folds of the cases opened in the window up to date (the server's fold keeper): every case with
 * no current fold is folded from its events and its fold kept. Returns how many were folded.
 */
export async function keepCaseFolds(store: Store, window: HistoryWindow): Promise<number> {
  let n = 0
  for await (const batch of store.scanCaseFolds(window, FOLD_VERSION, BATCH, { staleOnly: true })) {
    n += (
      await foldCases(
        store,
        batch.map((r) => r.caseId),
        true,
      )
    ).size
  }
  return n
}

/** Cases folded from their events in one read (each a `case_id in (…)` list). */
const STALE_BATCH = 500

/** Replays stored decisions with the versions they name. */
export function replayWith(versions: PolicyVersions, d: DecisionRecord): ReplayResult {
  const hash = policyHashOf(d)
  if (d.kind === 'override') return { status: 'skipped', decisionId: d.id, reason: 'override' }
  const policy = hash === '' ? undefined : versions.get(hash)
  if (policy === undefined) return { status: 'skipped', decisionId: d.id, reason: 'unknown_policy' }
  return replayDecision(policy, d)
}

/** Every decision-quality figure over the cases opened in the query's window (`GET /v1/quality`, `baton quality`). */
export async function readQuality(deps: QualityDeps, q: QualityQuery): Promise<QualityReport> {
  const versions = policyVersions(await deps.store.listPolicyVersions(), deps.known)
  const options = await qualityOptions(deps, q, versions)
  const acc = new QualityAccumulator(options)
  const window = storedWindow(options)
  await foldWindow(deps.store, window, (c) => acc.add(c), { keep: deps.keepFolds === true })
  const sample = acc.replaySampleIds()
  const tally = new ReplayTally()
  for (const d of await deps.store.getDecisions(sample.ids)) tally.add(replayWith(versions, d))
  const operators = (await deps.store.listOperators()).map((o) => o.id)
  const rows = await privilegeReport(
    { store: deps.store, now: deps.now, newId: () => '' },
    new Date(options.since),
    new Date(options.until),
    activeOwner(operators),
  )
  return acc.report({
    replay: sample.ids.length === 0 ? null : tally.summary(sample.of),
    privileges: privilegeUse(rows, q.agent),
  })
}

/** The console's Overview: the live history's series (`overviewSnapshot`), brought up to date first. */
export async function readOverview(deps: QualityDeps, live: LiveHistory): Promise<OverviewSnapshot> {
  await live.refresh()
  const versions = policyVersions(await deps.store.listPolicyVersions(), deps.known)
  const sla = new Map(deps.queues.map((x) => [x.id, x.slaSeconds]))
  return overviewSnapshot(
    live.fold.cases.values(),
    {
      now: deps.now().getTime(),
      slaSeconds: (q) => sla.get(q) ?? DEFAULT_SLA_S,
      maxHandoffs: deps.policy().routing.maxHandoffs,
      isOverride: (hash, rule) => versions.isOverride(hash, rule),
    },
    live.entries,
  )
}

export interface ReplayQuery {
  /** Decisions made in `[since, until)`: a duration before now or an RFC 3339 date-time; default all of them. */
  readonly since?: string | undefined
  readonly until?: string | undefined
  /** At most this many decisions (a sample by decision id when there are more); default all. */
  readonly limit?: number | undefined
}

/** The decision window of a replay: everything by default. */
function replayWindow(deps: Pick<QualityDeps, 'now'>, q: ReplayQuery): HistoryWindow {
  return storedWindow(windowOf(q, deps.now().getTime(), '1970-01-01'))
}

/**
 * Replays the stored decisions of a window with the policy versions they name (`baton replay`): each must re-decide
 * to what was recorded (invariant 2). `each` sees every result (the CLI's progress and listing).
 */
export async function readReplay(
  deps: QualityDeps,
  q: ReplayQuery,
  each?: (r: ReplayResult) => void,
): Promise<ReplaySummary> {
  const window = replayWindow(deps, q)
  const versions = policyVersions(await deps.store.listPolicyVersions(), deps.known)
  const tally = new ReplayTally()
  let n = 0
  scan: for await (const batch of deps.store.scanDecisions(window, 2000)) {
    for (const d of batch) {
      if (q.limit !== undefined && n >= q.limit) break scan
      n++
      const r = replayWith(versions, d)
      tally.add(r)
      each?.(r)
    }
  }
  return tally.summary()
}

/**
 * What a candidate policy would change on the stored decisions of a window (`POST /v1/policy/preview`,
 * `baton replay --policy`): each decision re-decided from its facts with the candidate, compared with what was
 * recorded, per rule of the candidate. `labels` (decision id → the risk class of its message's labelled intent)
 * adds the change in unsafe automation and automation. Nothing is activated or written.
 */
export async function readPreview(
  deps: QualityDeps,
  candidate: CompiledPolicy,
  q: ReplayQuery,
  labels?: ReadonlyMap<string, RiskClass>,
): Promise<
  PreviewSummary & { readonly window: { readonly since: string; readonly until: string }; readonly sampled: boolean }
> {
  const window = replayWindow(deps, q)
  const tally = new PreviewTally({ ...candidate.ref })
  let n = 0
  let sampled = false
  scan: for await (const batch of deps.store.scanDecisions(window, 2000)) {
    for (const d of batch) {
      if (q.limit !== undefined && n >= q.limit) {
        sampled = true
        break scan
      }
      n++
      tally.add(replayDecision(candidate, d), labels?.get(d.id))
    }
  }
  return { window, sampled, ...tally.summary() }
}

/**
 * Evaluation labels for a preview: each case whose id, or whose first message's text (spacing and case aside),
 * a label names gets the label's risk class on its first routing decision.
 */
export async function labelsOf(
  deps: Pick<QualityDeps, 'store' | 'now'>,
  rows: readonly { readonly caseId?: string; readonly text?: string; readonly label: string }[],
  riskMap: ReadonlyMap<string, RiskClass>,
): Promise<Map<string, RiskClass>> {
  const byCase = new Map<string, RiskClass>()
  const byText = new Map<string, RiskClass>()
  for (const r of rows) {
    const cls = riskMap.get(r.label)
    if (cls === undefined) continue
    if (r.caseId !== undefined) byCase.set(r.caseId, cls)
    if (r.text !== undefined) byText.set(normalText(r.text), cls)
  }
  const out = new Map<string, RiskClass>()
  const all = storedWindow({ since: 0, until: deps.now().getTime() + 1 })
  await foldWindow(deps.store, all, (c) => {
    if (c.first === undefined) return
    const cls = byCase.get(c.id) ?? (c.firstText === undefined ? undefined : byText.get(normalText(c.firstText)))
    if (cls !== undefined) out.set(c.first.decisionId, cls)
  })
  return out
}

const normalText = (t: string) => t.trim().replace(/\s+/g, ' ').toLowerCase()

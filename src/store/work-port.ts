import type { AuditEntryBody } from '../audit/entry.js'

// The `WorkStore` port (part of `Store`, re-exported by `ports.ts`): work items, queues, operators' load, timers
// and webhooks, implemented by `work-store.ts`.

/** A case as its queue sees it. Times are RFC 3339. */
export interface WorkItem {
  readonly caseId: string
  readonly queue: string
  readonly enqueuedAt: string
  readonly slaDue: string
  /** Effective deadline (ms since epoch) after tier, risk and breach; lower goes first (`src/queues/priority.ts`). */
  readonly rank: number
  readonly tier: string
  readonly risky: boolean
  /** Language of the case's latest message when it was queued (`und` when unknown). */
  readonly language: string
  /** What put the case in this queue: the rules and the trigger of the decision, and its first reason. */
  readonly reason: { readonly rules: readonly string[]; readonly trigger: string; readonly reason: string }
  /** The operator who holds it; null while it waits. */
  readonly operatorId: string | null
  readonly assignedAt: string | null
  readonly breached: boolean
}

export interface OperatorLoad {
  readonly operatorId: string
  readonly capacity: number
  /** Open cases assigned to the operator now; never above `capacity`. */
  readonly active: number
}

export interface Assignment {
  readonly item: WorkItem
  readonly operatorId: string
}

/** A durable timer. `kind` names its handler; (`kind`, `key`) is unique. */
export interface TimerRecord {
  readonly kind: string
  readonly key: string
  readonly dueAt: string
  readonly payload: Readonly<Record<string, unknown>>
  readonly state: 'pending' | 'fired' | 'cancelled'
  readonly attempts: number
  readonly firedAt: string | null
  readonly lastError: string | null
}

export interface WebhookRecord {
  readonly id: string
  readonly url: string
  /** CloudEvents types (`dev.baton.case.escalated`) or `*`. */
  readonly events: readonly string[]
  /** `whsec_<base64>`; never returned by the API after creation. */
  readonly secret: string
  readonly createdAt: string
  readonly deletedAt: string | null
  /** Delivery state: the next audit seq to consider. */
  readonly cursor: number
  /** Failed attempts at the event at the cursor. */
  readonly attempts: number
  readonly nextAttemptAt: string
  readonly lastError: string | null
  readonly delivered: number
  readonly failed: number
}

/** What a delivery pass changes on a subscription it holds the lease of. */
export interface WebhookProgress {
  readonly cursor: number
  readonly attempts: number
  readonly nextAttemptAt: string
  readonly lastError: string | null
  readonly delivered: number
  readonly failed: number
  /** When given, the lease is extended to this time (ISO 8601): the holder's heartbeat while it delivers. */
  readonly leaseUntil?: string
}

/**
 * Queues and assignment, durable timers and webhook subscriptions. Assignment holds two invariants under any
 * concurrency, on both engines: a case is held by at most one operator, and an operator never holds more open
 * cases than their capacity. Both are kept by conditional updates inside one transaction (PostgreSQL adds
 * `FOR UPDATE SKIP LOCKED` so that concurrent assigners take different rows instead of queueing on one).
 *
 * Failures: `CASE_NOT_QUEUED`, `CASE_ALREADY_ASSIGNED`, `OPERATOR_AT_CAPACITY`, `OPERATOR_NOT_FOUND`, `CONFLICT`.
 */
export interface WorkStore {
  /**
   * Records each queue's SLA (seconds) and each operator's capacity, and recomputes every operator's load from the
   * work items (self-healing after a crash or a capacity change). Called at start with the workspace.
   */
  configureWork(config: {
    readonly queues: readonly { readonly id: string; readonly slaSeconds: number }[]
    readonly operators: readonly { readonly id: string; readonly capacity: number }[]
  }): Promise<void>
  getWorkItem(caseId: string): Promise<WorkItem | undefined>
  /** Items of one queue by priority (rank, then case id); waiting ones only unless `assigned` is true. */
  listQueueItems(
    queue: string,
    options: { readonly limit: number; readonly assigned?: boolean; readonly operatorId?: string },
  ): Promise<WorkItem[]>
  /**
   * Per queue: waiting, assigned and breached counts, the earliest SLA deadline of a waiting case and when the
   * longest-waiting one entered the queue.
   */
  queueSummary(): Promise<
    Record<
      string,
      { waiting: number; assigned: number; breached: number; nextDue: string | null; oldestWaiting: string | null }
    >
  >
  operatorLoads(): Promise<OperatorLoad[]>
  /**
   * Gives the waiting case `caseId` to `operatorId`. Of concurrent claims on one case exactly one succeeds; the
   * others fail with `CASE_ALREADY_ASSIGNED`. Fails with `OPERATOR_AT_CAPACITY` when the operator holds `capacity`
   * open cases, `CASE_NOT_QUEUED` when the case waits in no queue. Writes the `case.assigned` event and audit leaf.
   */
  claimCase(input: {
    readonly caseId: string
    readonly operatorId: string
    readonly at: string
    readonly actor: { readonly kind: string; readonly id: string }
  }): Promise<Assignment>
  /**
   * Takes the highest-priority waiting case of `queue` that has an eligible operator with free capacity and gives it
   * to the least-loaded of them. `candidates(item)` lists the operators eligible for an item (skills, language).
   * Undefined when nothing can be assigned now. Concurrent callers never take the same case.
   */
  assignNext(input: {
    readonly queue: string
    readonly candidates: (item: WorkItem) => readonly string[]
    readonly at: string
    readonly actor: { readonly kind: string; readonly id: string }
  }): Promise<Assignment | undefined>

  /**
   * Up to `max` assignments in one transaction (the background assigner and bulk dispatch): each case as
   * `assignNext` would, operators' capacity counted as it fills. Empty when nothing can be assigned; `CONFLICT`
   * (retry) when the eligible operators with capacity are all held by concurrent assigners at that moment.
   */
  assignBatch(input: {
    readonly queue: string
    readonly candidates: (item: WorkItem) => readonly string[]
    readonly at: string
    readonly actor: { readonly kind: string; readonly id: string }
    readonly max: number
  }): Promise<Assignment[]>

  /**
   * Schedules a timer; an existing pending timer of the same kind and key is moved to the new time and payload. One
   * due within `TIMER_WAKE_HORIZON_MS` is announced on the `timers` change channel (as are the timers written with
   * approvals, confirmations, agent follow-ups and short SLAs).
   */
  scheduleTimer(kind: string, key: string, dueAt: string, payload: Readonly<Record<string, unknown>>): Promise<void>
  /** Cancels a pending timer; false when there was none. */
  cancelTimer(kind: string, key: string): Promise<boolean>
  getTimer(kind: string, key: string): Promise<TimerRecord | undefined>
  /**
   * Leases up to `limit` due pending timers to `owner` until `leaseUntil`, each by a conditional update: two nodes
   * never hold the same timer. A lease that runs out (its holder died) makes the timer due again.
   */
  leaseDueTimers(
    kinds: readonly string[],
    now: string,
    owner: string,
    leaseUntil: string,
    limit: number,
  ): Promise<TimerRecord[]>
  /** Marks a leased timer fired; false (nothing written) when `owner` no longer holds it or it already fired. */
  completeTimer(kind: string, key: string, owner: string, at: string): Promise<boolean>
  /**
   * When the next pending timer of `kinds` may be leased (RFC 3339): the earliest due time, or a leased timer's lease
   * end; undefined when none is pending. Looks at the earliest pending timers by due time only (a few dozen): the
   * scheduler's fallback pass finds any other. What arms the scheduler's wake-up after each pass.
   */
  nextTimerDue(kinds: readonly string[]): Promise<string | undefined>
  /** Records a failed run; the timer is due again at `retryAt`. */
  failTimer(kind: string, key: string, owner: string, error: string, retryAt: string): Promise<void>

  createWebhook(hook: WebhookRecord, audit: AuditEntryBody): Promise<void>
  /** Subscriptions not deleted, oldest first. */
  listWebhooks(): Promise<WebhookRecord[]>
  getWebhook(id: string): Promise<WebhookRecord | undefined>
  deleteWebhook(id: string, at: string, audit: AuditEntryBody): Promise<boolean>
  /** Leases the subscriptions due for delivery (`next_attempt_at <= now`) to `owner` until `leaseUntil`. */
  leaseDueWebhooks(now: string, owner: string, leaseUntil: string): Promise<WebhookRecord[]>
  /** Saves a delivery pass and keeps the lease; false when `owner` no longer holds it. */
  saveWebhookProgress(id: string, owner: string, progress: WebhookProgress): Promise<boolean>
  releaseWebhook(id: string, owner: string): Promise<void>
}

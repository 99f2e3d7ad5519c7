import type { ApprovalRecord, ApprovalState } from '../approvals/approval.js'
import type { AuditEntryBody } from '../audit/entry.js'
import type { CompletedNode, SubtreeAddress } from '../audit/merkle.js'
import type { CaseEvent, CaseRecord, DecisionRecord } from '../cases/records.js'
import type { ConfirmationRecord, ConfirmationState } from '../delegation/confirmation.js'
import type { AgentCredentialRecord, AgentRecord, AgentState, OperatorRecord } from '../identity/principals.js'
import type { ActionRecord, ActionState } from '../tools/action.js'
import type { ChangeFeed } from './changes.js'
import type { DelegationStore } from './delegation-store.js'
import type { HistoryStore } from './history-store.js'
import type { Engine } from './schema.js'

export type { Engine } from './schema.js'

/**
 * `analyst`: read-only (decision quality, policy preview, cases and decisions); `metrics`: only `GET /metrics`.
 */
export const ROLES = ['admin', 'service', 'operator', 'analyst', 'metrics'] as const
export type Role = (typeof ROLES)[number]

export interface ApiKeyRecord {
  readonly id: string
  readonly name: string
  readonly role: Role
  /** sha256 hex of the key; the key itself is never stored. */
  readonly hash: string
  readonly createdAt: string
  readonly revokedAt: string | null
  /** For an operator key: the operator principal (`operators.yaml` id) it belongs to. */
  readonly principalId?: string | null
}

export interface CustomerRecord {
  readonly id: string
  readonly tier: string
  readonly verified: boolean
  readonly attributes: Readonly<Record<string, unknown>>
  readonly updatedAt: string
}

export interface PolicyVersionRecord {
  readonly hash: string
  readonly name: string
  readonly version: number
  readonly owner: string
  readonly file: string
  readonly source: string
  readonly loadedAt: string
}

/** What `Store.activatePolicyVersion` did, and the newest version the store holds after it. */
export interface PolicyActivation {
  readonly outcome: 'activated' | 'unchanged' | 'conflict'
  readonly newest: PolicyVersionRecord
}

export interface StoredAuditEntry {
  readonly seq: number
  /** Canonical JSON (RFC 8785) of the entry: the leaf's bytes. */
  readonly entry: string
  /** sha256(0x00 || entry), RFC 6962 leaf hash. */
  readonly leafHash: Uint8Array
  readonly createdAt: string
}

/**
 * A signed tree head: the RFC 6962 tree over audit entries [0, size) had root `root`, signed at `timestamp` by the
 * Ed25519 key `keyId`. What exactly is signed is `headMessage` in `src/audit/head.ts`.
 */
export interface SignedTreeHead {
  readonly size: number
  /** MTH of the first `size` leaves, 32 bytes. */
  readonly root: Uint8Array
  /** RFC 3339, UTC, millisecond precision (`Date.prototype.toISOString`). */
  readonly timestamp: string
  /** First 16 hex characters of SHA-256 of the signing key's SPKI DER. */
  readonly keyId: string
  /** 64-byte Ed25519 signature. */
  readonly signature: Uint8Array
}

/** A public key that signs (or signed) tree heads. Keys are never deleted: retired keys still verify old heads. */
export interface AuditKeyRecord {
  readonly keyId: string
  /** The Ed25519 public key as PEM (SPKI). */
  readonly publicKey: string
  readonly createdAt: string
  /** When the key stopped signing new heads; null while it is the current key. */
  readonly retiredAt: string | null
}

/** A stored complete subtree of level ≥ 1 (level 0 is the entry's leaf hash). */
export interface StoredTreeNode {
  readonly level: number
  readonly index: number
  readonly hash: Uint8Array
}

/** What `Store.health()` found. */
export type StoreHealth = { readonly ok: true } | { readonly ok: false; readonly code: string; readonly reason: string }

/** The right to run the audit sequencer, held until released (PostgreSQL: a session advisory lock). */
export interface SequencerLease {
  /** True while the lease still holds (the lock's connection is alive). */
  held(): Promise<boolean>
  /** Gives the lease up. Idempotent. */
  release(): Promise<void>
}

/** One atomic write of a case: its new snapshot, its new events, its decisions and their audit entries. */
export interface CaseCommit {
  readonly case: CaseRecord
  /**
   * The snapshot version this commit was computed from; `null` for a new case. When the stored version differs the
   * commit is refused with `CONFLICT` and nothing is written (optimistic concurrency: the caller reloads and re-decides).
   */
  readonly expectedVersion: number | null
  readonly events: readonly CaseEvent[]
  readonly decisions: readonly DecisionRecord[]
  readonly audit: readonly AuditEntryBody[]
  /**
   * The customer's stored tier as the writer read it when it decided (`''` for none), which ranks a new case's work
   * item. Given, it lets PostgreSQL open a case in one statement; absent, the store reads it in the transaction.
   */
  readonly customerTier?: string | undefined
  /**
   * The agent the new snapshot hands the case to (as agent or hybrid drafter): the commit is refused with
   * `CONFLICT`, nothing written, unless that agent is `active` in the store inside the transaction (PostgreSQL locks
   * its row `FOR SHARE`, so a suspension either waits for this commit or is seen by it). The writer decided with
   * the agent's state read before; on `CONFLICT` it reloads and decides again.
   */
  readonly requireActiveAgent?: string | undefined
}

/**
 * The persistence port. Every method that changes state takes the audit entries that describe the change and
 * writes them in the same transaction (invariant 1): either all rows land, or none. Methods resolve only after the
 * transaction is durable (SQLite `synchronous=FULL`, PostgreSQL `synchronous_commit=on`).
 *
 * Failures: `CONFLICT` (stale version, duplicate id), `STORE_UNAVAILABLE` (the engine cannot be reached).
 */
export interface Store
  extends AuthorityStore,
    AuditStore,
    CaseStore,
    DelegationStore,
    HistoryStore,
    PolicyStore,
    SettingsStore,
    WorkStore {
  readonly engine: Engine
  /**
   * Wake-ups on changes by any node sharing this store (PostgreSQL: LISTEN/NOTIFY on one connection per store) or by
   * this process (SQLite): new audit entries, a newly activated policy version. See `changes.ts`.
   */
  readonly changes: ChangeFeed
  /** Creates or upgrades the schema. Idempotent. */
  migrate(): Promise<void>
  close(): Promise<void>
  /**
   * Whether the engine answers a trivial query now; when not, why (the `STORE_UNAVAILABLE` / `STORE_FULL` message,
   * naming the cause, never the host). Never throws.
   */
  health(): Promise<StoreHealth>

  /**
   * Takes the sequencer role if free. PostgreSQL: `pg_try_advisory_lock` on a dedicated connection kept until
   * `release()` (one sequencer per database across nodes); SQLite: always granted (one process owns the file).
   * Undefined when another holder has it. `integrateTree`'s size check keeps the tree right even if two ran.
   */
  acquireSequencerLease(): Promise<SequencerLease | undefined>
}

/** Customers, cases, their events and decisions (`case-store.ts`). */
export interface CaseStore {
  putCustomer(customer: CustomerRecord, audit: AuditEntryBody): Promise<void>
  getCustomer(id: string): Promise<CustomerRecord | undefined>

  commitCase(commit: CaseCommit): Promise<void>
  getCase(id: string): Promise<CaseRecord | undefined>
  /** Events of one case in order. */
  listCaseEvents(caseId: string): Promise<CaseEvent[]>
  listDecisions(caseId: string): Promise<DecisionRecord[]>
  getDecision(id: string): Promise<DecisionRecord | undefined>
  /** Open cases of one customer, newest first, at most `limit`. */
  listOpenCasesOfCustomer(customerId: string, limit: number): Promise<CaseRecord[]>
  /**
   * What a case open reads before it decides, in one statement (one round trip on PostgreSQL): the customer's record
   * (`getCustomer`) and its open cases, newest first, at most `limit` (`listOpenCasesOfCustomer`).
   */
  customerWithOpenCases(
    customerId: string,
    limit: number,
  ): Promise<{ readonly customer: CustomerRecord | undefined; readonly open: CaseRecord[] }>
  /** Open cases waiting in each queue with the oldest `state_since`. */
  queueStats(): Promise<Record<string, { depth: number; oldestSince: string | null }>>
  listCases(filter: {
    readonly state?: string
    readonly queue?: string
    readonly handlerKind?: string
    readonly limit: number
    readonly after?: string
  }): Promise<CaseRecord[]>
}

/** Policy versions (`policy-store.ts`). */
export interface PolicyStore {
  /**
   * Activates a policy version against the newest one the store holds (`newestPolicyVersion`), by
   * `admitPolicyVersion` (`src/policy/versions.ts`): a higher version is recorded with its audit entry
   * (`activated`); the newest document again writes nothing (`unchanged`); any other document at the same or a
   * lower version writes nothing (`conflict`). `newest` is the newest version after the call. Activations are
   * serialised across nodes (a transaction-scoped advisory lock on PostgreSQL; SQLite has one writer), so two
   * documents can never both be activated as one version.
   */
  activatePolicyVersion(p: PolicyVersionRecord, audit: AuditEntryBody): Promise<PolicyActivation>
  /** The highest version ever activated (among equal versions, which only older stores hold: the latest loaded). */
  newestPolicyVersion(): Promise<PolicyVersionRecord | undefined>
  /** Every version ever activated, oldest first. */
  listPolicyVersions(): Promise<PolicyVersionRecord[]>
}

/** The audit log: entries, stored subtrees, signed heads, head-signing keys (`audit-store.ts`). */
export interface AuditStore {
  /** Appends audit entries on their own (events that change no other table). */
  appendAudit(entries: readonly AuditEntryBody[]): Promise<void>
  /**
   * Resolves once every audit entry committed before the call has its sequence number. PostgreSQL queues the
   * entries of a writing transaction and sequences them just after (`audit-queue.ts`); the audit reads below
   * (`readAudit`, `scanAudit`, `readLeafHashes`, `listCaseAudit`, `auditSize`) wait for this themselves. SQLite
   * sequences in the writing transaction: nothing to wait for.
   */
  flushAudit(): Promise<void>
  /** Entries with `from <= seq < to`, in order. */
  readAudit(from: number, to: number): Promise<StoredAuditEntry[]>
  auditSize(): Promise<number>

  /**
   * Entries with `seq >= from` in seq order, as batches of at most `batchSize` rows (a keyset cursor: no transaction
   * is held between batches). Gaps are not filled: a reader that needs density checks it.
   */
  scanAudit(from: number, batchSize: number): AsyncIterable<readonly StoredAuditEntry[]>
  /** Leaf hashes of entries `from <= seq < from + limit`, in order (what the sequencer integrates). */
  readLeafHashes(
    from: number,
    limit: number,
  ): Promise<readonly { readonly seq: number; readonly leafHash: Uint8Array }[]>
  /**
   * Every entry whose body names `caseId`, in seq order: those in the tree from the case index `integrateTree`
   * maintains, and those beyond it by filtering the not-yet-integrated tail.
   */
  listCaseAudit(caseId: string): Promise<StoredAuditEntry[]>

  /**
   * Integrates leaves into the stored tree, in ONE transaction: inserts the completed subtrees of level ≥ 1, indexes
   * the new entries by case (kept off the append path), and inserts the signed head for the new size. Refused with `CONFLICT` (nothing written) unless the latest stored head has size
   * `fromSize` (0: no head yet), and `head.size` is larger than it and at most `auditSize()`: two sequencers can never
   * interleave. A level-0 node is a programmer error (`TypeError`): leaf hashes live in the entries.
   */
  integrateTree(fromSize: number, nodes: readonly CompletedNode[], head: SignedTreeHead): Promise<void>
  /**
   * Hashes of complete subtrees in the order asked, in one round trip (level 0 from the entries' leaf hashes, level
   * ≥ 1 from the tree). Fails with `AUDIT_ENTRY_NOT_FOUND` when any is not stored.
   */
  getTreeNodes(addresses: readonly SubtreeAddress[]): Promise<Uint8Array[]>
  /** Stored subtrees of level ≥ 1 in the given index ranges (inclusive), in (level, index) order; for verify. */
  scanTreeNodes(
    ranges: readonly { readonly level: number; readonly from: number; readonly to: number }[],
  ): Promise<StoredTreeNode[]>
  /** Number of stored subtrees of level ≥ 1 (a tree of n leaves has Σ_{l≥1} ⌊n / 2^l⌋). */
  countTreeNodes(): Promise<number>
  /** The signed head of the largest size; undefined before the first one. Its size is the tree size. */
  latestHead(): Promise<SignedTreeHead | undefined>
  headAt(size: number): Promise<SignedTreeHead | undefined>
  /** Every signed head, by size ascending. */
  listHeads(): Promise<SignedTreeHead[]>
  /** Records a head-signing public key with its audit entry; false (nothing written) when the key id exists. */
  putAuditKey(key: AuditKeyRecord, audit: AuditEntryBody): Promise<boolean>
  /**
   * In one transaction: records `next` (unless already recorded), sets `retired_at = next.createdAt` on key
   * `retiring` when it is recorded and not yet retired, and appends `audit`.
   */
  rotateAuditKey(next: AuditKeyRecord, retiring: string | null, audit: AuditEntryBody): Promise<void>
  /** Every head-signing key, oldest first. */
  listAuditKeys(): Promise<AuditKeyRecord[]>
}

/** API keys, settings and one-time ids (`settings-store.ts`). */
export interface SettingsStore {
  createKey(key: ApiKeyRecord, audit: AuditEntryBody): Promise<void>
  revokeKey(id: string, at: string, audit: AuditEntryBody): Promise<boolean>
  findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>
  listKeys(): Promise<ApiKeyRecord[]>
  countKeys(role: Role): Promise<number>

  getSetting(key: string): Promise<string | undefined>
  putSetting(key: string, value: string): Promise<void>
  /**
   * Stores `value` under `key` unless a value is already there, durably, and returns what is stored: the first
   * writer wins, so nodes that race to create a shared secret all end up with the same one.
   */
  claimSetting(key: string, value: string): Promise<string>

  /**
   * Records that the one-time id `id` of `scope` (a client assertion's issuer and `jti`, a signed-out console session)
   * has been used, durably and shared by every node, until `expiresAt` (ISO 8601; after it the id is refused by its own
   * expiry anyway). True when this call recorded it; false when it was already recorded (a replay).
   */
  spendOnce(scope: string, id: string, expiresAt: string): Promise<boolean>
  /** True when `spendOnce(scope, id, …)` has recorded `id` and it has not expired. */
  isSpent(scope: string, id: string): Promise<boolean>
}

// Agents, operators, credentials, actions, approvals and confirmations (`authority-store.ts`).

/** A credential Baton minted (access token, per-call or scoped credential), kept for the privilege report. */
export interface IssuedCredentialRecord {
  readonly jti: string
  readonly agentId: string
  readonly caseId: string
  readonly kind: 'access' | 'call' | 'scoped'
  readonly tools: readonly string[]
  readonly epoch: number
  readonly issuedAt: string
  readonly expiresAt: string
}

/** A durable timer to store with a change (see `TimerScheduler`): its handler runs once it is due. */
export interface TimerDraft {
  readonly kind: string
  readonly key: string
  /** RFC 3339. */
  readonly dueAt: string
  readonly payload: Readonly<Record<string, unknown>>
}

/** The case's handler changing with an action (an `escalate` handing the case to a human, a risk the agent raised). */
export interface CaseChange {
  /** The new snapshot; written only if the stored version is still `expectedVersion`. */
  readonly case: CaseRecord
  readonly expectedVersion: number
  readonly events: readonly CaseEvent[]
}

export interface ActionCommit {
  readonly action: ActionRecord
  readonly decision: DecisionRecord
  /** The authority epoch the deciding credential carried: the commit is refused if the case moved since. */
  readonly expectedEpoch: number
  readonly caseChange?: CaseChange | undefined
  readonly approval?: ApprovalRecord | undefined
  /** For `confirm`: the customer confirmation the action waits for (with its durable expiry timer). */
  readonly confirmation?: ConfirmationRecord | undefined
  readonly issued?: readonly IssuedCredentialRecord[] | undefined
  readonly audit: readonly AuditEntryBody[]
}

/**
 * Principals, agent credentials, minted credentials, actions and approvals. Every state change takes the audit
 * entries that describe it and writes them in the same transaction (invariant 1).
 *
 * Failures: `CONFLICT` (duplicate id, stale case version), `CREDENTIAL_REVOKED` (the case's authority epoch moved
 * while an action was decided), `AGENT_NOT_FOUND`, `AGENT_STATE_INVALID`, `APPROVAL_NOT_FOUND`,
 * `APPROVAL_NOT_PENDING`, `STORE_UNAVAILABLE`.
 */
export interface AuthorityStore {
  /** Inserts the agent unless one with its id exists; true when inserted (then `audit` is appended). */
  registerAgent(agent: AgentRecord, audit: AuditEntryBody): Promise<boolean>
  getAgent(id: string): Promise<AgentRecord | undefined>
  listAgents(): Promise<AgentRecord[]>
  /** Every registered agent's lifecycle state, by id (what routing reads as `agents.<id>.state`). */
  agentStates(): Promise<Record<string, AgentState>>
  /** Ids of the open cases the agent handles, as agent or as a hybrid case's drafter, oldest first. */
  listCasesHeldBy(agentId: string): Promise<string[]>
  /**
   * Moves the agent to `to` if its state is one of `from` (else `AGENT_STATE_INVALID`, nothing written). Suspending
   * or retiring also bumps the authority epoch of every open case the agent handles, and retiring revokes its
   * authentication credentials; `audit(revokedCases)` builds the entries written in the same transaction, and
   * `followUp`, a durable timer (as `WorkStore.scheduleTimer` stores it), is stored in it too.
   */
  transitionAgent(
    id: string,
    from: readonly AgentState[],
    to: AgentState,
    at: string,
    audit: (revokedCases: readonly string[]) => readonly AuditEntryBody[],
    followUp?: TimerDraft,
  ): Promise<{ readonly agent: AgentRecord; readonly revokedCases: readonly string[] }>
  /** Records the owner's review of the agent's privileges. */
  reviewAgent(id: string, by: string, at: string, audit: AuditEntryBody): Promise<AgentRecord>

  registerOperator(op: OperatorRecord, audit: AuditEntryBody): Promise<boolean>
  getOperator(id: string): Promise<OperatorRecord | undefined>
  listOperators(): Promise<OperatorRecord[]>

  addAgentCredential(c: AgentCredentialRecord, audit: AuditEntryBody): Promise<void>
  /** Unrevoked credentials of one agent, oldest first. */
  listAgentCredentials(agentId: string): Promise<AgentCredentialRecord[]>

  recordIssuedCredentials(c: readonly IssuedCredentialRecord[], audit: readonly AuditEntryBody[]): Promise<void>
  /** Credentials minted for the agent whose expiry is after `now`, whose case epoch has not moved since. */
  listOutstandingCredentials(agentId: string, now: string): Promise<IssuedCredentialRecord[]>

  /**
   * Records one decided action in one transaction: the action, its decision, an approval (for `approve`), minted
   * credentials, the case change (for `escalate`) and the audit entries. Refused with `CREDENTIAL_REVOKED` when
   * the case's epoch is no longer `expectedEpoch` (PostgreSQL locks the case row until commit, so a handoff cannot
   * slip in between).
   */
  commitAction(c: ActionCommit): Promise<void>
  getAction(id: string): Promise<ActionRecord | undefined>
  /**
   * Moves the action from one of `from` to `to` (e.g. `authorized → executing`, claimed exactly once); false when
   * it was in another state (nothing written). `patch` sets the result columns; `issued` records credentials minted
   * for the move (the per-call credential of an execution) in the same transaction.
   */
  moveAction(
    id: string,
    from: readonly ActionState[],
    to: ActionState,
    at: string,
    patch: {
      readonly resultStatus?: number | null
      readonly resultDigest?: string | null
      readonly error?: string | null
    },
    audit: readonly AuditEntryBody[],
    issued?: readonly IssuedCredentialRecord[],
  ): Promise<boolean>
  /** Tool → number of actions the agent asked for, `from <= created_at < to` (a delegate's are not counted). */
  toolUsage(agentId: string, from: string, to: string): Promise<Record<string, number>>

  getApproval(id: string): Promise<ApprovalRecord | undefined>
  listApprovals(filter: { readonly state?: ApprovalState; readonly limit: number }): Promise<ApprovalRecord[]>
  /**
   * Settles a pending approval (`approved`, `denied`, `expired`, `superseded`); `APPROVAL_NOT_PENDING` when it
   * is no longer pending (a second decision does nothing). `actionState` moves the gated action with it.
   */
  settleApproval(
    id: string,
    to: Exclude<ApprovalState, 'pending'>,
    by: string | null,
    at: string,
    reason: string | null,
    actionState: ActionState,
    audit: readonly AuditEntryBody[],
  ): Promise<ApprovalRecord>

  getConfirmation(id: string): Promise<ConfirmationRecord | undefined>
  /** Confirmations, oldest first, filtered. */
  listConfirmations(filter: {
    readonly state?: ConfirmationState
    readonly customerId?: string
    readonly caseId?: string
    readonly limit: number
  }): Promise<ConfirmationRecord[]>
  /**
   * Settles a pending confirmation (`confirmed`, `declined`, `expired`, `superseded`); `CONFIRMATION_NOT_PENDING`
   * when it is no longer pending (a replayed answer does nothing). `actionState` moves the gated action with it.
   */
  settleConfirmation(
    id: string,
    to: Exclude<ConfirmationState, 'pending'>,
    by: string | null,
    at: string,
    reason: string | null,
    actionState: ActionState,
    audit: readonly AuditEntryBody[],
  ): Promise<ConfirmationRecord>
}

// Work items, queues, operators' load, timers and webhooks (`work-store.ts`).

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

import type { AuditEntryBody } from '../audit/entry.js'
import type { CompletedNode, SubtreeAddress } from '../audit/merkle.js'
import type { CaseEvent, CaseRecord, DecisionRecord } from '../cases/records.js'
import type { AuthorityStore } from './authority-port.js'
import type { ChangeFeed } from './changes.js'
import type { DelegationStore } from './delegation-store.js'
import type { HistoryStore } from './history-store.js'
import type { Engine } from './schema.js'
import type { WorkStore } from './work-port.js'

export type {
  ActionCommit,
  AuthorityStore,
  CaseChange,
  IssuedCredentialRecord,
  TimerDraft,
} from './authority-port.js'
export type { Engine } from './schema.js'
export type {
  Assignment,
  OperatorLoad,
  TimerRecord,
  WebhookProgress,
  WebhookRecord,
  WorkItem,
  WorkStore,
} from './work-port.js'

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

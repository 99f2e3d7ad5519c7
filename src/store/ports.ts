import type { AuditEntryBody } from '../audit/entry.js'
import type { CaseRecord, CaseEvent, DecisionRecord } from '../cases/records.js'

export type Engine = 'sqlite' | 'postgres'

export const ROLES = ['admin', 'service', 'operator'] as const
export type Role = (typeof ROLES)[number]

export interface ApiKeyRecord {
  readonly id: string
  readonly name: string
  readonly role: Role
  /** sha256 hex of the key; the key itself is never stored. */
  readonly hash: string
  readonly createdAt: string
  readonly revokedAt: string | null
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

export interface StoredAuditEntry {
  readonly seq: number
  /** Canonical JSON (RFC 8785) of the entry: the leaf's bytes. */
  readonly entry: string
  /** sha256(0x00 || entry), RFC 6962 leaf hash. */
  readonly leafHash: Uint8Array
  readonly createdAt: string
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
}

/**
 * The persistence port. Every method that changes state takes the audit entries that describe the change and
 * writes them in the same transaction (invariant 1): either all rows land, or none. Methods resolve only after the
 * transaction is durable (SQLite `synchronous=FULL`, PostgreSQL `synchronous_commit=on`).
 *
 * Failures: `CONFLICT` (stale version, duplicate id), `STORE_UNAVAILABLE` (the engine cannot be reached).
 */
export interface Store {
  readonly engine: Engine
  /** Creates or upgrades the schema. Idempotent. */
  migrate(): Promise<void>
  close(): Promise<void>
  /** True when the engine answers a trivial query. */
  ping(): Promise<boolean>

  createKey(key: ApiKeyRecord, audit: AuditEntryBody): Promise<void>
  revokeKey(id: string, at: string, audit: AuditEntryBody): Promise<boolean>
  findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>
  listKeys(): Promise<ApiKeyRecord[]>
  countKeys(role: Role): Promise<number>

  putCustomer(customer: CustomerRecord, audit: AuditEntryBody): Promise<void>
  getCustomer(id: string): Promise<CustomerRecord | undefined>

  commitCase(commit: CaseCommit): Promise<{ readonly auditSeqs: readonly number[] }>
  getCase(id: string): Promise<CaseRecord | undefined>
  /** Events of one case in order. */
  listCaseEvents(caseId: string): Promise<CaseEvent[]>
  listDecisions(caseId: string): Promise<DecisionRecord[]>
  getDecision(id: string): Promise<DecisionRecord | undefined>
  /** Open cases of one customer, newest first, at most `limit`. */
  listOpenCasesOfCustomer(customerId: string, limit: number): Promise<CaseRecord[]>
  /** Open cases waiting in each queue with the oldest `state_since`. */
  queueStats(): Promise<Record<string, { depth: number; oldestSince: string | null }>>
  listCases(filter: {
    readonly state?: string
    readonly queue?: string
    readonly handlerKind?: string
    readonly limit: number
    readonly after?: string
  }): Promise<CaseRecord[]>

  /** Records a policy version (idempotent by hash) with its audit entry. */
  savePolicyVersion(p: PolicyVersionRecord, audit: AuditEntryBody): Promise<void>
  listPolicyVersions(): Promise<PolicyVersionRecord[]>

  /** Appends audit entries on their own (events that change no other table). */
  appendAudit(entries: readonly AuditEntryBody[]): Promise<readonly number[]>
  /** Entries with `from <= seq < to`, in order. */
  readAudit(from: number, to: number): Promise<StoredAuditEntry[]>
  auditSize(): Promise<number>

  getSetting(key: string): Promise<string | undefined>
  putSetting(key: string, value: string): Promise<void>
}

import type { Generated } from 'kysely'

/** The engine a store runs on. */
export type Engine = 'sqlite' | 'postgres'

/**
 * Table shapes shared by both engines. Times are RFC 3339 strings (UTC, ms precision), which sort correctly as
 * text on both engines; JSON columns hold text so one code path serves SQLite and PostgreSQL; booleans are 0/1.
 */
export interface Database extends WorkTables, DelegationTables {
  api_keys: {
    id: string
    name: string
    role: string
    hash: string
    created_at: string
    revoked_at: string | null
    /** Operator principal of an operator key (migration 0003); null for other keys. */
    principal_id?: string | null | undefined
  }
  customers: {
    id: string
    tier: string
    verified: number
    attributes: string
    updated_at: string
  }
  cases: {
    id: string
    customer_id: string
    channel: string
    subject: string
    state: string
    handler: string
    handler_kind: string
    queue: string | null
    handoffs: number
    messages: number
    risk: string
    first_text: string
    last_event: number
    version: number
    created_at: string
    updated_at: string
    state_since: string
    /** Bumped by the store on every change of handler, risk or state (migration 0003); never written by callers. */
    authority_epoch?: number | undefined
    /** AI turns since the current agent took the case (migration 0004); the no-progress trigger reads it. */
    ai_turns?: number | undefined
    /** 1 while a person who took the case holds it (migration 0010); routing reads it as `case.human_owned`. */
    human_owned?: number | undefined
  }
  /** A case's history folded for the quality figures (migration 0011): derived, rewritten as the case changes. */
  case_folds: {
    case_id: string
    through: number
    fold: number
    state: string
  }
  case_events: {
    case_id: string
    seq: number
    type: string
    data: string
    at: string
  }
  decisions: {
    id: string
    case_id: string
    kind: string
    outcome: string
    data: string
    at: string
    // the lean columns (migration 0009, see decision-columns.ts): what the quality figures read, copied from data
    handler?: string | null | undefined
    rules?: string | null | undefined
    trigger?: string | null | undefined
    policy_hash?: string | null | undefined
    policy_version?: number | null | undefined
    message_id?: string | null | undefined
  }
  policies: {
    hash: string
    name: string
    version: number
    owner: string
    file: string
    source: string
    loaded_at: string
  }
  audit_entries: {
    seq: number
    entry: string
    leaf_hash: Uint8Array
    created_at: string
  }
  audit_state: {
    id: number
    next_seq: number
  }
  /** PostgreSQL only: audit bodies (canonical JSON) waiting for their sequence numbers (`audit-queue.ts`). */
  audit_queue: {
    id: Generated<number>
    body: string
  }
  kv: {
    key: string
    value: string
  }
  /** One-time ids already used (migration 0006): replayed client assertions, signed-out console sessions. */
  spent_ids: {
    scope: string
    id: string
    expires_at: string
  }
  audit_nodes: {
    level: number
    idx: number
    hash: Uint8Array
  }
  audit_heads: {
    size: number
    root: Uint8Array
    timestamp: string
    key_id: string
    signature: Uint8Array
  }
  audit_keys: {
    key_id: string
    public_key: string
    created_at: string
    retired_at: string | null
  }
  audit_case_entries: {
    case_id: string
    seq: number
  }
  operators: {
    id: string
    name: string
    roles: string
    skills: string
    languages: string
    capacity: number
    created_at: string
    updated_at: string
  }
  agents: {
    id: string
    owner: string
    purpose: string
    model: string
    tools: string
    closure: string
    state: string
    created_at: string
    updated_at: string
    reviewed_at: string | null
    reviewed_by: string | null
  }
  agent_credentials: {
    id: string
    agent_id: string
    kind: string
    public_jwk: string | null
    secret_hash: string | null
    created_at: string
    revoked_at: string | null
  }
  issued_credentials: {
    jti: string
    agent_id: string
    case_id: string
    kind: string
    tools: string
    epoch: number
    issued_at: string
    expires_at: string
  }
  actions: {
    id: string
    case_id: string
    agent_id: string
    tool: string
    params: string
    params_digest: string
    outcome: string
    state: string
    decision_id: string
    created_at: string
    updated_at: string
    result_status: number | null
    result_digest: string | null
    error: string | null
    /** 'agent' or 'delegate' (migration 0008); `agent_id` is then the delegate's id. */
    requester_kind?: string | undefined
    /** The grant a delegate asked under (migration 0008). */
    grant_id?: string | null | undefined
  }
  approvals: {
    id: string
    case_id: string
    action_id: string
    tool: string
    params: string
    digest: string
    requester: string
    approver_role: string
    queue: string
    rule: string
    state: string
    case_epoch: number
    created_at: string
    expires_at: string
    decided_by: string | null
    decided_at: string | null
    reason: string | null
  }
}

/** Tables of migration `0008_delegation` (delegates, grants, confirmations); see `delegation-migration.ts`. */
export interface DelegationTables {
  delegates: {
    id: string
    name: string
    vendor: string
    contact: string
    public_jwk: string
    state: string
    created_at: string
    updated_at: string
  }
  grants: {
    id: string
    customer_id: string
    delegate_id: string
    parent_id: string | null
    depth: number
    scopes: string
    limits: string
    may_subdelegate: number
    state: string
    created_at: string
    expires_at: string
    granted_by_kind: string
    granted_by_id: string
    note: string
    revoked_at: string | null
    revoked_by: string | null
    revoke_reason: string | null
  }
  confirmations: {
    id: string
    case_id: string
    action_id: string
    customer_id: string
    tool: string
    params: string
    digest: string
    requester_kind: string
    requester: string
    grant_id: string | null
    rule: string
    state: string
    case_epoch: number
    created_at: string
    expires_at: string
    decided_by: string | null
    decided_at: string | null
    reason: string | null
  }
}

/** Tables of migration `0004_work` (queues, timers, webhooks); see `work-migration.ts`. */
export interface WorkTables {
  work_items: {
    case_id: string
    queue: string
    enqueued_at: string
    sla_due: string
    rank_ms: number
    tier: string
    risky: number
    language: string
    reason: string
    operator_id: string | null
    assigned_at: string | null
    breached: number
  }
  operator_load: {
    operator_id: string
    capacity: number
    active: number
  }
  timers: {
    kind: string
    key: string
    due_at: string
    payload: string
    state: string
    lease_owner: string | null
    lease_until: string | null
    attempts: number
    created_at: string
    fired_at: string | null
    last_error: string | null
  }
  webhooks: {
    id: string
    url: string
    events: string
    secret: string
    created_at: string
    deleted_at: string | null
    cursor: number
    attempts: number
    next_attempt_at: string
    last_error: string | null
    lease_owner: string | null
    lease_until: string | null
    delivered: number
    failed: number
  }
}

export type Row<T extends keyof Database> = {
  [K in keyof Database[T]]: Database[T][K] extends Generated<infer U> ? U : Database[T][K]
}

import type { Generated } from 'kysely'

/**
 * Table shapes shared by both engines. Times are RFC 3339 strings (UTC, ms precision), which sort correctly as
 * text on both engines; JSON columns hold text so one code path serves SQLite and PostgreSQL; booleans are 0/1.
 */
export interface Database {
  api_keys: {
    id: string
    name: string
    role: string
    hash: string
    created_at: string
    revoked_at: string | null
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
  kv: {
    key: string
    value: string
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
}

export type Row<T extends keyof Database> = {
  [K in keyof Database[T]]: Database[T][K] extends Generated<infer U> ? U : Database[T][K]
}

import { RISK_CATEGORIES } from '../signals/types.js'

/**
 * The shape of the facts a policy reads, in one place: it types the CEL variables (so that a typo or a type
 * error in a condition is caught when the policy is compiled) and it validates the `given` facts of policy tests.
 * Every number is a CEL `double` (JSON has one number type); integer literals compare and combine with it.
 */
export type Shape = 'string' | 'number' | 'boolean' | 'list<string>' | 'dyn' | ObjectShape | MapShape

export interface ObjectShape {
  readonly fields: Readonly<Record<string, Shape>>
}

export interface MapShape {
  readonly values: Shape
}

export const ROOT_VARIABLES = ['case', 'signals', 'customer', 'actor', 'queue', 'agents', 'params', 'tool'] as const
export type RootVariable = (typeof ROOT_VARIABLES)[number]

export const QUEUE_SHAPE: ObjectShape = { fields: { depth: 'number', oldest_wait_s: 'number' } }

/** `agents.<id>.state`: the agent's lifecycle state when the decision was made (`provisioned`, `active`, …). */
export const AGENT_SHAPE: ObjectShape = { fields: { state: 'string' } }

export const CASE_SHAPE: ObjectShape = {
  fields: {
    id: 'string',
    channel: 'string',
    state: 'string',
    handler: 'string',
    queue: 'string',
    agent: 'string',
    human_owned: 'boolean',
    handoffs: 'number',
    messages: 'number',
    age_s: 'number',
    time_in_state_s: 'number',
    risk_seen: 'boolean',
    ai_turns: 'number',
    risk_rose: 'boolean',
    sla_breached: 'boolean',
  },
}

export const CUSTOMER_SHAPE: ObjectShape = { fields: { id: 'string', tier: 'string', verified: 'boolean' } }

export const GRANT_SHAPE: ObjectShape = {
  fields: {
    id: 'string',
    scopes: 'list<string>',
    depth: 'number',
    expires_in_s: 'number',
    may_subdelegate: 'boolean',
    granted_by: 'string',
  },
}

export const ACTOR_SHAPE: ObjectShape = {
  fields: {
    kind: 'string',
    id: 'string',
    roles: 'list<string>',
    scopes: 'list<string>',
    chain: 'list<string>',
    grant: GRANT_SHAPE,
  },
}

export interface ShapeInputs {
  readonly topics: readonly string[]
  readonly custom: readonly { readonly name: string; readonly type: 'string' | 'number' | 'integer' | 'boolean' }[]
  /** Known queue names, or null when they are not known (any name is accepted). */
  readonly queues: readonly string[] | null
  /** Known agent ids, or null when they are not known (any id is accepted). */
  readonly agents: readonly string[] | null
  /** The workspace's intent classes (`intent-classes.json`), or null when not known (any name is accepted). */
  readonly intentClasses?: readonly string[] | null | undefined
}

export function factsShape(inputs: ShapeInputs): ObjectShape {
  const risk: Record<string, Shape> = {}
  for (const c of RISK_CATEGORIES) risk[c] = 'boolean'
  const topics: Record<string, Shape> = {}
  for (const t of inputs.topics) topics[t] = 'boolean'
  const custom: Record<string, Shape> = {}
  for (const s of inputs.custom) custom[s.name] = s.type === 'integer' ? 'number' : s.type
  let intentClass: Shape = { values: 'number' }
  if (inputs.intentClasses !== null && inputs.intentClasses !== undefined) {
    const fields: Record<string, Shape> = {}
    for (const c of inputs.intentClasses) fields[c] = 'number'
    intentClass = { fields }
  }
  const signals: ObjectShape = {
    fields: {
      intent: 'string',
      intent_confidence: 'number',
      intent_class: intentClass,
      agent_confidence: 'number',
      language: 'string',
      secrets: 'number',
      secret_kinds: 'list<string>',
      pii: 'list<string>',
      sensitivity: 'list<string>',
      risk: { fields: risk },
      topics: { fields: topics },
      duplicate_of: 'string',
      custom: { fields: custom },
    },
  }
  let queue: Shape = { values: QUEUE_SHAPE }
  if (inputs.queues !== null) {
    const fields: Record<string, Shape> = {}
    for (const q of inputs.queues) fields[q] = QUEUE_SHAPE
    queue = { fields }
  }
  let agents: Shape = { values: AGENT_SHAPE }
  if (inputs.agents !== null) {
    const fields: Record<string, Shape> = {}
    for (const a of inputs.agents) fields[a] = AGENT_SHAPE
    agents = { fields }
  }
  return {
    fields: {
      case: CASE_SHAPE,
      signals,
      customer: CUSTOMER_SHAPE,
      actor: ACTOR_SHAPE,
      queue,
      agents,
      params: { values: 'dyn' },
      tool: 'string',
    },
  }
}

export function isObjectShape(s: Shape): s is ObjectShape {
  return typeof s === 'object' && 'fields' in s
}

export function isMapShape(s: Shape): s is MapShape {
  return typeof s === 'object' && 'values' in s
}

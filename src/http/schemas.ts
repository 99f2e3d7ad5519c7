/** JSON schemas of the HTTP API: they validate requests and generate /openapi.json. */

const handler = {
  type: 'object',
  required: ['kind'],
  properties: {
    kind: { type: 'string', enum: ['agent', 'operator', 'hybrid'] },
    agentId: { type: 'string' },
    queue: { type: 'string' },
    operatorId: { type: 'string' },
  },
} as const

/** One matched rule of a decision's explanation. */
export const ruleMatch = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    reason: { type: 'string' },
    reads: { type: 'object', additionalProperties: true },
  },
} as const

const policyRef = {
  type: 'object',
  properties: { name: { type: 'string' }, version: { type: 'integer' }, hash: { type: 'string' } },
} as const

export const decisionView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    outcome: { type: 'string', enum: ['agent', 'operator', 'hybrid'] },
    rules: { type: 'array', items: { type: 'string' } },
    trigger: { type: 'string' },
    explanation: { type: 'array', items: ruleMatch },
    policy: policyRef,
  },
} as const

export const signalsView = { type: 'object', additionalProperties: true } as const

export const intakeResult = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    messageId: { type: 'string' },
    state: { type: 'string' },
    handler,
    handoff: { type: 'boolean' },
    duplicateOf: { type: 'string' },
    text: { type: 'string', description: 'The message as stored and shown to agents: secrets and card numbers masked' },
    signals: signalsView,
    decision: decisionView,
  },
} as const

export const MAX_TEXT = 16_000

const message = {
  type: 'object',
  additionalProperties: false,
  required: ['text'],
  properties: { text: { type: 'string', minLength: 1, maxLength: MAX_TEXT } },
} as const

const callerSignals = {
  type: 'object',
  description:
    "Caller-provided signals: intent (a label of the workspace's intent model, of the policy's intents: or 'unknown', compared exactly; else 400 VALIDATION_FAILED naming signals.intent), intent_confidence (0..1, only with intent), agent_confidence (0..1), and any the policy declares; a secret in a string signal is redacted before the policy reads it and counts in signals.secrets",
  additionalProperties: { type: ['string', 'number', 'boolean'] },
} as const

const customerInline = {
  type: 'object',
  additionalProperties: false,
  properties: { tier: { type: 'string', maxLength: 64 }, verified: { type: 'boolean' } },
} as const

export const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 128 } },
} as const

export const openCaseBody = {
  type: 'object',
  additionalProperties: false,
  required: ['customer', 'channel', 'message'],
  properties: {
    customer: {
      description: 'Customer id, or an object with id and optional tier/verified',
      anyOf: [
        { type: 'string', minLength: 1, maxLength: 128 },
        {
          type: 'object',
          additionalProperties: false,
          required: ['id'],
          properties: {
            id: { type: 'string', minLength: 1, maxLength: 128 },
            tier: { type: 'string', maxLength: 64 },
            verified: { type: 'boolean' },
          },
        },
      ],
    },
    channel: { type: 'string', enum: ['email', 'chat', 'web', 'phone', 'api', 'social'] },
    subject: {
      type: 'string',
      maxLength: 500,
      description: 'Stored and shown with secrets and card numbers replaced by [REDACTED:<kind>], as the message text',
    },
    message,
    signals: callerSignals,
  },
} as const

export const messageBody = {
  type: 'object',
  additionalProperties: false,
  required: ['message'],
  properties: { message, signals: callerSignals, customer: customerInline },
} as const

export const customerBody = {
  type: 'object',
  additionalProperties: false,
  required: ['tier'],
  properties: {
    tier: { type: 'string', minLength: 1, maxLength: 64 },
    verified: { type: 'boolean' },
    attributes: {
      type: 'object',
      additionalProperties: { type: ['string', 'number', 'boolean'] },
      maxProperties: 50,
      description: 'Strings stored with secrets and card numbers redacted; a name holding a secret is refused',
    },
  },
} as const

export const keyBody = {
  type: 'object',
  additionalProperties: false,
  required: ['role', 'name'],
  properties: {
    role: {
      type: 'string',
      enum: ['admin', 'service', 'operator', 'analyst', 'metrics'],
      description:
        'analyst: read-only (GET /v1/quality, POST /v1/policy/preview, cases, decisions); metrics: GET /metrics only',
    },
    name: { type: 'string', minLength: 1, maxLength: 100 },
    operatorId: {
      type: 'string',
      minLength: 1,
      maxLength: 64,
      description: 'For an operator key: the operator (operators.yaml id) who holds it; needed to decide approvals',
    },
  },
} as const

export const problem = {
  type: 'object',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    errors: {
      type: 'array',
      items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } },
    },
    positions: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          file: { type: 'string' },
          line: { type: 'integer' },
          column: { type: 'integer' },
          message: { type: 'string' },
        },
      },
    },
  },
} as const

export const errorResponses = {
  400: { description: 'Invalid request', ...problem },
  401: { description: 'Missing or wrong API key', ...problem },
  403: { description: 'Role not allowed', ...problem },
} as const

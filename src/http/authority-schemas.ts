import { ruleMatch } from './schemas.js'

/** JSON schemas of the agent, action and approval routes (they validate requests and generate /openapi.json). */

const strings = { type: 'array', items: { type: 'string' } } as const

export const agentView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    owner: { type: 'string' },
    purpose: { type: 'string' },
    model: { type: 'string' },
    tools: strings,
    closure: strings,
    state: { type: 'string', enum: ['provisioned', 'active', 'suspended', 'retired'] },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
    reviewedAt: { type: ['string', 'null'] },
    reviewedBy: { type: ['string', 'null'] },
    credentials: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          kind: { type: 'string' },
          publicJwk: { type: ['object', 'null'], additionalProperties: true },
          createdAt: { type: 'string' },
        },
      },
    },
  },
} as const

export const operatorView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    roles: strings,
    skills: strings,
    languages: strings,
    capacity: { type: 'integer' },
  },
} as const

export const agentSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'owner', 'purpose', 'tools'],
  properties: {
    id: { type: 'string', pattern: '^[a-z0-9][a-z0-9_.-]{0,62}$' },
    owner: { type: 'string', minLength: 3, maxLength: 200 },
    purpose: { type: 'string', minLength: 1, maxLength: 1000 },
    model: { type: 'string', maxLength: 200 },
    tools: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true, maxItems: 200 },
    closure: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true, maxItems: 50 },
    state: { type: 'string', enum: ['provisioned', 'active'] },
  },
} as const

export const tokenBody = {
  type: 'object',
  properties: {
    grant_type: { type: 'string', maxLength: 100 },
    client_id: { type: 'string', maxLength: 128 },
    client_secret: { type: 'string', maxLength: 512 },
    client_assertion_type: { type: 'string', maxLength: 200 },
    client_assertion: { type: 'string', maxLength: 8192 },
    case_id: { type: 'string', maxLength: 128 },
    scope: { type: 'string', maxLength: 4000 },
    subject_token: {
      type: 'string',
      maxLength: 8192,
      description: 'token exchange: a grant id, or an upstream delegate access token',
    },
    subject_token_type: {
      type: 'string',
      maxLength: 200,
      description:
        'token exchange: urn:baton:params:oauth:token-type:grant or urn:ietf:params:oauth:token-type:access_token',
    },
    actor_token: { type: 'string', maxLength: 8192, description: "token exchange: the delegate's RFC 7523 assertion" },
    actor_token_type: {
      type: 'string',
      maxLength: 200,
      description: 'token exchange: urn:ietf:params:oauth:token-type:jwt',
    },
    requested_token_type: { type: 'string', maxLength: 200 },
    audience: { type: 'string', maxLength: 500 },
  },
} as const

export const actionBody = {
  type: 'object',
  additionalProperties: false,
  required: ['tool'],
  properties: {
    tool: { type: 'string', minLength: 1, maxLength: 64 },
    params: {
      type: 'object',
      additionalProperties: true,
      description:
        'Checked against the tool’s parameter schema; a parameter (value or name, at any depth) holding a secret is refused with PARAMS_INVALID, nothing stored or executed',
    },
    risk: {
      type: 'array',
      description: 'Risk indicators the agent raises (they stick to the case and revoke its current credentials)',
      items: { type: 'string', enum: ['fraud', 'legal', 'regulatory', 'safety', 'self_harm', 'human_request'] },
      uniqueItems: true,
    },
  },
} as const

export const actionResult = {
  type: 'object',
  properties: {
    actionId: { type: 'string' },
    caseId: { type: 'string' },
    tool: { type: 'string' },
    outcome: { type: 'string', enum: ['allow', 'approve', 'confirm', 'deny', 'escalate'] },
    state: { type: 'string' },
    paramsDigest: { type: 'string' },
    decision: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        rules: strings,
        explanation: { type: 'array', items: ruleMatch },
        policy: { type: 'object', additionalProperties: true },
      },
    },
    approval: {
      type: 'object',
      properties: { id: { type: 'string' }, approverRole: { type: 'string' }, expiresAt: { type: 'string' } },
    },
    confirmation: {
      type: 'object',
      description: "outcome confirm: the customer's own confirmation the action waits for",
      properties: { id: { type: 'string' }, expiresAt: { type: 'string' }, digest: { type: 'string' } },
    },
    handler: { type: 'object', additionalProperties: true },
    credential: {
      type: 'object',
      properties: { token: { type: 'string' }, expiresAt: { type: 'string' }, audience: { type: 'string' } },
    },
    result: {
      type: 'object',
      properties: {
        status: { type: ['integer', 'null'] },
        digest: { type: ['string', 'null'] },
        error: { type: ['string', 'null'] },
      },
    },
  },
} as const

export const approvalView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    caseId: { type: 'string' },
    actionId: { type: 'string' },
    tool: { type: 'string' },
    params: { type: 'object', additionalProperties: true },
    digest: { type: 'string' },
    requester: { type: 'string' },
    approverRole: { type: 'string' },
    queue: { type: 'string' },
    rule: { type: 'string' },
    state: { type: 'string', enum: ['pending', 'approved', 'denied', 'expired', 'superseded'] },
    caseEpoch: { type: 'integer' },
    createdAt: { type: 'string' },
    expiresAt: { type: 'string' },
    decidedBy: { type: ['string', 'null'] },
    decidedAt: { type: ['string', 'null'] },
    reason: { type: ['string', 'null'] },
  },
} as const

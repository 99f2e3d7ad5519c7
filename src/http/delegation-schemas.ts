/** JSON schemas of the delegation routes (delegates, grants, confirmations); they validate and generate /openapi.json. */

const strings = { type: 'array', items: { type: 'string' } } as const

const jwk = {
  type: 'object',
  description: 'Ed25519 public JWK the delegate signs its RFC 7523 assertions with',
  required: ['kty', 'crv', 'x'],
  properties: { kty: { type: 'string' }, crv: { type: 'string' }, x: { type: 'string' } },
} as const

export const delegateView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    vendor: { type: 'string' },
    contact: { type: 'string' },
    publicJwk: { type: 'object', additionalProperties: true },
    state: { type: 'string', enum: ['active', 'suspended', 'retired'] },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
  },
} as const

export const delegateBody = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'vendor', 'contact', 'jwk'],
  properties: {
    id: { type: 'string', pattern: '^[a-z0-9][a-z0-9_.-]{0,62}$' },
    name: { type: 'string', minLength: 1, maxLength: 200 },
    vendor: { type: 'string', minLength: 1, maxLength: 200, description: 'who makes or runs it (accountable party)' },
    contact: { type: 'string', minLength: 3, maxLength: 200, description: 'an email or URL to reach the vendor' },
    jwk,
  },
} as const

export const grantView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    customerId: { type: 'string' },
    delegateId: { type: 'string' },
    parentId: { type: ['string', 'null'] },
    depth: { type: 'integer' },
    scopes: strings,
    limits: { type: 'object', additionalProperties: { type: 'string' } },
    maySubdelegate: { type: 'boolean' },
    state: { type: 'string', enum: ['active', 'revoked', 'expired'] },
    createdAt: { type: 'string' },
    expiresAt: { type: 'string' },
    grantedBy: { type: 'object', properties: { kind: { type: 'string' }, id: { type: 'string' } } },
    note: { type: 'string' },
    revokedAt: { type: ['string', 'null'] },
    revokedBy: { type: ['string', 'null'] },
    revokeReason: { type: ['string', 'null'] },
  },
} as const

export const grantBody = {
  type: 'object',
  additionalProperties: false,
  required: ['delegate', 'scopes', 'expires_at'],
  properties: {
    delegate: { type: 'string', minLength: 1, maxLength: 64, description: 'the delegate (POST /v1/delegates id)' },
    scopes: {
      type: 'array',
      minItems: 1,
      maxItems: 50,
      items: { type: 'string', minLength: 1, maxLength: 64 },
      description: 'scopes declared in the workspace delegation.yaml',
    },
    expires_at: {
      type: 'string',
      format: 'date-time',
      description:
        'RFC 3339; at most the shortest max_grant of the scopes (for a sub-delegation: not past the grant above)',
    },
    limits: {
      type: 'object',
      maxProperties: 50,
      additionalProperties: { type: 'string', minLength: 1, maxLength: 2000 },
      description:
        'scope → CEL condition over the tool call (params, tool), e.g. {"refund:request": "params.amount <= 20"}; checked with the scope\'s own limit and every earlier hop\'s',
    },
    may_subdelegate: {
      type: 'boolean',
      description: 'whether the delegate may pass part of this grant on (default false)',
    },
    note: { type: 'string', maxLength: 1000, description: 'free text; secrets in it are redacted' },
  },
} as const

export const scopeView = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    description: { type: 'string' },
    routes: strings,
    tools: strings,
    limits: { type: ['string', 'null'] },
    maxGrantSeconds: { type: 'integer' },
  },
} as const

export const confirmationView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    caseId: { type: 'string' },
    actionId: { type: 'string' },
    customerId: { type: 'string' },
    tool: { type: 'string' },
    params: { type: 'object', additionalProperties: true },
    digest: { type: 'string' },
    requesterKind: { type: 'string', enum: ['agent', 'delegate'] },
    requester: { type: 'string' },
    grantId: { type: ['string', 'null'] },
    rule: { type: 'string' },
    state: { type: 'string', enum: ['pending', 'confirmed', 'declined', 'expired', 'superseded'] },
    caseEpoch: { type: 'integer' },
    createdAt: { type: 'string' },
    expiresAt: { type: 'string' },
    decidedBy: { type: ['string', 'null'] },
    decidedAt: { type: ['string', 'null'] },
    reason: { type: ['string', 'null'] },
  },
} as const

export const confirmationBody = {
  type: 'object',
  additionalProperties: false,
  required: ['customer', 'decision'],
  properties: {
    customer: { type: 'string', minLength: 1, maxLength: 128, description: 'the customer the helpdesk authenticated' },
    decision: { type: 'string', enum: ['confirm', 'decline'] },
    params: {
      type: 'object',
      additionalProperties: true,
      description: 'for confirm: exactly the parameters shown to the customer; any difference is refused',
    },
    reason: { type: 'string', maxLength: 2000, description: 'free text; secrets in it are redacted' },
  },
} as const

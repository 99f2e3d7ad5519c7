import { createHash } from 'node:crypto'
import type { Actor } from '../cases/intake.js'
import type { AuthorityDeps } from '../credentials/deps.js'
import { who } from '../credentials/deps.js'
import { BatonError } from '../errors.js'
import { redactFreeText, type SecretRedaction } from '../signals/sensitive.js'
import { AGENT_REROUTE_TIMER, type TimerDraft } from '../store/authority-store.js'
import type { AgentSpec, OperatorSpec } from '../workspace/workspace.js'
import {
  type AgentCredentialRecord,
  type AgentRecord,
  type AgentState,
  statesLeadingTo,
  transitionProblem,
} from './principals.js'

// The key of the keyed hash that stands in for a redacted secret; the offline CLI has none and records the kind only.
type RegistryDeps = Pick<AuthorityDeps, 'store' | 'now' | 'newId'> & { readonly secretHashKey?: Uint8Array | undefined }

/** An admin's free text (reason, owner, purpose…), redacted before it is stored or audited (invariant 7). */
function redacted(deps: RegistryDeps, text: string, field: string, secrets: SecretRedaction[]): string {
  const r = redactFreeText(text, field, deps.secretHashKey)
  secrets.push(...r.secrets)
  return r.text
}

/**
 * Registers the workspace's agents and operators that the store does not know yet (audited `agent.registered`,
 * `operator.registered`). Existing principals keep their stored state: a suspended agent stays suspended even if
 * `agents.yaml` says `active`; lifecycle changes go through the API or CLI.
 */
export async function seedPrincipals(
  deps: RegistryDeps,
  agents: readonly AgentSpec[],
  operators: readonly OperatorSpec[],
  actor: Actor,
): Promise<{ agents: string[]; operators: string[] }> {
  const iso = deps.now().toISOString()
  const added = { agents: [] as string[], operators: [] as string[] }
  for (const a of agents) {
    const record: AgentRecord = { ...a, createdAt: iso, updatedAt: iso, reviewedAt: null, reviewedBy: null }
    const ok = await deps.store.registerAgent(record, {
      type: 'agent.registered',
      at: iso,
      actor: who(actor),
      data: {
        agentId: a.id,
        owner: a.owner,
        purpose: a.purpose,
        model: a.model,
        tools: a.tools,
        closure: a.closure,
        state: a.state,
      },
    })
    if (ok) added.agents.push(a.id)
  }
  for (const o of operators) {
    const ok = await deps.store.registerOperator(
      { ...o, createdAt: iso, updatedAt: iso },
      {
        type: 'operator.registered',
        at: iso,
        actor: who(actor),
        data: {
          operatorId: o.id,
          name: o.name,
          roles: o.roles,
          skills: o.skills,
          languages: o.languages,
          capacity: o.capacity,
        },
      },
    )
    if (ok) added.operators.push(o.id)
  }
  return added
}

/** Registers a new agent through the API (admin), in state `provisioned` unless told otherwise. */
export async function registerAgent(deps: RegistryDeps, actor: Actor, given: AgentSpec): Promise<AgentRecord> {
  const secrets: SecretRedaction[] = []
  const spec: AgentSpec = {
    ...given,
    owner: redacted(deps, given.owner, 'owner', secrets),
    purpose: redacted(deps, given.purpose, 'purpose', secrets),
    model: redacted(deps, given.model, 'model', secrets),
  }
  const iso = deps.now().toISOString()
  const record: AgentRecord = { ...spec, createdAt: iso, updatedAt: iso, reviewedAt: null, reviewedBy: null }
  const ok = await deps.store.registerAgent(record, {
    type: 'agent.registered',
    at: iso,
    actor: who(actor),
    data: {
      agentId: spec.id,
      owner: spec.owner,
      purpose: spec.purpose,
      model: spec.model,
      tools: spec.tools,
      closure: spec.closure,
      state: spec.state,
      ...(secrets.length === 0 ? {} : { secrets }),
    },
  })
  if (!ok) throw new BatonError('CONFLICT', `agent '${spec.id}' already exists`)
  return record
}

/**
 * Moves an agent through its lifecycle, audited and attributed (`agent.activated`, `agent.suspended`,
 * `agent.retired`, with the reason). Suspending or retiring revokes at once every credential it holds: the cases
 * it handles get a new authority epoch (one `credential.revoked` entry per case) and retiring also revokes its
 * authentication keys and secrets. A retired agent cannot come back (`AGENT_STATE_INVALID`).
 *
 * The cases it held must not wait for an agent that cannot act: the same transaction stores a durable timer
 * (`followUp`, kind `agent_reroute`) whose handler decides them again (`rerouteCasesOf`), due at once, or after
 * `followUpAfterMs` for a caller that runs the follow-up itself right away (and then cancels the timer): it fires on
 * the next timer poll of any Baton node, also after a crash or when the change came from the CLI.
 */
export async function transitionAgent(
  deps: RegistryDeps,
  actor: Actor,
  id: string,
  to: Exclude<AgentState, 'provisioned'>,
  givenReason: string,
  options: { readonly followUpAfterMs?: number } = {},
): Promise<{
  agent: AgentRecord
  revokedCases: readonly string[]
  followUp: TimerDraft | undefined
  /** The reason as recorded (secrets redacted): what the follow-up's decisions name. */
  reason: string
}> {
  const secrets: SecretRedaction[] = []
  const reason = redacted(deps, givenReason, 'reason', secrets)
  const current = await deps.store.getAgent(id)
  if (current === undefined) throw new BatonError('AGENT_NOT_FOUND', `no agent with id '${id}'`)
  const problem = transitionProblem(current.state, to)
  if (problem !== null) throw new BatonError('AGENT_STATE_INVALID', `agent '${id}': ${problem}`)
  const now = deps.now()
  const iso = now.toISOString()
  const type = to === 'active' ? 'agent.activated' : to === 'suspended' ? 'agent.suspended' : 'agent.retired'
  const followUp: TimerDraft | undefined =
    to === 'active'
      ? undefined
      : {
          kind: AGENT_REROUTE_TIMER,
          key: `${id}@${iso}`,
          dueAt: new Date(now.getTime() + (options.followUpAfterMs ?? 0)).toISOString(),
          payload: { agentId: id, reason, actor: { kind: actor.kind, id: actor.id, roles: actor.roles } },
        }
  const r = await deps.store.transitionAgent(
    id,
    statesLeadingTo(to),
    to,
    iso,
    (revoked) => [
      {
        type,
        at: iso,
        actor: who(actor),
        data: {
          agentId: id,
          from: current.state,
          to,
          reason,
          revokedCases: revoked,
          ...(secrets.length === 0 ? {} : { secrets }),
        },
      },
      ...revoked.map((caseId) => ({
        type: 'credential.revoked',
        at: iso,
        caseId,
        actor: who(actor),
        data: { agentId: id, reason: to === 'suspended' ? 'agent_suspended' : 'agent_retired' },
      })),
    ],
    followUp,
  )
  return { ...r, followUp, reason }
}

/** Registers an authentication credential for an agent: an Ed25519 public JWK, or a new client secret (returned once). */
export async function addAgentCredential(
  deps: RegistryDeps & { readonly randomSecret: () => string },
  actor: Actor,
  agentId: string,
  input: { readonly kind: 'public_key'; readonly jwk: Readonly<Record<string, unknown>> } | { readonly kind: 'secret' },
): Promise<{ credential: Omit<AgentCredentialRecord, 'secretHash'>; secret?: string }> {
  const agent = await deps.store.getAgent(agentId)
  if (agent === undefined) throw new BatonError('AGENT_NOT_FOUND', `no agent with id '${agentId}'`)
  if (agent.state === 'retired') throw new BatonError('AGENT_STATE_INVALID', `agent '${agentId}' is retired`)
  const iso = deps.now().toISOString()
  let secret: string | undefined
  let record: AgentCredentialRecord
  if (input.kind === 'public_key') {
    const { kty, crv, x } = input.jwk
    if (kty !== 'OKP' || crv !== 'Ed25519' || typeof x !== 'string' || 'd' in input.jwk) {
      throw new BatonError('VALIDATION_FAILED', 'jwk: expected an Ed25519 public key {kty: OKP, crv: Ed25519, x}', {
        fields: [{ field: 'jwk', message: 'expected an Ed25519 public JWK (no private part)' }],
      })
    }
    record = {
      id: deps.newId('acr'),
      agentId,
      kind: 'public_key',
      publicJwk: { kty, crv, x },
      secretHash: null,
      createdAt: iso,
      revokedAt: null,
    }
  } else {
    secret = deps.randomSecret()
    record = {
      id: deps.newId('acr'),
      agentId,
      kind: 'secret',
      publicJwk: null,
      secretHash: createHash('sha256').update(secret, 'utf8').digest('hex'),
      createdAt: iso,
      revokedAt: null,
    }
  }
  await deps.store.addAgentCredential(record, {
    type: 'agent.credential_added',
    at: iso,
    actor: who(actor),
    data: { agentId, credentialId: record.id, kind: record.kind, jwk: record.publicJwk },
  })
  const { secretHash: _h, ...shown } = record
  return secret === undefined ? { credential: shown } : { credential: shown, secret }
}

/** The owner confirms the agent's privileges are still right (recorded as its last review). */
export async function reviewAgent(deps: RegistryDeps, actor: Actor, id: string, givenBy: string): Promise<AgentRecord> {
  const secrets: SecretRedaction[] = []
  const by = redacted(deps, givenBy, 'by', secrets)
  const iso = deps.now().toISOString()
  return deps.store.reviewAgent(id, by, iso, {
    type: 'agent.reviewed',
    at: iso,
    actor: who(actor),
    data: { agentId: id, reviewedBy: by, ...(secrets.length === 0 ? {} : { secrets }) },
  })
}

export interface PrivilegeReport {
  readonly agentId: string
  readonly owner: string
  readonly state: AgentState
  readonly from: string
  readonly to: string
  readonly granted: readonly string[]
  readonly used: Readonly<Record<string, number>>
  /** Granted but not used in the period: candidates for removal. */
  readonly unused: readonly string[]
  readonly outstandingCredentials: number
  readonly lastReview: { readonly at: string; readonly by: string } | null
  /** Why this agent needs attention: unused grants, no known owner, never reviewed. */
  readonly findings: readonly string[]
}

/**
 * Whether an agent's owner is an active principal: a registered operator, or a mailbox (the deployment's directory
 * is not Baton's to check).
 */
export function activeOwner(operatorIds: Iterable<string>): (owner: string) => boolean {
  const operators = new Set(operatorIds)
  return (owner) => operators.has(owner) || /^[^@\s]+@[^@\s]+$/.test(owner)
}

/**
 * Per agent: granted tools against used tools over [from, to), credentials still outstanding, the last owner
 * review. `isActiveOwner` says whether an owner is a live principal (the faces decide what counts).
 */
export async function privilegeReport(
  deps: RegistryDeps,
  from: Date,
  to: Date,
  isActiveOwner: (owner: string) => boolean,
): Promise<PrivilegeReport[]> {
  const agents = await deps.store.listAgents()
  const now = deps.now().toISOString()
  const out: PrivilegeReport[] = []
  for (const a of agents) {
    const [used, outstanding] = await Promise.all([
      deps.store.toolUsage(a.id, from.toISOString(), to.toISOString()),
      deps.store.listOutstandingCredentials(a.id, now),
    ])
    const unused = a.tools.filter((t) => (used[t] ?? 0) === 0)
    const findings: string[] = []
    if (a.state !== 'retired' && unused.length > 0) findings.push(`granted but unused: ${unused.join(', ')}`)
    if (a.state !== 'retired' && (a.owner.trim() === '' || !isActiveOwner(a.owner))) {
      findings.push(`owner '${a.owner}' is not an active principal`)
    }
    if (a.state !== 'retired' && a.reviewedAt === null) findings.push('never reviewed by its owner')
    out.push({
      agentId: a.id,
      owner: a.owner,
      state: a.state,
      from: from.toISOString(),
      to: to.toISOString(),
      granted: a.tools,
      used,
      unused,
      outstandingCredentials: outstanding.length,
      lastReview: a.reviewedAt === null ? null : { at: a.reviewedAt, by: a.reviewedBy ?? '' },
      findings,
    })
  }
  return out
}

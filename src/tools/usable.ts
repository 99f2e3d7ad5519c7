import { type Actor, actorFacts } from '../cases/intake.js'
import type { CaseRecord } from '../cases/records.js'
import type { CredentialClaims } from '../credentials/tokens.js'
import { type DelegationSpec, scopesForTool } from '../delegation/document.js'
import type { AgentRecord } from '../identity/principals.js'
import type { CompiledPolicy } from '../policy/compile.js'
import { possibleActionOutcomes } from '../policy/evaluate.js'
import type { ActionOutcome } from '../policy/types.js'
import type { CustomerRecord } from '../store/ports.js'
import { actionFacts, authorityProblem, CLOSE_TOOL } from './actions.js'
import type { CatalogTool, ToolCatalog } from './catalog.js'

export interface UsableTool {
  readonly tool: CatalogTool
  /** What a call could get (allow, approve or confirm, maybe deny or escalate for some parameters). */
  readonly outcomes: ReadonlySet<ActionOutcome>
}

/**
 * The catalog tools `agent` could use on case `c` now with a credential carrying `claims`: granted to the agent,
 * covered by the credential, and ones the policy could allow or send for approval on today's facts whatever the
 * parameters (`possibleActionOutcomes`); `close_case` only with some closure authority. Empty when the agent does
 * not hold the open case at the credential's epoch. In catalog order. Pure.
 */
export function usableTools(
  policy: CompiledPolicy,
  catalog: ToolCatalog,
  c: CaseRecord | undefined,
  customer: CustomerRecord | undefined,
  agent: AgentRecord,
  claims: Pick<CredentialClaims, 'case' | 'epoch' | 'tools'>,
  queues: Record<string, { depth: number; oldestSince: string | null }>,
  at: Date,
  /** Only this tool (a call checks the one it names). */
  only?: string,
): UsableTool[] {
  if (c === undefined || authorityProblem(c, agent, claims) !== null) return []
  const out: UsableTool[] = []
  for (const tool of only === undefined ? catalog.values() : [catalog.get(only)].filter((x) => x !== undefined)) {
    if (!agent.tools.includes(tool.name) || !claims.tools.includes(tool.name)) continue
    if (tool.name === CLOSE_TOOL && agent.closure.length === 0) continue
    const actor = { kind: 'agent', id: agent.id, roles: ['agent'] }
    const facts = actionFacts(policy, c, c.risk, customer, actor, tool.name, {}, queues, at)
    const outcomes = possibleActionOutcomes(policy, facts)
    if (outcomes.has('allow') || outcomes.has('approve')) out.push({ tool, outcomes })
  }
  return out
}

/**
 * The catalog tools a customer's delegate (`actor`, kind `delegate`, with its delegation context) could ask for on
 * its customer's open case `c` now: a scope among `scopes` unlocks the tool (delegation.yaml), and the policy could
 * allow it, send it for approval or for the customer's confirmation on today's facts whatever the parameters (the
 * scopes' parameter limits are checked by the call). Empty for another customer's case or a closed one. Pure.
 */
export function usableDelegateTools(
  policy: CompiledPolicy,
  catalog: ToolCatalog,
  spec: DelegationSpec,
  c: CaseRecord | undefined,
  customer: CustomerRecord | undefined,
  actor: Actor,
  scopes: readonly string[],
  queues: Record<string, { depth: number; oldestSince: string | null }>,
  at: Date,
  only?: string,
): UsableTool[] {
  if (c === undefined || c.state !== 'open' || c.customerId !== actor.delegation?.customerId) return []
  const out: UsableTool[] = []
  const facts = actorFacts(actor)
  for (const tool of only === undefined ? catalog.values() : [catalog.get(only)].filter((x) => x !== undefined)) {
    if (scopesForTool(spec, scopes, tool.name).length === 0) continue
    const outcomes = possibleActionOutcomes(
      policy,
      actionFacts(policy, c, c.risk, customer, facts, tool.name, {}, queues, at),
    )
    if (outcomes.has('allow') || outcomes.has('approve') || outcomes.has('confirm')) out.push({ tool, outcomes })
  }
  return out
}

import type { HandlerKind } from '../cases/case.js'
import type { RouteResult } from '../policy/types.js'

/** Rule id recorded when an AI agent asked for a human and the policy would have kept the case with an AI agent. */
export const AGENT_HANDOFF_RULE = 'agent-handoff-request'

/**
 * Where an AI agent's request for a human sends the case, given what the policy decided on the case's facts with
 * the request raised (`decided`): there when that is a human (a hybrid counts only for a case the agent holds
 * alone); else the queue `fallback` anyway (rule `agent-handoff-request`, trigger `manual`): an agent's request
 * for a human is never refused. Pure; the live path (`requestHandoff`) and replay share it.
 */
export function agentHandoffRoute(decided: RouteResult, current: HandlerKind, fallback: string): RouteResult {
  const toHuman = decided.handler.kind === 'operator' || (decided.handler.kind === 'hybrid' && current === 'agent')
  if (toHuman) return decided
  return {
    ...decided,
    outcome: 'operator',
    handler: { kind: 'operator', queue: fallback },
    rules: [...decided.rules, AGENT_HANDOFF_RULE],
    explanation: [
      ...decided.explanation,
      {
        id: AGENT_HANDOFF_RULE,
        reason: 'The AI agent asked for a human; the policy would have kept the case with an AI agent',
        reads: { 'actor.kind': 'agent' },
      },
    ],
    trigger: 'manual',
  }
}

import type { ActionResult } from '../policy/types.js'

/** Rule id added when a hybrid case's agent asks for something the policy would allow: it may only propose. */
export const HYBRID_PROPOSAL_RULE = 'hybrid-proposal'

/**
 * In a hybrid case an operator owns the case: what the policy would allow the drafting agent becomes an approval
 * for any operator, in the case's queue. Pure; the live path (`requestAction`) and replay share it.
 */
export function asHybridProposal(result: ActionResult, queue: string): ActionResult {
  if (result.outcome !== 'allow') return result
  return {
    ...result,
    outcome: 'approve',
    rules: [...result.rules, HYBRID_PROPOSAL_RULE],
    approverRole: 'operator',
    queue,
    explanation: [
      ...result.explanation,
      {
        id: HYBRID_PROPOSAL_RULE,
        reason: 'In a hybrid case the AI agent only proposes; an operator approves',
        reads: { 'case.handler': 'hybrid' },
      },
    ],
  }
}

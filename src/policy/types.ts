import type { Handler } from '../cases/case.js'
import type { GrantFacts } from '../delegation/grants.js'
import type { Signals } from '../signals/types.js'

/** Facts about the case the policy may read under `case`. Times are seconds. */
export interface CaseFacts {
  readonly id: string
  readonly channel: string
  readonly state: string
  /** Kind of the current handler before this decision: 'agent' | 'operator' | 'hybrid' | '' for a new case. */
  readonly handler: string
  /** The queue of the current handler (an operator's or a hybrid case's); '' for an AI agent or a new case. */
  readonly queue?: string
  /** The AI agent of the current handler (alone or drafting in a hybrid case); '' for an operator or a new case. */
  readonly agent?: string
  /**
   * True while a human holds the case because a person took it: an operator took it over, claimed it or was
   * assigned it. Cleared when the case goes back to an AI agent (the operator hands it back, or a rule sends it).
   */
  readonly human_owned?: boolean
  /** Number of handler changes between AI and human so far. */
  readonly handoffs: number
  /** Number of customer messages so far, this one included. */
  readonly messages: number
  readonly age_s: number
  readonly time_in_state_s: number
  /** True if any earlier message of the case raised a risk indicator. */
  readonly risk_seen: boolean
  /** Messages the current AI agent has answered since it took the case (0 unless an agent holds it). */
  readonly ai_turns?: number
  /** True when this message raised a risk indicator the case had not seen before, after its first message. */
  readonly risk_rose?: boolean
  /** True when the case waited in its queue past the queue's SLA (set when the SLA timer fires). */
  readonly sla_breached?: boolean
}

export interface CustomerFacts {
  readonly id: string
  /** e.g. 'free' | 'standard' | 'premium' | 'enterprise'; '' when unknown. */
  readonly tier: string
  readonly verified: boolean
}

export interface ActorFacts {
  /** 'service' | 'operator' | 'agent' | 'delegate' | 'customer' | 'admin' */
  readonly kind: string
  readonly id: string
  readonly roles: readonly string[]
  /** A delegate's scopes now (within every hop of its chain); [] for anyone else. */
  readonly scopes?: readonly string[]
  /** A delegate's chain: delegate ids, the customer's own grantee first, this delegate last; [] for anyone else. */
  readonly chain?: readonly string[]
  /** The grant a delegate acts under (the last hop); empty values for anyone else. */
  readonly grant?: GrantFacts
}

export interface QueueFacts {
  readonly depth: number
  readonly oldest_wait_s: number
}

export interface AgentFacts {
  /** The agent's lifecycle state when the decision was made: 'provisioned' | 'active' | 'suspended' | 'retired'. */
  readonly state: string
}

/** Everything one evaluation reads. A decision is a pure function of (policy, facts). */
export interface Facts {
  readonly case: CaseFacts
  readonly signals: Signals
  readonly customer: CustomerFacts
  readonly actor: ActorFacts
  /** Per declared queue. */
  readonly queue: Readonly<Record<string, QueueFacts>>
  /**
   * Per registered agent, its state as the store had it. A route to an agent whose state is not 'active' (or that is
   * missing here) goes to the fallback queue instead (rule `agent-inactive`). Absent in facts recorded before agent
   * states were facts: then every agent reads as active, as those decisions did.
   */
  readonly agents?: Readonly<Record<string, AgentFacts>> | undefined
  /** Tool parameters, for tool rules; {} for routing. */
  readonly params: Readonly<Record<string, unknown>>
  /** Tool name, for tool rules; '' for routing. */
  readonly tool: string
}

/** One rule that decided (or an override that forced) the outcome, with the values its condition read. */
export interface RuleMatch {
  readonly id: string
  readonly reason: string
  /** Dotted variable path → value read by the rule's condition, e.g. {"signals.secrets": 1}. */
  readonly reads: Readonly<Record<string, unknown>>
}

export interface PolicyRef {
  readonly name: string
  readonly version: number
  /** sha256 hex of the policy source bytes. */
  readonly hash: string
}

export interface RouteResult {
  readonly kind: 'route'
  readonly outcome: Handler['kind']
  readonly handler: Handler
  /** Ids of the rules that decided, in evaluation order; ['default'] when none matched. */
  readonly rules: readonly string[]
  readonly explanation: readonly RuleMatch[]
  /** The escalation trigger when this route hands the case to a human, e.g. 'secret', 'risk', 'low_confidence'. */
  readonly trigger: string
  readonly policy: PolicyRef
}

/** `confirm`: the action waits for the customer's own confirmation of the exact parameters (ask ≠ approve). */
export type ActionOutcome = 'allow' | 'approve' | 'confirm' | 'deny' | 'escalate'

export interface ActionResult {
  readonly kind: 'action'
  readonly outcome: ActionOutcome
  readonly rules: readonly string[]
  readonly explanation: readonly RuleMatch[]
  /** Role an approver must hold when outcome is 'approve'. */
  readonly approverRole: string
  readonly queue: string
  readonly policy: PolicyRef
}

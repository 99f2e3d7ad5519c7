/** Built-in risk indicator categories; a policy may add terms to each and declare topics of its own. */
export const RISK_CATEGORIES = ['fraud', 'legal', 'regulatory', 'safety', 'self_harm', 'human_request'] as const
export type RiskCategory = (typeof RISK_CATEGORIES)[number]

/** A span of the original message text, `start` inclusive, `end` exclusive, in UTF-16 code units. */
export interface Span {
  readonly start: number
  readonly end: number
}

/** A secret found in a message. The clear text never leaves the detector's caller: only kind, span and a keyed hash. */
export interface SecretFinding extends Span {
  /** Rule id, e.g. `aws-access-key-id`, `private-key`, `postgres-connection-string`. */
  readonly kind: string
}

export const PII_KINDS = ['email', 'phone', 'card', 'iban'] as const
export type PiiKind = (typeof PII_KINDS)[number]

export interface PiiFinding extends Span {
  readonly kind: PiiKind
}

/**
 * The signals of a case at one message, as the policy sees them under the `signals` variable.
 * Every field is always present (no nulls in CEL): empty string / 0 / false / [] mean "none".
 */
export interface Signals {
  /** Intent label from the caller or a classifier; '' when unknown. */
  readonly intent: string
  /** Confidence of `intent`, 0..1; 0 when unknown. */
  readonly intent_confidence: number
  /**
   * Probability mass of each risk class of the workspace's `intent-classes.json` (the sum of the calibrated
   * probabilities of its intents, the mass of intents the map does not name counted on every class but `ai`);
   * {} without a map.
   */
  readonly intent_class: Readonly<Record<string, number>>
  /** The handling AI agent's own confidence in its last answer, 0..1; -1 when not reported. */
  readonly agent_confidence: number
  /** ISO 639-1 code of the message language, or 'und'. */
  readonly language: string
  /** Number of secrets found in this message. */
  readonly secrets: number
  /** Rule ids of the secrets found, sorted, unique. */
  readonly secret_kinds: readonly string[]
  /** PII kinds found, sorted, unique. */
  readonly pii: readonly PiiKind[]
  /** Sensitivity classes derived from the findings: 'secret', 'payment', 'pii'. */
  readonly sensitivity: readonly string[]
  /** Risk indicators from term lists (built-in, extended by the policy), sticky for the life of the case. */
  readonly risk: Readonly<Record<RiskCategory, boolean>>
  /** Policy-defined term categories (e.g. `account_change`) matched by this message. */
  readonly topics: Readonly<Record<string, boolean>>
  /** Id of an open case of the same customer about the same thing, '' if none. */
  readonly duplicate_of: string
  /** Caller-provided signals declared in the policy, by name. */
  readonly custom: Readonly<Record<string, string | number | boolean>>
}

/** What a detector sees: the message text and what the intake already knows. Pure data; detectors do no I/O. */
export interface DetectInput {
  readonly text: string
}

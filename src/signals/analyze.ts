import { detectLanguage } from './language.js'
import { redact } from './redact.js'
import { findSensitive } from './sensitive.js'
import { matchTerms, type TermMatcher } from './terms.js'
import { type PiiFinding, type PiiKind, RISK_CATEGORIES, type RiskCategory, type SecretFinding } from './types.js'

export interface AnalyzeOptions {
  /** Risk term lists, compiled; categories missing from it come out false. */
  readonly terms: TermMatcher
  /** Policy-defined topic lists, compiled; may have no categories. */
  readonly topics: TermMatcher
}

/** What the built-in detectors say about one message. Spans refer to the original text. */
export interface Analysis {
  /** The message with secrets and card numbers replaced by `[REDACTED:<kind>]`; e-mail, phone and IBAN are kept. */
  readonly redactedText: string
  readonly secrets: readonly SecretFinding[]
  readonly pii: readonly PiiFinding[]
  readonly risk: Record<RiskCategory, boolean>
  readonly topics: Record<string, boolean>
  /** ISO 639-1 code or 'und'. */
  readonly language: string
  /** 'secret' if any secret, 'payment' if a card or IBAN, 'pii' if an e-mail or phone; sorted. */
  readonly sensitivity: readonly string[]
  /** Rule ids of the secrets, sorted, unique. */
  readonly secretKinds: readonly string[]
  /** PII kinds found, sorted, unique. */
  readonly piiKinds: readonly PiiKind[]
}

const sortedUnique = <T extends string>(xs: readonly T[]): T[] => [...new Set(xs)].sort()

/**
 * Runs the detectors on one message. Terms, topics and language are read from the redacted text, so a phrase
 * hidden inside a secret does not count and no secret reaches a term list.
 */
export function analyzeMessage(text: string, opts: AnalyzeOptions): Analysis {
  // the same redaction as every other caller text (sensitive.ts)
  const { secrets, pii, masked } = findSensitive(text)
  const redactedText = redact(text, masked)
  const matched = matchTerms(opts.terms, redactedText)
  const risk = {} as Record<RiskCategory, boolean>
  for (const category of RISK_CATEGORIES) risk[category] = matched[category] === true
  const piiKinds = sortedUnique(pii.map((p) => p.kind))
  const sensitivity: string[] = []
  if (secrets.length > 0) sensitivity.push('secret')
  if (piiKinds.includes('card') || piiKinds.includes('iban')) sensitivity.push('payment')
  if (piiKinds.includes('email') || piiKinds.includes('phone')) sensitivity.push('pii')
  return {
    redactedText,
    secrets,
    pii,
    risk,
    topics: matchTerms(opts.topics, redactedText),
    language: detectLanguage(redactedText),
    sensitivity: sensitivity.sort(),
    secretKinds: sortedUnique(secrets.map((s) => s.kind)),
    piiKinds,
  }
}

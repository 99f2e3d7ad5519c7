/**
 * Queue priority: a case's effective deadline is its SLA deadline pulled forward by the customer's tier and by risk,
 * and a breached SLA puts it ahead of everything that has not breached. Lower rank goes first. Pure.
 */
export const TIER_LEAD_MS: Readonly<Record<string, number>> = {
  enterprise: 30 * 60_000,
  premium: 15 * 60_000,
  standard: 0,
  free: 0,
}

/** How far a risk indicator on the case pulls its deadline forward. */
export const RISK_LEAD_MS = 20 * 60_000

/** A breached case sorts before every case that has not breached (about 30 years ahead). */
export const BREACH_LEAD_MS = 1_000_000_000_000

export interface PriorityInput {
  /** SLA deadline, ms since epoch. */
  readonly slaDueMs: number
  readonly tier: string
  readonly risky: boolean
  readonly breached: boolean
}

export function priorityRank(p: PriorityInput): number {
  return p.slaDueMs - (TIER_LEAD_MS[p.tier] ?? 0) - (p.risky ? RISK_LEAD_MS : 0) - (p.breached ? BREACH_LEAD_MS : 0)
}

/** The SLA deadline of a case that entered a queue at `enqueuedAt` (RFC 3339) with an SLA of `slaSeconds`. */
export function slaDeadline(enqueuedAt: string, slaSeconds: number): string {
  return new Date(Date.parse(enqueuedAt) + slaSeconds * 1000).toISOString()
}

/** Seconds left until `due` at `now` (negative once breached). */
export function slaLeftSeconds(due: string, now: Date): number {
  return Math.floor((Date.parse(due) - now.getTime()) / 1000)
}

export interface OperatorProfile {
  readonly id: string
  readonly skills: readonly string[]
  readonly languages: readonly string[]
  readonly capacity: number
}

/**
 * Operators who may work a case of `queue` (needing `queueSkills`) in `language`: they hold every skill the queue
 * asks for and speak the language (an unknown language, `und` or '', does not narrow the choice).
 */
export function eligibleOperators(
  operators: readonly OperatorProfile[],
  queueSkills: readonly string[],
  language: string,
): OperatorProfile[] {
  return operators.filter(
    (o) =>
      queueSkills.every((s) => o.skills.includes(s)) &&
      (language === '' || language === 'und' || o.languages.length === 0 || o.languages.includes(language)),
  )
}

import type { Handler } from '../cases/case.js'
import { BatonError } from '../errors.js'
import { clopperPearsonUpper } from './calibrate.js'
import { round } from './metrics.js'

export const RISK_CLASSES = ['ai', 'approval', 'human'] as const
export type RiskClass = (typeof RISK_CLASSES)[number]

/** `{intents: {label: 'ai' | 'approval' | 'human'}}`, the layout of `../shared/data/risk-maps/*.json`. */
export function parseRiskMap(text: string, file: string): ReadonlyMap<string, RiskClass> {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch (e) {
    throw new BatonError('VALIDATION_FAILED', `${file}: expected JSON (${(e as Error).message})`)
  }
  const intents = (v as { intents?: unknown } | null)?.intents
  if (intents === null || typeof intents !== 'object') {
    throw new BatonError('VALIDATION_FAILED', `${file}: expected an object 'intents' mapping intent → class`)
  }
  const out = new Map<string, RiskClass>()
  for (const [label, cls] of Object.entries(intents as Record<string, unknown>)) {
    if (!RISK_CLASSES.includes(cls as RiskClass)) {
      throw new BatonError('VALIDATION_FAILED', `${file}: intent '${label}': expected ai, approval or human`)
    }
    out.set(label, cls as RiskClass)
  }
  return out
}

export interface RoutedMessage {
  readonly label: string
  readonly handler: Handler['kind']
  /** Signals, classifier and policy: the intake call minus the time spent waiting on the store. */
  readonly micros: number
  /** The whole intake call, store included. */
  readonly intakeMicros: number
}

export interface ClassCount {
  n: number
  agent: number
  hybrid: number
  operator: number
}

export interface RoutingSummary {
  readonly n: number
  /** Of messages whose intent maps to `human`, the share left with an AI agent. */
  readonly unsafe_automation_rate: number
  /** One-sided Clopper–Pearson upper bound of that rate at `confidence` (1 when there are no `human` messages). */
  readonly unsafe_automation_ucb: number
  /** Of messages whose intent maps to `approval`, the share left with full AI authority (an `agent` handler). */
  readonly approval_full_authority_rate: number
  readonly approval_full_authority_ucb: number
  readonly confidence: number
  /** Of messages whose intent maps to `ai`, the share left with an AI agent. */
  readonly automation_rate: number
  /** Per class (and `unmapped` for labels outside the map, e.g. CLINC150 `oos`): where the messages went. */
  readonly by_class: Readonly<Record<string, ClassCount>>
  readonly p99_decision_us: number
  readonly p50_decision_us: number
  readonly p99_intake_us: number
}

/** Aggregates routed messages against a risk map. */
export function summarizeRouting(
  routed: readonly RoutedMessage[],
  riskMap: ReadonlyMap<string, RiskClass>,
  confidence = 0.9,
): RoutingSummary {
  const by: Record<string, ClassCount> = {}
  for (const m of routed) {
    const cls = riskMap.get(m.label) ?? 'unmapped'
    const c = by[cls] ?? { n: 0, agent: 0, hybrid: 0, operator: 0 }
    by[cls] = c
    c.n++
    c[m.handler]++
  }
  const share = (c: ClassCount | undefined) => (c === undefined || c.n === 0 ? 0 : round(c.agent / c.n))
  const ucb = (c: ClassCount | undefined) => round(clopperPearsonUpper(c?.agent ?? 0, c?.n ?? 0, confidence))
  return {
    n: routed.length,
    unsafe_automation_rate: share(by.human),
    unsafe_automation_ucb: ucb(by.human),
    approval_full_authority_rate: share(by.approval),
    approval_full_authority_ucb: ucb(by.approval),
    confidence,
    automation_rate: share(by.ai),
    by_class: by,
    p99_decision_us: Math.round(
      percentile(
        routed.map((m) => m.micros),
        0.99,
      ),
    ),
    p50_decision_us: Math.round(
      percentile(
        routed.map((m) => m.micros),
        0.5,
      ),
    ),
    p99_intake_us: Math.round(
      percentile(
        routed.map((m) => m.intakeMicros),
        0.99,
      ),
    ),
  }
}

export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
}

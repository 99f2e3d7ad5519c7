import type { CompiledPolicy } from '../policy/compile.js'
import type { IntentClassifier } from './llm.js'
import { classify, type IntentModel, type IntentPrediction } from './model.js'

/**
 * Computes the intent signals of a message for intake: the built-in model always, the second opinion (an
 * LLM) only when the built-in confidence is below `secondOpinionBelow`. Both are signals, never authority.
 */
export interface IntentDetector {
  readonly model: IntentModel
  readonly secondOpinion?: IntentClassifier | undefined
  /** Ask the second opinion only under this built-in confidence. */
  readonly secondOpinionBelow: number
}

/**
 * Custom signals a policy may declare (under `signals:`) to read more of the classifiers' answers:
 * the runner-up intent of the built-in model and the second opinion's answer.
 */
export const INTENT_CUSTOM_SIGNALS = [
  'intent_alt',
  'intent_alt_confidence',
  'intent_llm',
  'intent_llm_confidence',
] as const

type Values = Record<string, string | number | boolean>

/**
 * Adds the classifier's signals to the validated caller signals. A caller that sends `intent` keeps its own
 * intent, confidence and extras: the classifier runs only when the caller did not classify the message.
 * Second-opinion signals are set only when the policy declares them and the endpoint answered in time.
 */
export async function withIntentSignals(
  detector: IntentDetector | undefined,
  policy: CompiledPolicy,
  text: string,
  given: Readonly<Record<string, unknown>> | undefined,
  validated: Readonly<Values>,
): Promise<Values> {
  if (detector === undefined || (given !== undefined && given.intent !== undefined)) return { ...validated }
  const declared = new Set(policy.callerSignals.map((s) => s.name))
  const out: Values = { ...validated }
  const p = classify(detector.model, text, 2)
  out.intent = p.intent
  out.intent_confidence = round(p.confidence)
  const set = (name: string, v: string | number) => {
    if (declared.has(name) && given?.[name] === undefined) out[name] = v
  }
  const alt = p.top[1]
  if (alt !== undefined) {
    set('intent_alt', alt.intent)
    set('intent_alt_confidence', round(alt.confidence))
  }
  if (
    detector.secondOpinion !== undefined &&
    declared.has('intent_llm') &&
    p.confidence < detector.secondOpinionBelow
  ) {
    const second: IntentPrediction | undefined = await detector.secondOpinion.classify(text)
    if (second !== undefined) {
      set('intent_llm', second.intent)
      set('intent_llm_confidence', round(second.confidence))
    }
  }
  return out
}

const round = (x: number) => Math.round(x * 1e4) / 1e4

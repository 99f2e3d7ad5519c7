import type { CompiledPolicy } from '../policy/compile.js'
import { AI_CLASS, classMass, classMassOfIntent, type IntentClasses } from './classes.js'
import type { IntentClassifier } from './llm.js'
import { classifyProbabilities, type IntentModel, type IntentPrediction, probabilities } from './model.js'

/**
 * Computes the intent signals of a message for intake: the built-in model always, the second opinion (an
 * LLM) only when the built-in confidence is below `secondOpinionBelow`. Both are signals, never authority.
 */
export interface IntentDetector {
  /** Absent when the workspace has an intent-class map but no model: classes then come from the caller's intent. */
  readonly model?: IntentModel | undefined
  /** The workspace's intent → risk class map (`intent-classes.json`), which gives `signals.intent_class`. */
  readonly classes?: IntentClasses | undefined
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

/** What intake adds to the caller's signals: the flat caller values and the class masses. */
export interface IntentSignals {
  readonly values: Values
  /** `signals.intent_class`: class → probability mass, for the workspace's classes ({} without a map). */
  readonly intentClass: Readonly<Record<string, number>>
}

/**
 * Adds the classifier's signals to the validated caller signals. A caller that sends `intent` keeps its own
 * intent, confidence and extras: the classifier runs only when the caller did not classify the message.
 * Second-opinion signals are set only when the policy declares them and the endpoint answered in time.
 * With an intent-class map, `intentClass` holds the calibrated mass of each class (from the caller's intent when
 * the classifier did not run, see `classMassOfIntent`).
 */
export async function withIntentSignals(
  detector: IntentDetector | undefined,
  policy: CompiledPolicy,
  text: string,
  given: Readonly<Record<string, unknown>> | undefined,
  validated: Readonly<Values>,
): Promise<IntentSignals> {
  const classes = detector?.classes
  const model = detector?.model
  if (model === undefined || (given !== undefined && given.intent !== undefined)) {
    const intent = typeof validated.intent === 'string' ? validated.intent : ''
    return { values: { ...validated }, intentClass: classes === undefined ? {} : classMassOfIntent(classes, intent) }
  }
  const declared = new Set(policy.callerSignals.map((s) => s.name))
  const out: Values = { ...validated }
  const probs = probabilities(model, text)
  const p = classifyProbabilities(model, probs, 2)
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
    detector?.secondOpinion !== undefined &&
    declared.has('intent_llm') &&
    p.confidence < detector.secondOpinionBelow
  ) {
    const second: IntentPrediction | undefined = await detector.secondOpinion.classify(text)
    if (second !== undefined) {
      set('intent_llm', second.intent)
      set('intent_llm_confidence', round(second.confidence))
    }
  }
  return { values: out, intentClass: classes === undefined ? {} : intentClassSignal(classes, model.labels, probs) }
}

/**
 * `signals.intent_class` from a model's probabilities: `classMass` to 6 decimals, on the careful side (up for the
 * classes a policy sends to people, down for the AI's). `baton intents calibrate` reads the same numbers.
 */
export function intentClassSignal(
  classes: IntentClasses,
  labels: readonly string[],
  probs: ArrayLike<number>,
): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(classMass(classes, labels, probs))) {
    out[k] = k === AI_CLASS ? Math.floor(v * 1e6 + 1e-9) / 1e6 : roundUp(v)
  }
  return out
}

const round = (x: number) => Math.round(x * 1e4) / 1e4
/** Up to 6 decimals (a float's last bits aside), never above 1. */
const roundUp = (x: number) => Math.min(1, Math.ceil(x * 1e6 - 1e-9) / 1e6)

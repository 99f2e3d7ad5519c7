import { BatonError } from '../errors.js'
import { didYouMean } from '../policy/suggest.js'
import { UNKNOWN_INTENT } from './model.js'

/** The workspace file that maps intents to risk classes, beside `policy.yaml` (the layout of a risk map). */
export const INTENT_CLASSES_FILE = 'intent-classes.json'

/** The class whose mass is the AI's: the mass of intents the map does not name counts against it. */
export const AI_CLASS = 'ai'

/**
 * Intent → risk class of a workspace, from `intent-classes.json`: `{"intents": {"<label>": "<class>"}}`, the layout
 * of `../shared/data/risk-maps/*.json`. Classes are the workspace's own names (`ai`, `approval`, `human`, …); `ai` is
 * the class an AI agent may resolve alone, and every other class gets the mass the map leaves unexplained.
 */
export interface IntentClasses {
  readonly file: string
  /** Class names, sorted. */
  readonly classes: readonly string[]
  readonly classOf: ReadonlyMap<string, string>
}

const CLASS_NAME = /^[a-z][a-z0-9_]{0,62}$/

/**
 * Parses and checks an intent-class map against the model's labels (when there is a model): every key must be a
 * label, every class a lower-case identifier. Errors name the file and the field.
 * @throws BatonError WORKSPACE_INVALID
 */
export function parseIntentClasses(text: string, file: string, labels: readonly string[] | null): IntentClasses {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch (e) {
    throw new BatonError('WORKSPACE_INVALID', `${file}: expected JSON (${(e as Error).message})`, { cause: e })
  }
  const intents = (v as { intents?: unknown } | null)?.intents
  if (intents === null || typeof intents !== 'object' || Array.isArray(intents)) {
    throw new BatonError('WORKSPACE_INVALID', `${file}: expected an object 'intents' mapping intent label → class`)
  }
  const known = labels === null ? null : new Set(labels)
  const classOf = new Map<string, string>()
  const problems: string[] = []
  for (const [label, cls] of Object.entries(intents as Record<string, unknown>)) {
    if (typeof cls !== 'string' || !CLASS_NAME.test(cls)) {
      problems.push(
        `intents.${label}: expected a class name (lower-case letters, digits, _), found ${JSON.stringify(cls)}`,
      )
      continue
    }
    if (label === UNKNOWN_INTENT) {
      problems.push(`intents.${label}: '${UNKNOWN_INTENT}' is not an intent; its mass counts against the AI by itself`)
      continue
    }
    if (known !== null && !known.has(label)) {
      const hint = didYouMean(label, known)
      problems.push(
        `intents.${label}: unknown intent '${label}', expected a label of the workspace's intent model or of its policy's intents:${hint === undefined ? '' : ` (${hint})`}`,
      )
      continue
    }
    classOf.set(label, cls)
  }
  if (problems.length > 0) {
    throw new BatonError('WORKSPACE_INVALID', problems.map((p) => `${file}: ${p}`).join('; '))
  }
  if (classOf.size === 0) throw new BatonError('WORKSPACE_INVALID', `${file}: intents: expected at least one intent`)
  return { file, classes: [...new Set(classOf.values())].sort(), classOf }
}

/** Labels of the model the map does not name (their mass counts against the AI). */
export function unmappedLabels(c: IntentClasses, labels: readonly string[]): string[] {
  return labels.filter((l) => !c.classOf.has(l))
}

/**
 * The probability mass of each class: the sum of the calibrated probabilities of its intents (`p` in `labels`
 * order); the mass of labels the map does not name is added to every class but `ai`, so that what the map cannot
 * place never counts for the AI.
 */
export function classMass(c: IntentClasses, labels: readonly string[], p: ArrayLike<number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const k of c.classes) out[k] = 0
  let unmapped = 0
  for (let i = 0; i < labels.length; i++) {
    const k = c.classOf.get(labels[i]!)
    if (k === undefined) unmapped += p[i]!
    else out[k]! += p[i]!
  }
  if (unmapped > 0) for (const k of c.classes) if (k !== AI_CLASS) out[k]! += unmapped
  return out
}

/**
 * The class masses when no classifier ran: a caller's intent is taken as given (its class 1, the others 0), as its
 * `intent` is; no intent, `unknown` or an intent the map does not name puts all the mass on every class but `ai`.
 */
export function classMassOfIntent(c: IntentClasses, intent: string): Record<string, number> {
  const cls = c.classOf.get(intent)
  const out: Record<string, number> = {}
  for (const k of c.classes) out[k] = cls === undefined ? (k === AI_CLASS ? 0 : 1) : k === cls ? 1 : 0
  return out
}

import { access, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BatonError } from '../errors.js'
import { readPolicy } from '../policy/document.js'
import { INTENT_CLASSES_FILE, type IntentClasses, parseIntentClasses } from './classes.js'
import { decodeModel } from './codec.js'
import type { IntentDetector } from './detector.js'
import { createLlmClassifier } from './llm.js'

/** The workspace file a trained model is read from, by convention. */
export const MODEL_FILE = 'intents.model.json'

/** The second opinion's settings (`BATON_LLM_*`); absent when no base URL is configured. */
export interface LlmSettings {
  readonly baseUrl: string
  readonly model: string
  readonly apiKey: string | undefined
  readonly timeoutMs: number
  /** Consult it only when the built-in confidence is below this. */
  readonly below: number
}

export function llmSettingsFrom(env: NodeJS.ProcessEnv): LlmSettings | undefined {
  const baseUrl = env.BATON_LLM_BASE_URL
  if (!baseUrl) return undefined
  const num = (name: string, fallback: number) => {
    const v = env[name]
    if (v === undefined || v === '') return fallback
    const n = Number(v)
    if (!Number.isFinite(n) || n < 0) {
      throw new BatonError('VALIDATION_FAILED', `${name}: expected a non-negative number, found '${v}'`, {
        fields: [{ field: name, message: 'must be a non-negative number' }],
      })
    }
    return n
  }
  return {
    baseUrl,
    model: env.BATON_LLM_MODEL || 'gpt-4o-mini',
    apiKey: env.BATON_LLM_API_KEY || undefined,
    timeoutMs: num('BATON_LLM_TIMEOUT_MS', 2000),
    below: num('BATON_LLM_BELOW', 0.7),
  }
}

/** The labels of the workspace's intent model (`[]` when it has none). */
export async function readModelLabels(dir: string): Promise<readonly string[]> {
  const file = join(dir, MODEL_FILE)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw new BatonError('WORKSPACE_INVALID', `${file}: cannot read (${(e as Error).message})`, { cause: e })
  }
  return decodeModel(text, file).labels
}

/**
 * The workspace's intent-class map (`intent-classes.json`), checked against the labels a message may carry: the
 * model's (`null`: the workspace has no model, nothing is checked) and those the workspace's `policy.yaml` lets a
 * caller send (`intents:`); undefined when the workspace has none.
 * @throws BatonError WORKSPACE_INVALID naming the file and the field
 */
export async function readIntentClasses(
  dir: string,
  labels: readonly string[] | null,
): Promise<IntentClasses | undefined> {
  const file = join(dir, INTENT_CLASSES_FILE)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new BatonError('WORKSPACE_INVALID', `${file}: cannot read (${(e as Error).message})`, { cause: e })
  }
  if (labels === null) return parseIntentClasses(text, file, null)
  const policyFile = join(dir, 'policy.yaml')
  const declared = await readFile(policyFile, 'utf8').then(
    (source) => readPolicy(source, policyFile).doc?.intents?.map((i) => i.name) ?? [],
    () => [],
  )
  return parseIntentClasses(text, file, [...labels, ...declared])
}

/** What a policy of the workspace may name: the model's labels and the intent classes. */
export async function readIntentNames(
  dir: string,
): Promise<{ readonly intents: readonly string[]; readonly intentClasses: readonly string[] }> {
  const intents = await readModelLabels(dir)
  const classes = await readIntentClasses(dir, intents.length > 0 ? intents : null)
  return { intents, intentClasses: classes?.classes ?? [] }
}

/**
 * The workspace's intent detector: `intents.model.json` in the workspace folder, if there is one, with the
 * intent-class map beside it, if there is one.
 */
export async function loadIntentDetector(
  dir: string,
  llm: LlmSettings | undefined,
): Promise<IntentDetector | undefined> {
  const file = join(dir, MODEL_FILE)
  const exists = await access(file).then(
    () => true,
    () => false,
  )
  if (!exists) {
    const classes = await readIntentClasses(dir, null)
    return classes === undefined ? undefined : { classes, secondOpinionBelow: 0 }
  }
  const model = decodeModel(await readFile(file, 'utf8'), file)
  return {
    model,
    classes: await readIntentClasses(dir, model.labels),
    secondOpinionBelow: llm?.below ?? 0,
    secondOpinion:
      llm === undefined
        ? undefined
        : createLlmClassifier({
            baseUrl: llm.baseUrl,
            model: llm.model,
            apiKey: llm.apiKey,
            timeoutMs: llm.timeoutMs,
            labels: model.labels,
          }),
  }
}

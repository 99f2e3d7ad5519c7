import type { IntentPrediction } from './model.js'
import { UNKNOWN_INTENT } from './model.js'

/** A classifier that may fail to answer: `undefined` means no answer (time-out, error, nonsense), never a guess. */
export interface IntentClassifier {
  readonly name: string
  classify(text: string): Promise<IntentPrediction | undefined>
}

/** An OpenAI-compatible chat-completions endpoint used as a second opinion. */
export interface LlmClassifierConfig {
  /** e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`; `/chat/completions` is appended. */
  readonly baseUrl: string
  readonly model: string
  readonly apiKey?: string | undefined
  /** Whole exchange, ms; past it the answer is absent. */
  readonly timeoutMs: number
  /** The intents it may answer with (the built-in model's labels). */
  readonly labels: readonly string[]
  readonly fetch?: typeof fetch
}

export function llmPrompt(labels: readonly string[]): string {
  return [
    'You classify one customer-support message into exactly one intent.',
    `Intents: ${labels.join(', ')}.`,
    `If none fits, answer "${UNKNOWN_INTENT}".`,
    'Reply with JSON only: {"intent": "<one intent>", "confidence": <number between 0 and 1>}.',
  ].join('\n')
}

/**
 * Asks the endpoint to classify a message. The message is sent as data in the user turn, never as instructions;
 * an answer naming an intent outside `labels` counts as no answer.
 */
export function createLlmClassifier(config: LlmClassifierConfig): IntentClassifier {
  const url = `${config.baseUrl.replace(/\/+$/, '')}/chat/completions`
  const known = new Set(config.labels)
  const system = llmPrompt(config.labels)
  const doFetch = config.fetch ?? fetch
  return {
    name: `llm:${config.model}`,
    async classify(text) {
      try {
        const res = await doFetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(config.apiKey ? { authorization: `Bearer ${config.apiKey}` } : {}),
          },
          body: JSON.stringify({
            model: config.model,
            temperature: 0,
            messages: [
              { role: 'system', content: system },
              { role: 'user', content: text },
            ],
          }),
          signal: AbortSignal.timeout(config.timeoutMs),
        })
        if (!res.ok) return undefined
        const body = (await res.json()) as { choices?: { message?: { content?: unknown } }[] }
        return parseAnswer(body.choices?.[0]?.message?.content, known)
      } catch {
        // time-out, refused connection, malformed body: the second opinion is simply absent (fail closed)
        return undefined
      }
    },
  }
}

/** Reads `{"intent", "confidence"}` from the model's reply, tolerating code fences and prose around the JSON. */
export function parseAnswer(content: unknown, known: ReadonlySet<string>): IntentPrediction | undefined {
  if (typeof content !== 'string') return undefined
  const start = content.indexOf('{')
  const end = content.lastIndexOf('}')
  if (start < 0 || end <= start) return undefined
  let v: unknown
  try {
    v = JSON.parse(content.slice(start, end + 1))
  } catch {
    return undefined
  }
  if (v === null || typeof v !== 'object') return undefined
  const { intent, confidence } = v as { intent?: unknown; confidence?: unknown }
  if (typeof intent !== 'string' || (intent !== UNKNOWN_INTENT && !known.has(intent))) return undefined
  const c = typeof confidence === 'number' && Number.isFinite(confidence) ? Math.min(1, Math.max(0, confidence)) : 0
  return { intent, confidence: c, top: [{ intent, confidence: c }] }
}

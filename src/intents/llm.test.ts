import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compilePolicy } from '../policy/compile.js'
import { withIntentSignals } from './detector.js'
import { createLlmClassifier, parseAnswer } from './llm.js'
import { DEFAULT_TRAIN, trainSoftmax } from './train.js'

interface Seen {
  readonly auth: string | undefined
  readonly body: { model: string; messages: { role: string; content: string }[] }
}

/** A local server speaking the chat-completions API; its reply depends on the user message. */
let server: Server
let base: string
const seen: Seen[] = []

async function body(req: IncomingMessage): Promise<string> {
  let s = ''
  for await (const chunk of req) s += chunk
  return s
}

beforeAll(async () => {
  server = createServer(async (req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404).end()
      return
    }
    const parsed = JSON.parse(await body(req)) as Seen['body']
    seen.push({ auth: req.headers.authorization, body: parsed })
    const user = parsed.messages.find((m) => m.role === 'user')?.content ?? ''
    if (user.includes('slow')) await new Promise((r) => setTimeout(r, 1500))
    if (user.includes('broken')) {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"boom"}}')
      return
    }
    const content = user.includes('invent')
      ? '{"intent":"make_coffee","confidence":0.9}'
      : user.includes('stolen')
        ? '```json\n{"intent": "lost_or_stolen_card", "confidence": 0.92}\n```'
        : '{"intent":"unknown","confidence":0.4}'
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        id: 'chatcmpl-1',
        object: 'chat.completion',
        model: parsed.model,
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      }),
    )
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
})

afterAll(async () => {
  server.close()
  await once(server, 'close')
})

const LABELS = ['card_arrival', 'lost_or_stolen_card']
const llm = (timeoutMs = 1000) =>
  createLlmClassifier({ baseUrl: base, model: 'test-model', apiKey: 'sk-test', timeoutMs, labels: LABELS })

describe('the OpenAI-compatible second opinion, over a real HTTP exchange', () => {
  it('sends the labels, the model and the key, and reads the answer out of the reply', async () => {
    const p = await llm().classify('my card was stolen on the train')
    expect(p).toEqual({
      intent: 'lost_or_stolen_card',
      confidence: 0.92,
      top: [{ intent: 'lost_or_stolen_card', confidence: 0.92 }],
    })
    const last = seen.at(-1)!
    expect(last.auth).toBe('Bearer sk-test')
    expect(last.body.model).toBe('test-model')
    expect(last.body.messages[0]!.content).toContain('lost_or_stolen_card')
    expect(last.body.messages[1]).toEqual({ role: 'user', content: 'my card was stolen on the train' })
  })

  it('passes on unknown', async () => {
    expect((await llm().classify('hello there'))?.intent).toBe('unknown')
  })

  it('fails closed: an invented intent, an error status, a time-out and a refused connection give no answer', async () => {
    expect(await llm().classify('please invent something')).toBeUndefined()
    expect(await llm().classify('broken request')).toBeUndefined()
    const started = Date.now()
    expect(await llm(200).classify('a slow one')).toBeUndefined()
    expect(Date.now() - started).toBeLessThan(1200)
    const refused = createLlmClassifier({
      baseUrl: 'http://127.0.0.1:9/v1',
      model: 'm',
      timeoutMs: 500,
      labels: LABELS,
    })
    expect(await refused.classify('anything')).toBeUndefined()
  })

  it('parses only JSON with a known intent, clamping the confidence', () => {
    const known = new Set(LABELS)
    expect(parseAnswer('{"intent":"card_arrival","confidence":7}', known)?.confidence).toBe(1)
    expect(parseAnswer('no json here', known)).toBeUndefined()
    expect(parseAnswer(42, known)).toBeUndefined()
  })
})

describe('intake signals from the classifiers', () => {
  const policy = compilePolicy(
    `apiVersion: baton.dev/v1
kind: Policy
metadata: { name: t, version: 1, owner: o@example.com }
signals:
  intent_alt: { type: string }
  intent_alt_confidence: { type: number, minimum: 0, maximum: 1 }
  intent_llm: { type: string }
  intent_llm_confidence: { type: number, minimum: 0, maximum: 1 }
routing:
  default: { handler: operator, queue: general }
  rules:
    - id: r
      when: signals.custom.intent_llm == 'x' && signals.custom.intent_alt == 'y' && signals.custom.intent_llm_confidence > 0.0 && signals.custom.intent_alt_confidence > 0.0
      route: { handler: operator, queue: general }
`,
    'p.yaml',
    { agents: [], queues: ['general'], tools: [] },
  )
  const model = trainSoftmax(
    [
      { text: 'where is my new card', label: 'card_arrival' },
      { text: 'my card has not arrived yet', label: 'card_arrival' },
      { text: 'someone stole my card', label: 'lost_or_stolen_card' },
      { text: 'I lost my card', label: 'lost_or_stolen_card' },
    ],
    { ...DEFAULT_TRAIN, minDf: 1, epochs: 3 },
  )
  const defaults = { intent_alt: '', intent_alt_confidence: 0, intent_llm: '', intent_llm_confidence: 0 }

  it('fills intent, confidence, the runner-up and, when the built-in one is unsure, the second opinion', async () => {
    const s = await withIntentSignals(
      { model, secondOpinion: llm(), secondOpinionBelow: 1.01 },
      policy,
      'my card got stolen',
      undefined,
      defaults,
    ).then((r) => r.values)
    expect(s.intent).toBe('lost_or_stolen_card')
    expect(s.intent_confidence).toBeGreaterThan(0.5)
    expect(s.intent_alt).toBe('card_arrival')
    expect(s.intent_llm).toBe('lost_or_stolen_card')
    expect(s.intent_llm_confidence).toBe(0.92)
  })

  it('does not ask the second opinion when the built-in one is sure, and leaves it absent on a time-out', async () => {
    const before = seen.length
    const sure = await withIntentSignals(
      { model, secondOpinion: llm(), secondOpinionBelow: 0 },
      policy,
      'stolen',
      undefined,
      defaults,
    ).then((r) => r.values)
    expect(seen.length).toBe(before)
    expect(sure.intent_llm).toBe('')
    const late = await withIntentSignals(
      { model, secondOpinion: llm(100), secondOpinionBelow: 1.01 },
      policy,
      'slow: my card was stolen',
      undefined,
      defaults,
    ).then((r) => r.values)
    expect(late.intent_llm).toBe('')
    expect(late.intent_llm_confidence).toBe(0)
  })

  it("keeps the caller's intent when the caller sends one", async () => {
    const s = await withIntentSignals(
      { model, secondOpinionBelow: 0 },
      policy,
      'someone stole my card',
      { intent: 'x' },
      {
        ...defaults,
        intent: 'x',
      },
    ).then((r) => r.values)
    expect(s.intent).toBe('x')
    expect(s.intent_alt).toBe('')
  })
})

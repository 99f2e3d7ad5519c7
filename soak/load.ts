import type { Ledger, RequestKind } from './ledger.js'

/*
 * Concurrent load on a real `baton serve` over real HTTP, with the real API and its auth, as the e2e tests drive it:
 * customers open cases and add messages (admin key, as a helpdesk integration would), the shop's AI agent asks for
 * refunds that need a billing approver (its own client secret, a case-bound token), and the operator ada approves or
 * denies them (her operator key). Every request is counted in the ledger and every 2xx answer recorded with its ids.
 */

/** The credentials the load uses, made once per store (`provision`). */
export interface Principals {
  readonly adminKey: string
  /** ada's operator key (billing role: she may decide refunds). */
  readonly approverKey: string
  /** The shop-assistant agent's client secret. */
  readonly agentSecret: string
}

const json = (key: string) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' })

/** Creates ada's operator key and the agent's client secret on a fresh store. */
export async function provision(url: string, adminKey: string): Promise<Principals> {
  const k = await fetch(`${url}/v1/keys`, {
    method: 'POST',
    headers: json(adminKey),
    body: JSON.stringify({ role: 'operator', name: 'ada (soak)', operatorId: 'ada' }),
  })
  if (k.status !== 201) throw new Error(`POST /v1/keys: ${k.status} ${await k.text()}`)
  const c = await fetch(`${url}/v1/agents/shop-assistant/credentials`, {
    method: 'POST',
    headers: json(adminKey),
    body: JSON.stringify({ kind: 'secret' }),
  })
  if (c.status !== 201) throw new Error(`POST /v1/agents/shop-assistant/credentials: ${c.status} ${await c.text()}`)
  return {
    adminKey,
    approverKey: ((await k.json()) as { key: string }).key,
    agentSecret: ((await c.json()) as { secret: string }).secret,
  }
}

const OPENING = [
  'Hi, where is my order #{n}? It is late.',
  'I was charged twice for order {n}, I want a refund',
  'Can I change my email address to new{n}@example.com?',
  'Does the blue kettle (item {n}) come with a warranty?',
  'Has my order {n} shipped yet? Tracking number please.',
  'The parcel {n} arrived damaged, what can I do?',
] as const
/**
 * An opening the shop gives its assistant (rule order-status). No number in it: the shop's model reads a number in a
 * short message as an order change, and the calibrated approval rule then makes the case a hybrid draft.
 */
const AGENT_OPENING = 'Hi, where is my order? It is late.'
const FOLLOW_UP = [
  'Any news on this? It has been {n} days.',
  'Thanks, that helps.',
  'Actually I would like my money back.',
  'Can I speak to a human please?',
  'The order number is {n}.',
] as const

export interface LoadOptions {
  readonly url: string
  readonly principals: Principals
  readonly ledger: Ledger
  /** The server process the acknowledgements come from. */
  readonly life: number
  readonly random: () => number
  readonly workers: number
  /** True once the server was killed: the workers stop. */
  readonly stopped: () => boolean
}

/** Runs `workers` concurrent clients until `stopped()`; resolves when every request in flight has settled. */
export async function runLoad(o: LoadOptions): Promise<void> {
  const { url, principals, ledger, life, random } = o
  let n = 0
  const text = (templates: readonly string[]) =>
    templates[Math.floor(random() * templates.length)]!.replace('{n}', String(10_000 + n++))

  /** One request; the parsed body of a `status` answer, or undefined for any other answer or a broken connection. */
  const call = async <T>(kind: RequestKind | undefined, status: number, path: string, init: RequestInit) => {
    if (kind !== undefined) ledger.send(kind)
    try {
      const r = await fetch(`${url}${path}`, { ...init, signal: AbortSignal.timeout(15_000) })
      const body = await r.text()
      return r.status === status ? (JSON.parse(body) as T) : undefined
    } catch {
      // reset by the kill (or timed out): not acknowledged, so no promise was made
      return undefined
    }
  }
  type Intake = { id: string; messageId: string; decision: { id: string }; handler: { kind: string } }

  const openCase = async (message: string) => {
    const b = await call<Intake>('case.open', 201, '/v1/cases', {
      method: 'POST',
      headers: json(principals.adminKey),
      body: JSON.stringify({
        customer: `cu_${Math.floor(random() * 50)}`,
        channel: 'chat',
        message: { text: message },
      }),
    })
    if (b !== undefined) {
      ledger.ack({ kind: 'case.open', life, caseId: b.id, messageId: b.messageId, decisionId: b.decision.id })
    }
    return b
  }

  const addMessage = async () => {
    const caseId = ledger.someCase(random())
    if (caseId === undefined) return openCase(text(OPENING))
    const b = await call<Intake>('message.add', 200, `/v1/cases/${caseId}/messages`, {
      method: 'POST',
      headers: json(principals.adminKey),
      body: JSON.stringify({ message: { text: text(FOLLOW_UP) } }),
    })
    if (b !== undefined) {
      ledger.ack({ kind: 'message.add', life, caseId: b.id, messageId: b.messageId, decisionId: b.decision.id })
    }
    return b
  }

  /** The agent's case (an order-status question), a token bound to it, and a refund that needs a billing approver. */
  const requestApproval = async () => {
    const opened = await openCase(text([AGENT_OPENING]))
    if (opened === undefined || opened.handler.kind !== 'agent') return
    const tok = await call<{ access_token: string }>(undefined, 200, '/v1/oauth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: 'shop-assistant',
        client_secret: principals.agentSecret,
        case_id: opened.id,
      }).toString(),
    })
    if (tok === undefined) return
    const b = await call<{ approval: { id: string } }>('approval.request', 202, `/v1/cases/${opened.id}/actions`, {
      method: 'POST',
      headers: json(tok.access_token),
      body: JSON.stringify({
        tool: 'refund',
        params: { order_id: `A-${n++}`, amount: 60 + Math.floor(random() * 900), currency: 'EUR' },
      }),
    })
    if (b !== undefined) ledger.ack({ kind: 'approval.request', life, caseId: opened.id, approvalId: b.approval.id })
  }

  /** ada approves (the refund executes through the connector) or denies an acknowledged, undecided approval. */
  const decide = async () => {
    const id = ledger.takeUndecided(random())
    if (id === undefined) return requestApproval()
    const decision = random() < 0.5 ? 'approve' : 'deny'
    const b = await call<{ approval: { state: string } }>('approval.decide', 200, `/v1/approvals/${id}/decision`, {
      method: 'POST',
      headers: json(principals.approverKey),
      body: JSON.stringify({ decision, reason: 'soak run' }),
    })
    if (b !== undefined && (b.approval.state === 'approved' || b.approval.state === 'denied')) {
      ledger.ack({ kind: 'approval.decide', life, approvalId: id, state: b.approval.state })
    }
  }

  const worker = async () => {
    while (!o.stopped()) {
      const p = random()
      if (p < 0.4) await openCase(text(OPENING))
      else if (p < 0.7) await addMessage()
      else if (p < 0.85) await requestApproval()
      else await decide()
    }
  }
  await Promise.all(Array.from({ length: o.workers }, () => worker()))
}

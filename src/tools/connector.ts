import type { ConnectorCall } from '../credentials/deps.js'

/** Connector calls give up after this long; the action is then recorded as failed. */
const TIMEOUT_MS = 10_000
/** Responses are digested, not stored; bodies beyond this are cut (the digest covers what was read). */
const MAX_BODY = 1 << 20

/** The HTTP connector: JSON body, the per-call credential as a bearer token, the action id as idempotency key. */
export const httpConnector: ConnectorCall = async (req) => {
  const res = await fetch(req.url, {
    method: req.method,
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${req.credential}`,
      'idempotency-key': req.idempotencyKey,
    },
    body: JSON.stringify(req.body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
    redirect: 'error',
  })
  const buf = new Uint8Array(await res.arrayBuffer())
  return { status: res.status, body: buf.length > MAX_BODY ? buf.subarray(0, MAX_BODY) : buf }
}

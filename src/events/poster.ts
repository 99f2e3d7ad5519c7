import type { LookupAddress } from 'node:dns'
import { lookup } from 'node:dns/promises'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Poster } from './dispatcher.js'
import { checkDeliveryHost, guardedLookup, type WebhookTargets } from './targets.js'

/** A webhook attempt gives up after this long (a failed attempt, retried with backoff). */
const TIMEOUT_MS = 10_000

/** Every address of a host name, as node's HTTP client would connect to it (getaddrinfo: /etc/hosts, then DNS). */
export function lookupAll(hostname: string): Promise<readonly LookupAddress[]> {
  return lookup(hostname, { all: true, verbatim: true })
}

/**
 * The webhook HTTP client: one POST, 10 s, redirects not followed (a 3xx is a failed attempt), the answer's body read
 * and dropped. node:http rather than fetch, for its `lookup` hook: unless private targets are allowed, the address
 * the connection goes to is checked as it is resolved (`guardedLookup`), so a name cannot resolve to a public address
 * at subscription and to 127.0.0.1 at delivery.
 */
export function createHttpPoster(targets: WebhookTargets): Poster {
  const guarded = targets.allowPrivate ? undefined : guardedLookup(targets)
  return (raw, headers, body) =>
    new Promise<number>((resolve, reject) => {
      const url = new URL(raw)
      const refused = checkDeliveryHost(targets, url)
      if (refused !== undefined) {
        reject(new Error(refused))
        return
      }
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest
      const req = send(
        url,
        {
          method: 'POST',
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
          signal: AbortSignal.timeout(TIMEOUT_MS),
          ...(guarded === undefined ? {} : { lookup: guarded }),
        },
        (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode ?? 0))
          res.on('error', reject)
        },
      )
      req.on('error', reject)
      req.end(body)
    })
}

import { chainProblem, effectiveScopes } from '../delegation/grants.js'
import { delegateActor } from '../delegation/token-exchange.js'
import type { Services } from '../http/services.js'
import { createPollingLoop, type PollingLoop } from '../timers/loop.js'
import { authorityProblem } from '../tools/actions.js'
import { type UsableTool, usableDelegateTools, usableTools } from '../tools/usable.js'
import type { McpPrincipal } from './auth.js'
import type { McpSession, McpSessions } from './sessions.js'
import { listSignature } from './tools.js'

/** Audit entries without a case that can change what any agent may do. */
const WIDE = new Set([
  'agent.suspended',
  'agent.retired',
  'agent.activated',
  'policy.activated',
  'customer.updated',
  'grant.created',
  'grant.revoked',
  'delegate.suspended',
  'delegate.retired',
  'delegate.activated',
])
const BATCH = 500

/**
 * Tells sessions `notifications/tools/list_changed` when what their principal may do changes: it tails the audit log
 * (every node's writes, so a handoff decided on another node counts too) while this node has sessions, and for each
 * session whose case an entry names (or any session, for an agent's suspension, a policy or a customer change) it
 * works the tool list out again with the session's latest credential; when it differs from the list last sent (an
 * empty one once the credential is revoked), the session is notified once.
 */
export function createListWatcher(
  s: Services,
  sessions: McpSessions,
  onError: (e: unknown) => void,
): {
  readonly loop: PollingLoop<void>
  /** Call when a session opens: the tail starts there, so nothing after it is missed. */
  watchFrom(): void
} {
  let cursor: Promise<number> | undefined
  const pass = async () => {
    if (sessions.size === 0) {
      cursor = undefined
      return
    }
    cursor ??= s.store.auditSize()
    let from = await cursor
    const dirty = new Set<McpSession>()
    for (;;) {
      const entries = await s.store.readAudit(from, from + BATCH)
      for (const e of entries) {
        from = e.seq + 1
        const caseId = member(e.entry, '"caseId":"', false)
        if (caseId !== undefined) for (const x of sessions.ofCase(caseId)) dirty.add(x)
        else if (WIDE.has(member(e.entry, '"type":"', true) ?? '')) for (const x of sessions.all()) dirty.add(x)
      }
      cursor = Promise.resolve(from)
      if (entries.length < BATCH) break
    }
    for (const session of dirty) await recheck(s, session)
  }
  const loop = createPollingLoop(pass, onError)
  return {
    loop,
    watchFrom() {
      cursor ??= s.store.auditSize()
    },
  }
}

/**
 * A string member of a stored entry without parsing it: entries are canonical JSON (RFC 8785), members sorted, so the
 * top-level `caseId` comes before `data` (the first match) and `type` is the last member (the last match); a quote
 * inside a string is escaped, so the pattern cannot start inside one. Ids and types hold no escapes.
 */
function member(entry: string, key: string, last: boolean): string | undefined {
  const i = last ? entry.lastIndexOf(key) : entry.indexOf(key)
  if (i < 0) return undefined
  const start = i + key.length
  const end = entry.indexOf('"', start)
  return end < 0 ? undefined : entry.slice(start, end)
}

async function recheck(s: Services, session: McpSession): Promise<void> {
  const signature = listSignature(await usableNow(s, session.principal))
  if (signature === session.listed) return
  session.listed = signature
  await session.server.sendToolListChanged()
}

/**
 * What the session's principal may use now, from fresh reads and its latest credential, or null when it may use
 * nothing at all any more: an agent that no longer holds the case at its token's epoch, a delegate whose chain no
 * longer holds (a grant revoked or expired, a delegate suspended) or whose customer's case closed.
 */
async function usableNow(s: Services, p: McpPrincipal): Promise<UsableTool[] | null> {
  const { policy } = s.policy.current()
  const now = s.authority.now()
  const c = await s.store.getCase(p.caseId)
  if (c === undefined) return null
  const [customer, queues] = await Promise.all([
    s.store.getCustomer(c.customerId),
    policy.tools.readsQueues ? s.store.queueStats() : Promise.resolve({}),
  ])
  const { catalog, delegation } = s.authority
  if (p.kind === 'agent') {
    const agent = await s.store.getAgent(p.auth.agent.id)
    if (agent === undefined || authorityProblem(c, agent, p.auth.claims) !== null) return null
    return usableTools(policy, catalog, c, customer, agent, p.auth.claims, queues, now)
  }
  const chain = await s.store.getGrantChain(p.auth.grant.id)
  if (chainProblem(chain, now, delegation.maxChain) !== null || c.state !== 'open') return null
  const scopes = p.auth.scopes.filter((x) => effectiveScopes(chain, delegation).includes(x))
  const actor = delegateActor(chain, scopes, now, p.auth.claims.jti)
  return usableDelegateTools(policy, catalog, delegation, c, customer, actor, scopes, queues, now)
}

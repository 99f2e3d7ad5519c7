import { createHash } from 'node:crypto'
import type { Server } from '@modelcontextprotocol/sdk/server/index.js'
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { McpPrincipal } from './auth.js'

/** One MCP session: its SDK server and transport, bound to the principal and case that opened it. */
export interface McpSession {
  readonly id: string
  /** What the audit log names the session by: the first 16 hex of SHA-256 of its id. */
  readonly ref: string
  /** `McpPrincipal.key` of the principal that opened it; requests of any other principal are refused. */
  readonly principalKey: string
  readonly caseId: string
  readonly server: Server
  readonly transport: StreamableHTTPServerTransport
  /** The principal of the latest request (its credential may be newer than the first one's). */
  principal: McpPrincipal
  /** ms since epoch of the latest request. */
  lastSeen: number
  /** What the tool list said when it was last sent, to notify the session only when it changes. */
  listed: string | undefined
}

export function sessionRef(id: string): string {
  return createHash('sha256').update(id).digest('hex').slice(0, 16)
}

/** The sessions of this node, by id (in memory: a session lives on the node that opened it). */
export class McpSessions {
  readonly #byId = new Map<string, McpSession>()

  get size(): number {
    return this.#byId.size
  }

  get(id: string): McpSession | undefined {
    return this.#byId.get(id)
  }

  add(s: McpSession): void {
    this.#byId.set(s.id, s)
  }

  delete(id: string): boolean {
    return this.#byId.delete(id)
  }

  all(): IterableIterator<McpSession> {
    return this.#byId.values()
  }

  /** Sessions of one case. */
  ofCase(caseId: string): McpSession[] {
    return [...this.#byId.values()].filter((s) => s.caseId === caseId)
  }

  /** Sessions no request has used since `before` (ms since epoch). */
  idleSince(before: number): McpSession[] {
    return [...this.#byId.values()].filter((s) => s.lastSeen < before)
  }
}

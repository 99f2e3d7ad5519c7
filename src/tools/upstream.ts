import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import { canonicalDigest } from '../approvals/approval.js'
import type { McpToolCall, McpToolResult } from '../credentials/deps.js'
import { BatonError } from '../errors.js'
import type { ToolSpec } from '../workspace/workspace.js'
import { type ImportedTool, type McpUpstream, mcpUpstreamsOf } from './catalog.js'

/** Upstream calls give up after this long, as HTTP connector calls do; the action is then recorded as failed. */
const CALL_TIMEOUT_MS = 10_000
/** Connecting and listing an upstream's tools, at start and on reconnect. */
const CONNECT_TIMEOUT_MS = 10_000
const MAX_LIST_PAGES = 50

interface Upstream {
  readonly spec: McpUpstream
  /** Tool name on the upstream → digest of the input schema imported at start (a changed schema is refused). */
  readonly schemas: Map<string, string>
  client: Promise<Client> | undefined
}

/**
 * Baton as an MCP client of the upstream servers that tools.yaml fronts (`connector.kind: mcp`): one connection per
 * server (Streamable HTTP, or a child process over stdio), opened at start to import each tool's schema, and opened
 * again on the next call after it closes (a crash, a restart). Any transport error closes the connection, so a call
 * in flight when the upstream dies fails at once ("Connection closed") instead of waiting for its time-out.
 */
export class McpUpstreams {
  readonly #upstreams = new Map<string, Upstream>()
  readonly #version: string
  readonly #log: (e: unknown, upstream: string) => void

  private constructor(version: string, log: (e: unknown, upstream: string) => void) {
    this.#version = version
    this.#log = log
  }

  /**
   * Connects to every upstream that `tools` name and imports the schema of each fronted tool. Fails with
   * `WORKSPACE_INVALID`, naming the tool and its tools.yaml position, when an upstream does not answer, lacks the
   * tool, or gives a schema that is not a JSON Schema of an object.
   */
  static async connect(
    tools: readonly ToolSpec[],
    env: Readonly<Record<string, string | undefined>>,
    opts: { readonly version: string; readonly log?: (e: unknown, upstream: string) => void },
  ): Promise<{ readonly upstreams: McpUpstreams; readonly imported: Map<string, ImportedTool> }> {
    const pool = new McpUpstreams(opts.version, opts.log ?? (() => undefined))
    const imported = new Map<string, ImportedTool>()
    const fronted = mcpUpstreamsOf(tools, env)
    try {
      for (const [name, f] of fronted) {
        const spec = tools.find((t) => t.name === name)
        const where =
          spec?.position === undefined
            ? 'tools.yaml'
            : `${spec.position.file}:${spec.position.line}:${spec.position.column}`
        let listed: Map<string, ImportedTool>
        try {
          listed = await pool.#listed(f.upstream)
        } catch (e) {
          throw new BatonError(
            'WORKSPACE_INVALID',
            `${where}: tool '${name}': the MCP server ${f.upstream.id} did not answer: ${(e as Error).message}`,
            { cause: e },
          )
        }
        const tool = listed.get(f.tool)
        if (tool === undefined) {
          throw new BatonError(
            'WORKSPACE_INVALID',
            `${where}: tool '${name}': the MCP server ${f.upstream.id} has no tool '${f.tool}' (it has ${[...listed.keys()].join(', ') || 'none'})`,
          )
        }
        if (tool.inputSchema.type !== 'object') {
          throw new BatonError(
            'WORKSPACE_INVALID',
            `${where}: tool '${name}': the input schema of '${f.tool}' on ${f.upstream.id} is not of type object`,
          )
        }
        pool.#upstreams.get(f.upstream.id)?.schemas.set(f.tool, canonicalDigest(tool.inputSchema))
        imported.set(name, tool)
      }
    } catch (e) {
      await pool.close()
      throw e
    }
    return { upstreams: pool, imported }
  }

  /** Calls `tool` on its upstream with the given arguments and `_meta`; throws when the call itself failed. */
  readonly call: McpToolCall = async (req) => {
    const u = this.#upstreams.get(req.upstream.id)
    if (u === undefined) throw new TypeError(`no upstream MCP server '${req.upstream.id}'`)
    const client = await this.#client(u)
    const result = await client.callTool(
      { name: req.tool, arguments: { ...req.arguments }, _meta: { ...req.meta } },
      undefined,
      { timeout: CALL_TIMEOUT_MS },
    )
    return {
      content: Array.isArray(result.content) ? result.content : [],
      ...(result.structuredContent === undefined
        ? {}
        : { structuredContent: result.structuredContent as Record<string, unknown> }),
      isError: result.isError === true,
    } satisfies McpToolResult
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.#upstreams.values()].map(async (u) => {
        const c = u.client
        u.client = undefined
        await c?.then((x) => x.close()).catch(() => undefined)
      }),
    )
  }

  /** The upstream's tools, connecting first (and registering the upstream) if needed. */
  async #listed(spec: McpUpstream): Promise<Map<string, ImportedTool>> {
    let u = this.#upstreams.get(spec.id)
    if (u === undefined) {
      u = { spec, schemas: new Map(), client: undefined }
      this.#upstreams.set(spec.id, u)
    }
    return listTools(await this.#client(u))
  }

  #client(u: Upstream): Promise<Client> {
    if (u.client !== undefined) return u.client
    const opening: Promise<Client> = this.#open(u, () => {
      if (u.client === opening) u.client = undefined
    }).catch((e: unknown) => {
      if (u.client === opening) u.client = undefined
      throw e
    })
    u.client = opening
    return opening
  }

  async #open(u: Upstream, forget: () => void): Promise<Client> {
    const client = new Client({ name: 'baton', version: this.#version })
    const transport: Transport =
      u.spec.url !== undefined
        ? new StreamableHTTPClientTransport(new URL(u.spec.url), {
            requestInit: { headers: { ...u.spec.headers } },
          })
        : new StdioClientTransport({
            command: u.spec.command?.[0] ?? '',
            args: [...(u.spec.command ?? []).slice(1)],
            env: { ...getDefaultEnvironment(), ...u.spec.env },
            stderr: 'ignore',
          })
    let closing = false
    const drop = () => {
      if (closing) return
      closing = true
      forget()
      void client.close().catch(() => undefined)
    }
    client.onclose = drop
    client.onerror = (e) => {
      this.#log(e, u.spec.id)
      drop()
    }
    await client.connect(transport, { timeout: CONNECT_TIMEOUT_MS })
    // Opened again after a close: the tools it fronts must keep the schemas imported at start.
    if (u.schemas.size > 0) {
      const listed = await listTools(client)
      for (const [tool, digest] of u.schemas) {
        const now = listed.get(tool)
        if (now === undefined || canonicalDigest(now.inputSchema) !== digest) {
          await client.close().catch(() => undefined)
          throw new BatonError(
            'CONNECTOR_FAILED',
            `the MCP server ${u.spec.id} changed tool '${tool}' since Baton started (schema ${now === undefined ? 'gone' : 'changed'}); restart Baton to import it again`,
          )
        }
      }
    }
    return client
  }
}

async function listTools(client: Client): Promise<Map<string, ImportedTool>> {
  const out = new Map<string, ImportedTool>()
  let cursor: string | undefined
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const r = await client.listTools(cursor === undefined ? {} : { cursor }, { timeout: CONNECT_TIMEOUT_MS })
    for (const t of r.tools) {
      out.set(t.name, {
        inputSchema: t.inputSchema as Record<string, unknown>,
        title: t.title ?? t.annotations?.title,
        description: t.description,
      })
    }
    cursor = r.nextCursor
    if (cursor === undefined) break
  }
  return out
}

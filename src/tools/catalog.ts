import { Ajv, type ValidateFunction } from 'ajv'
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { FieldProblem } from '../errors.js'
import type { ToolSpec } from '../workspace/workspace.js'

/** An upstream MCP server some tools front, reached over Streamable HTTP (`url`) or as a local process (`command`). */
export interface McpUpstream {
  /** The URL, or `stdio:` and the command line: tools naming the same server share one connection. */
  readonly id: string
  readonly url?: string | undefined
  readonly command?: readonly string[] | undefined
  readonly headers: Readonly<Record<string, string>>
  readonly env: Readonly<Record<string, string>>
}

export type Connector =
  | {
      readonly kind: 'http'
      readonly url: string
      readonly method: 'POST' | 'PUT'
      readonly mode: 'execute' | 'credential'
    }
  | {
      readonly kind: 'mcp'
      /** The upstream's id: the audience of the per-call credentials that go with each call. */
      readonly url: string
      readonly mode: 'execute'
      readonly upstream: McpUpstream
      /** The tool's name on the upstream server. */
      readonly tool: string
    }

/** What an upstream MCP server says of one of its tools (`tools/list`): taken as the tool's schema and texts. */
export interface ImportedTool {
  readonly inputSchema: Readonly<Record<string, unknown>>
  readonly title?: string | undefined
  readonly description?: string | undefined
}

/** A tool of the catalog, with its parameter schema compiled once. */
export interface CatalogTool {
  readonly name: string
  readonly title: string
  readonly description: string
  readonly risk: ToolSpec['risk']
  readonly params: Readonly<Record<string, unknown>>
  readonly connector: Connector | null
  /** Null when the parameters satisfy the schema, else each problem named `params.<field>`. */
  readonly check: (params: unknown) => FieldProblem[] | null
}

export type ToolCatalog = ReadonlyMap<string, CatalogTool>

type Env = Readonly<Record<string, string | undefined>>

/**
 * The upstream MCP server of each tool with `connector.kind: mcp` (tool name → upstream and upstream tool name),
 * `${NAME}` references resolved from `env`. An unset variable fails with TypeError naming it.
 */
export function mcpUpstreamsOf(
  tools: readonly ToolSpec[],
  env: Env,
): Map<string, { readonly upstream: McpUpstream; readonly tool: string }> {
  const out = new Map<string, { upstream: McpUpstream; tool: string }>()
  for (const t of tools) {
    const c = t.connector
    if (c?.kind !== 'mcp') continue
    const where = `tool '${t.name}': connector`
    const url = c.url === undefined ? undefined : resolveEnv(c.url, env, where)
    const command = c.command?.map((part) => resolveEnv(part, env, where))
    const id = url ?? `stdio:${(command ?? []).join(' ')}`
    const resolved = (m: Readonly<Record<string, string>> | undefined) =>
      Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k, resolveEnv(v, env, where)]))
    out.set(t.name, {
      upstream: { id, url, command, headers: resolved(c.headers), env: resolved(c.env) },
      tool: c.tool ?? t.name,
    })
  }
  return out
}

/**
 * Compiles the workspace's tools. `env` resolves `${NAME}` and `${NAME:-default}` in connector URLs (so a test or a
 * deployment points a tool at its own service); an unset variable fails with TypeError naming it. `imported` holds
 * what each tool's upstream MCP server says of it (for `connector.kind: mcp`): its input schema becomes the tool's
 * parameter schema, its title and description are used where tools.yaml gives none.
 */
export function buildCatalog(
  tools: readonly ToolSpec[],
  env: Env,
  imported: ReadonlyMap<string, ImportedTool> = new Map(),
): ToolCatalog {
  const ajv = new Ajv({ allErrors: true, strict: false })
  let ajv2020: Ajv2020 | undefined
  const latest = () => {
    ajv2020 ??= new Ajv2020({ allErrors: true, strict: false })
    return ajv2020
  }
  const upstreams = mcpUpstreamsOf(tools, env)
  const out = new Map<string, CatalogTool>()
  for (const t of tools) {
    const fronted = upstreams.get(t.name)
    const upstreamTool = imported.get(t.name)
    if (fronted !== undefined && upstreamTool === undefined) {
      throw new TypeError(`tool '${t.name}' fronts an MCP server whose schema was not imported`)
    }
    const params = t.params ?? upstreamTool?.inputSchema ?? {}
    // MCP's default dialect is JSON Schema 2020-12; tools.yaml's own schemas keep the draft-07 validator.
    const validate =
      upstreamTool === undefined || params.$schema === 'http://json-schema.org/draft-07/schema#'
        ? ajv.compile(params)
        : latest().compile(params)
    const c = t.connector
    out.set(t.name, {
      name: t.name,
      title: t.title ?? upstreamTool?.title ?? titleOf(t.name),
      description: t.description || upstreamTool?.description || '',
      risk: t.risk,
      params,
      connector:
        c === undefined
          ? null
          : c.kind === 'mcp'
            ? {
                kind: 'mcp',
                url: fronted?.upstream.id ?? '',
                mode: 'execute',
                upstream: fronted!.upstream,
                tool: fronted!.tool,
              }
            : {
                kind: 'http',
                url: resolveEnv(c.url, env, `tool '${t.name}': connector url`),
                method: c.method ?? 'POST',
                mode: c.mode ?? 'execute',
              },
      check: (p) => problems(validate, p),
    })
  }
  return out
}

/** `order_status` → `Order status`. */
function titleOf(name: string): string {
  const words = name.replace(/[_.-]+/g, ' ').trim()
  return words.charAt(0).toUpperCase() + words.slice(1)
}

function resolveEnv(text: string, env: Env, where: string): string {
  return text.replace(/\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, fallback: string | undefined) => {
    const v = env[name] === undefined || env[name] === '' ? fallback : env[name]
    if (v === undefined || v === '') {
      throw new TypeError(`tools.yaml: ${where} needs the environment variable ${name}`)
    }
    return v
  })
}

function problems(validate: ValidateFunction, params: unknown): FieldProblem[] | null {
  if (validate(params)) return null
  return (validate.errors ?? []).map((e) => {
    const p = e.params as Record<string, unknown>
    const leaf =
      typeof p.missingProperty === 'string'
        ? p.missingProperty
        : typeof p.additionalProperty === 'string'
          ? p.additionalProperty
          : ''
    const path = ['params', ...e.instancePath.split('/').filter((s) => s !== ''), leaf].filter((s) => s !== '')
    const message =
      typeof p.additionalProperty === 'string'
        ? 'unknown field'
        : typeof p.missingProperty === 'string'
          ? 'is required'
          : (e.message ?? 'is invalid')
    return { field: path.join('.'), message }
  })
}

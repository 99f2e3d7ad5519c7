import { Ajv, type ValidateFunction } from 'ajv'
import type { FieldProblem } from '../errors.js'
import type { ToolSpec } from '../workspace/workspace.js'

export interface Connector {
  readonly url: string
  readonly method: 'POST' | 'PUT'
  readonly mode: 'execute' | 'credential'
}

/** A tool of the catalog, with its parameter schema compiled once. */
export interface CatalogTool {
  readonly name: string
  readonly description: string
  readonly risk: ToolSpec['risk']
  readonly params: Readonly<Record<string, unknown>>
  readonly connector: Connector | null
  /** Null when the parameters satisfy the schema, else each problem named `params.<field>`. */
  readonly check: (params: unknown) => FieldProblem[] | null
}

export type ToolCatalog = ReadonlyMap<string, CatalogTool>

/**
 * Compiles the workspace's tools. `env` resolves `${NAME}` and `${NAME:-default}` in connector URLs (so a test or a deployment points a
 * tool at its own service); an unset variable fails with TypeError naming it.
 */
export function buildCatalog(
  tools: readonly ToolSpec[],
  env: Readonly<Record<string, string | undefined>>,
): ToolCatalog {
  const ajv = new Ajv({ allErrors: true, strict: false })
  const out = new Map<string, CatalogTool>()
  for (const t of tools) {
    const validate = ajv.compile(t.params)
    out.set(t.name, {
      name: t.name,
      description: t.description,
      risk: t.risk,
      params: t.params,
      connector:
        t.connector === undefined
          ? null
          : {
              url: resolveEnv(t.connector.url, env, t.name),
              method: t.connector.method ?? 'POST',
              mode: t.connector.mode ?? 'execute',
            },
      check: (params) => problems(validate, params),
    })
  }
  return out
}

function resolveEnv(url: string, env: Readonly<Record<string, string | undefined>>, tool: string): string {
  return url.replace(/\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, fallback: string | undefined) => {
    const v = env[name] === undefined || env[name] === '' ? fallback : env[name]
    if (v === undefined || v === '') {
      throw new TypeError(`tools.yaml: tool '${tool}': connector url needs the environment variable ${name}`)
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

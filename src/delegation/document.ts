import { BatonError, type SourcePosition } from '../errors.js'
import { type CelProgram, compileCel, createCelEnvironments, isCelProblem } from '../policy/cel.js'
import { factsShape } from '../policy/facts-shape.js'
import { didYouMean } from '../policy/suggest.js'
import { compileSchema, parseYaml, validateYaml, type YamlSource } from '../workspace/yaml-source.js'

/**
 * Routes a delegate's token may ever reach, as `delegation.yaml` names them. A scope unlocks some of them; every
 * other route refuses a delegate's token, always (approvals and confirmations above all: a delegate asks, the
 * customer approves).
 */
export const DELEGATE_ROUTES = ['POST /v1/cases', 'POST /v1/cases/{id}/messages', 'GET /v1/cases/{id}'] as const
export type DelegateRoute = (typeof DELEGATE_ROUTES)[number]

/** The longest chain of delegates (the customer's own grantee first) unless `max_chain` says otherwise. */
export const DEFAULT_MAX_CHAIN = 2
/** The longest grant a scope allows unless its `max_grant` says otherwise: 30 days. */
export const DEFAULT_MAX_GRANT_S = 30 * 86_400
/** No delegate token, grant or chain may go past this, whatever the document says. */
export const MAX_CHAIN_LIMIT = 8

/** A CEL condition over the tool call (`params`, `tool`) that must hold for a call under a scope or a grant. */
export interface CompiledLimit {
  readonly text: string
  /** Where it was written: `delegation.yaml:21:13`, or `grant gr_… limits.refund:request`. */
  readonly where: string
  readonly program: CelProgram
}

export interface DelegationScope extends SourcePosition {
  readonly name: string
  readonly description: string
  readonly routes: readonly DelegateRoute[]
  /** Tools a delegate may ask for under this scope (policy still decides each call). */
  readonly tools: readonly string[]
  readonly limit: CompiledLimit | null
  /** The longest grant of this scope, seconds. */
  readonly maxGrantSeconds: number
}

/** What a shop lets customers delegate: `delegation.yaml` beside `policy.yaml`. */
export interface DelegationSpec {
  readonly file: string
  /** Most delegates in one chain (1: no sub-delegation at all). */
  readonly maxChain: number
  readonly scopes: ReadonlyMap<string, DelegationScope>
}

/** A workspace without `delegation.yaml`: no scope exists, so no grant can be made and no delegate can act. */
export function noDelegation(file = 'delegation.yaml'): DelegationSpec {
  return { file, maxChain: DEFAULT_MAX_CHAIN, scopes: new Map() }
}

const SCOPE_NAME = '^[a-z][a-z0-9_-]*(:[a-z][a-z0-9_-]*)*$'
const DURATION = '^[1-9][0-9]{0,5}(s|m|h|d)$'

const schema = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'scopes'],
  properties: {
    apiVersion: { const: 'baton.dev/v1' },
    kind: { const: 'Delegation' },
    max_chain: { type: 'integer', minimum: 1, maximum: MAX_CHAIN_LIMIT },
    scopes: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'description'],
        properties: {
          name: { type: 'string', pattern: SCOPE_NAME, maxLength: 64 },
          description: { type: 'string', minLength: 1, maxLength: 500 },
          routes: { type: 'array', items: { type: 'string' }, uniqueItems: true },
          tools: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
          limits: { type: 'string', minLength: 1, maxLength: 2000 },
          max_grant: { type: 'string', pattern: DURATION },
        },
      },
    },
  },
})

/** `30d` → seconds. */
export function durationSeconds(text: string): number {
  const n = Number(text.slice(0, -1))
  const unit = text.slice(-1)
  return n * (unit === 'd' ? 86_400 : unit === 'h' ? 3600 : unit === 'm' ? 60 : 1)
}

const limitEnvs = createCelEnvironments(factsShape({ topics: [], custom: [], queues: null, agents: null }))

/**
 * Compiles a parameter limit: a CEL condition that may read only `params` and `tool`. A string describing what is
 * wrong (with the index into the text) when it does not compile.
 */
export function compileLimit(
  text: string,
  where: string,
): { readonly limit: CompiledLimit } | { readonly problem: string; readonly index: number } {
  const r = compileCel(limitEnvs, text)
  if (isCelProblem(r)) return { problem: r.hint === undefined ? r.message : `${r.message} (${r.hint})`, index: r.index }
  const other = r.reads.find((p) => !(p === 'tool' || p === 'params' || p.startsWith('params.')))
  if (other !== undefined) {
    return { problem: `a limit reads only params and tool, not '${other}'`, index: Math.max(0, text.indexOf(other)) }
  }
  return { limit: { text, where, program: r.program } }
}

/** Whether the call satisfies a limit; anything but `true` (false, an error, a missing parameter) fails closed. */
export function limitHolds(limit: CompiledLimit, tool: string, params: Readonly<Record<string, unknown>>): boolean {
  try {
    return limit.program({ tool, params }) === true
  } catch {
    return false
  }
}

/**
 * Parses `delegation.yaml`. Every problem is reported with `file:line:col`: unknown keys and wrong types, a route
 * no delegate may reach, a tool the workspace lacks, a limit that does not compile or reads more than the call.
 * @throws BatonError DELEGATION_INVALID listing every problem with its position.
 */
export function parseDelegation(
  text: string,
  file: string,
  known: { readonly tools: readonly string[] },
): DelegationSpec {
  let src: YamlSource
  try {
    src = parseYaml(text, file, 'WORKSPACE_INVALID')
    validateYaml(src, schema, 'WORKSPACE_INVALID')
  } catch (e) {
    if (e instanceof BatonError) throw new BatonError('DELEGATION_INVALID', e.message, { positions: e.positions })
    throw e
  }
  type RawScope = {
    name: string
    description: string
    routes?: string[]
    tools?: string[]
    limits?: string
    max_grant?: string
  }
  const raw = src.value as { max_chain?: number; scopes: RawScope[] }
  const problems: (SourcePosition & { message: string })[] = []
  const scopes = new Map<string, DelegationScope>()
  for (const [i, s] of raw.scopes.entries()) {
    const at = src.positionOf(['scopes', i, 'name'])
    if (scopes.has(s.name)) problems.push({ ...at, message: `duplicate scope '${s.name}'` })
    const routes: DelegateRoute[] = []
    for (const [j, route] of (s.routes ?? []).entries()) {
      if ((DELEGATE_ROUTES as readonly string[]).includes(route)) routes.push(route as DelegateRoute)
      else {
        const hint = didYouMean(route, DELEGATE_ROUTES)
        problems.push({
          ...src.positionOf(['scopes', i, 'routes', j]),
          message: `a delegate may not reach '${route}'; routes a scope may unlock: ${DELEGATE_ROUTES.join(', ')}${hint === undefined ? '' : ` (${hint})`}`,
        })
      }
    }
    for (const [j, tool] of (s.tools ?? []).entries()) {
      if (!known.tools.includes(tool)) {
        const hint = didYouMean(tool, known.tools)
        problems.push({
          ...src.positionOf(['scopes', i, 'tools', j]),
          message: `unknown tool '${tool}', expected one of: ${known.tools.join(', ')}${hint === undefined ? '' : ` (${hint})`}`,
        })
      }
    }
    if (routes.length === 0 && (s.tools ?? []).length === 0 && (s.routes ?? []).length === 0) {
      problems.push({ ...at, message: `scope '${s.name}' unlocks nothing: give it routes or tools` })
    }
    let limit: CompiledLimit | null = null
    if (s.limits !== undefined) {
      const start = src.positionOf(['scopes', i, 'limits'])
      if ((s.tools ?? []).length === 0) {
        problems.push({ ...start, message: `scope '${s.name}' has limits but no tools: limits read a tool call` })
      }
      const c = compileLimit(s.limits, `${file}:${start.line}:${start.column}`)
      if ('problem' in c) problems.push({ ...charPosition(text, start, c.index), message: c.problem })
      else limit = c.limit
    }
    scopes.set(s.name, {
      name: s.name,
      description: s.description,
      routes,
      tools: s.tools ?? [],
      limit,
      maxGrantSeconds: s.max_grant === undefined ? DEFAULT_MAX_GRANT_S : durationSeconds(s.max_grant),
      ...at,
    })
  }
  if (problems.length > 0) {
    problems.sort((a, b) => a.line - b.line || a.column - b.column)
    throw new BatonError(
      'DELEGATION_INVALID',
      problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`).join('\n'),
      { positions: problems },
    )
  }
  return { file, maxChain: raw.max_chain ?? DEFAULT_MAX_CHAIN, scopes }
}

/** The position of character `index` of a one-line scalar that starts at `start` (quotes skipped). */
function charPosition(text: string, start: SourcePosition, index: number): SourcePosition {
  const line = text.split('\n')[start.line - 1] ?? ''
  const first = line[start.column - 1]
  if (first === '|' || first === '>') return start
  const quoted = first === '"' || first === "'" ? 1 : 0
  return { file: start.file, line: start.line, column: start.column + quoted + index }
}

/** The scopes among `granted` that unlock `route`. */
export function scopesForRoute(spec: DelegationSpec, granted: readonly string[], route: string): string[] {
  return granted.filter((g) => (spec.scopes.get(g)?.routes as readonly string[] | undefined)?.includes(route) === true)
}

/** The scopes among `granted` that unlock `tool`. */
export function scopesForTool(spec: DelegationSpec, granted: readonly string[], tool: string): string[] {
  return granted.filter((g) => spec.scopes.get(g)?.tools.includes(tool) === true)
}

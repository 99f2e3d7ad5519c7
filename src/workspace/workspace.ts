import { readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { type DelegationSpec, noDelegation, parseDelegation } from '../delegation/document.js'
import { BatonError, type SourcePosition } from '../errors.js'
import { compileSchema, parseYaml, validateYaml } from './yaml-source.js'

export const AGENT_STATES = ['provisioned', 'active', 'suspended', 'retired'] as const
export type AgentState = (typeof AGENT_STATES)[number]

/** An AI agent: a workload identity with a named human owner. */
export interface AgentSpec {
  readonly id: string
  readonly owner: string
  readonly purpose: string
  readonly model: string
  /** Every tool this agent may ever use; policy decides each call within this set. */
  readonly tools: readonly string[]
  /** Outcomes the agent may close a case with (e.g. `resolved`, `duplicate`). */
  readonly closure: readonly string[]
  readonly state: AgentState
}

export interface OperatorSpec {
  readonly id: string
  readonly name: string
  readonly roles: readonly string[]
  readonly skills: readonly string[]
  readonly languages: readonly string[]
  /** Concurrent cases this operator may hold. */
  readonly capacity: number
}

export interface QueueSpec {
  readonly id: string
  readonly description: string
  readonly skills: readonly string[]
  /** Seconds to first human response. */
  readonly slaSeconds: number
  /**
   * `pull` (default): operators claim cases or ask for the next one. `auto`: Baton also gives waiting cases to the
   * least-loaded eligible operator with free capacity by itself (`src/queues/auto-assign.ts`).
   */
  readonly assignment: 'pull' | 'auto'
}

export const RISK_CLASSES = ['read', 'low', 'medium', 'high', 'critical'] as const

export interface ToolSpec {
  readonly name: string
  /** A short human title (MCP `title`); for tools fronting an MCP server, the upstream's when absent. */
  readonly title?: string | undefined
  readonly description: string
  readonly risk: (typeof RISK_CLASSES)[number]
  /**
   * JSON Schema of the parameters. Absent (null) for a tool fronting an MCP server: its schema is imported from the
   * upstream when Baton starts (`src/tools/upstream.ts`).
   */
  readonly params: Readonly<Record<string, unknown>> | null
  /**
   * Where the tool runs. `kind: http` (the default): `execute` (Baton calls `url` with the parameters and a per-call
   * credential) or `credential` (Baton hands the agent a credential scoped to the case, tool and parameters).
   * `kind: mcp`: Baton calls tool `tool` (default: the tool's own name) of an upstream MCP server, reached over
   * Streamable HTTP at `url` or as a local process `command` (stdio). `url`, `command`, `headers` and `env` may hold
   * `${ENV_VAR}` references, resolved at start. No connector: an allowed call is decided and recorded only.
   */
  readonly connector?: ToolConnectorSpec | undefined
  /** Where tools.yaml declares the tool, for errors found after parsing (an upstream MCP server's schema). */
  readonly position?: SourcePosition | undefined
}

export type ToolConnectorSpec =
  | {
      readonly kind?: 'http' | undefined
      readonly url: string
      readonly method?: 'POST' | 'PUT' | undefined
      readonly mode?: 'execute' | 'credential' | undefined
    }
  | {
      readonly kind: 'mcp'
      readonly url?: string | undefined
      readonly command?: readonly string[] | undefined
      readonly tool?: string | undefined
      /** HTTP headers for a Streamable HTTP upstream (its own authentication, e.g. `Authorization`). */
      readonly headers?: Readonly<Record<string, string>> | undefined
      /** Environment of a stdio upstream's process (nothing of Baton's own environment is passed on but PATH and HOME). */
      readonly env?: Readonly<Record<string, string>> | undefined
    }

/** Tool names Baton keeps for its own control tools on the MCP gateway (`baton_case`, …). */
export const RESERVED_TOOL_PREFIX = 'baton_'

export interface Workspace {
  readonly dir: string
  readonly policyFile: string
  readonly agents: readonly AgentSpec[]
  readonly operators: readonly OperatorSpec[]
  readonly queues: readonly QueueSpec[]
  readonly tools: readonly ToolSpec[]
  /** What customers may delegate to their own AI agents (`delegation.yaml`; none when the file is absent). */
  readonly delegation: DelegationSpec
}

const id = { type: 'string', pattern: '^[a-z0-9][a-z0-9_.-]{0,62}$' }
const strings = { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true }

const agentsSchema = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['agents'],
  properties: {
    agents: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'owner', 'purpose', 'tools'],
        properties: {
          id,
          owner: { type: 'string', minLength: 3 },
          purpose: { type: 'string', minLength: 1 },
          model: { type: 'string' },
          tools: strings,
          closure: strings,
          state: { enum: [...AGENT_STATES] },
        },
      },
    },
  },
})

const operatorsSchema = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['operators'],
  properties: {
    operators: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'name', 'roles'],
        properties: {
          id,
          name: { type: 'string', minLength: 1 },
          roles: strings,
          skills: strings,
          languages: strings,
          capacity: { type: 'integer', minimum: 1, maximum: 1000 },
        },
      },
    },
  },
})

const queuesSchema = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['queues'],
  properties: {
    queues: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id'],
        properties: {
          id,
          description: { type: 'string' },
          skills: strings,
          sla: { type: 'string', pattern: '^[0-9]+(s|m|h)$' },
          assignment: { enum: ['pull', 'auto'] },
        },
      },
    },
  },
})

const httpConnector = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    kind: { const: 'http' },
    url: { type: 'string', minLength: 1 },
    method: { enum: ['POST', 'PUT'] },
    mode: { enum: ['execute', 'credential'] },
  },
}

const stringMap = {
  type: 'object',
  maxProperties: 64,
  propertyNames: { pattern: '^[A-Za-z0-9_.-]{1,128}$' },
  additionalProperties: { type: 'string' },
}

const mcpConnector = {
  type: 'object',
  additionalProperties: false,
  required: ['kind'],
  properties: {
    kind: { const: 'mcp' },
    url: { type: 'string', minLength: 1, pattern: '^(https?://|\\$\\{)' },
    command: { type: 'array', minItems: 1, maxItems: 64, items: { type: 'string', minLength: 1 } },
    tool: { type: 'string', minLength: 1, maxLength: 128 },
    headers: stringMap,
    env: stringMap,
  },
}

const toolsSchema = compileSchema({
  type: 'object',
  additionalProperties: false,
  required: ['tools'],
  properties: {
    tools: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'risk'],
        properties: {
          name: id,
          title: { type: 'string', minLength: 1, maxLength: 200 },
          description: { type: 'string' },
          risk: { enum: [...RISK_CLASSES] },
          params: { type: 'object' },
          connector: {
            if: { type: 'object', required: ['kind'], properties: { kind: { const: 'mcp' } } },
            // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then/else
            then: mcpConnector,
            else: httpConnector,
          },
        },
      },
    },
  },
})

function seconds(s: string | undefined): number {
  if (s === undefined) return 3600
  const n = Number(s.slice(0, -1))
  return s.endsWith('h') ? n * 3600 : s.endsWith('m') ? n * 60 : n
}

function duplicates(
  file: string,
  items: readonly { id: string }[],
  where: (i: number) => { line: number; column: number },
): void {
  const seen = new Set<string>()
  const positions = []
  for (const [i, item] of items.entries()) {
    if (seen.has(item.id)) positions.push({ file, ...where(i), message: `duplicate id '${item.id}'` })
    seen.add(item.id)
  }
  if (positions.length > 0) {
    throw new BatonError(
      'WORKSPACE_INVALID',
      positions.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`).join('\n'),
      { positions },
    )
  }
}

/** Parses the four workspace documents. Pure over their texts; `loadWorkspace` reads them from a folder. */
export function parseWorkspace(
  dir: string,
  texts: { agents: string; operators: string; queues: string; tools: string },
  names = { agents: 'agents.yaml', operators: 'operators.yaml', queues: 'queues.yaml', tools: 'tools.yaml' },
): Omit<Workspace, 'policyFile' | 'delegation'> {
  const a = parseYaml(texts.agents, names.agents)
  validateYaml(a, agentsSchema)
  const o = parseYaml(texts.operators, names.operators)
  validateYaml(o, operatorsSchema)
  const q = parseYaml(texts.queues, names.queues)
  validateYaml(q, queuesSchema)
  const t = parseYaml(texts.tools, names.tools)
  validateYaml(t, toolsSchema)

  type Raw = Record<string, unknown>
  const rawAgents = (a.value as { agents: Raw[] }).agents
  const agents: AgentSpec[] = rawAgents.map((r) => ({
    id: r.id as string,
    owner: r.owner as string,
    purpose: r.purpose as string,
    model: (r.model as string | undefined) ?? '',
    tools: r.tools as string[],
    closure: (r.closure as string[] | undefined) ?? ['resolved'],
    state: (r.state as AgentState | undefined) ?? 'active',
  }))
  duplicates(a.file, agents, (i) => a.positionOf(['agents', i, 'id']))
  const operators: OperatorSpec[] = (o.value as { operators: Raw[] }).operators.map((r) => ({
    id: r.id as string,
    name: r.name as string,
    roles: r.roles as string[],
    skills: (r.skills as string[] | undefined) ?? [],
    languages: (r.languages as string[] | undefined) ?? ['en'],
    capacity: (r.capacity as number | undefined) ?? 5,
  }))
  duplicates(o.file, operators, (i) => o.positionOf(['operators', i, 'id']))
  const queues: QueueSpec[] = (q.value as { queues: Raw[] }).queues.map((r) => ({
    id: r.id as string,
    description: (r.description as string | undefined) ?? '',
    skills: (r.skills as string[] | undefined) ?? [],
    slaSeconds: seconds(r.sla as string | undefined),
    assignment: (r.assignment as QueueSpec['assignment'] | undefined) ?? 'pull',
  }))
  duplicates(q.file, queues, (i) => q.positionOf(['queues', i, 'id']))
  const tools: ToolSpec[] = (t.value as { tools: Raw[] }).tools.map((r, i) => ({
    name: r.name as string,
    ...(r.title === undefined ? {} : { title: r.title as string }),
    description: (r.description as string | undefined) ?? '',
    risk: r.risk as ToolSpec['risk'],
    params: (r.params as Record<string, unknown> | undefined) ?? null,
    connector: r.connector as ToolSpec['connector'],
    position: t.positionOf(['tools', i, 'name']),
  }))
  duplicates(
    t.file,
    tools.map((x) => ({ id: x.name })),
    (i) => t.positionOf(['tools', i, 'name']),
  )
  const toolProblems = []
  for (const [i, tool] of tools.entries()) {
    const fronting = tool.connector?.kind === 'mcp'
    if (tool.name.startsWith(RESERVED_TOOL_PREFIX)) {
      toolProblems.push({
        ...t.positionOf(['tools', i, 'name']),
        message: `tool names starting with '${RESERVED_TOOL_PREFIX}' are Baton's own (MCP gateway control tools)`,
      })
    }
    const c = tool.connector
    if (c?.kind === 'mcp' && (c.url === undefined) === (c.command === undefined)) {
      toolProblems.push({
        ...t.positionOf(['tools', i, 'connector']),
        message: `tool '${tool.name}': an mcp connector names exactly one of url (Streamable HTTP) and command (stdio)`,
      })
    }
    if (fronting && tool.params !== null) {
      toolProblems.push({
        ...t.positionOf(['tools', i, 'params']),
        message: `tool '${tool.name}' fronts an MCP server: its params are imported from that server; remove them here`,
      })
    }
    if (!fronting && tool.params === null) {
      toolProblems.push({
        ...t.positionOf(['tools', i]),
        message: `tool '${tool.name}': missing required field 'params'`,
      })
    }
  }
  if (toolProblems.length > 0) {
    throw new BatonError(
      'WORKSPACE_INVALID',
      toolProblems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`).join('\n'),
      { positions: toolProblems },
    )
  }
  // Agents may only be granted tools the catalog declares.
  const toolNames = new Set(tools.map((x) => x.name))
  const positions = []
  for (const [i, agent] of agents.entries()) {
    for (const [j, tool] of agent.tools.entries()) {
      if (!toolNames.has(tool)) {
        positions.push({ ...a.positionOf(['agents', i, 'tools', j]), message: `unknown tool '${tool}'` })
      }
    }
  }
  if (positions.length > 0) {
    throw new BatonError(
      'WORKSPACE_INVALID',
      positions.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`).join('\n'),
      { positions },
    )
  }
  return { dir, agents, operators, queues, tools }
}

export async function loadWorkspace(dir: string): Promise<Workspace> {
  const read = (name: string) =>
    readFile(join(dir, name), 'utf8').catch((e: unknown) => {
      throw new BatonError('WORKSPACE_INVALID', `${join(dir, name)}: cannot read (${(e as Error).message})`, {
        cause: e,
      })
    })
  const [agents, operators, queues, tools] = await Promise.all([
    read('agents.yaml'),
    read('operators.yaml'),
    read('queues.yaml'),
    read('tools.yaml'),
  ])
  const rel = (n: string) => relative(process.cwd(), join(dir, n)) || n
  const delegationText = await readFile(join(dir, 'delegation.yaml'), 'utf8').catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new BatonError(
      'DELEGATION_INVALID',
      `${join(dir, 'delegation.yaml')}: cannot read (${(e as Error).message})`,
      {
        cause: e,
      },
    )
  })
  const ws = parseWorkspace(
    dir,
    { agents, operators, queues, tools },
    {
      agents: rel('agents.yaml'),
      operators: rel('operators.yaml'),
      queues: rel('queues.yaml'),
      tools: rel('tools.yaml'),
    },
  )
  const delegation =
    delegationText === undefined
      ? noDelegation(rel('delegation.yaml'))
      : parseDelegation(delegationText, rel('delegation.yaml'), { tools: ws.tools.map((t) => t.name) })
  return { ...ws, policyFile: join(dir, 'policy.yaml'), delegation }
}

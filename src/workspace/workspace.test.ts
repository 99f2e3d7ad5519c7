import { describe, expect, it } from 'vitest'
import { BatonError } from '../errors.js'
import { parseWorkspace } from './workspace.js'

const agents = 'agents:\n  - { id: bot, owner: ops@x.example, purpose: test, tools: [kb] }\n'
const operators = 'operators:\n  - { id: ada, name: Ada, roles: [operator] }\n'
const queues = 'queues:\n  - { id: general }\n'
// tools.yaml's own placeholder syntax, not a JavaScript template.
const KB_REF = ['$', '{KB}'].join('')
const parse = (tools: string) => parseWorkspace('/ws', { agents, operators, queues, tools })
const failure = (tools: string): BatonError => {
  try {
    parse(tools)
  } catch (e) {
    if (e instanceof BatonError) return e
    throw e
  }
  throw new Error('expected the workspace to be refused')
}

describe('tools.yaml connectors', () => {
  it('given an mcp connector with a URL and no params, when parsed, then the tool fronts that server', () => {
    const ws = parse(
      'tools:\n  - name: kb\n    risk: read\n    connector: { kind: mcp, url: "http://kb:1/mcp", tool: search }\n',
    )
    expect(ws.tools[0]).toMatchObject({
      name: 'kb',
      params: null,
      connector: { kind: 'mcp', url: 'http://kb:1/mcp', tool: 'search' },
      position: { file: 'tools.yaml', line: 2 },
    })
  })

  it('given an mcp connector over stdio with its environment, when parsed, then command and env are kept', () => {
    const ws = parse(
      `tools:\n  - name: kb\n    risk: read\n    connector: { kind: mcp, command: [node, kb.js], env: { KB_TOKEN: "${KB_REF}" } }\n`,
    )
    expect(ws.tools[0]?.connector).toEqual({ kind: 'mcp', command: ['node', 'kb.js'], env: { KB_TOKEN: KB_REF } })
  })

  it('given an mcp tool with params of its own, when parsed, then it is refused at the params', () => {
    const e = failure(
      'tools:\n  - name: kb\n    risk: read\n    params: { type: object }\n    connector: { kind: mcp, url: "http://kb:1/mcp" }\n',
    )
    expect(e.code).toBe('WORKSPACE_INVALID')
    expect(e.positions[0]).toMatchObject({ line: 4, message: expect.stringContaining('imported') })
  })

  it('given an mcp connector with both or neither of url and command, when parsed, then it is refused', () => {
    expect(
      failure(
        'tools:\n  - name: kb\n    risk: read\n    connector: { kind: mcp, url: "http://x/mcp", command: [node] }\n',
      ).positions[0]?.message,
    ).toContain('exactly one of url')
    expect(failure('tools:\n  - name: kb\n    risk: read\n    connector: { kind: mcp }\n').code).toBe(
      'WORKSPACE_INVALID',
    )
  })

  it('given an mcp connector with an HTTP connector field, when parsed, then the unknown field is named', () => {
    const e = failure(
      'tools:\n  - name: kb\n    risk: read\n    connector: { kind: mcp, url: "http://x/mcp", method: PUT }\n',
    )
    expect(e.message).toContain("unknown field 'method'")
  })

  it('given an HTTP tool without params, when parsed, then params are required', () => {
    expect(failure('tools:\n  - name: kb\n    risk: read\n').message).toContain("missing required field 'params'")
  })

  it("given a tool named like Baton's control tools, when parsed, then the name is refused", () => {
    const e = failure('tools:\n  - name: baton_case\n    risk: read\n    params: { type: object }\n')
    expect(e.positions[0]).toMatchObject({ line: 2, message: expect.stringContaining("'baton_'") })
  })
})

import { describe, expect, it } from 'vitest'
import { buildCatalog } from './catalog.js'

// tools.yaml's own placeholder syntax, not a JavaScript template.
const ref = (inner: string) => ['$', '{', inner, '}'].join('')

const tools = [
  {
    name: 'refund',
    description: '',
    risk: 'high' as const,
    params: {
      type: 'object',
      additionalProperties: false,
      required: ['order_id', 'amount'],
      properties: { order_id: { type: 'string' }, amount: { type: 'number', exclusiveMinimum: 0 } },
    },
    connector: { url: `${ref('SHOP:-http://localhost:1')}/refund` },
  },
]

describe('tool catalog', () => {
  it('names each parameter at fault', () => {
    const c = buildCatalog(tools, {}).get('refund')!
    expect(c.check({ order_id: 'A', amount: 5 })).toBeNull()
    const p = c.check({ amount: -1, extra: true })!.map((x) => x.field)
    expect(p).toEqual(expect.arrayContaining(['params.order_id', 'params.amount', 'params.extra']))
  })
  it('resolves connector URLs from the environment, with defaults; execute is the default mode', () => {
    expect(buildCatalog(tools, {}).get('refund')!.connector).toEqual({
      kind: 'http',
      url: 'http://localhost:1/refund',
      method: 'POST',
      mode: 'execute',
    })
    expect(buildCatalog(tools, { SHOP: 'http://127.0.0.1:9' }).get('refund')!.connector?.url).toBe(
      'http://127.0.0.1:9/refund',
    )
    const strict = [{ ...tools[0]!, connector: { url: `${ref('NOPE')}/x` } }]
    expect(() => buildCatalog(strict, {})).toThrow(/NOPE/)
  })
})

describe('tools fronting an MCP server', () => {
  const kb = {
    name: 'kb_search',
    description: '',
    risk: 'read' as const,
    params: null,
    connector: { kind: 'mcp' as const, url: `${ref('KB:-http://kb:1')}/mcp`, tool: 'search' },
  }
  const imported = new Map([
    [
      'kb_search',
      {
        title: 'Knowledge base search',
        description: 'Search the articles',
        inputSchema: {
          $schema: 'https://json-schema.org/draft/2020-12/schema',
          type: 'object',
          required: ['query'],
          additionalProperties: false,
          $defs: { limit: { type: 'integer', maximum: 10 } },
          properties: { query: { type: 'string' }, limit: { $ref: '#/$defs/limit' } },
        },
      },
    ],
  ])

  it("takes the upstream's schema (JSON Schema 2020-12), title and description, and names its upstream", () => {
    const c = buildCatalog([kb], {}, imported).get('kb_search')!
    expect(c).toMatchObject({ title: 'Knowledge base search', description: 'Search the articles' })
    expect(c.params).toBe(imported.get('kb_search')!.inputSchema)
    expect(c.connector).toMatchObject({ kind: 'mcp', url: 'http://kb:1/mcp', tool: 'search', mode: 'execute' })
    expect(c.check({ query: 'x', limit: 3 })).toBeNull()
    expect(c.check({ query: 'x', limit: 30 })!.map((p) => p.field)).toEqual(['params.limit'])
    expect(c.check({ limit: 3 })!.map((p) => p.field)).toEqual(['params.query'])
  })

  it('tools.yaml texts win over the upstream; a title is made from the name when neither has one', () => {
    const own = buildCatalog([{ ...kb, title: 'KB', description: 'Ours' }], {}, imported).get('kb_search')!
    expect(own).toMatchObject({ title: 'KB', description: 'Ours' })
    expect(buildCatalog(tools, {}).get('refund')!.title).toBe('Refund')
  })

  it('refuses to build a fronting tool whose schema was not imported', () => {
    expect(() => buildCatalog([kb], {})).toThrow(TypeError)
  })
})

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

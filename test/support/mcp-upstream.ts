// An upstream MCP server for the gateway tests, built with the official SDK and run as its own process:
//   node --import tsx test/support/mcp-upstream.ts --http    Streamable HTTP on 127.0.0.1 (prints LISTENING <url>)
//   node --import tsx test/support/mcp-upstream.ts --stdio   over stdin/stdout
// Every tools/call it receives is appended as a JSON line to $UPSTREAM_LOG (tool, arguments, _meta) before it acts.
import { appendFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js'

export const UPSTREAM_TOOLS: Tool[] = [
  {
    name: 'search',
    title: 'Knowledge base search',
    description: 'Search the help-centre articles',
    inputSchema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      additionalProperties: false,
      required: ['query'],
      $defs: { limit: { type: 'integer', minimum: 1, maximum: 10 } },
      properties: { query: { type: 'string', minLength: 1, maxLength: 200 }, limit: { $ref: '#/$defs/limit' } },
    },
  },
  {
    name: 'transfer',
    description: 'Move store credit to an account',
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['account', 'amount'],
      properties: { account: { type: 'string' }, amount: { type: 'number', exclusiveMinimum: 0 } },
    },
  },
  { name: 'crash', description: 'Dies in the middle of the call', inputSchema: { type: 'object', properties: {} } },
  { name: 'broken', description: 'Answers with isError', inputSchema: { type: 'object', properties: {} } },
]

// The fixture tools of the MCP conformance suite's server scenarios that a tools-only gateway can pass on
// (@modelcontextprotocol/conformance, src/scenarios/server/tools.ts and json-schema-2020-12.ts).
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='
const WAV = 'UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA='
const empty = { type: 'object', properties: {} } as const
export const CONFORMANCE_TOOLS: Tool[] = [
  { name: 'test_simple_text', description: 'Returns simple text', inputSchema: empty },
  { name: 'test_image_content', description: 'Returns an image', inputSchema: empty },
  { name: 'test_audio_content', description: 'Returns audio', inputSchema: empty },
  { name: 'test_embedded_resource', description: 'Returns an embedded resource', inputSchema: empty },
  { name: 'test_multiple_content_types', description: 'Returns text, an image and a resource', inputSchema: empty },
  { name: 'test_error_handling', description: 'Always fails', inputSchema: empty },
  {
    name: 'json_schema_2020_12_tool',
    description: 'Tool with JSON Schema 2020-12 features',
    inputSchema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      $defs: {
        address: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } },
      },
      properties: { name: { type: 'string' }, address: { $ref: '#/$defs/address' } },
      additionalProperties: false,
    },
  },
]

function conformanceResult(name: string): CallToolResult | undefined {
  const image = { type: 'image' as const, data: PNG, mimeType: 'image/png' }
  switch (name) {
    case 'test_simple_text':
      return { content: [{ type: 'text', text: 'This is a simple text response for testing.' }] }
    case 'test_image_content':
      return { content: [image] }
    case 'test_audio_content':
      return { content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] }
    case 'test_embedded_resource':
      return {
        content: [
          {
            type: 'resource',
            resource: {
              uri: 'test://embedded-resource',
              mimeType: 'text/plain',
              text: 'This is an embedded resource content.',
            },
          },
        ],
      }
    case 'test_multiple_content_types':
      return {
        content: [
          { type: 'text', text: 'Multiple content types test:' },
          image,
          {
            type: 'resource',
            resource: {
              uri: 'test://mixed-content-resource',
              mimeType: 'application/json',
              text: JSON.stringify({ test: 'data', value: 123 }),
            },
          },
        ],
      }
    case 'test_error_handling':
      return {
        isError: true,
        content: [{ type: 'text', text: 'This tool intentionally returns an error for testing' }],
      }
    case 'json_schema_2020_12_tool':
      return { content: [{ type: 'text', text: 'ok' }] }
  }
  return undefined
}

function server(): Server {
  const s = new Server({ name: 'test-upstream', version: '1.0.0' }, { capabilities: { tools: {} } })
  s.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: [...UPSTREAM_TOOLS, ...CONFORMANCE_TOOLS] }))
  s.setRequestHandler(CallToolRequestSchema, async (req) => {
    const { name, arguments: args = {}, _meta = {} } = req.params
    if (process.env.UPSTREAM_LOG) {
      appendFileSync(process.env.UPSTREAM_LOG, `${JSON.stringify({ tool: name, arguments: args, meta: _meta })}\n`)
    }
    const fixture = conformanceResult(name)
    if (fixture !== undefined) return fixture
    if (name === 'crash') {
      setTimeout(() => process.exit(3), 20)
      return new Promise(() => undefined)
    }
    if (name === 'broken') return { isError: true, content: [{ type: 'text', text: 'upstream says no' }] }
    if (name === 'transfer')
      return { content: [{ type: 'text', text: `transferred ${args.amount} to ${args.account}` }] }
    return {
      content: [{ type: 'text', text: `3 articles about ${String(args.query)}` }],
      structuredContent: { query: args.query, hits: 3 },
    }
  })
  return s
}

if (process.argv.includes('--stdio')) {
  await server().connect(new StdioServerTransport())
} else {
  const sessions = new Map<string, StreamableHTTPServerTransport>()
  const http = createServer(async (req, res) => {
    const sid = req.headers['mcp-session-id']
    let transport = typeof sid === 'string' ? sessions.get(sid) : undefined
    if (transport === undefined) {
      const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => crypto.randomUUID(),
        onsessioninitialized: (id) => {
          sessions.set(id, created)
        },
      })
      await server().connect(created)
      transport = created
    }
    await transport.handleRequest(req, res)
  })
  http.listen(0, '127.0.0.1', () => {
    process.stdout.write(`LISTENING http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp\n`)
  })
}

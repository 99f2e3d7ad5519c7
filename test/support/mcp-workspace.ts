import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { SHOP } from './app.js'

export const UPSTREAM_SCRIPT = resolve(import.meta.dirname, 'mcp-upstream.ts')

/**
 * The shop workspace plus tools fronting upstream MCP servers: `kb_search` and `store_credit` on the server at
 * `$MCP_UPSTREAM_URL`, `kb_crash` and `kb_broken` on the one at `$MCP_CRASHY_URL`, `kb_stdio_crash` on a stdio
 * process; a second agent (`second-bot`, cases whose intent is `newsletter_subscription`); and their tool rules.
 */
export function mcpWorkspace(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'baton-mcp-ws-')), 'shop')
  cpSync(SHOP, dir, { recursive: true })
  const append = (file: string, text: string) =>
    writeFileSync(join(dir, file), `${readFileSync(join(dir, file), 'utf8').trimEnd()}\n${text}`)
  append(
    'tools.yaml',
    `  - name: kb_search
    risk: read
    connector: { kind: mcp, url: "\${MCP_UPSTREAM_URL}", tool: search }
  - name: store_credit
    title: Store credit
    risk: high
    connector: { kind: mcp, url: "\${MCP_UPSTREAM_URL}", tool: transfer }
  - name: kb_crash
    risk: low
    connector: { kind: mcp, url: "\${MCP_CRASHY_URL}", tool: crash }
  - name: kb_broken
    risk: low
    connector: { kind: mcp, url: "\${MCP_CRASHY_URL}", tool: broken }
  - name: kb_stdio_crash
    risk: low
    connector:
      kind: mcp
      command: ["\${NODE_BINARY}", "--import", "tsx", "${UPSTREAM_SCRIPT}", "--stdio"]
      tool: crash
      env: { UPSTREAM_LOG: "\${UPSTREAM_LOG}" }
`,
  )
  const agents = readFileSync(join(dir, 'agents.yaml'), 'utf8').replace(
    'tools: [reply, order_status, refund, disclose_order, change_email, reset_password, close_case]',
    'tools: [reply, order_status, refund, disclose_order, change_email, reset_password, close_case, kb_search, store_credit, kb_crash, kb_broken, kb_stdio_crash]',
  )
  writeFileSync(
    join(dir, 'agents.yaml'),
    `${agents.trimEnd()}
  - id: second-bot
    owner: dana.ops@shop.example
    purpose: Answers newsletter questions
    tools: [reply]
    state: active
`,
  )
  let policy = readFileSync(join(dir, 'policy.yaml'), 'utf8')
  policy = policy.replace(
    '\n  rules:\n',
    `\n  rules:\n    - id: newsletter-bot
      when: signals.intent == 'newsletter_subscription'
      route: { handler: agent, agent: second-bot }
      reason: The newsletter bot answers newsletter questions

`,
  )
  policy = policy.replace(
    '\ntests:',
    `
    - id: kb-search
      tool: [kb_search, kb_crash, kb_broken, kb_stdio_crash]
      outcome: allow
      reason: Reading the help centre is the assistant's job
    - id: no-outside-credit
      tool: store_credit
      when: params.account.startsWith('ext-')
      outcome: deny
      reason: Store credit goes only to the customer's own account
    - id: small-credit
      tool: store_credit
      when: params.amount <= 20
      outcome: allow
      reason: Small credits need no approval
    - id: credit
      tool: store_credit
      outcome: approve
      approver_role: billing
      queue: billing
      reason: Store credit above 20 needs a billing approver

tests:`,
  )
  writeFileSync(join(dir, 'policy.yaml'), policy)
  return dir
}

/** Tools of the conformance suite's fixtures, fronted from the upstream at `$MCP_UPSTREAM_URL` by their own names. */
export const CONFORMANCE_FIXTURES = [
  'test_simple_text',
  'test_image_content',
  'test_audio_content',
  'test_embedded_resource',
  'test_multiple_content_types',
  'test_error_handling',
  'json_schema_2020_12_tool',
]

/** The shop workspace with the conformance fixtures fronted through `mcp` connectors and allowed by policy. */
export function conformanceWorkspace(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'baton-mcp-conf-')), 'shop')
  cpSync(SHOP, dir, { recursive: true })
  const tools = CONFORMANCE_FIXTURES.map(
    (name) => `  - name: ${name}\n    risk: read\n    connector: { kind: mcp, url: "\${MCP_UPSTREAM_URL}" }\n`,
  ).join('')
  writeFileSync(join(dir, 'tools.yaml'), `${readFileSync(join(dir, 'tools.yaml'), 'utf8').trimEnd()}\n${tools}`)
  writeFileSync(
    join(dir, 'agents.yaml'),
    readFileSync(join(dir, 'agents.yaml'), 'utf8').replace(
      'reset_password, close_case]',
      `reset_password, close_case, ${CONFORMANCE_FIXTURES.join(', ')}]`,
    ),
  )
  writeFileSync(
    join(dir, 'policy.yaml'),
    readFileSync(join(dir, 'policy.yaml'), 'utf8').replace(
      '\ntests:',
      `
    - id: conformance-fixtures
      tool: [${CONFORMANCE_FIXTURES.join(', ')}]
      outcome: allow
      reason: The conformance suite's fixture tools

tests:`,
    ),
  )
  return dir
}

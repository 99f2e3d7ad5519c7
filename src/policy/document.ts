import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  type Document as YamlDocument,
} from 'yaml'
import type { Handler, HandlerKind } from '../cases/case.js'
import { BatonError } from '../errors.js'
import { RISK_CATEGORIES, type RiskCategory } from '../signals/types.js'
import { factsShape, isMapShape, isObjectShape, type ObjectShape, type Shape } from './facts-shape.js'
import { didYouMean } from './suggest.js'
import type { ActionOutcome } from './types.js'

/** One finding about a policy source, 1-based line and column. */
export interface Diagnostic {
  readonly file: string
  readonly line: number
  readonly column: number
  readonly message: string
  /** e.g. `did you mean 'signals.risk'?` */
  readonly hint?: string
}

export interface Located {
  readonly line: number
  readonly column: number
}

/** A CEL condition as written in the YAML, with the source position of each of its characters. */
export interface Condition extends Located {
  readonly text: string
  /** Source line of `text[i]`; index `text.length` is the position just past the end. */
  readonly charLines: readonly number[]
  readonly charColumns: readonly number[]
}

/**
 * Where a routing rule sends the case: a handler, or `{ handler: current }`, whoever holds the case now (its
 * `case.handler`, `case.queue` and `case.agent`; the fallback queue for a case no one holds yet). The default
 * route always names a handler.
 */
export type RouteTarget = Handler | { readonly kind: 'current' }

export interface RoutingRule extends Located {
  readonly id: string
  /** null: always matches. */
  readonly when: Condition | null
  readonly handler: RouteTarget
  readonly trigger: string
  readonly reason: string
  readonly override: boolean
}

export interface ToolRule extends Located {
  readonly id: string
  /** Tool names this rule is about; `['*']` for every tool. */
  readonly tools: readonly string[]
  readonly when: Condition | null
  readonly outcome: ActionOutcome
  /** Role an approver must hold; set exactly when outcome is 'approve'. */
  readonly approverRole: string
  /** Queue for an escalation or an approval request; '' means the routing fallback queue. */
  readonly queue: string
  readonly reason: string
  readonly override: boolean
}

export const CALLER_SIGNAL_TYPES = ['string', 'number', 'integer', 'boolean'] as const
export type CallerSignalType = (typeof CALLER_SIGNAL_TYPES)[number]

/** A caller-provided signal the policy accepts, visible to conditions as `signals.custom.<name>`. */
export interface CallerSignal extends Located {
  readonly name: string
  readonly type: CallerSignalType
  readonly enum: readonly (string | number)[] | null
  readonly minimum: number | null
  readonly maximum: number | null
  /** Value when the caller does not provide the signal: the declared `default`, else '' / 0 / false. */
  readonly default: string | number | boolean
  readonly description: string
}

export interface Topic extends Located {
  readonly name: string
  readonly phrases: readonly string[]
}

/** An intent label the policy declares (`intents:`): one a caller may send besides the workspace model's labels. */
export interface IntentLabel extends Located {
  readonly name: string
}

/** A name the policy refers to that must exist in the workspace (an agent, a queue or a tool). */
export interface Reference extends Located {
  readonly kind: 'agent' | 'queue' | 'tool'
  readonly name: string
}

export interface TestExpectation {
  readonly handler?: HandlerKind
  readonly queue?: string
  readonly agent?: string
  readonly outcome?: string
  /** The id of a rule among those that decided. */
  readonly rule?: string
  readonly approver_role?: string
  readonly trigger?: string
}

export interface PolicyTestCase extends Located {
  readonly file: string
  readonly name: string
  /** 'action' when `given.tool` is set. */
  readonly kind: 'route' | 'action'
  /** Partial facts, merged over the neutral facts of the policy. */
  readonly given: Readonly<Record<string, unknown>>
  readonly expect: TestExpectation
}

export interface PolicyMetadata {
  readonly name: string
  readonly version: number
  /** Where `metadata.version` is written, for errors about the version (a conflict with the one in force). */
  readonly versionAt: Located
  readonly owner: string
  readonly description: string
}

export interface PolicyDocument {
  readonly file: string
  readonly metadata: PolicyMetadata
  readonly signals: readonly CallerSignal[]
  /** Extra terms per built-in risk category (possibly empty lists). */
  readonly terms: Readonly<Record<RiskCategory, readonly string[]>>
  readonly topics: readonly Topic[]
  /**
   * Intent labels a caller may send besides those of the workspace's model (`intents:`); null when the policy
   * declares none (then only the model's labels, and `unknown`, are accepted).
   */
  readonly intents: readonly IntentLabel[] | null
  readonly routing: {
    /** The default route always names a handler (never `current`). */
    readonly default: RoutingRule & { readonly handler: Handler }
    readonly maxHandoffs: number
    /**
     * Escalation triggers the policy declares (`routing.triggers`), each with what it means. When any are declared,
     * every rule's `trigger` must name one of them or a built-in one (`BUILTIN_TRIGGERS`).
     */
    readonly triggers: readonly EscalationTrigger[]
    /** Queue for a human when no rule names one: the ping-pong cap and tool escalations without a queue. */
    readonly fallbackQueue: string
    readonly overrides: readonly RoutingRule[]
    readonly rules: readonly RoutingRule[]
  }
  readonly tools: {
    readonly overrides: readonly ToolRule[]
    readonly rules: readonly ToolRule[]
  }
  readonly tests: readonly PolicyTestCase[]
  readonly references: readonly Reference[]
}

/** A named reason for handing a case to a human, declared under `routing.triggers`. */
export interface EscalationTrigger extends Located {
  readonly name: string
  readonly description: string
}

/**
 * Triggers Baton itself names: the ping-pong cap, an SLA breach (the SLA timer re-decides the case), an operator's
 * manual takeover, a hand-back to an AI agent, and a route to an agent that is not active.
 */
export const BUILTIN_TRIGGERS = ['max_handoffs', 'sla_breach', 'manual', 'handback', 'agent_inactive'] as const

export const API_VERSION = 'baton.dev/v1'
export const DEFAULT_MAX_HANDOFFS = 4
/** Rule ids Baton itself puts in decisions. */
export const RESERVED_RULE_IDS = ['default', 'max-handoffs', 'agent-inactive'] as const

const HANDLER_KINDS = ['agent', 'operator', 'hybrid'] as const
/** What a rule's `route.handler` may name: a handler kind, or `current` (keep the case with whoever holds it). */
const ROUTE_KINDS = [...HANDLER_KINDS, 'current'] as const
const OUTCOMES = ['allow', 'approve', 'confirm', 'deny', 'escalate'] as const
const OVERRIDE_OUTCOMES = ['deny', 'escalate'] as const
const RULE_ID = /^[a-z0-9][a-z0-9_.-]*$/
const NAME = /^[a-z0-9][a-z0-9_.-]*$/
const IDENTIFIER = /^[a-z_][a-z0-9_]*$/
const CEL_RESERVED = new Set([
  'as',
  'break',
  'const',
  'continue',
  'else',
  'false',
  'for',
  'function',
  'if',
  'import',
  'in',
  'let',
  'loop',
  'package',
  'namespace',
  'null',
  'return',
  'true',
  'var',
  'void',
  'while',
])

/**
 * Parse and validate a policy document. Every problem found is reported, each with its position.
 * @throws BatonError POLICY_INVALID with `positions` listing every problem.
 */
export function parsePolicy(source: string, file: string): PolicyDocument {
  const { doc, errors } = readPolicy(source, file)
  if (doc === null || errors.length > 0) throw policyInvalid(errors)
  return doc
}

/**
 * Parse a test file (`<name>.test.yaml`): a list of tests, or a mapping with a `tests:` list.
 * `doc` (the policy under test) lets the `given` facts name its topics and custom signals.
 * @throws BatonError POLICY_INVALID
 */
export function parsePolicyTests(source: string, file: string, doc: PolicyDocument | null): readonly PolicyTestCase[] {
  const r = new Reader(source, file)
  const root = r.parse()
  if (root === undefined) throw policyInvalid(r.errors)
  let list: Node | null = root
  if (isMap(root)) {
    const m = r.fields(root, '', { tests: true })
    list = m?.get('tests')?.value ?? null
  }
  const shape = factsShape({
    topics: doc?.topics.map((t) => t.name) ?? [],
    custom: doc?.signals ?? [],
    queues: null,
    agents: null,
  })
  const tests = readTests(r, list, 'tests', shape, doc === null)
  r.errors.sort((a, b) => a.line - b.line || a.column - b.column)
  if (r.errors.length > 0) throw policyInvalid(r.errors)
  return tests
}

/** The error a caller throws for a list of diagnostics. */
export function policyInvalid(errors: readonly Diagnostic[]): BatonError {
  const lines = errors.map(formatDiagnostic)
  return new BatonError('POLICY_INVALID', lines.length > 0 ? lines.join('\n') : 'policy is invalid', {
    positions: errors.map((d) => ({
      file: d.file,
      line: d.line,
      column: d.column,
      message: d.hint === undefined ? d.message : `${d.message} (${d.hint})`,
    })),
  })
}

/** `policy.yaml:14:9: unknown variable 'signals.riks' (did you mean 'signals.risk'?)` */
export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.column}: ${d.message}${d.hint === undefined ? '' : ` (${d.hint})`}`
}

/** Source position of character `index` of a condition's text. */
export function conditionPosition(c: Condition, index: number): Located {
  const i = Math.max(0, Math.min(index, c.text.length))
  return { line: c.charLines[i] ?? c.line, column: c.charColumns[i] ?? c.column }
}

/** What `readPolicy` found, even in a broken document. */
export interface PolicyReading {
  /** null when too broken to build. */
  readonly doc: PolicyDocument | null
  readonly errors: Diagnostic[]
  /** Every condition read, including those of rules dropped for other errors, so that they are checked too. */
  readonly conditions: readonly { readonly condition: Condition; readonly kind: 'routing' | 'tool' }[]
  readonly topics: readonly Topic[]
  readonly signals: readonly CallerSignal[]
}

/** Parse without throwing: the document and every error found. */
export function readPolicy(source: string, file: string): PolicyReading {
  const r = new Reader(source, file)
  const root = r.parse()
  const doc = root === undefined ? null : readDocument(r, root)
  r.errors.sort((a, b) => a.line - b.line || a.column - b.column)
  return { doc, errors: r.errors, conditions: r.conditions, topics: r.topics, signals: r.signals }
}

// ---- reading YAML nodes with positions ----

interface Entry {
  readonly key: string
  readonly keyOffset: number
  readonly value: Node | null
  readonly path: string
}

class Reader {
  readonly errors: Diagnostic[] = []
  readonly references: Reference[] = []
  readonly conditions: { condition: Condition; kind: 'routing' | 'tool' }[] = []
  topics: readonly Topic[] = []
  signals: readonly CallerSignal[] = []
  readonly lines = new LineCounter()
  #doc: YamlDocument.Parsed | null = null

  constructor(
    readonly source: string,
    readonly file: string,
  ) {}

  /** The root node; undefined when the YAML itself is broken (errors recorded). */
  parse(): Node | null | undefined {
    const doc = parseDocument(this.source, {
      lineCounter: this.lines,
      keepSourceTokens: true,
      prettyErrors: false,
      uniqueKeys: true,
      strict: true,
    })
    this.#doc = doc
    for (const e of doc.errors) {
      const [line, column] = this.pos(e.pos[0])
      const message = e.code === 'DUPLICATE_KEY' ? 'duplicate key' : `invalid YAML: ${e.message.split('\n')[0]}`
      this.errors.push({ file: this.file, line, column, message })
    }
    if (doc.errors.length > 0) return undefined
    return this.resolve(doc.contents as Node | null)
  }

  pos(offset: number): [number, number] {
    const p = this.lines.linePos(offset)
    return p.line === 0 ? [1, offset + 1] : [p.line, p.col]
  }

  offsetOf(node: Node | null | undefined, fallback: number): number {
    const start = node?.range?.[0]
    return start === undefined || start === null ? fallback : start
  }

  at(offset: number, message: string, hint?: string): void {
    const [line, column] = this.pos(offset)
    this.errors.push(
      hint === undefined
        ? { file: this.file, line, column, message }
        : { file: this.file, line, column, message, hint },
    )
  }

  located(offset: number): Located {
    const [line, column] = this.pos(offset)
    return { line, column }
  }

  resolve(node: Node | null | undefined): Node | null {
    if (node === null || node === undefined) return null
    if (isAlias(node)) return this.#doc === null ? null : ((node.resolve(this.#doc) as Node | undefined) ?? null)
    return node
  }

  toJS(node: Node): unknown {
    return this.#doc === null ? null : node.toJS(this.#doc)
  }

  /** The entries of a mapping; reports unknown and missing keys. `spec`: key → required. */
  fields(node: Node | null, path: string, spec: Readonly<Record<string, boolean>>, at = 0): Map<string, Entry> | null {
    if (!isMap(node)) {
      this.at(this.offsetOf(node, at), `${label(path)}expected a mapping, found ${describe(node)}`)
      return null
    }
    const out = new Map<string, Entry>()
    const allowed = Object.keys(spec)
    for (const pair of node.items) {
      const keyNode = pair.key as Node | null
      const keyOffset = this.offsetOf(keyNode, this.offsetOf(node, at))
      if (!isScalar(keyNode) || typeof keyNode.value !== 'string') {
        this.at(keyOffset, `${label(path)}expected a key name, found ${describe(keyNode)}`)
        continue
      }
      const key = keyNode.value
      const childPath = path === '' ? key : `${path}.${key}`
      if (!(key in spec)) {
        this.at(
          keyOffset,
          `${label(path)}unknown key '${key}', expected one of: ${allowed.join(', ')}`,
          didYouMean(key, allowed),
        )
        continue
      }
      out.set(key, { key, keyOffset, value: this.resolve(pair.value as Node | null), path: childPath })
    }
    for (const [key, required] of Object.entries(spec)) {
      if (required && !out.has(key)) {
        this.at(this.offsetOf(node, at), `${label(path)}missing required key '${key}'`)
      }
    }
    return out
  }

  /** Entries of a mapping with free-form keys. */
  entries(node: Node | null, path: string, at: number): Entry[] {
    if (node === null) return []
    if (!isMap(node)) {
      this.at(this.offsetOf(node, at), `${label(path)}expected a mapping, found ${describe(node)}`)
      return []
    }
    const out: Entry[] = []
    for (const pair of node.items) {
      const keyNode = pair.key as Node | null
      const keyOffset = this.offsetOf(keyNode, this.offsetOf(node, at))
      if (!isScalar(keyNode) || typeof keyNode.value !== 'string') {
        this.at(keyOffset, `${label(path)}expected a name, found ${describe(keyNode)}`)
        continue
      }
      const value = this.resolve(pair.value as Node | null)
      out.push({ key: keyNode.value, keyOffset, value, path: path === '' ? keyNode.value : `${path}.${keyNode.value}` })
    }
    return out
  }

  items(node: Node | null, path: string, at: number): { node: Node | null; path: string; offset: number }[] {
    if (node === null) return []
    if (!isSeq(node)) {
      this.at(this.offsetOf(node, at), `${label(path)}expected a list, found ${describe(node)}`)
      return []
    }
    return node.items.map((item, i) => {
      const n = this.resolve(item as Node | null)
      return { node: n, path: `${path}[${i}]`, offset: this.offsetOf(n, this.offsetOf(node, at)) }
    })
  }

  string(e: Entry | undefined, opts: { pattern?: RegExp; patternText?: string; oneOf?: readonly string[] } = {}) {
    if (e === undefined) return undefined
    const n = e.value
    if (!isScalar(n) || typeof n.value !== 'string') {
      this.at(this.offsetOf(n, e.keyOffset), `${label(e.path)}expected a string, found ${describe(n)}`)
      return undefined
    }
    const v = n.value
    if (opts.oneOf !== undefined && !opts.oneOf.includes(v)) {
      this.at(
        this.offsetOf(n, e.keyOffset),
        `${label(e.path)}expected one of ${opts.oneOf.map((x) => `'${x}'`).join(', ')}, found '${v}'`,
        didYouMean(v, opts.oneOf),
      )
      return undefined
    }
    if (opts.pattern !== undefined && !opts.pattern.test(v)) {
      this.at(
        this.offsetOf(n, e.keyOffset),
        `${label(e.path)}expected ${opts.patternText ?? `a string matching ${opts.pattern}`}, found '${v}'`,
      )
      return undefined
    }
    return v
  }

  number(e: Entry | undefined, opts: { integer?: boolean; min?: number } = {}): number | undefined {
    if (e === undefined) return undefined
    const n = e.value
    const what = opts.integer === true ? 'an integer' : 'a number'
    if (!isScalar(n) || typeof n.value !== 'number' || !Number.isFinite(n.value)) {
      this.at(this.offsetOf(n, e.keyOffset), `${label(e.path)}expected ${what}, found ${describe(n)}`)
      return undefined
    }
    if (opts.integer === true && !Number.isInteger(n.value)) {
      this.at(this.offsetOf(n, e.keyOffset), `${label(e.path)}expected ${what}, found ${n.value}`)
      return undefined
    }
    if (opts.min !== undefined && n.value < opts.min) {
      this.at(this.offsetOf(n, e.keyOffset), `${label(e.path)}expected at least ${opts.min}, found ${n.value}`)
      return undefined
    }
    return n.value
  }

  strings(e: Entry | undefined): string[] | undefined {
    if (e === undefined) return undefined
    const out: string[] = []
    const n = e.value
    if (!isSeq(n)) {
      this.at(this.offsetOf(n, e.keyOffset), `${label(e.path)}expected a list of strings, found ${describe(n)}`)
      return undefined
    }
    for (const [i, item] of n.items.entries()) {
      const v = this.resolve(item as Node | null)
      if (!isScalar(v) || typeof v.value !== 'string' || v.value.trim() === '') {
        this.at(
          this.offsetOf(v, this.offsetOf(n, e.keyOffset)),
          `${label(`${e.path}[${i}]`)}expected a non-empty string, found ${describe(v)}`,
        )
        continue
      }
      out.push(v.value)
    }
    return out
  }

  condition(e: Entry | undefined): Condition | null {
    if (e === undefined) return null
    const n = e.value
    if (!isScalar(n) || (typeof n.value !== 'string' && typeof n.value !== 'boolean') || !n.range) {
      this.at(
        this.offsetOf(n, e.keyOffset),
        `${label(e.path)}expected a CEL expression (a string), found ${describe(n)}`,
      )
      return null
    }
    const range = n.range
    const text = typeof n.value === 'string' ? n.value : this.source.slice(range[0], range[1])
    if (text.trim() === '') {
      this.at(range[0], `${label(e.path)}expected a CEL expression, found an empty string`)
      return null
    }
    const offsets = alignScalar(this.source, range[0], range[1], String(n.type ?? 'PLAIN'), text)
    const charLines: number[] = []
    const charColumns: number[] = []
    for (const o of offsets) {
      const [l, c] = this.pos(o)
      charLines.push(l)
      charColumns.push(c)
    }
    const first = text.search(/\S/)
    const condition: Condition = {
      text,
      line: charLines[first] ?? 1,
      column: charColumns[first] ?? 1,
      charLines,
      charColumns,
    }
    this.conditions.push({ condition, kind: e.path.startsWith('tools') ? 'tool' : 'routing' })
    return condition
  }
}

/**
 * Source offset of each character of a scalar's value (and one past the end): a greedy walk over the source that
 * skips what YAML removed (quotes, escapes, indentation, folded line breaks). Exact for every non-blank character
 * of plain, quoted and block scalars, except characters written as escape sequences.
 */
function alignScalar(source: string, start: number, end: number, type: string, text: string): number[] {
  let p = start
  if (type === 'QUOTE_DOUBLE' || type === 'QUOTE_SINGLE') p = start + 1
  else if (type === 'BLOCK_LITERAL' || type === 'BLOCK_FOLDED') {
    const nl = source.indexOf('\n', start)
    p = nl < 0 || nl >= end ? end : nl + 1
  }
  const out: number[] = []
  for (const c of text) {
    let q = p
    while (q < end && source[q] !== c && SKIPPABLE.has(source[q]!)) q++
    if (q < end && source[q] === c) {
      out.push(q)
      p = q + 1
    } else {
      out.push(Math.min(p, Math.max(start, end - 1)))
      if (p < end) p++
    }
    // a character outside the BMP is two code units in `text`: give both the same position
    if (c.length === 2) out.push(out[out.length - 1]!)
  }
  out.push(Math.min(p, end))
  return out
}

const SKIPPABLE = new Set([' ', '\t', '\n', '\r', '\\', '"', "'"])

function label(path: string): string {
  return path === '' ? '' : `${path}: `
}

function describe(n: Node | null | undefined): string {
  if (n === null || n === undefined) return 'nothing'
  if (isMap(n)) return 'a mapping'
  if (isSeq(n)) return 'a list'
  if (isScalar(n)) {
    const v = n.value
    if (v === null || v === undefined) return 'nothing'
    if (typeof v === 'string') return `the string '${v.length > 40 ? `${v.slice(0, 40)}…` : v}'`
    if (typeof v === 'number') return `the number ${v}`
    if (typeof v === 'boolean') return `the boolean ${v}`
    return `a ${typeof v}`
  }
  return 'an unsupported YAML node'
}

// ---- the policy document ----

function readDocument(r: Reader, root: Node | null): PolicyDocument | null {
  const top = r.fields(root, '', {
    apiVersion: true,
    kind: true,
    metadata: true,
    signals: false,
    intents: false,
    terms: false,
    topics: false,
    routing: true,
    tools: false,
    tests: false,
  })
  if (top === null) return null
  r.string(top.get('apiVersion'), { oneOf: [API_VERSION] })
  r.string(top.get('kind'), { oneOf: ['Policy'] })
  const metadata = readMetadata(r, top.get('metadata'))
  const signals = readCallerSignals(r, top.get('signals'))
  const intents = readIntentLabels(r, top.get('intents'))
  const terms = readTerms(r, top.get('terms'))
  const topics = readTopics(r, top.get('topics'))
  r.signals = signals
  r.topics = topics
  const ids = new Map<string, number>()
  const routing = readRouting(r, top.get('routing'), ids)
  const tools = readTools(r, top.get('tools'), ids)
  const shape = factsShape({ topics: topics.map((t) => t.name), custom: signals, queues: null, agents: null })
  const testsEntry = top.get('tests')
  const tests = testsEntry === undefined ? [] : readTests(r, testsEntry.value, 'tests', shape, false)
  if (metadata === null || routing === null) return null
  return {
    file: r.file,
    metadata,
    signals,
    intents,
    terms,
    topics,
    routing,
    tools,
    tests,
    references: r.references,
  }
}

function readMetadata(r: Reader, e: Entry | undefined): PolicyMetadata | null {
  if (e === undefined) return null
  const m = r.fields(e.value, e.path, { name: true, version: true, owner: false, description: false }, e.keyOffset)
  if (m === null) return null
  const name = r.string(m.get('name'), { pattern: NAME, patternText: 'a lowercase name like shop or shop-eu' })
  const versionEntry = m.get('version')
  const version = r.number(versionEntry, { integer: true, min: 1 })
  const owner = r.string(m.get('owner')) ?? ''
  const description = r.string(m.get('description')) ?? ''
  if (name === undefined || version === undefined || versionEntry === undefined) return null
  const [line, column] = r.pos(r.offsetOf(versionEntry.value, versionEntry.keyOffset))
  return { name, version, versionAt: { line, column }, owner, description }
}

function readCallerSignals(r: Reader, e: Entry | undefined): CallerSignal[] {
  if (e === undefined) return []
  const out: CallerSignal[] = []
  for (const s of r.entries(e.value, e.path, e.keyOffset)) {
    if (!identifier(r, s.key, s.keyOffset, 'a signal name')) continue
    if (BUILTIN_CALLER_SIGNALS.includes(s.key)) {
      r.at(s.keyOffset, `${label(s.path)}'${s.key}' is a built-in signal and cannot be redeclared`)
      continue
    }
    const m = r.fields(
      s.value,
      s.path,
      { type: true, enum: false, minimum: false, maximum: false, default: false, description: false },
      s.keyOffset,
    )
    if (m === null) continue
    const type = r.string(m.get('type'), { oneOf: CALLER_SIGNAL_TYPES }) as CallerSignalType | undefined
    if (type === undefined) continue
    const minimum = type === 'number' || type === 'integer' ? (r.number(m.get('minimum')) ?? null) : null
    const maximum = type === 'number' || type === 'integer' ? (r.number(m.get('maximum')) ?? null) : null
    for (const k of ['minimum', 'maximum'] as const) {
      const x = m.get(k)
      if (x !== undefined && type !== 'number' && type !== 'integer') {
        r.at(x.keyOffset, `${label(x.path)}expected no '${k}' for a signal of type ${type}`)
      }
    }
    let enumValues: (string | number)[] | null = null
    const en = m.get('enum')
    if (en !== undefined) {
      if (type === 'boolean') r.at(en.keyOffset, `${label(en.path)}expected no 'enum' for a boolean signal`)
      else {
        enumValues = []
        for (const it of r.items(en.value, en.path, en.keyOffset)) {
          const v = isScalar(it.node) ? it.node.value : undefined
          const ok = type === 'string' ? typeof v === 'string' : typeof v === 'number'
          if (!ok)
            r.at(
              it.offset,
              `${label(it.path)}expected ${type === 'string' ? 'a string' : 'a number'}, found ${describe(it.node)}`,
            )
          else enumValues.push(v as string | number)
        }
      }
    }
    let def = implicitDefault(type, enumValues, minimum, maximum)
    const d = m.get('default')
    if (d !== undefined) {
      const v = isScalar(d.value) ? d.value.value : undefined
      const problem = callerValueProblem(
        { type, enum: enumValues, minimum, maximum },
        v === undefined || v === null ? undefined : v,
      )
      if (problem !== null) r.at(r.offsetOf(d.value, d.keyOffset), `${label(d.path)}${problem}`)
      else def = v as string | number | boolean
    }
    out.push({
      name: s.key,
      type,
      enum: enumValues,
      minimum,
      maximum,
      default: def,
      description: r.string(m.get('description')) ?? '',
      ...r.located(s.keyOffset),
    })
  }
  return out
}

/**
 * `intents:` is a list of labels, compared with a caller's `intent` exactly (no case folding): any non-empty string
 * of at most 200 characters without surrounding blanks (model labels such as `Refund_not_showing_up` exist).
 */
function readIntentLabels(r: Reader, e: Entry | undefined): IntentLabel[] | null {
  if (e === undefined) return null
  const out: IntentLabel[] = []
  const seen = new Map<string, number>()
  for (const it of r.items(e.value, e.path, e.keyOffset)) {
    const v = isScalar(it.node) ? it.node.value : undefined
    if (typeof v !== 'string' || v === '' || v !== v.trim() || v.length > 200) {
      r.at(
        it.offset,
        `${label(it.path)}expected an intent label (a non-empty string of at most 200 characters, no surrounding blanks), found ${describe(it.node)}`,
      )
      continue
    }
    const first = seen.get(v)
    if (first !== undefined) {
      const [line, column] = r.pos(first)
      r.at(it.offset, `${label(it.path)}duplicate intent label '${v}', first declared at line ${line}:${column}`)
      continue
    }
    seen.set(v, it.offset)
    out.push({ name: v, ...r.located(it.offset) })
  }
  return out
}

/** The value of an undeclared default: the first enum value, else '' / false / the number in range nearest 0. */
function implicitDefault(
  type: CallerSignalType,
  enumValues: readonly (string | number)[] | null,
  minimum: number | null,
  maximum: number | null,
): string | number | boolean {
  if (enumValues !== null && enumValues.length > 0) return enumValues[0]!
  if (type === 'string') return ''
  if (type === 'boolean') return false
  let v = 0
  if (minimum !== null && v < minimum) v = type === 'integer' ? Math.ceil(minimum) : minimum
  if (maximum !== null && v > maximum) v = type === 'integer' ? Math.floor(maximum) : maximum
  return v
}

/** Built-in signals a caller may set; every other caller signal must be declared under `signals:`. */
export const BUILTIN_CALLER_SIGNALS: readonly string[] = ['intent', 'intent_confidence', 'agent_confidence']

/** null when `v` fits the declaration, else what was expected and found. */
export function callerValueProblem(
  s: Pick<CallerSignal, 'type' | 'enum' | 'minimum' | 'maximum'>,
  v: unknown,
): string | null {
  const found =
    v === undefined || v === null
      ? 'nothing'
      : typeof v === 'string'
        ? `'${v.length > 40 ? `${v.slice(0, 40)}…` : v}'`
        : typeof v === 'number' || typeof v === 'boolean'
          ? String(v)
          : Array.isArray(v)
            ? 'a list'
            : `a ${typeof v}`
  switch (s.type) {
    case 'string':
      if (typeof v !== 'string') return `expected a string, found ${found}`
      if (v.length > 200) return `expected at most 200 characters, found ${v.length}`
      break
    case 'boolean':
      if (typeof v !== 'boolean') return `expected a boolean, found ${found}`
      break
    case 'number':
    case 'integer':
      if (typeof v !== 'number' || !Number.isFinite(v)) return `expected a number, found ${found}`
      if (s.type === 'integer' && !Number.isInteger(v)) return `expected an integer, found ${found}`
      if (s.minimum !== null && v < s.minimum) return `expected at least ${s.minimum}, found ${found}`
      if (s.maximum !== null && v > s.maximum) return `expected at most ${s.maximum}, found ${found}`
      break
  }
  if (s.enum !== null && !s.enum.includes(v as string | number)) {
    return `expected one of ${s.enum.map((x) => (typeof x === 'string' ? `'${x}'` : String(x))).join(', ')}, found ${found}`
  }
  return null
}

function identifier(r: Reader, name: string, offset: number, what: string): boolean {
  if (!IDENTIFIER.test(name) || CEL_RESERVED.has(name)) {
    r.at(offset, `expected ${what} in lowercase letters, digits and '_' (not a CEL keyword), found '${name}'`)
    return false
  }
  return true
}

function readTerms(r: Reader, e: Entry | undefined): Record<RiskCategory, readonly string[]> {
  const out = {} as Record<RiskCategory, readonly string[]>
  for (const c of RISK_CATEGORIES) out[c] = []
  if (e === undefined) return out
  for (const t of r.entries(e.value, e.path, e.keyOffset)) {
    if (!(RISK_CATEGORIES as readonly string[]).includes(t.key)) {
      r.at(
        t.keyOffset,
        `${label(e.path)}unknown risk category '${t.key}', expected one of: ${RISK_CATEGORIES.join(', ')} (declare your own categories under topics:)`,
        didYouMean(t.key, RISK_CATEGORIES),
      )
      continue
    }
    out[t.key as RiskCategory] = r.strings(t) ?? []
  }
  return out
}

function readTopics(r: Reader, e: Entry | undefined): Topic[] {
  if (e === undefined) return []
  const out: Topic[] = []
  for (const t of r.entries(e.value, e.path, e.keyOffset)) {
    if (!identifier(r, t.key, t.keyOffset, 'a topic name')) continue
    const phrases = r.strings(t)
    if (phrases === undefined) continue
    if (phrases.length === 0) r.at(t.keyOffset, `${label(t.path)}expected at least one phrase, found an empty list`)
    out.push({ name: t.key, phrases, ...r.located(t.keyOffset) })
  }
  return out
}

function readRuleId(r: Reader, e: Entry | undefined, ids: Map<string, number>): string | undefined {
  const id = r.string(e, { pattern: RULE_ID, patternText: 'a rule id in lowercase letters, digits, - _ .' })
  if (id === undefined || e === undefined) return undefined
  const offset = r.offsetOf(e.value, e.keyOffset)
  if ((RESERVED_RULE_IDS as readonly string[]).includes(id)) {
    r.at(offset, `${label(e.path)}'${id}' is reserved for Baton's own decisions; choose another id`)
    return undefined
  }
  const first = ids.get(id)
  if (first !== undefined) {
    const [line, column] = r.pos(first)
    r.at(offset, `${label(e.path)}duplicate rule id '${id}', first used at line ${line}:${column}`)
    return undefined
  }
  ids.set(id, offset)
  return id
}

function readTrigger(r: Reader, e: Entry | undefined, declared: ReadonlySet<string> | null): string {
  const name =
    r.string(e, { pattern: IDENTIFIER, patternText: 'a trigger name in lowercase letters, digits and _' }) ?? ''
  if (e !== undefined && name !== '' && declared !== null && !declared.has(name)) {
    r.at(
      r.offsetOf(e.value, e.keyOffset),
      `${label(e.path)}unknown trigger '${name}', expected one declared under routing.triggers: ${[...declared].join(', ')}`,
      didYouMean(name, declared),
    )
  }
  return name
}

function readReason(r: Reader, e: Entry | undefined): string {
  return r.string(e) ?? ''
}

function readHandler(r: Reader, m: Map<string, Entry>, path: string, at: number): Handler | null {
  const target = readTarget(r, m, path, at, false)
  return target === null || target.kind === 'current' ? null : target
}

function readTarget(
  r: Reader,
  m: Map<string, Entry>,
  path: string,
  at: number,
  currentAllowed: boolean,
): RouteTarget | null {
  const kind = r.string(m.get('handler'), { oneOf: currentAllowed ? ROUTE_KINDS : HANDLER_KINDS }) as
    | HandlerKind
    | 'current'
    | undefined
  const agentE = m.get('agent')
  const queueE = m.get('queue')
  const agent = r.string(agentE, { pattern: NAME, patternText: 'an agent id' })
  const queue = r.string(queueE, { pattern: NAME, patternText: 'a queue name' })
  if (kind === undefined) return null
  if (kind === 'current') {
    for (const e of [agentE, queueE]) {
      if (e !== undefined) {
        r.at(e.keyOffset, `${label(path)}expected no '${e.key}' for handler current (the case stays where it is)`)
      }
    }
    return CURRENT
  }
  const needAgent = kind === 'agent' || kind === 'hybrid'
  const needQueue = kind === 'operator' || kind === 'hybrid'
  if (needAgent && agentE === undefined) r.at(at, `${label(path)}missing required key 'agent' for handler ${kind}`)
  if (needQueue && queueE === undefined) r.at(at, `${label(path)}missing required key 'queue' for handler ${kind}`)
  if (!needAgent && agentE !== undefined) {
    r.at(
      agentE.keyOffset,
      `${label(path)}expected no 'agent' for handler ${kind} (use handler: hybrid for an operator with an AI drafting)`,
    )
  }
  if (!needQueue && queueE !== undefined) {
    r.at(queueE.keyOffset, `${label(path)}expected no 'queue' for handler ${kind} (an agent holds the case itself)`)
  }
  if (agent !== undefined && agentE !== undefined && needAgent) {
    r.references.push({ kind: 'agent', name: agent, ...r.located(r.offsetOf(agentE.value, agentE.keyOffset)) })
  }
  if (queue !== undefined && queueE !== undefined && needQueue) {
    r.references.push({ kind: 'queue', name: queue, ...r.located(r.offsetOf(queueE.value, queueE.keyOffset)) })
  }
  switch (kind) {
    case 'agent':
      return agent === undefined ? null : Object.freeze({ kind, agentId: agent })
    case 'operator':
      return queue === undefined ? null : Object.freeze({ kind, queue })
    case 'hybrid':
      return agent === undefined || queue === undefined ? null : Object.freeze({ kind, queue, agentId: agent })
  }
}

const CURRENT: RouteTarget = Object.freeze({ kind: 'current' })

function readRouting(r: Reader, e: Entry | undefined, ids: Map<string, number>): PolicyDocument['routing'] | null {
  if (e === undefined) return null
  const m = r.fields(
    e.value,
    e.path,
    { default: true, max_handoffs: false, fallback_queue: false, triggers: false, overrides: false, rules: false },
    e.keyOffset,
  )
  if (m === null) return null
  const triggers = readTriggers(r, m.get('triggers'))
  const declared =
    m.get('triggers') === undefined ? null : new Set<string>([...BUILTIN_TRIGGERS, ...triggers.map((t) => t.name)])
  let def: (RoutingRule & { readonly handler: Handler }) | null = null
  const d = m.get('default')
  if (d !== undefined) {
    const dm = r.fields(
      d.value,
      d.path,
      { handler: true, agent: false, queue: false, trigger: false, reason: false },
      d.keyOffset,
    )
    if (dm !== null) {
      const at = r.offsetOf(d.value, d.keyOffset)
      const handler = readHandler(r, dm, d.path, at)
      const trigger = readTrigger(r, dm.get('trigger'), declared)
      const reason = readReason(r, dm.get('reason'))
      if (handler !== null) {
        def = { id: 'default', when: null, handler, trigger, reason, override: false, ...r.located(d.keyOffset) }
      }
    }
  }
  const maxHandoffs = r.number(m.get('max_handoffs'), { integer: true, min: 1 }) ?? DEFAULT_MAX_HANDOFFS
  const fqE = m.get('fallback_queue')
  let fallbackQueue = r.string(fqE, { pattern: NAME, patternText: 'a queue name' }) ?? ''
  if (fqE !== undefined && fallbackQueue !== '') {
    r.references.push({ kind: 'queue', name: fallbackQueue, ...r.located(r.offsetOf(fqE.value, fqE.keyOffset)) })
  }
  if (fqE === undefined && def !== null) {
    if (def.handler.kind === 'agent') {
      r.at(
        e.keyOffset,
        `${label(e.path)}missing required key 'fallback_queue' (the default route names no queue for a human)`,
      )
    } else fallbackQueue = def.handler.queue
  }
  const overrides = readRoutingRules(r, m.get('overrides'), ids, true, declared)
  const rules = readRoutingRules(r, m.get('rules'), ids, false, declared)
  if (def === null) return null
  return { default: def, maxHandoffs, fallbackQueue, triggers, overrides, rules }
}

function readTriggers(r: Reader, e: Entry | undefined): EscalationTrigger[] {
  if (e === undefined) return []
  const out: EscalationTrigger[] = []
  for (const t of r.entries(e.value, e.path, e.keyOffset)) {
    if (!IDENTIFIER.test(t.key)) {
      r.at(t.keyOffset, `${label(e.path)}expected a trigger name in lowercase letters, digits and _, found '${t.key}'`)
      continue
    }
    if ((BUILTIN_TRIGGERS as readonly string[]).includes(t.key)) {
      r.at(t.keyOffset, `${label(e.path)}'${t.key}' is a built-in trigger and cannot be redeclared`)
      continue
    }
    out.push({ name: t.key, description: r.string(t) ?? '', ...r.located(t.keyOffset) })
  }
  return out
}

function readRoutingRules(
  r: Reader,
  e: Entry | undefined,
  ids: Map<string, number>,
  override: boolean,
  declared: ReadonlySet<string> | null,
): RoutingRule[] {
  if (e === undefined) return []
  const out: RoutingRule[] = []
  for (const it of r.items(e.value, e.path, e.keyOffset)) {
    const m = r.fields(
      it.node,
      it.path,
      { id: true, when: false, route: true, trigger: false, reason: false },
      it.offset,
    )
    if (m === null) continue
    const id = readRuleId(r, m.get('id'), ids)
    const when = r.condition(m.get('when'))
    const routeE = m.get('route')
    let handler: RouteTarget | null = null
    if (routeE !== undefined) {
      const rm = r.fields(routeE.value, routeE.path, { handler: true, agent: false, queue: false }, routeE.keyOffset)
      if (rm !== null) handler = readTarget(r, rm, routeE.path, r.offsetOf(routeE.value, routeE.keyOffset), true)
    }
    const trigger = readTrigger(r, m.get('trigger'), declared)
    const reason = readReason(r, m.get('reason'))
    if (id === undefined || handler === null) continue
    out.push({ id, when, handler, trigger, reason, override, ...r.located(it.offset) })
  }
  return out
}

function readTools(r: Reader, e: Entry | undefined, ids: Map<string, number>): PolicyDocument['tools'] {
  if (e === undefined) return { overrides: [], rules: [] }
  const m = r.fields(e.value, e.path, { overrides: false, rules: false }, e.keyOffset)
  if (m === null) return { overrides: [], rules: [] }
  return {
    overrides: readToolRules(r, m.get('overrides'), ids, true),
    rules: readToolRules(r, m.get('rules'), ids, false),
  }
}

function readToolRules(r: Reader, e: Entry | undefined, ids: Map<string, number>, override: boolean): ToolRule[] {
  if (e === undefined) return []
  const out: ToolRule[] = []
  for (const it of r.items(e.value, e.path, e.keyOffset)) {
    const m = r.fields(
      it.node,
      it.path,
      { id: true, tool: true, when: false, outcome: true, approver_role: false, queue: false, reason: false },
      it.offset,
    )
    if (m === null) continue
    const id = readRuleId(r, m.get('id'), ids)
    const tools = readToolNames(r, m.get('tool'))
    const when = r.condition(m.get('when'))
    const outcome = r.string(m.get('outcome'), { oneOf: override ? OVERRIDE_OUTCOMES : OUTCOMES }) as
      | ActionOutcome
      | undefined
    const roleE = m.get('approver_role')
    const approverRole = r.string(roleE, { pattern: NAME, patternText: 'a role name' }) ?? ''
    if (outcome === 'approve' && roleE === undefined) {
      r.at(it.offset, `${label(it.path)}missing required key 'approver_role' for outcome approve`)
    }
    if (outcome !== undefined && outcome !== 'approve' && roleE !== undefined) {
      r.at(roleE.keyOffset, `${label(it.path)}expected no 'approver_role' for outcome ${outcome}`)
    }
    const queueE = m.get('queue')
    const queue = r.string(queueE, { pattern: NAME, patternText: 'a queue name' }) ?? ''
    if (queueE !== undefined && outcome !== undefined && outcome !== 'escalate' && outcome !== 'approve') {
      r.at(queueE.keyOffset, `${label(it.path)}expected no 'queue' for outcome ${outcome}`)
    }
    if (queueE !== undefined && queue !== '') {
      r.references.push({ kind: 'queue', name: queue, ...r.located(r.offsetOf(queueE.value, queueE.keyOffset)) })
    }
    const reason = readReason(r, m.get('reason'))
    if (id === undefined || tools === undefined || outcome === undefined) continue
    out.push({ id, tools, when, outcome, approverRole, queue, reason, override, ...r.located(it.offset) })
  }
  return out
}

function readToolNames(r: Reader, e: Entry | undefined): string[] | undefined {
  if (e === undefined) return undefined
  const one = (node: Node | null, path: string, offset: number): string | undefined => {
    if (!isScalar(node) || typeof node.value !== 'string' || !(node.value === '*' || NAME.test(node.value))) {
      r.at(offset, `${label(path)}expected a tool name or '*', found ${describe(node)}`)
      return undefined
    }
    if (node.value !== '*') r.references.push({ kind: 'tool', name: node.value, ...r.located(offset) })
    return node.value
  }
  if (isSeq(e.value)) {
    const names = r.items(e.value, e.path, e.keyOffset).map((it) => one(it.node, it.path, it.offset))
    if (names.length === 0) {
      r.at(r.offsetOf(e.value, e.keyOffset), `${label(e.path)}expected at least one tool name, found an empty list`)
      return undefined
    }
    if (names.some((n) => n === undefined)) return undefined
    if (names.includes('*')) {
      r.at(r.offsetOf(e.value, e.keyOffset), `${label(e.path)}expected '*' alone, found it in a list`)
      return undefined
    }
    return names as string[]
  }
  const n = one(e.value, e.path, r.offsetOf(e.value, e.keyOffset))
  return n === undefined ? undefined : [n]
}

// ---- tests ----

const EXPECT_KEYS = ['handler', 'queue', 'agent', 'outcome', 'rule', 'approver_role', 'trigger'] as const

function readTests(
  r: Reader,
  node: Node | null,
  path: string,
  shape: ObjectShape,
  looseNames: boolean,
): PolicyTestCase[] {
  const out: PolicyTestCase[] = []
  const names = new Map<string, number>()
  for (const it of r.items(node, path, 0)) {
    const m = r.fields(it.node, it.path, { name: true, given: false, expect: true }, it.offset)
    if (m === null) continue
    const nameE = m.get('name')
    const name = r.string(nameE)
    if (name !== undefined && nameE !== undefined) {
      const first = names.get(name)
      if (first !== undefined) {
        const [line] = r.pos(first)
        r.at(nameE.keyOffset, `${label(nameE.path)}duplicate test name '${name}', first used at line ${line}`)
      } else names.set(name, nameE.keyOffset)
    }
    const givenE = m.get('given')
    let given: Record<string, unknown> = {}
    if (givenE !== undefined && givenE.value !== null) {
      if (checkGiven(r, givenE.value, givenE.path, shape, looseNames, givenE.keyOffset)) {
        given = r.toJS(givenE.value) as Record<string, unknown>
      }
    }
    const kind: 'route' | 'action' = typeof given['tool'] === 'string' && given['tool'] !== '' ? 'action' : 'route'
    const expE = m.get('expect')
    let expect: TestExpectation | null = null
    if (expE !== undefined) {
      const spec: Record<string, boolean> = {}
      for (const k of EXPECT_KEYS) spec[k] = false
      const em = r.fields(expE.value, expE.path, spec, expE.keyOffset)
      if (em !== null) {
        if (em.size === 0)
          r.at(r.offsetOf(expE.value, expE.keyOffset), `${label(expE.path)}expected at least one expectation`)
        const x: Record<string, string> = {}
        for (const [k, v] of em) {
          const oneOf =
            k === 'handler'
              ? HANDLER_KINDS
              : k === 'outcome'
                ? kind === 'action'
                  ? OUTCOMES
                  : HANDLER_KINDS
                : undefined
          const s = r.string(v, oneOf === undefined ? {} : { oneOf })
          if (s !== undefined) x[k] = s
        }
        if (kind === 'action') {
          for (const k of ['handler', 'agent', 'trigger'] as const) {
            const v = em.get(k)
            if (v !== undefined)
              r.at(v.keyOffset, `${label(v.path)}expected no '${k}' in a tool test (given.tool is set)`)
          }
        } else {
          const v = em.get('approver_role')
          if (v !== undefined)
            r.at(
              v.keyOffset,
              `${label(v.path)}expected no 'approver_role' in a routing test (set given.tool for a tool test)`,
            )
        }
        expect = x as TestExpectation
      }
    }
    if (name === undefined || expect === null) continue
    out.push({ file: r.file, name, kind, given, expect, ...r.located(it.offset) })
  }
  return out
}

/** Checks partial facts against the facts shape; true when usable. */
function checkGiven(r: Reader, node: Node, path: string, shape: Shape, looseNames: boolean, at: number): boolean {
  const offset = r.offsetOf(node, at)
  if (typeof shape === 'string') {
    const v = isScalar(node) ? node.value : undefined
    let ok: boolean
    switch (shape) {
      case 'string':
        ok = typeof v === 'string'
        break
      case 'number':
        ok = typeof v === 'number' && Number.isFinite(v)
        break
      case 'boolean':
        ok = typeof v === 'boolean'
        break
      case 'list<string>':
        ok = isSeq(node) && node.items.every((i) => isScalar(i) && typeof i.value === 'string')
        break
      case 'dyn':
        ok = true
        break
    }
    if (!ok) {
      r.at(
        offset,
        `${label(path)}expected ${shape === 'list<string>' ? 'a list of strings' : `a ${shape}`}, found ${describe(node)}`,
      )
    }
    return ok
  }
  if (!isMap(node)) {
    r.at(offset, `${label(path)}expected a mapping, found ${describe(node)}`)
    return false
  }
  let ok = true
  for (const pair of node.items) {
    const keyNode = pair.key as Node | null
    const keyOffset = r.offsetOf(keyNode, offset)
    if (!isScalar(keyNode) || typeof keyNode.value !== 'string') {
      r.at(keyOffset, `${label(path)}expected a field name, found ${describe(keyNode)}`)
      ok = false
      continue
    }
    const key = keyNode.value
    let child: Shape | undefined
    if (isObjectShape(shape)) {
      child = shape.fields[key]
      const loose = looseNames && (path.endsWith('signals.topics') || path.endsWith('signals.custom'))
      if (child === undefined && loose) child = 'dyn'
      if (child === undefined) {
        const names = Object.keys(shape.fields)
        const what = path.endsWith('.topics') ? 'topic' : path.endsWith('.custom') ? 'custom signal' : 'field'
        r.at(
          keyOffset,
          `${label(path)}unknown ${what} '${key}'${names.length > 0 ? `, expected one of: ${names.join(', ')}` : ''}`,
          didYouMean(key, names),
        )
        ok = false
        continue
      }
    } else if (isMapShape(shape)) child = shape.values
    const value = r.resolve(pair.value as Node | null)
    if (child === undefined) continue
    if (value === null) {
      r.at(keyOffset, `${label(`${path}.${key}`)}expected a value, found nothing`)
      ok = false
      continue
    }
    if (!checkGiven(r, value, `${path}.${key}`, child, looseNames, keyOffset)) ok = false
  }
  return ok
}

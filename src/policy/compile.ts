import { createHash } from 'node:crypto'
import type { Handler } from '../cases/case.js'
import type { FieldProblem } from '../errors.js'
import { UNKNOWN_INTENT } from '../intents/model.js'
import type { RiskCategory } from '../signals/types.js'
import { type CelEnvironments, type CelProgram, compileCel, createCelEnvironments, isCelProblem } from './cel.js'
import {
  BUILTIN_CALLER_SIGNALS,
  BUILTIN_TRIGGERS,
  type CallerSignal,
  type Condition,
  callerValueProblem,
  conditionPosition,
  type Diagnostic,
  type PolicyDocument,
  policyInvalid,
  type RouteTarget,
  type RoutingRule,
  readPolicy,
  type ToolRule,
} from './document.js'
import { factsShape } from './facts-shape.js'
import { didYouMean } from './suggest.js'
import type { ActionOutcome, PolicyRef } from './types.js'

/** Names that exist in the workspace; a policy may refer to no other agent, queue or tool. */
export interface KnownNames {
  readonly agents: readonly string[]
  readonly queues: readonly string[]
  readonly tools: readonly string[]
  /**
   * The labels of the workspace's intent model (`intents.model.json`); `[]` when the workspace has none, absent
   * when the workspace is not known (a lone policy file): then a caller's intent is not checked.
   */
  readonly intents?: readonly string[] | undefined
  /**
   * The workspace's intent classes (`intent-classes.json`), read as `signals.intent_class.<class>`; `[]` when it has
   * no map, absent when the workspace is not known (any class name compiles).
   */
  readonly intentClasses?: readonly string[] | undefined
}

export interface CompiledCondition {
  readonly text: string
  readonly line: number
  readonly column: number
  /** Dotted fact paths the condition reads, for explanations: `signals.intent`, `params.amount`. */
  readonly reads: readonly string[]
  /** `reads`, split on dots. */
  readonly readSegments: readonly (readonly string[])[]
  /** Set when the condition reads no variable: its value, or the error evaluating it. */
  readonly constant: { readonly value: unknown } | { readonly error: string } | null
  readonly program: CelProgram
}

export interface CompiledRoutingRule {
  readonly id: string
  readonly reason: string
  readonly trigger: string
  /** A handler, or `current` (resolved against the case facts when the rule decides). */
  readonly handler: RouteTarget
  readonly override: boolean
  readonly line: number
  readonly column: number
  /** null: always matches. */
  readonly condition: CompiledCondition | null
  /** Whether a condition that fails to evaluate counts as a match (overrides that hand the case to a human). */
  readonly failClosed: boolean
}

export interface CompiledToolRule {
  readonly id: string
  readonly reason: string
  /** `['*']` for every tool. */
  readonly tools: readonly string[]
  readonly outcome: ActionOutcome
  readonly approverRole: string
  readonly queue: string
  readonly override: boolean
  readonly line: number
  readonly column: number
  readonly condition: CompiledCondition | null
  /** Whether a condition that fails to evaluate counts as a match (overrides, and deny/escalate rules). */
  readonly failClosed: boolean
}

/** A policy ready to decide: every condition parsed and type-checked once. */
export interface CompiledPolicy {
  readonly ref: PolicyRef
  readonly owner: string
  readonly doc: PolicyDocument
  readonly known: KnownNames
  /** Caller-provided signals the policy declares (`signals.custom.<name>`), for intake validation. */
  readonly callerSignals: readonly CallerSignal[]
  /**
   * Every intent label a caller may send as `signals.intent`: the workspace model's labels, the policy's `intents:`
   * and `unknown`, compared exactly. null when the workspace is not known (`KnownNames.intents` absent: a lone
   * policy file), as then the model's labels are not: intents are not checked.
   */
  readonly intentLabels: ReadonlySet<string> | null
  /** Extra terms per built-in risk category, for the signal detectors. */
  readonly terms: Readonly<Record<RiskCategory, readonly string[]>>
  /** Topic name → phrases, for the signal detectors. */
  readonly topics: Readonly<Record<string, readonly string[]>>
  readonly routing: {
    /** Overrides, then rules, in evaluation order. */
    readonly sequence: readonly CompiledRoutingRule[]
    readonly default: CompiledRoutingRule & { readonly handler: Handler }
    readonly maxHandoffs: number
    readonly fallbackQueue: string
    /** Every trigger a decision of this policy may name: the built-in ones and those declared. */
    readonly triggers: readonly string[]
    /** The agents a route (rule or default) names, in order of first appearance. */
    readonly agents: readonly string[]
    /** Whether any routing condition reads `queue` (queue statistics cost a query; most policies never read them). */
    readonly readsQueues: boolean
  }
  readonly tools: {
    /** Overrides, then rules, in evaluation order. */
    readonly sequence: readonly CompiledToolRule[]
    /** The sequence filtered for each tool a rule names; `anyTool` for other tools. */
    readonly byTool: ReadonlyMap<string, readonly CompiledToolRule[]>
    readonly anyTool: readonly CompiledToolRule[]
    /** Whether any tool condition reads `queue`. */
    readonly readsQueues: boolean
  }
}

function readsQueues(rules: readonly { readonly condition: CompiledCondition | null }[]): boolean {
  return rules.some((r) => r.condition?.reads.some((p) => p === 'queue' || p.startsWith('queue.')) === true)
}

export interface PolicyAnalysis {
  /** null when there are errors. */
  readonly policy: CompiledPolicy | null
  readonly errors: readonly Diagnostic[]
  readonly warnings: readonly Diagnostic[]
}

/**
 * Parse and compile a policy. `hash` is the sha256 of the source bytes.
 * @throws BatonError POLICY_INVALID listing every error, each with file, line and column.
 */
export function compilePolicy(source: string, file: string, known: KnownNames): CompiledPolicy {
  const a = analyzePolicy(source, file, known)
  if (a.policy === null) throw policyInvalid(a.errors)
  return a.policy
}

/** Everything known about a policy source: the compiled policy when valid, errors and warnings. */
export function analyzePolicy(source: string, file: string, known: KnownNames): PolicyAnalysis {
  const reading = readPolicy(source, file)
  const { doc, errors } = reading
  const warnings: Diagnostic[] = []
  const envs = createCelEnvironments(
    factsShape({
      topics: reading.topics.map((t) => t.name),
      custom: reading.signals,
      queues: known.queues.length > 0 ? known.queues : null,
      agents: known.agents.length > 0 ? known.agents : null,
      intentClasses: known.intentClasses ?? null,
    }),
  )
  let policy: CompiledPolicy | null = null
  const compiled = new Set<Condition>()
  if (doc !== null) policy = new Analysis(doc, file, known, envs, compiled, errors, warnings).compile(source)
  // conditions of rules dropped for other errors are still checked, so that one run shows every error
  for (const { condition } of reading.conditions) {
    if (compiled.has(condition)) continue
    const r = compileCel(envs, condition.text)
    if (isCelProblem(r)) errors.push(diagnostic(file, conditionPosition(condition, r.index), r.message, r.hint))
  }
  return {
    policy: errors.length > 0 ? null : policy,
    errors: sortDiagnostics(errors),
    warnings: sortDiagnostics(warnings),
  }
}

function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  return ds.sort((a, b) => a.line - b.line || a.column - b.column)
}

class Analysis {
  readonly #readPaths = new Set<string>()
  /** Ids of rules whose condition did not compile: neither always nor never. */
  readonly #broken = new Set<string>()

  constructor(
    readonly doc: PolicyDocument,
    readonly file: string,
    readonly known: KnownNames,
    readonly envs: CelEnvironments,
    readonly compiled: Set<Condition>,
    readonly errors: Diagnostic[],
    readonly warnings: Diagnostic[],
  ) {}

  error(at: { line: number; column: number }, message: string, hint?: string): void {
    this.errors.push(diagnostic(this.file, at, message, hint))
  }

  warn(at: { line: number; column: number }, message: string, hint?: string): void {
    this.warnings.push(diagnostic(this.file, at, message, hint))
  }

  compile(source: string): CompiledPolicy {
    const { doc } = this
    this.checkReferences()
    const routingRules = [...doc.routing.overrides, ...doc.routing.rules].map((r) => this.routingRule(r))
    const toolRules = [...doc.tools.overrides, ...doc.tools.rules].map((r) => this.toolRule(r))
    const def = { ...this.routingRule(doc.routing.default), handler: doc.routing.default.handler }
    this.checkRoutingReachability(routingRules, def)
    this.checkToolReachability(toolRules)
    this.checkUnused()

    const byTool = new Map<string, CompiledToolRule[]>()
    const named = new Set<string>()
    for (const r of toolRules) for (const t of r.tools) if (t !== '*') named.add(t)
    for (const t of named)
      byTool.set(
        t,
        toolRules.filter((r) => r.tools.includes('*') || r.tools.includes(t)),
      )
    const topics: Record<string, readonly string[]> = {}
    for (const t of doc.topics) topics[t.name] = t.phrases

    return deepFreeze({
      ref: {
        name: doc.metadata.name,
        version: doc.metadata.version,
        hash: createHash('sha256').update(source, 'utf8').digest('hex'),
      },
      owner: doc.metadata.owner,
      doc,
      known: {
        agents: [...this.known.agents],
        queues: [...this.known.queues],
        tools: [...this.known.tools],
        ...(this.known.intentClasses === undefined ? {} : { intentClasses: [...this.known.intentClasses] }),
      },
      callerSignals: doc.signals,
      intentLabels: this.intentLabels(),
      terms: doc.terms,
      topics,
      routing: {
        sequence: routingRules,
        default: def,
        maxHandoffs: doc.routing.maxHandoffs,
        fallbackQueue: doc.routing.fallbackQueue,
        triggers: [...BUILTIN_TRIGGERS, ...doc.routing.triggers.map((t) => t.name)],
        agents: [
          ...new Set(
            [...routingRules, def].flatMap((r) =>
              r.handler.kind === 'agent' || r.handler.kind === 'hybrid' ? [r.handler.agentId] : [],
            ),
          ),
        ],
        readsQueues: readsQueues(routingRules),
      },
      tools: {
        sequence: toolRules,
        byTool,
        anyTool: toolRules.filter((r) => r.tools.includes('*')),
        readsQueues: readsQueues(toolRules),
      },
    })
  }

  intentLabels(): ReadonlySet<string> | null {
    const model = this.known.intents
    const declared = this.doc.intents
    // without the workspace the model's labels are unknown, and the declared ones are not the whole set
    if (model === undefined) return null
    const labels = new Set<string>(model)
    for (const d of declared ?? []) {
      if (labels.has(d.name)) this.warn(d, `intent '${d.name}' is already a label of the workspace's intent model`)
      labels.add(d.name)
    }
    labels.add(UNKNOWN_INTENT)
    return labels
  }

  condition(c: Condition | null, ruleId: string, kind: 'routing' | 'tool'): CompiledCondition | null {
    if (c === null) return null
    this.compiled.add(c)
    const r = compileCel(this.envs, c.text)
    if (isCelProblem(r)) {
      this.error(conditionPosition(c, r.index), r.message, r.hint)
      this.#broken.add(ruleId)
      return null
    }
    for (const p of r.reads) this.#readPaths.add(p)
    if (kind === 'routing' && r.reads.some((p) => p === 'tool' || p === 'params' || p.startsWith('params.'))) {
      this.warn(c, `rule '${ruleId}' reads tool or params, which are empty when routing; the condition will not match`)
    }
    return {
      text: c.text,
      line: c.line,
      column: c.column,
      reads: r.reads,
      readSegments: r.readSegments,
      constant: r.constant,
      program: r.program,
    }
  }

  routingRule(r: RoutingRule): CompiledRoutingRule {
    if (r.reason === '' && r.id !== 'default') {
      this.warn(r, `rule '${r.id}' has no reason; its decisions will not say why`)
    }
    const condition = this.condition(r.when, r.id, 'routing')
    return {
      id: r.id,
      reason: r.reason,
      trigger: r.trigger,
      handler: r.handler,
      override: r.override,
      line: r.line,
      column: r.column,
      condition,
      // `current` may be an AI agent: only an override naming a human fails closed
      failClosed: r.override && (r.handler.kind === 'operator' || r.handler.kind === 'hybrid'),
    }
  }

  toolRule(r: ToolRule): CompiledToolRule {
    if (r.reason === '') this.warn(r, `rule '${r.id}' has no reason; its decisions will not say why`)
    const condition = this.condition(r.when, r.id, 'tool')
    return {
      id: r.id,
      reason: r.reason,
      tools: r.tools,
      outcome: r.outcome,
      approverRole: r.approverRole,
      queue:
        r.queue === '' && (r.outcome === 'escalate' || r.outcome === 'approve')
          ? this.doc.routing.fallbackQueue
          : r.queue,
      override: r.override,
      line: r.line,
      column: r.column,
      condition,
      failClosed: r.override || r.outcome === 'deny' || r.outcome === 'escalate',
    }
  }

  checkReferences(): void {
    const lists = { agent: this.known.agents, queue: this.known.queues, tool: this.known.tools }
    const unchecked = new Set<string>()
    for (const ref of this.doc.references) {
      const names = lists[ref.kind]
      if (names.length === 0) {
        // no workspace at hand (e.g. checking a lone file): say so once rather than refuse every name
        if (!unchecked.has(ref.kind)) this.warn(ref, `no ${ref.kind}s are known; ${ref.kind} names are not checked`)
        unchecked.add(ref.kind)
        continue
      }
      if (names.includes(ref.name)) continue
      this.error(
        ref,
        `unknown ${ref.kind} '${ref.name}', expected one of: ${names.join(', ')}`,
        didYouMean(ref.name, names),
      )
    }
  }

  checkRoutingReachability(rules: readonly CompiledRoutingRule[], def: CompiledRoutingRule): void {
    let shadow: CompiledRoutingRule | undefined
    for (const r of rules) {
      if (shadow !== undefined) {
        this.error(r, `rule '${r.id}' can never match: '${shadow.id}' (line ${shadow.line}) always matches before it`)
        continue
      }
      if (never(r.condition)) this.warn(r.condition ?? r, `rule '${r.id}' never matches: its condition is constant`)
      if (always(r.condition) && !this.#broken.has(r.id)) shadow = r
    }
    if (shadow !== undefined) {
      this.warn(def, `the default route is unreachable: '${shadow.id}' (line ${shadow.line}) always matches`)
    }
  }

  checkToolReachability(rules: readonly CompiledToolRule[]): void {
    const alwaysFor = new Map<string, CompiledToolRule>()
    for (const r of rules) {
      const covering = r.tools.includes('*')
        ? alwaysFor.get('*')
        : r.tools.every((t) => alwaysFor.has(t) || alwaysFor.has('*'))
          ? (alwaysFor.get(r.tools[0]!) ?? alwaysFor.get('*'))
          : undefined
      if (covering !== undefined) {
        this.error(
          r,
          `rule '${r.id}' can never match: '${covering.id}' (line ${covering.line}) always matches the same tool before it`,
        )
        continue
      }
      if (never(r.condition)) this.warn(r.condition ?? r, `rule '${r.id}' never matches: its condition is constant`)
      if (always(r.condition) && !this.#broken.has(r.id))
        for (const t of r.tools) if (!alwaysFor.has(t)) alwaysFor.set(t, r)
    }
  }

  checkUnused(): void {
    const reads = [...this.#readPaths]
    const used = (path: string) => reads.some((p) => p === path || p.startsWith(`${path}.`) || path.startsWith(`${p}.`))
    for (const t of this.doc.topics) {
      if (!used(`signals.topics.${t.name}`)) {
        this.warn(t, `topic '${t.name}' is declared but no condition reads signals.topics.${t.name}`)
      }
    }
    for (const s of this.doc.signals) {
      if (!used(`signals.custom.${s.name}`)) {
        this.warn(s, `signal '${s.name}' is declared but no condition reads signals.custom.${s.name}`)
      }
    }
  }
}

function always(c: CompiledCondition | null): boolean {
  return c === null || (c.constant !== null && 'value' in c.constant && c.constant.value === true)
}

function never(c: CompiledCondition | null): boolean {
  return c !== null && c.constant !== null && !('value' in c.constant && c.constant.value === true)
}

function diagnostic(file: string, at: { line: number; column: number }, message: string, hint?: string): Diagnostic {
  return hint === undefined
    ? { file, line: at.line, column: at.column, message }
    : { file, line: at.line, column: at.column, message, hint }
}

function deepFreeze<T>(x: T): T {
  if (x !== null && typeof x === 'object' && !Object.isFrozen(x) && !(x instanceof Map)) {
    Object.freeze(x)
    for (const v of Object.values(x)) if (typeof v !== 'function') deepFreeze(v)
  }
  return x
}

/**
 * Validate the signals a caller provides with a message (`signals: {...}` in the intake request). Accepts the
 * built-in caller signals (`intent`, `intent_confidence`, `agent_confidence`) and the policy's declared ones.
 * On success, `value` holds the built-ins that were provided and every declared signal, defaulted when absent.
 * Problems name their field `signals.<name>`.
 */
export function validateCallerSignals(
  policy: CompiledPolicy,
  input: unknown,
): { ok: true; value: Record<string, string | number | boolean> } | { ok: false; fields: FieldProblem[] } {
  const fields: FieldProblem[] = []
  const value: Record<string, string | number | boolean> = {}
  if (input === undefined || input === null) input = {}
  if (typeof input !== 'object' || Array.isArray(input)) {
    return {
      ok: false,
      fields: [
        { field: 'signals', message: `expected an object, found ${Array.isArray(input) ? 'a list' : typeof input}` },
      ],
    }
  }
  const declared = new Map(policy.callerSignals.map((s) => [s.name, s]))
  const names = [...BUILTIN_CALLER_SIGNALS, ...declared.keys()]
  for (const [name, v] of Object.entries(input as Record<string, unknown>)) {
    const field = `signals.${name}`
    const spec = declared.get(name) ?? (Object.hasOwn(BUILTIN_SPECS, name) ? BUILTIN_SPECS[name] : undefined)
    if (spec === undefined) {
      const hint = didYouMean(name, names)
      fields.push({
        field,
        message: `unknown signal '${name}', expected one of: ${names.join(', ')}${hint === undefined ? '' : ` (${hint})`}`,
      })
      continue
    }
    const problem = callerValueProblem(spec, v)
    if (problem !== null) fields.push({ field, message: problem })
    else value[name] = v as string | number | boolean
  }
  if (typeof value.intent === 'string') {
    const problem = intentProblem(policy, value.intent)
    if (problem !== null) fields.push({ field: 'signals.intent', message: problem })
  } else if (value.intent_confidence !== undefined && !('intent' in (input as object))) {
    fields.push({
      field: 'signals.intent_confidence',
      message: 'expected signals.intent with it: a confidence is that of an intent the caller sends',
    })
  }
  if (fields.length > 0) return { ok: false, fields }
  for (const s of policy.callerSignals) if (!(s.name in value)) value[s.name] = s.default
  return { ok: true, value }
}

/**
 * Why a caller's intent is refused, or null. An intent must be one of the policy's intent labels, exactly: a label
 * the policy cannot know (a typo, another classifier's name, `Complaint` for `complaint`) would otherwise be read
 * as a confident intent no rule expects, and fall through to whatever a confident intent gets.
 */
export function intentProblem(policy: CompiledPolicy, intent: string): string | null {
  const labels = policy.intentLabels
  if (labels === null || labels.has(intent)) return null
  const shown = intent.length > 40 ? `${intent.slice(0, 40)}…` : intent
  if (labels.size === 1) {
    return `unknown intent '${shown}': this workspace has no intent model (intents.model.json) and its policy declares no intents:, so a caller may send only '${UNKNOWN_INTENT}'`
  }
  const hint = didYouMean(intent, labels)
  return `unknown intent '${shown}', expected a label of the workspace's intent model or of the policy's intents: (${labels.size} labels, compared exactly)${hint === undefined ? '' : `; ${hint}`}`
}

const BUILTIN_SPECS: Readonly<Record<string, Pick<CallerSignal, 'type' | 'enum' | 'minimum' | 'maximum'>>> = {
  intent: { type: 'string', enum: null, minimum: null, maximum: null },
  intent_confidence: { type: 'number', enum: null, minimum: 0, maximum: 1 },
  agent_confidence: { type: 'number', enum: null, minimum: 0, maximum: 1 },
}

import { type ASTNode, Environment, type ParseResult } from '@marcbachmann/cel-js'
import { isMapShape, isObjectShape, type ObjectShape, ROOT_VARIABLES, type Shape } from './facts-shape.js'
import { compileFast, UNSURE } from './fast.js'
import { didYouMean } from './suggest.js'

const ROOT_SET: ReadonlySet<string> = new Set(ROOT_VARIABLES)

/**
 * Two environments over the same variables. `check` types every variable by the facts shape, so that unknown
 * fields and type errors are found when the policy is compiled; `run` declares them `dyn`, so that the facts
 * object itself is the evaluation context (no per-decision conversion), which is sound because every condition
 * has passed `check` first and the facts follow the same shape.
 */
export interface CelEnvironments {
  readonly check: Environment
  readonly run: Environment
  readonly shape: ObjectShape
}

/** A condition compiled to a function of the facts. */
export type CelProgram = (facts: object) => unknown

export interface CompiledCel {
  readonly program: CelProgram
  /** The cel-js evaluation alone, which `program` must always agree with. */
  readonly reference: CelProgram
  /** Whether `program` has a fast path (see fast.ts). */
  readonly fast: boolean
  /** Dotted paths of the facts the condition reads, in order of first appearance. */
  readonly reads: readonly string[]
  /** The same paths as lists of names (a queue name may contain a dot). */
  readonly readSegments: readonly (readonly string[])[]
  /** Set when the condition reads no variable: its value, or the error evaluating it. */
  readonly constant: { readonly value: unknown } | { readonly error: string } | null
}

export interface CelProblem {
  /** Index into the condition text. */
  readonly index: number
  readonly message: string
  readonly hint?: string
}

export function createCelEnvironments(shape: ObjectShape): CelEnvironments {
  const check = new Environment({ homogeneousAggregateLiterals: false })
  const run = new Environment({ homogeneousAggregateLiterals: false })
  for (const name of ROOT_VARIABLES) {
    const s = shape.fields[name]
    if (s === undefined) throw new TypeError(`facts shape lacks '${name}'`)
    if (isObjectShape(s)) check.registerVariable({ name, schema: celSchema(s) })
    else check.registerVariable(name, celType(s))
    run.registerVariable(name, 'dyn')
  }
  for (const env of [check, run]) registerMixedNumbers(env)
  // at run time (dyn) membership already compares numbers by value; the checker needs to be told
  check.registerOperator('double in list<int>', (a: number, list: readonly bigint[]) =>
    list.some((x) => Number(x) === a),
  )
  return { check, run, shape }
}

/** JSON has one number type, so facts are all CEL doubles; integer literals must combine with them. */
function registerMixedNumbers(env: Environment): void {
  env.registerOperator('double == int', (a: number, b: bigint) => a === Number(b))
  env.registerOperator('double + int', (a: number, b: bigint) => a + Number(b))
  env.registerOperator('int + double', (a: bigint, b: number) => Number(a) + b)
  env.registerOperator('double - int', (a: number, b: bigint) => a - Number(b))
  env.registerOperator('int - double', (a: bigint, b: number) => Number(a) - b)
  env.registerOperator('double * int', (a: number, b: bigint) => a * Number(b))
  env.registerOperator('int * double', (a: bigint, b: number) => Number(a) * b)
  env.registerOperator('double / int', (a: number, b: bigint) => a / Number(b))
  env.registerOperator('int / double', (a: bigint, b: number) => Number(a) / b)
}

function celType(s: Shape): string {
  if (typeof s === 'string') {
    switch (s) {
      case 'string':
        return 'string'
      case 'number':
        return 'double'
      case 'boolean':
        return 'bool'
      case 'list<string>':
        return 'list<string>'
      case 'dyn':
        return 'dyn'
    }
  }
  if (isMapShape(s)) {
    if (isObjectShape(s.values)) return 'map<string, map<string, dyn>>'
    return `map<string, ${celType(s.values)}>`
  }
  return 'map<string, dyn>'
}

type Schema = { [field: string]: string | Schema }

function celSchema(s: ObjectShape): Schema {
  const out: Schema = {}
  for (const [k, v] of Object.entries(s.fields)) out[k] = isObjectShape(v) ? celSchema(v) : celType(v)
  return out
}

/** Parse, type-check and compile one condition; a problem says where in the text and what was expected. */
export function compileCel(envs: CelEnvironments, text: string): CompiledCel | CelProblem {
  let typed: ParseResult
  try {
    typed = envs.check.parse(text)
  } catch (e) {
    return { index: errorIndex(e), message: `invalid CEL expression: ${errorSummary(e)}` }
  }
  const result = typed.check()
  if (!result.valid) {
    const refined = findUnknownPath(typed.ast, envs.shape)
    if (refined !== null) return refined
    return { index: errorIndex(result.error), message: typeErrorMessage(errorSummary(result.error)) }
  }
  if (result.type !== 'bool' && result.type !== 'dyn') {
    return { index: firstNonBlank(text), message: `expected a condition of type bool, found type ${result.type}` }
  }
  const runnable = envs.run.parse(text)
  const runCheck = runnable.check()
  if (!runCheck.valid) {
    return { index: errorIndex(runCheck.error), message: `CEL type error: ${errorSummary(runCheck.error)}` }
  }
  const readSegments = collectReads(typed.ast)
  const reads = readSegments.map((p) => p.join('.'))
  const reference = runnable as CelProgram
  const fast = compileFast(typed.ast, ROOT_SET)
  const program: CelProgram =
    fast === null
      ? reference
      : (facts) => {
          try {
            return fast(facts)
          } catch (e) {
            if (e === UNSURE) return reference(facts)
            throw e
          }
        }
  let constant: CompiledCel['constant'] = null
  if (reads.length === 0) {
    try {
      constant = { value: program({}) }
    } catch (e) {
      constant = { error: errorSummary(e) }
    }
  }
  return { program, reference, fast: fast !== null, reads, readSegments, constant }
}

export function isCelProblem(x: CompiledCel | CelProblem): x is CelProblem {
  return 'message' in x
}

function typeErrorMessage(summary: string): string {
  const m = /^no such overload: (\S+) (\S+) (\S+)$/.exec(summary)
  if (m !== null) {
    return `CEL type error: '${m[2]}' is not defined for ${m[1]} and ${m[3]}; expected operands of matching types`
  }
  return `CEL type error: ${summary}`
}

function firstNonBlank(text: string): number {
  const i = text.search(/\S/)
  return Math.max(i, 0)
}

function errorIndex(e: unknown): number {
  const r = (e as { range?: { start?: unknown } } | undefined)?.range
  return typeof r?.start === 'number' ? r.start : 0
}

/** The one-line summary of a cel-js error (its `message` adds a source excerpt). */
export function errorSummary(e: unknown): string {
  if (e !== null && typeof e === 'object') {
    const s = (e as { summary?: unknown }).summary
    if (typeof s === 'string') return s
    const m = (e as { message?: unknown }).message
    if (typeof m === 'string') return m.split('\n')[0] ?? m
  }
  return String(e)
}

// ---- walking the AST ----

interface Segment {
  readonly name: string
  /** Index of the segment's name in the text. */
  readonly index: number
}

interface Chain {
  readonly root: string
  readonly rootIndex: number
  readonly segments: readonly Segment[]
}

/** `signals.risk.fraud`, `queue["trust-safety"].depth`: a variable followed by constant field selections. */
function chainOf(node: ASTNode): Chain | null {
  switch (node.op) {
    case 'id':
      return { root: node.args, rootIndex: node.range.start, segments: [] }
    case '.':
    case '.?': {
      const [obj, field] = node.args
      const c = chainOf(obj)
      if (c === null) return null
      return { ...c, segments: [...c.segments, { name: field, index: node.range.end - field.length }] }
    }
    case '[]':
    case '[?]': {
      const [obj, key] = node.args
      if (key.op !== 'value' || typeof key.args !== 'string') return null
      const c = chainOf(obj)
      if (c === null) return null
      return { ...c, segments: [...c.segments, { name: key.args, index: key.range.start + 1 }] }
    }
    default:
      return null
  }
}

const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter', 'transformList', 'transformMap'])

/** Names bound by comprehension macros and `cel.bind` anywhere in the expression. */
function boundNames(ast: ASTNode): Set<string> {
  const out = new Set<string>()
  visit(ast, (n) => {
    if (n.op !== 'rcall') return true
    const [name, receiver, args] = n.args
    const isBind = name === 'bind' && receiver.op === 'id' && receiver.args === 'cel'
    if (COMPREHENSIONS.has(name) || isBind) {
      const first = args[0]
      if (first?.op === 'id') out.add(first.args)
      const second = args[1]
      if (!isBind && args.length === 3 && second?.op === 'id' && name !== 'map' && name !== 'filter') {
        out.add(second.args)
      }
    }
    return true
  })
  return out
}

/** Depth-first, pre-order; `f` returns false to skip a node's children. */
function visit(node: ASTNode, f: (n: ASTNode) => boolean): void {
  if (!f(node)) return
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) for (const y of x) walk(y)
    else if (x !== null && typeof x === 'object' && 'op' in x) visit(x as ASTNode, f)
  }
  if (node.op !== 'value' && node.op !== 'id') walk(node.args)
}

/** The fact paths an expression reads, e.g. `signals.intent`, `params.amount`, `queue.billing.depth`. */
export function collectReads(ast: ASTNode): string[][] {
  const bound = boundNames(ast)
  const out: string[][] = []
  const seen = new Set<string>()
  visit(ast, (n) => {
    const c = chainOf(n)
    if (c === null) return true
    if (bound.has(c.root) || !(ROOT_VARIABLES as readonly string[]).includes(c.root)) return c.segments.length > 0
    const path = [c.root, ...c.segments.map((s) => s.name)]
    const key = JSON.stringify(path)
    if (!seen.has(key)) {
      seen.add(key)
      out.push(path)
    }
    return false
  })
  return out
}

/** A better message for a failed type check when it was caused by a misspelt variable or field. */
function findUnknownPath(ast: ASTNode, shape: ObjectShape): CelProblem | null {
  const bound = boundNames(ast)
  let found: CelProblem | null = null
  visit(ast, (n) => {
    if (found !== null) return false
    const c = chainOf(n)
    if (c === null) return true
    if (bound.has(c.root)) return c.segments.length > 0
    let s: Shape | undefined = shape.fields[c.root]
    if (s === undefined) {
      const hint = didYouMean(c.root, ROOT_VARIABLES)
      const message = `unknown variable '${c.root}', expected one of: ${ROOT_VARIABLES.join(', ')}`
      found = hint === undefined ? { index: c.rootIndex, message } : { index: c.rootIndex, message, hint }
      return false
    }
    let path: string = c.root
    for (const seg of c.segments) {
      if (isObjectShape(s)) {
        const next: Shape | undefined = s.fields[seg.name]
        if (next === undefined) {
          const names = Object.keys(s.fields)
          const hint = didYouMean(seg.name, names, `${path}.`)
          const message =
            names.length === 0
              ? `unknown variable '${path}.${seg.name}': ${emptyObjectNote(path)}`
              : `unknown variable '${path}.${seg.name}'`
          found = hint === undefined ? { index: seg.index, message } : { index: seg.index, message, hint }
          return false
        }
        s = next
      } else if (isMapShape(s)) {
        s = s.values
      } else if (s !== 'dyn') {
        found = { index: seg.index, message: `'${path}' is ${shapeName(s)} and has no field '${seg.name}'` }
        return false
      }
      path = `${path}.${seg.name}`
    }
    return false
  })
  return found
}

function emptyObjectNote(path: string): string {
  if (path === 'signals.topics') return 'the policy declares no topics (declare them under topics:)'
  if (path === 'signals.custom') return 'the policy declares no caller signals (declare them under signals:)'
  if (path === 'signals.intent_class') {
    return 'the workspace has no intent classes (map intents to classes in intent-classes.json beside the policy)'
  }
  if (path === 'queue') return 'no queues are known'
  return 'it has no fields'
}

function shapeName(s: Shape): string {
  switch (s) {
    case 'string':
      return 'a string'
    case 'number':
      return 'a number'
    case 'boolean':
      return 'a boolean'
    case 'list<string>':
      return 'a list'
    default:
      return 'a value'
  }
}

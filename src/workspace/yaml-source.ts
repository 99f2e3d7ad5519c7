import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { isNode, LineCounter, parseDocument } from 'yaml'
import { BatonError, type SourcePosition } from '../errors.js'

/** A parsed YAML file that can say where any of its values came from. */
export interface YamlSource {
  readonly file: string
  readonly value: unknown
  /** Position of the value at `path` (object keys and array indices), or of its nearest existing parent. */
  positionOf(path: readonly (string | number)[]): SourcePosition
}

/** Parses YAML, turning syntax errors into `POLICY_INVALID`/`WORKSPACE_INVALID` errors with file:line:col. */
export function parseYaml(
  text: string,
  file: string,
  code: 'POLICY_INVALID' | 'WORKSPACE_INVALID' = 'WORKSPACE_INVALID',
): YamlSource {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  if (doc.errors.length > 0) {
    const positions = doc.errors.map((e) => {
      const p = lineCounter.linePos(e.pos[0])
      return { file, line: p.line, column: p.col, message: e.message.split('\n')[0] ?? e.message }
    })
    throw new BatonError(code, positions.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`).join('\n'), {
      positions,
    })
  }
  return {
    file,
    value: doc.toJS({ maxAliasCount: 50 }),
    positionOf(path) {
      for (let n = path.length; n >= 0; n--) {
        const node = doc.getIn(path.slice(0, n), true)
        if (isNode(node) && node.range) {
          const p = lineCounter.linePos(node.range[0])
          return { file, line: p.line, column: p.col }
        }
      }
      return { file, line: 1, column: 1 }
    },
  }
}

const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: false })

export function compileSchema(schema: object): ValidateFunction {
  return ajv.compile(schema)
}

/** Turns an ajv instance path (`/agents/0/owner`) into path segments. */
export function pathOf(instancePath: string): (string | number)[] {
  if (instancePath === '') return []
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s))
}

export function describeAjvError(e: ErrorObject): string {
  const where = e.instancePath === '' ? 'document' : e.instancePath.slice(1).replaceAll('/', '.')
  if (e.keyword === 'additionalProperties') {
    return `${where}: unknown field '${String((e.params as { additionalProperty: string }).additionalProperty)}'`
  }
  if (e.keyword === 'required') {
    return `${where}: missing required field '${String((e.params as { missingProperty: string }).missingProperty)}'`
  }
  if (e.keyword === 'enum') {
    return `${where}: expected one of ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`
  }
  return `${where}: ${e.message ?? 'invalid'}`
}

/** Validates a YAML source against a JSON schema; throws one error listing every problem with its position. */
export function validateYaml(
  src: YamlSource,
  validate: ValidateFunction,
  code: 'POLICY_INVALID' | 'WORKSPACE_INVALID' = 'WORKSPACE_INVALID',
): void {
  if (validate(src.value)) return
  const positions = (validate.errors ?? []).map((e) => {
    const path = pathOf(e.instancePath)
    const extra =
      e.keyword === 'additionalProperties' ? [(e.params as { additionalProperty: string }).additionalProperty] : []
    return { ...src.positionOf([...path, ...extra]), message: describeAjvError(e) }
  })
  throw new BatonError(code, positions.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`).join('\n'), {
    positions,
  })
}

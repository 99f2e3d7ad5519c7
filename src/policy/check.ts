import { analyzePolicy, type KnownNames } from './compile.js'
import type { Diagnostic } from './document.js'

export type { Diagnostic } from './document.js'

/**
 * Everything wrong with a policy source, without throwing. Errors (any one makes `compilePolicy` throw, and the
 * CLI exit 1): YAML and schema errors, CEL syntax and type errors, unknown variables and fields (with a suggestion),
 * duplicate rule ids, unknown agents, queues and tools, rules that can never match because an earlier rule always
 * matches. Warnings: an unreachable default, constant conditions, rules without a reason, routing rules that read
 * tool parameters, topics and signals no condition reads.
 */
export function checkPolicy(
  source: string,
  file: string,
  known: KnownNames,
): { errors: Diagnostic[]; warnings: Diagnostic[] } {
  const a = analyzePolicy(source, file, known)
  return { errors: [...a.errors], warnings: [...a.warnings] }
}

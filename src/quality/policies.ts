import { type CompiledPolicy, compilePolicy, type KnownNames } from '../policy/compile.js'
import type { PolicyVersionRecord } from '../store/ports.js'

/** Compiled policy versions by hash, compiled once each when first asked for. */
export interface PolicyVersions {
  get(hash: string): CompiledPolicy | undefined
  /** Whether `rule` is a routing override (`routing.overrides`) of version `hash`. */
  isOverride(hash: string, rule: string): boolean
}

/**
 * The stored versions (`Store.listPolicyVersions`), compiled against the workspace's names; a version that no
 * longer compiles against them (an agent or queue since removed) is compiled without names, as a lone file is:
 * its decisions still replay. Pure: compilation reads only the stored source.
 */
export function policyVersions(stored: readonly PolicyVersionRecord[], known: KnownNames): PolicyVersions {
  const sources = new Map(stored.map((v) => [v.hash, v]))
  const compiled = new Map<string, CompiledPolicy | undefined>()
  const overrides = new Map<string, ReadonlySet<string>>()
  const get = (hash: string): CompiledPolicy | undefined => {
    if (compiled.has(hash)) return compiled.get(hash)
    const v = sources.get(hash)
    let p: CompiledPolicy | undefined
    if (v !== undefined) {
      try {
        p = compilePolicy(v.source, v.file, known)
      } catch {
        try {
          p = compilePolicy(v.source, v.file, { agents: [], queues: [], tools: [] })
        } catch {
          p = undefined
        }
      }
    }
    compiled.set(hash, p)
    return p
  }
  return {
    get,
    isOverride(hash, rule) {
      let set = overrides.get(hash)
      if (set === undefined) {
        set = new Set(
          get(hash)
            ?.routing.sequence.filter((r) => r.override)
            .map((r) => r.id) ?? [],
        )
        overrides.set(hash, set)
      }
      return set.has(rule)
    },
  }
}

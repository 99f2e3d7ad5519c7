import { readFile } from 'node:fs/promises'
import { knownNames, openStore } from '../app.js'
import { configFrom } from '../config.js'
import { BatonError } from '../errors.js'
import { readModelLabels } from '../intents/load.js'
import { type CompiledPolicy, compilePolicy } from '../policy/compile.js'
import type { QualityDeps } from '../quality/read.js'
import type { Store } from '../store/ports.js'
import { loadWorkspace, type Workspace } from '../workspace/workspace.js'

/**
 * The read-only commands over the stored history (`baton quality`, `replay`, `simulate`): the configured store and
 * workspace, the policy in force (the store's newest activated version, else the workspace file). A BatonError
 * is printed as `baton: CODE: message` with exit status 1; nothing is written.
 */
export async function withHistory<T>(
  fn: (deps: QualityDeps & { readonly workspace: Workspace }) => Promise<T>,
): Promise<T | undefined> {
  let store: Store | undefined
  try {
    const config = configFrom(process.env)
    const workspace = await loadWorkspace(config.workspace)
    const intents = await readModelLabels(workspace.dir).catch(() => undefined)
    const known = { ...knownNames(workspace), ...(intents === undefined ? {} : { intents }) }
    store = openStore(config)
    await store.migrate()
    const newest = await store.newestPolicyVersion()
    let policy: CompiledPolicy
    try {
      policy =
        newest === undefined
          ? compilePolicy(await readFile(workspace.policyFile, 'utf8'), workspace.policyFile, known)
          : compilePolicy(newest.source, newest.file, known)
    } catch (e) {
      if (newest === undefined) throw e
      policy = compilePolicy(newest.source, newest.file, { agents: [], queues: [], tools: [] })
    }
    return await fn({ store, workspace, queues: workspace.queues, policy: () => policy, known, now: () => new Date() })
  } catch (e) {
    if (e instanceof BatonError) {
      process.stderr.write(`baton: ${e.code}: ${e.message}\n`)
      for (const p of e.positions) process.stderr.write(`  ${p.file}:${p.line}:${p.column}: ${p.message}\n`)
      process.exitCode = 1
      return undefined
    }
    throw e
  } finally {
    await store?.close()
  }
}

export const percent = (r: number | null): string => (r === null ? '—' : `${(r * 100).toFixed(1)}%`)

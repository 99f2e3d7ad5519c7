import type { Command } from 'commander'
import type { QualityDeps } from '../quality/read.js'
import type { Workspace } from '../workspace/workspace.js'
import { type StoreFlags, storeConfig, storeOptions, withExistingStore } from './store.js'

export interface HistoryFlags extends StoreFlags {
  readonly workspace?: string
}

/** `--data-dir`, `--database-url` and `--workspace`, for the commands that read the stored history. */
export function historyOptions(cmd: Command): Command {
  return storeOptions(cmd).option(
    '-w, --workspace <dir>',
    'the workspace whose queues (SLA) and names the history is read with (BATON_WORKSPACE, default examples/shop)',
  )
}

/**
 * The read-only commands over the stored history (`baton quality`, `replay`, `simulate`): an existing store
 * (nothing is created), the workspace, and the policy in force (the store's newest activated version, else the
 * workspace's file). A refusal (bad input) ends the command with `baton: CODE: message`, exit 1; nothing is written.
 */
export async function withHistory<T>(
  o: HistoryFlags,
  fn: (deps: QualityDeps & { readonly workspace: Workspace }) => Promise<T>,
): Promise<T> {
  const base = storeConfig(o)
  const config = o.workspace === undefined ? base : { ...base, workspace: o.workspace }
  return withExistingStore(config, async (store) => {
    const [{ knownNames }, { loadWorkspace }, { readIntentNames }, { compilePolicy }, { readFile }] = await Promise.all(
      [
        import('../app.js'),
        import('../workspace/workspace.js'),
        import('../intents/load.js'),
        import('../policy/compile.js'),
        import('node:fs/promises'),
      ],
    )
    const workspace = await loadWorkspace(config.workspace)
    const names = await readIntentNames(workspace.dir).catch(() => undefined)
    const known = { ...knownNames(workspace), ...(names === undefined ? {} : names) }
    const newest = await store.newestPolicyVersion()
    let policy: import('../policy/compile.js').CompiledPolicy
    if (newest === undefined) {
      policy = compilePolicy(await readFile(workspace.policyFile, 'utf8'), workspace.policyFile, known)
    } else {
      try {
        policy = compilePolicy(newest.source, newest.file, known)
      } catch {
        // a version that no longer compiles against the workspace still serves for its cap and rules
        policy = compilePolicy(newest.source, newest.file, { agents: [], queues: [], tools: [] })
      }
    }
    return fn({ store, workspace, queues: workspace.queues, policy: () => policy, known, now: () => new Date() })
  })
}

export const percent = (r: number | null): string => (r === null ? '—' : `${(r * 100).toFixed(1)}%`)

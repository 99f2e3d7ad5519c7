import { userInfo } from 'node:os'
import type { Command } from 'commander'
import type { Actor } from '../cases/intake.js'
import { BatonError } from '../errors.js'
import type { AgentRecord } from '../identity/principals.js'
import type { Store } from '../store/ports.js'
import { positiveInt } from './args.js'
import { usageError } from './exit.js'
import { type StoreFlags, storeConfig, storeOptions, withExistingStore } from './store.js'

const now = () => new Date()

/**
 * Runs `fn` on the agent registry of an existing store, acting as `cli:<user>`. The registry is what `baton serve`
 * registered from the workspace, so no workspace is read here.
 */
async function withRegistry<T>(o: StoreFlags, fn: (store: Store, actor: Actor, r: Registry) => Promise<T>): Promise<T> {
  const actor: Actor = { kind: 'admin', id: `cli:${userInfo().username}`, roles: ['admin'] }
  return withExistingStore(storeConfig(o), async (store) => {
    const [{ newId }, registry] = await Promise.all([import('../app.js'), import('../identity/registry.js')])
    return fn(store, actor, { ...registry, deps: { store, now, newId } })
  })
}

type Registry = typeof import('../identity/registry.js') & {
  readonly deps: Parameters<typeof import('../identity/registry.js').transitionAgent>[0]
}

function line(a: AgentRecord): string {
  return `${a.id.padEnd(24)} ${a.state.padEnd(11)} ${a.owner.padEnd(32)} ${a.tools.join(',')}`
}

export function registerAgentCommands(program: Command): void {
  const agents = program
    .command('agents')
    .description(
      'AI agent identities: list, inspect, change lifecycle, review privileges (against the configured store)',
    )
  storeOptions(agents.command('list'))
    .option('--json', 'one JSON object per line')
    .description('Every registered agent with its state, owner and granted tools')
    .action(async (o: StoreFlags & { json?: boolean }) => {
      await withRegistry(o, async (store) => {
        for (const a of await store.listAgents()) process.stdout.write(`${o.json ? JSON.stringify(a) : line(a)}\n`)
      })
    })
  storeOptions(agents.command('show'))
    .argument('<id>')
    .description('One agent as JSON, with its authentication credentials (never secrets)')
    .action(async (id: string, o: StoreFlags) => {
      await withRegistry(o, async (store) => {
        const a = await store.getAgent(id)
        if (a === undefined) throw new BatonError('AGENT_NOT_FOUND', `no agent with id '${id}'`)
        const credentials = (await store.listAgentCredentials(id)).map(({ secretHash: _h, ...c }) => c)
        process.stdout.write(`${JSON.stringify({ ...a, credentials }, null, 2)}\n`)
      })
    })
  for (const [verb, to, what] of [
    ['activate', 'active', 'Activate a provisioned or suspended agent'],
    ['suspend', 'suspended', 'Suspend an agent: every credential it holds stops working at once'],
    ['retire', 'retired', 'Retire an agent for good: revokes everything it holds; it cannot come back'],
  ] as const) {
    storeOptions(agents.command(verb))
      .argument('<id>')
      .requiredOption('--reason <text>', 'why (recorded in the audit log)')
      .description(what)
      .action(async (id: string, o: StoreFlags & { reason: string }) => {
        await withRegistry(o, async (_store, actor, { transitionAgent, deps }) => {
          const r = await transitionAgent(deps, actor, id, to, o.reason)
          const held = r.revokedCases.length
          process.stdout.write(
            `${r.agent.id} is ${r.agent.state}${held > 0 ? `; credentials revoked on ${held} case(s), which Baton decides again at its next timer poll (agent_reroute)` : ''}\n`,
          )
        })
      })
  }
  storeOptions(agents.command('review'))
    .argument('[id]', 'record that this agent was reviewed by its owner (with --by)')
    .option('--days <n>', 'period of use to compare grants with', positiveInt, 30)
    .option('--by <owner>', 'who reviewed (with an id)')
    .option('--all', 'list every agent, not only those that need attention')
    .option('--json', 'one JSON object per line')
    .description(
      'Privilege report: agents whose granted tools exceed their use, agents without an active owner or never reviewed; exit 1 when any',
    )
    .action(
      async (
        id: string | undefined,
        o: StoreFlags & { days: number; by?: string; all?: boolean; json?: boolean },
        cmd: Command,
      ) => {
        if (id !== undefined && o.by === undefined)
          usageError(cmd, `recording a review of '${id}' needs --by: who reviewed it`)
        const by = o.by
        await withRegistry(o, async (store, actor, { reviewAgent, privilegeReport, deps }) => {
          if (id !== undefined && by !== undefined) {
            const a = await reviewAgent(deps, actor, id, by)
            process.stdout.write(`${a.id} reviewed by ${a.reviewedBy} at ${a.reviewedAt}\n`)
            return
          }
          const days = o.days
          const to = now()
          const operators = new Set((await store.listOperators()).map((x) => x.id))
          const report = await privilegeReport(
            deps,
            new Date(to.getTime() - days * 86_400_000),
            to,
            (owner) => operators.has(owner) || /^[^@\s]+@[^@\s]+$/.test(owner),
          )
          let flagged = 0
          for (const r of report) {
            if (r.findings.length > 0) flagged++
            if (!o.all && r.findings.length === 0) continue
            if (o.json) {
              process.stdout.write(`${JSON.stringify(r)}\n`)
              continue
            }
            const used = Object.entries(r.used)
              .map(([t, n]) => `${t}×${n}`)
              .join(', ')
            process.stdout.write(
              `${r.agentId} (${r.state}, owner ${r.owner})\n  granted: ${r.granted.join(', ')}\n  used (${days}d): ${used || 'nothing'}\n  outstanding credentials: ${r.outstandingCredentials}\n  last review: ${r.lastReview === null ? 'never' : `${r.lastReview.at} by ${r.lastReview.by}`}\n${r.findings.map((f) => `  ! ${f}\n`).join('')}`,
            )
          }
          if (flagged > 0) process.exitCode = 1
        })
      },
    )
}

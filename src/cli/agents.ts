import { userInfo } from 'node:os'
import type { Command } from 'commander'
import { newId, openStore } from '../app.js'
import type { Actor } from '../cases/intake.js'
import { configFrom } from '../config.js'
import { BatonError } from '../errors.js'
import type { AgentRecord } from '../identity/principals.js'
import { privilegeReport, reviewAgent, seedPrincipals, transitionAgent } from '../identity/registry.js'
import type { Store } from '../store/ports.js'
import { loadWorkspace } from '../workspace/workspace.js'

const now = () => new Date()

/** Opens the configured store with the workspace's principals registered (as `baton serve` would). */
async function withRegistry<T>(fn: (store: Store, actor: Actor) => Promise<T>): Promise<T> {
  const config = configFrom(process.env)
  const store = openStore(config)
  const actor: Actor = { kind: 'admin', id: `cli:${userInfo().username}`, roles: ['admin'] }
  try {
    await store.migrate()
    const ws = await loadWorkspace(config.workspace)
    await seedPrincipals({ store, now, newId }, ws.agents, ws.operators, {
      kind: 'admin',
      id: 'system',
      roles: ['admin'],
    })
    return await fn(store, actor)
  } catch (e) {
    if (e instanceof BatonError) {
      process.stderr.write(`baton: ${e.code}: ${e.message}\n`)
      process.exit(1)
    }
    throw e
  } finally {
    await store.close()
  }
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
  agents
    .command('list')
    .option('--json', 'one JSON object per line')
    .description('Every registered agent with its state, owner and granted tools')
    .action(async (o: { json?: boolean }) => {
      await withRegistry(async (store) => {
        for (const a of await store.listAgents()) process.stdout.write(`${o.json ? JSON.stringify(a) : line(a)}\n`)
      })
    })
  agents
    .command('show')
    .argument('<id>')
    .description('One agent as JSON, with its authentication credentials (never secrets)')
    .action(async (id: string) => {
      await withRegistry(async (store) => {
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
    agents
      .command(verb)
      .argument('<id>')
      .requiredOption('--reason <text>', 'why (recorded in the audit log)')
      .description(what)
      .action(async (id: string, o: { reason: string }) => {
        await withRegistry(async (store, actor) => {
          const r = await transitionAgent({ store, now, newId }, actor, id, to, o.reason)
          const held = r.revokedCases.length
          process.stdout.write(
            `${r.agent.id} is ${r.agent.state}${held > 0 ? `; credentials revoked on ${held} case(s), which Baton decides again at its next timer poll (agent_reroute)` : ''}\n`,
          )
        })
      })
  }
  agents
    .command('review')
    .argument('[id]', 'record that this agent was reviewed by its owner (with --by)')
    .option('--days <n>', 'period of use to compare grants with', '30')
    .option('--by <owner>', 'who reviewed (with an id)')
    .option('--all', 'list every agent, not only those that need attention')
    .option('--json', 'one JSON object per line')
    .description(
      'Privilege report: agents whose granted tools exceed their use, agents without an active owner or never reviewed; exit 1 when any',
    )
    .action(async (id: string | undefined, o: { days: string; by?: string; all?: boolean; json?: boolean }) => {
      await withRegistry(async (store, actor) => {
        if (id !== undefined) {
          if (o.by === undefined) throw new BatonError('VALIDATION_FAILED', '--by: who reviewed the agent')
          const a = await reviewAgent({ store, now, newId }, actor, id, o.by)
          process.stdout.write(`${a.id} reviewed by ${a.reviewedBy} at ${a.reviewedAt}\n`)
          return
        }
        const days = Number(o.days)
        if (!Number.isInteger(days) || days < 1) throw new BatonError('VALIDATION_FAILED', '--days: a positive integer')
        const to = now()
        const operators = new Set((await store.listOperators()).map((x) => x.id))
        const report = await privilegeReport(
          { store, now, newId },
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
    })
}

import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Command } from 'commander'
import type { Actor } from '../cases/intake.js'
import { configFrom } from '../config.js'
import { BatonError } from '../errors.js'
import type { IntentModel } from '../intents/model.js'
import type { RoutedMessage } from '../intents/routing-eval.js'
import { num } from './args.js'
import { readLabelled } from './intents.js'

const HELPDESK: Actor = { kind: 'service', id: 'eval-routing', roles: ['service'] }

/**
 * Runs every message through the real intake path (detectors, classifier, policy, store) of a workspace, each as
 * a new case of its own customer, on an in-memory SQLite store; returns where each one went.
 */
export async function routeMessages(
  workspace: string,
  data: readonly { text: string; label: string }[],
  model?: string | IntentModel,
): Promise<RoutedMessage[]> {
  const [{ createApp }, { openCase }, { decodeModel }, { createSqliteStore }] = await Promise.all([
    import('../app.js'),
    import('../cases/intake.js'),
    import('../intents/codec.js'),
    import('../store/sqlite/database.js'),
  ])
  const dir = await mkdtemp(join(tmpdir(), 'baton-eval-'))
  const config = configFrom(process.env, {
    workspace,
    dataDir: dir,
    watchPolicy: false,
    logLevel: 'silent',
    auditHeadIntervalMs: 60_000,
  })
  const app = await createApp(config, { store: createSqliteStore(':memory:') })
  try {
    let storeMs = 0
    let inFlight = 0
    let since = 0
    // time spent waiting on the store (reads, the commit) is measured apart: the decision is the rest
    const store = new Proxy(app.services.intake.store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown
        if (typeof v !== 'function') return v
        return async (...args: unknown[]) => {
          if (inFlight++ === 0) since = performance.now()
          try {
            return await (v as (...a: unknown[]) => Promise<unknown>).apply(target, args)
          } finally {
            if (--inFlight === 0) storeMs += performance.now() - since
          }
        }
      },
    })
    let deps = { ...app.services.intake, store }
    if (model !== undefined) {
      const m = typeof model === 'string' ? decodeModel(await readFile(model, 'utf8'), model) : model
      deps = { ...deps, intents: { secondOpinionBelow: 0, ...deps.intents, model: m } }
    }
    const out: RoutedMessage[] = []
    for (const [i, row] of data.entries()) {
      const started = performance.now()
      storeMs = 0
      const r = await openCase(deps, HELPDESK, { customerId: `cu_eval_${i}`, channel: 'chat', text: row.text })
      const total = performance.now() - started
      out.push({
        label: row.label,
        handler: r.handler.kind,
        micros: (total - storeMs) * 1000,
        intakeMicros: total * 1000,
      })
    }
    return out
  } finally {
    await app.close()
    await rm(dir, { recursive: true, force: true })
  }
}

export function registerEvalCommands(program: Command): void {
  const evalCmd = program.command('eval').description('Measure decision quality on labelled data')
  evalCmd
    .command('routing')
    .requiredOption('--workspace <dir>', 'workspace (policy, agents, queues, tools, intents.model.json)')
    .requiredOption('--data <file>', 'labelled JSON lines ({text, label}) the model was not trained on')
    .requiredOption('--risk-map <file>', 'intent → ai | approval | human (JSON, {intents: {...}})')
    .option('--model <file>', "a model file instead of the workspace's intents.model.json")
    .option('--confidence <p>', 'confidence of the upper bounds (Clopper–Pearson, one-sided)', num, 0.9)
    .description(
      'Route every message through intake; prints {n, unsafe_automation_rate, unsafe_automation_ucb, automation_rate, by_class, p99_decision_us}',
    )
    .action(async (o: { workspace: string; data: string; riskMap: string; model?: string; confidence: number }) => {
      if (!(o.confidence > 0 && o.confidence < 1)) {
        throw new BatonError(
          'VALIDATION_FAILED',
          `--confidence: expected a probability in (0, 1), found ${o.confidence}`,
        )
      }
      const { parseRiskMap, summarizeRouting } = await import('../intents/routing-eval.js')
      const riskMap = parseRiskMap(await readFile(o.riskMap, 'utf8'), o.riskMap)
      const data = await readLabelled(o.data)
      const routed = await routeMessages(o.workspace, data, o.model)
      process.stdout.write(`${JSON.stringify(summarizeRouting(routed, riskMap, o.confidence))}\n`)
    })
}

import type { Command } from 'commander'
import type { SimulationReport } from '../simulate/read.js'
import { type HistoryFlags, historyOptions, percent, withHistory } from './history.js'

/** One line per queue: arrivals, waits, breach rate, utilisation, operators and the fewest that hold the SLA. */
export function formatSimulation(r: SimulationReport): string {
  const src = r.source.kind === 'csv' ? 'the given arrivals' : `history ${r.source.since} – ${r.source.until}`
  const lines = [
    `${r.days} day(s) simulated, demand ×${r.demand}, seed ${r.seed}, from ${src}${r.candidate ? `, routed by ${r.candidate.name} v${r.candidate.version}` : ''}; holding the SLA = ${percent(r.target)} taken within it`,
    `${'queue'.padEnd(14)} ${'arrivals'.padStart(8)} ${'wait p50'.padStart(9)} ${'wait p90'.padStart(9)} ${'SLA'.padStart(6)} ${'breach'.padStart(7)} ${'util'.padStart(6)} ${'ops'.padStart(4)} ${'fewest'.padStart(6)}`,
    ...r.queues.map(
      (q) =>
        `${q.queue.padEnd(14)} ${String(q.arrivals).padStart(8)} ${`${q.waitS.p50 ?? '—'}s`.padStart(9)} ${`${q.waitS.p90 ?? '—'}s`.padStart(9)} ${`${q.slaSeconds}s`.padStart(6)} ${percent(q.slaBreachRate).padStart(7)} ${percent(q.utilisation).padStart(6)} ${String(q.operators).padStart(4)} ${String(q.fewestOperators ?? '—').padStart(6)}`,
    ),
  ]
  return `${lines.join('\n')}\n`
}

export function registerSimulateCommand(program: Command): void {
  historyOptions(program.command('simulate'))
    .description(
      'Capacity simulation of the queues: arrivals per hour of the week and handle times from the stored history (or a CSV), demand scaled, operators given or from the workspace; seeded and deterministic (read-only)',
    )
    .option('--demand <factor>', 'multiply every arrival rate (1.5: half again as many cases); > 0', '1')
    .option(
      '--operators <list>',
      'operators per queue, each serving only it: general=12,billing=4 (default: operators.yaml by skills)',
    )
    .option('--policy <file>', "a candidate policy: the cases' first routing decided again with it")
    .option('--days <n>', 'days to simulate', '7')
    .option('--seed <n>', 'random seed: the same seed gives the same report, byte for byte', '1')
    .option('--target <share>', 'share of cases taken within the SLA for a queue to hold it', '0.8')
    .option('--since <when>', 'the history measured: a duration before now (28d) or an RFC 3339 date-time', '28d')
    .option('--until <when>', 'the same; default now')
    .option('--arrivals <file>', 'queue,hour_of_week,arrivals_per_hour,mean_handle_s CSV instead of the history')
    .option('--out <file>', 'write an HTML report with the charts (Chart.js, inlined: the file needs nothing else)')
    .option('--json', 'the report as one JSON object')
    .action(
      async (
        o: HistoryFlags & {
          demand: string
          operators?: string
          policy?: string
          days: string
          seed: string
          target: string
          since: string
          until?: string
          arrivals?: string
          out?: string
          json?: boolean
        },
      ) => {
        await withHistory(o, async (deps) => {
          const [{ readSimulation }, { readFile, writeFile }, { parseArrivalsCsv }] = await Promise.all([
            import('../simulate/read.js'),
            import('node:fs/promises'),
            import('../simulate/csv.js'),
          ])
          const sla = new Map(deps.queues.map((q) => [q.id, q.slaSeconds]))
          const model =
            o.arrivals === undefined ? undefined : parseArrivalsCsv(await readFile(o.arrivals, 'utf8'), o.arrivals, sla)
          let candidate: import('../policy/compile.js').CompiledPolicy | undefined
          if (o.policy !== undefined) {
            const { compilePolicy } = await import('../policy/compile.js')
            candidate = compilePolicy(await readFile(o.policy, 'utf8'), o.policy, deps.known)
          }
          const progress = await progressBar()
          const report = await readSimulation(
            { ...deps, operators: deps.workspace.operators },
            {
              since: o.since,
              until: o.until,
              demand: Number(o.demand),
              days: Number(o.days),
              seed: Number(o.seed),
              target: Number(o.target),
              operators: o.operators,
              model,
              candidate,
              onProgress: progress.update,
            },
          )
          progress.stop()
          if (o.out !== undefined) {
            const { simulationHtml, chartScript } = await import('./simulate-report.js')
            await writeFile(o.out, simulationHtml(report, await chartScript()))
          }
          process.stdout.write(o.json ? `${JSON.stringify(report)}\n` : formatSimulation(report))
        })
      },
    )
}

/**
 * A progress bar (cli-progress) on stderr for a run that takes longer than a second, when stderr is a terminal; a
 * shorter run, or output to a file or pipe, shows none.
 */
async function progressBar(): Promise<{ update: (done: number) => void; stop: () => void }> {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined }
  const { SingleBar, Presets } = (await import('cli-progress')).default
  const started = Date.now()
  let bar: InstanceType<typeof SingleBar> | undefined
  return {
    update(done) {
      if (bar === undefined) {
        if (Date.now() - started < 1000) return
        bar = new SingleBar(
          { format: 'simulating [{bar}] {percentage}%', stream: process.stderr },
          Presets.shades_classic,
        )
        bar.start(100, 0)
      }
      bar.update(Math.round(done * 100))
    },
    stop() {
      bar?.stop()
    },
  }
}

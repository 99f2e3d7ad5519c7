import type { Command } from 'commander'
import type { QualityReport } from '../quality/figures.js'
import { type HistoryFlags, historyOptions, percent, withHistory } from './history.js'

/** The report as a person reads it: one line per figure, the definitions in the README (Decision quality). */
export function formatQuality(r: QualityReport): string {
  const e = r.escalations
  const o = r.ownership
  const nd = r.consistency.nearDuplicates
  const rp = r.consistency.replay
  const lines = [
    `Decision quality of the ${r.cases.opened} case(s) opened ${r.window.since} – ${r.window.until}${r.filters.queue ? ` in queue ${r.filters.queue}` : ''}${r.filters.agent ? ` handled by ${r.filters.agent}` : ''}`,
    `automation         ${percent(r.automation.rate)}  ${r.automation.automated} of ${r.automation.closed} closed case(s) never left the AI`,
    `escalation         ${percent(e.rate)}  ${e.cases} case(s); ${e.total} escalation(s): ${e.atIntake} at intake, ${e.fromAgent} from an AI agent`,
    `  by cause         ${Object.entries(e.byCause)
      .map(([k, n]) => `${k.replaceAll('_', ' ')} ${n}`)
      .join(' · ')}`,
    `  by trigger       ${
      Object.entries(e.byTrigger)
        .map(([k, n]) => `${k} ${n}`)
        .join(' · ') || '—'
    }`,
    `unmanaged          ${r.unmanaged.count} of ${e.total} escalation(s) (${percent(r.unmanaged.rate)}): ${r.unmanaged.notPickedUpWithinSla} not taken within the SLA, ${r.unmanaged.noReason} without a reason`,
    ...r.unmanaged.items.map(
      (u) => `  ${u.caseId}  ${u.queue}  ${u.reasons.join(', ')}${u.waitedS === null ? '' : `  waited ${u.waitedS}s`}`,
    ),
    ...(r.unmanaged.truncated
      ? [`  … ${r.unmanaged.count - r.unmanaged.items.length} more (--json lists the first 100)`]
      : []),
    `ping-pong          ${r.pingPong.distribution.labels.map((l, i) => `${l}: ${r.pingPong.distribution.counts[i]}`).join(' · ')}; ${r.pingPong.atOrOverCap} at or over the cap of ${r.pingPong.cap}`,
    `replay             ${rp === null ? 'no decisions' : `${percent(rp.rate)}  ${rp.same} of ${rp.replayed} sampled decision(s) replay to what was recorded (of ${rp.of})`}`,
    `near-duplicates    ${percent(nd.rate)}  ${nd.differing} of ${nd.pairs} near-duplicate pair(s) routed to different handlers (${nd.messages} of ${nd.of} first messages compared)`,
    `ownership          ${percent(o.rate)}  ${o.ownedWithinSla} of ${o.judged} escalation(s) taken within the SLA; ${o.pending} waiting, ${o.withdrawn} withdrawn`,
    `time to human      p50 ${o.timeToHumanS.p50 ?? '—'}s  p90 ${o.timeToHumanS.p90 ?? '—'}s  (${o.timeToHumanS.n})`,
    `reopen             ${percent(o.reopen.rate)}  ${o.reopen.reopened} of ${o.reopen.closedEscalated} closed escalated case(s)`,
    `approvals          ${r.approvals.requested} requested: ${
      Object.entries(r.approvals.byState)
        .map(([k, n]) => `${k} ${n}`)
        .join(' · ') || '—'
    }; time to decide p50 ${r.approvals.timeToDecideS.p50 ?? '—'}s p90 ${r.approvals.timeToDecideS.p90 ?? '—'}s`,
    `confirmations      ${r.confirmations.requested} requested: ${
      Object.entries(r.confirmations.byState)
        .map(([k, n]) => `${k} ${n}`)
        .join(' · ') || '—'
    }`,
    ...r.privileges.map(
      (p) =>
        `privileges         ${p.agentId}: ${p.granted.length - p.unused.length} of ${p.granted.length} granted tool(s) used${p.unused.length > 0 ? `; unused: ${p.unused.join(', ')}` : ''}`,
    ),
  ]
  return `${lines.join('\n')}\n`
}

export function registerQualityCommands(program: Command): void {
  historyOptions(program.command('quality'))
    .description('Decision-quality figures over the cases opened in a window, from the configured store (read-only)')
    .option('--since <when>', 'a duration before now (7d, 24h, 90m) or an RFC 3339 date or date-time', '7d')
    .option('--until <when>', 'the same; default now')
    .option('--queue <id>', 'only cases that were in this queue')
    .option('--agent <id>', 'only cases this AI agent handled')
    .option('--json', 'the report as one JSON object (the body of GET /v1/quality)')
    .action(
      async (o: HistoryFlags & { since: string; until?: string; queue?: string; agent?: string; json?: boolean }) => {
        await withHistory(o, async (deps) => {
          const { readQuality } = await import('../quality/read.js')
          const r = await readQuality(deps, o)
          process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : formatQuality(r))
        })
      },
    )
}

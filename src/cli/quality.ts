import type { Command } from 'commander'
import type { QualityReport } from '../quality/figures.js'
import type { PreviewSummary, Verdict } from '../quality/replay.js'
import { usageError } from './exit.js'
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
    `ping-pong          ${r.pingPong.distribution.labels.map((l, i) => `${l}: ${r.pingPong.distribution.counts[i]}`).join(' · ')}; ${r.pingPong.atOrOverCap} at or over the cap of ${r.pingPong.cap}; ${r.pingPong.fromHumanOwned} from a human-owned case back to AI`,
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

function verdict(v: Verdict): string {
  const h = v.handler
  const who = h === undefined ? v.outcome : h.kind === 'agent' ? `agent ${h.agentId}` : `${h.kind} ${h.queue}`
  return `${who} [${v.rules.join(', ')}]${v.trigger ? ` trigger ${v.trigger}` : ''}`
}

/** `baton replay` with a candidate: what would change, per rule of the candidate. */
export function formatPreview(p: PreviewSummary): string {
  const t = p.totals
  const lines = [
    `candidate ${p.candidate.name} v${p.candidate.version} ${p.candidate.hash.slice(0, 12)}: ${p.decisions} decision(s) re-decided, ${p.changed} would change${p.skipped.override > 0 ? ` (${p.skipped.override} operator override(s) not re-decided)` : ''}`,
    ...Object.entries(p.byRule).map(([rule, c]) => {
      const kinds = [
        [c.aiToHuman, 'AI → human'],
        [c.humanToAi, 'human → AI'],
        [c.queue, 'queue'],
        [c.agent, 'agent'],
        [c.mode, 'operator ↔ hybrid'],
        ...Object.entries(c.outcomes).map(([k, n]) => [n, k] as const),
      ]
        .filter(([n]) => (n as number) > 0)
        .map(([n, k]) => `${n} ${k}`)
        .join(', ')
      const from = Object.entries(c.from)
        .map(([r, n]) => `${r} ×${n}`)
        .join(', ')
      return `  ${rule.padEnd(28)} ${c.changed} changed: ${kinds}  (was ${from})  e.g. ${c.sampleCaseIds.join(', ')}`
    }),
    `totals: AI → human ${t.aiToHuman} · human → AI ${t.humanToAi} · queue ${t.queue} · agent ${t.agent} · operator ↔ hybrid ${t.mode} · tool outcome ${t.toolOutcome}`,
  ]
  if (p.labelled !== null) {
    const l = p.labelled
    lines.push(
      `labelled (${l.n}): unsafe automation ${percent(l.unsafeAutomationRate.before)} → ${percent(l.unsafeAutomationRate.after)}; automation ${percent(l.automationRate.before)} → ${percent(l.automationRate.after)}`,
    )
  }
  return `${lines.join('\n')}\n`
}

export function registerReplayCommand(program: Command): void {
  historyOptions(program.command('replay'))
    .description(
      'Re-decide stored decisions from their stored facts: with the versions they name, every outcome must come back (exit 1 otherwise); with --policy, what a candidate would change (read-only)',
    )
    .option(
      '--since <when>',
      'decisions made since: a duration before now (7d, 24h) or an RFC 3339 date-time; default all',
    )
    .option('--until <when>', 'the same; default now')
    .option('--policy <file>', 'a candidate policy file: per rule, the decisions whose outcome it changes')
    .option('--labels <file>', "with --policy: JSON lines {caseId|text, label} labelling cases' first messages")
    .option('--risk-map <file>', 'with --labels: intent label → ai | approval | human (the eval routing risk map)')
    .option('--json', 'the summary as one JSON object')
    .action(
      async (
        o: HistoryFlags & {
          since?: string
          until?: string
          policy?: string
          labels?: string
          riskMap?: string
          json?: boolean
        },
        cmd: Command,
      ) => {
        if ((o.labels === undefined) !== (o.riskMap === undefined))
          usageError(cmd, '--labels and --risk-map go together')
        if (o.labels !== undefined && o.policy === undefined) usageError(cmd, '--labels needs --policy (a candidate)')
        await withHistory(o, async (deps) => {
          const [{ readReplay, readPreview, labelsOf }, { readFile }] = await Promise.all([
            import('../quality/read.js'),
            import('node:fs/promises'),
          ])
          if (o.policy === undefined) {
            const s = await readReplay(deps, o)
            if (o.json) process.stdout.write(`${JSON.stringify(s)}\n`)
            else {
              for (const x of s.examples) {
                process.stdout.write(
                  `DIFF ${x.decisionId} (case ${x.caseId}): ${x.differences.join(', ')}: recorded ${verdict(x.recorded)}, replayed ${verdict(x.replayed)}\n`,
                )
              }
              const skipped = Object.entries(s.skipped).filter(([, n]) => n > 0)
              process.stdout.write(
                `replayed ${s.replayed}, differing ${s.differing}${skipped.length > 0 ? ` (not replayed: ${skipped.map(([k, n]) => `${n} ${k.replaceAll('_', ' ')}`).join(', ')})` : ''}\n`,
              )
            }
            if (s.differing > 0) process.exitCode = 1
            return
          }
          const { compilePolicy } = await import('../policy/compile.js')
          const candidate = compilePolicy(await readFile(o.policy, 'utf8'), o.policy, deps.known)
          let labels: Map<string, import('../intents/routing-eval.js').RiskClass> | undefined
          if (o.labels !== undefined && o.riskMap !== undefined) {
            const { parseRiskMap } = await import('../intents/routing-eval.js')
            const riskMap = parseRiskMap(await readFile(o.riskMap, 'utf8'), o.riskMap)
            labels = await labelsOf(deps, await readLabelRows(o.labels), riskMap)
          }
          const p = await readPreview(deps, candidate, o, labels)
          process.stdout.write(o.json ? `${JSON.stringify(p)}\n` : formatPreview(p))
        })
      },
    )
}

/** JSON lines `{caseId, label}` or `{text, label}` (the eval routing data). */
async function readLabelRows(file: string): Promise<{ caseId?: string; text?: string; label: string }[]> {
  const [{ readFile }, { BatonError }] = await Promise.all([import('node:fs/promises'), import('../errors.js')])
  const out: { caseId?: string; text?: string; label: string }[] = []
  for (const [i, line] of (await readFile(file, 'utf8')).split('\n').entries()) {
    if (line.trim() === '') continue
    let row: { caseId?: unknown; text?: unknown; label?: unknown }
    try {
      row = JSON.parse(line) as typeof row
    } catch {
      throw new BatonError('VALIDATION_FAILED', `${file}:${i + 1}: expected a JSON object per line`)
    }
    if (typeof row.label !== 'string' || (typeof row.caseId !== 'string' && typeof row.text !== 'string')) {
      throw new BatonError('VALIDATION_FAILED', `${file}:${i + 1}: expected a string 'label' and a 'caseId' or 'text'`)
    }
    out.push({
      label: row.label,
      ...(typeof row.caseId === 'string' ? { caseId: row.caseId } : {}),
      ...(typeof row.text === 'string' ? { text: row.text } : {}),
    })
  }
  return out
}

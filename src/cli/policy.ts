import { readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Command } from 'commander'

/**
 * The workspace beside the policy file, when there is one, names the agents, queues and tools a policy may use, and
 * its intent model the intent labels a caller may send.
 */
async function knownFor(file: string) {
  const [{ knownNames }, { readIntentNames }, { loadWorkspace }] = await Promise.all([
    import('../app.js'),
    import('../intents/load.js'),
    import('../workspace/workspace.js'),
  ])
  let ws: Awaited<ReturnType<typeof loadWorkspace>>
  try {
    ws = await loadWorkspace(dirname(file))
  } catch {
    return undefined
  }
  // a model that cannot be read leaves the labels unknown here (`baton serve` refuses to start with it)
  const names = await readIntentNames(ws.dir).catch(() => undefined)
  return { ...knownNames(ws), intents: names?.intents, intentClasses: names?.intentClasses }
}

export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('Check and test policy files')
  policy
    .command('check')
    .argument('<file>', 'policy YAML file')
    .option('--json', 'print diagnostics as JSON lines')
    .description('Schema and CEL type errors with file:line:col, unknown variables, unreachable rules; exit 1 on error')
    .action(async (file: string, o: { json?: boolean }) => {
      const source = await readFile(file, 'utf8')
      const { checkPolicy } = await import('../policy/check.js')
      const known = (await knownFor(file)) ?? { agents: [], queues: [], tools: [] }
      const r = checkPolicy(source, file, known)
      for (const d of [
        ...r.errors.map((e) => ({ ...e, severity: 'error' })),
        ...r.warnings.map((w) => ({ ...w, severity: 'warning' })),
      ]) {
        process.stdout.write(
          o.json
            ? `${JSON.stringify(d)}\n`
            : `${d.file}:${d.line}:${d.column}: ${d.severity}: ${d.message}${d.hint ? ` (${d.hint})` : ''}\n`,
        )
      }
      if (!o.json) process.stdout.write(`${r.errors.length} error(s), ${r.warnings.length} warning(s)\n`)
      process.exitCode = r.errors.length > 0 ? 1 : 0
    })
  policy
    .command('test')
    .argument('<file>', 'policy YAML file (tests in its `tests:` or in <name>.test.yaml beside it)')
    .description('Run the test cases a policy carries: given facts → expected outcome and rule')
    .action(async (file: string) => {
      const [{ loadPolicyFile }, { runPolicyTests }] = await Promise.all([
        import('../policy/load.js'),
        import('../policy/policy-test.js'),
      ])
      const known = (await knownFor(file)) ?? { agents: [], queues: [], tools: [] }
      const { compiled, tests } = await loadPolicyFile(file, known)
      const r = runPolicyTests(compiled, tests)
      for (const f of r.failed) process.stdout.write(`FAIL ${file}:${f.line} ${f.name}: ${f.message}\n`)
      process.stdout.write(`${r.passed} passed, ${r.failed.length} failed\n`)
      process.exitCode = r.failed.length > 0 ? 1 : 0
    })
}

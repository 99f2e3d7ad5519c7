import { readFile, writeFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { BatonError } from '../errors.js'
// train.js is pure (its defaults show in --help); the codec, trainer and metrics load when a command runs
import { DEFAULT_TRAIN, type LabelledText } from '../intents/train.js'
import { collect, num, positiveInt, uint } from './args.js'

/** Reads `{text, label}` JSON lines; other fields are ignored. */
export async function readLabelled(file: string): Promise<LabelledText[]> {
  const text = await readFile(file, 'utf8')
  const out: LabelledText[] = []
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue
    let row: unknown
    try {
      row = JSON.parse(line)
    } catch {
      throw new BatonError('VALIDATION_FAILED', `${file}:${i + 1}: expected a JSON object per line`)
    }
    const { text: t, label } = (row ?? {}) as { text?: unknown; label?: unknown }
    if (typeof t !== 'string' || typeof label !== 'string') {
      throw new BatonError('VALIDATION_FAILED', `${file}:${i + 1}: expected string fields 'text' and 'label'`)
    }
    out.push({ text: t, label })
  }
  return out
}

export function registerIntentCommands(program: Command): void {
  const intents = program.command('intents').description('Train and evaluate the built-in intent classifier')
  intents
    .command('train')
    .requiredOption('--data <file...>', 'labelled JSON lines ({text, label}); several files are concatenated')
    .requiredOption('--out <file>', 'model file to write (put it in a workspace as intents.model.json)')
    .option('--oos <file>', 'out-of-scope texts (rows labelled --oos-label) to fit the unknown threshold', collect)
    .option('--oos-label <label>', 'label of out-of-scope rows; such rows in --data are not an intent', 'oos')
    .option('--validation <share>', 'held-out share for calibration', num, 0.1)
    .option('--unknown-below <p>', 'fixed unknown threshold instead of a fitted one', num)
    .option('--epochs <n>', 'SGD epochs', positiveInt, DEFAULT_TRAIN.epochs)
    .option('--lambda <l>', 'L2 regularisation', num, DEFAULT_TRAIN.lambda)
    .option('--seed <n>', 'seed of the split and the shuffling', uint, DEFAULT_TRAIN.seed)
    .option('--no-refit', 'keep the model trained without the validation split')
    .description('Train a model; prints one JSON line with the validation figures')
    .action(
      async (o: {
        data: string[]
        out: string
        oos?: string[]
        oosLabel: string
        validation: number
        unknownBelow?: number
        epochs: number
        lambda: number
        seed: number
        refit: boolean
      }) => {
        const [{ encodeModel }, { trainIntentModel }] = await Promise.all([
          import('../intents/codec.js'),
          import('../intents/pipeline.js'),
        ])
        const rows = (await Promise.all(o.data.map(readLabelled))).flat()
        const oosRows = (await Promise.all((o.oos ?? []).map(readLabelled))).flat()
        const outOfScope = [...rows, ...oosRows].filter((r) => r.label === o.oosLabel).map((r) => r.text)
        const data = rows.filter((r) => r.label !== o.oosLabel)
        const started = performance.now()
        const cpu = process.cpuUsage()
        const r = trainIntentModel(data, {
          train: { ...DEFAULT_TRAIN, epochs: o.epochs, lambda: o.lambda, seed: o.seed },
          validation: o.validation,
          outOfScope,
          unknownBelow: o.unknownBelow,
          refit: o.refit,
        })
        const trainS = (performance.now() - started) / 1000
        const used = process.cpuUsage(cpu)
        const cpuS = (used.user + used.system) / 1e6
        const text = encodeModel(r.model)
        await writeFile(o.out, text)
        process.stdout.write(
          `${JSON.stringify({
            model: o.out,
            bytes: Buffer.byteLength(text),
            examples: data.length,
            intents: r.model.labels.length,
            features: r.model.idf.length,
            out_of_scope: outOfScope.length,
            train_s: Math.round(trainS * 10) / 10,
            train_cpu_s: Math.round(cpuS * 10) / 10,
            validation: r.validation,
          })}\n`,
        )
      },
    )
  intents
    .command('eval')
    .requiredOption('--model <file>', 'model file')
    .requiredOption('--data <file>', 'labelled JSON lines ({text, label})')
    .description('Accuracy, macro-F1, per-intent figures and confusions of a model on labelled data (one JSON line)')
    .action(async (o: { model: string; data: string }) => {
      const [{ decodeModel }, { evaluateModel }] = await Promise.all([
        import('../intents/codec.js'),
        import('../intents/metrics.js'),
      ])
      const model = decodeModel(await readFile(o.model, 'utf8'), o.model)
      const data = await readLabelled(o.data)
      const r = evaluateModel(model, data)
      process.stdout.write(`${JSON.stringify(r)}\n`)
    })
  intents
    .command('calibrate')
    .requiredOption(
      '--workspace <dir>',
      'workspace with intents.model.json and a policy comparing signals.intent_class',
    )
    .requiredOption(
      '--data <file>',
      'labelled JSON lines ({text, label}) held back from training (never the test data)',
    )
    .requiredOption('--risk-map <file>', 'intent → class of each label (JSON, {intents: {...}}), the truth to bound')
    .requiredOption('--max-unsafe <rate>', "largest share of a class's messages left with the AI, in (0, 1)", num)
    .option('--confidence <p>', 'probability that the bound holds (1 − δ), in (0, 1)', num, 0.9)
    .option('--seed <n>', 'seed of the bootstrap interval of the expected automation', uint, 20261202)
    .option('--dry-run', 'print the thresholds without writing the policy')
    .description(
      "Choose the policy's class thresholds with a finite-sample bound (Learn then Test, Clopper–Pearson); writes them into policy.yaml",
    )
    .action(
      async (o: {
        workspace: string
        data: string
        riskMap: string
        maxUnsafe: number
        confidence: number
        seed: number
        dryRun?: boolean
      }) => {
        const { calibrateWorkspace } = await import('./calibrate.js')
        const r = await calibrateWorkspace({ ...o, dryRun: o.dryRun === true })
        process.stdout.write(`${JSON.stringify(r)}\n`)
      },
    )
  intents
    .command('split')
    .requiredOption('--data <file>', 'labelled JSON lines')
    .requiredOption('--train-out <file>', 'where the training part goes')
    .requiredOption('--heldout-out <file>', 'where the held-out part goes')
    .option('--share <s>', 'held-out share (stratified by label, grouped by normalised text)', num, 0.1)
    .option('--seed <n>', 'seed', uint, 20261126)
    .description('Deterministic held-out split, for figures on data a model was not trained on')
    .action(async (o: { data: string; trainOut: string; heldoutOut: string; share: number; seed: number }) => {
      const { splitValidation } = await import('../intents/split.js')
      const labelled = await readLabelled(o.data)
      const lines = (await readFile(o.data, 'utf8')).split('\n').filter((l) => l.trim() !== '')
      const rows = labelled.map((row, i) => ({ ...row, line: lines[i] ?? '' }))
      const { train, validation } = splitValidation(rows, o.share, o.seed)
      await writeFile(o.trainOut, train.map((r) => `${r.line}\n`).join(''))
      await writeFile(o.heldoutOut, validation.map((r) => `${r.line}\n`).join(''))
      process.stdout.write(`${JSON.stringify({ train: train.length, heldout: validation.length })}\n`)
    })
}

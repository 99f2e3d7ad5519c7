import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { activePolicyOf, knownNames } from '../app.js'
import { BatonError } from '../errors.js'
import { type CalibrationRow, calibrateThresholds, messagesNeeded } from '../intents/calibrate.js'
import { AI_CLASS, INTENT_CLASSES_FILE, parseIntentClasses } from '../intents/classes.js'
import { decodeModel } from '../intents/codec.js'
import { intentClassSignal } from '../intents/detector.js'
import { MODEL_FILE, readIntentClasses } from '../intents/load.js'
import { classifyProbabilities, probabilities, UNKNOWN_INTENT } from '../intents/model.js'
import { compilePolicy } from '../policy/compile.js'
import { classThresholds, setClassThresholds } from '../policy/thresholds.js'
import { analyzeMessage } from '../signals/analyze.js'
import { loadWorkspace } from '../workspace/workspace.js'
import { readLabelled } from './intents.js'

export interface CalibrateWorkspaceOptions {
  readonly workspace: string
  readonly data: string
  readonly riskMap: string
  readonly maxUnsafe: number
  readonly confidence: number
  readonly seed: number
  readonly dryRun: boolean
}

const round = (x: number, d = 6) => Math.round(x * 10 ** d) / 10 ** d

/**
 * `baton intents calibrate`: classifies every calibration message as intake does (its redacted text), chooses the
 * thresholds of the classes the policy compares (`calibrateThresholds`), and writes them into the policy. A
 * workspace without `intent-classes.json` gets the risk map as its map.
 */
export async function calibrateWorkspace(o: CalibrateWorkspaceOptions) {
  if (!(o.maxUnsafe > 0 && o.maxUnsafe < 1)) {
    throw new BatonError('VALIDATION_FAILED', `--max-unsafe: expected a rate in (0, 1), found ${o.maxUnsafe}`)
  }
  if (!(o.confidence > 0 && o.confidence < 1)) {
    throw new BatonError('VALIDATION_FAILED', `--confidence: expected a probability in (0, 1), found ${o.confidence}`)
  }
  const ws = await loadWorkspace(o.workspace)
  const modelFile = join(ws.dir, MODEL_FILE)
  const model = decodeModel(await readFile(modelFile, 'utf8'), modelFile)
  const mapText = await readFile(o.riskMap, 'utf8')
  const truth = parseIntentClasses(mapText, o.riskMap, model.labels)
  const mapFile = join(ws.dir, INTENT_CLASSES_FILE)
  let classes = await readIntentClasses(ws.dir, model.labels)
  const writeMap = classes === undefined
  if (classes === undefined) classes = parseIntentClasses(mapText, mapFile, model.labels)
  const source = await readFile(ws.policyFile, 'utf8')
  const compared = classThresholds(source, ws.policyFile)
  const targets = classes.classes.filter((c) => c !== AI_CLASS && compared.has(c))
  if (targets.length === 0) {
    throw new BatonError(
      'POLICY_INVALID',
      `${ws.policyFile}: no routing rule compares signals.intent_class.<class> >= … for a class of ${classes.file} other than '${AI_CLASS}'`,
    )
  }
  const data = await readLabelled(o.data)
  const unmapped = [...new Set(data.map((d) => d.label).filter((l) => !truth.classOf.has(l)))]
  if (unmapped.length > 0) {
    throw new BatonError(
      'VALIDATION_FAILED',
      `${o.data}: labels the risk map ${o.riskMap} does not name: ${unmapped.slice(0, 5).join(', ')}${unmapped.length > 5 ? ', …' : ''}`,
    )
  }
  const known = { ...knownNames(ws), intents: model.labels, intentClasses: classes.classes }
  const active = activePolicyOf(compilePolicy(source, ws.policyFile, known))
  const rows: CalibrationRow[] = data.map((d) => {
    const text = analyzeMessage(d.text, { terms: active.riskTerms, topics: active.topicTerms }).redactedText
    const p = probabilities(model, text)
    const top = classifyProbabilities(model, p, 1)
    return {
      cls: truth.classOf.get(d.label),
      mass: intentClassSignal(classes, model.labels, p),
      // `unknown` counts as eligible: a policy may route an unknown message by its keywords (the shop does)
      aiEligible: top.intent === UNKNOWN_INTENT || classes.classOf.get(top.top[0]!.intent) === AI_CLASS,
    }
  })
  const r = calibrateThresholds(rows, {
    maxRate: o.maxUnsafe,
    confidence: o.confidence,
    classes: targets,
    seed: o.seed,
  })
  const thresholds = Object.fromEntries(targets.map((c) => [c, r.classes[c]!.threshold]))
  const next = setClassThresholds(source, ws.policyFile, thresholds)
  // the policy must still compile as the server will read it
  compilePolicy(next.source, ws.policyFile, known)
  if (!o.dryRun) {
    if (writeMap) await writeFile(mapFile, mapText)
    await writeFile(ws.policyFile, next.source)
  }
  return {
    policy: ws.policyFile,
    version: next.version,
    written: !o.dryRun,
    ...(writeMap ? { intent_classes_written: o.dryRun ? null : mapFile } : {}),
    method: r.method,
    max_unsafe: r.max_rate,
    confidence: r.confidence,
    calibration_n: r.n,
    messages_needed_per_class: messagesNeeded(o.maxUnsafe, o.confidence),
    thresholds,
    bound: Object.fromEntries(targets.map((c) => [c, round(r.classes[c]!.bound)])),
    classes: Object.fromEntries(
      targets.map((c) => {
        const k = r.classes[c]!
        return [c, { ...k, point: round(k.point), bound: round(k.bound), p_value: round(k.p_value) }]
      }),
    ),
    expected_automation: round(r.expected_automation, 4),
    expected_automation_interval: r.expected_automation_interval.map((x) => round(x, 4)),
    ai_messages: r.ai_messages,
    seed: o.seed,
  }
}

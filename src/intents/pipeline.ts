import { countBelow, evaluateModel, round } from './metrics.js'
import { type IntentModel, probabilities, pruneWeights } from './model.js'
import { splitValidation } from './split.js'
import {
  buildVocabulary,
  DEFAULT_TRAIN,
  fitTemperature,
  type LabelledText,
  type TrainOptions,
  trainSoftmax,
} from './train.js'

export interface PipelineOptions {
  readonly train: TrainOptions
  /** Share of the data held out (grouped, stratified) to fit the temperature and the unknown threshold. */
  readonly validation: number
  /** Out-of-scope texts (e.g. CLINC150 `oos`): the unknown threshold is chosen to reject them. */
  readonly outOfScope: readonly string[]
  /** The fitted threshold lets through at least this share of in-scope validation texts. */
  readonly coverage: number
  /** A fixed unknown threshold instead of a fitted one. */
  readonly unknownBelow?: number | undefined
  /** Continue training on all the data after calibrating (the temperature and threshold carry over). */
  readonly refit: boolean
  /** Epochs of that continuation, warm-started from the calibrated model at a quarter of the learning rate. */
  readonly refitEpochs: number
  /** Share of the weights kept (largest magnitude first); the rest are zero and not stored. */
  readonly keepWeights: number
}

export const DEFAULT_PIPELINE: PipelineOptions = {
  train: DEFAULT_TRAIN,
  validation: 0.1,
  outOfScope: [],
  coverage: 0.95,
  refit: true,
  refitEpochs: 2,
  keepWeights: 0.25,
}

export interface PipelineResult {
  readonly model: IntentModel
  readonly validation: {
    readonly n: number
    readonly accuracy: number
    readonly macro_f1: number
    readonly ece_before: number
    readonly ece: number
    readonly temperature: number
    readonly unknown_below: number
    /** Out-of-scope validation texts answered `unknown` (null without any). */
    readonly oos_rejected: number | null
    readonly in_scope_accepted: number
  }
}

function topProbability(m: IntentModel, text: string): number {
  const p = probabilities(m, text)
  let best = 0
  for (const x of p) if (x > best) best = x
  return best
}

/**
 * Holds out a validation split, trains, fits the temperature (NLL) and the unknown threshold on it, and (with
 * `refit`) continues training on everything; prunes to the largest weights. Pure and deterministic for a seed.
 */
export function trainIntentModel(
  data: readonly LabelledText[],
  options: Partial<PipelineOptions> = {},
): PipelineResult {
  const o = { ...DEFAULT_PIPELINE, ...options }
  const { train, validation } = splitValidation(data, o.validation, o.train.seed)
  if (validation.length === 0) throw new TypeError('trainIntentModel: the validation split is empty')
  // one vocabulary over every text (no labels are read), so the refit can continue from the first model
  const vocabulary = buildVocabulary(
    data.map((d) => d.text),
    o.train.features,
    o.train.minDf,
  )
  const dense = trainSoftmax(train, o.train, { vocabulary })
  const first = pruneWeights(dense, o.keepWeights)
  const eceBefore = evaluateModel(first, validation).ece
  const temperature = fitTemperature(first, validation)
  const calibrated: IntentModel = { ...first, temperature }
  const inScope = validation.map((d) => topProbability(calibrated, d.text)).sort((a, b) => a - b)
  const oos = o.outOfScope.map((t) => topProbability(calibrated, t)).sort((a, b) => a - b)
  let unknownBelow = o.unknownBelow
  if (unknownBelow === undefined && oos.length > 0) {
    // the threshold that best separates in-scope from out-of-scope (balanced accuracy)
    let best = -1
    unknownBelow = 0
    for (const t of [...new Set([...inScope, ...oos])]) {
      const score = 1 - countBelow(inScope, t) / inScope.length + countBelow(oos, t) / oos.length
      if (score > best) {
        best = score
        unknownBelow = t
      }
    }
  }
  // never reject more in-scope validation texts than `coverage` allows: low confidence is the policy's call
  const cap = inScope[Math.floor((1 - o.coverage) * inScope.length)] ?? 0
  unknownBelow =
    unknownBelow === undefined ? cap : o.unknownBelow === undefined ? Math.min(unknownBelow, cap) : unknownBelow
  const report = evaluateModel({ ...calibrated, unknownBelow }, validation)
  const base = o.refit
    ? pruneWeights(
        trainSoftmax(data, { ...o.train, epochs: o.refitEpochs, eta0: o.train.eta0 / 4 }, { from: dense }),
        o.keepWeights,
      )
    : first
  const model: IntentModel = {
    ...base,
    temperature,
    unknownBelow,
    meta: { ...base.meta, validation: validation.length, refit: o.refit, keepWeights: o.keepWeights },
  }
  return {
    model,
    validation: {
      n: validation.length,
      accuracy: report.accuracy,
      macro_f1: report.macro_f1,
      ece_before: eceBefore,
      ece: report.ece,
      temperature: round(temperature),
      unknown_below: round(unknownBelow),
      oos_rejected: oos.length > 0 ? round(countBelow(oos, unknownBelow) / oos.length) : null,
      in_scope_accepted: round(1 - countBelow(inScope, unknownBelow) / inScope.length),
    },
  }
}

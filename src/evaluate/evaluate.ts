// `inrun evaluate`: which signal finds bad data best, on the user's own data. Known faults are
// planted with a seed, the model is trained once (an ordinary run directory, values and all), and
// every in-run signal and every baseline is scored on finding the planted rows — and by what
// removing its most suspicious rows does to a retrained model's test loss, measured by retraining,
// never predicted from the values. Tables are evaluated here; text (model kind gpt) runs, whose
// rows are training documents, in ./text.ts; what both share is in ./signals.ts.
import { mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Dataset, TensorDataset } from '../data/dataset.js';
import { DIGIT_PIXELS, loadDigits } from '../data/digits.js';
import { displayPath } from '../data/readers/table.js';
import { digitsCsv } from '../demo/digits-demo.js';
import { isAtomicTempName, writeFileAtomic } from '../io/atomic.js';
import { loadRun, RUN_FILES, type ValueRow, writeJsonFile } from '../io/run-dir.js';
import { loadModelTensors, readSafetensors } from '../io/safetensors.js';
import { csvField } from '../io/values-csv.js';
import type { FloatArray } from '../kernels/types.js';
import type { Sequential } from '../models/sequential.js';
import { buildModel, runLength } from '../run/build.js';
import { parseTrainConfig, type TrainConfig } from '../run/config.js';
import { loadTrainingData, type TrainingData } from '../run/data.js';
import { predictions } from '../run/suspects.js';
import { trainRun } from '../run/train-run.js';
import { fail } from '../util/errors.js';
import { errorCode, failFileError } from '../util/fs-errors.js';
import { checkFaultSpec, type FaultKind, type FaultSpec, injectFaults } from './faults.js';
import { knnShapley } from './knn-shapley.js';
import { EVALUATION_REPORT } from './report.js';
import {
  curveSignals,
  detectionResults,
  failUntrained,
  initialWeights,
  type RemovalBaseline,
  type RemovalPoint,
  randomSignal,
  removalCurves,
  type ScoredSignal,
  type SignalResult,
  type TextRemovalBaseline,
  type TextRemovalPoint,
  trainWithoutValuation,
} from './signals.js';
import { SubsetDataset } from './subset.js';
import { evaluateText, TEXT_DEFAULT_FAULTS, TEXT_REMOVAL_DEFAULT, TEXT_SIGNALS } from './text.js';
import { finalModelLoss, type TracInCheckpoint, tracInCheckpoints } from './tracin.js';

export type { RemovalPoint, SignalResult, TextRemovalPoint } from './signals.js';

export interface EvaluateOptions {
  /**
   * The run to evaluate on: a classification config, or a text (model kind gpt) config, with a
   * test set; default: the bundled digits.
   */
  config?: TrainConfig;
  /**
   * Faults to plant in the training data (default: 10% flipped labels; text: TEXT_DEFAULT_FAULTS,
   * 5% of the documents of each text kind).
   */
  faults?: FaultSpec[];
  /** Seed of the faults (default: the config's seed). */
  faultSeed?: number;
  /** Output folder: data/, run/, evaluation.json, evaluation.html (default runs/evaluate). */
  out?: string;
  /** Replace an earlier evaluation's folder. */
  force?: boolean;
  /** Fractions of the training data each removal curve drops (default 0.1, 0.2, 0.3). */
  removal?: number[];
  /** Signals whose removal curves are measured (default: REMOVAL_DEFAULT; text: TEXT_REMOVAL_DEFAULT). */
  curves?: string[];
  /** K of KNN-Shapley (default 10); tables only. */
  knnK?: number;
  /** Weights saved for TracIn-CP, evenly over the run (default 5); tables only. */
  tracinCheckpoints?: number;
  /** Progress lines. */
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/** The bundled digits as `inrun evaluate` uses them when no config is given. */
export const EVALUATE_DIGITS = {
  trainPerClass: 200,
  validationPerClass: 50,
  testPerClass: 100,
  hidden: 128,
  lr: 0.05,
  momentum: 0.9,
  batchSize: 32,
  epochs: 8,
};

/** Signals whose removal curves are measured unless `curves` says otherwise. */
export const REMOVAL_DEFAULT = [
  'aum',
  'mean_loss',
  'self_influence',
  'value',
  'knn_shapley_raw',
  'final_loss',
  'tracin_self',
  'random',
];

/** What a table evaluation and a text evaluation both hold. */
interface EvaluationCommon {
  out: string;
  runDir: string;
  data: string;
  /** Training rows (text: training documents that give at least one sequence). */
  trainSize: number;
  /** Per kind, the rows (text: documents) planted. */
  faults: { kind: FaultKind; rate: number; rows: number }[];
  signals: SignalResult[];
  seconds: { run: number; baselines: number; removal: number };
}

/** The evaluation of a table run. */
export interface Evaluation extends EvaluationCommon {
  removal: {
    /** The model retrained on all of the (faulted) training data: the curves' common start. */
    baseline: RemovalBaseline;
    curves: { name: string; points: RemovalPoint[] }[];
  };
}

/** The evaluation of a text (model kind gpt) run: its rows are training documents. */
export interface TextEvaluation extends EvaluationCommon {
  task: 'text';
  /** The documents' training sequences, and the optimizer steps of the run and of every retraining. */
  text: { sequences: number; steps: number };
  removal: {
    /** The model retrained on every (faulted) training document: the curves' common start. */
    baseline: TextRemovalBaseline;
    curves: { name: string; points: TextRemovalPoint[] }[];
  };
}

export function isTextEvaluation(e: Evaluation | TextEvaluation): e is TextEvaluation {
  return (e as TextEvaluation).task === 'text';
}

/** In-run signals from the values file, as suspicion scores (higher = more suspicious). */
const IN_RUN: { name: string; description: string; of: (v: ValueRow) => number | null }[] = [
  {
    name: 'value',
    description: '−value (second order when computed)',
    of: (v) => neg(v.secondOrder ?? v.firstOrder),
  },
  { name: 'first_order', description: '−first-order value', of: (v) => neg(v.firstOrder) },
  { name: 'normalized', description: '−per-step normalised value', of: (v) => neg(v.normalized) },
  {
    name: 'self_influence',
    description: 'in-run self-influence Σ η⟨g_i, K g_i⟩',
    of: (v) => v.selfInfluence,
  },
  { name: 'mean_loss', description: 'mean training loss when trained on', of: (v) => v.meanLoss },
  { name: 'aum', description: '−area under the margin', of: (v) => neg(v.aum) },
  {
    name: 'forgetting_events',
    description: 'forgetting events (never classified correctly: first)',
    of: (v) => (v.timesCorrect === 0 ? Number.POSITIVE_INFINITY : v.forgettingEvents),
  },
  { name: 'class_value', description: '−value against its own class', of: (v) => neg(v.classValue) },
];

/** The baselines' names, as baselineSignals gives them. */
const BASELINES = [
  'knn_shapley_raw',
  'knn_shapley_embedding',
  'final_loss',
  'tracin',
  'tracin_self',
  'random',
];

function neg(x: number | null): number | null {
  return x === null ? null : -x;
}

/** Runs the whole evaluation; see the file comment. */
export async function evaluate(options: EvaluateOptions): Promise<Evaluation | TextEvaluation> {
  const log = options.log ?? (() => {});
  const out = resolve(options.out ?? 'runs/evaluate');
  const modelKind = options.config?.model.kind;
  const text = modelKind === 'gpt';
  const faults = options.faults ?? (text ? TEXT_DEFAULT_FAULTS : [{ kind: 'label-flip', rate: 0.1 }]);
  checkFaultSpec(faults, modelKind);
  const removal = options.removal ?? [0.1, 0.2, 0.3];
  for (const f of removal)
    if (!(typeof f === 'number' && f > 0 && f < 1))
      fail(`--removal: fractions must be numbers between 0 and 1 (exclusive), got ${f}`);
  const knnK = options.knnK ?? 10;
  if (!Number.isInteger(knnK) || knnK < 1) fail(`--knn-k must be a positive integer, got ${knnK}`);
  const snapshots = options.tracinCheckpoints ?? 5;
  if (!Number.isInteger(snapshots) || snapshots < 1)
    fail(`--tracin-checkpoints must be a positive integer, got ${snapshots}`);

  const curveNames = options.curves ?? (text ? TEXT_REMOVAL_DEFAULT : REMOVAL_DEFAULT);
  const known = text ? TEXT_SIGNALS : [...IN_RUN.map((s) => s.name), ...BASELINES];
  for (const name of curveNames)
    if (!known.includes(name)) fail(`--curves: no signal "${name}"; the signals are ${known.join(', ')}`);
  if (options.config) checkEvaluable(options.config);
  await prepareOutDir(out, options.force ?? false);
  const dataDir = join(out, 'data');
  await mkdir(dataDir, { recursive: true });
  if (options.config && text)
    return evaluateText(options.config, {
      out,
      dataDir,
      faults,
      seed: options.faultSeed ?? options.config.seed,
      removal,
      curves: { names: curveNames, given: options.curves !== undefined },
      force: options.force ?? false,
      log,
      signal: options.signal,
    });
  const base = options.config ?? (await digitsConfig(dataDir));
  const clean = await loadTrainingData(base);
  const seed = options.faultSeed ?? base.seed;

  // The faulted training data, and validation and test as they were loaded (standardised with the
  // clean training statistics), all written as CSV so the run reads them like any other files.
  const trainSet = clean.train.dataset;
  const table = numericTable(trainSet, clean.classes ?? 2);
  const planted = injectFaults(table, faults, seed);
  // The features keep their names unless one would clash with the id, label or group column.
  const reserved = new Set(['id', 'label', 'group']);
  const names = clean.features.some((name) => reserved.has(name))
    ? clean.features.map((_, k) => `f${k}`)
    : clean.features;
  const files = {
    train: join(dataDir, 'train.csv'),
    validation: join(dataDir, 'validation.csv'),
    test: join(dataDir, 'test.csv'),
    faults: join(dataDir, 'faults.csv'),
  };
  await writeFileAtomic(files.train, tableCsv(trainSet, names, planted.table.features, planted.table.labels));
  await writeFileAtomic(files.validation, tableCsv(clean.validation.dataset, names));
  await writeFileAtomic(files.test, tableCsv(clean.test!.dataset, names));
  const faultRows = ['id,fault,source_id'];
  planted.faults.forEach((kind, i) => {
    if (kind)
      faultRows.push(
        [trainSet.id(i), kind, planted.sourceRow[i] === null ? '' : trainSet.id(planted.sourceRow[i]!)]
          .map((c) => csvField(c as string))
          .join(','),
      );
  });
  await writeFileAtomic(files.faults, `${faultRows.join('\n')}\n`);

  const config = parseTrainConfig({
    value: {
      ...base,
      data: {
        train: files.train,
        validation: files.validation,
        test: files.test,
        missing: 'error',
        standardize: false,
      },
      columns: {
        id: 'id',
        label: 'label',
        features: names,
        ...(hasGroups(trainSet) ? { group: 'group' } : {}),
      },
      classNames: undefined,
      // A CNN on an image folder learns its input shape from the folder; the CSV copy must name it.
      ...(base.model.kind === 'cnn' && !base.model.image && clean.train.table.image
        ? {
            model: {
              ...base.model,
              image: `${clean.train.table.image.width}x${clean.train.table.image.height}x${clean.train.table.image.channels}`,
            },
          }
        : {}),
      out: join(out, 'run'),
      checkpointEvery: 0,
    },
    flagPaths: new Map(),
  });
  const data = await loadTrainingData(config);
  const { totalSteps } = runLength(config, data.train.dataset.size);
  const snapshotSteps = new Set(
    Array.from({ length: snapshots }, (_, c) => Math.max(1, Math.round(((c + 1) * totalSteps) / snapshots))),
  );
  const checkpoints: TracInCheckpoint[] = [];
  log(`training on ${trainSet.size} examples with ${planted.faults.filter(Boolean).length} planted faults…`);
  let started = Date.now();
  const result = await trainRun({
    config,
    force: options.force ?? false,
    signal: options.signal,
    onStepWeights: (step: number, lr: number, params: FloatArray) => {
      if (snapshotSteps.has(step)) checkpoints.push({ params: params.slice(), lr });
    },
  });
  if (result.status !== 'complete') fail('inrun evaluate: the run was interrupted');
  const runSeconds = (Date.now() - started) / 1000;

  // Every signal as one score per training example, in dataset order.
  started = Date.now();
  const run = await loadRun(config.out);
  const train = data.train.dataset;
  const byId = new Map(run.values.map((v) => [String(v.id), v]));
  const signals: ScoredSignal[] = [];
  for (const s of IN_RUN) {
    const scores = new Float64Array(train.size);
    let missing = 0;
    for (let i = 0; i < train.size; i++) {
      const row = byId.get(String(train.id(i)));
      const x = row ? s.of(row) : null;
      if (x === null || Number.isNaN(x)) missing++;
      scores[i] = x ?? Number.NaN;
    }
    if (missing === train.size) continue; // not measured for this task
    if (missing > 0) failUntrained(missing, 'training examples');
    signals.push({ name: s.name, kind: 'in-run', description: s.description, scores });
  }
  const model = buildModel(config, data);
  const finalPath = join(config.out, RUN_FILES.weightsFinal);
  loadModelTensors(model, (await readSafetensors(finalPath)).tensors, finalPath);
  const params = model.params.slice();
  signals.push(...baselineSignals(model, params, data, checkpoints, knnK, seed));
  const baselineSeconds = (Date.now() - started) / 1000;

  const results = detectionResults(signals, planted.faults);

  // Removal curves by retraining without valuation, same config and seeds.
  started = Date.now();
  // Every table default is measured on classification data, so a missing one is an error too.
  const curveNamesMeasured = curveSignals(curveNames, true, signals);
  log('retraining for the removal curves…');
  const initial = await initialWeights(config, buildModel(config, data));
  const baseline = retrain(config, data, initial, null);
  const curves = removalCurves(signals, curveNamesMeasured, removal, planted.faults, (keep) =>
    retrain(config, data, initial, keep),
  );
  const evaluation: Evaluation = {
    out,
    runDir: config.out,
    data: dataDir,
    trainSize: train.size,
    faults: faults.map((f) => ({ ...f, rows: planted.faults.filter((k) => k === f.kind).length })),
    signals: results,
    removal: { baseline, curves },
    seconds: { run: runSeconds, baselines: baselineSeconds, removal: (Date.now() - started) / 1000 },
  };
  await writeJsonFile(join(out, 'evaluation.json'), evaluation);
  return evaluation;
}

/** Refuses configs evaluate cannot use, before anything is written. */
function checkEvaluable(config: TrainConfig): void {
  if (config.task === 'regression' && config.model.kind !== 'gpt')
    fail('inrun evaluate: the task is regression; evaluation needs classes to plant label faults');
  if (config.data.test === undefined && config.data.testSplit === undefined)
    fail(
      'inrun evaluate: the config has no test set; add data.test (a file) or data.testSplit (a fraction): removal curves are judged on it',
    );
}

/** What `inrun evaluate` writes into its folder. */
const EVALUATION_NAMES = new Set(['data', 'run', 'evaluation.json', EVALUATION_REPORT]);

/**
 * Creates `out`, or accepts it empty; an earlier evaluation's folder is replaced only with
 * `force`, and a folder holding anything else is never touched.
 */
async function prepareOutDir(out: string, force: boolean): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(out);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') {
      await mkdir(out, { recursive: true }).catch((e) =>
        failFileError(e, out, 'create the evaluation folder'),
      );
      return;
    }
    return failFileError(error, out, 'read the evaluation folder');
  }
  const foreign = entries.filter((name) => !EVALUATION_NAMES.has(name) && !isAtomicTempName(name));
  if (foreign.length > 0)
    fail(
      `--out ${displayPath(out)}: holds files inrun evaluate did not write (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}); choose another folder`,
    );
  if (entries.length > 0 && !force)
    fail(
      `--out ${displayPath(out)}: holds an earlier evaluation; add --force to replace it, or choose another folder`,
    );
}

/** The bundled digits written as clean train/validation/test CSV files, and a config for them. */
async function digitsConfig(dataDir: string): Promise<TrainConfig> {
  const d = EVALUATE_DIGITS;
  const digits = loadDigits({
    trainPerClass: d.trainPerClass,
    validationPerClass: d.validationPerClass,
    testPerClass: d.testPerClass,
    flipFraction: 0,
  });
  const paths = {
    train: join(dataDir, 'clean-train.csv'),
    validation: join(dataDir, 'clean-validation.csv'),
    test: join(dataDir, 'clean-test.csv'),
  };
  await writeFileAtomic(paths.train, digitsCsv(digits.train));
  await writeFileAtomic(paths.validation, digitsCsv(digits.validation));
  await writeFileAtomic(paths.test, digitsCsv(digits.test!));
  return parseTrainConfig({
    value: {
      data: paths,
      columns: {
        id: 'id',
        label: 'label',
        features: Array.from({ length: DIGIT_PIXELS }, (_, k) => `pixel_${k}`),
      },
      task: 'classification',
      classes: 10,
      model: { kind: 'mlp', hidden: [d.hidden], activation: 'relu' },
      optimizer: { kind: 'sgd', lr: d.lr, momentum: d.momentum },
      batchSize: d.batchSize,
      epochs: d.epochs,
    },
    flagPaths: new Map(),
  });
}

function numericTable(dataset: TensorDataset, classes: number) {
  const n = dataset.size;
  const all = Array.from({ length: n }, (_, i) => i);
  const features = Float64Array.from(dataset.batch(all, 'float64').input.data);
  const labels = Int32Array.from(all, (i) => dataset.label(i));
  return { features, labels, n, d: dataset.example.width, classes };
}

function hasGroups(dataset: Dataset): boolean {
  return dataset.size > 0 && dataset.group(0) !== undefined;
}

/** A dataset (optionally with replaced features and labels) as CSV: id, label, [group], features. */
function tableCsv(
  dataset: TensorDataset,
  names: string[],
  features?: Float64Array,
  labels?: Int32Array,
): string {
  const n = dataset.size;
  const d = names.length;
  const x =
    features ??
    dataset.batch(
      Array.from({ length: n }, (_, i) => i),
      'float64',
    ).input.data;
  const groups = hasGroups(dataset);
  const lines = [['id', 'label', ...(groups ? ['group'] : []), ...names].map(csvField).join(',')];
  for (let i = 0; i < n; i++) {
    const cells: (string | number | undefined)[] = [
      String(dataset.id(i)),
      labels ? labels[i] : dataset.label(i),
    ];
    if (groups) cells.push(dataset.group(i));
    for (let k = 0; k < d; k++) cells.push(x[i * d + k]);
    lines.push(cells.map(csvField).join(','));
  }
  return `${lines.join('\n')}\n`;
}

/** The baselines users know, computed here: KNN-Shapley, final-model loss, TracIn-CP, random. */
function baselineSignals(
  model: Sequential,
  params: FloatArray,
  data: TrainingData,
  checkpoints: TracInCheckpoint[],
  k: number,
  seed: number,
): ScoredSignal[] {
  const train = data.train.dataset;
  const validation = data.validation.dataset;
  const signals: ScoredSignal[] = [];
  const points = (dataset: Dataset, features: FloatArray) => ({
    features,
    labels: Int32Array.from({ length: dataset.size }, (_, i) => (dataset as TensorDataset).label(i)),
    n: dataset.size,
    d: features.length / dataset.size,
  });
  const raw = (dataset: Dataset) =>
    dataset.batch(
      Array.from({ length: dataset.size }, (_, i) => i),
      'float64',
    ).input.data;
  const knnRaw = knnShapley(points(train, raw(train)), points(validation, raw(validation)), k);
  signals.push({
    name: 'knn_shapley_raw',
    kind: 'baseline',
    description: `−KNN-Shapley (K=${k}) on the features`,
    scores: negate(knnRaw),
  });
  if (model.layers.length > 1) {
    const embed = (dataset: Dataset) => penultimate(model, params, dataset);
    const knnEmbed = knnShapley(points(train, embed(train)), points(validation, embed(validation)), k);
    signals.push({
      name: 'knn_shapley_embedding',
      kind: 'baseline',
      description: `−KNN-Shapley (K=${k}) on the trained model's last hidden layer`,
      scores: negate(knnEmbed),
    });
  }
  signals.push({
    name: 'final_loss',
    kind: 'baseline',
    description: 'loss under the final model',
    scores: finalModelLoss(model, params, train),
  });
  const tracin = tracInCheckpoints(model, checkpoints, train, validation);
  signals.push({
    name: 'tracin',
    kind: 'baseline',
    description: `−TracIn-CP influence (${checkpoints.length} checkpoints)`,
    scores: negate(tracin.influence),
  });
  signals.push({
    name: 'tracin_self',
    kind: 'baseline',
    description: `TracIn-CP self-influence (${checkpoints.length} checkpoints)`,
    scores: tracin.selfInfluence,
  });
  signals.push(randomSignal(train.size, seed));
  return signals;
}

function negate(x: Float64Array): Float64Array {
  return x.map((v) => -v);
}

/** The input of the model's last layer (the last hidden layer's activations), per example. */
function penultimate(model: Sequential, params: FloatArray, dataset: Dataset): Float64Array {
  const out: number[] = [];
  const chunk = 256;
  for (let start = 0; start < dataset.size; start += chunk) {
    const indices = Array.from({ length: Math.min(chunk, dataset.size - start) }, (_, r) => start + r);
    const batch = dataset.batch(indices, model.dtype);
    const pass = model.forward(batch.input, batch.targets, params);
    for (const x of pass.tapes[pass.tapes.length - 1].input.data) out.push(x);
  }
  return Float64Array.from(out);
}

/**
 * Trains without valuation on the kept examples (all when null) for the config's epochs over
 * them; test loss and accuracy at the end.
 */
function retrain(
  config: TrainConfig,
  data: TrainingData,
  initial: FloatArray,
  keep: number[] | null,
): { testLoss: number; testAccuracy: number } {
  const train = keep ? new SubsetDataset(data.train.dataset, keep) : data.train.dataset;
  const model = buildModel(config, data);
  trainWithoutValuation(config, model, initial, train, runLength(config, train.size).totalSteps);
  const test = data.test!.dataset;
  const losses = finalModelLoss(model, model.params, test);
  const all = Array.from({ length: test.size }, (_, i) => i);
  const { predicted } = predictions(model, model.params, test, all);
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < test.size; i++) {
    loss += losses[i];
    if (predicted[i] === test.label(i)) correct++;
  }
  return { testLoss: loss / test.size, testAccuracy: correct / test.size };
}

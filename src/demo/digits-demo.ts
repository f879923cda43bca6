/**
 * The digits demo: train a small MLP on bundled handwritten digits, some with flipped labels, value
 * every training example in-run, and check that the negative values find the flipped labels.
 *
 * It is an ordinary run: the digits are written as CSV files to <out>/data, trainRun trains on them
 * into the run directory <out>/run (which `inrun report` and `inrun curate` accept), and the results
 * are read back from there. <out>/data/flipped.csv lists the flipped ids with their true labels.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DIGIT_CLASSES, DIGIT_SIDE, loadDigits } from '../data/digits.js';
import { parseCsv } from '../data/readers/csv.js';
import { displayPath } from '../data/readers/table.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadRun, RUN_FILES } from '../io/run-dir.js';
import type { KernelChoice } from '../kernels/index.js';
import { auroc } from '../metrics.js';
import { parseTrainConfig } from '../run/config.js';
import { runSeeds } from '../run/data.js';
import { trainRun } from '../run/train-run.js';
import { checkKnownKeys, checkNumber, describe, fail } from '../util/errors.js';
import { DIGITS_COLUMNS, DIGITS_DEMO_DEFAULTS, DIGITS_DEMO_FILES, digitsCsv } from './digits-data.js';
import { DEMO_DATA_DIR, DEMO_RUN_DIR, shellPath } from './shared.js';

export {
  DIGITS_COLUMNS,
  DIGITS_DEMO_DEFAULTS,
  DIGITS_DEMO_FILES,
  digitsCsv,
  PIXEL_COLUMNS,
} from './digits-data.js';

export interface DigitsDemoOptions {
  /**
   * mlp (784-128-10, the default) or cnn (LeNet-5 on the 28×28 images, trained with Adam and
   * valued with momentum credit, DIGITS_DEMO_DEFAULTS.cnn; its valued steps take about ten times
   * the MLP's, so each step values against 100 sampled validation digits).
   */
  model?: 'mlp' | 'cnn';
  /** 1: first-order values; 2: second-order values (the default; cnn: 1). */
  order?: 1 | 2;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  /**
   * The run's seed (0 to 2^32 − 1): the flipped labels use its split seed, the initial weights and
   * the data order its model and order seeds (runSeeds in src/run/data.ts).
   */
  seed?: number;
  /** Folder for the data files (<out>/data) and the run directory (<out>/run); default runs/demo. */
  out?: string;
  kernels?: KernelChoice;
  /** Print only the results (AUROC, efficiency, where the values went). */
  quiet?: boolean;
  trainPerClass?: number;
  validationPerClass?: number;
  flipFraction?: number;
}

/** Validation digits sampled per step when the demo trains a CNN (valuation.validationBatch). */
const CNN_VALIDATION_BATCH = 100;

const OPTION_KEYS = [
  'model',
  'order',
  'epochs',
  'batchSize',
  'lr',
  'seed',
  'out',
  'kernels',
  'quiet',
  'trainPerClass',
  'validationPerClass',
  'flipFraction',
];

export interface HarmfulExample {
  id: string;
  observedLabel: number;
  originalLabel: number;
  flipped: boolean;
  value: number;
}

export interface DigitsDemoResult {
  /** The run directory (<out>/run): `inrun report <runDir> --image 28x28` shows it. */
  runDir: string;
  /** The data files' folder (<out>/data). */
  dataDir: string;
  kernels: string;
  steps: number;
  trainSize: number;
  validationSize: number;
  flippedCount: number;
  /**
   * AUROC of −value as a detector of flipped labels (value: second order when order 2; cnn: first
   * order + momentum credit); NaN without flips.
   */
  auroc: number;
  /** What `auroc` ranked by, as the printed lines name it. */
  valueName: string;
  /** AUROC of the area under the margin (suspects.csv's order) for the same; NaN without flips. */
  aumAuroc: number;
  /** max |Σ values − Taylor utility| over the steps (zero up to rounding). */
  maxEfficiencyResidual: number;
  /** The same relative to the largest |Taylor utility| of a step. */
  relativeEfficiencyResidual: number;
  initialValidationLoss: number;
  finalValidationLoss: number;
  /** The 10 lowest-valued examples, most harmful first. */
  harmful: HarmfulExample[];
  /** Share of flipped labels among the round(flipFraction · n) lowest-valued examples. */
  flippedAmongLowest: number;
  /** values.csv of the run directory. */
  csvPath: string;
  trainingSeconds: number;
}

/** Runs the demo; `log` gets the printable lines (none but the results when `quiet`). */
export async function runDigitsDemo(
  options: DigitsDemoOptions = {},
  log: (line: string) => void = console.log,
): Promise<DigitsDemoResult> {
  checkKnownKeys('runDigitsDemo', options, OPTION_KEYS);
  const d = DIGITS_DEMO_DEFAULTS;
  const modelKind = options.model ?? 'mlp';
  if (modelKind !== 'mlp' && modelKind !== 'cnn')
    fail(`model must be mlp or cnn, got ${describe(modelKind)}`);
  const cnn = modelKind === 'cnn';
  const order = options.order ?? (cnn ? d.cnn.order : d.order);
  if (order !== 1 && order !== 2) fail(`order must be 1 or 2, got ${describe(order)}`);
  const epochs = checkNumber('epochs', options.epochs ?? (cnn ? d.cnn.epochs : d.epochs), {
    min: 1,
    integer: true,
  });
  const batchSize = checkNumber('batchSize', options.batchSize ?? d.batchSize, { min: 1, integer: true });
  const lr = checkNumber('lr', options.lr ?? (cnn ? d.cnn.lr : d.lr), { min: 0 });
  if (lr === 0) fail('lr must be > 0');
  const seed = checkNumber('seed', options.seed ?? d.seed, { min: 0, max: 0xffffffff, integer: true });
  const out = options.out ?? d.out;
  if (typeof out !== 'string' || out === '') fail(`out must be a folder path, got ${describe(out)}`);
  const kernels = options.kernels ?? d.kernels;
  if (!['auto', 'native', 'portable', 'wasm'].includes(kernels))
    fail(`kernels must be auto, native, portable or wasm, got ${describe(kernels)}`);
  const quiet = options.quiet ?? false;
  const say = quiet ? () => {} : log;

  // The flips take the run's split seed (a run with a validation file splits nothing), so the
  // flips, initial weights and data order are three independent streams of the one seed.
  const digits = loadDigits({
    trainPerClass: options.trainPerClass ?? d.trainPerClass,
    validationPerClass: options.validationPerClass ?? d.validationPerClass,
    flipFraction: options.flipFraction ?? d.flipFraction,
    seed: runSeeds(seed).split,
  });
  const { train: data, validation, flipped, originalLabels } = digits;
  const flippedCount = flipped.filter(Boolean).length;
  if (batchSize > data.size)
    fail(`batch size (${batchSize}) is larger than the training data (${data.size} examples)`);

  const dataDir = resolve(out, DEMO_DATA_DIR);
  const runDir = resolve(out, DEMO_RUN_DIR);
  const files = {
    train: join(dataDir, DIGITS_DEMO_FILES.train),
    validation: join(dataDir, DIGITS_DEMO_FILES.validation),
    flipped: join(dataDir, DIGITS_DEMO_FILES.flipped),
  };
  await mkdir(dataDir, { recursive: true });
  await writeFileAtomic(files.train, digitsCsv(data));
  await writeFileAtomic(files.validation, digitsCsv(validation));
  const flippedRows = ['id,label,original_label'];
  for (let i = 0; i < data.size; i++)
    if (flipped[i]) flippedRows.push(`${data.id(i)},${data.label(i)},${originalLabels[i]}`);
  await writeFileAtomic(files.flipped, `${flippedRows.join('\n')}\n`);

  const config = parseTrainConfig({
    value: {
      data: { train: files.train, validation: files.validation },
      columns: DIGITS_COLUMNS,
      task: 'classification',
      classes: DIGIT_CLASSES,
      model: cnn
        ? { kind: 'cnn', architecture: 'lenet', image: `${DIGIT_SIDE}x${DIGIT_SIDE}x1` }
        : { kind: 'mlp', hidden: [d.hidden], activation: 'relu' },
      ...(cnn ? { validationBatch: CNN_VALIDATION_BATCH, momentumCredit: true } : {}),
      optimizer: cnn ? { kind: 'adam', lr } : { kind: 'sgd', lr, momentum: d.momentum },
      batchSize,
      epochs,
      order,
      seed,
      out: runDir,
      // A demo run is rerun, not resumed.
      checkpointEvery: 0,
      kernels,
    },
    flagPaths: new Map(),
  });

  const every = Math.max(1, Math.round((Math.ceil(data.size / batchSize) * epochs) / 10));
  let lossSum = 0;
  let lossCount = 0;
  let kernelText = '';
  const stepLine = (done: number, total: number, validationLoss: number) =>
    `step ${String(done).padStart(String(total).length)}/${total}  ` +
    `train loss ${(lossSum / lossCount).toFixed(4)}  validation loss ${validationLoss.toFixed(4)}`;
  const run = await trainRun({
    config,
    // The demo replaces its own earlier run.
    force: true,
    onEvent: (event) => {
      if (event.type === 'start') {
        kernelText = event.kernels;
        say(`kernels: ${event.kernels}`);
        say(
          `data: ${data.size} training digits (${flippedCount} labels flipped, ${formatPercent(flippedCount / data.size)}), ` +
            `${validation.size} clean validation digits, in ${displayPath(dataDir)}`,
        );
        say(
          `model: ${cnn ? `LeNet-5 cnn on 28×28 images, values against ${CNN_VALIDATION_BATCH} sampled validation digits per step` : `mlp 784-${d.hidden}-10`} (${event.parameters} parameters); ${cnn ? `adam lr ${lr}, momentum credit` : `sgd lr ${lr} momentum ${d.momentum}`}; ` +
            `${epochs} epoch${epochs === 1 ? '' : 's'} of batches of ${batchSize}; order-${order} values`,
        );
      } else if (event.type === 'step') {
        lossSum += event.trainLoss;
        lossCount += 1;
        // The last step's line waits for the loss at the final weights (known once the run is done).
        if (event.step % every !== 0 || event.step === event.totalSteps) return;
        say(stepLine(event.step, event.totalSteps, event.validationLoss ?? Number.NaN));
        lossSum = 0;
        lossCount = 0;
      } else if (event.type === 'notice') say(event.message);
      else if (event.type === 'warning') say(`warning: ${event.warning.message}`);
    },
  });
  if (run.status !== 'complete') fail(run.message ?? `${displayPath(runDir)}: the run did not complete`);
  say(stepLine(run.totalSteps, run.totalSteps, run.summary!.finalValidationLoss));

  // The results come from the files alone: the run directory and flipped.csv.
  const loaded = await loadRun(runDir);
  const { values, trace } = loaded;
  const flips = await readFlipped(files.flipped);
  // With momentum credit (the CNN) an example's value is its first-order value plus the credit
  // for what it later moved the weights through Adam's first moment.
  const credited = values.some((row) => row.momentumCredit !== null);
  const main = (row: (typeof values)[number]) =>
    credited ? row.firstOrder + row.momentumCredit! : order === 2 ? row.secondOrder! : row.firstOrder;
  // Every training example is seen at least once (epochs ≥ 1), so the values cover them all.
  const rows = values.map((row) => {
    const id = String(row.id);
    // The group column is the observed label.
    const observedLabel = Number(row.group);
    const original = flips.get(id);
    return {
      id,
      observedLabel,
      originalLabel: original ?? observedLabel,
      flipped: original !== undefined,
      value: main(row),
      aum: row.aum ?? Number.NaN,
    };
  });
  // AUROC needs flipped and clean examples both (a library caller may set flipFraction 0 or 1).
  const score =
    flippedCount > 0 && flippedCount < data.size
      ? auroc(
          rows.map((r) => -r.value),
          rows.map((r) => r.flipped),
        )
      : Number.NaN;
  const aumScore =
    flippedCount > 0 && flippedCount < data.size && rows.every((r) => !Number.isNaN(r.aum))
      ? auroc(
          rows.map((r) => -r.aum),
          rows.map((r) => r.flipped),
        )
      : Number.NaN;

  const ranked = [...rows].sort((a, b) => a.value - b.value);
  const harmful = ranked.slice(0, 10);
  const lowest = ranked.slice(0, flippedCount);
  const flippedAmongLowest =
    flippedCount === 0 ? Number.NaN : lowest.filter((r) => r.flipped).length / flippedCount;

  let maxResidual = 0;
  let maxUtility = 0;
  for (const row of trace) {
    maxResidual = Math.max(maxResidual, Math.abs(row.efficiencyResidual));
    maxUtility = Math.max(maxUtility, Math.abs(row.secondOrderUtility ?? row.firstOrderUtility));
  }
  const relativeResidual = maxUtility > 0 ? maxResidual / maxUtility : 0;
  const trainingSeconds = loaded.manifest.times.trainingSeconds;
  const csvPath = join(runDir, RUN_FILES.valuesCsv);

  const valueName = credited
    ? 'first-order value + momentum credit'
    : order === 2
      ? 'second-order value'
      : 'first-order value';
  say(`trained ${run.totalSteps} steps in ${trainingSeconds.toFixed(1)} s`);
  say('');
  say(`10 most harmful training examples (lowest ${valueName}):`);
  const idWidth = Math.max(2, ...harmful.map((h) => h.id.length));
  say(`  ${'id'.padEnd(idWidth)}  observed  original  flipped  value`);
  for (const h of harmful) {
    say(
      `  ${h.id.padEnd(idWidth)}  ${String(h.observedLabel).padStart(8)}  ${String(h.originalLabel).padStart(8)}  ` +
        `${(h.flipped ? 'yes' : 'no').padStart(7)}  ${h.value.toExponential(3)}`,
    );
  }
  say('');
  log(
    `AUROC of -${credited ? '(value + momentum credit)' : 'value'} for finding the ${flippedCount} flipped labels: ${Number.isNaN(score) ? 'n/a' : score.toFixed(4)}`,
  );
  say(
    `flipped labels among the ${flippedCount} lowest-valued examples: ${formatPercent(flippedAmongLowest)}`,
  );
  log(
    `AUROC of the area under the margin (suspects.csv's order; inrun evaluate compares every signal): ${Number.isNaN(aumScore) ? 'n/a' : aumScore.toFixed(4)}`,
  );
  log(
    `efficiency: max |sum of values - Taylor utility| over ${trace.length} steps = ${maxResidual.toExponential(2)} ` +
      `(${relativeResidual.toExponential(2)} of the largest step utility)`,
  );
  log(
    `values of ${values.length} training examples written to ${displayPath(csvPath)} (run directory ${displayPath(runDir)})`,
  );
  say('');
  say('next:');
  say(`  inrun report ${shellPath(runDir)} --image 28x28   # HTML report, each example shown as its image`);
  say(
    `  inrun curate ${shellPath(runDir)} --percentile ${formatShare(flippedCount / data.size)}   # retrain without the lowest-valued examples, compare with random removal`,
  );

  return {
    runDir,
    dataDir,
    kernels: kernelText.startsWith('native') ? 'native' : kernelText.startsWith('wasm') ? 'wasm' : 'portable',
    steps: run.totalSteps,
    trainSize: data.size,
    validationSize: validation.size,
    flippedCount,
    auroc: score,
    valueName,
    aumAuroc: aumScore,
    maxEfficiencyResidual: maxResidual,
    relativeEfficiencyResidual: relativeResidual,
    initialValidationLoss: trace[0].validationLossBefore,
    finalValidationLoss: trace[trace.length - 1].validationLossAfter,
    harmful,
    flippedAmongLowest,
    csvPath,
    trainingSeconds,
  };
}

/** flipped.csv: the original label of each flipped id. */
async function readFlipped(path: string): Promise<Map<string, number>> {
  const { rows } = parseCsv(await readFile(path, 'utf8'), path);
  return new Map(rows.map(({ cells }) => [String(cells.id), Number(cells.original_label)]));
}

function formatPercent(x: number): string {
  return Number.isNaN(x) ? 'n/a' : `${(100 * x).toFixed(1)}%`;
}

/** A share as a percentile for `inrun curate --percentile` (0 < p < 100). */
function formatShare(x: number): string {
  return String(Math.min(99, Math.max(1, Math.round(100 * x))));
}

/**
 * The digits demo: train a small MLP on bundled handwritten digits, some with flipped labels, value
 * every training example in-run, and check that the negative values find the flipped labels.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadDigits } from '../data/digits.js';
import { writeFileAtomic } from '../io/atomic.js';
import { valuesToCsv } from '../io/values-csv.js';
import type { KernelChoice, NativeKernels } from '../kernels/index.js';
import { auroc } from '../metrics.js';
import { mlp } from '../models/builders.js';
import { sgd } from '../optim/sgd.js';
import type { LedgerEntry } from '../shapley/ledger.js';
import { Trainer } from '../train/trainer.js';
import { checkKnownKeys, checkNumber, describe, fail } from '../util/errors.js';
import { Rng } from '../util/rng.js';

export interface DigitsDemoOptions {
  /** 1: first-order values; 2: second-order values (the default). */
  order?: 1 | 2;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  /** One seed for everything random: the flipped labels, the initial weights, the data order. */
  seed?: number;
  /** Folder for values.csv (created if missing; default runs/demo). */
  out?: string;
  kernels?: KernelChoice;
  /** Print only the results (AUROC, efficiency, where the values went). */
  quiet?: boolean;
  trainPerClass?: number;
  validationPerClass?: number;
  flipFraction?: number;
}

/**
 * The defaults the demo was tuned with. The values find flipped labels best while the model is
 * still learning the clean signal (validation accuracy up to ~80%): once it fits further, each
 * flipped example's (large) gradient meets a small, step-to-step fluctuating validation gradient
 * and its per-step values turn noisy. A small rate, large batches and 8 epochs give AUROC ≈ 0.93–0.96
 * over seeds 0–4 in a few seconds; lr 0.05 with batch 32 fits faster and gives AUROC ≈ 0.7.
 */
export const DIGITS_DEMO_DEFAULTS = {
  order: 2 as 1 | 2,
  epochs: 8,
  batchSize: 128,
  lr: 0.005,
  momentum: 0.9,
  hidden: 128,
  seed: 0,
  out: 'runs/demo',
  kernels: 'auto' as KernelChoice,
  trainPerClass: 200,
  validationPerClass: 50,
  flipFraction: 0.1,
};

const OPTION_KEYS = [
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
  kernels: string;
  steps: number;
  trainSize: number;
  validationSize: number;
  flippedCount: number;
  /** AUROC of −value as a detector of flipped labels (value: second order when order 2); NaN without flips. */
  auroc: number;
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
  const order = options.order ?? d.order;
  if (order !== 1 && order !== 2) fail(`order must be 1 or 2, got ${describe(order)}`);
  const epochs = checkNumber('epochs', options.epochs ?? d.epochs, { min: 1, integer: true });
  const batchSize = checkNumber('batchSize', options.batchSize ?? d.batchSize, { min: 1, integer: true });
  const lr = checkNumber('lr', options.lr ?? d.lr, { min: 0 });
  if (lr === 0) fail('lr must be > 0');
  const seed = checkNumber('seed', options.seed ?? d.seed, { integer: true });
  const out = options.out ?? d.out;
  if (typeof out !== 'string' || out === '') fail(`out must be a folder path, got ${describe(out)}`);
  const kernels = options.kernels ?? d.kernels;
  if (!['auto', 'native', 'portable'].includes(kernels))
    fail(`kernels must be auto, native or portable, got ${describe(kernels)}`);
  const quiet = options.quiet ?? false;
  const say = quiet ? () => {} : log;

  // Independent streams for the three random choices, all from the one seed.
  const seeds = new Rng(seed);
  const dataSeed = seeds.nextUint32();
  const modelSeed = seeds.nextUint32();
  const orderSeed = seeds.nextUint32();

  const digits = loadDigits({
    trainPerClass: options.trainPerClass ?? d.trainPerClass,
    validationPerClass: options.validationPerClass ?? d.validationPerClass,
    flipFraction: options.flipFraction ?? d.flipFraction,
    seed: dataSeed,
  });
  const { train: data, validation, flipped, originalLabels } = digits;
  const flippedCount = flipped.filter(Boolean).length;
  if (batchSize > data.size)
    fail(`batch size (${batchSize}) is larger than the training data (${data.size} examples)`);

  const model = mlp({ inputs: 784, hidden: [d.hidden], outputs: 10, seed: modelSeed, kernels });
  const kernelText =
    model.kernels.kind === 'native'
      ? `native (OpenBLAS, ${(model.kernels as NativeKernels).getThreads()} threads)`
      : 'portable (TypeScript)';
  say(`kernels: ${kernelText}`);
  say(
    `data: ${data.size} training digits (${flippedCount} labels flipped, ${formatPercent(flippedCount / data.size)}), ` +
      `${validation.size} clean validation digits`,
  );
  say(
    `model: mlp 784-${d.hidden}-10 (${model.parameterCount} parameters); sgd lr ${lr} momentum ${d.momentum}; ` +
      `${epochs} epoch${epochs === 1 ? '' : 's'} of batches of ${batchSize}; order-${order} values`,
  );

  const started = performance.now();
  const perEpoch = Math.ceil(data.size / batchSize);
  const totalSteps = perEpoch * epochs;
  const every = Math.max(1, Math.round(totalSteps / 10));
  let lossSum = 0;
  let lossCount = 0;
  const trainer = new Trainer({
    model,
    optimizer: sgd({ lr, momentum: d.momentum }),
    data,
    batchSize,
    epochs,
    seed: orderSeed,
    valuation: { validation, order },
  });
  const valuer = trainer.valuer!;
  const { ledger, trace } = valuer;
  while (!trainer.done) {
    const report = trainer.runStep();
    lossSum += report.trainLoss;
    lossCount += 1;
    const done = report.step + 1;
    if (done % every !== 0 && done !== report.totalSteps) continue;
    const last = trace[trace.length - 1];
    // After the final step the valuer has evaluated the final weights; before it, the latest
    // validation loss is the one at the weights this step started from.
    const validationLoss = Number.isNaN(last.validationLossAfter)
      ? last.validationLossBefore
      : last.validationLossAfter;
    say(
      `step ${String(done).padStart(String(report.totalSteps).length)}/${report.totalSteps}  ` +
        `train loss ${(lossSum / lossCount).toFixed(4)}  validation loss ${validationLoss.toFixed(4)}`,
    );
    lossSum = 0;
    lossCount = 0;
  }
  const trainingSeconds = (performance.now() - started) / 1000;

  const indexOf = new Map<string, number>();
  for (let i = 0; i < data.size; i++) indexOf.set(String(data.id(i)), i);
  const index = (entry: LedgerEntry) => indexOf.get(String(entry.id))!;

  // Every training example is seen at least once (epochs ≥ 1), so the ledger covers them all.
  const entries = ledger.all();
  const scores = entries.map((entry) => -ledger.value(entry));
  const isFlipped = entries.map((entry) => flipped[index(entry)]);
  // AUROC needs flipped and clean examples both (a library caller may set flipFraction 0 or 1).
  const score = flippedCount > 0 && flippedCount < data.size ? auroc(scores, isFlipped) : Number.NaN;

  const ranked = ledger.ranked();
  const harmful = ranked.slice(0, 10).map((entry) => {
    const i = index(entry);
    return {
      id: String(entry.id),
      observedLabel: data.label(i),
      originalLabel: originalLabels[i],
      flipped: flipped[i],
      value: ledger.value(entry),
    };
  });
  const lowest = ranked.slice(0, flippedCount);
  const flippedAmongLowest =
    flippedCount === 0 ? Number.NaN : lowest.filter((e) => flipped[index(e)]).length / flippedCount;

  let maxResidual = 0;
  let maxUtility = 0;
  for (const row of trace) {
    maxResidual = Math.max(maxResidual, Math.abs(row.efficiencyResidual));
    maxUtility = Math.max(maxUtility, Math.abs(row.secondOrderUtility ?? row.firstOrderUtility));
  }
  const relativeResidual = maxUtility > 0 ? maxResidual / maxUtility : 0;

  await mkdir(out, { recursive: true });
  const csvPath = join(out, 'values.csv');
  await writeFileAtomic(
    csvPath,
    valuesToCsv(ledger, {
      observed_label: (entry) => data.label(index(entry)),
      original_label: (entry) => originalLabels[index(entry)],
      flipped: (entry) => flipped[index(entry)],
    }),
  );

  const valueName = order === 2 ? 'second-order value' : 'first-order value';
  say(`trained ${totalSteps} steps in ${trainingSeconds.toFixed(1)} s`);
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
    `AUROC of -value for finding the ${flippedCount} flipped labels: ${Number.isNaN(score) ? 'n/a' : score.toFixed(4)}`,
  );
  say(
    `flipped labels among the ${flippedCount} lowest-valued examples: ${formatPercent(flippedAmongLowest)}`,
  );
  log(
    `efficiency: max |sum of values - Taylor utility| over ${trace.length} steps = ${maxResidual.toExponential(2)} ` +
      `(${relativeResidual.toExponential(2)} of the largest step utility)`,
  );
  log(`values of ${ledger.size} training examples written to ${csvPath}`);

  return {
    kernels: model.kernels.kind,
    steps: totalSteps,
    trainSize: data.size,
    validationSize: validation.size,
    flippedCount,
    auroc: score,
    maxEfficiencyResidual: maxResidual,
    relativeEfficiencyResidual: relativeResidual,
    initialValidationLoss: trace[0].validationLossBefore,
    finalValidationLoss: trace[trace.length - 1].validationLossAfter,
    harmful,
    flippedAmongLowest,
    csvPath: resolve(csvPath),
    trainingSeconds,
  };
}

function formatPercent(x: number): string {
  return Number.isNaN(x) ? 'n/a' : `${(100 * x).toFixed(1)}%`;
}

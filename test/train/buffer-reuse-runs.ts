// Small valued training runs for test/train/buffer-reuse.test.ts, each reduced to the bits of every
// number it produced. Run directly (node --import tsx test/train/buffer-reuse-runs.ts name…), it
// prints those fingerprints as JSON: the test compares them with the same runs made in its own
// process, interleaved with other models and trainers.

import { fileURLToPath } from 'node:url';
import { TensorDataset } from '../../src/data/dataset.js';
import { mlp } from '../../src/models/builders.js';
import { cnn } from '../../src/models/cnn.js';
import { gpt } from '../../src/models/gpt.js';
import type { Sequential } from '../../src/models/sequential.js';
import { adamw } from '../../src/optim/adam.js';
import { sgd } from '../../src/optim/sgd.js';
import { TextSequenceDataset } from '../../src/text/sequences.js';
import { type StepReport, Trainer } from '../../src/train/trainer.js';
import { Rng } from '../../src/util/rng.js';

/** Steps of each run: enough for every buffer to be reused at least twice. */
export const STEPS = 3;

function blobs(n: number, width: number, classes: number, seed: number, name: string): TensorDataset {
  const rng = new Rng(seed);
  const features = new Float32Array(n * width);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = rng.int(classes);
    labels.push(y);
    for (let k = 0; k < width; k++) features[i * width + k] = rng.normal() + (k % classes === y ? 1 : 0);
  }
  return new TensorDataset({ name, features, width, labels, labelKind: 'class' });
}

const TINY_GPT = { vocabSize: 11, context: 8, layers: 2, heads: 2, width: 16 };

function sequences(name: string, count: number, seed: number): TextSequenceDataset {
  const rng = new Rng(seed);
  const context = TINY_GPT.context;
  return new TextSequenceDataset(
    name,
    Array.from({ length: count }, (_, k) => {
      // Some sequences end early: their padded positions are ignored tokens.
      const length = k % 3 === 0 ? context - 2 : context;
      const tokens = Int32Array.from({ length: length + 1 }, () => rng.int(TINY_GPT.vocabSize));
      const inputs = new Int32Array(context);
      const targets = new Int32Array(context).fill(-1);
      inputs.set(tokens.subarray(0, length));
      targets.set(tokens.subarray(1));
      return {
        id: `${name}-${k}#0`,
        documentId: `${name}-${k}`,
        source: 'random',
        offset: 0,
        inputs,
        targets,
      };
    }),
    context,
  );
}

/**
 * The runs, each with a valuation that uses every pass the valuer can run: order 2 (an HVP per
 * step), per-validation columns with their own passes, a sampled validation set (two halves alive
 * together), momentum credit (training passes replayed steps later), class values, Adam's
 * linearisation gap, dropout, tied weights, convolutions, GroupNorm and residual blocks.
 */
export const RUNS: Record<string, (models?: (model: Sequential) => Sequential) => Trainer> = {
  mlp: (wrap = (m) => m) =>
    new Trainer({
      model: wrap(mlp({ inputs: 6, hidden: [16, 8], outputs: 3, seed: 3 })),
      optimizer: sgd({ lr: 0.1, momentum: 0.9, weightDecay: 1e-3, clipNorm: 5 }),
      data: blobs(40, 6, 3, 1, 'mlp training data'),
      batchSize: 16,
      steps: STEPS,
      seed: 4,
      valuation: { validation: blobs(12, 6, 3, 2, 'mlp validation'), order: 2, classValues: true },
    }),
  'mlp-sampled-momentum-credit': (wrap = (m) => m) =>
    new Trainer({
      model: wrap(mlp({ inputs: 6, hidden: [8], outputs: 3, seed: 5 })),
      optimizer: sgd({ lr: 0.1, momentum: 0.8 }),
      data: blobs(40, 6, 3, 3, 'mlp training data'),
      batchSize: 8,
      steps: STEPS,
      seed: 6,
      valuation: {
        validation: blobs(20, 6, 3, 4, 'mlp validation'),
        order: 2,
        validationBatch: 9,
        momentumCredit: true,
      },
    }),
  gpt: (wrap = (m) => m) =>
    new Trainer({
      model: wrap(gpt({ ...TINY_GPT, seed: 7 })),
      optimizer: adamw({ lr: 1e-2, weightDecay: 0.1, clipNorm: 1 }),
      data: sequences('gpt training data', 24, 8),
      batchSize: 6,
      steps: STEPS,
      seed: 9,
      valuation: { validation: sequences('gpt validation', 5, 10), order: 2, gapSamples: 2 },
    }),
  'cnn-lenet': (wrap = (m) => m) =>
    new Trainer({
      model: wrap(
        cnn({
          input: { channels: 1, height: 12, width: 12 },
          classes: 3,
          kind: 'lenet',
          width: 2,
          kernel: 3,
          hidden: [8],
          dropout: 0.25,
          seed: 11,
        }),
      ),
      optimizer: sgd({ lr: 0.05, momentum: 0.9 }),
      data: blobs(30, 144, 3, 12, 'cnn training images'),
      batchSize: 8,
      steps: STEPS,
      seed: 13,
      valuation: {
        validation: blobs(6, 144, 3, 14, 'cnn validation images'),
        order: 2,
        perValidation: true,
        validationColumns: Int32Array.from([0, 1, 0, 2, 1, 2]),
        perValidationOrder: 2,
      },
    }),
  'cnn-resnet': (wrap = (m) => m) =>
    new Trainer({
      model: wrap(
        cnn({
          input: { channels: 1, height: 6, width: 6 },
          classes: 3,
          kind: 'resnet',
          width: 2,
          depth: 1,
          stages: 2,
          groups: 1,
          seed: 15,
        }),
      ),
      optimizer: adamw({ lr: 1e-2 }),
      data: blobs(30, 36, 3, 16, 'resnet training images'),
      batchSize: 7,
      steps: STEPS,
      seed: 17,
      // Adam's diagonal K: per-validation values take the vector route, one vector per column.
      valuation: {
        validation: blobs(5, 36, 3, 18, 'resnet validation images'),
        order: 2,
        perValidation: true,
      },
    }),
};

/** Every number a finished run produced, in a fixed order: weights, step reports, trace, ledger. */
export function fingerprint(trainer: Trainer, reports: StepReport[]): string {
  const numbers: number[] = [];
  const walk = (value: unknown): void => {
    if (typeof value === 'number') numbers.push(value);
    else if (ArrayBuffer.isView(value)) for (const x of value as Float64Array) numbers.push(Number(x));
    else if (Array.isArray(value)) for (const x of value) walk(x);
    else if (value !== null && typeof value === 'object')
      for (const key of Object.keys(value).sort()) walk((value as Record<string, unknown>)[key]);
  };
  walk(trainer.model.params);
  walk(reports);
  walk(trainer.valuer?.trace ?? null);
  walk(trainer.valuer?.ledger.snapshot() ?? null);
  return Buffer.from(Float64Array.from(numbers).buffer).toString('base64');
}

/** Runs a trainer to its end (the valuer then completes its last row and settles its credits). */
export function runToEnd(trainer: Trainer): string {
  const reports: StepReport[] = [];
  while (!trainer.done) reports.push(trainer.runStep());
  return fingerprint(trainer, reports);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const names = process.argv.slice(2);
  const out: Record<string, string> = {};
  for (const name of names) out[name] = runToEnd(RUNS[name]());
  process.stdout.write(JSON.stringify(out));
}

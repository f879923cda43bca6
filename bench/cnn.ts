/**
 * CNN benchmark: LeNet-5 (src/models/cnn.ts) on synthetic 28×28×1 images (float32), training batch
 * 64, validation batch 64. Measures plain training, first- and second-order In-Run values, the
 * naive per-example-gradient way, and the validation floor (plain + validation forward/backward),
 * the same configurations as the MLP benchmark (bench/mlp.ts), in inrun.
 */
import { TensorDataset } from '../src/data/dataset.js';
import { cnn } from '../src/models/cnn.js';
import { mean, type Sequential } from '../src/models/sequential.js';
import { Sgd } from '../src/optim/sgd.js';
import type { Optimizer } from '../src/optim/types.js';
import type { InRunValuer } from '../src/shapley/valuer.js';
import { Trainer } from '../src/train/trainer.js';
import { Rng } from '../src/util/rng.js';
import {
  type BenchOptions,
  captureBackward,
  HookedOptimizer,
  naiveFirstOrder,
  validationGradient,
  wholeBatch,
} from './mlp.js';
import { type BenchResult, fmt, summarize } from './table.js';
import { runInterleaved, type Schedule, type TimedConfig } from './timing.js';

const SIDE = 28;
const CLASSES = 10;
const BATCH = 64;
const VALIDATION = 64;
const TRAIN_EXAMPLES = 1024;
const LR = 0.01;
const ENOUGH_STEPS = 1_000_000;

const FULL: Schedule = { rounds: 8, stepsPerRound: 4, warmup: 2 };
const QUICK: Schedule = { rounds: 1, stepsPerRound: 2, warmup: 1 };
const NAIVE = { stepsPerRound: 1, warmup: 1 };

function syntheticImages(name: string, n: number, rng: Rng): TensorDataset {
  const features = new Float32Array(n * SIDE * SIDE);
  for (let e = 0; e < features.length; e++) features[e] = rng.uniform();
  const labels = Int32Array.from({ length: n }, () => rng.int(CLASSES));
  return new TensorDataset({ name, features, width: SIDE * SIDE, labels, labelKind: 'class' });
}

function newModel(): Sequential {
  return cnn({ input: { channels: 1, height: SIDE, width: SIDE }, classes: CLASSES, kind: 'lenet', seed: 1 });
}

export async function runCnnBenchmark(options: BenchOptions): Promise<BenchResult> {
  const { log } = options;
  const schedule = options.quick ? QUICK : FULL;
  const rng = new Rng(2);
  const train = syntheticImages('training images', TRAIN_EXAMPLES, rng);
  const validation = syntheticImages('validation images', VALIDATION, rng);
  const validationBatch = wholeBatch(validation);
  const probe = newModel();
  log(`  parameters: ${probe.parameterCount.toLocaleString('en-US')}`);
  if (options.torch) log('  PyTorch: no CNN peer yet; inrun alone');

  const trainer = (
    optimizer: Optimizer,
    model = newModel(),
    valuation?: ConstructorParameters<typeof InRunValuer>[1],
  ) =>
    new Trainer({ model, optimizer, data: train, batchSize: BATCH, steps: ENOUGH_STEPS, seed: 3, valuation });
  const all: TimedConfig[] = [];
  const add = (id: string, label: string, t: Trainer, extra: Partial<TimedConfig> = {}) =>
    all.push({ id, label, step: () => t.runStep(), ...extra });
  add('a', 'plain training', trainer(new Sgd({ lr: LR })));
  add(
    'b',
    `first-order values (|V|=${VALIDATION})`,
    trainer(new Sgd({ lr: LR }), newModel(), { validation, order: 1 }),
  );
  add(
    'c',
    `second-order values (|V|=${VALIDATION})`,
    trainer(new Sgd({ lr: LR }), newModel(), { validation, order: 2 }),
  );
  {
    const model = newModel();
    const lastPass = captureBackward(model);
    const t = trainer(
      new HookedOptimizer(new Sgd({ lr: LR }), (plan) => {
        naiveFirstOrder(model, lastPass(), validationGradient(model, validationBatch).gV, plan);
      }),
      model,
    );
    add('d', `naive per-example gradients, 1st order (|V|=${VALIDATION})`, t, NAIVE);
  }
  {
    const model = newModel();
    const t = trainer(
      new HookedOptimizer(new Sgd({ lr: LR }), () => {
        validationGradient(model, validationBatch);
      }),
      model,
    );
    add('f', 'plain + validation loss & gradient (floor)', t);
  }
  const configs = options.configs ? all.filter((c) => options.configs!.includes(c.id)) : all;
  if (configs.length === 0) throw new Error(`bench cnn: no config matches ${options.configs?.join(',')}`);
  const samples = runInterleaved(configs, schedule, log);
  const rows = summarize(
    configs.map((c) => ({ id: c.id, label: c.label, samplesMs: samples.get(c.id)! })),
    'a',
  );
  const byId = new Map(rows.map((r) => [r.id, r]));
  const [a, b, c, d, f] = ['a', 'b', 'c', 'd', 'f'].map((id) => byId.get(id));
  if (b && f) b.note = `${fmt(b.medianMs / f.medianMs, 2)}× the floor (f)`;
  if (c && f) c.note = `${fmt(c.medianMs / f.medianMs, 2)}× the floor (f)`;
  if (b && d) d.note = `(b) is ${fmt(d.medianMs / b.medianMs)}× faster`;
  if (f && a) f.note = `validation pass: +${fmt(f.medianMs - a.medianMs)} ms`;
  return {
    name: 'cnn',
    title: `LeNet-5 on ${SIDE}×${SIDE}×1 images (float32), batch ${BATCH}`,
    baseline: 'a',
    settings: {
      model: 'lenet',
      parameters: probe.parameterCount,
      batchSize: BATCH,
      validationSize: VALIDATION,
      trainExamples: TRAIN_EXAMPLES,
      optimizer: { kind: 'sgd', lr: LR },
      data: 'uniform [0,1) pixels, uniform random labels (Rng seed 2)',
      schedule,
      quick: options.quick,
    },
    rows,
    extra: { validationFloorRatio: b && f ? b.medianMs / f.medianMs : null },
    notes: [
      `initial validation loss ${mean(probe.forward(validationBatch.input, validationBatch.targets).losses).toFixed(3)}`,
    ],
  };
}

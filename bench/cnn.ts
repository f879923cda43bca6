/**
 * CNN benchmark: LeNet-5 (src/models/cnn.ts) on synthetic 28×28×1 images (float32), training batch
 * 64, validation batch 64. Measures plain training, first- and second-order In-Run values, the
 * naive per-example-gradient way, and the validation floor (plain + validation forward/backward),
 * the same configurations as the MLP benchmark (bench/mlp.ts). With PyTorch installed
 * (BenchOptions.torch) every configuration but the naive one also runs in PyTorch (bench/torch/,
 * the same LeNet with inrun's initial weights), at 1 and 2 threads, after a check that both
 * compute the same values.
 */
import type { Dataset } from '../src/data/dataset.js';
import { TensorDataset } from '../src/data/dataset.js';
import { cnn } from '../src/models/cnn.js';
import { mean, type Sequential } from '../src/models/sequential.js';
import { Sgd } from '../src/optim/sgd.js';
import type { Optimizer } from '../src/optim/types.js';
import type { InRunValuer } from '../src/shapley/valuer.js';
import { Trainer } from '../src/train/trainer.js';
import { Rng } from '../src/util/rng.js';
import { allocationNote, configAllocations, QUICK_ALLOCATION } from './memory.js';
import {
  type BenchOptions,
  captureBackward,
  HookedOptimizer,
  naiveFirstOrder,
  VALUES_ONLY_NOTE,
  validationFloor,
  validationGradient,
  valuesOnly,
  wholeBatch,
} from './mlp.js';
import { type BenchResult, fmt, summarize } from './table.js';
import { runInterleaved, type Schedule, type TimedConfig } from './timing.js';
import { compareValues, setupTensors, type ValuesCheck } from './torch/check.js';
import type { TorchRouteRule } from './torch/client.js';
import {
  aloneFloorRatioNote,
  aloneFloorRatios,
  floorRatioNote,
  floorRatios,
  type PairedConfig,
  torchComparison,
} from './torch/compare.js';

const CHANNELS = 1;
const SIDE = 28;
const CLASSES = 10;
/** LeNet-5's defaults in cnn(): 6 channels in conv1 (16 in conv2), 5×5 kernels, fc 400→120→84→10. */
const WIDTH = 6;
const KERNEL = 5;
const HIDDEN = [120, 84];
const BATCH = 64;
const VALIDATION = 64;
const TRAIN_EXAMPLES = 1024;
const LR = 0.01;
const ENOUGH_STEPS = 1_000_000;

const FULL: Schedule = { rounds: 8, stepsPerRound: 4, warmup: 2 };
const QUICK: Schedule = { rounds: 1, stepsPerRound: 2, warmup: 1 };
const NAIVE = { stepsPerRound: 1, warmup: 1 };
/**
 * With PyTorch: both sides at two thread counts. Each side idles while the other runs, and on this
 * kind of shared VM memory-heavy code runs about a quarter slower for some 50 ms after an idle
 * spell (pure compute does not); a LeNet step is only 5–20 ms, so a round takes 8 of them per side,
 * about as long as the MLP's and GPT's rounds, and the medians describe training, not waking up.
 */
const TORCH_FULL: Schedule = { rounds: 8, stepsPerRound: 8, warmup: 2 };
const TORCH_QUICK: Schedule = { rounds: 1, stepsPerRound: 2, warmup: 1 };
/** First order ÷ floor with no PyTorch turns between, after the side-by-side rounds (aloneFloorRatios). */
const ALONE: Schedule = { rounds: 12, stepsPerRound: 8, warmup: 2 };
const TORCH_NAIVE = { stepsPerRound: 1, warmup: 1 };
/** The PyTorch configuration (bench/torch/inrun_torch.py) of each inrun config; d has none. */
const TORCH_CONFIG: Record<string, string> = { a: 'plain', b: 'first', c: 'second', f: 'floor' };
/**
 * PyTorch picks each layer's ghost route by inrun's rule for the valued rows (Conv2d/Linear
 * ghostCost, the vector route charged the validation gradient the pairwise one skips): 'cost'.
 */
const TORCH_ROUTE_RULE: TorchRouteRule = 'cost';

function syntheticImages(name: string, n: number, rng: Rng): TensorDataset {
  const features = new Float32Array(n * CHANNELS * SIDE * SIDE);
  for (let e = 0; e < features.length; e++) features[e] = rng.uniform();
  const labels = Int32Array.from({ length: n }, () => rng.int(CLASSES));
  return new TensorDataset({ name, features, width: CHANNELS * SIDE * SIDE, labels, labelKind: 'class' });
}

function newModel(): Sequential {
  return cnn({
    input: { channels: CHANNELS, height: SIDE, width: SIDE },
    classes: CLASSES,
    kind: 'lenet',
    width: WIDTH,
    kernel: KERNEL,
    hidden: HIDDEN,
    seed: 1,
  });
}

/**
 * "conv1: vector; …" for the layers with two ghost routes, in inrun's choice for the valued rows
 * (checkPairwiseLayers: false, so a pairwise layer skips its validation gradient).
 */
function inrunRoutes(model: Sequential, n: number, m: number): string {
  const routes = model.ghostRoutes(n, m, { validationGradient: true });
  return model.paramLayers.map((l, k) => `${l.name ?? l.kind}: ${routes[k]}`).join('; ');
}

export async function runCnnBenchmark(options: BenchOptions): Promise<BenchResult> {
  const { log } = options;
  const schedule = options.torch ? (options.quick ? TORCH_QUICK : TORCH_FULL) : options.quick ? QUICK : FULL;
  const naiveSchedule = options.torch ? TORCH_NAIVE : NAIVE;
  const rng = new Rng(2);
  const train = syntheticImages('training images', TRAIN_EXAMPLES, rng);
  const validation = syntheticImages('validation images', VALIDATION, rng);
  const validationBatch = wholeBatch(validation);
  const probe = newModel();
  const routes = inrunRoutes(probe, BATCH, VALIDATION);
  log(`  parameters: ${probe.parameterCount.toLocaleString('en-US')}`);
  log(`  ghost routes (|B|=${BATCH}, |V|=${VALIDATION}): ${routes}`);

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
    trainer(new Sgd({ lr: LR }), newModel(), valuesOnly({ validation, order: 1 })),
  );
  add(
    'c',
    `second-order values (|V|=${VALIDATION})`,
    trainer(new Sgd({ lr: LR }), newModel(), valuesOnly({ validation, order: 2 })),
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
    add('d', `naive per-example gradients, 1st order (|V|=${VALIDATION})`, t, naiveSchedule);
  }
  {
    const model = newModel();
    const t = trainer(
      new HookedOptimizer(new Sgd({ lr: LR }), validationFloor(model, validationBatch)),
      model,
    );
    add('f', 'plain + validation loss & gradient (floor)', t);
  }
  const configs = options.configs ? all.filter((c) => options.configs!.includes(c.id)) : all;
  if (configs.length === 0) throw new Error(`bench cnn: no config matches ${options.configs?.join(',')}`);

  let samples: Map<string, number[]>;
  let torch: BenchResult['torch'];
  if (options.torch) {
    torch = await torchComparison({
      torch: options.torch,
      workloads: [
        {
          id: 'cnn',
          spec: {
            kind: 'cnn',
            image: [CHANNELS, SIDE, SIDE],
            classes: CLASSES,
            width: WIDTH,
            kernel: KERNEL,
            hidden: HIDDEN,
            lr: LR,
            batch: BATCH,
            validation: VALIDATION,
            routeRule: TORCH_ROUTE_RULE,
          },
          // inrun's initial weights (every config starts from them) and 4 batches of its data.
          tensors: () => setupTensors(newModel(), train, 4 * BATCH, validation),
        },
      ],
      checks: async (peer) => {
        const check = (name: string, order: 1 | 2, v: Dataset, torchRule?: TorchRouteRule) =>
          compareValues({
            name,
            peer,
            workload: 'cnn',
            model: newModel(),
            train,
            validation: v,
            batchSize: BATCH,
            order,
            optimizer: new Sgd({ lr: LR }),
            optimizerKind: 'sgd',
            lr: LR,
            torchRule,
          });
        const checks: ValuesCheck[] = [await check(`first order, |V|=${VALIDATION}`, 1, validation)];
        if (!options.quick) {
          // PyTorch's Conv2d pairwise route (formed per-example gradients) and Linear pairwise
          // route on every layer, against inrun's own choice: the same values either way.
          checks.push(
            await check(`first order, |V|=${VALIDATION}, PyTorch all pairwise`, 1, validation, 'pairwise'),
          );
          checks.push(await check(`second order, |V|=${VALIDATION}`, 2, validation));
        }
        return checks;
      },
      configs: configs.map(
        (c): PairedConfig => ({
          ...c,
          plain: 'a',
          torch: TORCH_CONFIG[c.id] ? { workload: 'cnn', config: TORCH_CONFIG[c.id] } : undefined,
        }),
      ),
      schedule,
      log,
      notes: [
        "PyTorch: the same float32 LeNet-5, inrun's initial weights and data; plain = forward, backward, " +
          'SGD step; floor = plain + validation forward/backward; values = the ghost method (one ' +
          'forward/backward of [train; validation] with hooks on Conv2d and Linear, book-keeping ' +
          "gradients, ghost dot products, each layer's route by inrun's cost rule; Conv2d's vector " +
          'route as one convolution of the training images with U), second order + one ' +
          'Hessian-vector product (double backward) per step',
        `naive (d) runs in inrun only; ${VALUES_ONLY_NOTE}`,
      ],
    });
    // The inrun table shows the last thread count.
    const last = torch.threads.length - 1;
    samples = new Map(torch.rows.map((r) => [r.id, r.cells[last].inrun?.samplesMs ?? []]));
  } else {
    samples = runInterleaved(configs, schedule, log);
  }
  // First order ÷ floor again, b and f interleaved with no PyTorch turn between them.
  const aloneRatios = options.torch
    ? aloneFloorRatios(configs, 'b', 'f', options.torch.threads, options.quick ? TORCH_QUICK : ALONE)
    : [];
  // The naive config (d) allocates every example's gradient by design.
  const allocations = await configAllocations(configs, {
    skip: ['d'],
    ...(options.quick ? QUICK_ALLOCATION : {}),
  });
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

  // First order ÷ floor on each side at every thread count (the target is ≤ 1.1 for inrun).
  const ratios = torch ? floorRatios(torch, 'b', 'f') : null;
  const notes = [
    `initial validation loss ${mean(probe.forward(validationBatch.input, validationBatch.targets).losses).toFixed(3)}`,
    `ghost routes (|B|=${BATCH}, |V|=${VALIDATION}): ${routes}`,
  ];
  for (const r of ratios ?? []) notes.push(floorRatioNote('first order ÷ floor (b/f)', r));
  for (const r of aloneRatios) notes.push(aloneFloorRatioNote('first order ÷ floor (b/f)', r));
  notes.push(allocationNote(allocations));
  return {
    name: 'cnn',
    title: `LeNet-5 on ${SIDE}×${SIDE}×${CHANNELS} images (float32), batch ${BATCH}`,
    baseline: 'a',
    settings: {
      model: 'lenet',
      architecture: { width: WIDTH, kernel: KERNEL, hidden: HIDDEN, classes: CLASSES },
      parameters: probe.parameterCount,
      batchSize: BATCH,
      validationSize: VALIDATION,
      trainExamples: TRAIN_EXAMPLES,
      optimizer: { kind: 'sgd', lr: LR },
      data: 'uniform [0,1) pixels, uniform random labels (Rng seed 2)',
      schedule,
      naiveSchedule,
      quick: options.quick,
      ...(torch ? { inrunRowsThreads: torch.threads.at(-1), torchRouteRule: TORCH_ROUTE_RULE } : {}),
    },
    rows,
    extra: {
      validationFloorRatio: b && f ? b.medianMs / f.medianMs : null,
      ...(ratios ? { validationFloorRatioByThreads: ratios, validationFloorRatioAlone: aloneRatios } : {}),
      ghostRoutes: routes,
      allocation: allocations,
    },
    notes,
    torch,
  };
}

/**
 * MLP benchmark: 784-512-512-10 (ReLU, softmax cross-entropy, float32), training batch 256,
 * validation batch 256, synthetic Gaussian data with random labels. Measures the per-step cost of
 * plain training, In-Run Data Shapley (first and second order), the naive per-example-gradient
 * way of computing first-order values, and the validation-pass floor any exact method pays.
 * With PyTorch installed (BenchOptions.torch), every configuration but the naive one also runs in
 * PyTorch (bench/torch/), at 1 and 2 threads, after a check that both compute the same values.
 */
import type { Batch, Dataset } from '../src/data/dataset.js';
import { TensorDataset } from '../src/data/dataset.js';
import { allocFloat } from '../src/kernels/index.js';
import type { FloatArray, KernelOps } from '../src/kernels/types.js';
import { Linear } from '../src/layers/linear.js';
import { PassArena } from '../src/layers/scratch.js';
import type { Layer } from '../src/layers/types.js';
import { mlp } from '../src/models/builders.js';
import { type GhostRoute, mean, type Pass, type Sequential } from '../src/models/sequential.js';
import { Sgd } from '../src/optim/sgd.js';
import type { Optimizer, StepPlan, StepScale } from '../src/optim/types.js';
import { InRunValuer, type ValuerOptions } from '../src/shapley/valuer.js';
import { Trainer } from '../src/train/trainer.js';
import { Rng } from '../src/util/rng.js';
import { allocationNote, configAllocations, QUICK_ALLOCATION } from './memory.js';
import { type BenchResult, fmt, summarize } from './table.js';
import { runInterleaved, type Schedule, type TimedConfig } from './timing.js';
import { compareValues, setupTensors } from './torch/check.js';
import {
  aloneFloorRatioNote,
  aloneFloorRatios,
  floorRatioNote,
  floorRatios,
  type PairedConfig,
  type TorchOptions,
  threadsPhrase,
  torchComparison,
} from './torch/compare.js';

export interface BenchOptions {
  quick: boolean;
  /** Only these config ids (default: all). */
  configs?: string[];
  log: (line: string) => void;
  /** Also run the workloads in PyTorch, side by side; absent: inrun alone. */
  torch?: TorchOptions;
}

const INPUTS = 784;
const HIDDEN = [512, 512];
const CLASSES = 10;
const BATCH = 256;
const VALIDATION = 256;
const SMALL_VALIDATION = 32;
const TRAIN_EXAMPLES = 4096;
const LR = 0.01;
const MODEL_SEED = 1;
const DATA_SEED = 2;
const ORDER_SEED = 3;
/** Trainer needs a step budget; the benchmark never gets near it. */
const ENOUGH_STEPS = 1_000_000;

const FULL: Schedule = { rounds: 15, stepsPerRound: 10, warmup: 4 };
const QUICK: Schedule = { rounds: 2, stepsPerRound: 3, warmup: 2 };
const NAIVE_FULL = { stepsPerRound: 3, warmup: 1 };
const NAIVE_QUICK = { stepsPerRound: 1, warmup: 1 };
/** With PyTorch: both sides at two thread counts, so fewer steps each. */
/** 16 rounds: at 2 threads a step's time swings by a third from one moment to the next here. */
const TORCH_FULL: Schedule = { rounds: 16, stepsPerRound: 5, warmup: 2 };
const TORCH_QUICK: Schedule = { rounds: 1, stepsPerRound: 2, warmup: 1 };
/** First order ÷ floor with no PyTorch turns between, after the side-by-side rounds (aloneFloorRatios). */
const ALONE: Schedule = { rounds: 12, stepsPerRound: 5, warmup: 2 };
const TORCH_NAIVE_FULL = { stepsPerRound: 2, warmup: 1 };
const TORCH_NAIVE_QUICK = { stepsPerRound: 1, warmup: 0 };
/** The PyTorch configuration (bench/torch/inrun_torch.py) of each inrun config; d has none. */
const TORCH_CONFIG: Record<string, string> = {
  a: 'plain',
  b: 'first',
  c: 'second',
  e: 'first-small',
  f: 'floor',
};

/**
 * The valued rows compare with PyTorch's ghost method, which computes the values alone. inrun's
 * defaults do more, timed in the MLP's rows (i) and (j): per-example signals, and the efficiency
 * check on pairwise-route layers, whose validation gradient only the check needs.
 */
export function valuesOnly(valuation: ValuerOptions): ValuerOptions {
  return { ...valuation, signals: false, checkPairwiseLayers: false };
}

export const VALUES_ONLY_NOTE =
  "inrun's valued rows compute the values alone (signals: false, checkPairwiseLayers: false), as PyTorch's " +
  'ghost method does; its defaults also compute per-example signals (self-influence, training loss, margins) ' +
  'and check the pairwise-route layers in the efficiency residual';

function syntheticData(name: string, n: number, rng: Rng): TensorDataset {
  const features = new Float32Array(n * INPUTS);
  for (let e = 0; e < features.length; e++) features[e] = rng.normal();
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = rng.int(CLASSES);
  return new TensorDataset({ name, features, width: INPUTS, labels, labelKind: 'class' });
}

function newModel(): Sequential {
  return mlp({
    inputs: INPUTS,
    hidden: HIDDEN,
    outputs: CLASSES,
    activation: 'relu',
    dtype: 'float32',
    seed: MODEL_SEED,
  });
}

/**
 * Delegates to an optimizer and runs `hook` with each step's full plan — at w_t, after the batch's
 * backward — whether the trainer asks for the plan or only the step's scale.
 */
export class HookedOptimizer implements Optimizer {
  readonly kind: string;
  constructor(
    private readonly inner: Optimizer,
    private readonly hook: (plan: StepPlan, gradSum: FloatArray) => void,
  ) {
    this.kind = inner.kind;
  }
  plan(
    step: number,
    totalSteps: number,
    params: FloatArray,
    gradSum: FloatArray,
    batchSize: number,
    kernels?: KernelOps,
  ): StepPlan {
    const plan = this.inner.plan(step, totalSteps, params, gradSum, batchSize, kernels);
    this.hook(plan, gradSum);
    return plan;
  }
  scale(
    step: number,
    totalSteps: number,
    params: FloatArray,
    gradSum: FloatArray,
    batchSize: number,
    kernels?: KernelOps,
  ): StepScale {
    return this.plan(step, totalSteps, params, gradSum, batchSize, kernels);
  }
  apply(plan: StepScale, params: FloatArray, gradSum: FloatArray, kernels?: KernelOps): void {
    this.inner.apply(plan, params, gradSum, kernels);
  }
  state(): Record<string, FloatArray> {
    return this.inner.state();
  }
  loadState(state: Record<string, FloatArray>): void {
    this.inner.loadState(state);
  }
}

/** Remembers the last pass the model back-propagated (the training batch's, inside Trainer.runStep). */
export function captureBackward(model: Sequential): () => Pass {
  let last: Pass | null = null;
  const original = model.backward.bind(model);
  model.backward = (pass: Pass) => {
    original(pass);
    last = pass;
  };
  return () => {
    if (!last) throw new Error('bench: no backward pass yet');
    return last;
  };
}

/** The whole validation set as one batch, built once (as the valuer does). */
export function wholeBatch(data: Dataset): Batch {
  return data.batch(
    Array.from({ length: data.size }, (_, i) => i),
    'float32',
  );
}

/** Validation loss and mean gradient g_V at the current weights: one forward + backward. */
export function validationGradient(
  model: Sequential,
  { input, targets }: Batch,
): { valPass: Pass; gV: FloatArray; loss: number } {
  const valPass = model.forward(input, targets);
  model.backward(valPass);
  const gV = allocFloat(model.dtype, model.parameterCount);
  model.addGrad(valPass, 1 / input.n, gV);
  return { valPass, gV, loss: mean(valPass.losses) };
}

/**
 * The validation pass a floor config adds to every step, run as the valuer runs its own: in an
 * arena of its own and into one gradient buffer, both reused, so the floor pays no allocation the
 * valued steps do not.
 */
export function validationFloor(model: Sequential, { input, targets }: Batch): () => void {
  const arena = new PassArena();
  const gV = allocFloat(model.dtype, model.parameterCount);
  return () => {
    const valPass = model.forward(input, targets, model.params, { arena });
    model.backward(valPass);
    gV.fill(0);
    model.addGrad(valPass, 1 / input.n, gV);
  };
}

/**
 * First-order values the naive way: u = η K g_V (K = kScale for SGD), then for every training
 * example its full gradient g_i materialised into a zeroed buffer and dotted with u.
 */
export function naiveFirstOrder(model: Sequential, pass: Pass, gV: FloatArray, plan: StepPlan): Float64Array {
  if (plan.kDiagonal) throw new Error('bench: naive values assume a scalar K (SGD)');
  const P = model.parameterCount;
  const u = allocFloat(model.dtype, P);
  const s = plan.lr * plan.kScale;
  for (let e = 0; e < P; e++) u[e] = s * gV[e];
  const gi = allocFloat(model.dtype, P);
  const values = new Float64Array(pass.n);
  for (let i = 0; i < pass.n; i++) {
    gi.fill(0);
    model.addGrad(pass, 1, gi, i, i + 1);
    let dot = 0;
    for (let e = 0; e < P; e++) dot += gi[e] * u[e];
    values[i] = dot;
  }
  return values;
}

/** Checks that the naive values and the valuer's ghost values agree on one batch. */
function crossCheck(
  train: Dataset,
  validation: Dataset,
): { maxAbsDiff: number; maxAbsValue: number; relative: number } {
  const model = newModel();
  const indices = Array.from({ length: BATCH }, (_, i) => i);
  const { input, targets } = train.batch(indices, model.dtype);
  const pass = model.forward(input, targets);
  model.backward(pass);
  const gradSum = allocFloat(model.dtype, model.parameterCount);
  model.addGrad(pass, 1, gradSum);
  const plan = new Sgd({ lr: LR }).plan(0, 1, model.params, gradSum, pass.n);
  const valuer = new InRunValuer(model, { validation, order: 1, route: 'auto' });
  const ghost = valuer.valueStep({
    pass,
    gradSum,
    plan,
    trainLoss: mean(pass.losses),
    ids: indices,
    groups: indices.map(() => undefined),
  }).firstOrder;
  const naive = naiveFirstOrder(model, pass, validationGradient(model, wholeBatch(validation)).gV, plan);
  let maxAbsDiff = 0;
  let maxAbsValue = 0;
  for (let i = 0; i < BATCH; i++) {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(ghost[i] - naive[i]));
    maxAbsValue = Math.max(maxAbsValue, Math.abs(naive[i]));
  }
  return { maxAbsDiff, maxAbsValue, relative: maxAbsDiff / maxAbsValue };
}

/**
 * The ghost route of each layer that has parameters, paired with its layer: as the valued rows
 * (checkPairwiseLayers: false) choose them, or with the efficiency check on every layer (`checked`,
 * inrun's default), where the vector route is not charged a validation gradient the pairwise
 * route would skip. `ghostRoutes` has answered one route per layer and, later, one per parameter
 * layer; both are accepted.
 */
function layerRoutes(
  model: Sequential,
  n: number,
  m: number,
  checked = false,
): { index: number; layer: Layer; route: GhostRoute }[] {
  const routes = model.ghostRoutes(n, m, { validationGradient: !checked });
  const indexed = model.layers.map((layer, index) => ({ index, layer }));
  const paired =
    routes.length === model.layers.length ? indexed : indexed.filter((e) => e.layer.params.length > 0);
  if (paired.length !== routes.length) throw new Error('bench: cannot pair ghost routes with layers');
  return paired.map((e, k) => ({ ...e, route: routes[k] })).filter((e) => e.layer.params.length > 0);
}

/** Multiply–adds per step from the layer shapes (matrix products only). */
function macEstimates(model: Sequential, n: number, m: number) {
  const linears = model.layers.filter((l): l is Linear => l instanceof Linear);
  const sizes = linears.map((l) => l.inFeatures * l.outFeatures);
  const Pw = sizes.reduce((a, b) => a + b, 0);
  // forward + weight gradient for every layer, input gradient for all but the first.
  const pass = (rows: number) => rows * (2 * Pw + Pw - sizes[0]);
  const ghostProducts = (checked: boolean) =>
    layerRoutes(model, n, m, checked).reduce((acc, { layer, route }) => {
      const c = layer.ghostCost?.(n, m, 1);
      return c ? acc + (route === 'pairwise' ? c.pairwise : c.vector) : acc;
    }, 0);
  const ghost1 = ghostProducts(false);
  // The validation weight gradients of the pairwise layers, which only the efficiency check needs.
  const check = layerRoutes(model, n, m).reduce(
    (acc, { layer, route }) =>
      route === 'pairwise' && layer instanceof Linear ? acc + m * layer.inFeatures * layer.outFeatures : acc,
    0,
  );
  // R-forward: x Vᵀ (+ R{x} Wᵀ); R-backward: two dW products (one in the first layer), two dx products (none in the first).
  const hvp = m * (sizes[0] * 2 + (Pw - sizes[0]) * 6);
  // Second order: u2 goes through the vector route on every layer.
  const ghost2 = n * Pw;
  const train = pass(n);
  const validation = pass(m);
  return {
    weightsInLinears: Pw,
    train,
    validationPass: validation,
    ghostFirstOrder: ghost1,
    efficiencyCheck: check,
    hvp,
    ghostSecondOrderExtra: ghost2,
    predictedRatio: {
      firstOrder: (train + validation - check + ghost1) / train,
      firstOrderChecked: (train + validation + ghostProducts(true)) / train,
      secondOrder: (train + validation - check + ghost1 + hvp + ghost2) / train,
      validationFloor: (train + validation) / train,
    },
  };
}

export async function runMlpBenchmark(options: BenchOptions): Promise<BenchResult> {
  const { log } = options;
  const schedule = options.torch ? (options.quick ? TORCH_QUICK : TORCH_FULL) : options.quick ? QUICK : FULL;
  const naiveSchedule = options.torch
    ? options.quick
      ? TORCH_NAIVE_QUICK
      : TORCH_NAIVE_FULL
    : options.quick
      ? NAIVE_QUICK
      : NAIVE_FULL;
  const rng = new Rng(DATA_SEED);
  const train = syntheticData('training data', TRAIN_EXAMPLES, rng);
  const validation = syntheticData('validation data', VALIDATION, rng);
  const smallValidation = validation.subset(
    Array.from({ length: SMALL_VALIDATION }, (_, i) => i),
    'validation data (32)',
  );
  const probe = newModel();
  const layerName = (l: Layer, i: number) =>
    l instanceof Linear ? `layers.${i} Linear(${l.inFeatures}→${l.outFeatures})` : `layers.${i} ${l.kind}`;
  const routesFor = (n: number, m: number, checked = false) =>
    layerRoutes(probe, n, m, checked).map(
      ({ index, layer, route }) => `${layerName(layer, index)}: ${route}`,
    );
  const routes = routesFor(BATCH, VALIDATION);
  const routesSmall = routesFor(BATCH, SMALL_VALIDATION);
  const routesChecked = routesFor(BATCH, VALIDATION, true);
  log(`  parameters: ${probe.parameterCount.toLocaleString('en-US')}`);
  log(`  ghost routes (|B|=${BATCH}, |V|=${VALIDATION}): ${routes.join('; ')}`);
  log(`  ghost routes (|B|=${BATCH}, |V|=${SMALL_VALIDATION}): ${routesSmall.join('; ')}`);
  log(`  ghost routes with the check on every layer (i, j): ${routesChecked.join('; ')}`);

  const check = crossCheck(train, validation);
  const validationBatch = wholeBatch(validation);
  log(
    `  cross-check naive vs ghost first-order values: max |Δ| = ${check.maxAbsDiff.toExponential(2)} ` +
      `(max |φ| = ${check.maxAbsValue.toExponential(2)}, relative ${check.relative.toExponential(2)})`,
  );

  const trainer = (
    optimizer: Optimizer,
    model = newModel(),
    valuation?: ConstructorParameters<typeof InRunValuer>[1],
  ) =>
    new Trainer({
      model,
      optimizer,
      data: train,
      batchSize: BATCH,
      steps: ENOUGH_STEPS,
      seed: ORDER_SEED,
      valuation,
    });

  const all: TimedConfig[] = [];
  {
    const t = trainer(new Sgd({ lr: LR }));
    all.push({ id: 'a', label: 'plain training', step: () => t.runStep() });
  }
  {
    const t = trainer(new Sgd({ lr: LR }), newModel(), valuesOnly({ validation, order: 1, route: 'auto' }));
    all.push({ id: 'b', label: 'first-order values (|V|=256)', step: () => t.runStep() });
  }
  {
    const t = trainer(new Sgd({ lr: LR }), newModel(), valuesOnly({ validation, order: 2, route: 'auto' }));
    all.push({ id: 'c', label: 'second-order values (|V|=256)', step: () => t.runStep() });
  }
  {
    const model = newModel();
    const lastPass = captureBackward(model);
    const t = trainer(
      new HookedOptimizer(new Sgd({ lr: LR }), (plan) => {
        const pass = lastPass();
        const { gV } = validationGradient(model, validationBatch);
        naiveFirstOrder(model, pass, gV, plan);
      }),
      model,
    );
    all.push({
      id: 'd',
      label: 'naive per-example gradients, 1st order (|V|=256)',
      step: () => t.runStep(),
      ...naiveSchedule,
    });
  }
  {
    const t = trainer(
      new Sgd({ lr: LR }),
      newModel(),
      valuesOnly({
        validation: smallValidation,
        order: 1,
        route: 'auto',
      }),
    );
    all.push({ id: 'e', label: 'first-order values (|V|=32)', step: () => t.runStep() });
  }
  {
    const model = newModel();
    const floor = validationFloor(model, validationBatch);
    const t = trainer(new HookedOptimizer(new Sgd({ lr: LR }), floor), model);
    all.push({ id: 'f', label: 'plain + validation loss & gradient (floor)', step: () => t.runStep() });
  }
  {
    // inrun's defaults: the values, the per-example signals (self-influence, training loss,
    // margins) and the efficiency check on every layer, from the same step.
    const t = trainer(new Sgd({ lr: LR }), newModel(), { validation, order: 1, route: 'auto' });
    all.push({ id: 'i', label: 'first-order values + signals + check (|V|=256)', step: () => t.runStep() });
  }
  {
    const t = trainer(new Sgd({ lr: LR }), newModel(), {
      validation,
      order: 1,
      route: 'auto',
      signals: false,
    });
    all.push({ id: 'j', label: 'first-order values + check (|V|=256)', step: () => t.runStep() });
  }

  const configs = options.configs ? all.filter((c) => options.configs!.includes(c.id)) : all;
  if (configs.length === 0) throw new Error(`bench mlp: no config matches ${options.configs?.join(',')}`);
  let samples: Map<string, number[]>;
  let torch: BenchResult['torch'];
  if (options.torch) {
    torch = await torchComparison({
      torch: options.torch,
      workloads: [
        {
          id: 'mlp',
          spec: {
            kind: 'mlp',
            sizes: [INPUTS, ...HIDDEN, CLASSES],
            lr: LR,
            batch: BATCH,
            validation: VALIDATION,
            smallValidation: SMALL_VALIDATION,
          },
          // inrun's initial weights (every config starts from them) and 4 batches of its data.
          tensors: () => setupTensors(newModel(), train, 4 * BATCH, validation),
        },
      ],
      checks: async (peer) => {
        const check = (name: string, order: 1 | 2, v: Dataset) =>
          compareValues({
            name,
            peer,
            workload: 'mlp',
            model: newModel(),
            train,
            validation: v,
            batchSize: BATCH,
            order,
            optimizer: new Sgd({ lr: LR }),
            optimizerKind: 'sgd',
            lr: LR,
          });
        const checks = [await check(`first order, |V|=${VALIDATION}`, 1, validation)];
        if (!options.quick) {
          checks.push(await check(`first order, |V|=${SMALL_VALIDATION}`, 1, smallValidation));
          checks.push(await check(`second order, |V|=${VALIDATION}`, 2, validation));
        }
        return checks;
      },
      configs: configs.map(
        (c): PairedConfig => ({
          ...c,
          plain: 'a',
          torch: TORCH_CONFIG[c.id] ? { workload: 'mlp', config: TORCH_CONFIG[c.id] } : undefined,
        }),
      ),
      schedule,
      log,
      notes: [
        "PyTorch: the same float32 model, inrun's initial weights and data; plain = forward, backward, " +
          "SGD step; floor = plain + validation forward/backward; values = the paper's ghost method " +
          '(one forward/backward of [train; validation] with hooks, book-keeping gradients, ghost dot ' +
          'products), second order + one Hessian-vector product (double backward) per step',
        `naive (d) and the rows with inrun's defaults (i, j) run in inrun only; ${VALUES_ONLY_NOTE}`,
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
  const a = byId.get('a');
  const b = byId.get('b');
  const d = byId.get('d');
  const f = byId.get('f');
  const speedupOverNaive = b && d ? d.medianMs / b.medianMs : null;
  if (d && speedupOverNaive !== null) d.note = `(b) is ${fmt(speedupOverNaive)}× faster`;
  if (b && f) b.note = `ghost products etc.: +${fmt(b.medianMs - f.medianMs)} ms over (f)`;
  const c = byId.get('c');
  if (c && f) c.note = `+${fmt(c.medianMs - f.medianMs)} ms over (f)`;
  const e = byId.get('e');
  if (e && a) e.note = `+${fmt(e.medianMs - a.medianMs)} ms over (a)`;
  if (f && a) f.note = `validation pass: +${fmt(f.medianMs - a.medianMs)} ms`;

  const macs = macEstimates(probe, BATCH, VALIDATION);
  const notes = [
    `ghost routes (|B|=${BATCH}, |V|=${VALIDATION}): ${routes.join('; ')}`,
    `ghost routes (|B|=${BATCH}, |V|=${SMALL_VALIDATION}): ${routesSmall.join('; ')}`,
    `ghost routes with the check on every layer (i, j): ${routesChecked.join('; ')}`,
    `matrix-product multiply–adds, ratio to plain training: first order ${fmt(macs.predictedRatio.firstOrder, 2)}× ` +
      `(${fmt(macs.predictedRatio.firstOrderChecked, 2)}× with the check), ` +
      `second order ${fmt(macs.predictedRatio.secondOrder, 2)}×, floor ${fmt(macs.predictedRatio.validationFloor, 2)}×`,
    `cross-check naive vs ghost first-order values: relative max |Δ| = ${check.relative.toExponential(2)}`,
  ];
  // First order ÷ floor: values alone on both sides, and inrun's with the check on every layer.
  const ratios = torch ? floorRatios(torch, 'b', 'f') : null;
  const checkedRatios = torch ? floorRatios(torch, 'j', 'f') : null;
  for (const r of ratios ?? []) notes.push(floorRatioNote('first order ÷ floor (b/f)', r));
  for (const r of aloneRatios) notes.push(aloneFloorRatioNote('first order ÷ floor (b/f)', r));
  for (const r of checkedRatios ?? [])
    if (r.inrun !== null)
      notes.push(
        `with the check on every layer (j/f), ${threadsPhrase(r.threads)}: inrun ${fmt(r.inrun, 2)}×`,
      );
  notes.push(allocationNote(allocations));
  if (speedupOverNaive !== null)
    notes.push(
      `first-order In-Run values (b) are ${fmt(speedupOverNaive)}× faster than naive per-example gradients (d)`,
    );

  return {
    name: 'mlp',
    title: `MLP ${[INPUTS, ...HIDDEN, CLASSES].join('-')} (ReLU, softmax CE, float32), batch ${BATCH}`,
    baseline: 'a',
    settings: {
      architecture: [INPUTS, ...HIDDEN, CLASSES],
      activation: 'relu',
      loss: 'softmax-cross-entropy',
      dtype: 'float32',
      parameters: probe.parameterCount,
      batchSize: BATCH,
      validationSize: VALIDATION,
      smallValidationSize: SMALL_VALIDATION,
      trainExamples: TRAIN_EXAMPLES,
      optimizer: { kind: 'sgd', lr: LR },
      data: 'Gaussian N(0,1) features, uniform random labels (Rng seed 2)',
      schedule,
      naiveSchedule,
      quick: options.quick,
      ...(torch ? { inrunRowsThreads: torch.threads.at(-1) } : {}),
    },
    rows,
    extra: {
      ghostRoutes: {
        [`${BATCH}x${VALIDATION}`]: routes,
        [`${BATCH}x${SMALL_VALIDATION}`]: routesSmall,
        [`${BATCH}x${VALIDATION} checked`]: routesChecked,
      },
      speedupFirstOrderOverNaive: speedupOverNaive,
      allocation: allocations,
      crossCheck: check,
      multiplyAdds: macs,
      validationFloorRatio: b && f ? b.medianMs / f.medianMs : null,
      ...(ratios
        ? {
            validationFloorRatioByThreads: ratios,
            checkedFloorRatioByThreads: checkedRatios,
            validationFloorRatioAlone: aloneRatios,
          }
        : {}),
    },
    notes,
    torch,
  };
}

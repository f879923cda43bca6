import type { Batch, Dataset, ExampleId } from '../data/dataset.js';
import { allocFloat } from '../kernels/alloc.js';
import type { FloatArray } from '../kernels/types.js';
import { PassArena } from '../layers/scratch.js';
import { mean, type Sequential } from '../models/sequential.js';
import { subsetGradSumFromPass } from '../optim/adam.js';
import type { Optimizer, StepPlan, StepScale } from '../optim/types.js';
import { InRunValuer, type StepValues, type ValuerOptions, type ValuerState } from '../shapley/valuer.js';
import { checkKnownKeys, checkNumber, DivergenceError, fail } from '../util/errors.js';
import { Rng } from '../util/rng.js';

export interface TrainerOptions {
  model: Sequential;
  optimizer: Optimizer;
  data: Dataset;
  batchSize: number;
  /** Number of optimizer steps; or give `epochs` (passes over the data, last batch may be smaller). */
  steps?: number;
  epochs?: number;
  /** Seed of the data order (the model's weights have their own seed). */
  seed?: number;
  /** Attach In-Run Data Shapley; omit for plain training. */
  valuation?: ValuerOptions;
  /** Summarise each step's plan into StepReport.plan (a pass over c and K; for per-step exports). */
  planSummaries?: boolean;
}

const TRAINER_KEYS = [
  'model',
  'optimizer',
  'data',
  'batchSize',
  'steps',
  'epochs',
  'seed',
  'valuation',
  'planSummaries',
];

/**
 * Everything needed to continue a run exactly where it stopped: resuming from a checkpoint gives
 * bit-identical weights, values and trace to an uninterrupted run.
 */
export interface TrainerCheckpoint {
  step: number;
  totalSteps: number;
  /** Data order of the current epoch and the position of the next batch in it. */
  order: Int32Array;
  position: number;
  rng: Uint32Array;
  params: FloatArray;
  optimizer: Record<string, FloatArray>;
  /** With `valuation.keepTrace: false` its trace is the latest row only: constant in size. */
  valuer: ValuerState | null;
}

/**
 * A step's plan w⁺ = w − η (c + K g_B) (StepPlan, src/optim/types.ts) in a few numbers, for
 * per-step exports (step-values.parquet): the plan's vectors are the optimizer's own buffers.
 */
export interface StepPlanSummary {
  /** η, the step's learning rate. */
  lr: number;
  /** K's scalar factor: the clip factor over |B| for a mean loss (times 1 for a sum). */
  kScale: number;
  /** Global-norm clip factor applied to the batch gradient (1 = not clipped). */
  clipFactor: number;
  /** ‖c‖₂, the batch-independent part (momentum carried in, weight decay); 0 when c is null. */
  cNorm: number;
  /** Mean of K's diagonal (Adam's per-parameter scaling); null when K is a scalar (SGD). */
  kDiagonalMean: number | null;
}

/** The plan's summary: one read-only pass over c and K's diagonal, summed in float64. */
export function summarizePlan(plan: StepPlan): StepPlanSummary {
  let cNorm = 0;
  const c = plan.c;
  if (c) {
    let sq = 0;
    for (let e = 0; e < c.length; e++) sq += c[e] * c[e];
    cNorm = Math.sqrt(sq);
  }
  let kDiagonalMean: number | null = null;
  const d = plan.kDiagonal;
  if (d) {
    let total = 0;
    for (let e = 0; e < d.length; e++) total += d[e];
    kDiagonalMean = d.length > 0 ? total / d.length : 0;
  }
  return { lr: plan.lr, kScale: plan.kScale, clipFactor: plan.clipFactor, cNorm, kDiagonalMean };
}

export interface StepReport {
  step: number;
  totalSteps: number;
  lr: number;
  trainLoss: number;
  ids: ExampleId[];
  values: StepValues | null;
  /** The step's plan in numbers (taken before the update; reading it changes nothing). */
  /** The step's plan in numbers, with `planSummaries` (else null). */
  plan: StepPlanSummary | null;
}

/**
 * Runs training step by step: draws a batch (epoch-wise shuffles from a seeded generator),
 * back-propagates each example's own loss, lets the valuer (if any) value the step at the current
 * weights, then takes the optimizer step. The training arithmetic is the same with and without
 * a valuer, so the weights are bit-identical either way.
 */
export class Trainer {
  readonly model: Sequential;
  readonly optimizer: Optimizer;
  readonly data: Dataset;
  readonly batchSize: number;
  readonly totalSteps: number;
  readonly valuer: InRunValuer | null;
  private readonly planSummaries: boolean;
  step = 0;
  private readonly rng: Rng;
  private readonly seed: number;
  /** Σ_i g_i of the current batch; reused every step. */
  private readonly gradSum: FloatArray;
  /**
   * The training pass's buffers, reused every step (see PassArena): the pass lives until the step
   * ends (momentum credit replays the passes it needs later).
   */
  private readonly arena = new PassArena();
  /** The previous step's batch, refilled by the next step (its pass is gone by then). */
  private batch: Batch | undefined;
  private order: Int32Array;
  private position = 0;

  constructor(options: TrainerOptions) {
    checkKnownKeys('train', options, TRAINER_KEYS);
    const { model, data } = options;
    if (!model) fail('train: model is required');
    if (!options.optimizer) fail('train: optimizer is required');
    if (!data || data.size === 0) fail('train: the training data is empty');
    this.model = model;
    this.optimizer = options.optimizer;
    this.data = data;
    this.batchSize = checkNumber('train.batchSize', options.batchSize, { min: 1, integer: true });
    if (this.batchSize > data.size)
      fail(`train.batchSize (${this.batchSize}) is larger than the training data (${data.size} examples)`);
    if (options.steps !== undefined && options.epochs !== undefined)
      fail('train: give steps or epochs, not both');
    const perEpoch = Math.ceil(data.size / this.batchSize);
    this.totalSteps =
      options.steps !== undefined
        ? checkNumber('train.steps', options.steps, { min: 1, integer: true })
        : perEpoch * checkNumber('train.epochs', options.epochs ?? 1, { min: 1, integer: true });
    model.checkDataset(data);
    this.seed = checkNumber('train.seed', options.seed ?? 0, { integer: true });
    this.rng = new Rng(this.seed);
    this.order = this.rng.permutation(data.size);
    this.valuer = options.valuation ? new InRunValuer(model, options.valuation) : null;
    this.planSummaries = options.planSummaries ?? false;
    this.gradSum = allocFloat(model.dtype, model.parameterCount);
  }

  get done(): boolean {
    return this.step >= this.totalSteps;
  }

  /** The dataset indices of the next batch; advances the data order. */
  private nextIndices(): Int32Array {
    if (this.position >= this.order.length) {
      this.order = this.rng.permutation(this.data.size);
      this.position = 0;
    }
    const end = Math.min(this.position + this.batchSize, this.order.length);
    const indices = this.order.slice(this.position, end);
    this.position = end;
    return indices;
  }

  /** A snapshot of the run (copies, so training can go on while it is written out). */
  checkpoint(): TrainerCheckpoint {
    const optimizerState = Object.fromEntries(
      Object.entries(this.optimizer.state()).map(([name, tensor]) => [name, tensor.slice()]),
    );
    return {
      step: this.step,
      totalSteps: this.totalSteps,
      order: this.order.slice(),
      position: this.position,
      rng: this.rng.getState(),
      params: this.model.params.slice(),
      optimizer: optimizerState,
      valuer: this.valuer ? this.valuer.state() : null,
    };
  }

  /** Continues from a checkpoint of a run with the same model, data and settings. */
  restore(checkpoint: TrainerCheckpoint): void {
    if (checkpoint.totalSteps !== this.totalSteps)
      fail(
        `checkpoint: it was taken from a run of ${checkpoint.totalSteps} steps, this run has ${this.totalSteps}`,
      );
    if (checkpoint.params.length !== this.model.parameterCount)
      fail(
        `checkpoint: it holds ${checkpoint.params.length} parameters, the model has ${this.model.parameterCount}`,
      );
    if (checkpoint.order.length !== this.data.size)
      fail(
        `checkpoint: it was taken with ${checkpoint.order.length} training examples, the data has ${this.data.size}`,
      );
    if ((checkpoint.valuer === null) !== (this.valuer === null))
      fail('checkpoint: valuation must be on (or off) both in the checkpointed run and now');
    this.step = checkpoint.step;
    this.order = checkpoint.order.slice();
    this.position = checkpoint.position;
    this.rng.setState(checkpoint.rng);
    this.model.params.set(checkpoint.params);
    this.optimizer.loadState(checkpoint.optimizer);
    if (checkpoint.valuer) this.valuer!.restore(checkpoint.valuer);
  }

  /** Runs one step; throws DivergenceError (weights untouched) on a non-finite loss. */
  runStep(): StepReport {
    if (this.done) fail(`train: all ${this.totalSteps} steps have run`);
    const { model, optimizer } = this;
    const indices = this.nextIndices();
    const batch = this.data.batch(indices, model.dtype, this.batch, model.kernels);
    this.batch = batch;
    const { input, targets } = batch;
    // A training pass (Dropout on, its masks keyed by the step); the valuer's passes are not.
    const pass = model.forward(input, targets, model.params, {
      training: true,
      step: this.step,
      arena: this.arena,
    });
    const trainLoss = mean(pass.losses);
    if (!Number.isFinite(trainLoss)) throw new DivergenceError(this.step, 'the training loss');
    model.backward(pass);
    const gradSum = this.gradSum;
    gradSum.fill(0);
    model.addGrad(pass, 1, gradSum);
    const ids = mapIndices(indices, (i) => this.data.id(i));
    let values: StepValues | null = null;
    let planSummary: StepPlanSummary | null = null;
    let plan: StepScale;
    if (this.valuer || this.planSummaries) {
      const full = optimizer.plan(this.step, this.totalSteps, model.params, gradSum, pass.n, model.kernels);
      // Before anything else reads or updates the optimizer's buffers that c and K may be.
      if (this.planSummaries) planSummary = summarizePlan(full);
      if (this.valuer) {
        const groups = mapIndices(indices, (i) => this.data.group(i));
        let linearisationGap: number | null = null;
        if (optimizer.linearisationGap && this.valuer.gapSamples > 0) {
          // Its own generator per step: measuring never touches the data order's randomness.
          const rng = new Rng((Math.imul(this.seed, 0x9e3779b1) ^ this.step) >>> 0);
          const subsets = subsetGradSumFromPass(model, pass);
          linearisationGap = optimizer.linearisationGap(
            full,
            model.params,
            gradSum,
            pass.n,
            rng,
            subsets,
            this.valuer.gapSamples,
          );
        }
        values = this.valuer.valueStep({
          pass,
          gradSum,
          plan: full,
          trainLoss,
          ids,
          groups,
          linearisationGap,
        });
      }
      plan = full;
    } else {
      // A step nobody values or summarises needs only its scale: no c or K, vectors as long as the model.
      plan = optimizer.scale(this.step, this.totalSteps, model.params, gradSum, pass.n, model.kernels);
    }
    optimizer.apply(plan, model.params, gradSum, model.kernels);
    const report: StepReport = {
      step: this.step,
      totalSteps: this.totalSteps,
      lr: plan.lr,
      trainLoss,
      ids,
      values,
      plan: planSummary,
    };
    this.step += 1;
    if (this.done) this.valuer?.finish();
    return report;
  }
}

/** Trains to the end, calling `onStep` after every step; returns the trainer (ledger and trace on its valuer). */
export function train(options: TrainerOptions & { onStep?: (report: StepReport) => void }): Trainer {
  const { onStep, ...rest } = options;
  const trainer = new Trainer(rest);
  while (!trainer.done) {
    const report = trainer.runStep();
    onStep?.(report);
  }
  return trainer;
}

/** f over a batch's example indices, into a plain array: Array.from would iterate the typed array. */
function mapIndices<T>(indices: Int32Array, f: (index: number) => T): T[] {
  const out = new Array<T>(indices.length);
  for (let r = 0; r < indices.length; r++) out[r] = f(indices[r]);
  return out;
}

import type { Dataset, ExampleId } from '../data/dataset.js';
import { allocFloat } from '../kernels/index.js';
import type { FloatArray } from '../kernels/types.js';
import { mean, type Sequential } from '../models/sequential.js';
import { subsetGradSumFromPass } from '../optim/adam.js';
import type { Optimizer } from '../optim/types.js';
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
}

const TRAINER_KEYS = ['model', 'optimizer', 'data', 'batchSize', 'steps', 'epochs', 'seed', 'valuation'];

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

export interface StepReport {
  step: number;
  totalSteps: number;
  lr: number;
  trainLoss: number;
  ids: ExampleId[];
  values: StepValues | null;
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
  step = 0;
  private readonly rng: Rng;
  private readonly seed: number;
  /** Σ_i g_i of the current batch; reused every step. */
  private readonly gradSum: FloatArray;
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
    const { input, targets } = this.data.batch(indices, model.dtype);
    const pass = model.forward(input, targets);
    const trainLoss = mean(pass.losses);
    if (!Number.isFinite(trainLoss)) throw new DivergenceError(this.step, 'the training loss');
    model.backward(pass);
    const gradSum = this.gradSum;
    gradSum.fill(0);
    model.addGrad(pass, 1, gradSum);
    const plan = optimizer.plan(this.step, this.totalSteps, model.params, gradSum, pass.n);
    const ids = Array.from(indices, (i) => this.data.id(i));
    let values: StepValues | null = null;
    if (this.valuer) {
      const groups = Array.from(indices, (i) => this.data.group(i));
      let linearisationGap: number | null = null;
      if (optimizer.linearisationGap && this.valuer.gapSamples > 0) {
        // Its own generator per step: measuring never touches the data order's randomness.
        const rng = new Rng((Math.imul(this.seed, 0x9e3779b1) ^ this.step) >>> 0);
        const subsets = subsetGradSumFromPass(model, pass);
        linearisationGap = optimizer.linearisationGap(
          plan,
          model.params,
          gradSum,
          pass.n,
          rng,
          subsets,
          this.valuer.gapSamples,
        );
      }
      values = this.valuer.valueStep({ pass, gradSum, plan, trainLoss, ids, groups, linearisationGap });
    }
    optimizer.apply(plan, model.params, gradSum);
    const report = { step: this.step, totalSteps: this.totalSteps, lr: plan.lr, trainLoss, ids, values };
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

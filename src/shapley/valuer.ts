import type { Batch, Dataset, ExampleId } from '../data/dataset.js';
import { allocFloat } from '../kernels/alloc.js';
import type { FloatArray } from '../kernels/types.js';
import { PassArena, Scratch } from '../layers/scratch.js';
import { span } from '../layers/types.js';
import type { Targets } from '../losses/types.js';
import { mean, type Pass, type Sequential } from '../models/sequential.js';
import { applyK, type StepPlan } from '../optim/types.js';
import { checkKnownKeys, checkNumber, DivergenceError, describe, fail } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { type LedgerEntry, type StepSignals, ValueLedger } from './ledger.js';
import { MomentumCredit } from './momentum-credit.js';

export type GhostRouteChoice = 'auto' | 'pairwise' | 'vector';

export interface ValuerOptions {
  /** The validation set V: values measure the decrease of its mean loss. Evaluated in full every step. */
  validation: Dataset;
  /** 1: first-order values only; 2: second-order values too (one Hessian-vector product per step). */
  order?: 1 | 2;
  /**
   * Keep each example's value split by validation column (the train × validation matrix): one column
   * per validation example, or per group of them with `validationColumns`. Columns sum to the value.
   */
  perValidation?: boolean;
  /**
   * With perValidation: the column of each validation example (0..Q−1, every column used), e.g. the
   * query document each validation sequence comes from. Default: one column per example.
   */
  validationColumns?: Int32Array;
  /**
   * With perValidation: 1 keeps first-order columns (default); 2 also second-order ones, which
   * costs one extra validation forward/backward and Hessian-vector product per column per step.
   */
  perValidationOrder?: 1 | 2;
  /**
   * Weight (≥ 0) of each validation example's loss: V's loss becomes Σ_j w_j ℓ_j / Σ_j w_j
   * instead of the plain mean (text runs weight sequences by their scored tokens, so the loss is
   * the mean over validation tokens). Values, utilities and the trace's losses all use it.
   */
  validationWeights?: Float64Array;
  /** First steps of training stages after the first; values are also totalled per stage. */
  stageStarts?: number[];
  /** Ghost route for every layer; 'auto' takes the cheaper one per layer from the shapes. */
  route?: GhostRouteChoice;
  /**
   * Check the layers on the pairwise ghost route in the trace's efficiencyResidual too (default
   * true). Their values come from the train × validation Gram matrix, so the validation gradient
   * the independent Taylor utility needs is formed for the check alone. False skips it where
   * nothing else needs it (SGD without momentum or weight decay, no momentum credit), and routes
   * are chosen knowing the vector route would still need it; the utility of pairwise layers is
   * then the sum of their values, and the residual checks the other layers only. On an MLP
   * 784-512-512-10 with |V| = 256 a first-order step is about a sixth cheaper.
   */
  checkPairwiseLayers?: boolean;
  /** Record the ids of each step's batch in the trace. */
  recordBatchIds?: boolean;
  /**
   * Random sub-batches per step on which to measure how far an Adam-style optimizer's linearised
   * step is from its real step (trace column `linearisationGap`); 0 turns it off. Default 2.
   */
  gapSamples?: number;
  /**
   * Keep every trace row in `trace` (default). False keeps only the latest row, so memory and
   * checkpoints stay the same size however long the run; pair it with `onTraceRow` to store the rows.
   */
  keepTrace?: boolean;
  /** Called with each trace row once it is complete (its validation loss after known), in step order. */
  onTraceRow?: (row: TraceEntry) => void;
  /**
   * Also keep the per-example signals besides the values (default true): self-influence, training
   * loss and, for classification, margin and forgetting events (see LedgerEntry). Self-influence
   * costs about one weight-gradient-sized product per step where a layer has to form g_i
   * (sequences, tied weights); dense layers get it from the ghost norms almost for free.
   */
  signals?: boolean;
  /**
   * With signals, classification: also the class-conditional value, each example's value against
   * the validation examples of its own label (default false). Costs one mean gradient and one
   * parameter-sized vector per class of the batch each step — on an MLP 784-512-512-10 that doubled
   * a valued step — and it did not find flipped labels (AUROC 0.23 on the bundled digits).
   */
  classValues?: boolean;
  /**
   * Value against a fresh random sample of k validation examples each step instead of all of V
   * (k < |V|). Values are linear in the validation set, so each step's first- and second-order
   * values are unbiased estimates of the full-V values; the ledger keeps their sampling variance
   * (standard errors in the values files). The sample is drawn without replacement, split into two
   * random halves whose difference estimates that variance. The trace's validation losses are then
   * the sample's, before and after the step. Not with perValidation.
   */
  validationBatch?: number;
  /** Seed of the validation samples; the sample of step t depends on (seed, t) only. Default 0. */
  validationSeed?: number;
  /**
   * Hand what the momentum buffer carries back to the examples that put it there (ledger field
   * momentumCredit; see src/shapley/momentum-credit.ts): first-order values plus credits then add
   * up to the run's whole first-order utility, momentum included. Keeps the last few hundred steps'
   * batches and weights in memory, which checkpoints cannot hold: `state()` refuses while any wait.
   */
  momentumCredit?: boolean;
  /**
   * The first step whose values count (default 0). Earlier steps are still traced (every row, with
   * its utilities) but add nothing to the ledger. For Adam-type optimizers, whose first steps are
   * valued through a linearisation far from the real step (the trace's linearisationGap), this
   * keeps those steps from dominating the values.
   */
  valueFrom?: number;
  /**
   * Leave out of the values the steps whose Taylor expansion broke down (trace `expansionBroken`:
   * the real batch change is far from the predicted one), default false. Such a step's values
   * describe a change that did not happen. Its row is still traced. The ledger then takes a step's
   * values once its validation loss after is known (at the next step, a checkpoint or the end).
   */
  excludeBrokenSteps?: boolean;
}

/**
 * A step's expansion breaks down when its batch Taylor error is more than this fraction of the
 * larger of the real and the predicted batch change (and above float32 rounding of the losses).
 */
export const EXPANSION_BREAKDOWN = 0.5;

const VALUER_KEYS = [
  'validation',
  'order',
  'perValidation',
  'validationColumns',
  'perValidationOrder',
  'validationWeights',
  'stageStarts',
  'route',
  'checkPairwiseLayers',
  'recordBatchIds',
  'gapSamples',
  'keepTrace',
  'onTraceRow',
  'signals',
  'classValues',
  'validationBatch',
  'validationSeed',
  'momentumCredit',
  'valueFrom',
  'excludeBrokenSteps',
];

/** One row of the per-step trace. Utilities are validation-loss decreases (positive = helped). */
export interface TraceEntry {
  step: number;
  lr: number;
  batchSize: number;
  clipFactor: number;
  trainLoss: number;
  validationLossBefore: number;
  /** Known once the next step has run (or after `finish()`); NaN until then. */
  validationLossAfter: number;
  /** Σ of this step's first-order values, and the first-order Taylor utility η⟨g_V, K g_B⟩. */
  firstOrderSum: number;
  firstOrderUtility: number;
  /** Same for second order (null for first-order runs). */
  secondOrderSum: number | null;
  secondOrderUtility: number | null;
  /** Σ values − Taylor utility of the run's order: zero up to rounding (efficiency). */
  efficiencyResidual: number;
  /** validationLossBefore − validationLossAfter: what the step really did. */
  actualUtility: number;
  /**
   * actualUtility − Taylor utility. The Taylor utility is U(B) − U(∅), so with momentum or weight
   * decay this also holds the empty-batch part emptyUtility, which no example is credited with.
   */
  taylorError: number;
  /**
   * U(∅) to first order: the Taylor utility of the step with an empty batch, Δθ(∅) = −η c
   * (momentum carried in, weight decay), η⟨g_V, c⟩. Zero for plain SGD without decay. First order
   * at every order: its curvature term −½η² cᵀH_V c would cost a second Hessian-vector product per
   * step, so for order 2 that term stays in batchTaylorError.
   */
  emptyUtility: number;
  /**
   * actualUtility − (emptyUtility + Taylor utility) = taylorError − emptyUtility: the error of the
   * Taylor expansion of the whole step, without the (first-order) empty-batch part that
   * taylorError holds.
   */
  batchTaylorError: number;
  /**
   * Adam-style optimizers: mean ‖linearised − real step‖/‖real step‖ over random sub-batches, i.e.
   * how far the step that the values are exact for is from what Adam would really do. Null for
   * the SGD family, whose linearised step is exact.
   */
  linearisationGap: number | null;
  /**
   * Pearson correlation, over the steps so far, of the predicted batch change (the Taylor utility
   * of the run's order) with the real one (actualUtility − emptyUtility): how far the values can
   * be trusted to track what the steps did. Null before 3 steps or when either does not vary.
   */
  taylorCorrelation: number | null;
  /**
   * 1 when the step's expansion broke down: |batchTaylorError| > EXPANSION_BREAKDOWN × the larger
   * of |real| and |predicted| batch change (and above 10⁻⁶ of the validation loss); else 0. Null
   * until the step's validation loss after is known.
   */
  expansionBroken: number | null;
  batchIds?: ExampleId[];
}

/** What the trainer hands the valuer for one step (see InRunValuer.valueStep). */
export interface ValueStepArgs {
  pass: Pass;
  gradSum: FloatArray;
  plan: StepPlan;
  trainLoss: number;
  ids: ExampleId[];
  groups: (string | undefined)[];
  linearisationGap?: number | null;
}

/** A step's ghost routes and the u1 spans that follow from them (InRunValuer.routePlan). */
interface RoutePlan {
  pairwise: boolean[];
  unchecked: number[];
  formed: number[] | undefined;
  /** The spans u1 is built, scaled and read on: the formed layers', or the whole vector. */
  u1Ranges: [number, number][];
}

/** The valuer's accumulated results, for checkpoints. */
export interface ValuerState {
  ledger: LedgerEntry[];
  /** The rows held in `trace`: all of them, or with `keepTrace: false` only the latest. */
  trace: TraceEntry[];
  /**
   * Sums behind taylorCorrelation: [steps, Σx, Σy, Σx², Σy², Σxy] (x predicted, y real batch
   * change). Absent from older checkpoints: the correlation is then null from there on.
   */
  taylorSums?: number[];
}

export interface StepValues {
  firstOrder: Float64Array;
  secondOrder: Float64Array | null;
  /** Row-major [batch, columns] first-order values per validation column, when requested. */
  perValidation?: Float64Array;
  /** The same for second order, with perValidationOrder 2. */
  perValidationSecond?: Float64Array;
}

/**
 * In-Run Data Shapley for one training run (DESIGN §1–§3). At each step it computes, for every
 * example i of the batch, φ_i = ⟨g_i, u_t⟩ with
 *   first order:  u_t = η Kᵀ g_V
 *   second order: u_t = Kᵀ(η g_V − η² H_V (c + ½ K g_B))
 * by ghost products (no per-example gradient is formed), adds them to the value ledger and writes
 * a trace row. It never changes the weights: training with and without it is bit-identical.
 */
export class InRunValuer {
  readonly order: 1 | 2;
  readonly ledger: ValueLedger;
  readonly trace: TraceEntry[] = [];
  readonly validation: Dataset;
  private readonly validationBatch: Batch;
  /** Loss weights of validationBatch's examples (normalised to mean 1), or null: unweighted. */
  private readonly validationBatchWeights: Float64Array | null = null;
  /** Validation weights by validation index (mean 1), or null. */
  private readonly weights: Float64Array | null = null;
  /** perValidation: the column of each validation index, and the number of columns. */
  private readonly columns: Int32Array | null = null;
  readonly columnCount: number = 0;
  /** perValidation: each column's [start, end) runs of positions in validationBatch. */
  private columnRuns: [number, number][][] = [];
  /** perValidation: each column's validation indices (for its own pass in second order). */
  private columnIndices: Int32Array[] = [];
  private readonly perValidationOrder: 1 | 2 = 1;
  private readonly route: GhostRouteChoice;
  private readonly checkPairwiseLayers: boolean;
  private readonly perValidation: boolean;
  private readonly recordBatchIds: boolean;
  readonly gapSamples: number;
  private readonly keepTrace: boolean;
  private readonly onTraceRow: ((row: TraceEntry) => void) | undefined;
  private readonly signals: boolean;
  /**
   * With class values: the validation batch holds V sorted by label (so each class is one range of
   * it, for its mean gradient); `validationOrder[j]` is the validation index at batch position j.
   * Null when V is in its own order.
   */
  private readonly validationOrder: Int32Array | null = null;
  /** With class values: each label's [start, end) range in the validation batch. */
  private readonly classRanges: Map<number, [number, number]> | null = null;
  /** With class values: every validation example's label, in V's own order. */
  private readonly validationLabels: Int32Array | null = null;
  /** validationBatch: the sample size k (null: all of V every step) and the samples' seed. */
  private readonly sampleSize: number | null = null;
  private readonly sampleSeed: number = 0;
  private readonly momentum: MomentumCredit | null = null;
  readonly valueFrom: number;
  /** validationBatch: the step whose trace row waits for its sample's loss after the step. */
  private pendingSampleStep: number | null = null;
  /** Whether the last row of `trace` still waits for its validation loss after. */
  private lastPending = false;
  private readonly excludeBrokenSteps: boolean;
  /** excludeBrokenSteps: the last step's values, held until its row is complete. */
  private pendingLedgerStep: Parameters<ValueLedger['addStep']>[0] | null = null;
  /** See ValuerState.taylorSums. */
  private taylorSums = new Float64Array(6);
  /**
   * Buffers of the valuer's passes, reused from step to step (see PassArena); each arena holds one
   * pass at a time, so passes alive together get their own:
   * - validation: the step's pass over V (forward, backward, HVP; read until valueStep returns);
   * - halves: with validationBatch, the two halves of the step's sample (the first also serves
   *   sampleLoss before them);
   * - column: with perValidationOrder 2, each column's pass, one after the other.
   * The training pass belongs to the trainer (args.pass) and is only read here.
   */
  private readonly arenas = {
    validation: new PassArena(),
    halves: [new PassArena(), new PassArena()],
    column: new PassArena(),
  };

  constructor(
    readonly model: Sequential,
    options: ValuerOptions,
  ) {
    checkKnownKeys('valuation', options, VALUER_KEYS);
    this.order = options.order ?? 1;
    if (this.order !== 1 && this.order !== 2) fail(`valuation.order must be 1 or 2, got ${options.order}`);
    this.route = options.route ?? 'auto';
    if (!['auto', 'pairwise', 'vector'].includes(this.route))
      fail(`valuation.route must be "auto", "pairwise" or "vector", got ${JSON.stringify(this.route)}`);
    this.checkPairwiseLayers = options.checkPairwiseLayers ?? true;
    if (typeof this.checkPairwiseLayers !== 'boolean')
      fail(
        `valuation.checkPairwiseLayers must be true or false, got ${describe(options.checkPairwiseLayers)}`,
      );
    this.perValidation = options.perValidation ?? false;
    this.recordBatchIds = options.recordBatchIds ?? false;
    this.gapSamples = checkNumber('valuation.gapSamples', options.gapSamples ?? 2, { min: 0, integer: true });
    this.keepTrace = options.keepTrace ?? true;
    if (typeof this.keepTrace !== 'boolean')
      fail(`valuation.keepTrace must be true or false, got ${describe(options.keepTrace)}`);
    if (options.onTraceRow !== undefined && typeof options.onTraceRow !== 'function')
      fail(`valuation.onTraceRow must be a function, got ${describe(options.onTraceRow)}`);
    this.onTraceRow = options.onTraceRow;
    this.validation = options.validation;
    if (!this.validation || this.validation.size === 0)
      fail('valuation.validation: the validation set is empty');
    const stageStarts = options.stageStarts ?? [];
    stageStarts.forEach((s, k) => {
      if (!Number.isInteger(s) || s < 1 || (k > 0 && s <= stageStarts[k - 1]))
        fail(
          `valuation.stageStarts must be increasing positive step numbers, got [${stageStarts.join(', ')}]`,
        );
    });
    this.valueFrom = checkNumber('valuation.valueFrom', options.valueFrom ?? 0, { min: 0, integer: true });
    this.excludeBrokenSteps = options.excludeBrokenSteps ?? false;
    if (typeof this.excludeBrokenSteps !== 'boolean')
      fail(`valuation.excludeBrokenSteps must be true or false, got ${describe(options.excludeBrokenSteps)}`);
    if (this.excludeBrokenSteps && options.momentumCredit)
      fail(
        'valuation.excludeBrokenSteps cannot be combined with momentumCredit (credits settle before a step is judged)',
      );
    this.signals = options.signals ?? true;
    if (typeof this.signals !== 'boolean')
      fail(`valuation.signals must be true or false, got ${describe(options.signals)}`);
    model.checkDataset(this.validation);
    const all = Array.from({ length: this.validation.size }, (_, i) => i);
    this.validationBatch = this.validation.batch(all, model.dtype);
    if (options.validationWeights !== undefined)
      this.weights = checkValidationWeights(options.validationWeights, this.validation.size);
    if (options.validationColumns !== undefined) {
      if (!this.perValidation) fail('valuation.validationColumns needs perValidation: true');
      this.columns = checkColumns(options.validationColumns, this.validation.size);
    } else if (this.perValidation) {
      this.columns = Int32Array.from(all);
    }
    if (this.columns) this.columnCount = this.columns.reduce((top, q) => Math.max(top, q + 1), 0);
    if (options.perValidationOrder !== undefined) {
      if (options.perValidationOrder !== 1 && options.perValidationOrder !== 2)
        fail(`valuation.perValidationOrder must be 1 or 2, got ${describe(options.perValidationOrder)}`);
      if (options.perValidationOrder === 2 && (this.order !== 2 || !this.perValidation))
        fail('valuation.perValidationOrder 2 needs order 2 and perValidation: true');
      this.perValidationOrder = options.perValidationOrder;
    }
    if (options.classValues !== undefined && typeof options.classValues !== 'boolean')
      fail(`valuation.classValues must be true or false, got ${describe(options.classValues)}`);
    const classValues = this.signals && options.classValues === true;
    const labels = classValues ? classLabels(model, this.validationBatch.targets) : null;
    this.validationLabels = labels ? Int32Array.from(labels) : null;
    if (options.validationBatch !== undefined) {
      const k = checkNumber('valuation.validationBatch', options.validationBatch, { min: 2, integer: true });
      if (k < this.validation.size) {
        if (this.perValidation)
          fail(
            'valuation.validationBatch: per-validation values need every validation example every step; drop one of the two',
          );
        this.sampleSize = k;
      }
      this.sampleSeed = checkNumber('valuation.validationSeed', options.validationSeed ?? 0, {
        integer: true,
      });
    }
    if (options.momentumCredit !== undefined && typeof options.momentumCredit !== 'boolean')
      fail(`valuation.momentumCredit must be true or false, got ${describe(options.momentumCredit)}`);
    if (options.momentumCredit)
      this.momentum = new MomentumCredit(model, (ids, credit) => this.ledger.addCredit(ids, credit));
    if (labels) {
      const order = Int32Array.from(all).sort((a, b) => labels[a] - labels[b] || a - b);
      if (order.some((index, j) => index !== j)) {
        this.validationOrder = order;
        this.validationBatch = this.validation.batch(order, model.dtype);
      }
      this.classRanges = new Map();
      order.forEach((index, j) => {
        const range = this.classRanges!.get(labels[index]);
        if (range) range[1] = j + 1;
        else this.classRanges!.set(labels[index], [j, j + 1]);
      });
    }
    const position = this.validationOrder ?? Int32Array.from(all);
    if (this.weights)
      this.validationBatchWeights = Float64Array.from(position, (index) => this.weights![index]);
    if (this.columns) {
      const columns = this.columns;
      const members: number[][] = Array.from({ length: this.columnCount }, () => []);
      for (const index of all) members[columns[index]].push(index);
      this.columnIndices = members.map((indices) => Int32Array.from(indices));
      this.columnRuns = Array.from({ length: this.columnCount }, () => []);
      position.forEach((index, j) => {
        const runs = this.columnRuns[columns[index]];
        const last = runs[runs.length - 1];
        if (last && last[1] === j) last[1] = j + 1;
        else runs.push([j, j + 1]);
      });
    }
    this.ledger = new ValueLedger({
      stageStarts,
      validationSize: this.perValidation ? this.columnCount : undefined,
      perValidationSecondOrder: this.perValidationOrder === 2,
      hasSecondOrder: this.order === 2,
      momentumCredit: options.momentumCredit === true,
    });
  }

  /**
   * Mean validation loss at the given weights (the model's own by default). Off the per-step path
   * (the last row, checkpoints), so its pass takes fresh arrays: callable at any time, from
   * onTraceRow too.
   */
  validationLoss(params: FloatArray = this.model.params): number {
    const { input, targets } = this.validationBatch;
    return mean(
      this.model.forward(input, targets, params, { weights: this.validationBatchWeights ?? undefined })
        .losses,
    );
  }

  /** A forward pass over validation examples (by index), with their loss weights, in `arena`. */
  private validationPass(indices: Int32Array | number[], arena: PassArena): Pass {
    const batch = this.validation.batch(indices, this.model.dtype, undefined, this.model.kernels);
    const weights = this.weights ? Float64Array.from(indices, (index) => this.weights![index]) : undefined;
    return this.model.forward(batch.input, batch.targets, this.model.params, { weights, arena });
  }

  /**
   * Values one step. Call after the training batch's backward pass and the optimizer's `plan`,
   * before `apply`: everything here is at the current weights w_t.
   */
  valueStep(args: ValueStepArgs): StepValues {
    if (this.sampleSize !== null) return this.valueSampledStep(args);
    const { pass, gradSum, plan } = args;
    const model = this.model;
    const n = pass.n;
    const eta = plan.lr;

    const { input, targets } = this.validationBatch;
    const m = input.n;
    const valPass = model.forward(input, targets, model.params, {
      weights: this.validationBatchWeights ?? undefined,
      arena: this.arenas.validation,
    });
    model.backward(valPass);
    const validationLoss = mean(valPass.losses);
    if (!Number.isFinite(validationLoss)) throw new DivergenceError(plan.step, 'the validation loss');
    this.completePrevious(validationLoss);

    // The pairwise route gives ⟨g_i, g_j⟩ directly, so it serves the first-order term only when
    // Kᵀ g_V is a multiple of g_V (scalar K) and no parameter is tied; second-order terms always
    // take the vector route.
    const canPair = plan.kDiagonal === null && model.sharedSlots.size === 0;
    // Per-validation values without the Gram matrix take the vector route on every layer.
    const columnVectors = this.perValidation && (!canPair || this.route === 'vector');
    const c = plan.c;
    // A pairwise layer's slice of g_V serves only the efficiency check, U(∅) (c) and momentum
    // credit; where none of them needs it, it is skipped, and the routes are chosen knowing that.
    const skipPairwiseGradient = !this.checkPairwiseLayers && c === null && this.momentum === null;
    const { pairwise, unchecked, formed, u1Ranges } = this.routePlan(
      canPair && !columnVectors,
      n,
      m,
      skipPairwiseGradient,
    );

    // u1 = η Kᵀ g_V, built in place: validation gradients summed with weight η/|V|, then K. Where
    // unchecked pairwise layers skip their slices of g_V, u1 is only built, scaled and read (by the
    // vector-route layers and the utility below) on the other layers' slices; K is a scalar there
    // (pairwise layers need one), so it applies slice by slice.
    const u1 = this.workspace('u1', false);
    for (let r = 0; r < u1Ranges.length; r++) u1.fill(0, u1Ranges[r][0], u1Ranges[r][1]);
    model.addGrad(valPass, eta / m, u1, 0, m, formed);
    // U(∅) to first order, η⟨g_V, c⟩, while u1 is still η g_V.
    const emptyUtility = c ? this.dot(u1, c) : 0;
    if (plan.step >= this.valueFrom) this.momentum?.add(plan.step, pass, args.ids, plan, u1);
    // Taylor utilities from full vectors, independent of the per-example dots (K is symmetric):
    // first order η⟨g_V, K g_B⟩ = ⟨u1, g_B⟩; second order subtracts η²⟨K g_B, H_V x⟩ = ⟨u2, g_B⟩.
    // Unchecked pairwise layers add their values' sum below.
    let firstOrderUtility = 0;
    for (let r = 0; r < u1Ranges.length; r++) {
      const start = u1Ranges[r][0];
      const end = u1Ranges[r][1];
      const slice = span(u1, start, end);
      applyK(plan, slice, slice, model.kernels);
      firstOrderUtility += this.dot(slice, span(gradSum, start, end));
    }
    let secondOrderTerm = 0;
    let u2: FloatArray | null = null;
    let x: FloatArray | null = null;
    if (this.order === 2) {
      // u2 = η² Kᵀ H_V x, with H_V the Hessian of the *mean* validation loss.
      x = this.curvatureDirection(plan, gradSum);
      u2 = this.secondOrderVector(valPass, x, plan, m, 'u2');
      secondOrderTerm = this.dot(u2, gradSum);
    }

    const dots2 = new Float64Array(n);
    let firstOrder: Float64Array;
    let perValidation: Float64Array | undefined;
    const Q = this.columnCount;
    if (columnVectors) {
      // Per-validation values without the Gram matrix: one vector u_q = η Kᵀ g_q / |V| per
      // validation column (the column's gradient materialised once), all dotted in one sweep.
      const us: FloatArray[] = [];
      for (let q = 0; q < Q; q++) {
        const gq = this.workspace(`column-${q}`);
        for (const [start, end] of this.columnRuns[q]) model.addGrad(valPass, 1, gq, start, end);
        const uq = applyK(plan, gq, gq, model.kernels);
        model.kernels.scaleVector(uq, eta / m, null, uq);
        us.push(uq);
      }
      const outs = us.map(() => new Float64Array(n));
      model.ghostDot(pass, u2 ? [...us, u2] : us, u2 ? [...outs, dots2] : outs);
      perValidation = new Float64Array(n * Q);
      firstOrder = new Float64Array(n);
      outs.forEach((out, q) => {
        for (let i = 0; i < n; i++) {
          perValidation![i * Q + q] = out[i];
          firstOrder[i] += out[i];
        }
      });
    } else {
      const ghost = this.ghostFirstOrder(pass, valPass, {
        u1,
        u2,
        dots2,
        pairwise,
        gramScale: eta * plan.kScale,
      });
      firstOrder = ghost.values;
      if (unchecked.length > 0) firstOrderUtility += ghost.pairwiseSum;
      if (this.perValidation) perValidation = this.gramColumns(ghost.gram!, n);
    }
    const secondOrderUtility = u2 ? firstOrderUtility - secondOrderTerm : null;
    let secondOrder: Float64Array | null = null;
    if (u2) {
      secondOrder = new Float64Array(n);
      for (let i = 0; i < n; i++) secondOrder[i] = firstOrder[i] - dots2[i];
    }
    const perValidationSecond =
      perValidation && this.perValidationOrder === 2
        ? this.secondOrderColumns(pass, plan, perValidation, u2!, x!)
        : undefined;
    const signals = this.signals
      ? this.stepSignals(pass, plan, this.classRanges ? [{ pass: valPass, ranges: this.classRanges }] : null)
      : undefined;
    this.record(args, {
      validationLoss,
      firstOrder,
      secondOrder,
      firstOrderUtility,
      secondOrderUtility,
      emptyUtility,
      perValidation,
      perValidationSecond,
      signals,
      variance: null,
    });
    return { firstOrder, secondOrder, perValidation, perValidationSecond };
  }

  /** The train × validation Gram matrix [n, |V|] (batch order) summed into [n, columns]. */
  private gramColumns(gram: Float64Array, n: number): Float64Array {
    const m = this.validationBatch.input.n;
    const Q = this.columnCount;
    const out = new Float64Array(n * Q);
    this.columnRuns.forEach((runs, q) => {
      for (let i = 0; i < n; i++) {
        let total = 0;
        for (const [start, end] of runs) for (let j = start; j < end; j++) total += gram[i * m + j];
        out[i * Q + q] = total;
      }
    });
    return out;
  }

  /**
   * Second-order values per column: first order minus ⟨g_i, u2_q⟩, u2_q = η² Kᵀ H_q x / |V| with
   * H_q the Hessian of column q's summed (weighted) losses — one validation pass and HVP per column.
   * The u2_q sum to the step's u2, so the columns sum to the second-order value.
   */
  private secondOrderColumns(
    pass: Pass,
    plan: StepPlan,
    firstOrder: Float64Array,
    u2: FloatArray,
    x: FloatArray,
  ): Float64Array {
    const model = this.model;
    const n = pass.n;
    const m = this.validation.size;
    const Q = this.columnCount;
    const us =
      Q === 1
        ? [u2]
        : this.columnIndices.map((indices, q) => {
            const columnPass = this.validationPass(indices, this.arenas.column);
            model.backward(columnPass);
            return this.secondOrderVector(columnPass, x, plan, m, `u2-column-${q}`);
          });
    const outs = us.map(() => new Float64Array(n));
    model.ghostDot(pass, us, outs);
    const second = new Float64Array(n * Q);
    for (let i = 0; i < n; i++)
      for (let q = 0; q < Q; q++) second[i * Q + q] = firstOrder[i * Q + q] - outs[q][i];
    return second;
  }

  /** x = c + ½ K g_B: the direction of the step's second-order term (DESIGN §2), in workspace 'x'. */
  private curvatureDirection(plan: StepPlan, gradSum: FloatArray): FloatArray {
    const { kernels } = this.model;
    // ½ K g_B with K's scale halved (exact), then c added: the same bits as c + ½(K g_B).
    const x = this.workspace('x', false);
    kernels.scaleVector(gradSum, 0.5 * plan.kScale, plan.kDiagonal, x);
    if (plan.c) kernels.add(plan.c, x, x);
    return x;
  }

  /**
   * η² Kᵀ H x / count, H the Hessian of a validation pass's summed (weighted) losses: its
   * second-order vector, in workspace `name`.
   */
  private secondOrderVector(
    valPass: Pass,
    x: FloatArray,
    plan: StepPlan,
    count: number,
    name: string,
  ): FloatArray {
    const u = this.workspace(name);
    this.model.hessianVectorProduct(valPass, x, u);
    this.model.kernels.scaleVector(u, (plan.lr * plan.lr) / count, null, u);
    return applyK(plan, u, u, this.model.kernels);
  }

  /** Adds a valued step to the trace and the ledger. */
  private record(
    args: ValueStepArgs,
    step: {
      validationLoss: number;
      firstOrder: Float64Array;
      secondOrder: Float64Array | null;
      firstOrderUtility: number;
      secondOrderUtility: number | null;
      emptyUtility: number;
      perValidation: Float64Array | undefined;
      perValidationSecond?: Float64Array;
      signals: StepSignals | undefined;
      variance: Float64Array | null;
    },
  ): void {
    const { plan } = args;
    const { firstOrder, secondOrder, firstOrderUtility, secondOrderUtility } = step;
    const firstOrderSum = sum(firstOrder);
    const secondOrderSum = secondOrder ? sum(secondOrder) : null;
    const mainSum = secondOrderSum ?? firstOrderSum;
    const mainUtility = secondOrderUtility ?? firstOrderUtility;
    this.trace.push({
      step: plan.step,
      lr: plan.lr,
      batchSize: args.pass.n,
      clipFactor: plan.clipFactor,
      trainLoss: args.trainLoss,
      validationLossBefore: step.validationLoss,
      validationLossAfter: Number.NaN,
      firstOrderSum,
      firstOrderUtility,
      secondOrderSum,
      secondOrderUtility,
      efficiencyResidual: mainSum - mainUtility,
      actualUtility: Number.NaN,
      taylorError: Number.NaN,
      emptyUtility: step.emptyUtility,
      batchTaylorError: Number.NaN,
      linearisationGap: args.linearisationGap ?? null,
      taylorCorrelation: null,
      expansionBroken: null,
      ...(this.recordBatchIds ? { batchIds: args.ids.slice() } : {}),
    });
    this.lastPending = true;
    // Rows before the new one are complete (and handed to onTraceRow) by now.
    if (!this.keepTrace) this.trace.splice(0, this.trace.length - 1);
    if (plan.step < this.valueFrom) return;
    const values = {
      step: plan.step,
      ids: args.ids,
      groups: args.groups,
      firstOrder,
      secondOrder,
      perValidation: step.perValidation,
      perValidationSecond: step.perValidationSecond,
      signals: step.signals,
      variance: step.variance ?? undefined,
    };
    if (this.excludeBrokenSteps) this.pendingLedgerStep = values;
    else this.ledger.addStep(values);
  }

  /**
   * The validation sample of a step as two random halves, each sorted by label (classification)
   * or by index: a pure function of (validationSeed, step), so resumed runs draw the same ones.
   */
  sampleHalves(step: number): Int32Array[] {
    const k = this.sampleSize!;
    const rng = new Rng((this.sampleSeed ^ Math.imul(step + 1, 0x9e3779b1)) >>> 0);
    const drawn = rng.permutation(this.validation.size).subarray(0, k);
    const half = Math.ceil(k / 2);
    const labels = this.validationLabels;
    return [drawn.slice(0, half), drawn.slice(half)].map((part) =>
      part.sort((a, b) => (labels ? labels[a] - labels[b] : 0) || a - b),
    );
  }

  /** Mean validation loss of a step's sample at the model's current weights. */
  private sampleLoss(step: number): number {
    let total = 0;
    for (const part of this.sampleHalves(step))
      for (const loss of this.validationPass(part, this.arenas.halves[0]).losses) total += loss;
    return total / this.sampleSize!;
  }

  /**
   * valueStep with validationBatch: the same values against a random sample S of V in two halves
   * A and B. With d_A, d_B the values against each half alone, the step's value is
   * (|A| d_A + |B| d_B)/k, unbiased for the full-V value, and (d_A − d_B)²·(1/k − 1/|V|)/(1/|A| + 1/|B|)
   * is an unbiased estimate of its variance under sampling without replacement. Every vector takes
   * the vector ghost route.
   */
  private valueSampledStep(args: ValueStepArgs): StepValues {
    const { pass, gradSum, plan } = args;
    const model = this.model;
    const n = pass.n;
    const eta = plan.lr;
    const m = this.validation.size;
    const k = this.sampleSize!;
    // The previous row's "after" loss is its own sample's loss at these (its after) weights.
    if (this.lastPending && this.pendingSampleStep !== null)
      this.completePrevious(this.sampleLoss(this.pendingSampleStep));

    const halves = this.sampleHalves(plan.step);
    const passes = halves.map((indices, h) => {
      const valPass = this.validationPass(indices, this.arenas.halves[h]);
      model.backward(valPass);
      return valPass;
    });
    let lossTotal = 0;
    for (const valPass of passes) for (const loss of valPass.losses) lossTotal += loss;
    const validationLoss = lossTotal / k;
    if (!Number.isFinite(validationLoss)) throw new DivergenceError(plan.step, 'the validation loss');

    const sizes = passes.map((p) => p.n);
    const c = plan.c;
    let emptyUtility = 0;
    // Per half h: u1_h = η Kᵀ ḡ_h and, for order 2, u2_h = η² Kᵀ H_h x/|h|.
    const u1s = passes.map((valPass, h) => {
      const u = this.workspace(`u1-${h}`);
      model.addGrad(valPass, eta / sizes[h], u);
      if (c) emptyUtility += (sizes[h] / k) * this.dot(u, c);
      return applyK(plan, u, u, this.model.kernels);
    });
    if (this.momentum && plan.step >= this.valueFrom) {
      // η ḡ_S, the sample's mean validation gradient (before K), summed over both halves.
      const etaGV = this.workspace('eta-gv');
      for (const valPass of passes) model.addGrad(valPass, eta / k, etaGV);
      this.momentum.add(plan.step, pass, args.ids, plan, etaGV);
    }
    let u2s: FloatArray[] = [];
    if (this.order === 2) {
      const x = this.curvatureDirection(plan, gradSum);
      u2s = passes.map((valPass, h) => this.secondOrderVector(valPass, x, plan, sizes[h], `u2-${h}`));
    }
    const outs = [...u1s, ...u2s].map(() => new Float64Array(n));
    model.ghostDot(pass, [...u1s, ...u2s], outs);
    const [a, b] = sizes;
    const mix = (x: number, y: number) => (a * x + b * y) / k;
    const spread = (1 / k - 1 / m) / (1 / a + 1 / b);
    const firstOrder = new Float64Array(n);
    const secondOrder = this.order === 2 ? new Float64Array(n) : null;
    const variance = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      firstOrder[i] = mix(outs[0][i], outs[1][i]);
      let dA = outs[0][i];
      let dB = outs[1][i];
      if (secondOrder) {
        dA -= outs[2][i];
        dB -= outs[3][i];
        secondOrder[i] = mix(dA, dB);
      }
      variance[i] = (dA - dB) ** 2 * spread;
    }
    const mixVectors = (vs: FloatArray[]) => {
      let total = 0;
      vs.forEach((v, h) => {
        total += (sizes[h] / k) * this.dot(v, gradSum);
      });
      return total;
    };
    const firstOrderUtility = mixVectors(u1s);
    const secondOrderUtility = this.order === 2 ? firstOrderUtility - mixVectors(u2s) : null;
    const signals = this.signals
      ? this.stepSignals(
          pass,
          plan,
          this.validationLabels
            ? passes.map((valPass, h) => ({
                pass: valPass,
                ranges: labelRanges(this.validationLabels!, halves[h]),
              }))
            : null,
        )
      : undefined;
    this.record(args, {
      validationLoss,
      firstOrder,
      secondOrder,
      firstOrderUtility,
      secondOrderUtility,
      emptyUtility,
      perValidation: undefined,
      signals,
      variance,
    });
    this.pendingSampleStep = plan.step;
    return { firstOrder, secondOrder };
  }

  /**
   * The step's per-example signals besides the values (see LedgerEntry). `classParts`: validation
   * passes sorted by label with each label's range (one pass for the full V, two for a sample), for
   * the class-conditional values; null without them.
   */
  private stepSignals(
    pass: Pass,
    plan: StepPlan,
    classParts: { pass: Pass; ranges: Map<number, [number, number]> }[] | null,
  ): StepSignals {
    const model = this.model;
    const n = pass.n;
    const eta = plan.lr;
    const selfInfluence = new Float64Array(n);
    model.ghostSelfDot(pass, plan.kDiagonal, selfInfluence);
    scaleInPlace(selfInfluence, eta * plan.kScale);
    const labels = classLabels(model, pass.lossTape.targets);
    if (!labels) return { selfInfluence, losses: pass.losses.slice(), margins: null, classValues: null };
    const margins = classMargins(model, pass, labels);
    if (!classParts) return { selfInfluence, losses: pass.losses.slice(), margins, classValues: null };

    // u_c = η Kᵀ ḡ_{V_c} for each label c of the batch, ḡ_{V_c} the mean gradient of V's class c.
    const us: FloatArray[] = [];
    const slotOf = new Map<number, number>();
    const which = new Int32Array(n).fill(-1);
    for (let i = 0; i < n; i++) {
      const ranges = classParts.map((part) => part.ranges.get(labels[i]) ?? ([0, 0] as [number, number]));
      const count = ranges.reduce((total, [start, end]) => total + end - start, 0);
      if (count === 0) continue;
      let slot = slotOf.get(labels[i]);
      if (slot === undefined) {
        slot = us.length;
        slotOf.set(labels[i], slot);
        const u = this.workspace(`class-${slot}`);
        classParts.forEach((part, p) => {
          if (ranges[p][1] > ranges[p][0])
            model.addGrad(part.pass, eta / count, u, ranges[p][0], ranges[p][1]);
        });
        us.push(applyK(plan, u, u, this.model.kernels));
      }
      which[i] = slot;
    }
    const classValues = new Float64Array(n);
    model.ghostDotEach(pass, us, which, classValues);
    for (let i = 0; i < n; i++) if (which[i] < 0) classValues[i] = Number.NaN;
    return { selfInfluence, losses: pass.losses.slice(), margins, classValues };
  }

  /**
   * The step's routes (pairwiseLayers) and what follows from them: the pairwise layers whose slice
   * of g_V is skipped (`unchecked`, when `skipsValidationGradient`), the layers whose slices u1 is
   * built on (`formed`, undefined for all) and those slices' spans. Kept from the previous step
   * when its inputs are the same, as they are from step to step of a run.
   */
  private routePlan(canPair: boolean, n: number, m: number, skipsValidationGradient: boolean): RoutePlan {
    const last = this.lastRoutePlan;
    if (
      last &&
      last.canPair === canPair &&
      last.n === n &&
      last.m === m &&
      last.skipsValidationGradient === skipsValidationGradient
    )
      return last;
    const pairwise = this.pairwiseLayers(canPair, n, m, skipsValidationGradient);
    const unchecked = skipsValidationGradient ? pairwise.flatMap((p, l) => (p ? [l] : [])) : [];
    const formed = unchecked.length > 0 ? pairwise.flatMap((p, l) => (p ? [] : [l])) : undefined;
    const u1Ranges: [number, number][] = formed
      ? this.model.parameterRanges(formed)
      : [[0, this.model.parameterCount]];
    this.lastRoutePlan = { canPair, n, m, skipsValidationGradient, pairwise, unchecked, formed, u1Ranges };
    return this.lastRoutePlan;
  }

  private lastRoutePlan:
    | (RoutePlan & { canPair: boolean; n: number; m: number; skipsValidationGradient: boolean })
    | null = null;

  /**
   * Which parameter layers (in `paramLayers` order) take the pairwise route this step: the cheaper
   * one under route 'auto' (the vector route charged the layer's validation gradient when the
   * pairwise one would skip it), every layer that has one under 'pairwise' or with perValidation
   * (which keeps the Gram matrix), none when the pairwise route cannot serve (`canPair` false).
   */
  private pairwiseLayers(
    canPair: boolean,
    n: number,
    m: number,
    skipsValidationGradient: boolean,
  ): boolean[] {
    const model = this.model;
    if (!canPair) return model.paramLayers.map(() => false);
    const routes = model.ghostRoutes(n, m, { validationGradient: skipsValidationGradient });
    return model.paramLayers.map(
      (layer, l) =>
        layer.ghostPairwise !== undefined &&
        (this.perValidation ||
          this.route === 'pairwise' ||
          (this.route === 'auto' && routes[l] === 'pairwise')),
    );
  }

  /**
   * First-order values ⟨g_i, u1⟩ by each layer's ghost route (and ⟨g_i, u2⟩ into dots2). Layers on
   * the pairwise route add into the train × validation Gram matrix instead, which is turned into
   * values at the end (and kept, scaled, as per-validation values); pairwiseSum is its scaled total.
   */
  private ghostFirstOrder(
    pass: Pass,
    valPass: Pass,
    args: {
      u1: FloatArray;
      u2: FloatArray | null;
      dots2: Float64Array;
      pairwise: boolean[];
      gramScale: number;
    },
  ): { values: Float64Array; gram: Float64Array | null; pairwiseSum: number } {
    const { u1, u2, dots2, pairwise } = args;
    const model = this.model;
    const n = pass.n;
    const m = valPass.n;
    // The training pass's context: a ghost product may keep what it forms on the pass's tapes.
    const ctx = model.passContext(pass);
    const dots1 = new Float64Array(n);
    const gram = this.gramBuffer(n * m);
    let usedGram = false;
    const vectors = u2 ? [u1, u2] : [u1];
    const vectorDots = u2 ? [dots1, dots2] : [dots1];
    const second = u2 ? [u2] : [];
    const secondDots = [dots2];
    for (let k = 0; k < model.paramLayers.length; k++) {
      const layer = model.paramLayers[k];
      const tape = model.paramTape(pass.tapes, k);
      if (pairwise[k]) {
        layer.ghostPairwise!(ctx, tape, model.paramTape(valPass.tapes, k), gram);
        usedGram = true;
        if (u2) layer.ghostDot!(ctx, tape, second, secondDots);
      } else {
        layer.ghostDot!(ctx, tape, vectors, vectorDots);
      }
    }
    if (!usedGram) return { values: dots1, gram: null, pairwiseSum: 0 };
    // u1 = η·kScale·g_V and g_V is the mean of the g_j, so each Gram entry counts η·kScale/|V|.
    const scale = args.gramScale / m;
    const rowSums = this.scratch.zeros('gramRowSums', 'float64', n);
    const ones = this.scratch.take('gramOnes', 'float64', m).fill(1);
    model.kernels.rowDots(gram, ones, null, n, m, m, 0, rowSums);
    let pairwiseSum = 0;
    for (let i = 0; i < n; i++) {
      dots1[i] += scale * rowSums[i];
      pairwiseSum += scale * rowSums[i];
    }
    // Per-validation values keep the matrix itself, scaled.
    if (this.perValidation) scaleInPlace(gram, scale);
    return { values: dots1, gram, pairwiseSum };
  }

  private readonly buffers = new Map<string, FloatArray>();
  private gram: Float64Array | null = null;
  /** Per-call temporaries (the Gram matrix's row sums), reused from step to step. */
  private readonly scratch = new Scratch();

  /** The train × validation Gram matrix's buffer, zeroed, reused from step to step. */
  private gramBuffer(length: number): Float64Array {
    if (!this.gram || this.gram.length < length) this.gram = new Float64Array(length);
    const gram = this.gram.length === length ? this.gram : this.gram.subarray(0, length);
    return gram.fill(0);
  }

  /** ⟨a, b⟩ over the parameters, in float64, by the kernels (a native loop is several times JavaScript's). */
  private dot(a: FloatArray, b: FloatArray): number {
    this.dotResult[0] = 0;
    this.model.kernels.rowDots(a, b, null, 1, a.length, 0, 0, this.dotResult);
    return this.dotResult[0];
  }

  private readonly dotResult = new Float64Array(1);

  /** A parameter-shaped scratch vector reused from step to step, zeroed unless `zeroed` is false. */
  private workspace(name: string, zeroed = true): FloatArray {
    let buffer = this.buffers.get(name);
    if (!buffer) {
      buffer = allocFloat(this.model.dtype, this.model.parameterCount);
      this.buffers.set(name, buffer);
    } else if (zeroed) {
      buffer.fill(0);
    }
    return buffer;
  }

  state(): ValuerState {
    if (this.momentum?.waiting)
      fail(
        'momentum credit keeps the last steps’ batches and weights in memory, which a checkpoint cannot hold; run with checkpoints off (checkpointEvery: 0) or without momentumCredit',
      );
    // Held values cannot wait in a checkpoint: complete their row now, at the weights after the
    // step (the loss the next step would measure first), so they enter the ledger or are dropped.
    if (this.pendingLedgerStep) this.finishPendingRow();
    return {
      ledger: this.ledger.snapshot(),
      trace: this.trace.map((row) => ({ ...row })),
      taylorSums: Array.from(this.taylorSums),
    };
  }

  /**
   * Continues from `state`. A last row without its validation loss after is completed (and given
   * to onTraceRow) by the next step; the rows before it are taken as already handed on.
   */
  restore(state: ValuerState): void {
    this.ledger.restore(state.ledger);
    const rows = this.keepTrace ? state.trace : state.trace.slice(-1);
    this.trace.length = 0;
    this.trace.push(...rows.map((row) => ({ ...row })));
    const last = this.trace[this.trace.length - 1];
    this.lastPending = last !== undefined && Number.isNaN(last.validationLossAfter);
    this.pendingSampleStep = this.lastPending && this.sampleSize !== null ? last.step : null;
    this.taylorSums = state.taylorSums
      ? Float64Array.from(state.taylorSums)
      : new Float64Array(6).fill(last ? Number.NaN : 0);
  }

  /** Evaluates the validation loss at the final weights to complete the last trace row. */
  finish(): void {
    this.momentum?.finish();
    this.finishPendingRow();
  }

  /** Completes the last trace row with the validation loss at the current (after-step) weights. */
  private finishPendingRow(): void {
    if (!this.lastPending) return;
    this.completePrevious(
      this.pendingSampleStep === null ? this.validationLoss() : this.sampleLoss(this.pendingSampleStep),
    );
  }

  private completePrevious(validationLoss: number): void {
    const last = this.trace[this.trace.length - 1];
    if (!last || !this.lastPending) return;
    last.validationLossAfter = validationLoss;
    last.actualUtility = last.validationLossBefore - validationLoss;
    const predicted = last.secondOrderUtility ?? last.firstOrderUtility;
    last.taylorError = last.actualUtility - predicted;
    last.batchTaylorError = last.taylorError - last.emptyUtility;
    const real = last.actualUtility - last.emptyUtility;
    const error = Math.abs(last.batchTaylorError);
    const broken =
      error > EXPANSION_BREAKDOWN * Math.max(Math.abs(real), Math.abs(predicted)) &&
      error > 1e-6 * Math.abs(last.validationLossBefore);
    last.expansionBroken = broken ? 1 : 0;
    last.taylorCorrelation = this.addToCorrelation(predicted, real);
    this.lastPending = false;
    if (this.pendingLedgerStep) {
      if (!broken) this.ledger.addStep(this.pendingLedgerStep);
      this.pendingLedgerStep = null;
    }
    this.onTraceRow?.({ ...last });
  }

  /** Adds a step's (predicted, real) batch change; returns the running Pearson correlation. */
  private addToCorrelation(x: number, y: number): number | null {
    const sums = this.taylorSums;
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      sums.fill(Number.NaN);
      return null;
    }
    sums[0] += 1;
    sums[1] += x;
    sums[2] += y;
    sums[3] += x * x;
    sums[4] += y * y;
    sums[5] += x * y;
    const n = sums[0];
    const sx = sums[1];
    const sy = sums[2];
    const sxx = sums[3];
    const syy = sums[4];
    const sxy = sums[5];
    if (!(n >= 3)) return null;
    const vx = sxx - (sx * sx) / n;
    const vy = syy - (sy * sy) / n;
    if (!(vx > 0 && vy > 0)) return null;
    return Math.max(-1, Math.min(1, (sxy - (sx * sy) / n) / Math.sqrt(vx * vy)));
  }
}

/**
 * One integer label per example when the loss classifies one output per example (softmax
 * cross-entropy over classes, or binary logistic with 0/1 targets); null otherwise.
 */
function classLabels(model: Sequential, targets: Targets): Int32Array | null {
  if (model.outputShape.tokens !== 1) return null;
  if (model.loss.kind === 'softmax-cross-entropy' && targets instanceof Int32Array) return targets;
  if (model.loss.kind === 'binary-logistic' && model.outputShape.width === 1)
    return Int32Array.from(targets, (y) => (y >= 0.5 ? 1 : 0));
  return null;
}

/** Each example's margin: its label's logit minus the largest other logit (binary: ±logit). */
function classMargins(model: Sequential, pass: Pass, labels: Int32Array): Float64Array {
  const logits = pass.lossTape.output.data;
  const width = model.outputShape.width;
  const margins = new Float64Array(pass.n);
  for (let i = 0; i < pass.n; i++) {
    if (width === 1) {
      margins[i] = labels[i] === 1 ? logits[i] : -logits[i];
      continue;
    }
    let other = Number.NEGATIVE_INFINITY;
    for (let k = 0; k < width; k++) if (k !== labels[i]) other = Math.max(other, logits[i * width + k]);
    margins[i] = logits[i * width + labels[i]] - other;
  }
  return margins;
}

/** Each label's [start, end) range in `indices` (sorted by label). */
function labelRanges(labels: Int32Array, indices: Int32Array): Map<number, [number, number]> {
  const ranges = new Map<number, [number, number]>();
  indices.forEach((index, j) => {
    const range = ranges.get(labels[index]);
    if (range) range[1] = j + 1;
    else ranges.set(labels[index], [j, j + 1]);
  });
  return ranges;
}

function scaleInPlace(a: FloatArray | Float64Array, s: number): void {
  for (let e = 0; e < a.length; e++) a[e] *= s;
}

function sum(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

/** Validation weights checked (finite, ≥ 0, one per example, not all 0) and scaled to mean 1. */
function checkValidationWeights(weights: unknown, m: number): Float64Array {
  if (!(weights instanceof Float64Array) || weights.length !== m)
    fail(`valuation.validationWeights must be a Float64Array of ${m} weights, one per validation example`);
  let total = 0;
  weights.forEach((w, j) => {
    if (!(Number.isFinite(w) && w >= 0))
      fail(`valuation.validationWeights[${j}] must be a finite number ≥ 0, got ${describe(w)}`);
    total += w;
  });
  if (total === 0) fail('valuation.validationWeights are all 0: no validation example counts');
  return Float64Array.from(weights, (w) => (w * m) / total);
}

/** Validation columns checked: one integer per example, the columns 0..Q−1 each used. */
function checkColumns(columns: unknown, m: number): Int32Array {
  if (!(columns instanceof Int32Array) || columns.length !== m)
    fail(
      `valuation.validationColumns must be an Int32Array of ${m} column indices, one per validation example`,
    );
  const used = new Set<number>();
  columns.forEach((q, j) => {
    if (q < 0) fail(`valuation.validationColumns[${j}] is ${q}; columns are numbered from 0`);
    used.add(q);
  });
  const count = columns.reduce((top, q) => Math.max(top, q + 1), 0);
  if (used.size !== count)
    fail(`valuation.validationColumns: columns run 0..${count - 1} but only ${used.size} of them are used`);
  return columns;
}

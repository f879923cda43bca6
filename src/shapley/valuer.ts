import type { Batch, Dataset, ExampleId } from '../data/dataset.js';
import { allocFloat } from '../kernels/index.js';
import type { FloatArray } from '../kernels/types.js';
import { forEachParamLayer } from '../layers/chain.js';
import { mean, type Pass, type Sequential } from '../models/sequential.js';
import { applyK, type StepPlan } from '../optim/types.js';
import { checkKnownKeys, checkNumber, DivergenceError, describe, fail } from '../util/errors.js';
import { type LedgerEntry, ValueLedger } from './ledger.js';

export type GhostRouteChoice = 'auto' | 'pairwise' | 'vector';

export interface ValuerOptions {
  /** The validation set V: values measure the decrease of its mean loss. Evaluated in full every step. */
  validation: Dataset;
  /** 1: first-order values only; 2: second-order values too (one Hessian-vector product per step). */
  order?: 1 | 2;
  /** Keep each example's first-order value split by validation example (the train × validation matrix). */
  perValidation?: boolean;
  /** First steps of training stages after the first; values are also totalled per stage. */
  stageStarts?: number[];
  /** Ghost route for every layer; 'auto' takes the cheaper one per layer from the shapes. */
  route?: GhostRouteChoice;
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
}

const VALUER_KEYS = [
  'validation',
  'order',
  'perValidation',
  'stageStarts',
  'route',
  'recordBatchIds',
  'gapSamples',
  'keepTrace',
  'onTraceRow',
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
  batchIds?: ExampleId[];
}

/** The valuer's accumulated results, for checkpoints. */
export interface ValuerState {
  ledger: LedgerEntry[];
  /** The rows held in `trace`: all of them, or with `keepTrace: false` only the latest. */
  trace: TraceEntry[];
}

export interface StepValues {
  firstOrder: Float64Array;
  secondOrder: Float64Array | null;
  /** Row-major [batch, |V|] first-order values per validation example, when requested. */
  perValidation?: Float64Array;
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
  private readonly route: GhostRouteChoice;
  private readonly perValidation: boolean;
  private readonly recordBatchIds: boolean;
  readonly gapSamples: number;
  private readonly keepTrace: boolean;
  private readonly onTraceRow: ((row: TraceEntry) => void) | undefined;
  /** Whether the last row of `trace` still waits for its validation loss after. */
  private lastPending = false;

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
    model.checkDataset(this.validation);
    const all = Array.from({ length: this.validation.size }, (_, i) => i);
    this.validationBatch = this.validation.batch(all, model.dtype);
    this.ledger = new ValueLedger({
      stageStarts,
      validationSize: this.perValidation ? this.validation.size : undefined,
      hasSecondOrder: this.order === 2,
    });
  }

  /** Mean validation loss at the given weights (the model's own by default). */
  validationLoss(params: FloatArray = this.model.params): number {
    const { input, targets } = this.validationBatch;
    return mean(this.model.forward(input, targets, params).losses);
  }

  /**
   * Values one step. Call after the training batch's backward pass and the optimizer's `plan`,
   * before `apply`: everything here is at the current weights w_t.
   */
  valueStep(args: {
    pass: Pass;
    gradSum: FloatArray;
    plan: StepPlan;
    trainLoss: number;
    ids: ExampleId[];
    groups: (string | undefined)[];
    linearisationGap?: number | null;
  }): StepValues {
    const { pass, gradSum, plan } = args;
    const model = this.model;
    const P = model.parameterCount;
    const n = pass.n;
    const eta = plan.lr;

    const { input, targets } = this.validationBatch;
    const m = input.n;
    const valPass = model.forward(input, targets);
    model.backward(valPass);
    const validationLoss = mean(valPass.losses);
    if (!Number.isFinite(validationLoss)) throw new DivergenceError(plan.step, 'the validation loss');
    this.completePrevious(validationLoss);

    // u1 = η Kᵀ g_V, built in place: validation gradients summed with weight η/|V|, then K.
    const u1 = this.workspace('u1');
    model.addGrad(valPass, eta / m, u1);
    // U(∅) to first order, η⟨g_V, c⟩, while u1 is still η g_V.
    const c = plan.c;
    const emptyUtility = c ? dot(u1, c) : 0;
    applyK(plan, u1, u1);
    // Taylor utilities from full vectors, independent of the per-example dots (K is symmetric):
    // first order η⟨g_V, K g_B⟩ = ⟨u1, g_B⟩; second order subtracts η²⟨K g_B, H_V x⟩ = ⟨u2, g_B⟩.
    const firstOrderUtility = dot(u1, gradSum);
    let secondOrderUtility: number | null = null;
    let u2: FloatArray | null = null;
    if (this.order === 2) {
      // x = c + ½ K g_B;  u2 = η² Kᵀ H_V x, with H_V the Hessian of the *mean* validation loss.
      const x = applyK(plan, gradSum, this.workspace('x'));
      for (let e = 0; e < P; e++) x[e] = (c ? c[e] : 0) + 0.5 * x[e];
      u2 = this.workspace('u2');
      model.hessianVectorProduct(valPass, x, u2);
      scaleInPlace(u2, (eta * eta) / m);
      applyK(plan, u2, u2);
      secondOrderUtility = firstOrderUtility - dot(u2, gradSum);
    }

    // The pairwise route gives ⟨g_i, g_j⟩ directly, so it serves the first-order term only when
    // Kᵀ g_V is a multiple of g_V (scalar K) and no parameter is tied; second-order terms always
    // take the vector route.
    const canPair = plan.kDiagonal === null && model.sharedSlots.size === 0;
    const dots2 = new Float64Array(n);
    let firstOrder: Float64Array;
    let perValidation: Float64Array | undefined;
    if (this.perValidation && (!canPair || this.route === 'vector')) {
      // Per-validation values without the Gram matrix: one vector u_j = η Kᵀ g_j / |V| per
      // validation example (its gradient materialised once), all dotted in one sweep.
      const us: FloatArray[] = [];
      for (let j = 0; j < m; j++) {
        const gj = allocFloat(model.dtype, P);
        model.addGrad(valPass, 1, gj, j, j + 1);
        const uj = applyK(plan, gj, gj);
        scaleInPlace(uj, eta / m);
        us.push(uj);
      }
      const outs = us.map(() => new Float64Array(n));
      model.ghostDot(pass, u2 ? [...us, u2] : us, u2 ? [...outs, dots2] : outs);
      perValidation = new Float64Array(n * m);
      firstOrder = new Float64Array(n);
      outs.forEach((out, j) => {
        for (let i = 0; i < n; i++) {
          perValidation![i * m + j] = out[i];
          firstOrder[i] += out[i];
        }
      });
    } else {
      const ghost = this.ghostFirstOrder(pass, valPass, {
        u1,
        u2,
        dots2,
        canPair,
        gramScale: eta * plan.kScale,
      });
      firstOrder = ghost.values;
      if (this.perValidation) perValidation = ghost.gram!;
    }
    let secondOrder: Float64Array | null = null;
    if (u2) {
      secondOrder = new Float64Array(n);
      for (let i = 0; i < n; i++) secondOrder[i] = firstOrder[i] - dots2[i];
    }

    const firstOrderSum = sum(firstOrder);
    const secondOrderSum = secondOrder ? sum(secondOrder) : null;
    const mainSum = secondOrderSum ?? firstOrderSum;
    const mainUtility = secondOrderUtility ?? firstOrderUtility;
    this.trace.push({
      step: plan.step,
      lr: eta,
      batchSize: n,
      clipFactor: plan.clipFactor,
      trainLoss: args.trainLoss,
      validationLossBefore: validationLoss,
      validationLossAfter: Number.NaN,
      firstOrderSum,
      firstOrderUtility,
      secondOrderSum,
      secondOrderUtility,
      efficiencyResidual: mainSum - mainUtility,
      actualUtility: Number.NaN,
      taylorError: Number.NaN,
      emptyUtility,
      batchTaylorError: Number.NaN,
      linearisationGap: args.linearisationGap ?? null,
      ...(this.recordBatchIds ? { batchIds: args.ids.slice() } : {}),
    });
    this.lastPending = true;
    // Rows before the new one are complete (and handed to onTraceRow) by now.
    if (!this.keepTrace) this.trace.splice(0, this.trace.length - 1);
    this.ledger.addStep({
      step: plan.step,
      ids: args.ids,
      groups: args.groups,
      firstOrder,
      secondOrder,
      perValidation,
    });
    return { firstOrder, secondOrder, perValidation };
  }

  /**
   * First-order values ⟨g_i, u1⟩ by each layer's chosen ghost route (and ⟨g_i, u2⟩ into dots2).
   * Layers on the pairwise route add into the train × validation Gram matrix instead, which is
   * turned into values at the end (and kept, scaled, as per-validation values).
   */
  private ghostFirstOrder(
    pass: Pass,
    valPass: Pass,
    args: { u1: FloatArray; u2: FloatArray | null; dots2: Float64Array; canPair: boolean; gramScale: number },
  ): { values: Float64Array; gram: Float64Array | null } {
    const { u1, u2, dots2, canPair } = args;
    const model = this.model;
    const n = pass.n;
    const m = valPass.n;
    const routes = model.ghostRoutes(n, m);
    const ctx = model.context();
    const dots1 = new Float64Array(n);
    const gram = new Float64Array(n * m);
    let usedGram = false;
    let index = 0;
    forEachParamLayer(model.layers, [pass.tapes, valPass.tapes], (layer, [tape, valTape]) => {
      const route = routes[index++];
      const pair =
        canPair &&
        layer.ghostPairwise !== undefined &&
        (this.perValidation || this.route === 'pairwise' || (this.route === 'auto' && route === 'pairwise'));
      if (pair) {
        layer.ghostPairwise!(ctx, tape, valTape, gram);
        usedGram = true;
        if (u2) layer.ghostDot!(ctx, tape, [u2], [dots2]);
      } else {
        layer.ghostDot!(ctx, tape, u2 ? [u1, u2] : [u1], u2 ? [dots1, dots2] : [dots1]);
      }
    });
    if (!usedGram) return { values: dots1, gram: null };
    // u1 = η·kScale·g_V and g_V is the mean of the g_j, so each Gram entry counts η·kScale/|V|.
    scaleInPlace(gram, args.gramScale / m);
    for (let i = 0; i < n; i++) {
      let rowSum = 0;
      for (let j = 0; j < m; j++) rowSum += gram[i * m + j];
      dots1[i] += rowSum;
    }
    return { values: dots1, gram };
  }

  private readonly buffers = new Map<string, FloatArray>();

  /** A zeroed parameter-shaped scratch vector, reused from step to step. */
  private workspace(name: string): FloatArray {
    let buffer = this.buffers.get(name);
    if (!buffer) {
      buffer = allocFloat(this.model.dtype, this.model.parameterCount);
      this.buffers.set(name, buffer);
    } else {
      buffer.fill(0);
    }
    return buffer;
  }

  state(): ValuerState {
    return { ledger: this.ledger.snapshot(), trace: this.trace.map((row) => ({ ...row })) };
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
  }

  /** Evaluates the validation loss at the final weights to complete the last trace row. */
  finish(): void {
    if (this.lastPending) this.completePrevious(this.validationLoss());
  }

  private completePrevious(validationLoss: number): void {
    const last = this.trace[this.trace.length - 1];
    if (!last || !this.lastPending) return;
    last.validationLossAfter = validationLoss;
    last.actualUtility = last.validationLossBefore - validationLoss;
    last.taylorError = last.actualUtility - (last.secondOrderUtility ?? last.firstOrderUtility);
    last.batchTaylorError = last.taylorError - last.emptyUtility;
    this.lastPending = false;
    this.onTraceRow?.({ ...last });
  }
}

function scaleInPlace(a: FloatArray | Float64Array, s: number): void {
  for (let e = 0; e < a.length; e++) a[e] *= s;
}

function dot(a: FloatArray, b: FloatArray): number {
  let s = 0;
  for (let e = 0; e < a.length; e++) s += a[e] * b[e];
  return s;
}

function sum(a: Float64Array): number {
  let s = 0;
  for (const v of a) s += v;
  return s;
}

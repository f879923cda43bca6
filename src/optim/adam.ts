import { portableOps } from '../kernels/ops.js';
import type { FloatArray, KernelOps } from '../kernels/types.js';
import type { Pass, Sequential } from '../models/sequential.js';
import { checkKnownKeys, checkNumber, describe, fail } from '../util/errors.js';
import type { Rng } from '../util/rng.js';
import { checkSchedule, learningRate, type Schedule } from './schedule.js';
import { gradientScaling, type Optimizer, reusedVector, type StepPlan, type StepScale } from './types.js';

export interface AdamOptions {
  lr: number;
  /** [β1, β2], each in [0, 1). Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Added to √v̂ (after the square root, as PyTorch does). Default 1e-8. */
  eps?: number;
  /**
   * adam: coupled L2 penalty λ, added to the gradient (so it enters m and v), as torch.optim.Adam.
   * adamw: decoupled decay λ, w ← w − ηλw outside the moments, as torch.optim.AdamW (default 0.01).
   */
  weightDecay?: number;
  /** 'mean': the batch gradient is the mean of per-example gradients; 'sum': their sum. */
  reduction?: 'mean' | 'sum';
  /** Rescale the reduced batch gradient to this global L2 norm when it is larger (before weight decay). */
  clipNorm?: number;
  schedule?: Schedule;
}

const ADAM_KEYS = ['lr', 'betas', 'eps', 'weightDecay', 'reduction', 'clipNorm', 'schedule'];

export type AdamVariant = 'adam' | 'adamw';

/**
 * Provides Σ_{i∈S} g_i for a subset S of the batch (0-based positions in the batch, ascending):
 * adds it into `out`, which arrives zeroed. `subsetGradSumFromPass` builds one from a model's backward pass.
 */
export type SubsetGradSum = (members: Int32Array, out: FloatArray) => void;

/**
 * Adam and AdamW with PyTorch's semantics (torch.optim.Adam / AdamW, amsgrad = false): with
 * ĝ = κ·g_B/|B| (κ the clip factor; |B| → 1 for a summed loss) and t the 1-based step count,
 *   adam:  g = ĝ + λw;                       adamw: g = ĝ, and first w ← (1 − ηλ)w
 *   m_t = β1 m_{t−1} + (1 − β1) g,   v_t = β2 v_{t−1} + (1 − β2) g²
 *   w ← w − (η / (1 − β1^t)) · m_t / (√v_t / √(1 − β2^t) + ε)
 *
 * Valuation (DESIGN §4). The step is not linear in g_B (v_t holds g²), so `plan` freezes this
 * step's preconditioner, computed WITH this step's full-batch gradient exactly as the real step
 * computes it:
 *   P = 1 / (√v̂_t + ε),   v̂_t = v_t / (1 − β2^t)
 * and writes the step as w − η(c + K g_B) with (bc1 = 1 − β1^t)
 *   K = κ/|B| · diag(P (1 − β1) / bc1)        (kScale = κ/|B|, kDiagonal = P (1 − β1)/bc1)
 *   adamw: c = P β1 m_{t−1} / bc1 + λw
 *   adam:  c = P (β1 m_{t−1} + (1 − β1) λw) / bc1
 * For coupled L2 the penalty λw is part of the gradient: its share of m_t, (1 − β1)λw, does not
 * depend on the batch and goes into c (scaled by P/bc1 like the carried momentum, not added bare
 * as SGD does); its share of v_t, through (ĝ + λw)², is frozen inside P with the rest of v_t.
 * Since P is this step's real denominator, w − η(c + K g_B) IS the real step for the full batch
 * (up to rounding). For a sub-batch S the real Adam step would recompute v with g_S; the
 * linearised step keeps P, and `linearisationGap` measures how much that matters.
 */
export class Adam implements Optimizer {
  readonly kind: AdamVariant;
  readonly options: {
    lr: number;
    betas: [number, number];
    eps: number;
    weightDecay: number;
    reduction: 'mean' | 'sum';
    clipNorm: number | null;
    schedule: Schedule;
  };
  private m: FloatArray | null = null;
  private v: FloatArray | null = null;
  /** Number of steps applied (PyTorch's state['step']); the next step has t = steps + 1. */
  private steps = 0;
  /** The t each plan (or scale) was made for, so a stale one is caught. */
  private readonly planned = new WeakMap<StepScale, number>();
  /**
   * Vectors reused from call to call: `plan`'s P (its K diagonal) and c (see Optimizer.plan), and
   * linearisationGap's sub-batch sums.
   */
  private readonly kept: Record<'P' | 'c' | 'subset', FloatArray | null> = { P: null, c: null, subset: null };
  private keptSums: [Float64Array, Float64Array] | null = null;

  private keep(name: 'P' | 'c' | 'subset', like: FloatArray): FloatArray {
    const vector = reusedVector(this.kept[name], like);
    this.kept[name] = vector;
    return vector;
  }

  constructor(options: AdamOptions, variant: AdamVariant = 'adam') {
    if (variant !== 'adam' && variant !== 'adamw')
      fail(`adam variant must be "adam" or "adamw", got ${describe(variant)}`);
    const name = variant;
    this.kind = variant;
    if (options === null || typeof options !== 'object') fail(`${name}: options must be an object`);
    checkKnownKeys(name, options, ADAM_KEYS);
    checkNumber(`${name}.lr`, options.lr, { min: 0 });
    const reduction = options.reduction ?? 'mean';
    if (reduction !== 'mean' && reduction !== 'sum')
      fail(`${name}.reduction must be "mean" or "sum", got ${JSON.stringify(reduction)}`);
    this.options = {
      lr: options.lr,
      betas: checkBetas(name, options.betas ?? [0.9, 0.999]),
      eps: checkNumber(`${name}.eps`, options.eps ?? 1e-8, { min: 0 }),
      weightDecay: checkNumber(
        `${name}.weightDecay`,
        options.weightDecay ?? (variant === 'adamw' ? 0.01 : 0),
        { min: 0 },
      ),
      reduction,
      clipNorm:
        options.clipNorm === undefined ? null : checkNumber(`${name}.clipNorm`, options.clipNorm, { min: 0 }),
      schedule: checkSchedule(options.schedule ?? { kind: 'constant' }),
    };
  }

  get decoupled(): boolean {
    return this.kind === 'adamw';
  }

  /** The 1-based Adam step count t of the next step. */
  get nextT(): number {
    return this.steps + 1;
  }

  scale(
    step: number,
    totalSteps: number,
    params: FloatArray,
    gradSum: FloatArray,
    batchSize: number,
    kernels?: KernelOps,
  ): StepScale {
    const scale = this.stepScale(step, totalSteps, this.scaling(params, gradSum, batchSize, kernels));
    this.planned.set(scale, this.nextT);
    return scale;
  }

  plan(
    step: number,
    totalSteps: number,
    params: FloatArray,
    gradSum: FloatArray,
    batchSize: number,
    kernels: KernelOps = portableOps,
  ): StepPlan {
    const scaling = this.scaling(params, gradSum, batchSize, kernels);
    const [, beta2] = this.options.betas;
    const { eps } = this.options;
    const coupled = this.decoupled ? 0 : this.options.weightDecay;
    const t = this.nextT;
    const bc2Sqrt = Math.sqrt(1 - beta2 ** t);
    // P = 1/(√v̂_t + ε), with v_t formed from this step's gradient exactly as `apply` forms it.
    const P = this.keep('P', params);
    kernels.adamPreconditioner(params, gradSum, this.v, scaling.gradScale, coupled, beta2, bc2Sqrt, eps, P);
    return this.linearise(step, totalSteps, params, scaling, P, true, kernels);
  }

  /**
   * The plan `plan` would return if the frozen preconditioner were `preconditioner` instead of
   * 1/(√v̂_t + ε). For analysis and tests (β1 = 0 with P = 1 gives SGD's plan); `apply` still takes
   * the real Adam step.
   */
  planWithPreconditioner(
    step: number,
    totalSteps: number,
    params: FloatArray,
    gradSum: FloatArray,
    batchSize: number,
    preconditioner: ArrayLike<number>,
  ): StepPlan {
    if (preconditioner.length !== params.length)
      fail(
        `${this.kind}.planWithPreconditioner: preconditioner has ${preconditioner.length} entries, the model ${params.length}`,
      );
    const P = alloc(params);
    for (let e = 0; e < P.length; e++) P[e] = preconditioner[e];
    return this.linearise(
      step,
      totalSteps,
      params,
      this.scaling(params, gradSum, batchSize),
      P,
      false,
      portableOps,
    );
  }

  apply(plan: StepScale, params: FloatArray, gradSum: FloatArray, kernels: KernelOps = portableOps): void {
    const t = this.nextT;
    this.checkPlan(plan, t, 'apply');
    this.checkState(params);
    const [beta1, beta2] = this.options.betas;
    const { eps, weightDecay } = this.options;
    if (!this.m || !this.v) {
      this.m = alloc(params);
      this.v = alloc(params);
    }
    const m = this.m;
    const v = this.v;
    const lr = plan.lr;
    const gradScale = plan.kScale;
    const coupled = this.decoupled ? 0 : weightDecay;
    const shrink = this.decoupled ? 1 - lr * weightDecay : 1;
    const bc2Sqrt = Math.sqrt(1 - beta2 ** t);
    const stepSize = lr / (1 - beta1 ** t);
    kernels.adamUpdate(
      params,
      gradSum,
      m,
      v,
      gradScale,
      coupled,
      beta1,
      beta2,
      shrink,
      stepSize,
      bc2Sqrt,
      eps,
    );
    this.steps = t;
  }

  /**
   * How far the linearised step is from the real Adam step for sub-batches. Call after `plan` and
   * before `apply` (it reads m_{t−1}, v_{t−1}). Each of `samples` draws a random half S of the
   * batch (⌊|B|/2⌋ examples); S and its complement B∖S (gradient g_B − g_S) are both scored, so
   * the mean is over 2·samples sub-batches, for one `subsetGradSum` call each. For a sub-batch S:
   *   real:  the Adam step from the same state with gradient κ/|B|·g_S (clip factor and
   *          normalisation frozen as in the plan, so only the preconditioner differs), v
   *          recomputed with it (and with λw for coupled L2);
   *   lin:   −η(c + K g_S);
   * and the score is ‖lin − real‖ / ‖real‖ (0 when both are 0). Returns the mean score: 0 means
   * the values are exact Shapley values of the real Adam step's Taylor utility; it costs about
   * four vector passes and one sub-batch gradient per sample, so it is optional.
   */
  linearisationGap(
    plan: StepPlan,
    params: FloatArray,
    gradSum: FloatArray,
    batchSize: number,
    rng: Rng,
    subsetGradSum: SubsetGradSum,
    samples = 4,
  ): number {
    this.checkPlan(plan, this.nextT, 'linearisationGap');
    this.checkState(params);
    checkNumber(`${this.kind}.linearisationGap samples`, samples, { min: 1, integer: true });
    checkNumber(`${this.kind}.linearisationGap batchSize`, batchSize, { min: 1, integer: true });
    if (gradSum.length !== params.length)
      fail(
        `${this.kind}.linearisationGap: gradient has ${gradSum.length} entries, the model ${params.length}`,
      );
    const half = Math.floor(batchSize / 2);
    if (this.keptSums?.[0].length !== params.length)
      this.keptSums = [new Float64Array(params.length), new Float64Array(params.length)];
    const [gS, gRest] = this.keptSums;
    const out = this.keep('subset', params);
    let total = 0;
    for (let s = 0; s < samples; s++) {
      const members = rng.permutation(batchSize).subarray(0, half).sort();
      out.fill(0);
      subsetGradSum(members, out);
      for (let e = 0; e < gS.length; e++) {
        gS[e] = out[e];
        gRest[e] = gradSum[e] - out[e];
      }
      total += this.subsetGap(plan, params, gS) + this.subsetGap(plan, params, gRest);
    }
    return total / (2 * samples);
  }

  state(): Record<string, FloatArray> {
    if (!this.m || !this.v) return {};
    return { m: this.m, v: this.v, step: Float64Array.of(this.steps) };
  }

  loadState(state: Record<string, FloatArray>): void {
    const { m, v, step } = state;
    if (!m && !v && !step) {
      this.m = null;
      this.v = null;
      this.steps = 0;
      return;
    }
    if (!m || !v || !step) fail(`${this.kind}.loadState: the state needs all of m, v and step`);
    if (m.length !== v.length)
      fail(`${this.kind}.loadState: m has ${m.length} entries but v has ${v.length}`);
    if (step.length !== 1 || !Number.isInteger(step[0]) || step[0] < 1)
      fail(
        `${this.kind}.loadState: step must hold one positive integer, got [${Array.from(step).join(', ')}]`,
      );
    this.m = m.slice();
    this.v = v.slice();
    this.steps = step[0];
  }

  /** Clip factor κ and gradient scale κ/|B| (or κ for a summed loss), as in `Sgd`. */
  private scaling(params: FloatArray, gradSum: FloatArray, batchSize: number, kernels?: KernelOps) {
    checkNumber(`${this.kind}.plan batchSize`, batchSize, { min: 1 });
    if (gradSum.length !== params.length)
      fail(`${this.kind}.plan: gradient has ${gradSum.length} entries, the model ${params.length}`);
    this.checkState(params);
    return gradientScaling(gradSum, batchSize, this.options.reduction, this.options.clipNorm, kernels);
  }

  /**
   * Builds (η, c, K) from the frozen preconditioner P, whose storage becomes K's diagonal (P is
   * this call's own: the kept vector when `ownP`, from `plan`, else a new one); c is the kept
   * vector when `ownP`, else new.
   */
  private linearise(
    step: number,
    totalSteps: number,
    params: FloatArray,
    { clipFactor, gradScale }: { clipFactor: number; gradScale: number },
    P: FloatArray,
    ownP: boolean,
    kernels: KernelOps,
  ): StepPlan {
    const [beta1] = this.options.betas;
    const { weightDecay } = this.options;
    const t = this.nextT;
    const bc1 = 1 - beta1 ** t;
    const m = beta1 > 0 ? this.m : null;
    const c = m || weightDecay > 0 ? (ownP ? this.keep('c', params) : alloc(params)) : null;
    // adamw: c = P β1 m/bc1 + λw;  adam: c = P (β1 m + (1 − β1) λw)/bc1;  then K's diagonal P (1 − β1)/bc1 in place.
    const kFactor = (1 - beta1) / bc1;
    kernels.adamLinearise(P, params, m, c, beta1, weightDecay, this.decoupled, bc1, kFactor);
    const kDiagonal = P;
    const plan: StepPlan = {
      ...this.stepScale(step, totalSteps, { clipFactor, gradScale }),
      c,
      kDiagonal,
      // m_t = β1 m_{t−1} + (1 − β1) ĝ_t and the step divides by (1 − β1^t)(√v̂_t + ε): step s's gradient
      // reaches step t's update as β1^{t−s}·(1 − β1)k_s·P_t/(1 − β1^t) = …·kDiagonal_t/(1 − β1).
      momentum:
        beta1 > 0
          ? {
              rho: beta1,
              sourceScale: (1 - beta1) * gradScale,
              carryScale: 1 / (1 - beta1),
              carryDiagonal: kDiagonal,
            }
          : undefined,
    };
    this.planned.set(plan, t);
    return plan;
  }

  private stepScale(
    step: number,
    totalSteps: number,
    { clipFactor, gradScale }: { clipFactor: number; gradScale: number },
  ): StepScale {
    return {
      step,
      lr: learningRate(this.options.lr, this.options.schedule, step, totalSteps),
      kScale: gradScale,
      clipFactor,
    };
  }

  /** ‖lin − real‖/‖real‖ for one sub-batch gradient sum g (see `linearisationGap`). */
  private subsetGap(plan: StepPlan, params: FloatArray, g: Float64Array): number {
    const [beta1, beta2] = this.options.betas;
    const { eps, weightDecay } = this.options;
    const t = this.nextT;
    const bc2Sqrt = Math.sqrt(1 - beta2 ** t);
    const stepSize = plan.lr / (1 - beta1 ** t);
    const coupled = this.decoupled ? 0 : weightDecay;
    const decoupled = this.decoupled ? weightDecay : 0;
    const m = this.m;
    const v = this.v;
    const lr = plan.lr;
    const k = plan.kScale;
    const d = plan.kDiagonal;
    let diff = 0;
    let norm = 0;
    for (let e = 0; e < params.length; e++) {
      const w = params[e];
      const gt = k * g[e] + coupled * w;
      const mt = (m ? beta1 * m[e] : 0) + (1 - beta1) * gt;
      const vt = (v ? beta2 * v[e] : 0) + (1 - beta2) * gt * gt;
      const real = -lr * decoupled * w - stepSize * (mt / (Math.sqrt(vt) / bc2Sqrt + eps));
      const lin = -lr * ((plan.c ? plan.c[e] : 0) + k * (d ? d[e] : 1) * g[e]);
      diff += (lin - real) ** 2;
      norm += real * real;
    }
    return norm > 0 ? Math.sqrt(diff / norm) : Math.sqrt(diff);
  }

  private checkPlan(plan: StepScale, t: number, where: string): void {
    const plannedT = this.planned.get(plan);
    if (plannedT !== undefined && plannedT !== t)
      fail(
        `${this.kind}.${where}: this plan was made for Adam step ${plannedT}, but the optimizer is at step ${t}; call plan() again`,
      );
  }

  private checkState(params: FloatArray): void {
    if (this.m && this.m.length !== params.length)
      fail(
        `${this.kind}: the optimizer state has ${this.m.length} entries but the model has ${params.length} parameters`,
      );
  }
}

function checkBetas(name: string, betas: unknown): [number, number] {
  if (!Array.isArray(betas) || betas.length !== 2)
    fail(
      `${name}.betas must be a pair [β1, β2], got ${Array.isArray(betas) ? `${betas.length} numbers` : describe(betas)}`,
    );
  betas.forEach((b, k) => {
    checkNumber(`${name}.betas[${k}]`, b, { min: 0, max: 1 });
    if (b === 1) fail(`${name}.betas[${k}] must be in [0, 1), got 1`);
  });
  return [betas[0], betas[1]];
}

function alloc(like: FloatArray): FloatArray {
  return like instanceof Float64Array ? new Float64Array(like.length) : new Float32Array(like.length);
}

/**
 * A `SubsetGradSum` over the examples of a pass that has run backward: Σ_{i∈S} ∇ℓ_i, one addGrad
 * per run of consecutive members.
 */
export function subsetGradSumFromPass(model: Pick<Sequential, 'addGrad'>, pass: Pass): SubsetGradSum {
  return (members, out) => {
    let k = 0;
    while (k < members.length) {
      const start = members[k];
      let end = start + 1;
      k++;
      while (k < members.length && members[k] === end) {
        end++;
        k++;
      }
      model.addGrad(pass, 1, out, start, end);
    }
  };
}

export const adam = (options: AdamOptions) => new Adam(options, 'adam');
export const adamw = (options: AdamOptions) => new Adam(options, 'adamw');

import { portableOps } from '../kernels/ops.js';
import type { FloatArray, KernelOps } from '../kernels/types.js';
import { checkKnownKeys, checkNumber, fail } from '../util/errors.js';
import { checkSchedule, learningRate, type Schedule } from './schedule.js';
import { gradientScaling, type Optimizer, reusedVector, type StepPlan, type StepScale } from './types.js';

export interface SgdOptions {
  lr: number;
  /** Heavy-ball momentum μ (PyTorch convention: b ← μ b + ĝ, w ← w − η b). */
  momentum?: number;
  /** Coupled L2 penalty λ: adds λw to the gradient (and so to the momentum buffer). */
  weightDecay?: number;
  /** Decoupled decay λ_d: w ← w − η(b + λ_d w), outside the momentum buffer (as AdamW does). */
  decoupledWeightDecay?: number;
  /** 'mean': the batch gradient is the mean of per-example gradients; 'sum': their sum. */
  reduction?: 'mean' | 'sum';
  /** Rescale the reduced batch gradient to this global L2 norm when it is larger. */
  clipNorm?: number;
  schedule?: Schedule;
}

const SGD_KEYS = [
  'lr',
  'momentum',
  'weightDecay',
  'decoupledWeightDecay',
  'reduction',
  'clipNorm',
  'schedule',
];

/**
 * Stochastic gradient descent with momentum, both kinds of weight decay, clipping and a schedule.
 * Its step is exactly w − η(c + K g_B) with c = μ b_{t−1} + (λ + λ_d) w and K = κ/|B| (κ = clip
 * factor; |B| → 1 for a summed loss).
 */
export class Sgd implements Optimizer {
  readonly kind = 'sgd';
  readonly options: Required<Omit<SgdOptions, 'clipNorm'>> & { clipNorm: number | null };
  private buffer: FloatArray | null = null;
  /** The plan's c, reused by the next plan (see Optimizer.plan). */
  private planC: FloatArray | null = null;

  constructor(options: SgdOptions) {
    checkKnownKeys('sgd', options, SGD_KEYS);
    checkNumber('sgd.lr', options.lr, { min: 0 });
    const reduction = options.reduction ?? 'mean';
    if (reduction !== 'mean' && reduction !== 'sum')
      fail(`sgd.reduction must be "mean" or "sum", got ${JSON.stringify(reduction)}`);
    this.options = {
      lr: options.lr,
      momentum: checkNumber('sgd.momentum', options.momentum ?? 0, { min: 0, max: 1 }),
      weightDecay: checkNumber('sgd.weightDecay', options.weightDecay ?? 0, { min: 0 }),
      decoupledWeightDecay: checkNumber('sgd.decoupledWeightDecay', options.decoupledWeightDecay ?? 0, {
        min: 0,
      }),
      reduction,
      clipNorm:
        options.clipNorm === undefined ? null : checkNumber('sgd.clipNorm', options.clipNorm, { min: 0 }),
      schedule: checkSchedule(options.schedule ?? { kind: 'constant' }),
    };
  }

  scale(
    step: number,
    totalSteps: number,
    _params: FloatArray,
    gradSum: FloatArray,
    batchSize: number,
    kernels?: KernelOps,
  ): StepScale {
    const { reduction, clipNorm } = this.options;
    const { clipFactor, gradScale } = gradientScaling(gradSum, batchSize, reduction, clipNorm, kernels);
    return {
      step,
      lr: learningRate(this.options.lr, this.options.schedule, step, totalSteps),
      kScale: gradScale,
      clipFactor,
    };
  }

  plan(
    step: number,
    totalSteps: number,
    params: FloatArray,
    gradSum: FloatArray,
    batchSize: number,
    kernels?: KernelOps,
  ): StepPlan {
    const { momentum, weightDecay, decoupledWeightDecay } = this.options;
    const scale = this.scale(step, totalSteps, params, gradSum, batchSize, kernels);
    let c: FloatArray | null = null;
    const decay = weightDecay + decoupledWeightDecay;
    if ((momentum > 0 && this.buffer) || decay > 0) {
      c = reusedVector(this.planC, params);
      this.planC = c;
      const b = momentum > 0 ? this.buffer : null;
      for (let e = 0; e < c.length; e++) c[e] = (b ? momentum * b[e] : 0) + decay * params[e];
    }
    return {
      ...scale,
      c,
      kDiagonal: null,
      // b_t = μ b_{t−1} + k_t g_B,t + λw: step s's gradient reaches step t's update as μ^{t−s} k_s g_B,s.
      momentum:
        momentum > 0
          ? { rho: momentum, sourceScale: scale.kScale, carryScale: 1, carryDiagonal: null }
          : undefined,
    };
  }

  apply(plan: StepScale, params: FloatArray, gradSum: FloatArray, kernels: KernelOps = portableOps): void {
    const { momentum, weightDecay, decoupledWeightDecay } = this.options;
    let first = false;
    if (momentum > 0 && !this.buffer) {
      first = true;
      this.buffer =
        params instanceof Float64Array ? new Float64Array(params.length) : new Float32Array(params.length);
    }
    kernels.sgdUpdate(
      params,
      gradSum,
      momentum > 0 ? this.buffer : null,
      plan.lr,
      plan.kScale,
      weightDecay,
      decoupledWeightDecay,
      momentum,
      first,
    );
  }

  state(): Record<string, FloatArray> {
    return this.buffer ? { momentum: this.buffer } : {};
  }

  loadState(state: Record<string, FloatArray>): void {
    this.buffer = state.momentum ? state.momentum.slice() : null;
  }
}

export const sgd = (options: SgdOptions) => new Sgd(options);

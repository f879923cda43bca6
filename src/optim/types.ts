import { portableOps } from '../kernels/ops.js';
import type { FloatArray, KernelOps } from '../kernels/types.js';
import type { Rng } from '../util/rng.js';

/**
 * What `apply` needs to take a step: its learning rate and batch-gradient scale. A step nobody
 * values needs no more (Optimizer.scale), which spares the parameter-sized vectors of a plan.
 */
export interface StepScale {
  step: number;
  lr: number;
  /** K's scalar factor: the clip factor over |B| for a mean loss (times 1 for a sum). */
  kScale: number;
  /** Global-norm clip factor applied to the batch gradient this step (1 = not clipped). */
  clipFactor: number;
}

/**
 * One optimizer step written as w_{t+1} = w_t − η_t (c_t + K_t g_B), where g_B = Σ_{i∈B} g_i is
 * the batch's summed per-example gradient (DESIGN §2). c_t collects everything that does not
 * depend on this batch (momentum carried in, weight decay); K_t is linear in the batch gradient:
 * K_t = scale · diag(diagonal), with diagonal = null meaning the identity.
 */
export interface StepPlan extends StepScale {
  c: FloatArray | null;
  kDiagonal: FloatArray | null;
  /**
   * With momentum (SGD momentum, Adam's β1 > 0): how batch gradients live on in later updates.
   * Step s's batch gradient moves the weights at a later step t by
   * −η_t·ρ^{t−s}·sourceScale_s·carryScale_t·carryDiagonal_t ⊙ g_B,s (src/shapley/momentum-credit.ts).
   */
  momentum?: { rho: number; sourceScale: number; carryScale: number; carryDiagonal: FloatArray | null };
}

export interface Optimizer {
  readonly kind: string;
  /**
   * Freezes this step's (η_t, c_t, K_t) from the current weights, state and batch gradient
   * without changing anything; `apply` then takes exactly this step. The plan's vectors (c, K's
   * diagonal) may be the optimizer's own buffers, reused by its next `plan`: copy them to keep them.
   * `kernels`, when given (the model's), run its loops over the parameters, as in `apply`.
   */
  plan(
    step: number,
    totalSteps: number,
    params: FloatArray,
    gradSum: FloatArray,
    batchSize: number,
    kernels?: KernelOps,
  ): StepPlan;
  /**
   * This step's scale alone, as `plan` would give it, for steps that are taken but not valued
   * (plain training, or valuation off): no c and no K, so no pass over the parameters beyond the
   * gradient norm that clipping needs (by `kernels`, when given).
   */
  scale(
    step: number,
    totalSteps: number,
    params: FloatArray,
    gradSum: FloatArray,
    batchSize: number,
    kernels?: KernelOps,
  ): StepScale;
  /**
   * Takes the planned (or scaled) step in place. `kernels`, when given (the model's), runs the update loop
   * (native C with the addon); without them the portable loop runs, with the same result.
   */
  apply(plan: StepScale, params: FloatArray, gradSum: FloatArray, kernels?: KernelOps): void;
  /**
   * For optimizers whose step is only linearised (Adam): the mean relative distance between the
   * linearised and the real step over random sub-batches (0 = exact). Absent where the plan is
   * the exact step (SGD family).
   */
  linearisationGap?(
    plan: StepPlan,
    params: FloatArray,
    gradSum: FloatArray,
    batchSize: number,
    rng: Rng,
    subsetGradSum: (members: Int32Array, out: FloatArray) => void,
    samples?: number,
  ): number;
  /** Named state tensors, for checkpoints. */
  state(): Record<string, FloatArray>;
  loadState(state: Record<string, FloatArray>): void;
}

/**
 * A parameter-shaped vector of `like`'s element type kept from call to call: `current` when it
 * fits, else a new one (contents unspecified either way).
 */
export function reusedVector(current: FloatArray | null, like: FloatArray): FloatArray {
  const fits =
    current !== null &&
    current.length === like.length &&
    current instanceof Float64Array === like instanceof Float64Array;
  if (fits) return current;
  return like instanceof Float64Array ? new Float64Array(like.length) : new Float32Array(like.length);
}

/** Applies K_t to a vector: out = K x (out may be x itself), with `kernels` (the model's) when given. */
export function applyK(
  plan: StepPlan,
  x: FloatArray,
  out: FloatArray,
  kernels: KernelOps = portableOps,
): FloatArray {
  kernels.scaleVector(x, plan.kScale, plan.kDiagonal, out);
  return out;
}

const sumOfSquares = new Float64Array(1);

/**
 * The batch-gradient scale of one step: 1/|B| for a mean loss (1 for a sum) times the global-norm
 * clip factor κ = min(1, clipNorm/(‖reduced gradient‖ + 1e-6)), as PyTorch's clip_grad_norm_.
 */
export function gradientScaling(
  gradSum: FloatArray,
  batchSize: number,
  reduction: 'mean' | 'sum',
  clipNorm: number | null,
  kernels: KernelOps = portableOps,
): { clipFactor: number; gradScale: number } {
  const reduce = reduction === 'mean' ? 1 / batchSize : 1;
  let clipFactor = 1;
  if (clipNorm !== null) {
    sumOfSquares[0] = 0;
    kernels.rowDots(gradSum, gradSum, null, 1, gradSum.length, 0, 0, sumOfSquares);
    const sq = sumOfSquares[0];
    clipFactor = Math.min(1, clipNorm / (Math.sqrt(sq) * reduce + 1e-6));
  }
  return { clipFactor, gradScale: clipFactor * reduce };
}

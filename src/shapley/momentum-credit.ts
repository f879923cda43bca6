import type { ExampleId } from '../data/dataset.js';
import { allocFloat } from '../kernels/alloc.js';
import type { FloatArray } from '../kernels/types.js';
import type { Pass, Sequential } from '../models/sequential.js';
import type { StepPlan } from '../optim/types.js';

/** Credit that later steps would still add is dropped below this fraction of a step's own weight. */
export const MOMENTUM_CREDIT_TOLERANCE = 1e-6;

/**
 * Momentum credit: the part of each update that the momentum buffer (SGD momentum, Adam's first
 * moment) carries, handed back to the examples whose gradients put it there.
 *
 * With momentum, step t moves the weights by −η_t(c_t + K_t g_B,t), and c_t holds the batch
 * gradients of earlier steps: example i of step s < t contributes −η_t ρ^{t−s} w_s A_t g_i,s, with
 * ρ the momentum (β1), w_s the gradient scale of step s (κ/|B|, times 1 − β1 for Adam) and A_t the
 * later step's carry (1 for SGD; Adam's 1/(√v̂_t + ε)/(1 − β1^t), which is K_t/(1 − β1)). The
 * first-order Taylor utility of the whole run, with the trajectory held fixed, is then linear in
 * the occurrences (i, s), so its Shapley value over them is each occurrence's own term: the direct
 * value at step s plus
 *   credit(i, s) = w_s ⟨g_i,s, R_s⟩,   R_s = Σ_{t>s} ρ^{t−s} η_t A_t g_V(w_t).
 * Summed over every occurrence, the credits are the data part of Σ_t U(∅)_t (the trace's
 * emptyUtility, less weight decay). First order only: the curvature between steps is not split.
 *
 * R_s needs the future, so each step's training pass (its tapes) and z_t = η_t A_t g_V(w_t) wait
 * in a window; once it spans 2H steps, R is computed backwards over it (R_s = ρ(z_{s+1} + R_{s+1}))
 * and the oldest H steps are settled by one ghost product each. H is the horizon after which ρ^H
 * falls below MOMENTUM_CREDIT_TOLERANCE; what lies beyond it is dropped. Memory: up to 2H
 * training passes and 2H parameter vectors; time: one ghost product and about 2 vector sweeps per
 * step. The passes are kept as they are, so layers must not reuse a pass's buffers.
 */
export class MomentumCredit {
  private readonly window: {
    step: number;
    pass: Pass;
    ids: ExampleId[];
    sourceScale: number;
    /** η_t A_t g_V(w_t), or null when the step carries nothing forward (no momentum). */
    carry: FloatArray | null;
  }[] = [];
  private rho = 0;
  private horizon = 1;

  constructor(
    private readonly model: Sequential,
    /** Receives each occurrence's settled credit, step by step in order. */
    private readonly settle: (ids: ExampleId[], credit: Float64Array) => void,
  ) {}

  /**
   * Adds a valued step: `pass` (its backward done), its plan, and etaGV = η_t g_V(w_t) (the
   * validation gradient before K). Steps must come in order, every step of the run.
   */
  add(step: number, pass: Pass, ids: ExampleId[], plan: StepPlan, etaGV: FloatArray): void {
    const momentum = plan.momentum;
    if (momentum && momentum.rho !== this.rho) {
      this.rho = momentum.rho;
      this.horizon = Math.max(1, Math.ceil(Math.log(MOMENTUM_CREDIT_TOLERANCE) / Math.log(momentum.rho)));
    }
    let carry: FloatArray | null = null;
    if (momentum) {
      carry = allocFloat(this.model.dtype, etaGV.length);
      const d = momentum.carryDiagonal;
      for (let e = 0; e < carry.length; e++) carry[e] = momentum.carryScale * (d ? d[e] : 1) * etaGV[e];
    }
    this.window.push({ step, pass, ids, sourceScale: momentum ? momentum.sourceScale : 0, carry });
    if (this.window.length >= 2 * this.horizon) this.settleOldest(this.window.length - this.horizon);
  }

  /** Whether any step still waits for its credit. */
  get waiting(): boolean {
    return this.window.length > 0;
  }

  /** Settles every waiting step with all the future there is (at the end of the run). */
  finish(): void {
    this.settleOldest(this.window.length);
  }

  /** Computes R backwards over the window and settles its first `count` steps. */
  private settleOldest(count: number): void {
    const w = this.window;
    if (w.length === 0 || count === 0) return;
    const P = this.model.parameterCount;
    const R = new Float64Array(P);
    const r = allocFloat(this.model.dtype, P);
    for (let j = w.length - 2; j >= 0; j--) {
      const next = w[j + 1].carry;
      for (let e = 0; e < P; e++) R[e] = this.rho * ((next ? next[e] : 0) + R[e]);
      if (j >= count || w[j].sourceScale === 0) continue;
      r.set(R);
      const credit = new Float64Array(w[j].pass.n);
      this.model.ghostDot(w[j].pass, [r], [credit]);
      for (let i = 0; i < credit.length; i++) credit[i] *= w[j].sourceScale;
      this.pending.set(j, credit);
    }
    // In step order, as the ledger expects.
    for (let j = 0; j < count; j++) {
      this.settle(w[j].ids, this.pending.get(j) ?? new Float64Array(w[j].pass.n));
    }
    this.pending.clear();
    w.splice(0, count);
  }

  private readonly pending = new Map<number, Float64Array>();
}

import type { ExampleId } from '../data/dataset.js';
import { allocFloat } from '../kernels/alloc.js';
import type { FloatArray } from '../kernels/types.js';
import { PassArena } from '../layers/scratch.js';
import type { Activation } from '../layers/types.js';
import type { Targets } from '../losses/types.js';
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
 * R_s needs the future, so each step's batch, weights w_s and z_t = η_t A_t g_V(w_t) wait in a
 * window; once it spans 2H steps, R is computed backwards over it (R_s = ρ(z_{s+1} + R_{s+1})) and
 * the oldest H steps are settled by one ghost product each. H is the horizon after which ρ^H falls
 * below MOMENTUM_CREDIT_TOLERANCE; what lies beyond it is dropped.
 *
 * A settled step's training pass is replayed — the same batch, weights and mode (so the same
 * Dropout masks), forward and backward again — rather than kept: a kept pass holds every tape of
 * the step (37 MB for LeNet at batch 128, 10 GB over LeNet's window of 264 steps), a replay needs
 * one parameter vector and one batch per step. The replay computes the very same gradients, bit for
 * bit. Memory: 2H batches and 3·2H parameter vectors (weights, carry); time: one more forward and
 * backward of the training batch, one ghost product and about 2 vector sweeps per step.
 */
export class MomentumCredit {
  private readonly window: {
    step: number;
    /** The step's training batch, weights and pass mode, to replay its pass from. */
    mode: Pass['mode'];
    /** The pass's per-example loss weights, if it had any. */
    lossWeights: Float64Array | undefined;
    input: Activation;
    targets: Targets;
    params: FloatArray;
    ids: ExampleId[];
    sourceScale: number;
    /** η_t A_t g_V(w_t), or null when the step carries nothing forward (no momentum). */
    carry: FloatArray | null;
  }[] = [];
  private rho = 0;
  private horizon = 1;
  /** The replayed passes' arrays: one pass at a time, consumed before the next replay. */
  private readonly arena = new PassArena();

  constructor(
    private readonly model: Sequential,
    /** Receives each occurrence's settled credit, step by step in order. */
    private readonly settle: (ids: ExampleId[], credit: Float64Array) => void,
  ) {}

  /**
   * Adds a valued step: `pass` (its training pass; its batch is copied, the weights are the
   * model's current ones), its plan, and etaGV = η_t g_V(w_t) (the validation gradient before K).
   * Steps must come in order, every step of the run, before the optimizer moves the weights.
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
      this.model.kernels.scaleVector(etaGV, momentum.carryScale, momentum.carryDiagonal, carry);
    }
    // The trainer refills its batch arrays every step, so the batch is copied.
    const input = pass.tapes[0].input;
    this.window.push({
      step,
      mode: { ...pass.mode },
      lossWeights: pass.weights?.slice(),
      input: { ...input, data: input.data.slice(), ...(input.ids ? { ids: input.ids.slice() } : {}) },
      targets: pass.lossTape.targets.slice(),
      params: this.model.params.slice(),
      ids,
      sourceScale: momentum ? momentum.sourceScale : 0,
      carry,
    });
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
      const credit = new Float64Array(w[j].ids.length);
      this.withWeights(w[j].params, () => this.model.ghostDot(this.replay(w[j]), [r], [credit]));
      for (let i = 0; i < credit.length; i++) credit[i] *= w[j].sourceScale;
      this.pending.set(j, credit);
    }
    // In step order, as the ledger expects.
    for (let j = 0; j < count; j++) {
      this.settle(w[j].ids, this.pending.get(j) ?? new Float64Array(w[j].ids.length));
    }
    this.pending.clear();
    w.splice(0, count);
  }

  private readonly pending = new Map<number, Float64Array>();

  /**
   * Runs `body` with the model's weights set to `params` (a pass's backward and ghost products
   * read the model's own weights), then puts the current weights back.
   */
  private withWeights(params: FloatArray, body: () => void): void {
    const current = this.model.params;
    this.saved ??= allocFloat(this.model.dtype, current.length);
    this.saved.set(current);
    current.set(params);
    try {
      body();
    } finally {
      current.set(this.saved);
    }
  }

  private saved: FloatArray | null = null;

  /** The step's training pass again, as the trainer ran it, at the model's current weights. */
  private replay(entry: (typeof this.window)[number]): Pass {
    const pass = this.model.forward(entry.input, entry.targets, this.model.params, {
      ...entry.mode,
      weights: entry.lossWeights,
      arena: this.arena,
    });
    this.model.backward(pass);
    return pass;
  }
}

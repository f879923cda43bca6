import { type Activation, outputActivation, type PassContext, passBuffers } from '../layers/types.js';
import { fail } from '../util/errors.js';
import { type Loss, type LossTape, position, type Targets } from './types.js';

/** Target value that marks a token to ignore (padding): it adds nothing to the loss or gradient. */
export const IGNORE_INDEX = -1;

export interface SoftmaxCrossEntropyOptions {
  /**
   * How an example's token losses combine: 'mean' over its unmasked tokens (default; a language
   * model's usual per-sequence loss) or 'sum'. A fully masked example has loss 0 either way.
   */
  tokenReduction?: 'mean' | 'sum';
}

/**
 * −log softmax(z)_y per token; targets are class indices, or IGNORE_INDEX (−1) for tokens that do
 * not count. Example i's loss is the mean (or sum) over its unmasked tokens.
 */
export class SoftmaxCrossEntropy implements Loss {
  readonly kind = 'softmax-cross-entropy';
  readonly tokenReduction: 'mean' | 'sum';

  constructor(options: SoftmaxCrossEntropyOptions = {}) {
    this.tokenReduction = options.tokenReduction ?? 'mean';
    if (this.tokenReduction !== 'mean' && this.tokenReduction !== 'sum')
      fail(
        `softmax cross-entropy: tokenReduction must be "mean" or "sum", got ${JSON.stringify(this.tokenReduction)}`,
      );
  }

  checkTargets(
    targets: Targets,
    n: number,
    tokens: number,
    width: number,
    where: string,
    firstExample = 0,
  ): void {
    if (!(targets instanceof Int32Array))
      fail(`${where}: softmax cross-entropy needs integer class labels (Int32Array)`);
    if (targets.length !== n * tokens) fail(`${where}: expected ${n * tokens} labels, got ${targets.length}`);
    for (let e = 0; e < targets.length; e++) {
      const y = targets[e];
      if (y !== IGNORE_INDEX && (y < 0 || y >= width))
        fail(
          `${where}: ${position(firstExample, e, tokens)} has label ${y}, outside the model's classes 0..${width - 1}`,
        );
    }
  }

  /** Weight of each token's loss within its example: 1/(unmasked count) for 'mean', 1 for 'sum', 0 if ignored. */
  private tokenWeights(ctx: PassContext, targets: Targets, n: number, T: number): Float64Array {
    const weights = passBuffers(ctx).zeros('float64', n * T);
    for (let i = 0; i < n; i++) {
      let count = 0;
      for (let t = 0; t < T; t++) if (targets[i * T + t] !== IGNORE_INDEX) count++;
      const w = this.tokenReduction === 'mean' ? 1 / count : 1;
      for (let t = 0; t < T; t++) if (targets[i * T + t] !== IGNORE_INDEX) weights[i * T + t] = w;
    }
    return weights;
  }

  forward(ctx: PassContext, output: Activation, targets: Targets, tape: LossTape): Float64Array {
    const { n, tokens: T, width: C, data: z } = output;
    const buffers = passBuffers(ctx);
    const p = buffers.uninitialized(ctx.dtype, z.length);
    const weights = this.tokenWeights(ctx, targets, n, T);
    const rowLoss = buffers.uninitialized('float64', n * T);
    ctx.kernels.softmaxCrossEntropyForward(z, targets as Int32Array, weights, n * T, C, p, rowLoss);
    const losses = buffers.zeros('float64', n);
    for (let r = 0; r < n * T; r++) if (weights[r] !== 0) losses[Math.floor(r / T)] += rowLoss[r];
    tape.output = output;
    tape.targets = targets;
    tape.probabilities = p;
    tape.tokenWeights = weights;
    return losses;
  }

  backward(ctx: PassContext, tape: LossTape): Activation {
    // dz = w_t (p − onehot(y)) per token.
    const { n, tokens, width: C } = tape.output;
    const p = tape.probabilities!;
    const weights = tape.tokenWeights!;
    const dz = outputActivation(ctx, n, tokens, C);
    ctx.kernels.softmaxCrossEntropyBackward(p, tape.targets as Int32Array, weights, n * tokens, C, dz.data);
    // The kernel leaves the rows of ignored tokens alone: their gradient is zero.
    for (let r = 0; r < n * tokens; r++) if (weights[r] === 0) dz.data.fill(0, r * C, (r + 1) * C);
    return dz;
  }

  rBackward(ctx: PassContext, tape: LossTape, rz: Activation): Activation {
    // Softmax Jacobian: R{dz} = w_t (p ⊙ Rz − p (p·Rz)).
    const { n, tokens, width: C } = tape.output;
    const p = tape.probabilities!;
    const weights = tape.tokenWeights!;
    const rdz = outputActivation(ctx, n, tokens, C);
    ctx.kernels.softmaxCrossEntropyRBackward(p, rz.data, weights, n * tokens, C, rdz.data);
    return rdz;
  }
}

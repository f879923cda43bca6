import { allocFloat } from '../kernels/index.js';
import { type Activation, activation, type PassContext } from '../layers/types.js';
import { fail } from '../util/errors.js';
import { type Loss, type LossTape, position, type Targets } from './types.js';

/** −log softmax(z)_y per token, summed over an example's tokens. Targets are class indices. */
export class SoftmaxCrossEntropy implements Loss {
  readonly kind = 'softmax-cross-entropy';

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
      if (y < 0 || y >= width)
        fail(
          `${where}: ${position(firstExample, e, tokens)} has label ${y}, outside the model's classes 0..${width - 1}`,
        );
    }
  }

  forward(ctx: PassContext, output: Activation, targets: Targets, tape: LossTape): Float64Array {
    const { n, tokens: T, width: C, data: z } = output;
    const p = allocFloat(ctx.dtype, z.length);
    const losses = new Float64Array(n);
    for (let r = 0; r < n * T; r++) {
      const base = r * C;
      let max = -Infinity;
      for (let c = 0; c < C; c++) if (z[base + c] > max) max = z[base + c];
      let sum = 0;
      for (let c = 0; c < C; c++) {
        const e = Math.exp(z[base + c] - max);
        p[base + c] = e;
        sum += e;
      }
      for (let c = 0; c < C; c++) p[base + c] /= sum;
      const y = targets[r];
      losses[Math.floor(r / T)] += Math.log(sum) + max - z[base + y];
    }
    tape.output = output;
    tape.targets = targets;
    tape.probabilities = p;
    return losses;
  }

  backward(ctx: PassContext, tape: LossTape): Activation {
    const { n, tokens, width: C } = tape.output;
    const p = tape.probabilities!;
    const dz = activation(ctx.dtype, n, tokens, C);
    dz.data.set(p);
    for (let r = 0; r < n * tokens; r++) dz.data[r * C + tape.targets[r]] -= 1;
    return dz;
  }

  rBackward(ctx: PassContext, tape: LossTape, rz: Activation): Activation {
    // Softmax Jacobian: R{dz} = p ⊙ Rz − p (p·Rz).
    const { n, tokens, width: C } = tape.output;
    const p = tape.probabilities!;
    const rdz = activation(ctx.dtype, n, tokens, C);
    for (let r = 0; r < n * tokens; r++) {
      const base = r * C;
      let pr = 0;
      for (let c = 0; c < C; c++) pr += p[base + c] * rz.data[base + c];
      for (let c = 0; c < C; c++) rdz.data[base + c] = p[base + c] * (rz.data[base + c] - pr);
    }
    return rdz;
  }
}

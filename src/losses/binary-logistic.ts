import { type Activation, outputActivation, type PassContext, passBuffers } from '../layers/types.js';
import { fail } from '../util/errors.js';
import { type Loss, type LossTape, position, type Targets } from './types.js';

/** Binary cross-entropy on a logit z with target y ∈ [0, 1]: softplus(z) − y·z, summed over tokens. */
export class BinaryLogistic implements Loss {
  readonly kind = 'binary-logistic';

  checkTargets(
    targets: Targets,
    n: number,
    tokens: number,
    width: number,
    where: string,
    firstExample = 0,
  ): void {
    if (width !== 1) fail(`${where}: binary logistic loss needs a model with 1 output, got ${width}`);
    if (targets.length !== n * tokens)
      fail(`${where}: expected ${n * tokens} targets, got ${targets.length}`);
    for (let e = 0; e < targets.length; e++) {
      const y = targets[e];
      if (!(y >= 0 && y <= 1))
        fail(`${where}: ${position(firstExample, e, tokens)} has target ${y}; it must be in [0, 1]`);
    }
  }

  forward(ctx: PassContext, output: Activation, targets: Targets, tape: LossTape): Float64Array {
    const { n, tokens: T, data: z } = output;
    const p = passBuffers(ctx).uninitialized(ctx.dtype, z.length);
    const losses = passBuffers(ctx).zeros('float64', n);
    for (let r = 0; r < n * T; r++) {
      const zr = z[r];
      // softplus(z) computed without overflow for large |z|.
      const softplus = zr > 0 ? zr + Math.log1p(Math.exp(-zr)) : Math.log1p(Math.exp(zr));
      losses[Math.floor(r / T)] += softplus - targets[r] * zr;
      p[r] = 1 / (1 + Math.exp(-zr));
    }
    tape.output = output;
    tape.targets = targets;
    tape.probabilities = p;
    return losses;
  }

  backward(ctx: PassContext, tape: LossTape): Activation {
    const { n, tokens } = tape.output;
    const p = tape.probabilities!;
    const dz = outputActivation(ctx, n, tokens, 1);
    for (let r = 0; r < n * tokens; r++) dz.data[r] = p[r] - tape.targets[r];
    return dz;
  }

  rBackward(ctx: PassContext, tape: LossTape, rz: Activation): Activation {
    const { n, tokens } = tape.output;
    const p = tape.probabilities!;
    const rdz = outputActivation(ctx, n, tokens, 1);
    for (let r = 0; r < n * tokens; r++) rdz.data[r] = p[r] * (1 - p[r]) * rz.data[r];
    return rdz;
  }
}

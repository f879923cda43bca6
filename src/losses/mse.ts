import { type Activation, outputActivation, type PassContext, passBuffers } from '../layers/types.js';
import { fail } from '../util/errors.js';
import { type Loss, type LossTape, position, type Targets } from './types.js';

/**
 * Mean squared error over an example's outputs: (1/d)·Σ_c (z_c − y_c)² per token (PyTorch's
 * MSELoss for one example), summed over tokens.
 */
export class MeanSquaredError implements Loss {
  readonly kind = 'mse';

  checkTargets(
    targets: Targets,
    n: number,
    tokens: number,
    width: number,
    where: string,
    firstExample = 0,
  ): void {
    if (targets instanceof Int32Array)
      fail(`${where}: MSE needs real-valued targets (Float32Array/Float64Array)`);
    if (targets.length !== n * tokens * width)
      fail(`${where}: expected ${n * tokens * width} targets, got ${targets.length}`);
    for (let e = 0; e < targets.length; e++) {
      if (!Number.isFinite(targets[e]))
        fail(`${where}: ${position(firstExample, Math.floor(e / width), tokens)} has target ${targets[e]}`);
    }
  }

  forward(ctx: PassContext, output: Activation, targets: Targets, tape: LossTape): Float64Array {
    const { n, data: z } = output;
    const perExample = z.length / n;
    const d = output.width;
    const losses = passBuffers(ctx).zeros('float64', n);
    for (let e = 0; e < z.length; e++) {
      const diff = z[e] - targets[e];
      losses[Math.floor(e / perExample)] += (diff * diff) / d;
    }
    tape.output = output;
    tape.targets = targets;
    return losses;
  }

  backward(ctx: PassContext, tape: LossTape): Activation {
    const { n, tokens, width: d, data: z } = tape.output;
    const dz = outputActivation(ctx, n, tokens, d);
    for (let e = 0; e < z.length; e++) dz.data[e] = (2 * (z[e] - tape.targets[e])) / d;
    return dz;
  }

  rBackward(ctx: PassContext, tape: LossTape, rz: Activation): Activation {
    const { n, tokens, width: d } = tape.output;
    const rdz = outputActivation(ctx, n, tokens, d);
    for (let e = 0; e < rz.data.length; e++) rdz.data[e] = (2 * rz.data[e]) / d;
    return rdz;
  }
}

import type { FloatArray } from '../kernels/types.js';
import { fail } from '../util/errors.js';
import { chainBackward, chainForward, chainRBackward, chainRForward } from './chain.js';
import {
  type Activation,
  activation,
  type Layer,
  type LayerTape,
  type ParamSlot,
  type PassContext,
} from './types.js';

/** y = x + f(x), f a chain of layers with matching input and output shapes (a transformer's sub-block). */
export class Residual implements Layer {
  readonly kind = 'residual';
  params: ParamSlot[] = [];

  constructor(readonly children: Layer[]) {}

  paramSpecs() {
    return [];
  }

  outputShape(input: { tokens: number; width: number }) {
    let shape = input;
    for (const layer of this.children) shape = layer.outputShape(shape);
    if (shape.tokens !== input.tokens || shape.width !== input.width)
      fail(`Residual: the inner layers map width ${input.width} to ${shape.width}; they must keep it`);
    return input;
  }

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    tape.children = [];
    const fx = chainForward(this.children, ctx, x, tape.children);
    tape.input = x;
    tape.output = add(ctx, x, fx);
    return tape.output;
  }

  backward(ctx: PassContext, dy: Activation, tape: LayerTape, needInputGrad: boolean): Activation | null {
    tape.outputGrad = dy;
    const inner = chainBackward(this.children, ctx, dy, tape.children!, needInputGrad);
    return needInputGrad ? add(ctx, dy, inner!) : null;
  }

  rForward(ctx: PassContext, v: FloatArray, tape: LayerTape, rx: Activation | null): Activation {
    const rf = chainRForward(this.children, ctx, v, tape.children!, rx);
    tape.rInput = rx;
    tape.rOutput = rx ? add(ctx, rx, rf) : rf;
    return tape.rOutput;
  }

  rBackward(
    ctx: PassContext,
    v: FloatArray,
    tape: LayerTape,
    rdy: Activation,
    hv: FloatArray,
    needInputGrad: boolean,
  ): Activation | null {
    const inner = chainRBackward(this.children, ctx, v, tape.children!, rdy, hv, needInputGrad);
    return needInputGrad ? add(ctx, rdy, inner!) : null;
  }
}

function add(ctx: PassContext, a: Activation, b: Activation): Activation {
  const out = activation(ctx.dtype, a.n, a.tokens, a.width);
  for (let e = 0; e < out.data.length; e++) out.data[e] = a.data[e] + b.data[e];
  return out;
}

import type { ActivationKind, FloatArray } from '../kernels/types.js';
import {
  type Activation,
  type Layer,
  type LayerTape,
  outputActivation,
  type ParamSlot,
  type PassContext,
  zeroActivation,
} from './types.js';

/**
 * A parameter-free activation y = f(x), applied element by element. Its backward needs f′ and
 * its R-operator f″: R{dx} = f″(x)·R{x}·dy + f′(x)·R{dy}. The loops are kernels
 * (`KernelOps.activation*`, portable twins in src/kernels/ops.ts), so the native set runs them in C.
 */
class Elementwise implements Layer {
  params: ParamSlot[] = [];

  constructor(readonly kind: ActivationKind) {}

  paramSpecs() {
    return [];
  }

  outputShape(input: { tokens: number; width: number }) {
    return input;
  }

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    const y = outputActivation(ctx, x.n, x.tokens, x.width);
    ctx.kernels.activationForward(this.kind, x.data, y.data);
    tape.input = x;
    tape.output = y;
    return y;
  }

  backward(ctx: PassContext, dy: Activation, tape: LayerTape, needInputGrad: boolean): Activation | null {
    tape.outputGrad = dy;
    if (!needInputGrad) return null;
    const dx = outputActivation(ctx, dy.n, dy.tokens, dy.width);
    ctx.kernels.activationBackward(this.kind, tape.input.data, tape.output.data, dy.data, dx.data);
    return dx;
  }

  rForward(ctx: PassContext, _v: FloatArray, tape: LayerTape, rx: Activation | null): Activation {
    const x = tape.input;
    // Without R{x} (the input is data) R{y} is zero.
    const ry = rx
      ? outputActivation(ctx, x.n, x.tokens, x.width)
      : zeroActivation(ctx, x.n, x.tokens, x.width);
    if (rx) ctx.kernels.activationRForward(this.kind, x.data, tape.output.data, rx.data, ry.data);
    tape.rInput = rx;
    tape.rOutput = ry;
    return ry;
  }

  rBackward(
    ctx: PassContext,
    _v: FloatArray,
    tape: LayerTape,
    rdy: Activation,
    _hv: FloatArray,
    needInputGrad: boolean,
  ): Activation | null {
    if (!needInputGrad) return null;
    const dy = tape.outputGrad;
    if (!dy) throw new Error('internal: backward has not run on this tape');
    const rdx = outputActivation(ctx, rdy.n, rdy.tokens, rdy.width);
    ctx.kernels.activationRBackward(
      this.kind,
      tape.input.data,
      tape.output.data,
      dy.data,
      rdy.data,
      tape.rInput?.data ?? null,
      rdx.data,
    );
    return rdx;
  }
}

export const ReLU = () => new Elementwise('relu');
export const Tanh = () => new Elementwise('tanh');
export const Sigmoid = () => new Elementwise('sigmoid');
export const GELU = () => new Elementwise('gelu');

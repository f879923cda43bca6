import type { FloatArray } from '../kernels/types.js';
import { type Activation, type Layer, type LayerTape, type PassContext, passBuffers } from './types.js';

// Running a list of layers in order: shared by the model and by composite layers (residual blocks).

/** Runs the layers in order; layer l's tape goes to tapes[l] (tapes from the pass's buffers). */
export function chainForward(
  layers: Layer[],
  ctx: PassContext,
  x: Activation,
  tapes: LayerTape[],
): Activation {
  const buffers = passBuffers(ctx);
  for (let l = 0; l < layers.length; l++) {
    const tape = buffers.tape(x);
    x = layers[l].forward(ctx, x, tape);
    tapes[l] = tape;
  }
  return x;
}

/** Back-propagates dy; the first layer is asked for an input gradient only if `needInputGrad`. */
export function chainBackward(
  layers: Layer[],
  ctx: PassContext,
  dy: Activation,
  tapes: LayerTape[],
  needInputGrad: boolean,
): Activation | null {
  let grad: Activation | null = dy;
  for (let l = layers.length - 1; l >= 0; l--) {
    grad = layers[l].backward(ctx, grad!, tapes[l], l > 0 || needInputGrad);
  }
  return grad;
}

export function chainRForward(
  layers: Layer[],
  ctx: PassContext,
  v: FloatArray,
  tapes: LayerTape[],
  rx: Activation | null,
): Activation {
  let r = rx;
  for (let l = 0; l < layers.length; l++) r = layers[l].rForward(ctx, v, tapes[l], r);
  return r!;
}

export function chainRBackward(
  layers: Layer[],
  ctx: PassContext,
  v: FloatArray,
  tapes: LayerTape[],
  rdy: Activation,
  hv: FloatArray,
  needInputGrad: boolean,
): Activation | null {
  let r: Activation | null = rdy;
  for (let l = layers.length - 1; l >= 0; l--) {
    r = layers[l].rBackward(ctx, v, tapes[l], r!, hv, l > 0 || needInputGrad);
  }
  return r;
}

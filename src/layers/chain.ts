import type { FloatArray } from '../kernels/types.js';
import type { Activation, Layer, LayerTape, PassContext } from './types.js';

// Running a list of layers in order: shared by the model and by composite layers (residual blocks).

export function chainForward(
  layers: Layer[],
  ctx: PassContext,
  x: Activation,
  tapes: LayerTape[],
): Activation {
  for (const layer of layers) {
    const tape = { input: x, output: x } as LayerTape;
    x = layer.forward(ctx, x, tape);
    tapes.push(tape);
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
  layers.forEach((layer, l) => {
    r = layer.rForward(ctx, v, tapes[l], r);
  });
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

/**
 * Calls fn for every layer that owns parameters, descending into composites, with that layer's
 * tape from each of the given passes (e.g. the training and the validation pass).
 */
export function forEachParamLayer(
  layers: Layer[],
  tapeLists: LayerTape[][],
  fn: (layer: Layer, tapes: LayerTape[]) => void,
): void {
  // Plain loops: this runs for every layer of every pass, and closures per layer add up.
  for (let l = 0; l < layers.length; l++) {
    const layer = layers[l];
    if (layer.children) {
      const childLists = new Array<LayerTape[]>(tapeLists.length);
      for (let k = 0; k < tapeLists.length; k++) childLists[k] = tapeLists[k][l].children!;
      forEachParamLayer(layer.children, childLists, fn);
    } else if (layer.params.length > 0) {
      const tapes = new Array<LayerTape>(tapeLists.length);
      for (let k = 0; k < tapeLists.length; k++) tapes[k] = tapeLists[k][l];
      fn(layer, tapes);
    }
  }
}

// Float arrays by element type. Kept apart from ./index.ts (which loads the Node-only native and
// wasm loaders) so that the layers, losses and datasets that allocate stay importable in a browser.
import { describe, InrunError } from '../util/errors.js';
import type { DType, FloatArray } from './types.js';

/** A zero-filled array of `length` elements of the given type. */
export function allocFloat(dtype: DType, length: number): FloatArray {
  if (dtype === 'float32') return new Float32Array(length);
  if (dtype === 'float64') return new Float64Array(length);
  throw new InrunError(`unknown dtype ${describe(dtype)} (accepted: float32, float64)`);
}

/** The element type of a float array. */
export function dtypeOf(a: FloatArray): DType {
  return a instanceof Float32Array ? 'float32' : 'float64';
}

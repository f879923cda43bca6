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

/** Node's Buffer where there is one (uninitialised memory); absent in a browser. */
const nodeBuffer = (globalThis as { Buffer?: { allocUnsafeSlow(size: number): Uint8Array } }).Buffer;

/** Below this many bytes the zero fill is cheap and allocFloat's pooled path is used. */
const UNINITIALIZED_MIN_BYTES = 1 << 16;

/**
 * An array of `length` elements whose contents are unspecified (whatever the memory held before),
 * for outputs that a kernel then overwrites in full — a gather, a transpose, a gemm with beta = 0.
 * Skips the zero fill of large arrays under Node (a CNN step allocates tens of MB of patches);
 * elsewhere it is allocFloat.
 */
export function allocUninitialized(dtype: DType, length: number): FloatArray {
  const bytes = length * (dtype === 'float32' ? 4 : 8);
  if (!nodeBuffer || bytes < UNINITIALIZED_MIN_BYTES || (dtype !== 'float32' && dtype !== 'float64'))
    return allocFloat(dtype, length);
  const buffer = nodeBuffer.allocUnsafeSlow(bytes).buffer;
  return dtype === 'float32' ? new Float32Array(buffer, 0, length) : new Float64Array(buffer, 0, length);
}

/** The element type of a float array. */
export function dtypeOf(a: FloatArray): DType {
  return a instanceof Float32Array ? 'float32' : 'float64';
}

import { allocFloat, dtypeOf } from '../kernels/alloc.js';
import type { DType, FloatArray } from '../kernels/types.js';

/** Buffers above this many elements are allocated per call rather than kept between calls. */
const KEEP_ELEMENTS = 1 << 20;

/**
 * A layer's scratch buffers, reused from call to call instead of allocated (and zero-filled) each
 * time: a CNN step otherwise spends a fifth of its time allocating and collecting them. A buffer
 * comes back with whatever the last call left in it, so it suits only outputs a kernel overwrites
 * (a gemm with beta = 0, a gather, a full copy); and it is valid until the next `take` of the same
 * name, so it must never outlive the call that took it (never on a tape).
 */
export class Scratch {
  private readonly buffers = new Map<string, FloatArray>();

  take(name: string, dtype: DType, length: number): FloatArray {
    if (length > KEEP_ELEMENTS) return allocFloat(dtype, length);
    let buffer = this.buffers.get(name);
    if (!buffer || buffer.length < length || dtypeOf(buffer) !== dtype) {
      buffer = allocFloat(dtype, length);
      this.buffers.set(name, buffer);
    }
    return buffer.length === length ? buffer : buffer.subarray(0, length);
  }
}

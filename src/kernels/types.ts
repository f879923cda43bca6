/**
 * The engine's one door to heavy arithmetic. Every matrix product in inrun goes through a
 * `Kernels` object, so a faster backend (native BLAS today, WASM or GPU later) changes nothing
 * outside `src/kernels/`.
 *
 * Matrices are dense and row-major. A matrix argument is a typed array plus its leading
 * dimension (the distance between the starts of consecutive rows); pass `array.subarray(offset)`
 * to start inside a larger buffer — both implementations read it in place, without copying.
 */
export type FloatArray = Float32Array | Float64Array;
export type DType = 'float32' | 'float64';
export type KernelKind = 'native' | 'portable';

export interface Kernels {
  readonly kind: KernelKind;

  /**
   * C ← alpha·op(A)·op(B) + beta·C, where op(X) is X or Xᵀ.
   * op(A) is M×K, op(B) is K×N, C is M×N. A, B and C must share one element type.
   * With beta = 0, C is overwritten and its old contents (even NaN) are ignored.
   */
  gemm(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: FloatArray,
    lda: number,
    B: FloatArray,
    ldb: number,
    beta: number,
    C: FloatArray,
    ldc: number,
  ): void;

  /**
   * `batch` independent gemms; problem b reads A at b·strideA, B at b·strideB and writes C at
   * b·strideC (strides in elements).
   *
   * With `inner` (default 1), each of those is `inner` problems: problem (b, j), j < inner, reads
   * A at b·strideA + j·innerStrideA, and likewise B and C (inner strides default to 0). This
   * reaches two-level layouts such as the (example, head) blocks of attention, where heads sit
   * side by side within each example's rows, in one call. The batch × inner problems run in no
   * promised order, so their C blocks must not overlap.
   */
  gemmBatched(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: FloatArray,
    lda: number,
    strideA: number,
    B: FloatArray,
    ldb: number,
    strideB: number,
    beta: number,
    C: FloatArray,
    ldc: number,
    strideC: number,
    batch: number,
    inner?: number,
    innerStrideA?: number,
    innerStrideB?: number,
    innerStrideC?: number,
  ): void;

  /** Threads the backend may use (OpenBLAS threads for the native kernels; ignored by portable). */
  setThreads(threads: number): void;
}

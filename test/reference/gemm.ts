/**
 * Naive float64 reference gemm for tests: the textbook triple loop over op(A), op(B), written for
 * clarity, not speed. Besides C it returns, per element, the magnitude |alpha|·Σ|a·b| + |beta·c|
 * that floating-point error in any summation order is proportional to.
 */
import type { FloatArray } from '../../src/kernels/types.js';

export interface ReferenceResult {
  /** The expected M×N result (densely packed, row stride N). */
  value: Float64Array;
  /** Σ of |terms| behind each element, for relative tolerances. */
  scale: Float64Array;
}

export function referenceGemm(
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
): ReferenceResult {
  const value = new Float64Array(M * N);
  const scale = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let sum = 0;
      let mag = 0;
      for (let k = 0; k < K; k++) {
        const a = transA ? A[k * lda + i] : A[i * lda + k];
        const b = transB ? B[j * ldb + k] : B[k * ldb + j];
        sum += a * b;
        mag += Math.abs(a * b);
      }
      const old = beta === 0 ? 0 : beta * C[i * ldc + j];
      value[i * N + j] = alpha * sum + old;
      scale[i * N + j] = Math.abs(alpha) * mag + Math.abs(old);
    }
  }
  return { value, scale };
}

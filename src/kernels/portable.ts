/**
 * Portable gemm in plain TypeScript: the fallback when the OpenBLAS addon is not built.
 *
 * It follows the usual blocked (GotoBLAS) scheme: op(B) is packed a KC×NC block at a time and
 * op(A) an MC×KC block at a time into contiguous Float64Array scratch panels — which is where the
 * transposes are resolved, so all four transpose combinations share one inner loop — and a 4×4
 * register-blocked micro-kernel accumulates each tile of C. Arithmetic happens in float64 (the
 * precision of JavaScript numbers) whatever the array type; float32 results are rounded once per
 * KC-deep pass when written back to C.
 */

import { portableOps } from './ops.js';
import type { FloatArray, Kernels } from './types.js';
import { validateGemm, validateThreads } from './validate.js';

const MR = 4;
const NR = 4;
const KC = 256;
const MC = 64;
const NC = 1024;

/** Scratch panels (1.1 MB together), shared by every call; gemm is synchronous, so never contended. */
const packA = new Float64Array(MC * KC);
const packB = new Float64Array(KC * NC);

/** C[c0 + i*ldc + j] *= beta over the M×N block; beta = 0 overwrites (old NaN/Inf ignored). */
function scaleC(M: number, N: number, beta: number, C: FloatArray, c0: number, ldc: number): void {
  if (beta === 1) return;
  for (let i = 0; i < M; i++) {
    const row = c0 + i * ldc;
    if (beta === 0) {
      C.fill(0, row, row + N);
    } else {
      for (let j = row, end = row + N; j < end; j++) C[j] *= beta;
    }
  }
}

/**
 * Packs op(A)[i0 : i0+mc, p0 : p0+kc] into packA as ⌈mc/MR⌉ panels, each kc×MR with the MR row
 * values for one k adjacent; rows past mc are zero.
 */
function packPanelA(
  transA: boolean,
  A: FloatArray,
  a0: number,
  lda: number,
  i0: number,
  mc: number,
  p0: number,
  kc: number,
): void {
  const dst = packA;
  let q = 0;
  for (let ir = 0; ir < mc; ir += MR) {
    const mr = Math.min(MR, mc - ir);
    if (!transA) {
      // op(A)[i, p] = A[i*lda + p]
      for (let r = 0; r < MR; r++) {
        if (r < mr) {
          let src = a0 + (i0 + ir + r) * lda + p0;
          for (let p = 0, d = q + r; p < kc; p++, d += MR) dst[d] = A[src++];
        } else {
          for (let p = 0, d = q + r; p < kc; p++, d += MR) dst[d] = 0;
        }
      }
    } else {
      // op(A)[i, p] = A[p*lda + i]: each k contributes MR adjacent values of one stored row.
      for (let p = 0; p < kc; p++) {
        const src = a0 + (p0 + p) * lda + i0 + ir;
        const d = q + p * MR;
        for (let r = 0; r < MR; r++) dst[d + r] = r < mr ? A[src + r] : 0;
      }
    }
    q += kc * MR;
  }
}

/**
 * Packs op(B)[p0 : p0+kc, j0 : j0+nc] into packB as ⌈nc/NR⌉ panels, each kc×NR with the NR column
 * values for one k adjacent; columns past nc are zero.
 */
function packPanelB(
  transB: boolean,
  B: FloatArray,
  b0: number,
  ldb: number,
  p0: number,
  kc: number,
  j0: number,
  nc: number,
): void {
  const dst = packB;
  let q = 0;
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = Math.min(NR, nc - jr);
    if (!transB) {
      // op(B)[p, j] = B[p*ldb + j]
      for (let p = 0; p < kc; p++) {
        const src = b0 + (p0 + p) * ldb + j0 + jr;
        const d = q + p * NR;
        for (let c = 0; c < NR; c++) dst[d + c] = c < nr ? B[src + c] : 0;
      }
    } else {
      // op(B)[p, j] = B[j*ldb + p]
      for (let c = 0; c < NR; c++) {
        if (c < nr) {
          let src = b0 + (j0 + jr + c) * ldb + p0;
          for (let p = 0, d = q + c; p < kc; p++, d += NR) dst[d] = B[src++];
        } else {
          for (let p = 0, d = q + c; p < kc; p++, d += NR) dst[d] = 0;
        }
      }
    }
    q += kc * NR;
  }
}

/**
 * C[tile] += alpha · (packed A panel at pa) · (packed B panel at pb) over kc steps, for the
 * top-left mr×nr part of the 4×4 tile starting at C[c].
 */
function microKernel(
  kc: number,
  alpha: number,
  pa: number,
  pb: number,
  C: FloatArray,
  c: number,
  ldc: number,
  mr: number,
  nr: number,
): void {
  const a = packA;
  const b = packB;
  let c00 = 0;
  let c01 = 0;
  let c02 = 0;
  let c03 = 0;
  let c10 = 0;
  let c11 = 0;
  let c12 = 0;
  let c13 = 0;
  let c20 = 0;
  let c21 = 0;
  let c22 = 0;
  let c23 = 0;
  let c30 = 0;
  let c31 = 0;
  let c32 = 0;
  let c33 = 0;
  for (let p = 0; p < kc; p++, pa += MR, pb += NR) {
    const a0 = a[pa];
    const a1 = a[pa + 1];
    const a2 = a[pa + 2];
    const a3 = a[pa + 3];
    const b0 = b[pb];
    const b1 = b[pb + 1];
    const b2 = b[pb + 2];
    const b3 = b[pb + 3];
    c00 += a0 * b0;
    c01 += a0 * b1;
    c02 += a0 * b2;
    c03 += a0 * b3;
    c10 += a1 * b0;
    c11 += a1 * b1;
    c12 += a1 * b2;
    c13 += a1 * b3;
    c20 += a2 * b0;
    c21 += a2 * b1;
    c22 += a2 * b2;
    c23 += a2 * b3;
    c30 += a3 * b0;
    c31 += a3 * b1;
    c32 += a3 * b2;
    c33 += a3 * b3;
  }
  if (mr === MR && nr === NR) {
    C[c] += alpha * c00;
    C[c + 1] += alpha * c01;
    C[c + 2] += alpha * c02;
    C[c + 3] += alpha * c03;
    c += ldc;
    C[c] += alpha * c10;
    C[c + 1] += alpha * c11;
    C[c + 2] += alpha * c12;
    C[c + 3] += alpha * c13;
    c += ldc;
    C[c] += alpha * c20;
    C[c + 1] += alpha * c21;
    C[c + 2] += alpha * c22;
    C[c + 3] += alpha * c23;
    c += ldc;
    C[c] += alpha * c30;
    C[c + 1] += alpha * c31;
    C[c + 2] += alpha * c32;
    C[c + 3] += alpha * c33;
    return;
  }
  const tile = [c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33];
  for (let i = 0; i < mr; i++) {
    for (let j = 0; j < nr; j++) C[c + i * ldc + j] += alpha * tile[i * NR + j];
  }
}

/** One gemm on already-validated arguments, with A, B, C starting at offsets a0, b0, c0. */
function gemmCore(
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: FloatArray,
  a0: number,
  lda: number,
  B: FloatArray,
  b0: number,
  ldb: number,
  beta: number,
  C: FloatArray,
  c0: number,
  ldc: number,
): void {
  if (M === 0 || N === 0) return;
  scaleC(M, N, beta, C, c0, ldc);
  if (K === 0 || alpha === 0) return;

  for (let j0 = 0; j0 < N; j0 += NC) {
    const nc = Math.min(NC, N - j0);
    for (let p0 = 0; p0 < K; p0 += KC) {
      const kc = Math.min(KC, K - p0);
      packPanelB(transB, B, b0, ldb, p0, kc, j0, nc);
      for (let i0 = 0; i0 < M; i0 += MC) {
        const mc = Math.min(MC, M - i0);
        packPanelA(transA, A, a0, lda, i0, mc, p0, kc);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = Math.min(NR, nc - jr);
          const pb = (jr / NR) * kc * NR;
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = Math.min(MR, mc - ir);
            const pa = (ir / MR) * kc * MR;
            microKernel(kc, alpha, pa, pb, C, c0 + (i0 + ir) * ldc + j0 + jr, ldc, mr, nr);
          }
        }
      }
    }
  }
}

export function createPortableKernels(): Kernels {
  return {
    kind: 'portable',
    ...portableOps,
    gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) {
      validateGemm(false, {
        transA,
        transB,
        M,
        N,
        K,
        alpha,
        A,
        lda,
        strideA: 0,
        B,
        ldb,
        strideB: 0,
        beta,
        C,
        ldc,
        strideC: 0,
        batch: 1,
      });
      gemmCore(transA, transB, M, N, K, alpha, A, 0, lda, B, 0, ldb, beta, C, 0, ldc);
    },
    gemmBatched(
      transA,
      transB,
      M,
      N,
      K,
      alpha,
      A,
      lda,
      strideA,
      B,
      ldb,
      strideB,
      beta,
      C,
      ldc,
      strideC,
      batch,
      inner,
      innerStrideA,
      innerStrideB,
      innerStrideC,
    ) {
      validateGemm(true, {
        transA,
        transB,
        M,
        N,
        K,
        alpha,
        A,
        lda,
        strideA,
        B,
        ldb,
        strideB,
        beta,
        C,
        ldc,
        strideC,
        batch,
        inner,
        innerStrideA,
        innerStrideB,
        innerStrideC,
      });
      const count = inner ?? 1;
      const iA = innerStrideA ?? 0;
      const iB = innerStrideB ?? 0;
      const iC = innerStrideC ?? 0;
      for (let b = 0; b < batch; b++) {
        for (let j = 0; j < count; j++) {
          gemmCore(
            transA,
            transB,
            M,
            N,
            K,
            alpha,
            A,
            b * strideA + j * iA,
            lda,
            B,
            b * strideB + j * iB,
            ldb,
            beta,
            C,
            b * strideC + j * iC,
            ldc,
          );
        }
      }
    },
    setThreads(threads: number) {
      // Single-threaded by design; the value is checked and accepted so callers need not know the backend.
      validateThreads(threads);
    },
  };
}

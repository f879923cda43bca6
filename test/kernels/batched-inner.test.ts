/**
 * gemmBatched's two-level (batch × inner) form: every kernel set (portable, native, wasm) against
 * the naive reference and against the portable kernels, on the strided (example, head) layouts
 * attention uses and on generic ones.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allocFloat, type DType, type FloatArray, type Kernels } from '../../src/kernels/index.js';
import { Rng } from '../../src/util/rng.js';
import { referenceGemm } from '../reference/gemm.js';
import { ALL_SETS, kernelsOrSkip, portableSet } from './kernel-sets.js';

const portable = portableSet.kernels!;

const TOL: Record<DType, number> = { float32: 1e-5, float64: 1e-12 };

/** Where one operand's problem (b, j) lives: offset + b·stride + j·inner, leading dimension ld. */
interface Layout {
  off: number;
  ld: number;
  stride: number;
  inner: number;
}

interface Case {
  name: string;
  dtype: DType;
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
  alpha: number;
  beta: number;
  batch: number;
  inner: number;
  A: Layout;
  B: Layout;
  C: Layout;
  fillC?: 'nan';
}

/** Elements from the operand's offset to the end of its last problem, plus a tail. */
function bufferLength(rows: number, width: number, l: Layout, c: Case): number {
  const tail = 3;
  if (rows === 0 || width === 0 || c.batch === 0 || c.inner === 0) return l.off + tail;
  return l.off + (c.batch - 1) * l.stride + (c.inner - 1) * l.inner + (rows - 1) * l.ld + width + tail;
}

function randomArray(dtype: DType, length: number, rng: Rng): FloatArray {
  const a = allocFloat(dtype, length);
  for (let i = 0; i < a.length; i++) a[i] = rng.uniform() * 2 - 1;
  return a;
}

/** Runs the case, checks every problem against the reference and that nothing else changed. */
function runCase(kernels: Kernels, c: Case, seed: number): Float64Array {
  const rng = new Rng(seed);
  const { dtype, transA, transB, M, N, K, alpha, beta } = c;
  const bufA = randomArray(dtype, bufferLength(transA ? K : M, transA ? M : K, c.A, c), rng);
  const bufB = randomArray(dtype, bufferLength(transB ? N : K, transB ? K : N, c.B, c), rng);
  const bufC = randomArray(dtype, bufferLength(M, N, c.C, c), rng);
  if (c.fillC === 'nan') bufC.fill(Number.NaN);
  const oldA = bufA.slice();
  const oldB = bufB.slice();
  const oldC = bufC.slice();
  kernels.gemmBatched(
    transA,
    transB,
    M,
    N,
    K,
    alpha,
    bufA.subarray(c.A.off),
    c.A.ld,
    c.A.stride,
    bufB.subarray(c.B.off),
    c.B.ld,
    c.B.stride,
    beta,
    bufC.subarray(c.C.off),
    c.C.ld,
    c.C.stride,
    c.batch,
    c.inner,
    c.A.inner,
    c.B.inner,
    c.C.inner,
  );
  const where = `${kernels.kind}: ${c.name} (${dtype})`;
  assert.deepEqual(bufA, oldA, `${where}: A was modified`);
  assert.deepEqual(bufB, oldB, `${where}: B was modified`);
  const at = (l: Layout, b: number, j: number) => l.off + b * l.stride + j * l.inner;
  const written = new Uint8Array(bufC.length);
  for (let b = 0; b < c.batch; b++) {
    for (let j = 0; j < c.inner; j++) {
      const c0 = at(c.C, b, j);
      const ref = referenceGemm(
        transA,
        transB,
        M,
        N,
        K,
        alpha,
        oldA.subarray(at(c.A, b, j)),
        c.A.ld,
        oldB.subarray(at(c.B, b, j)),
        c.B.ld,
        beta,
        oldC.subarray(c0),
        c.C.ld,
      );
      for (let i = 0; i < M; i++) {
        for (let k = 0; k < N; k++) {
          const e = c0 + i * c.C.ld + k;
          assert.equal(written[e], 0, `${where}: problems (${b}, ${j}) overlap in C; bad case`);
          written[e] = 1;
          const want = ref.value[i * N + k];
          const tol = TOL[dtype] * ref.scale[i * N + k];
          if (!(Math.abs(bufC[e] - want) <= tol))
            assert.fail(
              `${where}: C[${b}, ${j}][${i}, ${k}] = ${bufC[e]}, expected ${want} (tolerance ${tol})`,
            );
        }
      }
    }
  }
  for (let e = 0; e < bufC.length; e++) {
    if (!written[e] && !Object.is(bufC[e], oldC[e]))
      assert.fail(`${where}: element ${e} of C's buffer, outside every result, changed`);
  }
  return Float64Array.from(bufC);
}

function cases(): Case[] {
  const out: Case[] = [];
  for (const dtype of ['float32', 'float64'] as const) {
    // Attention: n examples of T tokens, H heads of width dh; input rows [q | k | v] of width 3d.
    const n = 3;
    const H = 4;
    const T = 5;
    const dh = 3;
    const d = H * dh;
    const w = 3 * d;
    const col = (k: number): Layout => ({ off: k * d, ld: w, stride: T * w, inner: dh });
    const out_: Layout = { off: 0, ld: d, stride: T * d, inner: dh };
    const square: Layout = { off: 0, ld: T, stride: H * T * T, inner: T * T };
    const base = { dtype, batch: n, inner: H };
    out.push({
      ...base,
      name: 'S = Q Kᵀ',
      transA: false,
      transB: true,
      M: T,
      N: T,
      K: dh,
      alpha: 0.5,
      beta: 0,
      A: col(0),
      B: col(1),
      C: square,
      fillC: 'nan',
    });
    out.push({
      ...base,
      name: 'O = P V',
      transA: false,
      transB: false,
      M: T,
      N: dh,
      K: T,
      alpha: 1,
      beta: 0,
      A: square,
      B: col(2),
      C: out_,
    });
    out.push({
      ...base,
      name: 'dV = Pᵀ dO',
      transA: true,
      transB: false,
      M: T,
      N: dh,
      K: T,
      alpha: 1,
      beta: 0,
      A: square,
      B: out_,
      C: col(2),
    });
    out.push({
      ...base,
      name: 'dK += dSᵀ Q',
      transA: true,
      transB: false,
      M: T,
      N: dh,
      K: T,
      alpha: 0.25,
      beta: 1,
      A: square,
      B: col(0),
      C: col(1),
    });
    out.push({
      ...base,
      name: 'dP = dO Vᵀ',
      transA: false,
      transB: true,
      M: T,
      N: T,
      K: dh,
      alpha: 1,
      beta: 0,
      A: out_,
      B: col(2),
      C: square,
    });
    // Generic interleaved layouts under every transpose pair, with offsets and odd strides.
    for (const [transA, transB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const M = 4;
      const N = 3;
      const K = 5;
      const lay = (width: number, rows: number, off: number): Layout => ({
        off,
        ld: 4 * width + 1,
        stride: rows * (4 * width + 1) + 2,
        inner: width + 1,
      });
      const A = lay(transA ? M : K, transA ? K : M, 2);
      const B = lay(transB ? K : N, transB ? N : K, 5);
      const C = lay(N, M, 1);
      out.push({
        ...base,
        name: `generic ${+transA}${+transB}`,
        transA,
        transB,
        M,
        N,
        K,
        alpha: -1.5,
        beta: 0.5,
        batch: 2,
        inner: 3,
        A,
        B,
        C,
      });
      // B shared by all inner problems (inner stride 0).
      out.push({
        ...base,
        name: `shared B ${+transA}${+transB}`,
        transA,
        transB,
        M,
        N,
        K,
        alpha: 1,
        beta: 0,
        batch: 2,
        inner: 3,
        A,
        B: { ...B, inner: 0 },
        C,
        fillC: 'nan',
      });
    }
    // Degenerate grids and inner = 1 (the plain batched form).
    const one: Layout = { off: 0, ld: 4, stride: 16, inner: 7 };
    out.push({
      ...base,
      name: 'inner 1',
      transA: false,
      transB: false,
      M: 4,
      N: 4,
      K: 4,
      alpha: 1,
      beta: 0.5,
      batch: 3,
      inner: 1,
      A: one,
      B: one,
      C: one,
    });
    out.push({
      ...base,
      name: 'inner 0',
      transA: false,
      transB: false,
      M: 4,
      N: 4,
      K: 4,
      alpha: 1,
      beta: 0.5,
      batch: 3,
      inner: 0,
      A: one,
      B: one,
      C: one,
    });
    out.push({
      ...base,
      name: 'batch 0',
      transA: false,
      transB: false,
      M: 4,
      N: 4,
      K: 4,
      alpha: 1,
      beta: 0.5,
      batch: 0,
      inner: 3,
      A: one,
      B: one,
      C: one,
    });
  }
  return out;
}

test('portable two-level gemmBatched matches the reference', () => {
  let seed = 1;
  for (const c of cases()) runCase(portable, c, seed++);
});

for (const set of ALL_SETS.filter((s) => s.kind !== 'portable')) {
  test(`${set.kind} two-level gemmBatched matches the reference and the portable kernels`, (t) => {
    const kernels = kernelsOrSkip(t, set);
    if (!kernels) return;
    let seed = 1;
    for (const c of cases()) {
      const got = runCase(kernels, c, seed);
      const want = runCase(portable, c, seed++);
      for (let e = 0; e < got.length; e++) {
        const tol = TOL[c.dtype] * (1 + Math.abs(want[e]));
        if (!(Object.is(got[e], want[e]) || Math.abs(got[e] - want[e]) <= tol))
          assert.fail(`${c.name} (${c.dtype}): element ${e}: ${set.kind} ${got[e]}, portable ${want[e]}`);
      }
    }
  });
}

test('two-level gemmBatched rejects bad arguments alike in every kernel set', (t) => {
  const f64 = (n: number) => new Float64Array(n);
  // A 2×4 A at b·8 + j·4 for batch 2, inner 2 needs 8 + 4 + 4 + 4 = 20 elements.
  const call = (k: Kernels, A: number, ...rest: unknown[]) =>
    // biome-ignore lint/suspicious/noExplicitAny: deliberately ill-typed arguments
    (k.gemmBatched as any)(
      false,
      false,
      2,
      3,
      4,
      1,
      f64(A),
      4,
      8,
      f64(40),
      3,
      12,
      0,
      f64(40),
      3,
      12,
      2,
      ...rest,
    );
  const bad: [string, (k: Kernels) => void, RegExp][] = [
    [
      'A too short for the inner grid',
      (k) => call(k, 19, 2, 4, 0, 6),
      /^gemmBatched: A has 19 elements but M=2, K=4, lda=4, strideA=8, batch=2, innerStrideA=4, inner=2 needs 20$/,
    ],
    [
      'C too short for the inner grid',
      (k) => call(k, 20, 2, 4, 0, 30),
      /^gemmBatched: C has 40 elements but M=2, N=3, ldc=3, strideC=12, batch=2, innerStrideC=30, inner=2 needs 48$/,
    ],
    [
      'negative inner',
      (k) => call(k, 20, -1),
      /^gemmBatched: inner must be an integer in \[0, 2147483647\], got -1$/,
    ],
    [
      'fractional inner stride',
      (k) => call(k, 20, 2, 4, 0.5),
      /^gemmBatched: innerStrideB must be an integer in \[0, 9007199254740991\], got 0.5$/,
    ],
    [
      'string inner stride',
      (k) => call(k, 20, 2, 4, 0, '6'),
      /^gemmBatched: innerStrideC must be a number, got string$/,
    ],
  ];
  for (const set of ALL_SETS) {
    // Unavailable sets are reported by the tests above; here they are left out.
    const kernels = set.kernels;
    if (!kernels) {
      t.diagnostic(`${set.kind} kernels unavailable: ${set.missing}`);
      continue;
    }
    for (const [label, fn, message] of bad) {
      assert.throws(
        () => fn(kernels),
        (err: Error) => message.test(err.message),
        `${kernels.kind}: ${label}`,
      );
    }
    // Undefined trailing arguments are the defaults: exactly the plain batched call.
    call(kernels, 20, undefined, undefined, undefined, undefined);
    call(kernels, 20, 2, 4, 0, 6);
  }
});

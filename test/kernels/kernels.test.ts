import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  allocFloat,
  type DType,
  dtypeOf,
  type FloatArray,
  getKernels,
  type Kernels,
  nativeKernelsStatus,
  wasmKernelsStatus,
} from '../../src/kernels/index.js';
import { loadNativeKernels } from '../../src/kernels/native.js';
import { Rng } from '../../src/util/rng.js';
import { referenceGemm } from '../reference/gemm.js';
import { ALL_SETS, kernelsOrSkip, portableSet } from './kernel-sets.js';

const portable = portableSet.kernels!;
const nativeLoad = loadNativeKernels();

const TOL: Record<DType, number> = { float32: 1e-5, float64: 1e-12 };

interface Case {
  dtype: DType;
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
  alpha: number;
  beta: number;
  /** Extra elements per row beyond the stored width (lda = width + pad). */
  padA?: number;
  padB?: number;
  padC?: number;
  /** Offsets of the subarray views into larger buffers. */
  offA?: number;
  offB?: number;
  offC?: number;
  /** Old C contents: random values, or NaN everywhere (only meaningful with beta = 0). */
  fillC?: 'random' | 'nan';
  batch?: number;
  /** Extra elements between consecutive batch items; 'shared' gives B stride 0. */
  gap?: number;
  sharedB?: boolean;
}

function randomArray(dtype: DType, length: number, rng: Rng): FloatArray {
  const a = allocFloat(dtype, length);
  for (let i = 0; i < a.length; i++) a[i] = rng.uniform() * 2 - 1;
  return a;
}

function describeCase(c: Case): string {
  return `${c.dtype} ${c.transA ? 'T' : 'N'}${c.transB ? 'T' : 'N'} M=${c.M} N=${c.N} K=${c.K} alpha=${c.alpha} beta=${c.beta} pads=${c.padA ?? 0},${c.padB ?? 0},${c.padC ?? 0} offs=${c.offA ?? 0},${c.offB ?? 0},${c.offC ?? 0} batch=${c.batch ?? '-'}`;
}

/** Elements a rows×width matrix with leading dimension ld occupies. */
function span(rows: number, width: number, ld: number): number {
  return rows === 0 || width === 0 ? 0 : (rows - 1) * ld + width;
}

/**
 * Runs one (batched if c.batch is set) gemm through `kernels` on views into larger buffers and checks
 * it against the reference, plus that nothing outside the C views was written and A, B were not.
 * Returns the full C buffer for cross-kernel comparisons.
 */
function runCase(kernels: Kernels, c: Case, seed: number): Float64Array {
  const rng = new Rng(seed);
  const { dtype, transA, transB, M, N, K, alpha, beta } = c;
  const rowsA = transA ? K : M;
  const widthA = transA ? M : K;
  const rowsB = transB ? N : K;
  const widthB = transB ? K : N;
  const lda = Math.max(1, widthA + (c.padA ?? 0));
  const ldb = Math.max(1, widthB + (c.padB ?? 0));
  const ldc = Math.max(1, N + (c.padC ?? 0));
  const offA = c.offA ?? 0;
  const offB = c.offB ?? 0;
  const offC = c.offC ?? 0;
  const batched = c.batch !== undefined;
  const batch = c.batch ?? 1;
  const gap = c.gap ?? 0;
  const strideA = span(rowsA, widthA, lda) + gap;
  const strideB = c.sharedB ? 0 : span(rowsB, widthB, ldb) + gap;
  const strideC = span(M, N, ldc) + gap;
  const tail = 3;
  const bufA = randomArray(dtype, offA + (batch - 1) * strideA + span(rowsA, widthA, lda) + tail, rng);
  const bufB = randomArray(dtype, offB + (batch - 1) * strideB + span(rowsB, widthB, ldb) + tail, rng);
  const bufC = randomArray(dtype, offC + (batch - 1) * strideC + span(M, N, ldc) + tail, rng);
  if (c.fillC === 'nan') bufC.fill(Number.NaN);
  const oldA = bufA.slice();
  const oldB = bufB.slice();
  const oldC = bufC.slice();
  const A = bufA.subarray(offA);
  const B = bufB.subarray(offB);
  const C = bufC.subarray(offC);

  if (batched) {
    kernels.gemmBatched(
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
    );
  } else {
    kernels.gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }

  const where = `${kernels.kind}: ${describeCase(c)}`;
  assert.deepEqual(bufA, oldA, `${where}: A was modified`);
  assert.deepEqual(bufB, oldB, `${where}: B was modified`);
  const written = new Uint8Array(bufC.length);
  for (let b = 0; b < batch; b++) {
    const ref = referenceGemm(
      transA,
      transB,
      M,
      N,
      K,
      alpha,
      oldA.subarray(offA + b * strideA),
      lda,
      oldB.subarray(offB + b * strideB),
      ldb,
      beta,
      oldC.subarray(offC + b * strideC),
      ldc,
    );
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        const at = offC + b * strideC + i * ldc + j;
        written[at] = 1;
        const got = bufC[at];
        const want = ref.value[i * N + j];
        const tol = TOL[dtype] * ref.scale[i * N + j];
        if (!(Math.abs(got - want) <= tol)) {
          assert.fail(`${where}: C[b=${b}, ${i}, ${j}] = ${got}, expected ${want} (tolerance ${tol})`);
        }
      }
    }
  }
  for (let at = 0; at < bufC.length; at++) {
    if (!written[at] && !Object.is(bufC[at], oldC[at])) {
      assert.fail(
        `${where}: element ${at} of C's buffer, outside the result, changed from ${oldC[at]} to ${bufC[at]}`,
      );
    }
  }
  return Float64Array.from(bufC);
}

const TRANSPOSES: readonly [boolean, boolean][] = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];
const DTYPES: readonly DType[] = ['float32', 'float64'];

/** The shared case list: every feature crossed with all four transpose combinations and both dtypes. */
function cases(): Case[] {
  const out: Case[] = [];
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [1, 7, 5],
    [6, 1, 3],
    [3, 5, 7],
    [17, 9, 33],
    [65, 13, 40], // M past one 64-row block of the portable kernels
    [9, 70, 300], // K past one 256-deep block
    [5, 1030, 3], // N past one 1024-wide block
    // The wasm kernels' blocks: float32 tiles 4×8 in A blocks of at most 128×256 and B blocks of
    // 256×2048, float64 tiles 4×4 in 64×256 and 256×1024 (split into equal parts: K = 517 is three
    // passes of 173); every size here needs several blocks or ends mid-tile.
    [131, 19, 517], // M past one 128-row block, K past two 256-deep blocks
    [5, 2053, 259], // N past one 2048-wide block
    [67, 1027, 6], // float64: M past 64 rows, N past 1024 columns
    [1, 67, 600], // a single row of C, K past two blocks
    [67, 1, 600], // a single column of C
  ];
  for (const dtype of DTYPES) {
    for (const [transA, transB] of TRANSPOSES) {
      const base = { dtype, transA, transB };
      for (const [M, N, K] of shapes) out.push({ ...base, M, N, K, alpha: 1, beta: 0 });
      out.push({ ...base, M: 7, N: 11, K: 13, alpha: -0.75, beta: 1.5 });
      out.push({ ...base, M: 7, N: 11, K: 13, alpha: 2, beta: 1 });
      // Leading dimensions wider than the rows (sub-matrix views) and views at offsets.
      out.push({ ...base, M: 6, N: 10, K: 9, alpha: 1.25, beta: -0.5, padA: 3, padB: 5, padC: 2 });
      out.push({ ...base, M: 6, N: 10, K: 9, alpha: 0.5, beta: 2, offA: 7, offB: 3, offC: 11 });
      out.push({
        ...base,
        M: 21,
        N: 18,
        K: 29,
        alpha: -1,
        beta: 0.25,
        padA: 1,
        padB: 4,
        padC: 7,
        offA: 5,
        offB: 9,
        offC: 2,
      });
      // beta = 0 overwrites C even where it held NaN; padding NaNs must stay.
      out.push({ ...base, M: 5, N: 6, K: 7, alpha: 1.5, beta: 0, padC: 2, offC: 3, fillC: 'nan' });
      out.push({ ...base, M: 5, N: 6, K: 7, alpha: 0, beta: 0, padC: 1, fillC: 'nan' });
      // Dense C (no padding between rows or items): nothing outside the results to keep.
      out.push({ ...base, M: 5, N: 6, K: 7, alpha: -1, beta: 0, fillC: 'nan' });
      out.push({ ...base, M: 3, N: 4, K: 5, alpha: 1, beta: 0, batch: 3, fillC: 'nan' });
      // Degenerate sizes.
      out.push({ ...base, M: 4, N: 3, K: 0, alpha: 1, beta: 0.5 });
      out.push({ ...base, M: 4, N: 3, K: 0, alpha: 1, beta: 0, fillC: 'nan' });
      out.push({ ...base, M: 0, N: 3, K: 2, alpha: 1, beta: 0.5 });
      out.push({ ...base, M: 3, N: 0, K: 2, alpha: 1, beta: 0.5 });
      out.push({ ...base, M: 4, N: 5, K: 6, alpha: 0, beta: 3 });
      // Batched, with gaps between items, shared B (stride 0), offsets and padding.
      out.push({ ...base, M: 4, N: 5, K: 6, alpha: 1, beta: 0, batch: 3 });
      out.push({ ...base, M: 4, N: 5, K: 6, alpha: 0.5, beta: 1.5, batch: 4, gap: 3, offA: 2, offC: 1 });
      out.push({ ...base, M: 3, N: 8, K: 5, alpha: -2, beta: 0, batch: 5, sharedB: true, padA: 2, padC: 1 });
      out.push({ ...base, M: 3, N: 4, K: 2, alpha: 1, beta: 0, batch: 2, gap: 2, fillC: 'nan' });
      out.push({ ...base, M: 3, N: 4, K: 2, alpha: 1, beta: 0.5, batch: 0 });
    }
  }
  return out;
}

function runAll(kernels: Kernels): void {
  let seed = 1;
  for (const c of cases()) runCase(kernels, c, seed++);
}

for (const set of ALL_SETS) {
  test(`${set.kind} kernels match the reference gemm`, (t) => {
    const kernels = kernelsOrSkip(t, set);
    if (!kernels) return;
    assert.equal(kernels.kind, set.kind);
    runAll(kernels);
  });
}

for (const set of ALL_SETS.filter((s) => s.kind !== 'portable')) {
  test(`${set.kind} and portable kernels agree on identical random inputs`, (t) => {
    const kernels = kernelsOrSkip(t, set);
    if (!kernels) return;
    let seed = 1000;
    for (const dtype of DTYPES) {
      for (const [transA, transB] of TRANSPOSES) {
        for (const [M, N, K] of [
          [31, 47, 59],
          [128, 96, 200],
          [133, 45, 300],
        ]) {
          const c: Case = { dtype, transA, transB, M, N, K, alpha: 0.7, beta: -1.3, padA: 2, offC: 4 };
          // runCase checks each backend against the reference within the dtype's tolerance; on top
          // of that, the two results must lie within that same tolerance of each other.
          const s = seed++;
          const a = runCase(kernels, c, s);
          const b = runCase(portable, c, s);
          const rel = TOL[dtype] * 2 * K;
          for (let i = 0; i < a.length; i++) {
            assert.ok(
              Math.abs(a[i] - b[i]) <= rel,
              `${set.kind}: ${describeCase(c)}: element ${i}: ${a[i]} vs ${b[i]}`,
            );
          }
        }
      }
    }
  });
}

// ---------------------------------------------------------------- argument validation

type Call = (k: Kernels) => void;

const f32 = (n: number) => new Float32Array(n);
const f64 = (n: number) => new Float64Array(n);

/** Bad calls, the error class they must throw, and (a fragment of) the message. */
const BAD_CALLS: {
  name: string;
  call: Call;
  error: typeof TypeError | typeof RangeError;
  message: RegExp;
}[] = [
  {
    name: 'C too short',
    call: (k) => k.gemm(false, false, 4, 3, 2, 1, f64(8), 2, f64(6), 3, 0, f64(10), 3),
    error: RangeError,
    message: /^gemm: C has 10 elements but M=4, N=3, ldc=3 needs 12$/,
  },
  {
    name: 'A too short',
    call: (k) => k.gemm(false, false, 4, 3, 2, 1, f64(7), 2, f64(6), 3, 0, f64(12), 3),
    error: RangeError,
    message: /^gemm: A has 7 elements but M=4, K=2, lda=2 needs 8$/,
  },
  {
    name: 'A too short for its lda',
    call: (k) => k.gemm(false, false, 4, 3, 2, 1, f64(10), 3, f64(6), 3, 0, f64(12), 3),
    error: RangeError,
    message: /^gemm: A has 10 elements but M=4, K=2, lda=3 needs 11$/,
  },
  {
    name: 'transposed A too short',
    call: (k) => k.gemm(true, false, 4, 3, 2, 1, f64(7), 4, f64(6), 3, 0, f64(12), 3),
    error: RangeError,
    message: /^gemm: A has 7 elements but transA, M=4, K=2, lda=4 needs 8$/,
  },
  {
    name: 'B too short',
    call: (k) => k.gemm(false, true, 4, 3, 2, 1, f64(8), 2, f64(5), 2, 0, f64(12), 3),
    error: RangeError,
    message: /^gemm: B has 5 elements but transB, K=2, N=3, ldb=2 needs 6$/,
  },
  {
    name: 'subarray view too short',
    call: (k) => k.gemm(false, false, 2, 2, 2, 1, f64(10).subarray(7), 2, f64(4), 2, 0, f64(4), 2),
    error: RangeError,
    message: /^gemm: A has 3 elements but M=2, K=2, lda=2 needs 4$/,
  },
  {
    name: 'lda below the row width',
    call: (k) => k.gemm(false, false, 4, 3, 2, 1, f64(100), 1, f64(6), 3, 0, f64(12), 3),
    error: RangeError,
    message: /^gemm: lda=1 is less than 2, the row width of A \(stored 4x2\)$/,
  },
  {
    name: 'ldb below the row width of a transposed B',
    call: (k) => k.gemm(false, true, 4, 3, 5, 1, f64(100), 5, f64(100), 4, 0, f64(12), 3),
    error: RangeError,
    message: /^gemm: ldb=4 is less than 5, the row width of B \(stored 3x5, transposed\)$/,
  },
  {
    name: 'ldc zero',
    call: (k) => k.gemm(false, false, 1, 1, 1, 1, f64(1), 1, f64(1), 1, 0, f64(1), 0),
    error: RangeError,
    message: /^gemm: ldc must be an integer in \[1, 2147483647\], got 0$/,
  },
  {
    name: 'mixed element types',
    call: (k) => k.gemm(false, false, 2, 2, 2, 1, f32(4), 2, f64(4), 2, 0, f32(4), 2),
    error: TypeError,
    message: /^gemm: B is a Float64Array but A is a Float32Array \(A, B and C must share one element type\)$/,
  },
  {
    name: 'C of another type',
    call: (k) => k.gemm(false, false, 2, 2, 2, 1, f64(4), 2, f64(4), 2, 0, f32(4), 2),
    error: TypeError,
    message: /^gemm: C is a Float32Array but A is a Float64Array/,
  },
  {
    name: 'integer typed array',
    call: (k) => k.gemm(false, false, 1, 1, 1, 1, new Int32Array(1) as never, 1, f64(1), 1, 0, f64(1), 1),
    error: TypeError,
    message: /^gemm: A must be a Float32Array or Float64Array, got Int32Array$/,
  },
  {
    name: 'plain array',
    call: (k) => k.gemm(false, false, 1, 1, 1, 1, f64(1), 1, [0] as never, 1, 0, f64(1), 1),
    error: TypeError,
    message: /^gemm: B must be a Float32Array or Float64Array, got object$/,
  },
  {
    name: 'fractional M',
    call: (k) => k.gemm(false, false, 1.5, 1, 1, 1, f64(4), 1, f64(4), 1, 0, f64(4), 1),
    error: RangeError,
    message: /^gemm: M must be an integer in \[0, 2147483647\], got 1\.5$/,
  },
  {
    name: 'negative K',
    call: (k) => k.gemm(false, false, 1, 1, -1, 1, f64(4), 1, f64(4), 1, 0, f64(4), 1),
    error: RangeError,
    message: /^gemm: K must be an integer in \[0, 2147483647\], got -1$/,
  },
  {
    name: 'non-boolean transA',
    call: (k) => k.gemm(0 as never, false, 1, 1, 1, 1, f64(1), 1, f64(1), 1, 0, f64(1), 1),
    error: TypeError,
    message: /^gemm: transA must be a boolean, got number$/,
  },
  {
    name: 'string alpha',
    call: (k) => k.gemm(false, false, 1, 1, 1, '1' as never, f64(1), 1, f64(1), 1, 0, f64(1), 1),
    error: TypeError,
    message: /^gemm: alpha must be a number, got string$/,
  },
  {
    name: 'batched C too short',
    call: (k) => k.gemmBatched(false, false, 2, 3, 4, 1, f64(16), 4, 8, f64(24), 3, 12, 0, f64(11), 3, 6, 2),
    error: RangeError,
    message: /^gemmBatched: C has 11 elements but M=2, N=3, ldc=3, strideC=6, batch=2 needs 12$/,
  },
  {
    name: 'batched A too short',
    call: (k) => k.gemmBatched(false, false, 2, 3, 4, 1, f64(19), 4, 12, f64(24), 3, 12, 0, f64(12), 3, 6, 2),
    error: RangeError,
    message: /^gemmBatched: A has 19 elements but M=2, K=4, lda=4, strideA=12, batch=2 needs 20$/,
  },
  {
    name: 'batched negative stride',
    call: (k) => k.gemmBatched(false, false, 2, 3, 4, 1, f64(16), 4, -8, f64(24), 3, 12, 0, f64(12), 3, 6, 2),
    error: RangeError,
    message: /^gemmBatched: strideA must be an integer in \[0, 9007199254740991\], got -8$/,
  },
  {
    name: 'setThreads zero',
    call: (k) => k.setThreads(0),
    error: RangeError,
    message: /^setThreads: threads must be an integer in \[1, 1024\], got 0$/,
  },
];

function errorOf(call: () => void): Error {
  try {
    call();
  } catch (err) {
    return err as Error;
  }
  assert.fail('expected an error');
}

for (const set of ALL_SETS) {
  test(`${set.kind} kernels reject bad arguments with errors naming them`, (t) => {
    const kernels = kernelsOrSkip(t, set);
    if (!kernels) return;
    for (const bad of BAD_CALLS) {
      const err = errorOf(() => bad.call(kernels));
      assert.ok(
        err instanceof bad.error,
        `${bad.name}: expected ${bad.error.name}, got ${err.name}: ${err.message}`,
      );
      assert.match(err.message, bad.message, bad.name);
    }
    // Calls that need exactly the elements given pass.
    kernels.gemm(false, false, 4, 3, 2, 1, f64(8), 2, f64(6), 3, 0, f64(12), 3);
    kernels.gemmBatched(false, false, 2, 3, 4, 1, f64(20), 4, 12, f64(24), 3, 12, 0, f64(12), 3, 6, 2);
  });
}

for (const set of ALL_SETS.filter((s) => s.kind !== 'portable')) {
  test(`${set.kind} and portable kernels throw identical messages`, (t) => {
    const kernels = kernelsOrSkip(t, set);
    if (!kernels) return;
    const message = (k: Kernels, call: Call) => {
      try {
        call(k);
      } catch (err) {
        return `${(err as Error).name}: ${(err as Error).message}`;
      }
      return '';
    };
    for (const bad of BAD_CALLS)
      assert.equal(message(kernels, bad.call), message(portable, bad.call), bad.name);
  });
}

// ---------------------------------------------------------------- selection and helpers

function withEnv(vars: Record<string, string | undefined>, fn: () => void): void {
  const saved: Record<string, string | undefined> = {};
  for (const key of Object.keys(vars)) {
    saved[key] = process.env[key];
    if (vars[key] === undefined) delete process.env[key];
    else process.env[key] = vars[key];
  }
  try {
    fn();
  } finally {
    for (const key of Object.keys(saved)) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  }
}

test('getKernels honours options and INRUN_KERNELS, and caches instances', () => {
  withEnv({ INRUN_KERNELS: undefined, INRUN_THREADS: undefined }, () => {
    const p = getKernels({ kind: 'portable' });
    assert.equal(p.kind, 'portable');
    assert.equal(getKernels({ kind: 'portable' }), p);
    const status = nativeKernelsStatus();
    const wasmBuilt = wasmKernelsStatus().available;
    if (status.available) {
      assert.equal(getKernels().kind, 'native');
      assert.equal(getKernels({ kind: 'native' }), getKernels({ kind: 'auto' }));
    } else {
      assert.throws(() => getKernels({ kind: 'native' }), /native OpenBLAS kernels were requested/);
      // auto falls back to the wasm kernels when they are built, then to the portable ones.
      assert.equal(getKernels().kind, wasmBuilt ? 'wasm' : 'portable');
    }
    if (wasmBuilt) {
      assert.equal(getKernels({ kind: 'wasm' }).kind, 'wasm');
      assert.equal(getKernels({ kind: 'wasm' }), getKernels({ kind: 'wasm' }));
    } else {
      assert.throws(() => getKernels({ kind: 'wasm' }), /WebAssembly kernels were requested/);
    }
    assert.throws(
      () => getKernels({ kind: 'gpu' as never }),
      (err: Error) => /"gpu"/.test(err.message) && /native, portable, wasm, auto/.test(err.message),
    );
  });
  withEnv({ INRUN_KERNELS: 'portable', INRUN_THREADS: undefined }, () => {
    assert.equal(getKernels().kind, 'portable');
    if (nativeKernelsStatus().available) assert.equal(getKernels({ kind: 'native' }).kind, 'native');
    if (wasmKernelsStatus().available) assert.equal(getKernels({ kind: 'wasm' }).kind, 'wasm');
  });
  withEnv({ INRUN_KERNELS: ' WASM ', INRUN_THREADS: '3' }, () => {
    if (wasmKernelsStatus().available) assert.equal(getKernels().kind, 'wasm');
    else assert.throws(() => getKernels(), /requested \(INRUN_KERNELS=wasm\)/);
  });
  withEnv({ INRUN_KERNELS: 'blas', INRUN_THREADS: undefined }, () => {
    assert.throws(
      () => getKernels(),
      (err: Error) =>
        /INRUN_KERNELS="blas"/.test(err.message) && /native, portable, wasm, auto/.test(err.message),
    );
  });
  withEnv({ INRUN_KERNELS: 'portable', INRUN_THREADS: 'many' }, () => {
    assert.throws(() => getKernels(), /INRUN_THREADS="many"/);
  });
  withEnv({ INRUN_KERNELS: 'portable', INRUN_THREADS: undefined }, () => {
    assert.throws(() => getKernels({ threads: 0 }), /threads/);
  });
});

test('native setThreads changes the thread count', (t) => {
  if ('error' in nativeLoad) {
    t.skip('native kernels not built');
    return;
  }
  const before = nativeLoad.getThreads();
  try {
    nativeLoad.setThreads(1);
    assert.equal(nativeLoad.getThreads(), 1);
    // Results do not depend on the thread count.
    runCase(
      nativeLoad,
      { dtype: 'float64', transA: false, transB: true, M: 50, N: 40, K: 30, alpha: 1, beta: 0 },
      7,
    );
  } finally {
    nativeLoad.setThreads(before);
  }
});

// Work split over the addon's threads (attention-sized gemmBatched problems, long element-wise
// loops) must give the same bits whatever the thread count: each output is computed by one thread
// exactly as a single thread would.
test('native results are bit-identical with 1, 2 and 3 threads', (t) => {
  if ('error' in nativeLoad) {
    t.skip('native kernels not built');
    return;
  }
  const k = nativeLoad;
  const rng = new Rng(21);
  const random = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  // 16 examples × 4 heads of 64×64·32 products (S = Q Kᵀ/4), heads side by side in each example's rows.
  const [n, H, T, dh] = [16, 4, 64, 32];
  const w = H * dh;
  const q = random(n * T * w);
  const kk = random(n * T * w);
  const before = k.getThreads();
  try {
    const runs = [1, 2, 3].map((threads) => {
      k.setThreads(threads);
      const s = new Float32Array(n * H * T * T).fill(Number.NaN);
      k.gemmBatched(
        false,
        true,
        T,
        T,
        dh,
        0.25,
        q,
        w,
        T * w,
        kk,
        w,
        T * w,
        0,
        s,
        T,
        H * T * T,
        n,
        H,
        dh,
        dh,
        T * T,
      );
      return s;
    });
    const s0 = runs[0];
    for (const s of runs.slice(1)) assert.deepEqual(Buffer.from(s.buffer), Buffer.from(runs[0].buffer));
    // Large single products, split into one block of rows (M ≥ N) or columns of C per thread,
    // every transpose: each is right, and the counts agree to float rounding (OpenBLAS's result
    // for an element depends on the block it falls in, so not bit for bit).
    for (const [M, N, K] of [
      [1024, 384, 128],
      [96, 700, 256],
    ]) {
      for (const [transA, transB] of [
        [false, false],
        [true, false],
        [false, true],
        [true, true],
      ] as const) {
        const A = random(M * K);
        const B = random(K * N);
        const products = [1, 2, 3].map((threads) => {
          k.setThreads(threads);
          const C = new Float32Array(M * N).fill(Number.NaN);
          k.gemm(transA, transB, M, N, K, 0.5, A, transA ? M : K, B, transB ? K : N, 0, C, N);
          return C;
        });
        const { value, scale } = referenceGemm(
          transA,
          transB,
          M,
          N,
          K,
          0.5,
          A,
          transA ? M : K,
          B,
          transB ? K : N,
          0,
          new Float32Array(M * N),
          N,
        );
        for (const [t, C] of products.entries())
          for (let e = 0; e < value.length; e++)
            assert.ok(
              Math.abs(C[e] - value[e]) <= 1e-6 * scale[e] + 1e-30,
              `gemm ${M}×${N}·${K} ${transA} ${transB}, ${t + 1} threads [${e}]`,
            );
      }
    }
    // The element-wise ops, at sizes that split into several parts: every output array, bit for bit.
    const [rows, classes, width] = [300, 1000, 128];
    const x = random(589_824); // 9 · 2¹⁶: whole rows of 128 and 64 parts
    const dy = random(x.length);
    const logits = random(rows * classes);
    const targets = Int32Array.from({ length: rows }, (_, r) => (r * 7) % classes);
    const weights = new Float64Array(rows).fill(1);
    // Some ignored rows for the R-backward, whose zero rows are written too.
    const someIgnored = weights.map((_, r) => (r % 5 === 3 ? 0 : 1 / (1 + (r % 3))));
    const gamma = random(width);
    const beta = random(width);
    const vGamma = random(width);
    const vBeta = random(width);
    const opRuns = [1, 2, 3].map((threads) => {
      k.setThreads(threads);
      const gelu = new Float32Array(x.length);
      k.activationForward('gelu', x, gelu);
      const dgelu = new Float32Array(x.length);
      k.activationBackward('gelu', x, gelu, dy, dgelu);
      const rgelu = new Float32Array(x.length);
      k.activationRBackward('gelu', x, gelu, dy, x, dy, rgelu);
      const sum = new Float32Array(x.length);
      k.add(x, dy, sum);
      const p = new Float32Array(logits.length);
      const loss = new Float64Array(rows);
      k.softmaxCrossEntropyForward(logits, targets, weights, rows, classes, p, loss);
      const dz = new Float32Array(logits.length);
      k.softmaxCrossEntropyBackward(p, targets, weights, rows, classes, dz);
      const probs = s0.slice();
      k.causalSoftmaxForward(probs, n * H, T);
      const dS = s0.slice();
      k.causalSoftmaxBackward(probs, dS, n * H, T);
      const lnRows = x.length / width;
      const xhat = new Float32Array(x.length);
      const rstd = new Float64Array(lnRows);
      const y = new Float32Array(x.length);
      k.layerNormForward(x, gamma, beta, lnRows, width, 1e-5, true, xhat, rstd, y);
      const dx = new Float32Array(x.length);
      k.layerNormBackward(dy, xhat, rstd, gamma, lnRows, width, true, dx);
      const rxhat = new Float32Array(x.length);
      const shrink = new Float64Array(lnRows);
      const ry = new Float32Array(x.length);
      k.layerNormRForward(xhat, rstd, gamma, vGamma, vBeta, dy, lnRows, width, true, rxhat, shrink, ry);
      const gammaSums = new Float64Array(width);
      const betaSums = new Float64Array(width);
      const rdx = new Float32Array(x.length);
      k.layerNormRBackward(
        dy,
        x,
        xhat,
        rxhat,
        rstd,
        shrink,
        gamma,
        vGamma,
        lnRows,
        width,
        true,
        gammaSums,
        betaSums,
        rdx,
      );
      const rdz = new Float32Array(logits.length);
      k.softmaxCrossEntropyRBackward(p, logits, someIgnored, rows, classes, rdz);
      const params = x.slice();
      const m = new Float32Array(x.length);
      const v = new Float32Array(x.length);
      k.adamUpdate(params, dy, m, v, 0.5, 0.01, 0.9, 0.999, 0.999, 0.003, 0.3, 1e-8);
      const P = new Float32Array(x.length);
      k.adamPreconditioner(params, dy, v, 0.5, 0.01, 0.999, 0.3, 1e-8, P);
      const c = new Float32Array(x.length);
      k.adamLinearise(P, params, m, c, 0.9, 0.01, false, 0.19, 0.1 / 0.19);
      const kx = new Float32Array(x.length);
      k.scaleVector(dy, 0.25, P, kx);
      const dots = new Float64Array(64);
      k.rowDots(x, dy, null, 64, x.length / 64, x.length / 64, x.length / 64, dots);
      const biased = x.slice();
      k.addBias(biased, gamma, lnRows, width, 1);
      // The image routing ops over 64 images of 96×96: a gather with skipped entries, its adjoint
      // into separate images and into one (overlapping blocks: one thread), a transpose, 2×2 pooling.
      const [images, side] = [64, 96];
      const plane = side * side;
      const table = Int32Array.from({ length: 20_000 }, (_, e) => (e % 7 === 0 ? -1 : (e * 37) % plane));
      const gathered = new Float32Array(images * table.length);
      k.gather(x, table, images, plane, gathered);
      const scattered = new Float32Array(images * plane);
      k.scatterAdd(gathered, table, images, plane, scattered);
      const piled = new Float32Array(plane);
      k.scatterAdd(gathered, table, images, 0, piled);
      const transposed = new Float32Array(images * plane);
      k.transpose(x, transposed, images, side, side);
      const half = side / 2;
      const windows = Int32Array.from({ length: half * half * 4 }, (_, e) => {
        const [position, tap] = [Math.floor(e / 4), e % 4];
        const [r, col] = [2 * Math.floor(position / half) + (tap >> 1), 2 * (position % half) + (tap & 1)];
        return r * side + col;
      });
      const pooled = new Float32Array(images * half * half);
      const argmax = new Int32Array(pooled.length);
      k.maxPoolForward(x, windows, images, plane, half * half, 4, pooled, argmax);
      return {
        gathered,
        scattered,
        piled,
        transposed,
        pooled,
        argmax,
        gelu,
        dgelu,
        rgelu,
        sum,
        p,
        loss,
        dz,
        probs,
        dS,
        xhat,
        rstd,
        y,
        dx,
        rxhat,
        shrink,
        ry,
        gammaSums,
        betaSums,
        rdx,
        rdz,
        params,
        m,
        v,
        P,
        c,
        kx,
        dots,
        biased,
      };
    });
    for (const other of opRuns.slice(1))
      for (const [name, out] of Object.entries(other))
        assert.deepEqual(
          Buffer.from(out.buffer),
          Buffer.from(opRuns[0][name as keyof typeof other].buffer),
          name,
        );
    // And they are right: every product checked against the reference.
    for (let b = 0; b < n; b++) {
      for (let h = 0; h < H; h++) {
        const head = (m: Float32Array) =>
          Float64Array.from(
            { length: T * dh },
            (_, e) => m[b * T * w + Math.floor(e / dh) * w + h * dh + (e % dh)],
          );
        const { value, scale } = referenceGemm(
          false,
          true,
          T,
          T,
          dh,
          0.25,
          head(q),
          dh,
          head(kk),
          dh,
          0,
          new Float64Array(T * T),
          T,
        );
        const got = runs[0].subarray((b * H + h) * T * T, (b * H + h + 1) * T * T);
        for (let e = 0; e < value.length; e++)
          assert.ok(Math.abs(got[e] - value[e]) <= 1e-6 * scale[e] + 1e-30, `example ${b} head ${h} [${e}]`);
      }
    }
  } finally {
    k.setThreads(before);
  }
});

test('allocFloat and dtypeOf', () => {
  const a = allocFloat('float32', 3);
  const b = allocFloat('float64', 2);
  assert.ok(a instanceof Float32Array && a.length === 3);
  assert.ok(b instanceof Float64Array && b.length === 2);
  assert.equal(dtypeOf(a), 'float32');
  assert.equal(dtypeOf(b), 'float64');
  assert.equal(dtypeOf(b.subarray(1)), 'float64');
  assert.throws(() => allocFloat('float16' as never, 1), /float16/);
});

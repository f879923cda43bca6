/**
 * Argument checks shared by the TypeScript side of the kernels. The native addon performs the
 * same checks in C (native/inrun_blas.c) with the same messages, so a bad call fails the same way
 * — naming the offending argument — whichever backend runs, instead of reading or writing past the
 * end of an array.
 */
import type { DType, FloatArray } from './types.js';

/** Largest dimension or leading dimension accepted (BLAS integers are 32-bit). */
export const MAX_DIM = 2147483647;

/**
 * Everything a (batched) gemm call passes, in one record; strides are 0 and batch 1 for plain gemm.
 * The inner fields are gemmBatched's optional trailing arguments (undefined: inner 1, strides 0).
 */
export interface GemmArgs {
  transA: unknown;
  transB: unknown;
  M: unknown;
  N: unknown;
  K: unknown;
  alpha: unknown;
  A: unknown;
  lda: unknown;
  strideA: unknown;
  B: unknown;
  ldb: unknown;
  strideB: unknown;
  beta: unknown;
  C: unknown;
  ldc: unknown;
  strideC: unknown;
  batch: unknown;
  inner?: unknown;
  innerStrideA?: unknown;
  innerStrideB?: unknown;
  innerStrideC?: unknown;
}

function typeName(value: unknown): string {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return value.constructor.name;
  return value === null ? 'null' : typeof value;
}

function arrayName(a: FloatArray): string {
  return a instanceof Float32Array ? 'Float32Array' : 'Float64Array';
}

function checkBool(fn: string, name: string, value: unknown): boolean {
  if (typeof value !== 'boolean')
    throw new TypeError(`${fn}: ${name} must be a boolean, got ${typeName(value)}`);
  return value;
}

function checkNum(fn: string, name: string, value: unknown): number {
  if (typeof value !== 'number')
    throw new TypeError(`${fn}: ${name} must be a number, got ${typeName(value)}`);
  return value;
}

function checkInt(fn: string, name: string, value: unknown, min: number, max: number): number {
  const v = checkNum(fn, name, value);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${fn}: ${name} must be an integer in [${min}, ${max}], got ${v}`);
  }
  return v;
}

function checkArray(fn: string, name: string, value: unknown): FloatArray {
  if (value instanceof Float32Array || value instanceof Float64Array) return value;
  throw new TypeError(`${fn}: ${name} must be a Float32Array or Float64Array, got ${typeName(value)}`);
}

/**
 * Elements a row-major rows×width matrix with leading dimension ld occupies, repeated over a
 * batch × inner grid with the given strides (strides are non-negative, so the last item reaches
 * furthest).
 */
export function elementsNeeded(
  rows: number,
  width: number,
  ld: number,
  stride: number,
  batch: number,
  innerStride = 0,
  inner = 1,
): number {
  if (rows === 0 || width === 0 || batch === 0 || inner === 0) return 0;
  return (batch - 1) * stride + (inner - 1) * innerStride + (rows - 1) * ld + width;
}

/** An optional integer argument: its default when undefined, otherwise checked like checkInt. */
function optionalInt(fn: string, name: string, value: unknown, fallback: number, max: number): number {
  return value === undefined ? fallback : checkInt(fn, name, value, 0, max);
}

/**
 * Throws a TypeError or RangeError naming the first bad argument; returns the shared element type.
 * `batched` selects the function name and whether strides and batch appear in messages.
 */
export function validateGemm(batched: boolean, args: GemmArgs): DType {
  const fn = batched ? 'gemmBatched' : 'gemm';
  const transA = checkBool(fn, 'transA', args.transA);
  const transB = checkBool(fn, 'transB', args.transB);
  const M = checkInt(fn, 'M', args.M, 0, MAX_DIM);
  const N = checkInt(fn, 'N', args.N, 0, MAX_DIM);
  const K = checkInt(fn, 'K', args.K, 0, MAX_DIM);
  checkNum(fn, 'alpha', args.alpha);
  checkNum(fn, 'beta', args.beta);
  const A = checkArray(fn, 'A', args.A);
  const B = checkArray(fn, 'B', args.B);
  const C = checkArray(fn, 'C', args.C);
  for (const [name, arr] of [
    ['B', B],
    ['C', C],
  ] as const) {
    if (arrayName(arr) !== arrayName(A)) {
      throw new TypeError(
        `${fn}: ${name} is a ${arrayName(arr)} but A is a ${arrayName(A)} (A, B and C must share one element type)`,
      );
    }
  }
  const lda = checkInt(fn, 'lda', args.lda, 1, MAX_DIM);
  const ldb = checkInt(fn, 'ldb', args.ldb, 1, MAX_DIM);
  const ldc = checkInt(fn, 'ldc', args.ldc, 1, MAX_DIM);
  let strideA = 0;
  let strideB = 0;
  let strideC = 0;
  let batch = 1;
  let inner = 1;
  const innerStrides = { A: 0, B: 0, C: 0 };
  if (batched) {
    strideA = checkInt(fn, 'strideA', args.strideA, 0, Number.MAX_SAFE_INTEGER);
    strideB = checkInt(fn, 'strideB', args.strideB, 0, Number.MAX_SAFE_INTEGER);
    strideC = checkInt(fn, 'strideC', args.strideC, 0, Number.MAX_SAFE_INTEGER);
    batch = checkInt(fn, 'batch', args.batch, 0, MAX_DIM);
    inner = optionalInt(fn, 'inner', args.inner, 1, MAX_DIM);
    const max = Number.MAX_SAFE_INTEGER;
    innerStrides.A = optionalInt(fn, 'innerStrideA', args.innerStrideA, 0, max);
    innerStrides.B = optionalInt(fn, 'innerStrideB', args.innerStrideB, 0, max);
    innerStrides.C = optionalInt(fn, 'innerStrideC', args.innerStrideC, 0, max);
  }

  // Stored shapes: A is M×K (K×M when transposed), B is K×N (N×K when transposed), C is M×N.
  const mats = [
    {
      name: 'A' as const,
      arr: A,
      rows: transA ? K : M,
      width: transA ? M : K,
      ld: lda,
      ldName: 'lda',
      stride: strideA,
      dims: `${transA ? 'transA, ' : ''}M=${M}, K=${K}`,
      trans: transA,
    },
    {
      name: 'B' as const,
      arr: B,
      rows: transB ? N : K,
      width: transB ? K : N,
      ld: ldb,
      ldName: 'ldb',
      stride: strideB,
      dims: `${transB ? 'transB, ' : ''}K=${K}, N=${N}`,
      trans: transB,
    },
    {
      name: 'C' as const,
      arr: C,
      rows: M,
      width: N,
      ld: ldc,
      ldName: 'ldc',
      stride: strideC,
      dims: `M=${M}, N=${N}`,
      trans: false,
    },
  ];
  for (const m of mats) {
    if (m.ld < m.width) {
      throw new RangeError(
        `${fn}: ${m.ldName}=${m.ld} is less than ${m.width}, the row width of ${m.name} ` +
          `(stored ${m.rows}x${m.width}${m.trans ? ', transposed' : ''})`,
      );
    }
  }
  for (const m of mats) {
    const innerStride = innerStrides[m.name];
    const need = elementsNeeded(m.rows, m.width, m.ld, m.stride, batch, innerStride, inner);
    if (m.arr.length < need) {
      let extra = batched ? `, stride${m.name}=${m.stride}, batch=${batch}` : '';
      if (inner !== 1) extra += `, innerStride${m.name}=${innerStride}, inner=${inner}`;
      throw new RangeError(
        `${fn}: ${m.name} has ${m.arr.length} elements but ${m.dims}, ${m.ldName}=${m.ld}${extra} needs ${need}`,
      );
    }
  }
  return A instanceof Float32Array ? 'float32' : 'float64';
}

/** Largest thread count setThreads accepts. */
export const MAX_THREADS = 1024;

/** Same rule as the addon's setThreads: an integer in [1, MAX_THREADS]. */
export function validateThreads(threads: unknown): number {
  return checkInt('setThreads', 'threads', threads, 1, MAX_THREADS);
}

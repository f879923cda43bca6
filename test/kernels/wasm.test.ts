/**
 * What only the WebAssembly kernels have: operands copied into a linear memory that grows and is
 * reused, one copy for A and B when they share a buffer, loading from bytes, a Module or a fetch
 * Response, and a source file a browser can import. Numerical agreement over all shapes is in
 * kernels.test.ts and batched-inner.test.ts, which run every kernel set.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { DType, FloatArray } from '../../src/kernels/types.js';
import { createWasmKernels, createWasmKernelsAsync, type WasmKernels } from '../../src/kernels/wasm.js';
import { loadWasmKernels, wasmPath } from '../../src/kernels/wasm-node.js';
import { Rng } from '../../src/util/rng.js';
import { referenceGemm } from '../reference/gemm.js';
import { kernelsOrSkip, wasmSet } from './kernel-sets.js';

/** Tolerances relative to Σ|terms| of each element, as in kernels.test.ts. */
const TOL: Record<DType, number> = { float32: 1e-5, float64: 1e-12 };

/** The module's bytes, or undefined after skipping (or failing) the test like the other wasm tests. */
function moduleBytes(t: TestContext): Uint8Array<ArrayBuffer> | undefined {
  if (!kernelsOrSkip(t, wasmSet)) return undefined;
  return new Uint8Array(readFileSync(wasmPath()!));
}

/** A fresh instance, so memory sizes start from the module's initial memory. */
function freshKernels(t: TestContext): WasmKernels | undefined {
  const bytes = moduleBytes(t);
  return bytes && createWasmKernels(bytes);
}

function randomFill(a: FloatArray, rng: Rng): FloatArray {
  for (let i = 0; i < a.length; i++) a[i] = rng.uniform() * 2 - 1;
  return a;
}

/**
 * C ← alpha·op(A)·op(B) + beta·C through `kernels` on dense operands, checked against the
 * reference element by element.
 */
function checkDense(
  kernels: WasmKernels,
  dtype: DType,
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  seed: number,
): void {
  const rng = new Rng(seed);
  const make = (n: number) =>
    randomFill(dtype === 'float32' ? new Float32Array(n) : new Float64Array(n), rng);
  const A = make(M * K);
  const B = make(K * N);
  const C = make(M * N);
  const lda = transA ? M : K;
  const ldb = transB ? K : N;
  const ref = referenceGemm(transA, transB, M, N, K, 0.5, A, lda, B, ldb, -1.25, C, N);
  kernels.gemm(transA, transB, M, N, K, 0.5, A, lda, B, ldb, -1.25, C, N);
  for (let e = 0; e < M * N; e++) {
    const tol = TOL[dtype] * ref.scale[e];
    if (!(Math.abs(C[e] - ref.value[e]) <= tol))
      assert.fail(`${dtype} ${M}x${N}x${K}: C[${e}] = ${C[e]}, expected ${ref.value[e]} (tolerance ${tol})`);
  }
}

test('wasm memory grows for a large call and is reused by the smaller ones after it', (t) => {
  const kernels = freshKernels(t);
  if (!kernels) return;
  const initial = kernels.memoryBytes();
  checkDense(kernels, 'float64', false, false, 4, 5, 6, 1);
  assert.equal(kernels.memoryBytes(), initial, 'a small call fits the initial memory');
  // 150×190, 190×170 and 150×170 float64 operands: about 690 KB, more than the initial memory's
  // free part (its static packing panels take most of it).
  checkDense(kernels, 'float64', true, false, 150, 170, 190, 2);
  const grown = kernels.memoryBytes();
  assert.ok(grown > initial, `memory grew (${initial} → ${grown} bytes)`);
  checkDense(kernels, 'float64', false, true, 7, 3, 5, 3);
  checkDense(kernels, 'float32', true, true, 9, 11, 13, 4);
  assert.equal(kernels.memoryBytes(), grown, 'smaller calls reuse the grown memory');
  // Larger again, in float32: 300×400, 400×500 and 300×500 floats, about 1.9 MB.
  checkDense(kernels, 'float32', false, false, 300, 500, 400, 5);
  assert.ok(kernels.memoryBytes() > grown);
  checkDense(kernels, 'float64', true, true, 6, 5, 4, 6);
});

test('wasm kernels read A and B that share a buffer (with each other or with C)', (t) => {
  const kernels = kernelsOrSkip(t, wasmSet);
  if (!kernels) return;
  const rng = new Rng(7);
  for (const dtype of ['float32', 'float64'] as const) {
    const alloc = (n: number, shared = false): FloatArray => {
      const bytes = n * (dtype === 'float32' ? 4 : 8);
      const buffer = shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
      return randomFill(dtype === 'float32' ? new Float32Array(buffer) : new Float64Array(buffer), rng);
    };
    const n = 9;
    const d = 6;
    const w = 2 * d;
    // [name, A offset, lda, transA, B offset, ldb, transB, C offset, ldc, end of C's region]
    const layouts: [string, number, number, boolean, number, number, boolean, number, number, number][] = [
      // X·Xᵀ: A and B the same view; C further along the same buffer.
      ['gram', 0, d, false, 0, d, true, n * d + 5, n, n * d + 5 + n * n + 3],
      // Q·Kᵀ with queries and keys side by side in rows of width 2d; C after them.
      ['side by side', 0, w, false, d, w, true, n * w + 1, n, n * w + 1 + n * n + 2],
      // Xᵀ·X over overlapping views; C first in the buffer.
      ['overlapping', n * n + 4, d, true, n * n + 4 + 2 * d, d, false, 0, d, 0],
      // Far apart in one buffer: copied separately.
      ['far apart', 0, d, false, 20_000, d, true, 40_000, n, 40_000 + n * n],
    ];
    for (const shared of [false, true]) {
      for (const [name, offA, lda, transA, offB, ldb, transB, offC, ldc, end] of layouts) {
        const M = transA ? d : n;
        const K = transA ? n : d;
        const N = transB ? n : d;
        const size = Math.max(end, offA + n * lda, offB + n * ldb, offC + M * ldc) + 7;
        const buffer = alloc(size, shared);
        const before = buffer.slice();
        const A = buffer.subarray(offA);
        const B = buffer.subarray(offB);
        const C = buffer.subarray(offC);
        const ref = referenceGemm(transA, transB, M, N, K, 1.5, A, lda, B, ldb, 0.5, C.slice(), ldc);
        kernels.gemm(transA, transB, M, N, K, 1.5, A, lda, B, ldb, 0.5, C, ldc);
        const where = `${dtype} ${name}${shared ? ' (SharedArrayBuffer)' : ''}`;
        const written = new Uint8Array(size);
        for (let i = 0; i < M; i++) {
          for (let j = 0; j < N; j++) {
            const at = offC + i * ldc + j;
            written[at] = 1;
            const tol = TOL[dtype] * ref.scale[i * N + j];
            assert.ok(Math.abs(buffer[at] - ref.value[i * N + j]) <= tol, `${where}: C[${i}, ${j}]`);
          }
        }
        for (let e = 0; e < size; e++) {
          if (!written[e]) assert.ok(Object.is(buffer[e], before[e]), `${where}: element ${e} changed`);
        }
      }
    }
  }
});

test('wasm kernels load from bytes, a Module or a fetch Response, synchronously or not', async (t) => {
  const bytes = moduleBytes(t);
  if (!bytes) return;
  const module = new WebAssembly.Module(bytes);
  const loaded = [
    createWasmKernels(module),
    createWasmKernels(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)),
    await createWasmKernelsAsync(bytes),
    await createWasmKernelsAsync(module),
    await createWasmKernelsAsync(new Response(bytes)),
    await createWasmKernelsAsync(Promise.resolve(new Response(bytes))),
  ];
  let seed = 10;
  for (const kernels of loaded) {
    assert.equal(kernels.kind, 'wasm');
    kernels.setThreads(4); // accepted and ignored: single-threaded
    checkDense(kernels, 'float32', false, true, 5, 9, 17, seed++);
  }
  await assert.rejects(
    createWasmKernelsAsync(new Response('not found', { status: 404 })),
    /fetching the WebAssembly kernels from the given response failed: HTTP 404/,
  );
});

test('a module that is not inrun kernels, or not WebAssembly, is a clear error', () => {
  // The smallest valid module: magic number and version, nothing exported.
  const empty = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  assert.throws(
    () => createWasmKernels(empty),
    /^Error: this WebAssembly module is not inrun's kernels \(export memory missing\); rebuild/,
  );
  assert.throws(() => createWasmKernels(new Uint8Array([1, 2, 3])), WebAssembly.CompileError);

  const dir = mkdtempSync(join(tmpdir(), 'inrun-wasm-'));
  const garbage = join(dir, 'garbage.wasm');
  writeFileSync(garbage, 'not wasm');
  const bad = loadWasmKernels(garbage);
  assert.ok('error' in bad && bad.error.startsWith(`loading ${garbage} failed: `), JSON.stringify(bad));
  const missing = loadWasmKernels(join(dir, 'missing.wasm'));
  assert.deepEqual(missing, { error: `${join(dir, 'missing.wasm')} does not exist` });
  rmSync(dir, { recursive: true });
});

test('src/kernels/wasm.ts and what it imports use nothing Node-only (a browser can load them)', () => {
  const dir = fileURLToPath(new URL('../../src/kernels/', import.meta.url));
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    // Comments may mention Node; code may not.
    const code = readFileSync(join(dir, file), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    for (const [, from] of code.matchAll(/from '([^']+)'/g)) {
      assert.ok(from.startsWith('./'), `${file} imports ${from}`);
      visit(from.slice(2).replace(/\.js$/, '.ts'));
    }
    assert.doesNotMatch(code, /\b(process|Buffer|require|__dirname)\b|import\.meta/, file);
  };
  visit('wasm.ts');
  assert.deepEqual([...seen].sort(), ['ops.ts', 'types.ts', 'validate.ts', 'wasm.ts']);
});

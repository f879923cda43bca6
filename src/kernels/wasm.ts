/**
 * WebAssembly SIMD kernels: native/wasm/inrun_kernels.c compiled by clang to
 * build/wasm/inrun_kernels.wasm (`npm run build:wasm`), wrapped as `Kernels`.
 *
 * Browser-safe: no Node imports, so a page or Web Worker can import this file and hand it the
 * module's bytes (fetched) or a compiled `WebAssembly.Module`. Node loading lives in
 * ./wasm-node.ts.
 *
 * A WebAssembly instance sees only its own linear memory, so every call copies the parts of A and
 * B it reads into that memory (above the module's static data), runs one export for the whole
 * (batched) product, and copies C's span back. The memory grows to fit the largest call and is
 * reused, never shrunk. Copies cost O(operand size) against the product's O(M·N·K); for the MLP's
 * 256×512×784 product they take 0.2 ms of 9 (measured), about 2%.
 *
 * Single-threaded: WebAssembly threads need SharedArrayBuffer and cross-origin isolation, which
 * inrun cannot assume of a page, so `setThreads` checks its argument and changes nothing.
 */
import { portableOps } from './ops.js';
import type { FloatArray, Kernels } from './types.js';
import { elementsNeeded, validateGemm, validateThreads } from './validate.js';

/** The wasm kernels, plus a look at how much memory they hold. */
export interface WasmKernels extends Kernels {
  readonly kind: 'wasm';
  /** Bytes of WebAssembly linear memory now held (it grows with the largest call, never shrinks). */
  memoryBytes(): number;
}

/** One gemm export: batch × inner problems, pointers and strides as in native/wasm/inrun_kernels.c. */
type GemmExport = (
  transA: number,
  transB: number,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: number,
  lda: number,
  strideA: number,
  innerStrideA: number,
  B: number,
  ldb: number,
  strideB: number,
  innerStrideB: number,
  beta: number,
  C: number,
  ldc: number,
  strideC: number,
  innerStrideC: number,
  batch: number,
  inner: number,
) => void;

interface KernelExports {
  memory: WebAssembly.Memory;
  inrun_heap_base(): number;
  inrun_gemm_f32: GemmExport;
  inrun_gemm_f64: GemmExport;
}

const EXPORTS = ['memory', 'inrun_heap_base', 'inrun_gemm_f32', 'inrun_gemm_f64'] as const;

const PAGE_BYTES = 65536;
/** wasm32 addresses 2^32 bytes at most; engines may allow less, which memory.grow reports. */
const MAX_MEMORY_BYTES = 65536 * PAGE_BYTES;
/** Operands start on cache-line boundaries (and so are aligned for Float64Array views). */
const ALIGN = 64;

const alignUp = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

function exportsOf(instance: WebAssembly.Instance): KernelExports {
  const exports = instance.exports as Record<string, unknown>;
  for (const name of EXPORTS) {
    const want = name === 'memory' ? WebAssembly.Memory : Function;
    if (!(exports[name] instanceof want)) {
      throw new Error(
        `this WebAssembly module is not inrun's kernels (export ${name} missing); rebuild build/wasm/inrun_kernels.wasm with \`npm run build:wasm\``,
      );
    }
  }
  return exports as unknown as KernelExports;
}

/**
 * Kernels over a compiled module or its bytes. Compiles and instantiates synchronously, which
 * Node and Web Workers allow at any size; on a browser's main thread use createWasmKernelsAsync.
 * Throws a WebAssembly.CompileError where the engine lacks 128-bit SIMD.
 */
export function createWasmKernels(module: WebAssembly.Module | BufferSource): WasmKernels {
  const compiled = module instanceof WebAssembly.Module ? module : new WebAssembly.Module(module);
  return wrapInstance(new WebAssembly.Instance(compiled, {}));
}

/**
 * The same, compiling off the calling thread: also takes a fetch Response (or its promise), e.g.
 * `createWasmKernelsAsync(fetch(url))`. The body is read as bytes, so any Content-Type works.
 */
export async function createWasmKernelsAsync(
  source: WebAssembly.Module | BufferSource | Response | PromiseLike<Response>,
): Promise<WasmKernels> {
  let module: WebAssembly.Module;
  if (source instanceof WebAssembly.Module) {
    module = source;
  } else if (ArrayBuffer.isView(source) || source instanceof ArrayBuffer) {
    module = await WebAssembly.compile(source);
  } else {
    const response = await source;
    if (!response.ok) {
      throw new Error(
        `fetching the WebAssembly kernels from ${response.url || 'the given response'} failed: HTTP ${response.status}`,
      );
    }
    module = await WebAssembly.compile(await response.arrayBuffer());
  }
  return wrapInstance(await WebAssembly.instantiate(module, {}));
}

/** Where one operand sits in linear memory: its byte address and element count. */
interface Placed {
  address: number;
  length: number;
}

function wrapInstance(instance: WebAssembly.Instance): WasmKernels {
  const wasm = exportsOf(instance);
  const memory = wasm.memory;
  const heapBase = alignUp(wasm.inrun_heap_base());

  /** Makes linear memory at least `end` bytes long (growth invalidates old views of it). */
  function reserve(fn: string, end: number): void {
    const have = memory.buffer.byteLength;
    if (end <= have) return;
    if (end > MAX_MEMORY_BYTES) {
      throw new RangeError(
        `${fn}: the operands need ${end} bytes of WebAssembly memory, more than its 4 GiB limit ` +
          '(use smaller batches, or the native or portable kernels)',
      );
    }
    try {
      memory.grow(Math.ceil((end - have) / PAGE_BYTES));
    } catch (err) {
      throw new RangeError(
        `${fn}: growing WebAssembly memory to ${end} bytes failed (${(err as Error).message}); ` +
          'use smaller batches, or the native or portable kernels',
      );
    }
  }

  function run(
    batched: boolean,
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
    inner = 1,
    innerStrideA = 0,
    innerStrideB = 0,
    innerStrideC = 0,
  ): void {
    const fn = batched ? 'gemmBatched' : 'gemm';
    const dtype = validateGemm(batched, {
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
    if (M === 0 || N === 0 || batch === 0 || inner === 0) return;
    // A stride only matters with more than one step along it; zeroing the others keeps every
    // value passed to the 32-bit exports within the operands' (≤ 4 GiB) spans.
    if (batch === 1) strideA = strideB = strideC = 0;
    if (inner === 1) innerStrideA = innerStrideB = innerStrideC = 0;

    // With alpha = 0 (or K = 0) the kernel never reads A or B, so they are not copied.
    const readsAB = K > 0 && alpha !== 0;
    const spanA = readsAB
      ? elementsNeeded(transA ? K : M, transA ? M : K, lda, strideA, batch, innerStrideA, inner)
      : 0;
    const spanB = readsAB
      ? elementsNeeded(transB ? N : K, transB ? K : N, ldb, strideB, batch, innerStrideB, inner)
      : 0;
    const spanC = elementsNeeded(M, N, ldc, strideC, batch, innerStrideC, inner);
    const size = A.BYTES_PER_ELEMENT;

    // A and B are often views of one buffer (X·Xᵀ, or queries and keys side by side in one
    // activation); when their spans overlap or touch, one copy of the union serves both.
    const startA = A.byteOffset;
    const startB = B.byteOffset;
    const endA = startA + spanA * size;
    const endB = startB + spanB * size;
    const unionStart = Math.min(startA, startB);
    const unionBytes = Math.max(endA, endB) - unionStart;
    const shareAB = spanA > 0 && spanB > 0 && A.buffer === B.buffer && unionBytes <= (spanA + spanB) * size;

    let address = heapBase;
    let a: Placed;
    let b: Placed;
    if (shareAB) {
      a = { address: address + (startA - unionStart), length: spanA };
      b = { address: address + (startB - unionStart), length: spanB };
      address += alignUp(unionBytes);
    } else {
      a = { address, length: spanA };
      address += alignUp(spanA * size);
      b = { address, length: spanB };
      address += alignUp(spanB * size);
    }
    const c: Placed = { address, length: spanC };
    reserve(fn, address + spanC * size);

    const heap = memory.buffer;
    if (shareAB) {
      new Uint8Array(heap, heapBase, unionBytes).set(new Uint8Array(A.buffer, unionStart, unionBytes));
    } else {
      if (spanA > 0) view(heap, a, dtype).set(A.subarray(0, spanA));
      if (spanB > 0) view(heap, b, dtype).set(B.subarray(0, spanB));
    }
    const cView = view(heap, c, dtype);
    // C's span is copied in even where beta = 0 ignores the old values, because padding between
    // rows and problems is copied back out; only when the results tile the span exactly (dense
    // rows, problems end to end) does beta = 0 skip the copy.
    const dense =
      ldc === N && (batch === 1 || strideC === inner * M * N) && (inner === 1 || innerStrideC === M * N);
    if (!(beta === 0 && dense)) cView.set(C.subarray(0, spanC));

    const gemm = dtype === 'float32' ? wasm.inrun_gemm_f32 : wasm.inrun_gemm_f64;
    gemm(
      transA ? 1 : 0,
      transB ? 1 : 0,
      M,
      N,
      K,
      alpha,
      a.address,
      lda,
      strideA,
      innerStrideA,
      b.address,
      ldb,
      strideB,
      innerStrideB,
      beta,
      c.address,
      ldc,
      strideC,
      innerStrideC,
      batch,
      inner,
    );
    C.set(cView);
  }

  return {
    kind: 'wasm',
    // The element-wise ops are memory-bound: copying their operands into linear memory and back
    // would cost about what the loops do, so the wasm set runs the portable ones in place.
    ...portableOps,
    gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) {
      run(false, transA, transB, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
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
      run(
        true,
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
      );
    },
    setThreads(threads: number) {
      // Single-threaded (see the file comment); checked so a bad value fails as on the other kernels.
      validateThreads(threads);
    },
    memoryBytes: () => memory.buffer.byteLength,
  };
}

/** A typed view of a placed operand (views die when memory grows, so they are made per call). */
function view(heap: ArrayBuffer, placed: Placed, dtype: 'float32' | 'float64'): FloatArray {
  return dtype === 'float32'
    ? new Float32Array(heap, placed.address, placed.length)
    : new Float64Array(heap, placed.address, placed.length);
}

// The browser build's stand-in for src/kernels/index.ts, which picks kernels by name and loads
// the OpenBLAS addon and the wasm module through Node (scripts/build-web.mjs puts this file in its
// place). A page creates its kernels itself — createWasmKernelsAsync or createPortableKernels —
// and passes the object as the model's `kernels`; asking for kernels by name fails loudly here.
import type { Kernels } from '../kernels/types.js';
import { fail } from '../util/errors.js';

export { allocFloat, dtypeOf } from '../kernels/alloc.js';

/** Never returns in a browser: there is nothing to choose from by name. */
export function getKernels(_options?: unknown): Kernels {
  return fail(
    "getKernels() chooses among Node kernels; in a browser pass a Kernels object as the model's `kernels` " +
      '(createWasmKernelsAsync from src/kernels/wasm.ts, or createPortableKernels)',
  );
}

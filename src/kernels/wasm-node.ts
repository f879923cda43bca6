/**
 * Node's way to the WebAssembly kernels: reads build/wasm/inrun_kernels.wasm (built by
 * scripts/build-wasm.mjs at install time, or `npm run build:wasm`) from the package root. Kept
 * apart from ./wasm.ts, which must stay free of Node imports for browsers.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './native.js';
import { createWasmKernels, type WasmKernels } from './wasm.js';

/** The module's path relative to the package root. */
export const WASM_FILE = 'build/wasm/inrun_kernels.wasm';

/** Path of the compiled module, or undefined if the package root cannot be found. */
export function wasmPath(): string | undefined {
  const root = packageRoot();
  return root === undefined ? undefined : join(root, ...WASM_FILE.split('/'));
}

/**
 * Loads the module (by default the package's build/wasm/inrun_kernels.wasm); on failure returns a
 * short reason instead of throwing.
 */
export function loadWasmKernels(path = wasmPath()): WasmKernels | { error: string } {
  if (path === undefined) return { error: 'package.json of inrun not found above src/kernels' };
  const packaged = path === wasmPath();
  const name = packaged ? WASM_FILE : path;
  if (!existsSync(path)) return { error: packaged ? `${WASM_FILE} is not built` : `${path} does not exist` };
  try {
    return createWasmKernels(readFileSync(path));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { error: `loading ${name} failed: ${message.split('\n')[0]}` };
  }
}

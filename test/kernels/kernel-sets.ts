/**
 * The kernel sets the tests run against, each loaded once: portable (always), native (when the
 * OpenBLAS addon is built; skipped otherwise, since a machine without OpenBLAS is supported) and
 * wasm. scripts/run-tests.mjs builds the wasm module before the tests, so a missing one is a
 * failure — unless INRUN_SKIP_WASM_BUILD=1 says the build was skipped on purpose, in which case
 * its tests are skipped with the reason shown.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { loadNativeKernels } from '../../src/kernels/native.js';
import { createPortableKernels } from '../../src/kernels/portable.js';
import type { KernelKind, Kernels } from '../../src/kernels/types.js';
import { loadWasmKernels } from '../../src/kernels/wasm-node.js';

export interface KernelSet {
  kind: KernelKind;
  kernels: Kernels | undefined;
  /** Why `kernels` is undefined. */
  missing?: string;
  /** Whether a missing set fails its tests rather than skipping them. */
  required: boolean;
}

const nativeLoad = loadNativeKernels();
const wasmLoad = loadWasmKernels();
const skipWasm = process.env.INRUN_SKIP_WASM_BUILD === '1';

export const portableSet: KernelSet = { kind: 'portable', kernels: createPortableKernels(), required: true };

export const nativeSet: KernelSet =
  'error' in nativeLoad
    ? { kind: 'native', kernels: undefined, missing: nativeLoad.error, required: false }
    : { kind: 'native', kernels: nativeLoad, required: false };

export const wasmSet: KernelSet =
  'error' in wasmLoad
    ? {
        kind: 'wasm',
        kernels: undefined,
        missing: `${wasmLoad.error}${skipWasm ? ' (INRUN_SKIP_WASM_BUILD=1)' : ''}`,
        required: !skipWasm,
      }
    : { kind: 'wasm', kernels: wasmLoad, required: true };

export const ALL_SETS: readonly KernelSet[] = [portableSet, nativeSet, wasmSet];

/**
 * The set's kernels, or undefined after skipping the test (native not built, or wasm skipped on
 * purpose) — or failing it, when a required set is missing.
 */
export function kernelsOrSkip(t: TestContext, set: KernelSet): Kernels | undefined {
  if (set.kernels) return set.kernels;
  if (set.required) {
    assert.fail(
      `${set.kind} kernels unavailable: ${set.missing}; build them with \`npm run build:wasm\` ` +
        '(needs clang and lld), or set INRUN_SKIP_WASM_BUILD=1 to skip their tests',
    );
  }
  t.skip(`${set.kind} kernels unavailable: ${set.missing}`);
  return undefined;
}

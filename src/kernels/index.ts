/**
 * Picks the kernels inrun computes with: the OpenBLAS addon when it is built and loads, else the
 * WebAssembly SIMD kernels when build/wasm/inrun_kernels.wasm is built, else the portable
 * TypeScript ones (with a one-line notice on stderr, once per process, whenever it is not native).
 *
 * Choice, first match wins: `options.kind` 'native', 'portable' or 'wasm', env `INRUN_KERNELS`,
 * then 'auto'. 'auto' given as `options.kind` is no preference, so a config's default
 * `kernels: auto` leaves the choice to INRUN_KERNELS. Values: 'native' (fail if the addon cannot
 * load), 'wasm' (fail if the module is not built or does not load), 'portable', 'auto'. A set
 * INRUN_KERNELS is always checked. Threads: `options.threads`, else env `INRUN_THREADS` (the
 * addon's workers; OpenBLAS runs single-threaded in each; the portable and wasm kernels are
 * single-threaded).
 */
import { checkNumber, describe, InrunError } from '../util/errors.js';
import { loadNativeKernels, type NativeKernels } from './native.js';
import { createPortableKernels } from './portable.js';
import type { KernelKind, Kernels } from './types.js';
import { MAX_THREADS } from './validate.js';
import type { WasmKernels } from './wasm.js';
import { loadWasmKernels } from './wasm-node.js';

export { allocFloat, dtypeOf } from './alloc.js';
export type { NativeKernels } from './native.js';
export type { DType, FloatArray, KernelKind, Kernels } from './types.js';
export type { WasmKernels } from './wasm.js';

export type KernelChoice = KernelKind | 'auto';

export interface GetKernelsOptions {
  /** 'native', 'portable' or 'wasm'; 'auto' or none: env INRUN_KERNELS, else the fastest that loads. */
  kind?: KernelChoice;
  /** Threads for the native kernels (default: env INRUN_THREADS, else OpenBLAS's default thread count). */
  threads?: number;
}

const CHOICES: readonly KernelChoice[] = ['native', 'portable', 'wasm', 'auto'];

let portable: Kernels | undefined;
let native: NativeKernels | { error: string } | undefined;
let wasm: WasmKernels | { error: string } | undefined;
let noticeShown = false;
const appliedThreads = new Map<Kernels, number>();

function nativeOrError(): NativeKernels | { error: string } {
  native ??= loadNativeKernels();
  return native;
}

function wasmOrError(): WasmKernels | { error: string } {
  wasm ??= loadWasmKernels();
  return wasm;
}

function portableKernels(): Kernels {
  portable ??= createPortableKernels();
  return portable;
}

/** INRUN_KERNELS, checked; undefined when unset or empty. */
function environmentChoice(): KernelChoice | undefined {
  const env = process.env.INRUN_KERNELS;
  if (env === undefined || env.trim() === '') return undefined;
  const value = env.trim().toLowerCase();
  if (!CHOICES.includes(value as KernelChoice)) {
    throw new InrunError(
      `environment variable INRUN_KERNELS=${describe(env)} is not a kernels kind (accepted: ${CHOICES.join(', ')})`,
    );
  }
  return value as KernelChoice;
}

function resolveChoice(option: unknown): { choice: KernelChoice; source: string } {
  if (option !== undefined && !CHOICES.includes(option as KernelChoice)) {
    throw new InrunError(`unknown kernels kind ${describe(option)} (accepted: ${CHOICES.join(', ')})`);
  }
  // Checked even when an explicit choice wins: a mistyped variable should not go unnoticed.
  const env = environmentChoice();
  if (option === 'native' || option === 'portable' || option === 'wasm')
    return { choice: option, source: `kernels: ${option}` };
  if (env !== undefined) return { choice: env, source: `INRUN_KERNELS=${env}` };
  return { choice: 'auto', source: 'auto' };
}

function resolveThreads(option: number | undefined): number | undefined {
  if (option !== undefined)
    return checkNumber('threads', option, { min: 1, max: MAX_THREADS, integer: true });
  const env = process.env.INRUN_THREADS;
  if (env === undefined || env.trim() === '') return undefined;
  // Digits only: Number() would also take "0x10", "1e1" or "4.0".
  const n = /^\d+$/.test(env.trim()) ? Number(env.trim()) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) {
    throw new InrunError(
      `environment variable INRUN_THREADS=${describe(env)} must be an integer from 1 to ${MAX_THREADS}`,
    );
  }
  return n;
}

/** The kernels to compute with; instances are cached, so repeated calls are cheap. */
export function getKernels(options: GetKernelsOptions = {}): Kernels {
  const { choice, source } = resolveChoice(options.kind);
  const threads = resolveThreads(options.threads);
  let kernels: Kernels;
  if (choice === 'portable') {
    kernels = portableKernels();
  } else if (choice === 'wasm') {
    const loaded = wasmOrError();
    if ('error' in loaded) {
      throw new InrunError(
        `WebAssembly kernels were requested (${source}) but are unavailable: ${loaded.error}; ` +
          'install clang and lld and run `npm run build:wasm`, or choose the portable kernels',
      );
    }
    kernels = loaded;
  } else {
    const loaded = nativeOrError();
    if (!('error' in loaded)) {
      kernels = loaded;
    } else if (choice === 'native') {
      throw new InrunError(
        `native OpenBLAS kernels were requested (${source}) but are unavailable: ${loaded.error}; ` +
          'install libopenblas-dev and run `npm rebuild`, or choose the portable kernels',
      );
    } else {
      const fallback = wasmOrError();
      kernels = 'error' in fallback ? portableKernels() : fallback;
      if (!noticeShown) {
        noticeShown = true;
        const using =
          'error' in fallback
            ? `WebAssembly kernels unavailable too (${fallback.error}); using portable TypeScript kernels (much slower)`
            : 'using WebAssembly SIMD kernels (slower)';
        process.stderr.write(
          `inrun: native OpenBLAS kernels unavailable (${loaded.error}); ${using}. ` +
            'Install libopenblas-dev and run `npm rebuild` for the fast path.\n',
        );
      }
    }
  }
  if (threads !== undefined && appliedThreads.get(kernels) !== threads) {
    kernels.setThreads(threads);
    appliedThreads.set(kernels, threads);
  }
  return kernels;
}

/** Whether the native kernels load, and if not, why (never prints, never throws). */
export function nativeKernelsStatus(): { available: true } | { available: false; reason: string } {
  const loaded = nativeOrError();
  return 'error' in loaded ? { available: false, reason: loaded.error } : { available: true };
}

/** Whether the wasm kernels load, and if not, why (never prints, never throws). */
export function wasmKernelsStatus(): { available: true } | { available: false; reason: string } {
  const loaded = wasmOrError();
  return 'error' in loaded ? { available: false, reason: loaded.error } : { available: true };
}

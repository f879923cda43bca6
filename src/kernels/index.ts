/**
 * Picks the kernels inrun computes with: the OpenBLAS addon when it is built and loads, otherwise
 * the portable TypeScript ones (with a one-line notice on stderr, once per process).
 *
 * Choice, first match wins: `options.kind` 'native' or 'portable', env `INRUN_KERNELS`, then
 * 'auto'. 'auto' given as `options.kind` is no preference, so a config's default `kernels: auto`
 * leaves the choice to INRUN_KERNELS. Values: 'native' (fail if the addon cannot load),
 * 'portable', 'auto'. A set INRUN_KERNELS is always checked. Threads: `options.threads`, else env
 * `INRUN_THREADS` (OpenBLAS threads; the portable kernels are single-threaded).
 */
import { checkNumber, describe, InrunError } from '../util/errors.js';
import { loadNativeKernels, type NativeKernels } from './native.js';
import { createPortableKernels } from './portable.js';
import type { DType, FloatArray, KernelKind, Kernels } from './types.js';
import { MAX_THREADS } from './validate.js';

export type { NativeKernels } from './native.js';
export type { DType, FloatArray, KernelKind, Kernels } from './types.js';

export type KernelChoice = KernelKind | 'auto';

export interface GetKernelsOptions {
  /** 'native' or 'portable'; 'auto' or none: env INRUN_KERNELS, else native when the addon loads. */
  kind?: KernelChoice;
  /** Threads for the native kernels (default: env INRUN_THREADS, else OpenBLAS's own default). */
  threads?: number;
}

const CHOICES: readonly KernelChoice[] = ['native', 'portable', 'auto'];

let portable: Kernels | undefined;
let native: NativeKernels | { error: string } | undefined;
let noticeShown = false;
const appliedThreads = new Map<Kernels, number>();

function nativeOrError(): NativeKernels | { error: string } {
  native ??= loadNativeKernels();
  return native;
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
  if (option === 'native' || option === 'portable') return { choice: option, source: `kernels: ${option}` };
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
      if (!noticeShown) {
        noticeShown = true;
        process.stderr.write(
          `inrun: native OpenBLAS kernels unavailable (${loaded.error}); using portable TypeScript kernels ` +
            '(slower). Install libopenblas-dev and run `npm rebuild` for the fast path.\n',
        );
      }
      kernels = portableKernels();
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

/** A zero-filled array of `length` elements of the given type. */
export function allocFloat(dtype: DType, length: number): FloatArray {
  if (dtype === 'float32') return new Float32Array(length);
  if (dtype === 'float64') return new Float64Array(length);
  throw new InrunError(`unknown dtype ${describe(dtype)} (accepted: float32, float64)`);
}

/** The element type of a float array. */
export function dtypeOf(a: FloatArray): DType {
  return a instanceof Float32Array ? 'float32' : 'float64';
}

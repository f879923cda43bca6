/**
 * Loads the OpenBLAS addon (native/inrun_blas.c, built by `node-gyp rebuild` at install time into
 * build/Release/inrun_blas.node) and wraps it as `Kernels`. The addon validates every call itself,
 * with the same messages as src/kernels/validate.ts, and reads/writes the typed arrays in place.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KernelOps, Kernels } from './types.js';

/** The element-wise ops the addon exports (native/inrun_ops.c), under the interface's names. */
const OP_NAMES = [
  'addBias',
  'sumBias',
  'rowDots',
  'columnSums',
  'add',
  'activationForward',
  'activationBackward',
  'activationRForward',
  'activationRBackward',
  'softmaxCrossEntropyForward',
  'softmaxCrossEntropyBackward',
  'softmaxCrossEntropyRBackward',
  'causalSoftmaxForward',
  'causalSoftmaxBackward',
  'causalSoftmaxRBackward',
  'layerNormForward',
  'layerNormBackward',
  'layerNormRForward',
  'layerNormRBackward',
  'gather',
  'scatterAdd',
  'gatherRows',
  'scatterAddRows',
  'transpose',
  'maxPoolForward',
  'sgdUpdate',
  'adamUpdate',
  'adamPreconditioner',
  'adamLinearise',
  'scaleVector',
] as const satisfies readonly (keyof KernelOps)[];

/** What the compiled addon exports. */
interface Addon extends KernelOps {
  gemm: Kernels['gemm'];
  gemmBatched: Kernels['gemmBatched'];
  setThreads(threads: number): void;
  getThreads(): number;
  getConfig(): string;
}

/** The native kernels, plus two introspection helpers the portable ones do not have. */
export interface NativeKernels extends Kernels {
  readonly kind: 'native';
  /** Threads the native kernels currently split their work over. */
  getThreads(): number;
  /** OpenBLAS build description, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Haswell MAX_THREADS=64". */
  getConfig(): string;
}

/**
 * The folder holding inrun's package.json, found by walking up from this file — which runs from
 * src/kernels (via tsx) or dist/kernels (after tsc), so the depth is not fixed.
 */
export function packageRoot(start: string = dirname(fileURLToPath(import.meta.url))): string | undefined {
  let dir = start;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Path of the compiled addon, or undefined if the package root cannot be found. */
export function addonPath(): string | undefined {
  const root = packageRoot();
  return root === undefined ? undefined : join(root, 'build', 'Release', 'inrun_blas.node');
}

/** First line of an error's message, without the addon's absolute path that dlopen may include. */
function shortReason(err: unknown, path: string): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0].split(`${path}: `).join('').trim();
}

/** Loads the addon; on failure returns a short reason instead of throwing. */
export function loadNativeKernels(): NativeKernels | { error: string } {
  const path = addonPath();
  if (path === undefined) return { error: 'package.json of inrun not found above src/kernels' };
  if (!existsSync(path)) return { error: 'build/Release/inrun_blas.node is not built' };
  let addon: Addon;
  try {
    addon = createRequire(import.meta.url)(path) as Addon;
  } catch (err) {
    return { error: `loading build/Release/inrun_blas.node failed: ${shortReason(err, path)}` };
  }
  for (const name of ['gemm', 'gemmBatched', 'setThreads', 'getThreads', 'getConfig', ...OP_NAMES] as const) {
    if (typeof addon[name] !== 'function') {
      return { error: `build/Release/inrun_blas.node lacks ${name}() (stale build? run \`npm rebuild\`)` };
    }
  }
  // The addon's functions are used as they are (no wrapper), so a call costs one N-API transition.
  const ops = Object.fromEntries(OP_NAMES.map((name) => [name, addon[name]])) as unknown as KernelOps;
  return {
    kind: 'native',
    ...ops,
    gemm: addon.gemm,
    gemmBatched: addon.gemmBatched,
    setThreads: (threads: number) => addon.setThreads(threads),
    getThreads: () => addon.getThreads(),
    getConfig: () => addon.getConfig(),
  };
}

/**
 * Kernels benchmark: the three kernel sets side by side.
 *
 * 1. gemm throughput (GFLOP/s = 2·M·N·K / time) of the portable TypeScript, WebAssembly SIMD and
 *    native OpenBLAS kernels on square products and on the two big products of the MLP benchmark's
 *    first layer (784 → 512, batch 256): the forward X·Wᵀ and the weight gradient dYᵀ·X. Native
 *    runs at 1 thread here, since the other two are single-threaded.
 * 2. The training step of a digits-demo-like MLP (784-128-10, ReLU, float32, batch 128, SGD with
 *    momentum, second-order values against 500 validation examples; synthetic data) on each set.
 *
 * Every configuration is timed in interleaved rounds (bench/timing.ts) and reported by its median.
 * A set that is not built is left out with a note saying why (the bench measures; tests check).
 */
import { TensorDataset } from '../src/data/dataset.js';
import { getKernels } from '../src/kernels/index.js';
import { loadNativeKernels } from '../src/kernels/native.js';
import { createPortableKernels } from '../src/kernels/portable.js';
import type { KernelKind, Kernels } from '../src/kernels/types.js';
import { loadWasmKernels } from '../src/kernels/wasm-node.js';
import { mlp } from '../src/models/builders.js';
import { sgd } from '../src/optim/sgd.js';
import { Trainer } from '../src/train/trainer.js';
import { Rng } from '../src/util/rng.js';
import type { BenchOptions } from './mlp.js';
import { type BenchResult, fmt, median, summarize } from './table.js';
import { runInterleaved, type Schedule, type TimedConfig } from './timing.js';

interface GemmShape {
  id: string;
  label: string;
  dtype: 'float32' | 'float64';
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
}

const SHAPES: GemmShape[] = [
  { id: '256', label: '256³', dtype: 'float32', transA: false, transB: false, M: 256, N: 256, K: 256 },
  { id: '512', label: '512³', dtype: 'float32', transA: false, transB: false, M: 512, N: 512, K: 512 },
  {
    id: 'fwd',
    label: 'MLP forward X·Wᵀ 256×512×784',
    dtype: 'float32',
    transA: false,
    transB: true,
    M: 256,
    N: 512,
    K: 784,
  },
  {
    id: 'grad',
    label: 'MLP weight gradient dYᵀ·X 512×784×256',
    dtype: 'float32',
    transA: true,
    transB: false,
    M: 512,
    N: 784,
    K: 256,
  },
  {
    id: '256d',
    label: '256³ float64',
    dtype: 'float64',
    transA: false,
    transB: false,
    M: 256,
    N: 256,
    K: 256,
  },
];

const GEMM_FULL: Schedule = { rounds: 9, stepsPerRound: 2, warmup: 3 };
const GEMM_QUICK: Schedule = { rounds: 3, stepsPerRound: 1, warmup: 2 };
const STEP_FULL: Schedule = { rounds: 8, stepsPerRound: 3, warmup: 3 };
const STEP_QUICK: Schedule = { rounds: 2, stepsPerRound: 2, warmup: 2 };

/** The digits demo's MLP and training settings (src/demo/digits-data.ts). */
const INPUTS = 784;
const HIDDEN = 128;
const CLASSES = 10;
const BATCH = 128;
const TRAIN_EXAMPLES = 2000;
const VALIDATION = 500;

interface LoadedSet {
  kind: KernelKind;
  kernels: Kernels;
}

/** The kernel sets that load, and a note for each that does not. */
function kernelSets(): { sets: LoadedSet[]; missing: string[] } {
  const sets: LoadedSet[] = [{ kind: 'portable', kernels: createPortableKernels() }];
  const missing: string[] = [];
  const wasm = loadWasmKernels();
  if ('error' in wasm) missing.push(`wasm kernels left out: ${wasm.error} (npm run build:wasm)`);
  else sets.push({ kind: 'wasm', kernels: wasm });
  const native = loadNativeKernels();
  if ('error' in native) missing.push(`native kernels left out: ${native.error}`);
  // The library's own instance, so its thread count is the one restored afterwards.
  else sets.push({ kind: 'native', kernels: getKernels({ kind: 'native' }) });
  return { sets, missing };
}

function randomArray(dtype: 'float32' | 'float64', length: number, rng: Rng): Float32Array | Float64Array {
  const a = dtype === 'float32' ? new Float32Array(length) : new Float64Array(length);
  for (let i = 0; i < length; i++) a[i] = rng.uniform() * 2 - 1;
  return a;
}

function syntheticDigits(name: string, n: number, rng: Rng): TensorDataset {
  const features = new Float32Array(n * INPUTS);
  for (let e = 0; e < features.length; e++) features[e] = rng.normal();
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = rng.int(CLASSES);
  return new TensorDataset({ name, features, width: INPUTS, labels, labelKind: 'class' });
}

export async function runKernelsBenchmark(options: BenchOptions): Promise<BenchResult> {
  const { log } = options;
  const { sets, missing } = kernelSets();
  for (const note of missing) log(`  ${note}`);
  const native = sets.find((s) => s.kind === 'native')?.kernels as
    | (Kernels & { getThreads(): number })
    | undefined;
  const nativeThreads = native?.getThreads();
  native?.setThreads(1);
  try {
    return runBoth(options, sets, missing);
  } finally {
    if (native && nativeThreads !== undefined) native.setThreads(nativeThreads);
  }
}

function runBoth(options: BenchOptions, sets: LoadedSet[], missing: string[]): BenchResult {
  const { log } = options;
  const rng = new Rng(1);

  // ---------------------------------------------------------------- gemm throughput
  log('  gemm throughput:');
  const gemmConfigs: TimedConfig[] = [];
  for (const shape of SHAPES) {
    const { dtype, transA, transB, M, N, K } = shape;
    const A = randomArray(dtype, M * K, rng);
    const B = randomArray(dtype, K * N, rng);
    const C = randomArray(dtype, M * N, rng);
    for (const { kind, kernels } of sets) {
      gemmConfigs.push({
        id: `${shape.id}/${kind}`,
        label: `${shape.label} ${kind}`,
        step: () => kernels.gemm(transA, transB, M, N, K, 1, A, transA ? M : K, B, transB ? K : N, 0, C, N),
      });
    }
  }
  const gemmSamples = runInterleaved(gemmConfigs, options.quick ? GEMM_QUICK : GEMM_FULL, log);
  const gflops: Record<string, Record<string, number>> = {};
  for (const shape of SHAPES) {
    gflops[shape.id] = {};
    for (const { kind } of sets) {
      const ms = median(gemmSamples.get(`${shape.id}/${kind}`)!);
      gflops[shape.id][kind] = (2 * shape.M * shape.N * shape.K) / (ms * 1e6);
    }
  }
  const kinds = sets.map((s) => s.kind);
  const has = (kind: KernelKind) => kinds.includes(kind);
  const gemmHeaders = [
    'product (M×N×K)',
    ...kinds.map((k) => `${k} GFLOP/s`),
    ...(has('wasm') ? ['wasm / portable'] : []),
    ...(has('wasm') && has('native') ? ['native / wasm'] : []),
  ];
  const gemmCells = SHAPES.map((shape) => {
    const g = gflops[shape.id];
    return [
      `${shape.label} ${shape.transA ? 'T' : 'N'}${shape.transB ? 'T' : 'N'}`,
      ...kinds.map((k) => fmt(g[k], 2)),
      ...(has('wasm') ? [`${fmt(g.wasm / g.portable, 1)}×`] : []),
      ...(has('wasm') && has('native') ? [`${fmt(g.native / g.wasm, 1)}×`] : []),
    ];
  });

  // ---------------------------------------------------------------- training step
  log('  digits-demo-like MLP training step:');
  const train = syntheticDigits('training data', TRAIN_EXAMPLES, rng);
  const validation = syntheticDigits('validation data', VALIDATION, rng);
  const stepConfigs: TimedConfig[] = sets.map(({ kind, kernels }) => {
    const trainer = new Trainer({
      model: mlp({ inputs: INPUTS, hidden: [HIDDEN], outputs: CLASSES, dtype: 'float32', seed: 1, kernels }),
      optimizer: sgd({ lr: 0.005, momentum: 0.9 }),
      data: train,
      batchSize: BATCH,
      steps: 1_000_000,
      seed: 2,
      valuation: { validation, order: 2 },
    });
    return { id: kind, label: `${kind} kernels`, step: () => trainer.runStep() };
  });
  const stepSamples = runInterleaved(stepConfigs, options.quick ? STEP_QUICK : STEP_FULL, log);
  const rows = summarize(
    stepConfigs.map((c) => ({ id: c.id, label: c.label, samplesMs: stepSamples.get(c.id)! })),
    'portable',
  );
  const byKind = new Map(rows.map((r) => [r.id, r]));
  const portableStep = byKind.get('portable')!;
  for (const row of rows) {
    if (row.id !== 'portable')
      row.note = `${fmt(portableStep.medianMs / row.medianMs, 1)}× faster than portable`;
  }

  const notes = [
    `training step: MLP ${INPUTS}-${HIDDEN}-${CLASSES} (ReLU, float32), batch ${BATCH}, SGD momentum 0.9, ` +
      `second-order values against ${VALIDATION} validation examples (synthetic data)`,
    'gemm: C = A·B (beta 0) on random float32 operands (float64 where named); medians of interleaved ' +
      'rounds; native OpenBLAS at 1 thread (portable and wasm are single-threaded)',
    ...missing,
  ];
  const wasmStep = byKind.get('wasm');
  if (wasmStep)
    notes.push(
      `wasm training step ${fmt(wasmStep.medianMs, 1)} ms vs portable ${fmt(portableStep.medianMs, 1)} ms: ` +
        `${fmt(portableStep.medianMs / wasmStep.medianMs, 1)}× faster`,
    );

  return {
    name: 'kernels',
    title: `Kernel sets: gemm GFLOP/s and MLP ${INPUTS}-${HIDDEN}-${CLASSES} training step (batch ${BATCH})`,
    baseline: 'portable',
    settings: {
      kernels: kinds,
      nativeThreads: has('native') ? 1 : null,
      gemmShapes: SHAPES,
      gemmSchedule: options.quick ? GEMM_QUICK : GEMM_FULL,
      stepSchedule: options.quick ? STEP_QUICK : STEP_FULL,
      model: { architecture: [INPUTS, HIDDEN, CLASSES], activation: 'relu', dtype: 'float32' },
      batchSize: BATCH,
      validationSize: VALIDATION,
      optimizer: { kind: 'sgd', lr: 0.005, momentum: 0.9 },
      order: 2,
      quick: options.quick,
    },
    rows,
    extra: {
      gflops,
      gemmMedianMs: Object.fromEntries(gemmConfigs.map((c) => [c.id, median(gemmSamples.get(c.id)!)])),
      stepSpeedupOverPortable: Object.fromEntries(
        rows.map((r) => [r.id, portableStep.medianMs / r.medianMs]),
      ),
    },
    tables: [{ title: 'gemm throughput', headers: gemmHeaders, cells: gemmCells }],
    notes,
  };
}

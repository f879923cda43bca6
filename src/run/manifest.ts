// manifest.json of a new run, and the kernels line it records: written by trainRun into a run
// directory and by the web page into its run archive. No Node imports: the caller says which
// inrun and which runtime it is.
import type { RunManifest } from '../io/run-dir.js';
import type { NativeKernels } from '../kernels/index.js';
import type { Kernels } from '../kernels/types.js';
import type { Sequential } from '../models/sequential.js';
import type { TrainConfig } from './config-schema.js';
import type { RunInputs } from './table-data.js';

/** The kernels as manifest.json and the start event name them, e.g. "native (OpenBLAS, 2 threads)". */
export function describeKernels(kernels: Kernels): string {
  if (kernels.kind === 'native')
    return `native (OpenBLAS, ${(kernels as NativeKernels).getThreads()} threads)`;
  if (kernels.kind === 'wasm') return 'wasm (WebAssembly SIMD)';
  return 'portable (TypeScript)';
}

export interface NewManifestOptions {
  config: TrainConfig;
  inputs: Pick<RunInputs, 'manifestData'>;
  model: Sequential;
  /** describeKernels of the model's kernels. */
  kernels: string;
  totalSteps: number;
  stageStarts: number[];
  /** The files the run writes first (listed before they are written, so --force can replace them). */
  files: string[];
  /** sha256 of the files a resume relies on, by name. */
  checksums: Record<string, string>;
  inrunVersion: string;
  /** The runtime, recorded as `nodeVersion`: Node's version, or the browser's name. */
  runtime: string;
  /** ISO 8601. */
  startedAt: string;
}

/** The manifest of a run that starts now (status running, no step done). */
export function newRunManifest(o: NewManifestOptions): RunManifest {
  return {
    format: 'inrun-run',
    formatVersion: 2,
    status: 'running',
    inrunVersion: o.inrunVersion,
    nodeVersion: o.runtime,
    kernels: o.kernels,
    seed: o.config.seed,
    config: o.config as unknown as Record<string, unknown>,
    data: o.inputs.manifestData,
    model: {
      parameters: o.model.parameterCount,
      tensors: o.model.slots.map((s) => ({ name: s.name, shape: s.shape })),
    },
    totalSteps: o.totalSteps,
    stageStarts: o.stageStarts,
    stepsDone: 0,
    files: o.files,
    checksums: o.checksums,
    times: { startedAt: o.startedAt, finishedAt: null, resumedAt: [], trainingSeconds: 0 },
  };
}

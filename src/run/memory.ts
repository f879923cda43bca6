// How much memory a run needs, estimated from its config and the shapes of its data before the
// model is built, and how much this process can still get. `checkRunMemory` refuses a run that
// cannot fit with one line, instead of letting the kernel kill it halfway without a word (or V8
// throw a RangeError when one typed array or file image is larger than Node allows).
//
// What a step holds (float32 models; every count follows the allocations in src/models, src/layers,
// src/train/trainer.ts, src/shapley/valuer.ts, src/optim and src/io/checkpoint.ts):
//   parameters P, the batch gradient P, optimizer state (sgd momentum P; adam m and v 2P) and its
//   per-step plan (c, adam's preconditioner; adam's linearisation gap 2 float64 vectors + 1);
//   the training pass (batch × activations, forward and backward, kept while the step is valued)
//   and the validation pass over the WHOLE validation set (forward, backward and, for order 2, the
//   R-operator's forward and backward of the Hessian-vector product); with a test set, the forward
//   pass of one test chunk (at most max(validation set, batch) examples) on the steps it is evaluated;
//   the valuer's vectors u1 (and x, u2 for order 2), its batch × validation Gram matrix, and for
//   per-validation values without the Gram route one parameter vector per validation example;
//   a checkpoint copies parameters and optimizer state, then encodes them (and the ledger) into one
//   file image: two more copies.
//
// Measured (Node 20, OpenBLAS kernels; tabular: 784 features, 10 classes, 2,000 training and 200
// validation examples, batch 64; gpt: random tokens; 3 steps, the initial weights encoded, then a
// checkpoint): growth from "data loaded" of process.memoryUsage().arrayBuffers (largest value
// between phases) and of peak rss (VmHWM), against the estimate without the data. GB = 10⁹ B.
//
//   config                                          estimate  arrayBuffers  rss peak
//   logreg, sgd, order 1                               0.076      0.009       0.012
//   mlp [128], sgd, order 1                            0.080      0.009       0.016
//   mlp [128], sgd, order 2                            0.083      0.009       0.013
//   mlp [128], adamw, order 2, perValidation           0.236      0.091       0.130
//   mlp [2048,2048], sgd, order 1                      0.264      0.140       0.188
//   mlp [2048,2048], sgd, order 2                      0.327      0.187       0.210
//   mlp [2048,2048], sgd m 0.9, order 2, perVal.       0.433      0.258       0.314
//   mlp [2048,2048], adamw, order 2                    0.630      0.327       0.420
//   mlp [2048,2048], sgd, order 2, 2,000 validation    0.571      0.349       0.421
//   mlp [20000], sgd, order 2                          0.732      0.563       0.604
//   gpt 2×64, ctx 64, vocab 500, adamw, order 2 (*)    0.354      0.218       0.245
//   gpt 4×128 rms, ctx 128, vocab 1000, adamw, o2,
//     perValidation (batch 8, 200/20 examples)         0.910      0.289       0.629
//
// (*) batch 16, 400 training and 50 validation sequences. Parameter counts matched exactly. The
// fixed allowances (64 MB runtime, up to 64 MB garbage) dominate the small runs; from a few
// hundred MB on, peak rss was 55–85% of the estimate (sampled arrayBuffers miss garbage that V8
// collects mid-step, so they read lower).
import { constants as bufferConstants } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { freemem, totalmem } from 'node:os';
import { Conv2d, type ImageShape } from '../layers/conv2d.js';
import { Residual } from '../layers/residual.js';
import type { Layer } from '../layers/types.js';
import type { Sequential } from '../models/sequential.js';
import { MOMENTUM_CREDIT_TOLERANCE } from '../shapley/momentum-credit.js';
import { fail } from '../util/errors.js';
import { MODEL_BUILDERS, runLength } from './build.js';
import type { TrainConfig } from './config.js';

/** The shapes a run's memory depends on, known once its data is loaded. */
export interface RunShape {
  /** Feature columns (gpt: 1, a token id per position). */
  inputs: number;
  /** Classes for classification, 1 for binary and regression; gpt: the vocabulary size. */
  outputs: number;
  trainExamples: number;
  validationExamples: number;
  /** Columns of per-validation values: text runs' validation documents (default: validationExamples). */
  validationColumns?: number;
  /** Examples of the held-out test set (data.test or data.testSplit), if any. */
  testExamples?: number;
  /** Image folders: the images' shape (a cnn's input unless model.image gives it). */
  image?: ImageShape | null;
}

export interface MemoryPart {
  name: string;
  bytes: number;
  /** Already in memory when the estimate is checked (the data, loaded to learn the shapes). */
  loaded?: boolean;
}

/** One typed array (or file image) that V8 must allocate in a single piece. */
export interface SingleBuffer {
  name: string;
  /** Elements (a file image: bytes). */
  length: number;
  bytesPerElement: number;
  /** The part of the estimate it belongs to (for what to shrink). */
  part: string;
  /** A file the run writes and inrun reads back whole (resume, `--init-weights`, `loadRun`). */
  file?: string;
}

export interface MemoryEstimate {
  /** All parts together, the loaded data included. */
  bytes: number;
  /** Largest first. */
  parts: MemoryPart[];
  /** The model's parameter count (each a float32). */
  parameters: number;
  /** The largest single allocations, checked against Node's per-buffer limits. */
  buffers: SingleBuffer[];
  /** What to shrink, for the message: by part name. */
  advice: Record<string, string[]>;
}

export interface AvailableMemory {
  bytes: number;
  /** Which limit binds, in words: "free system memory", "cgroup memory limit 8.0 GB, 2.9 GB in use". */
  source: string;
}

/** Node's limits on one allocation. */
export interface BufferLimits {
  /** Most elements of one typed array. */
  maxElements: number;
  /** Most bytes of one typed array. */
  maxBytes: number;
  /** Most bytes `fs.readFile` returns: a larger file cannot be read back. */
  maxReadBytes: number;
}

const F32 = 4;
const F64 = 8;
/**
 * Memory per ledger entry and per trace row, rounded up: an entry measured 257 B with 3 stages
 * (its columns, id map and lists, with the columns' doubling slack at 1.3×; up to 2× just after
 * they grow), a row 330 B.
 */
const LEDGER_ENTRY_BYTES = 320;
const TRACE_ROW_BYTES = 400;
/** Linear and embedding pairwise routes compute their Gram blocks in chunks of this many elements. */
const PAIRWISE_CHUNK_ELEMENTS = 1 << 22;
/** Heap growth and native library buffers beyond the typed arrays (measured, see the table above). */
const RUNTIME_BYTES = 64e6;
/** Garbage typed arrays V8 lets accumulate before it collects them (its external-memory soft limit). */
const EXTERNAL_GC_BYTES = 64 * 2 ** 20;
/** Trace fields stored as float64 columns in a checkpoint (TRACE_FIELDS in src/io/values-writers.ts, rounded up). */
const TRACE_COLUMNS = 18;

/** Floats per example that one model keeps for a pass, from its layer structure. */
interface ModelArithmetic {
  parameters: number;
  /** The batch's own copy of its inputs and targets. */
  input: number;
  /** Every layer's output (and what its forward keeps: probabilities, normalised inputs). */
  forward: number;
  /** Every layer's input gradient, kept on the tapes as the previous layer's output gradient. */
  backward: number;
  /** The R-operator's forward and backward (Hessian-vector product, order 2). */
  hvp: number;
  /** The largest single activation (one typed array). */
  largest: number;
  /** The vector ghost route's scratch: one layer's output per example. */
  ghost: number;
  /** Tokens per example (for the pairwise route's Gram blocks). */
  tokens: number;
  /** Weight tying forces the vector route. */
  tied: boolean;
  /** What makes the model smaller. */
  smaller: string;
}

function mlpArithmetic(inputs: number, hidden: number[], outputs: number, smaller: string): ModelArithmetic {
  const widths = [inputs, ...hidden, outputs];
  let parameters = 0;
  for (let k = 0; k + 1 < widths.length; k++) parameters += widths[k] * widths[k + 1] + widths[k + 1];
  const S = hidden.reduce((a, b) => a + b, 0);
  return {
    parameters,
    // Features, plus a label (int32 or float32).
    input: inputs + 1,
    // Each hidden layer: the Linear's output and the activation's; then logits, the loss's
    // probabilities and the per-example loss (float64).
    forward: 2 * S + 2 * outputs + 2,
    // The loss gradient, then every layer's input gradient but the first Linear's.
    backward: outputs + 2 * S,
    // R{output} of every layer and R{loss gradient}, then R{input gradient} of every layer but the first.
    hvp: 4 * S + 2 * outputs,
    largest: Math.max(...widths),
    ghost: Math.max(...widths.slice(1)),
    tokens: 1,
    tied: false,
    smaller,
  };
}

function gptArithmetic(
  model: Extract<TrainConfig['model'], { kind: 'gpt' }>,
  vocab: number,
): ModelArithmetic {
  const { width: d, layers: L, heads: H, context: T } = model;
  const tied = model.tieWeights ?? true;
  const norm = (model.norm ?? 'layernorm') === 'layernorm' ? 2 * d : d;
  // wte, wpe; per block ln_1, c_attn, c_proj, ln_2, c_fc (4d), c_proj; ln_f; lm_head (no bias).
  const block = 2 * norm + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d);
  const parameters = vocab * d + T * d + L * block + norm + (tied ? 0 : vocab * d);
  // Per token: embeddings 2d; attention block 8d (norm output and normalised input, c_attn 3d,
  // attention, c_proj, residual sum) and H·T probabilities; MLP block 12d; ln_f 2d; logits and
  // softmax probabilities 2V; float64 norm statistics and token weights.
  const forward = 4 * d + 20 * d * L + L * H * T + 2 * vocab + 2 * (2 * L + 1) + 2;
  // Loss gradient V; lm_head, ln_f, wpe input gradients; per block 11d (MLP) + 7d (attention).
  const backward = vocab + 3 * d + 18 * d * L;
  return {
    parameters,
    input: 2 * T,
    forward: T * forward,
    backward: T * backward,
    // R-forward mirrors the forward (with R{P} for attention), R-backward the backward.
    hvp: T * (forward + backward),
    largest: T * Math.max(vocab, 4 * d, H * T),
    ghost: T * Math.max(vocab, 4 * d),
    tokens: T,
    tied,
    smaller: 'a smaller model.width or model.layers',
  };
}

function arithmetic(config: TrainConfig, shape: RunShape): ModelArithmetic {
  const model = config.model;
  switch (model.kind) {
    case 'logreg':
      return mlpArithmetic(shape.inputs, [], shape.outputs, 'fewer feature columns');
    case 'mlp':
      return mlpArithmetic(shape.inputs, model.hidden ?? [64], shape.outputs, 'a smaller model.hidden');
    case 'gpt':
      return gptArithmetic(model, shape.outputs);
    case 'cnn':
      return layerArithmetic(
        MODEL_BUILDERS.cnn(model, {
          inputs: shape.inputs,
          image: shape.image ?? null,
          outputs: shape.outputs,
          loss: 'softmax-cross-entropy',
          seed: 0,
          kernels: 'portable',
        }),
        shape.inputs,
        'a smaller model.width or model.architecture',
      );
  }
}

/**
 * A model's floats per example from its layers (cnn): the model is built (its parameters are
 * small next to a run's activations) and each layer's output counted; a convolution also keeps its
 * unfolded patches (positions × in·kh·kw) on the tape.
 */
function layerArithmetic(model: Sequential, inputs: number, smaller: string): ModelArithmetic {
  let outputs = 0;
  let largest = inputs;
  const walk = (layers: Layer[], shape: { tokens: number; width: number }) => {
    for (const layer of layers) {
      // A residual block's branches each start from its input: the main chain and the shortcut.
      const branches = layer instanceof Residual ? [layer.main, layer.shortcut] : [layer.children ?? []];
      for (const branch of branches) walk(branch, shape);
      const next = layer.outputShape(shape);
      let size = next.tokens * next.width;
      if (layer instanceof Conv2d)
        size += (next.width / layer.outChannels) * layer.inChannels * layer.kernel[0] * layer.kernel[1];
      outputs += size;
      largest = Math.max(largest, size);
      shape = next;
    }
  };
  walk(model.layers, model.inputShape);
  return {
    parameters: model.parameterCount,
    input: inputs + 1,
    forward: 2 * outputs,
    backward: outputs,
    hvp: 3 * outputs,
    largest,
    ghost: largest,
    tokens: 1,
    tied: false,
    smaller,
  };
}

function checkShape(shape: RunShape): void {
  for (const key of ['inputs', 'outputs', 'trainExamples', 'validationExamples'] as const) {
    const value = shape[key];
    if (!Number.isInteger(value) || value < 1)
      fail(`estimateRunMemory: shape.${key} must be a positive integer, got ${value}`);
  }
  const test = shape.testExamples;
  if (test !== undefined && (!Number.isInteger(test) || test < 0))
    fail(`estimateRunMemory: shape.testExamples must be an integer ≥ 0, got ${test}`);
}

/**
 * The memory a run of `config` on data of `shape` needs at its peak, by part: what the run
 * allocates as it trains, values and checkpoints, plus its data (marked `loaded`). Nothing is
 * allocated. For gpt, `outputs` is the vocabulary size and `inputs` 1.
 */
export function estimateRunMemory(config: TrainConfig, shape: RunShape): MemoryEstimate {
  checkShape(shape);
  const a = arithmetic(config, shape);
  const P = a.parameters;
  const N = shape.trainExamples;
  const m = shape.validationExamples;
  const B = Math.min(config.batchSize, N);
  // The test set goes through the model (forward only) in chunks no larger than the validation
  // set or a batch, while the step's passes are still held (src/run/test-set.ts).
  const testSize = shape.testExamples ?? 0;
  const testChunk = Math.min(testSize, Math.max(m, B));
  const T = a.tokens;
  const order2 = config.order === 2;
  const o = config.optimizer;
  const adam = o.kind !== 'sgd';
  const momentum = !adam && (o.momentum ?? 0) > 0;
  const decay = (o.weightDecay ?? 0) + (o.decoupledWeightDecay ?? 0) > 0;
  const betas = o.betas ?? [0.9, 0.999];
  const { totalSteps } = runLength(config, N);
  const stages = config.stages ?? 1;

  // Optimizer: tensors kept between steps, and what plan/apply allocate each step.
  const stateTensors = adam ? 2 : momentum ? 1 : 0;
  let stepVectors = 0;
  if (adam) stepVectors = 1 + (betas[0] > 0 || decay ? 1 : 0);
  else if (momentum || decay) stepVectors = 1;
  const gapBytes = adam && config.gapSamples > 0 ? P * (2 * F64 + F32) : 0;

  // The pairwise (Gram) route serves a layer only when K is a scalar (SGD) and nothing is tied.
  const canPair = !adam && !a.tied;
  const gram = B * m * F64;
  const pairScratch = canPair
    ? 2 * F32 * Math.min(B * T * m * T, Math.max(PAIRWISE_CHUNK_ELEMENTS, T * m * T))
    : 0;
  // Per-validation values: one column per validation example, or per validation document (text).
  const columns = shape.validationColumns ?? m;
  const columnSecondOrder =
    config.perValidation &&
    (config.perValidationOrder ?? (config.model.kind === 'gpt' ? config.order : 1)) === 2;
  const perValidationVectors = config.perValidation
    ? (canPair ? 0 : columns * P * F32) + (columnSecondOrder ? columns * P * F32 : 0) + 2 * B * columns * F64
    : 0;

  // Per-example signals (src/shapley/valuer.ts stepSignals): one vector per class of the batch for
  // the class-conditional value and a scratch gradient for layers without ghost self products.
  const classifies = config.task !== 'regression' && config.model.kind !== 'gpt';
  const signalVectors = config.signals
    ? (1 + (classifies ? Math.min(shape.outputs === 1 ? 2 : shape.outputs, B) : 0)) * P * F32
    : 0;
  // A sampled validation set keeps each vector per half.
  const sampleVectors = config.validationBatch !== undefined ? (order2 ? 3 : 1) * P * F32 : 0;
  // Momentum credit holds 2H steps' batches, weights and carried vectors, R and r, and one replayed
  // training pass (src/shapley/momentum-credit.ts).
  const rho = adam ? betas[0] : (o.momentum ?? 0);
  const horizon =
    config.momentumCredit && rho > 0 ? Math.ceil(Math.log(MOMENTUM_CREDIT_TOLERANCE) / Math.log(rho)) : 0;
  const creditWindow = config.momentumCredit
    ? Math.min(2 * horizon, totalSteps) * (F32 * B * a.input + 2 * P * F32) +
      P * (F64 + 2 * F32) +
      F32 * B * (a.forward + a.backward)
    : 0;
  // Ledger columns: values, stages and the signals (8 float64 each).
  const ledgerColumns = N * (3 + stages) * F64 + N * F64 + N * 8 * F64;
  // Per column: first order, normalised, second order (when kept) and one per stage (several stages).
  const perValidationLedger = config.perValidation
    ? N * columns * F64 * (2 + (columnSecondOrder ? 1 : 0) + (stages > 1 ? stages : 0))
    : 0;
  // A run streams its trace to the trace files: the valuer and the checkpoint hold one row.
  const traceColumns = TRACE_COLUMNS * F64;
  const checkpointFile = (1 + stateTensors) * P * F32 + ledgerColumns + perValidationLedger + traceColumns;

  const activations =
    F32 *
    (B * (a.input + a.forward + a.backward + a.ghost) +
      m * (a.input + a.forward + a.backward + (order2 ? a.hvp : 0)) +
      testChunk * (a.input + a.forward));
  // Everything a step allocates is garbage after it, and so are the chunks in which the data is
  // checked against the model; V8 frees typed arrays only once about 64 MB of them have piled
  // up since its last collection, so up to that much more is held.
  const perStep = activations + stepVectors * P * F32 + gapBytes + gram + pairScratch + perValidationVectors;
  const garbage = Math.min(EXTERNAL_GC_BYTES, (N + m + testSize) * a.input * F32 + totalSteps * perStep);
  const dataBytes =
    config.model.kind === 'gpt'
      ? (N + m + testSize) * (2 * T * 4 + 160)
      : (N + m + testSize) * (shape.inputs * F64 + F64 + 64);

  const parts: MemoryPart[] = [
    { name: 'parameters', bytes: P * F32 },
    { name: 'gradients', bytes: P * F32 },
    { name: 'optimizer state', bytes: (stateTensors + stepVectors) * P * F32 + gapBytes },
    { name: 'activations', bytes: activations },
    {
      name: 'valuer buffers',
      bytes:
        (order2 ? 3 : 1) * P * F32 +
        gram +
        pairScratch +
        perValidationVectors +
        signalVectors +
        sampleVectors,
    },
    { name: 'momentum credit window', bytes: creditWindow },
    { name: 'per-validation values', bytes: perValidationLedger },
    {
      // trainer.checkpoint() copies parameters, optimizer state and the ledger; saveCheckpoint
      // gathers them into tensors and encodes one file image. The initial and final weights
      // files are one encoded copy of the parameters, less than this.
      name: 'checkpoint copies',
      bytes: (1 + stateTensors) * P * F32 + 2 * perValidationLedger + N * 4 + checkpointFile,
    },
    {
      name: 'values and trace',
      bytes: N * (LEDGER_ENTRY_BYTES + stages * F64) + TRACE_ROW_BYTES + (config.recordBatchIds ? B * 16 : 0),
    },
    { name: 'garbage not yet collected', bytes: garbage },
    // The JS heap's growth (compiled code, values) and the BLAS library's thread buffers: the
    // measured rss grew by up to this much more than the typed arrays did.
    { name: 'runtime', bytes: RUNTIME_BYTES },
    { name: 'data', bytes: dataBytes, loaded: true },
  ].filter((part) => part.bytes > 0);
  parts.sort((x, y) => y.bytes - x.bytes);

  const buffers: SingleBuffer[] = [
    { name: 'the parameters', length: P, bytesPerElement: F32, part: 'parameters' },
    {
      name: `one activation of the validation pass (${m} examples)`,
      length: m * a.largest,
      bytesPerElement: F32,
      part: 'activations',
    },
    {
      name: `one activation of the training pass (${B} examples)`,
      length: B * a.largest,
      bytesPerElement: F32,
      part: 'activations',
    },
    { name: 'the batch × validation Gram matrix', length: B * m, bytesPerElement: F64, part: 'activations' },
  ];
  if (config.perValidation)
    buffers.push({
      name: 'the per-validation matrix',
      length: N * columns,
      bytesPerElement: F64,
      part: 'per-validation values',
    });
  buffers.push(
    {
      name: 'the initial and final weights',
      length: P * F32,
      bytesPerElement: 1,
      part: 'parameters',
      file: 'weights.*.safetensors',
    },
    {
      name: 'a checkpoint',
      length: checkpointFile,
      bytesPerElement: 1,
      part: 'checkpoint copies',
      file: 'checkpoint/tensors.safetensors',
    },
  );
  if (config.perValidation)
    buffers.push({
      name: 'the per-validation values',
      length: perValidationLedger,
      bytesPerElement: 1,
      part: 'per-validation values',
      file: 'per_validation.safetensors',
    });

  const model = a.smaller;
  const batch = 'a smaller batchSize';
  const validationSet = `a smaller validation set (all ${m} examples pass through the model every step)`;
  const firstOrder = order2 ? ['order 1'] : [];
  const noPerValidation = config.perValidation ? ['perValidation: false'] : [];
  const advice: Record<string, string[]> = {
    parameters: [model],
    gradients: [model],
    'optimizer state': adam ? [model, 'optimizer sgd (adam keeps more state)'] : [model],
    activations: [model, batch, validationSet, ...firstOrder],
    'valuer buffers': [model, ...noPerValidation, ...firstOrder],
    'momentum credit window': ['momentumCredit: false', batch],
    'per-validation values': ['perValidation: false', validationSet],
    'checkpoint copies': [model, ...noPerValidation],
    'values and trace': ['fewer training examples or steps'],
    'garbage not yet collected': [],
    runtime: [],
    data: ['a smaller data set'],
  };
  const bytes = parts.reduce((sum, part) => sum + part.bytes, 0);
  return { bytes, parts, parameters: P, buffers, advice };
}

// ---------------------------------------------------------------------------------------------
// What is available

/** Reads a text file, or null when it cannot be read (absent, not permitted). */
export type ReadText = (path: string) => string | null;

const readText: ReadText = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
};

/** A byte count from a cgroup file: null for absent or "max" (no limit) or absurdly large (v1's "no limit"). */
function cgroupNumber(text: string | null): number | null {
  if (text === null || text.trim() === '') return null;
  const value = Number(text.trim());
  if (!Number.isFinite(value) || value < 0 || value >= 2 ** 60) return null;
  return value;
}

function statField(text: string | null, field: string): number {
  if (text === null) return 0;
  const match = new RegExp(`^${field} (\\d+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

/** Mount point and root of a cgroup hierarchy, from /proc/self/mountinfo. */
function cgroupMount(mountinfo: string | null, version: 1 | 2): { point: string; root: string } | null {
  if (mountinfo === null) return null;
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!right) continue;
    const fields = left.split(' ');
    const [fsType, , superOptions = ''] = right.split(' ');
    const matches =
      version === 2
        ? fsType === 'cgroup2'
        : fsType === 'cgroup' && superOptions.split(',').includes('memory');
    if (matches) return { root: fields[3], point: fields[4] };
  }
  return null;
}

/** The folders from the process's own cgroup up to the hierarchy's root: every level's limit applies. */
function cgroupLevels(mount: { point: string; root: string }, path: string): string[] {
  let relative = path;
  if (mount.root !== '/' && relative.startsWith(mount.root)) relative = relative.slice(mount.root.length);
  const parts = relative.split('/').filter((p) => p !== '');
  const levels: string[] = [];
  for (let k = parts.length; k >= 0; k--) levels.push([mount.point, ...parts.slice(0, k)].join('/'));
  return levels;
}

/**
 * The tightest cgroup memory limit on this process, as what is left under it: limit − usage +
 * inactive file cache (which the kernel reclaims before it kills), over every level from the
 * process's cgroup to the root. cgroup v2 (memory.max) and v1 (memory.limit_in_bytes). Null when
 * no limit is set. `read` is injectable for tests.
 */
export function cgroupMemory(read: ReadText = readText): AvailableMemory | null {
  const own = read('/proc/self/cgroup');
  if (own === null) return null;
  const mountinfo = read('/proc/self/mountinfo');
  let best: AvailableMemory | null = null;
  const consider = (limit: number, usage: number, reclaimable: number) => {
    const left = Math.max(0, limit - Math.max(0, usage - reclaimable));
    if (best === null || left < best.bytes)
      best = {
        bytes: left,
        source: `cgroup memory limit ${formatBytes(limit)}, ${formatBytes(Math.max(0, usage - reclaimable))} in use`,
      };
  };
  for (const line of own.split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line.trim());
    if (!match) continue;
    const [, controllers, path] = match;
    if (controllers === '') {
      const mount = cgroupMount(mountinfo, 2) ?? { point: '/sys/fs/cgroup', root: '/' };
      for (const dir of cgroupLevels(mount, path)) {
        const limit = cgroupNumber(read(`${dir}/memory.max`));
        if (limit === null) continue;
        const usage = cgroupNumber(read(`${dir}/memory.current`)) ?? 0;
        consider(limit, usage, statField(read(`${dir}/memory.stat`), 'inactive_file'));
      }
    } else if (controllers.split(',').includes('memory')) {
      const mount = cgroupMount(mountinfo, 1) ?? { point: '/sys/fs/cgroup/memory', root: '/' };
      for (const dir of cgroupLevels(mount, path)) {
        const limit = cgroupNumber(read(`${dir}/memory.limit_in_bytes`));
        if (limit === null) continue;
        const usage = cgroupNumber(read(`${dir}/memory.usage_in_bytes`)) ?? 0;
        const stat = read(`${dir}/memory.stat`);
        consider(limit, usage, statField(stat, 'total_inactive_file') || statField(stat, 'inactive_file'));
      }
    }
  }
  return best;
}

/**
 * The memory this process can still allocate: the smaller of the system's and its cgroup's.
 * On Linux the system's is MemAvailable (free memory plus the page cache the kernel can reclaim;
 * what os.freemem() returns there); elsewhere free-memory counts leave out the cache, so the
 * physical memory less this process's is used instead. Swap is not counted: a run that only fits
 * in swap would crawl.
 */
export function availableMemory(read: ReadText = readText): AvailableMemory {
  const system: AvailableMemory =
    process.platform === 'linux'
      ? { bytes: freemem(), source: `free system memory, of ${formatBytes(totalmem())}` }
      : {
          bytes: Math.max(0, totalmem() - process.memoryUsage.rss()),
          source: `physical memory ${formatBytes(totalmem())}`,
        };
  const cgroup = process.platform === 'linux' ? cgroupMemory(read) : null;
  return cgroup && cgroup.bytes < system.bytes ? cgroup : system;
}

/**
 * Node's limits on one allocation. buffer.constants.MAX_LENGTH is V8's typed-array limit: up to
 * Node 20 a count of elements (2³², whatever the element size), from Node 22 on a count of bytes
 * (2⁵³ − 1). fs.readFile reads at most 2 GiB − 1 bytes in either.
 */
export function bufferLimits(): BufferLimits {
  const max = bufferConstants.MAX_LENGTH;
  return max <= 2 ** 32
    ? { maxElements: max, maxBytes: Number.MAX_SAFE_INTEGER, maxReadBytes: 2 ** 31 - 1 }
    : { maxElements: max, maxBytes: max, maxReadBytes: 2 ** 31 - 1 };
}

// ---------------------------------------------------------------------------------------------
// The check

/** "9.6 GB", "350 MB", "12 kB" (decimal units, as disks and `free -h --si`). */
export function formatBytes(bytes: number): string {
  if (bytes >= 1e12) return `${(bytes / 1e12).toFixed(1)} TB`;
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${Math.round(bytes / 1e6)} MB`;
  return `${Math.round(bytes / 1e3)} kB`;
}

/** A power-of-two limit (give or take one byte) in binary units: "2 GiB"; others as formatBytes. */
function formatLimit(bytes: number): string {
  for (const [unit, size] of [
    ['TiB', 2 ** 40],
    ['GiB', 2 ** 30],
  ] as const) {
    const k = Math.round(bytes / size);
    if (k >= 1 && Math.abs(bytes - k * size) <= 1 && Number.isInteger(Math.log2(k))) return `${k} ${unit}`;
  }
  return formatBytes(bytes);
}

function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export interface CheckMemoryOptions {
  /** Whether the parts marked `loaded` are already in memory (not to be counted again). Default true. */
  dataLoaded?: boolean;
  /** Node's per-allocation limits (default: this Node's). */
  limits?: BufferLimits;
}

/**
 * Throws an InrunError, one line naming the estimate, its largest parts, what is available and
 * what to shrink, when the run cannot fit: more memory than `available`, or one typed array or
 * file image beyond what Node allows.
 */
export function checkRunMemory(
  estimate: MemoryEstimate,
  available: AvailableMemory,
  options: CheckMemoryOptions = {},
): void {
  const dataLoaded = options.dataLoaded ?? true;
  const counted = estimate.parts.filter((part) => !(dataLoaded && part.loaded));
  const need = counted.reduce((sum, part) => sum + part.bytes, 0);
  const advise = (names: string[]) => {
    const hints = [...new Set(names.flatMap((name) => estimate.advice[name] ?? []))].slice(0, 4);
    if (hints.length === 0) return '';
    const last = hints.pop()!;
    return `; use ${hints.length > 0 ? `${hints.join(', ')}, or ${last}` : last}`;
  };
  if (need > available.bytes) {
    const shown = counted.filter((part) => part.bytes >= need / 100).slice(0, 5);
    const list = shown.map((part) => `${part.name} ${formatBytes(part.bytes)}`).join(', ');
    const more = shown.length < counted.length ? ', …' : '';
    fail(
      `this run needs about ${formatBytes(need)} of memory (${list}${more}) but only ${formatBytes(available.bytes)} is available (${available.source})` +
        advise(shown.slice(0, 2).map((part) => part.name)),
    );
  }
  const limits = options.limits ?? bufferLimits();
  for (const buffer of estimate.buffers) {
    const bytes = buffer.length * buffer.bytesPerElement;
    if (buffer.file === undefined && (buffer.length > limits.maxElements || bytes > limits.maxBytes)) {
      const over = buffer.length > limits.maxElements;
      fail(
        `this run cannot allocate ${buffer.name}: one array of ${formatCount(buffer.length)} values (${formatBytes(bytes)}), more than the ${over ? `${formatCount(limits.maxElements)} values` : formatBytes(limits.maxBytes)} one typed array may hold in Node ${process.version}` +
          advise([buffer.part]),
      );
    }
    if (buffer.file !== undefined) {
      const limit = Math.min(limits.maxReadBytes, limits.maxElements, limits.maxBytes);
      if (bytes > limit)
        fail(
          `this run cannot save ${buffer.name}: ${buffer.file} would be ${formatBytes(bytes)}, more than ${limit === limits.maxReadBytes ? `the ${formatLimit(limit)} Node can read back in one piece (to resume, or to load the weights)` : `the ${formatLimit(limit)} Node can hold in one buffer`}` +
            advise([buffer.part]),
        );
    }
  }
}

/** estimateRunMemory + availableMemory + checkRunMemory: what a run calls before it builds its model. */
export function checkRunFits(config: TrainConfig, shape: RunShape): MemoryEstimate {
  const estimate = estimateRunMemory(config, shape);
  checkRunMemory(estimate, availableMemory());
  return estimate;
}

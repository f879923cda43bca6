// Small random models and batches shared by the numeric tests.

import { TensorDataset } from '../../src/data/dataset.js';
import type { DType } from '../../src/kernels/types.js';
import { GELU, ReLU, Sigmoid, Tanh } from '../../src/layers/elementwise.js';
import { Linear } from '../../src/layers/linear.js';
import type { Layer } from '../../src/layers/types.js';
import { BinaryLogistic } from '../../src/losses/binary-logistic.js';
import { MeanSquaredError } from '../../src/losses/mse.js';
import { SoftmaxCrossEntropy } from '../../src/losses/softmax-cross-entropy.js';
import type { Loss, Targets } from '../../src/losses/types.js';
import { Sequential } from '../../src/models/sequential.js';
import { Rng } from '../../src/util/rng.js';
import type { Examples } from '../reference/brute-force.js';

export interface Architecture {
  name: string;
  tokens: number;
  /** Feature width; ignored when `vocab` is set (inputs are then token ids). */
  inputs: number;
  /** Vocabulary size for token-id inputs (language models). */
  vocab?: number;
  /** Fraction of targets set to the ignore index (padding), for token-level losses. */
  maskFraction?: number;
  layers: () => Layer[];
  loss: () => Loss;
  outputs: number;
}

/** Every layer and loss type appears in at least one architecture; one has sequence inputs. */
export const ARCHITECTURES: Architecture[] = [
  {
    name: 'linear+tanh+linear, softmax cross-entropy',
    tokens: 1,
    inputs: 5,
    layers: () => [new Linear(5, 4), Tanh(), new Linear(4, 3)],
    loss: () => new SoftmaxCrossEntropy(),
    outputs: 3,
  },
  {
    name: 'relu MLP on 3-token sequences, softmax cross-entropy',
    tokens: 3,
    inputs: 4,
    layers: () => [new Linear(4, 6), ReLU(), new Linear(6, 3)],
    loss: () => new SoftmaxCrossEntropy(),
    outputs: 3,
  },
  {
    name: 'gelu+sigmoid, bias-free layer, MSE',
    tokens: 1,
    inputs: 3,
    layers: () => [new Linear(3, 5), GELU(), new Linear(5, 4, { bias: false }), Sigmoid(), new Linear(4, 2)],
    loss: () => new MeanSquaredError(),
    outputs: 2,
  },
  {
    name: 'logistic regression (binary logistic loss)',
    tokens: 1,
    inputs: 6,
    layers: () => [new Linear(6, 1)],
    loss: () => new BinaryLogistic(),
    outputs: 1,
  },
];

export function buildModel(
  arch: Architecture,
  dtype: DType,
  seed = 1,
  kernels: 'native' | 'portable' | 'wasm' | 'auto' = 'auto',
) {
  return new Sequential(arch.layers(), arch.loss(), {
    input: { tokens: arch.tokens, width: arch.inputs },
    dtype,
    seed,
    kernels,
  });
}

/** A float32 copy of a model with the same architecture and (rounded) weights. */
export function toFloat32(arch: Architecture, model: Sequential): Sequential {
  const copy = buildModel(arch, 'float32');
  copy.params.set(model.params);
  return copy;
}

export function randomBatch(arch: Architecture, n: number, seed: number, dtype: DType = 'float64'): Examples {
  const rng = new Rng(seed);
  const T = arch.tokens;
  const alloc = (length: number) =>
    dtype === 'float64' ? new Float64Array(length) : new Float32Array(length);
  const kind = arch.loss().kind;
  let targets: Targets;
  if (kind === 'softmax-cross-entropy') {
    targets = Int32Array.from({ length: n * T }, () => rng.int(arch.outputs));
    if (arch.maskFraction)
      for (let e = 0; e < targets.length; e++) if (rng.uniform() < arch.maskFraction) targets[e] = -1;
  } else if (kind === 'binary-logistic') targets = Float64Array.from({ length: n * T }, () => rng.int(2));
  else targets = Float64Array.from({ length: n * T * arch.outputs }, () => rng.normal());
  if (dtype === 'float32' && !(targets instanceof Int32Array)) targets = Float32Array.from(targets);
  if (arch.vocab) {
    const vocab = arch.vocab;
    const ids = Int32Array.from({ length: n * T }, () => rng.int(vocab));
    return { input: { data: alloc(0), n, tokens: T, width: 1, ids }, targets };
  }
  const data = alloc(n * T * arch.inputs);
  for (let e = 0; e < data.length; e++) data[e] = rng.normal();
  return { input: { data, n, tokens: T, width: arch.inputs }, targets };
}

export function randomVector(length: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  return Float64Array.from({ length }, () => rng.normal());
}

export function castBatch(batch: Examples): Examples {
  const targets = batch.targets instanceof Int32Array ? batch.targets : Float32Array.from(batch.targets);
  return { input: { ...batch.input, data: Float32Array.from(batch.input.data) }, targets };
}

/** A batch of an architecture's random examples as a dataset (e.g. a validation set for the valuer). */
export function asDataset(arch: Architecture, batch: Examples, name: string): TensorDataset {
  const classes = batch.targets instanceof Int32Array;
  return new TensorDataset({
    name,
    features: batch.input.data,
    width: arch.inputs,
    tokens: arch.tokens,
    labels: batch.targets,
    labelKind: classes ? 'class' : 'real',
    targetWidth: classes ? 1 : batch.targets.length / batch.input.n,
  });
}

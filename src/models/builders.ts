import { GELU, ReLU, Sigmoid, Tanh } from '../layers/elementwise.js';
import { Linear } from '../layers/linear.js';
import type { Layer } from '../layers/types.js';
import { BinaryLogistic } from '../losses/binary-logistic.js';
import { MeanSquaredError } from '../losses/mse.js';
import { SoftmaxCrossEntropy } from '../losses/softmax-cross-entropy.js';
import type { Loss } from '../losses/types.js';
import { checkKnownKeys, checkNumber, fail } from '../util/errors.js';
import { type ModelOptions, Sequential } from './sequential.js';

export type ActivationName = 'relu' | 'gelu' | 'tanh' | 'sigmoid';
export type LossName = 'softmax-cross-entropy' | 'binary-logistic' | 'mse';

const ACTIVATIONS: Record<ActivationName, () => Layer> = {
  relu: ReLU,
  gelu: GELU,
  tanh: Tanh,
  sigmoid: Sigmoid,
};
const LOSSES: Record<LossName, () => Loss> = {
  'softmax-cross-entropy': () => new SoftmaxCrossEntropy(),
  'binary-logistic': () => new BinaryLogistic(),
  mse: () => new MeanSquaredError(),
};

export function activationLayer(name: ActivationName): Layer {
  const make = ACTIVATIONS[name];
  if (!make)
    fail(`unknown activation ${JSON.stringify(name)} (known: ${Object.keys(ACTIVATIONS).join(', ')})`);
  return make();
}

export function lossFunction(name: LossName): Loss {
  const make = LOSSES[name];
  if (!make) fail(`unknown loss ${JSON.stringify(name)} (known: ${Object.keys(LOSSES).join(', ')})`);
  return make();
}

type CommonOptions = Omit<ModelOptions, 'input'>;

export interface LogisticRegressionOptions extends CommonOptions {
  inputs: number;
  /** 2 → one logit with the binary logistic loss (targets 0/1); more → softmax over classes. */
  classes: number;
}

/** Linear model with a logistic (2 classes) or softmax (more) cross-entropy loss. */
export function logisticRegression(options: LogisticRegressionOptions): Sequential {
  checkKnownKeys('logisticRegression', options, ['inputs', 'classes', 'dtype', 'seed', 'kernels']);
  const inputs = checkNumber('logisticRegression.inputs', options.inputs, { min: 1, integer: true });
  const classes = checkNumber('logisticRegression.classes', options.classes, { min: 2, integer: true });
  const binary = classes === 2;
  return new Sequential(
    [new Linear(inputs, binary ? 1 : classes)],
    binary ? new BinaryLogistic() : new SoftmaxCrossEntropy(),
    { ...options, input: { width: inputs } },
  );
}

export interface MlpOptions extends CommonOptions {
  inputs: number;
  hidden: number[];
  outputs: number;
  activation?: ActivationName;
  loss?: LossName;
}

/** Multi-layer perceptron: Linear → activation → … → Linear, softmax cross-entropy by default. */
export function mlp(options: MlpOptions): Sequential {
  checkKnownKeys('mlp', options, [
    'inputs',
    'hidden',
    'outputs',
    'activation',
    'loss',
    'dtype',
    'seed',
    'kernels',
  ]);
  const inputs = checkNumber('mlp.inputs', options.inputs, { min: 1, integer: true });
  const outputs = checkNumber('mlp.outputs', options.outputs, { min: 1, integer: true });
  if (!Array.isArray(options.hidden)) fail('mlp.hidden must be an array of layer widths, e.g. [128, 64]');
  const layers: Layer[] = [];
  let width = inputs;
  options.hidden.forEach((h, k) => {
    checkNumber(`mlp.hidden[${k}]`, h, { min: 1, integer: true });
    layers.push(new Linear(width, h), activationLayer(options.activation ?? 'relu'));
    width = h;
  });
  layers.push(new Linear(width, outputs));
  return new Sequential(layers, lossFunction(options.loss ?? 'softmax-cross-entropy'), {
    ...options,
    input: { width: inputs },
  });
}

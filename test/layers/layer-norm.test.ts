import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getKernels } from '../../src/kernels/index.js';
import { GELU, ReLU, Tanh } from '../../src/layers/elementwise.js';
import { LayerNorm, RMSNorm } from '../../src/layers/layer-norm.js';
import { Linear } from '../../src/layers/linear.js';
import type { Layer, LayerTape } from '../../src/layers/types.js';
import { MeanSquaredError } from '../../src/losses/mse.js';
import { SoftmaxCrossEntropy } from '../../src/losses/softmax-cross-entropy.js';
import { Sequential } from '../../src/models/sequential.js';
import { InrunError } from '../../src/util/errors.js';
import type { Architecture } from '../helpers/fixtures.js';
import { checkArchitecture } from '../helpers/layer-checks.js';

/**
 * Draws the layer's parameters from N(0, 1) instead of γ = 1, β = 0, so that the checks see
 * every term that γ and β enter (at γ = 1 a γ/1 mix-up would pass unnoticed).
 */
function randomised<T extends Layer>(layer: T): T {
  const specs = layer.paramSpecs.bind(layer);
  layer.paramSpecs = () => specs().map((spec) => ({ ...spec, init: { kind: 'normal', std: 1 } }));
  return layer;
}

const ARCHITECTURES: Architecture[] = [
  {
    name: 'linear → layer norm → gelu → linear on 3-token sequences, softmax cross-entropy',
    tokens: 3,
    inputs: 4,
    layers: () => [new Linear(4, 6), new LayerNorm(6), GELU(), new Linear(6, 3)],
    loss: () => new SoftmaxCrossEntropy(),
    outputs: 3,
  },
  {
    name: 'linear → rms norm → tanh → linear on 2-token sequences, MSE',
    tokens: 2,
    inputs: 5,
    layers: () => [new Linear(5, 4), new RMSNorm(4), Tanh(), new Linear(4, 2)],
    loss: () => new MeanSquaredError(),
    outputs: 2,
  },
  {
    name: 'linear → bias-free layer norm → relu → linear, softmax cross-entropy',
    tokens: 1,
    inputs: 3,
    layers: () => [new Linear(3, 5), new LayerNorm(5, { bias: false }), ReLU(), new Linear(5, 3)],
    loss: () => new SoftmaxCrossEntropy(),
    outputs: 3,
  },
  {
    name: 'layer norm on the data (no R{x}), random γ and β, then linear, MSE',
    tokens: 2,
    inputs: 4,
    layers: () => [randomised(new LayerNorm(4)), new Linear(4, 3)],
    loss: () => new MeanSquaredError(),
    outputs: 3,
  },
  {
    name: 'random-γ layer norm feeding random-γ rms norm, tanh, 3-token sequences, softmax cross-entropy',
    tokens: 3,
    inputs: 3,
    layers: () => [
      new Linear(3, 5),
      randomised(new LayerNorm(5, { eps: 1e-3 })),
      randomised(new RMSNorm(5)),
      Tanh(),
      new Linear(5, 4),
    ],
    loss: () => new SoftmaxCrossEntropy(),
    outputs: 4,
  },
];

for (const arch of ARCHITECTURES) checkArchitecture(arch);

describe('LayerNorm and RMSNorm forward', () => {
  const n = 2;
  const T = 3;
  const d = 5;
  const data = Float64Array.from({ length: n * T * d }, (_, e) => Math.sin(1.7 * e + 0.3) * (1 + (e % 4)));

  function run(layer: Layer): { y: Float64Array; tape: LayerTape } {
    const model = new Sequential([layer], new MeanSquaredError(), {
      input: { tokens: T, width: d },
      dtype: 'float64',
      kernels: getKernels({ kind: 'portable' }),
    });
    const pass = model.forward({ data, n, tokens: T, width: d }, new Float64Array(n * T * d));
    return { y: pass.tapes[0].output.data as Float64Array, tape: pass.tapes[0] };
  }

  test('LayerNorm matches PyTorch (biased variance, eps inside the root)', () => {
    const eps = 1e-5;
    const { y } = run(new LayerNorm(d, { eps }));
    for (let row = 0; row < n * T; row++) {
      const x = data.subarray(row * d, (row + 1) * d);
      const mu = x.reduce((a, b) => a + b, 0) / d;
      const variance = x.reduce((a, b) => a + (b - mu) ** 2, 0) / d;
      for (let c = 0; c < d; c++)
        assert.ok(Math.abs(y[row * d + c] - (x[c] - mu) / Math.sqrt(variance + eps)) < 1e-12);
    }
  });

  test('RMSNorm divides by the root mean square', () => {
    const eps = 1e-6;
    const { y } = run(new RMSNorm(d, { eps }));
    for (let row = 0; row < n * T; row++) {
      const x = data.subarray(row * d, (row + 1) * d);
      const ms = x.reduce((a, b) => a + b * b, 0) / d;
      for (let c = 0; c < d; c++) assert.ok(Math.abs(y[row * d + c] - x[c] / Math.sqrt(ms + eps)) < 1e-12);
    }
  });

  test('parameters: LayerNorm has γ = 1 and β = 0, RMSNorm and bias-free LayerNorm only γ', () => {
    assert.deepEqual(
      new LayerNorm(3).paramSpecs().map((s) => [s.name, s.shape, s.init]),
      [
        ['weight', [3], { kind: 'constant', value: 1 }],
        ['bias', [3], { kind: 'constant', value: 0 }],
      ],
    );
    assert.deepEqual(
      new RMSNorm(3).paramSpecs().map((s) => s.name),
      ['weight'],
    );
    assert.deepEqual(
      new LayerNorm(3, { bias: false }).paramSpecs().map((s) => s.name),
      ['weight'],
    );
  });

  test('bad widths, eps and options are user errors', () => {
    assert.throws(() => new LayerNorm(0), InrunError);
    assert.throws(() => new RMSNorm(2.5), InrunError);
    assert.throws(() => new LayerNorm(3, { eps: -1 }), InrunError);
    assert.throws(() => new RMSNorm(3, { eps: Number.NaN }), InrunError);
    assert.throws(() => new LayerNorm(3, { epsilon: 1 } as never), /unknown option "epsilon"/);
    assert.throws(() => new LayerNorm(3).outputShape({ tokens: 1, width: 4 }), /width 4, expected 3/);
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BatchNorm2d, GroupNorm } from '../../src/index.js';
import { Conv2d } from '../../src/layers/conv2d.js';
import { GELU, ReLU, Tanh } from '../../src/layers/elementwise.js';
import { BATCH_NORM_REFUSED } from '../../src/layers/group-norm.js';
import { Linear } from '../../src/layers/linear.js';
import { Flatten, GlobalAvgPool2d } from '../../src/layers/pooling.js';
import type { Layer } from '../../src/layers/types.js';
import { MeanSquaredError } from '../../src/losses/mse.js';
import { SoftmaxCrossEntropy } from '../../src/losses/softmax-cross-entropy.js';
import { Sequential } from '../../src/models/sequential.js';
import { InrunError } from '../../src/util/errors.js';
import type { Architecture } from '../helpers/fixtures.js';
import { checkArchitecture } from '../helpers/layer-checks.js';

/** Draws the layer's parameters from N(0, 1) instead of γ = 1, β = 0 (see layer-norm.test.ts). */
function randomised<T extends Layer>(layer: T): T {
  const specs = layer.paramSpecs.bind(layer);
  layer.paramSpecs = () => specs().map((spec) => ({ ...spec, init: { kind: 'normal', std: 1 } }));
  return layer;
}

const ARCHITECTURES: Architecture[] = [
  {
    name: 'conv → group norm (2 groups of 2 channels) → relu → conv → group norm (1 group) → global average → linear on 2×4×4',
    tokens: 1,
    inputs: 2 * 4 * 4,
    layers: () => [
      new Conv2d(2, 4, 3, { padding: 1, bias: false }),
      randomised(new GroupNorm(2, 4)),
      ReLU(),
      new Conv2d(4, 2, 2),
      randomised(new GroupNorm(1, 2, { eps: 1e-3 })),
      new GlobalAvgPool2d(),
      new Linear(2, 3),
    ],
    loss: () => new SoftmaxCrossEntropy(),
    outputs: 3,
  },
  {
    name: 'instance norm (groups = channels) on the data (no R{x}) → conv → tanh → flatten → linear on 3×3×3, MSE',
    tokens: 1,
    inputs: 3 * 3 * 3,
    layers: () => [
      randomised(new GroupNorm(3, 3)),
      new Conv2d(3, 2, 2),
      Tanh(),
      new Flatten(),
      new Linear(2 * 2 * 2, 2),
    ],
    loss: () => new MeanSquaredError(),
    outputs: 2,
  },
  {
    name: 'conv → group norm without affine parameters → gelu → conv, softmax cross-entropy',
    tokens: 1,
    inputs: 1 * 5 * 5,
    layers: () => [
      new Conv2d(1, 4, 3),
      new GroupNorm(2, 4, { affine: false }),
      GELU(),
      new Conv2d(4, 3, 3),
      new Flatten(),
    ],
    loss: () => new SoftmaxCrossEntropy(),
    outputs: 3,
  },
];

for (const arch of ARCHITECTURES) checkArchitecture(arch);

describe('GroupNorm', () => {
  test('matches PyTorch: per example and group, biased variance, eps inside the root, per-channel γ and β', () => {
    const [n, C, HW, G] = [2, 4, 3, 2];
    const layer = new GroupNorm(G, C, { eps: 1e-5 });
    const model = new Sequential([layer], new MeanSquaredError(), {
      input: { width: C * HW },
      dtype: 'float64',
    });
    const gamma = [0.5, -1, 2, 1.5];
    const beta = [0.1, 0.2, -0.3, 0];
    model.params.set([...gamma, ...beta]);
    const x = Float64Array.from({ length: n * C * HW }, (_, e) => Math.sin(1.3 * e + 0.2) * (1 + (e % 5)));
    const y = model.forward({ data: x, n, tokens: 1, width: C * HW }, new Float64Array(x.length)).lossTape
      .output.data;
    const S = (C / G) * HW;
    for (let i = 0; i < n; i++)
      for (let g = 0; g < G; g++) {
        const base = i * C * HW + g * S;
        const group = x.subarray(base, base + S);
        const mu = group.reduce((a, b) => a + b, 0) / S;
        const variance = group.reduce((a, b) => a + (b - mu) ** 2, 0) / S;
        for (let s = 0; s < S; s++) {
          const c = g * (C / G) + Math.floor(s / HW);
          const want = gamma[c] * ((group[s] - mu) / Math.sqrt(variance + 1e-5)) + beta[c];
          assert.ok(Math.abs(y[base + s] - want) < 1e-12);
        }
      }
    assert.deepEqual(
      model.slots.map((s) => [s.name, s.shape]),
      [
        ['layers.0.weight', [4]],
        ['layers.0.bias', [4]],
      ],
    );
  });

  test('bad groups, channels and widths are user errors', () => {
    assert.throws(() => new GroupNorm(3, 4), /groups must be a positive integer dividing channels \(4\)/);
    assert.throws(() => new GroupNorm(1, 0), /channels must be a positive integer/);
    assert.throws(() => new GroupNorm(1, 2, { eps: -1 }), InrunError);
    assert.throws(() => new GroupNorm(1, 2, { momentum: 0.1 } as never), /unknown option "momentum"/);
    assert.throws(() => new GroupNorm(1, 3).outputShape({ tokens: 1, width: 10 }), /expected 3 channels/);
    assert.throws(() => new GroupNorm(1, 3).outputShape({ tokens: 2, width: 9 }), /tokens = 1/);
    assert.deepEqual(new GroupNorm(1, 3, { affine: false }).paramSpecs(), []);
  });
});

describe('BatchNorm2d', () => {
  test('is refused at construction: it mixes the examples of a batch', () => {
    assert.throws(
      () => new BatchNorm2d(16),
      (error: unknown) => {
        assert.ok(error instanceof InrunError);
        assert.equal(error.message, BATCH_NORM_REFUSED);
        assert.match(error.message, /per-example data value, is not defined/);
        assert.match(error.message, /GroupNorm\(32, C\)/);
        assert.match(error.message, /GroupNorm\(1, C\)/);
        return true;
      },
    );
  });
});

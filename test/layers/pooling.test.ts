import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Conv2d } from '../../src/layers/conv2d.js';
import { ReLU, Tanh } from '../../src/layers/elementwise.js';
import { Linear } from '../../src/layers/linear.js';
import { AvgPool2d, Flatten, GlobalAvgPool2d, MaxPool2d } from '../../src/layers/pooling.js';
import type { Layer } from '../../src/layers/types.js';
import { MeanSquaredError } from '../../src/losses/mse.js';
import { SoftmaxCrossEntropy } from '../../src/losses/softmax-cross-entropy.js';
import { Sequential } from '../../src/models/sequential.js';
import { InrunError } from '../../src/util/errors.js';
import type { Architecture } from '../helpers/fixtures.js';
import { checkArchitecture } from '../helpers/layer-checks.js';

const ARCHITECTURES: Architecture[] = [
  {
    name: 'conv → relu → overlapping max pool (3, stride 2, padding 1) → avg pool (2, stride 1) → flatten → linear on 2×6×6',
    tokens: 1,
    inputs: 2 * 6 * 6,
    layers: () => [
      new Conv2d(2, 3, 3, { padding: 1 }),
      ReLU(),
      new MaxPool2d(3, 2, 1),
      new AvgPool2d(2, 1),
      new Flatten(),
      new Linear(3 * 2 * 2, 3),
    ],
    loss: () => new SoftmaxCrossEntropy(),
    outputs: 3,
  },
  {
    name: 'conv → tanh → avg pool with padding, counting only in-image values → dilated max pool on odd 1×7×5, MSE',
    tokens: 1,
    inputs: 7 * 5,
    layers: () => [
      new Conv2d(1, 2, [2, 1], { input: { height: 7, width: 5 } }),
      Tanh(),
      new AvgPool2d([3, 2], [2, 1], 1, { countIncludePad: false }),
      new MaxPool2d(2, 1, 0, { dilation: [1, 2] }),
      new Flatten(),
      new Linear(2 * 2 * 4, 2),
    ],
    loss: () => new MeanSquaredError(),
    outputs: 2,
  },
  {
    name: 'pooling on the data (no R{x}): max pool → conv → global average → linear on 3×4×4, softmax cross-entropy',
    tokens: 1,
    inputs: 3 * 4 * 4,
    layers: () => [
      new MaxPool2d(2, 1, 0, { input: { channels: 3, height: 4, width: 4 } }),
      new Conv2d(3, 2, 2),
      Tanh(),
      new GlobalAvgPool2d(),
      new Linear(2, 3),
    ],
    loss: () => new SoftmaxCrossEntropy(),
    outputs: 3,
  },
];

for (const arch of ARCHITECTURES) checkArchitecture(arch);

describe('pooling forward', () => {
  /** Runs one parameter-free layer on a 1×1×4×4 image (values 0…15, row-major) → its output. */
  function run(layer: Layer, data: number[], width = 16): Float64Array {
    const model = new Sequential([layer], new MeanSquaredError(), { input: { width }, dtype: 'float64' });
    const out = model.outputShape.width;
    const pass = model.forward(
      { data: Float64Array.from(data), n: 1, tokens: 1, width },
      new Float64Array(out),
    );
    return Float64Array.from(pass.lossTape.output.data);
  }
  const image = Array.from({ length: 16 }, (_, e) => e);
  const input = { channels: 1, height: 4, width: 4 };

  test('MaxPool2d and AvgPool2d match PyTorch on a 4×4 ramp', () => {
    // torch.nn.MaxPool2d(2)(torch.arange(16.).view(1, 1, 4, 4)) = [[5, 7], [13, 15]]
    assert.deepEqual([...run(new MaxPool2d(2, undefined, undefined, { input }), image)], [5, 7, 13, 15]);
    // MaxPool2d(3, stride=2, padding=1): windows clipped to the image, padding never wins.
    assert.deepEqual([...run(new MaxPool2d(3, 2, 1, { input }), image)], [5, 7, 13, 15]);
    // AvgPool2d(2): [[2.5, 4.5], [10.5, 12.5]]
    assert.deepEqual(
      [...run(new AvgPool2d(2, undefined, undefined, { input }), image)],
      [2.5, 4.5, 10.5, 12.5],
    );
    // AvgPool2d(2, stride=2, padding=1): the corner window holds 0 and three zeros of padding.
    const padded = run(new AvgPool2d(2, 2, 1, { input }), image);
    assert.equal(padded[0], 0 / 4);
    assert.equal(padded[1], (1 + 2) / 4);
    const counted = run(new AvgPool2d(2, 2, 1, { countIncludePad: false, input }), image);
    assert.equal(counted[1], (1 + 2) / 2);
    assert.equal(counted[3], (4 + 8) / 2);
  });

  test('GlobalAvgPool2d averages each channel; Flatten reshapes without copying', () => {
    const two = Array.from({ length: 8 }, (_, e) => e);
    assert.deepEqual(
      [...run(new GlobalAvgPool2d({ input: { channels: 2, height: 2, width: 2 } }), two, 8)],
      [1.5, 5.5],
    );
    const flatten = new Flatten();
    assert.deepEqual(flatten.outputShape({ tokens: 3, width: 4 }), { tokens: 1, width: 12 });
    const x = { data: new Float64Array(12), n: 1, tokens: 3, width: 4 };
    const tape = { input: x, output: x };
    const y = flatten.forward({} as never, x, tape);
    assert.equal(y.data, x.data);
  });

  test('max pool takes the first of tied values and propagates NaN', () => {
    const ties = [1, 1, 0, 0, 1, 1, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2];
    const layer = new MaxPool2d(2, undefined, undefined, { input });
    const model = new Sequential([layer], new MeanSquaredError(), { input: { width: 16 }, dtype: 'float64' });
    const pass = model.forward(
      { data: Float64Array.from(ties), n: 1, tokens: 1, width: 16 },
      new Float64Array(4),
    );
    model.backward(pass);
    const grads = model.layers[0].backward(
      model.context(),
      { data: Float64Array.from([1, 2, 3, 4]), n: 1, tokens: 1, width: 4 },
      pass.tapes[0],
      true,
    )!;
    assert.deepEqual([...grads.data], [1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0]);
    const withNaN = image.slice();
    withNaN[5] = Number.NaN;
    assert.ok(Number.isNaN(run(new MaxPool2d(2, undefined, undefined, { input }), withNaN)[0]));
  });

  test('shapes and options are checked with clear errors', () => {
    assert.throws(() => new MaxPool2d(2, 2, 2), /padding 2 is more than half the 2-wide window/);
    assert.throws(() => new AvgPool2d(0), InrunError);
    assert.throws(
      () => new MaxPool2d(2, undefined, undefined, { ceilMode: true } as never),
      /unknown option/,
    );
    assert.throws(
      () => new AvgPool2d(2, 2, 0, { countIncludePad: 1 as never }),
      /countIncludePad must be a boolean/,
    );
    assert.throws(
      () => new MaxPool2d(2).outputShape({ tokens: 1, width: 16 }),
      /MaxPool2d: cannot tell the image shape of inputs of width 16/,
    );
    assert.throws(
      () =>
        new MaxPool2d(3, undefined, undefined, { input: { channels: 1, height: 2, width: 2 } }).outputShape({
          tokens: 1,
          width: 4,
        }),
      /does not fit in 2×2 images/,
    );
    assert.throws(
      () =>
        new GlobalAvgPool2d({ input: { channels: 2, height: 2, width: 2 } }).outputShape({
          tokens: 1,
          width: 9,
        }),
      /inputs of width 9 are not images of shape \[2, 2, 2\]/,
    );
    // Image shapes flow from layer to layer through outputShape.
    const model = new Sequential(
      [
        new Conv2d(1, 2, 3, { padding: 1 }),
        ReLU(),
        new MaxPool2d(2),
        new AvgPool2d(2),
        new GlobalAvgPool2d(),
      ],
      new MeanSquaredError(),
      { input: { width: 64 } },
    );
    assert.equal(model.outputShape.width, 2);
  });
});

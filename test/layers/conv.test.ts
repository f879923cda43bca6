import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getKernels } from '../../src/kernels/index.js';
import { Conv2d, type Size2 } from '../../src/layers/conv2d.js';
import { GELU, ReLU, Tanh } from '../../src/layers/elementwise.js';
import { Linear } from '../../src/layers/linear.js';
import { Flatten, GlobalAvgPool2d, MaxPool2d } from '../../src/layers/pooling.js';
import type { LayerTape } from '../../src/layers/types.js';
import { MeanSquaredError } from '../../src/losses/mse.js';
import { SoftmaxCrossEntropy } from '../../src/losses/softmax-cross-entropy.js';
import { Sequential } from '../../src/models/sequential.js';
import { InrunError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import type { Architecture } from '../helpers/fixtures.js';
import { checkArchitecture } from '../helpers/layer-checks.js';
import { relativeError } from '../reference/brute-force.js';

const ARCHITECTURES: Architecture[] = [
  {
    name: 'conv 3×3 padding 1 → tanh → 1×1 conv → global average → linear on 2×5×5, softmax cross-entropy',
    tokens: 1,
    inputs: 2 * 5 * 5,
    layers: () => [
      new Conv2d(2, 3, 3, { padding: 1 }),
      Tanh(),
      new Conv2d(3, 2, 1),
      new GlobalAvgPool2d(),
      new Linear(2, 3),
    ],
    loss: () => new SoftmaxCrossEntropy(),
    outputs: 3,
  },
  {
    name: 'bias-free conv 3×2, stride [2, 1], padding [1, 0], dilation [1, 2] on odd 1×7×6 images → tanh → flatten → linear, MSE',
    tokens: 1,
    inputs: 7 * 6,
    layers: () => [
      new Conv2d(1, 2, [3, 2], {
        stride: [2, 1],
        padding: [1, 0],
        dilation: [1, 2],
        bias: false,
        input: { height: 7, width: 6 },
      }),
      Tanh(),
      new Flatten(),
      new Linear(2 * 4 * 4, 2),
    ],
    loss: () => new MeanSquaredError(),
    outputs: 2,
  },
  {
    name: '1×1 conv with stride 2 → gelu → 2×2 conv to 1×1 on 3×4×4, softmax cross-entropy',
    tokens: 1,
    inputs: 3 * 4 * 4,
    layers: () => [new Conv2d(3, 2, 1, { stride: 2 }), GELU(), new Conv2d(2, 3, 2), new Flatten()],
    loss: () => new SoftmaxCrossEntropy(),
    outputs: 3,
  },
  {
    name: 'dilated conv (dilation 2, padding 2) → relu → max pool → conv on 2×6×6, softmax cross-entropy',
    tokens: 1,
    inputs: 2 * 6 * 6,
    layers: () => [
      new Conv2d(2, 2, 3, { dilation: 2, padding: 2 }),
      ReLU(),
      new MaxPool2d(2),
      new Conv2d(2, 3, 3),
      new Flatten(),
    ],
    loss: () => new SoftmaxCrossEntropy(),
    outputs: 3,
  },
];

for (const arch of ARCHITECTURES) checkArchitecture(arch);

/** The textbook loop: y[i, o, oh, ow] = b[o] + Σ W[o, c, a, b]·x[i, c, oh·sh − ph + a·dh, ow·sw − pw + b·dw]. */
function directConvolution(
  x: Float64Array,
  n: number,
  [C, H, W]: [number, number, number],
  weight: Float64Array,
  bias: Float64Array | null,
  outC: number,
  [kh, kw]: [number, number],
  [sh, sw]: [number, number],
  [ph, pw]: [number, number],
  [dh, dw]: [number, number],
): { y: Float64Array; outH: number; outW: number } {
  const outH = Math.floor((H + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const outW = Math.floor((W + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  const y = new Float64Array(n * outC * outH * outW);
  for (let i = 0; i < n; i++)
    for (let o = 0; o < outC; o++)
      for (let oh = 0; oh < outH; oh++)
        for (let ow = 0; ow < outW; ow++) {
          let sum = bias ? bias[o] : 0;
          for (let c = 0; c < C; c++)
            for (let a = 0; a < kh; a++)
              for (let b = 0; b < kw; b++) {
                const ih = oh * sh - ph + a * dh;
                const iw = ow * sw - pw + b * dw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                sum += weight[((o * C + c) * kh + a) * kw + b] * x[((i * C + c) * H + ih) * W + iw];
              }
          y[((i * outC + o) * outH + oh) * outW + ow] = sum;
        }
  return { y, outH, outW };
}

describe('Conv2d forward', () => {
  const pairOf = (v: Size2): [number, number] => (typeof v === 'number' ? [v, v] : v);
  const cases: {
    image: [number, number, number];
    outC: number;
    kernel: Size2;
    stride?: Size2;
    padding?: Size2;
    dilation?: Size2;
    bias?: boolean;
  }[] = [
    { image: [2, 5, 5], outC: 3, kernel: 3 },
    { image: [3, 7, 6], outC: 4, kernel: [3, 2], stride: [2, 1], padding: [1, 0], dilation: [1, 2] },
    { image: [1, 9, 9], outC: 2, kernel: 5, stride: 2, padding: 2, bias: false },
    { image: [4, 3, 5], outC: 2, kernel: 1 },
    { image: [2, 8, 7], outC: 3, kernel: 3, dilation: 3, padding: 1, stride: 3 },
  ];
  for (const kernels of ['native', 'portable'] as const) {
    test(`matches a direct convolution loop (${kernels} kernels)`, () => {
      const rng = new Rng(5);
      for (const c of cases) {
        const [C, H, W] = c.image;
        const layer = new Conv2d(C, c.outC, c.kernel, {
          stride: c.stride,
          padding: c.padding,
          dilation: c.dilation,
          bias: c.bias,
          input: { height: H, width: W },
        });
        const model = new Sequential([layer], new MeanSquaredError(), {
          input: { width: C * H * W },
          dtype: 'float64',
          seed: 3,
          kernels: getKernels({ kind: kernels }),
        });
        const n = 3;
        const x = Float64Array.from({ length: n * C * H * W }, () => rng.normal());
        const weight = model.params.subarray(0, layer.params[0].size) as Float64Array;
        const bias =
          c.bias === false ? null : (model.params.subarray(layer.params[1].offset) as Float64Array);
        const { y, outH, outW } = directConvolution(
          x,
          n,
          c.image,
          weight,
          bias,
          c.outC,
          pairOf(c.kernel),
          pairOf(c.stride ?? 1),
          pairOf(c.padding ?? 0),
          pairOf(c.dilation ?? 1),
        );
        assert.equal(model.outputShape.width, c.outC * outH * outW);
        const pass = model.forward({ data: x, n, tokens: 1, width: C * H * W }, new Float64Array(y.length));
        const got = pass.lossTape.output.data;
        assert.ok(relativeError(got, y) < 1e-12, `${JSON.stringify(c)}: rel err ${relativeError(got, y)}`);
      }
    });
  }

  test('parameters: weight [out, in, kh, kw] and bias [out], PyTorch default bounds 1/√fan_in', () => {
    const layer = new Conv2d(3, 4, [5, 2]);
    const bound = 1 / Math.sqrt(3 * 5 * 2);
    assert.deepEqual(
      layer.paramSpecs().map((s) => [s.name, s.shape, s.init]),
      [
        ['weight', [4, 3, 5, 2], { kind: 'uniform', bound }],
        ['bias', [4], { kind: 'uniform', bound }],
      ],
    );
    assert.deepEqual(
      new Conv2d(1, 2, 3, { bias: false }).paramSpecs().map((s) => s.name),
      ['weight'],
    );
    const model = new Sequential([new Conv2d(2, 3, 3)], new MeanSquaredError(), {
      input: { width: 2 * 4 * 4 },
    });
    assert.deepEqual(
      model.slots.map((s) => [s.name, s.shape]),
      [
        ['layers.0.weight', [3, 2, 3, 3]],
        ['layers.0.bias', [3]],
      ],
    );
    for (let e = 0; e < model.parameterCount; e++) assert.ok(Math.abs(model.params[e]) <= 1 / Math.sqrt(18));
  });

  test('shapes: square images are inferred, others named; mismatches are clear user errors', () => {
    const shape = new Conv2d(1, 6, 5, { padding: 2 }).outputShape({ tokens: 1, width: 784 });
    assert.deepEqual(shape, { tokens: 1, width: 6 * 28 * 28, image: { channels: 6, height: 28, width: 28 } });
    assert.throws(
      () => new Conv2d(1, 2, 3).outputShape({ tokens: 1, width: 7 * 6 }),
      /not square images of 1 channel; give the image size with the input option/,
    );
    assert.throws(() => new Conv2d(3, 2, 3).outputShape({ tokens: 1, width: 10 }), InrunError);
    assert.throws(
      () =>
        new Conv2d(2, 2, 3).outputShape({
          tokens: 1,
          width: 18,
          image: { channels: 3, height: 2, width: 3 },
        }),
      /takes 2 input channels, got images of shape \[3, 2, 3\]/,
    );
    assert.throws(
      () => new Conv2d(1, 2, 3, { input: { height: 4, width: 5 } }).outputShape({ tokens: 1, width: 21 }),
      /inputs of width 21 are not images of shape \[1, 4, 5\]/,
    );
    assert.throws(
      () => new Conv2d(1, 2, 5).outputShape({ tokens: 1, width: 9 }),
      /a 5×5 window .* does not fit in 3×3 images/,
    );
    assert.throws(() => new Conv2d(1, 2, 3).outputShape({ tokens: 4, width: 9 }), /one image per example/);
    const layer = new Conv2d(1, 2, 3);
    layer.outputShape({ tokens: 1, width: 16 });
    assert.throws(() => layer.outputShape({ tokens: 1, width: 25 }), /set up for images \[1, 4, 4\]/);
    assert.throws(() => new Conv2d(0, 2, 3), /inChannels must be a positive integer/);
    assert.throws(() => new Conv2d(1, 2, [3, 0]), /kernel must be an integer ≥ 1/);
    assert.throws(() => new Conv2d(1, 2, 3, { padding: -1 }), /padding must be an integer ≥ 0/);
    assert.throws(() => new Conv2d(1, 2, 3, { stride: 1.5 }), /stride must be/);
    assert.throws(() => new Conv2d(1, 2, 3, { groups: 2 } as never), /unknown option "groups"/);
    // A Linear in between ends the image: the next convolution falls back to its own knowledge.
    assert.throws(
      () =>
        new Sequential([new Conv2d(1, 2, 3), new Flatten(), new MaxPool2d(2)], new MeanSquaredError(), {
          input: { width: 16 },
        }),
      /MaxPool2d: cannot tell the image shape/,
    );
  });

  test('the pairwise route by formed gradients (in chunks) equals the one by position Grams', () => {
    const conv = new Conv2d(2, 3, 3, { padding: 1 });
    const model = new Sequential([conv, Tanh(), new GlobalAvgPool2d()], new MeanSquaredError(), {
      input: { width: 2 * 6 * 6 },
      dtype: 'float64',
      seed: 4,
    });
    const batch = (n: number, seed: number) => {
      const rng = new Rng(seed);
      const input = {
        data: Float64Array.from({ length: n * 72 }, () => rng.normal()),
        n,
        tokens: 1,
        width: 72,
      };
      const pass = model.forward(
        input,
        Float64Array.from({ length: n * 3 }, () => rng.normal()),
      );
      model.backward(pass);
      return pass.tapes[0];
    };
    const [nTrain, nVal] = [7, 5];
    const train = batch(nTrain, 1);
    const validation = batch(nVal, 2);
    const ctx = model.context();
    const inner = conv as unknown as {
      patchLinear: Linear;
      pairwisePlan(n: number, m: number): { grams: number; formed: number };
    };
    const plan = inner.pairwisePlan(nTrain, nVal);
    assert.ok(plan.formed < plan.grams, 'this layer forms the gradients');
    const grams = new Float64Array(nTrain * nVal);
    const rows = (tape: LayerTape) => (tape as LayerTape & { rows: LayerTape }).rows;
    inner.patchLinear.ghostPairwise(ctx, rows(train), rows(validation), grams);
    const saved = Conv2d.formedChunkElements;
    try {
      for (const chunk of [1 << 22, 3 * 57, 1]) {
        Conv2d.formedChunkElements = chunk; // 57 values per example: whole sets, 3 examples, 1 example
        const formed = new Float64Array(nTrain * nVal);
        conv.ghostPairwise(ctx, train, validation, formed);
        assert.ok(
          relativeError(formed, grams) < 1e-12,
          `chunk ${chunk}: rel err ${relativeError(formed, grams)}`,
        );
      }
    } finally {
      Conv2d.formedChunkElements = saved;
    }
  });

  test('products read from kept per-example gradients equal those of the Linear over patch rows', () => {
    const conv = new Conv2d(2, 3, 3, { padding: 1 });
    const model = new Sequential([conv, Tanh(), new GlobalAvgPool2d()], new MeanSquaredError(), {
      input: { width: 2 * 6 * 6 },
      dtype: 'float64',
      seed: 5,
    });
    const n = 6;
    const size = model.parameterCount;
    const rng = new Rng(9);
    const vector = () => Float64Array.from({ length: size }, () => rng.normal());
    const us = [vector(), vector()];
    const metric = Float64Array.from({ length: size }, () => rng.uniform());
    const which = Int32Array.from([1, -1, 0, 1, 0, -1]);
    const data = Float64Array.from({ length: n * 72 }, () => rng.normal());
    const targets = Float64Array.from({ length: n * 3 }, () => rng.normal());
    const everything = (cacheElements: number) => {
      const saved = Conv2d.formedCacheElements;
      Conv2d.formedCacheElements = cacheElements;
      try {
        const pass = model.forward({ data, n, tokens: 1, width: 72 }, targets);
        model.backward(pass);
        const tape = pass.tapes[0];
        const ctx = model.context();
        const whole = new Float64Array(size);
        conv.addGrad(ctx, tape, { start: 0, end: n }, 0.5, whole);
        const part = new Float64Array(size);
        conv.addGrad(ctx, tape, { start: 2, end: 5 }, 1, part);
        const dots = [new Float64Array(n), new Float64Array(n)];
        conv.ghostDot(ctx, tape, us, dots);
        const self = new Float64Array(n);
        conv.ghostSelfDot(ctx, tape, null, self);
        const weighted = new Float64Array(n);
        conv.ghostSelfDot(ctx, tape, metric, weighted);
        const each = new Float64Array(n);
        conv.ghostDotEach(ctx, tape, us, which, each);
        return { whole, part, dots0: dots[0], dots1: dots[1], self, weighted, each };
      } finally {
        Conv2d.formedCacheElements = saved;
      }
    };
    const kept = everything(1 << 20);
    const rows = everything(0);
    // float64 throughout; only the summation order differs.
    for (const key of Object.keys(kept) as (keyof typeof kept)[])
      assert.ok(
        relativeError(kept[key], rows[key]) < 1e-12,
        `${key}: rel err ${relativeError(kept[key], rows[key])}`,
      );
  });

  test('the engine picks the vector route for large images and the pairwise one for tiny ones', () => {
    const model = (side: number) =>
      new Sequential([new Conv2d(1, 8, 3, { padding: 1 }), new GlobalAvgPool2d()], new MeanSquaredError(), {
        input: { width: side * side },
      });
    assert.deepEqual(model(28).ghostRoutes(64, 64), ['vector']);
    assert.deepEqual(model(1).ghostRoutes(4, 2), ['pairwise']);
  });
});

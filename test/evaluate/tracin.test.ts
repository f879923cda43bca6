import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TensorDataset } from '../../src/data/dataset.js';
import {
  finalModelLoss,
  finalModelMargins,
  type TracInCheckpoint,
  tracInCheckpoints,
} from '../../src/evaluate/tracin.js';
import { Linear } from '../../src/layers/linear.js';
import { BinaryLogistic } from '../../src/losses/binary-logistic.js';
import type { Sequential } from '../../src/models/sequential.js';
import { InrunError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { ARCHITECTURES, asDataset, buildModel, randomBatch, randomVector } from '../helpers/fixtures.js';
import { dot, type Examples } from '../reference/brute-force.js';

/**
 * Every example's gradient at `params` by central differences of its own loss (one forward pass
 * over the batch gives every example's loss at once): independent of backward and addGrad.
 */
function finiteDifferenceGradients(model: Sequential, batch: Examples, params: Float64Array): Float64Array[] {
  const h = 1e-6;
  const gradients = Array.from({ length: batch.input.n }, () => new Float64Array(params.length));
  for (let k = 0; k < params.length; k++) {
    const plus = params.slice();
    plus[k] += h;
    const minus = params.slice();
    minus[k] -= h;
    const lossPlus = model.forward(batch.input, batch.targets, plus).losses;
    const lossMinus = model.forward(batch.input, batch.targets, minus).losses;
    for (let i = 0; i < batch.input.n; i++) gradients[i][k] = (lossPlus[i] - lossMinus[i]) / (2 * h);
  }
  return gradients;
}

/** TracIn-CP by its definition, from finite-difference per-example gradients. */
function referenceTracIn(
  model: Sequential,
  checkpoints: TracInCheckpoint[],
  train: Examples,
  validation: Examples,
): { influence: Float64Array; selfInfluence: Float64Array } {
  const influence = new Float64Array(train.input.n);
  const selfInfluence = new Float64Array(train.input.n);
  for (const { params, lr } of checkpoints) {
    const trainGradients = finiteDifferenceGradients(model, train, Float64Array.from(params));
    const validationGradients = finiteDifferenceGradients(model, validation, Float64Array.from(params));
    const meanValidation = new Float64Array(params.length);
    for (const g of validationGradients)
      for (let k = 0; k < g.length; k++) meanValidation[k] += g[k] / validationGradients.length;
    trainGradients.forEach((g, i) => {
      influence[i] += lr * dot(g, meanValidation);
      selfInfluence[i] += lr * dot(g, g);
    });
  }
  return { influence, selfInfluence };
}

for (const arch of [ARCHITECTURES[0], ARCHITECTURES[2]]) {
  test(`tracInCheckpoints equals Σ lr ⟨∇ℓ_i, ḡ_V⟩ and Σ lr ‖∇ℓ_i‖² from finite differences (${arch.name})`, () => {
    const model = buildModel(arch, 'float64', 1);
    const trainBatch = randomBatch(arch, 10, 21);
    const validationBatch = randomBatch(arch, 6, 22);
    const train = asDataset(arch, trainBatch, 'train');
    const validation = asDataset(arch, validationBatch, 'validation');
    const checkpoints = [0.1, 0.05, 0.2].map((lr, c) => ({
      params: randomVector(model.parameterCount, 30 + c).map((v) => 0.5 * v),
      lr,
    }));
    const weightsBefore = model.params.slice();
    const expected = referenceTracIn(model, checkpoints, trainBatch, validationBatch);
    for (const batchSize of [1, 3, 64]) {
      const got = tracInCheckpoints(model, checkpoints, train, validation, { batchSize });
      for (let i = 0; i < train.size; i++) {
        // Central differences with h = 1e-6 agree to about 1e-10 here (values are O(0.01–3)).
        assert.ok(
          Math.abs(got.influence[i] - expected.influence[i]) < 1e-8,
          `influence ${i}, batch ${batchSize}`,
        );
        assert.ok(
          Math.abs(got.selfInfluence[i] - expected.selfInfluence[i]) < 1e-8,
          `self-influence ${i}, batch ${batchSize}`,
        );
      }
    }
    assert.deepEqual(model.params, weightsBefore, 'the model’s weights are restored');
  });
}

/** A linear softmax classifier whose logits can be written out by hand: z = W x + b. */
function linearClassifier() {
  const arch = {
    ...ARCHITECTURES[0],
    layers: () => [new Linear(4, 3)],
    inputs: 4,
  };
  return buildModel(arch, 'float64', 2);
}

function handLogits(params: Float64Array, x: ArrayLike<number>, inputs: number, classes: number): number[] {
  return Array.from({ length: classes }, (_, c) => {
    let z = params[classes * inputs + c];
    for (let f = 0; f < inputs; f++) z += params[c * inputs + f] * x[f];
    return z;
  });
}

function classDataset(n: number, seed: number, inputs: number, classes: number) {
  const rng = new Rng(seed);
  const features = Float64Array.from({ length: n * inputs }, () => 2 * rng.normal());
  const labels = Int32Array.from({ length: n }, () => rng.int(classes));
  return {
    features,
    labels,
    data: new TensorDataset({ name: 'points', features, width: inputs, labels, labelKind: 'class' }),
  };
}

test('finalModelLoss and finalModelMargins match hand-computed logits, across batches, at the given weights', () => {
  const model = linearClassifier();
  const weightsBefore = model.params.slice();
  const params = randomVector(model.parameterCount, 7);
  const { features, labels, data } = classDataset(300, 8, 4, 3);
  const losses = finalModelLoss(model, params, data, { batchSize: 128 });
  const margins = finalModelMargins(model, params, data);
  for (let i = 0; i < data.size; i++) {
    const z = handLogits(params, features.subarray(i * 4, (i + 1) * 4), 4, 3);
    const max = Math.max(...z);
    const logSumExp = max + Math.log(z.reduce((s, v) => s + Math.exp(v - max), 0));
    assert.ok(Math.abs(losses[i] - (logSumExp - z[labels[i]])) < 1e-12, `loss ${i}`);
    const others = z.filter((_, c) => c !== labels[i]);
    assert.ok(Math.abs(margins[i] - (z[labels[i]] - Math.max(...others))) < 1e-12, `margin ${i}`);
  }
  assert.deepEqual(model.params, weightsBefore);
  // Float32 weights for a float64 model are converted, not rejected.
  const fromFloat32 = finalModelLoss(model, Float32Array.from(params), data);
  assert.ok(
    fromFloat32.every((v, i) => Math.abs(v - losses[i]) < 1e-5),
    'float32 weights',
  );
});

test('finalModelMargins: a binary-logistic logit z gives (2y − 1)·z', () => {
  const arch = {
    ...ARCHITECTURES[3],
    layers: () => [new Linear(3, 1)],
    inputs: 3,
    loss: () => new BinaryLogistic(),
  };
  const model = buildModel(arch, 'float64', 3);
  const params = randomVector(model.parameterCount, 9);
  const rng = new Rng(4);
  const features = Float64Array.from({ length: 40 * 3 }, () => rng.normal());
  const labels = Float64Array.from({ length: 40 }, () => rng.int(2));
  const data = new TensorDataset({ name: 'points', features, width: 3, labels, labelKind: 'real' });
  const margins = finalModelMargins(model, params, data, { batchSize: 7 });
  for (let i = 0; i < 40; i++) {
    const z =
      params[3] +
      params[0] * features[3 * i] +
      params[1] * features[3 * i + 1] +
      params[2] * features[3 * i + 2];
    assert.ok(Math.abs(margins[i] - (labels[i] === 1 ? z : -z)) < 1e-12, `margin ${i}`);
  }
  const soft = new TensorDataset({
    name: 'soft',
    features,
    width: 3,
    labels: labels.map(() => 0.3),
    labelKind: 'real',
  });
  assert.throws(
    () => finalModelMargins(model, params, soft),
    (e) =>
      e instanceof InrunError &&
      /soft: example 0 has target 0.3; margins need hard 0\/1 targets/.test(e.message),
  );
});

test('tracInCheckpoints, finalModelLoss and finalModelMargins reject bad arguments with the reason', () => {
  const model = linearClassifier();
  const { data } = classDataset(5, 1, 4, 3);
  const good = { params: model.params.slice(), lr: 0.1 };
  const regressionArch = ARCHITECTURES[2];
  const regression = buildModel(regressionArch, 'float64');
  const sequence = buildModel(ARCHITECTURES[1], 'float64');
  const cases: [() => unknown, RegExp][] = [
    [() => tracInCheckpoints(model, [], data, data), /no checkpoints given/],
    [
      () => tracInCheckpoints(model, [good, { params: new Float64Array(3), lr: 1 }], data, data),
      /checkpoint 1: 3 parameters, the model has 15/,
    ],
    [
      () => tracInCheckpoints(model, [{ ...good, lr: Number.NaN }], data, data),
      /checkpoint 0 has learning rate NaN; it must be finite/,
    ],
    [
      () => tracInCheckpoints(model, [good], data, data, { batchSize: 0 }),
      /batchSize must be a positive integer, got 0/,
    ],
    [
      () => finalModelLoss(model, new Float64Array(2), data),
      /finalModelLoss: 2 parameters, the model has 15/,
    ],
    [
      () =>
        finalModelMargins(
          regression,
          regression.params,
          asDataset(regressionArch, randomBatch(regressionArch, 3, 1), 'r'),
        ),
      /margins need a classification loss .*this model's loss is mse/,
    ],
    [
      // The shape of the model is enough to refuse; the data is not looked at.
      () => finalModelMargins(sequence, sequence.params, data),
      /margins need one prediction per example; this model predicts 3 tokens per example/,
    ],
  ];
  for (const [call, message] of cases)
    assert.throws(call, (e) => e instanceof InrunError && message.test(e.message), String(message));
  // A dataset that does not fit the model is caught before any work.
  const wide = classDataset(5, 1, 6, 3).data;
  assert.throws(
    () => tracInCheckpoints(model, [good], wide, data),
    /examples have shape \[1, 6\], the model expects \[1, 4\]/,
  );
});

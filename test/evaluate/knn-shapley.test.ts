import assert from 'node:assert/strict';
import { test } from 'node:test';
import { knnShapley, type LabeledPoints, squaredDistances } from '../../src/evaluate/knn-shapley.js';
import { getKernels } from '../../src/kernels/index.js';
import { InrunError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { shapleyByEnumeration } from '../reference/brute-force.js';

function naiveSquaredDistance(a: LabeledPoints, i: number, b: LabeledPoints, j: number): number {
  let sum = 0;
  for (let c = 0; c < a.d; c++) sum += (a.features[i * a.d + c] - b.features[j * b.d + c]) ** 2;
  return sum;
}

/** U(S) of the definition, averaged over validation points: members of S ordered by (distance, index). */
function knnUtility(train: LabeledPoints, validation: LabeledPoints, k: number, mask: number): number {
  let total = 0;
  for (let j = 0; j < validation.n; j++) {
    const members = Array.from({ length: train.n }, (_, i) => i).filter((i) => mask & (1 << i));
    const distance = members.map((i) => naiveSquaredDistance(train, i, validation, j));
    const nearest = members
      .map((i, r) => ({ i, distance: distance[r] }))
      .sort((a, b) => a.distance - b.distance || a.i - b.i)
      .slice(0, k);
    total += nearest.filter(({ i }) => train.labels[i] === validation.labels[j]).length / k;
  }
  return total / validation.n;
}

/** Points with small integer coordinates (many exact distance ties) or normal ones. */
function randomPoints(rng: Rng, n: number, d: number, classes: number, integer: boolean): LabeledPoints {
  const features = Float64Array.from({ length: n * d }, () => (integer ? rng.int(3) : rng.normal()));
  return { features, labels: Int32Array.from({ length: n }, () => rng.int(classes)), n, d };
}

test('knnShapley equals the Shapley value of the KNN utility by enumerating every subset', () => {
  const rng = new Rng(5);
  let cases = 0;
  for (let trial = 0; trial < 40; trial++) {
    const n = 1 + rng.int(8);
    const m = 1 + rng.int(3);
    const d = 1 + rng.int(3);
    const integer = trial % 2 === 0;
    const train = randomPoints(rng, n, d, 2 + rng.int(2), integer);
    const validation = randomPoints(rng, m, d, 3, integer);
    for (const k of [1, 2, 3, n, n + 2]) {
      const expected = shapleyByEnumeration(n, (mask) => knnUtility(train, validation, k, mask));
      const got = knnShapley(train, validation, k);
      for (let i = 0; i < n; i++)
        assert.ok(
          Math.abs(got[i] - expected[i]) < 1e-12,
          `trial ${trial}, K ${k}, point ${i}: ${got[i]} vs ${expected[i]}`,
        );
      cases++;
    }
  }
  assert.equal(cases, 200);
});

test('knnShapley: tied distances are broken by training index (lower index = nearer)', () => {
  // Two training points at the same distance, K = 1. The lower index is the nearest neighbour
  // whenever both are present, so it decides the prediction: U({0}) = 1[y_0 = y_v], and so on.
  const validation = { features: Float64Array.from([0]), labels: [0], n: 1, d: 1 };
  const matchFirst = { features: Float64Array.from([1, -1]), labels: [0, 1], n: 2, d: 1 };
  // U({0}) = 1, U({1}) = 0, U({0, 1}) = 1: φ_0 = 1, φ_1 = 0.
  assert.deepEqual(Array.from(knnShapley(matchFirst, validation, 1)), [1, 0]);
  const matchSecond = { features: Float64Array.from([1, -1]), labels: [1, 0], n: 2, d: 1 };
  // U({0}) = 0, U({1}) = 1, U({0, 1}) = 0: φ_0 = ½(0 − 0) + ½(0 − 1) = −½, φ_1 = ½.
  assert.deepEqual(Array.from(knnShapley(matchSecond, validation, 1)), [-0.5, 0.5]);
});

test('knnShapley: values sum to the utility of the whole training set (efficiency), at scale', () => {
  const rng = new Rng(9);
  const train = randomPoints(rng, 300, 6, 4, false);
  const validation = randomPoints(rng, 120, 6, 4, false);
  for (const k of [1, 5, 20]) {
    const values = knnShapley(train, validation, k);
    let sum = 0;
    for (const v of values) sum += v;
    let utility = 0;
    for (let j = 0; j < validation.n; j++) {
      const nearest = Array.from({ length: train.n }, (_, i) => i)
        .sort(
          (a, b) =>
            naiveSquaredDistance(train, a, validation, j) - naiveSquaredDistance(train, b, validation, j) ||
            a - b,
        )
        .slice(0, k);
      utility += nearest.filter((i) => train.labels[i] === validation.labels[j]).length / k;
    }
    assert.ok(Math.abs(sum - utility / validation.n) < 1e-12, `K ${k}`);
  }
});

test('knnShapley: the value over many validation points is the mean of each one’s, whatever the block size', () => {
  const rng = new Rng(10);
  const train = randomPoints(rng, 40, 3, 3, false);
  const validation = randomPoints(rng, 11, 3, 3, false);
  const whole = knnShapley(train, validation, 3);
  const mean = new Float64Array(train.n);
  for (let j = 0; j < validation.n; j++) {
    const one = {
      features: validation.features.slice(j * 3, (j + 1) * 3),
      labels: [validation.labels[j]],
      n: 1,
      d: 3,
    };
    knnShapley(train, one, 3).forEach((v, i) => {
      mean[i] += v / validation.n;
    });
  }
  for (const blockRows of [1, 4, 11, 100]) {
    const blocked = knnShapley(train, validation, 3, { blockRows });
    for (let i = 0; i < train.n; i++) {
      assert.ok(Math.abs(blocked[i] - whole[i]) < 1e-15, `blockRows ${blockRows}`);
      assert.ok(Math.abs(whole[i] - mean[i]) < 1e-14, `point ${i}`);
    }
  }
});

test('squaredDistances (gemm path) equals the naive O(n·m·d) distances, in float32 and float64, both kernels', () => {
  const rng = new Rng(3);
  const train = randomPoints(rng, 23, 17, 2, false);
  const validation = randomPoints(rng, 9, 17, 2, false);
  const train32 = { ...train, features: Float32Array.from(train.features) };
  for (const kind of ['portable', 'native', 'auto'] as const) {
    let kernels: ReturnType<typeof getKernels>;
    try {
      kernels = getKernels({ kind });
    } catch {
      continue; // the native addon is not built here
    }
    for (const points of [train, train32]) {
      const distances = squaredDistances(points, validation, { kernels, blockRows: 4 });
      for (let j = 0; j < validation.n; j++) {
        for (let i = 0; i < points.n; i++) {
          const expected = naiveSquaredDistance(points, i, validation, j);
          // The ‖x‖² + ‖v‖² − 2⟨x, v⟩ form loses digits relative to the norms, not to the distance.
          assert.ok(Math.abs(distances[j * points.n + i] - expected) < 1e-12 * (1 + expected), kind);
        }
      }
    }
  }
});

test('knnShapley: rejects inconsistent shapes, bad K and non-finite features with the reason', () => {
  const good = { features: Float64Array.from([0, 1, 2, 3]), labels: [0, 1], n: 2, d: 2 };
  const cases: [() => unknown, RegExp][] = [
    [() => knnShapley(good, good, 0), /K must be a positive integer, got 0/],
    [() => knnShapley(good, good, 1.5), /K must be a positive integer, got 1.5/],
    [() => knnShapley({ ...good, n: 3 }, good, 1), /training data: 4 feature values, expected n·d = 3·2 = 6/],
    [() => knnShapley(good, { ...good, labels: [0] }, 1), /validation data: 1 labels for 2 points/],
    [
      () => knnShapley(good, { features: Float64Array.from([0, 1, 2]), labels: [0], n: 1, d: 3 }, 1),
      /validation points have 3 features, training points 2/,
    ],
    [
      () => knnShapley({ ...good, features: Float64Array.from([0, Number.NaN, 2, 3]) }, good, 1),
      /training data: point 0, feature 1 is NaN/,
    ],
    [
      () => knnShapley({ ...good, labels: [0, 0.5] }, good, 1),
      /point 1 has label 0.5; labels must be integers/,
    ],
  ];
  for (const [call, message] of cases)
    assert.throws(call, (e) => e instanceof InrunError && message.test(e.message), String(message));
});

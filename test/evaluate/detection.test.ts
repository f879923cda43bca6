import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detectionScores, removalOrder } from '../../src/evaluate/detection.js';
import { auroc, averagePrecision, precisionAtK } from '../../src/metrics.js';
import { InrunError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

/** The top `count` by repeatedly taking the highest remaining score (lowest index on ties). */
function slowRemovalOrder(scores: number[], count: number): number[] {
  const taken = new Set<number>();
  const order: number[] = [];
  while (order.length < count) {
    let best = -1;
    for (let i = 0; i < scores.length; i++) {
      if (taken.has(i)) continue;
      if (best < 0 || scores[i] > scores[best]) best = i;
    }
    taken.add(best);
    order.push(best);
  }
  return order;
}

test('detectionScores: every signal gets the metrics of its own scores, in the order given', () => {
  const rng = new Rng(1);
  const n = 80;
  const positives = Array.from({ length: n }, (_, i) => i % 5 === 0);
  const noisy = Float64Array.from(positives, (p) => (p ? 1 : 0) + rng.normal());
  const tied = Float64Array.from({ length: n }, () => rng.int(3));
  const perfect = Float64Array.from(positives, (p) => (p ? 1 : 0));
  const summaries = detectionScores(
    [
      { name: 'noisy', scores: noisy },
      { name: 'tied', scores: tied },
      { name: 'perfect', scores: perfect },
    ],
    positives,
    [1, 10, 16, 80],
  );
  assert.deepEqual(
    summaries.map((s) => s.name),
    ['noisy', 'tied', 'perfect'],
  );
  for (const [summary, scores] of [
    [summaries[0], noisy],
    [summaries[1], tied],
  ] as const) {
    assert.equal(summary.auroc, auroc(scores, positives));
    assert.equal(summary.averagePrecision, averagePrecision(scores, positives));
    assert.deepEqual(Object.keys(summary.precisionAtK).map(Number), [1, 10, 16, 80]);
    for (const k of [1, 10, 16, 80])
      assert.equal(summary.precisionAtK[k], precisionAtK(scores, positives, k));
  }
  assert.deepEqual(summaries[2], {
    name: 'perfect',
    auroc: 1,
    averagePrecision: 1,
    precisionAtK: { 1: 1, 10: 1, 16: 1, 80: 16 / 80 },
  });
});

test('detectionScores: rejects what cannot be scored, naming the signal', () => {
  const positives = [true, false, false];
  const cases: [() => unknown, string][] = [
    [
      () => detectionScores([], [false, false], [1]),
      'detectionScores: no example is marked as faulty; there is nothing to detect',
    ],
    [
      () => detectionScores([], [true, true], [1]),
      'detectionScores: every example is marked as faulty; there are no clean ones to tell apart',
    ],
    [
      () => detectionScores([], positives, [4]),
      'detectionScores: k = 4 must be an integer from 1 to the 3 examples',
    ],
    [
      () => detectionScores([], positives, [0]),
      'detectionScores: k = 0 must be an integer from 1 to the 3 examples',
    ],
    [
      () => detectionScores([{ name: 'loss', scores: [1, 2] }], positives, [1]),
      'detectionScores: signal "loss" has 2 scores for 3 examples',
    ],
    [
      () => detectionScores([{ name: 'loss', scores: [1, Number.NaN, 2] }], positives, [1]),
      'detectionScores: signal "loss" scores example 1 as NaN',
    ],
  ];
  for (const [call, message] of cases)
    assert.throws(call, (e) => e instanceof InrunError && e.message === message, message);
});

test('removalOrder: the ⌈fraction·n⌉ highest scores, equal scores by index, matches a slow selection', () => {
  const rng = new Rng(2);
  for (let trial = 0; trial < 100; trial++) {
    const n = 1 + rng.int(50);
    const scores = Array.from({ length: n }, () => (trial % 2 ? rng.int(4) : rng.normal()));
    const fraction = rng.uniform();
    const expected = slowRemovalOrder(scores, Math.ceil(fraction * n));
    assert.deepEqual(Array.from(removalOrder(scores, fraction)), expected, `trial ${trial}`);
  }
  assert.deepEqual(Array.from(removalOrder([1, 3, 3, 2], 0.5)), [1, 2]);
  assert.deepEqual(Array.from(removalOrder([1, 3, 3, 2], 0.6)), [1, 2, 3]);
  assert.deepEqual(Array.from(removalOrder([1, 3, 3, 2], 0)), []);
  assert.deepEqual(Array.from(removalOrder([1, 3, 3, 2], 1)), [1, 2, 3, 0]);
  assert.deepEqual(Array.from(removalOrder([-Infinity, Infinity, 0], 1)), [1, 2, 0]);
  // 0.07·100 is 7.000000000000001 in floating point: still 7 examples.
  assert.equal(removalOrder(new Float64Array(100), 0.07).length, 7);
});

test('removalOrder: rejects a fraction outside [0, 1] and NaN scores', () => {
  for (const fraction of [-0.1, 1.5, Number.NaN])
    assert.throws(
      () => removalOrder([1, 2], fraction),
      (e) =>
        e instanceof InrunError &&
        e.message === `removalOrder: fraction must be a number in [0, 1], got ${fraction}`,
    );
  assert.throws(
    () => removalOrder([1, Number.NaN], 0.5),
    (e) => e instanceof InrunError && e.message === 'removalOrder: score 1 is NaN',
  );
});

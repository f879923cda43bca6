import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auroc } from '../src/metrics.js';
import { InrunError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';

/** P(score of a positive > score of a negative), ties ½, by counting every pair. */
function bruteForce(scores: number[], positives: boolean[]): number {
  let wins = 0;
  let pairs = 0;
  for (let i = 0; i < scores.length; i++) {
    if (!positives[i]) continue;
    for (let j = 0; j < scores.length; j++) {
      if (positives[j]) continue;
      pairs++;
      if (scores[i] > scores[j]) wins += 1;
      else if (scores[i] === scores[j]) wins += 0.5;
    }
  }
  return wins / pairs;
}

test('auroc: hand cases', () => {
  assert.equal(auroc([0.1, 0.2, 0.8, 0.9], [false, false, true, true]), 1);
  assert.equal(auroc([0.9, 0.8, 0.2, 0.1], [false, false, true, true]), 0);
  assert.equal(auroc([3, 3, 3, 3, 3], [true, false, true, false, false]), 0.5);
  // One positive above one of two negatives and tied with the other: (1 + ½) / 2.
  assert.equal(auroc([2, 1, 2], [true, false, false]), 0.75);
  assert.equal(auroc(new Float64Array([-Infinity, Infinity]), [false, true]), 1);
});

test('auroc: matches the pairwise count on random inputs, with and without ties', () => {
  const rng = new Rng(7);
  for (let trial = 0; trial < 200; trial++) {
    const n = 2 + rng.int(60);
    const levels = trial % 2 === 0 ? 4 : 0; // half the trials draw from few values: many ties
    const scores = Array.from({ length: n }, () => (levels ? rng.int(levels) : rng.normal()));
    const positives = Array.from({ length: n }, () => rng.uniform() < 0.3);
    positives[0] = true;
    positives[1] = false;
    const expected = bruteForce(scores, positives);
    assert.ok(Math.abs(auroc(scores, positives) - expected) < 1e-12, `trial ${trial}`);
  }
});

test('auroc: rejects inputs without positives or negatives, NaN scores and length mismatches', () => {
  assert.throws(
    () => auroc([1, 2], [false, false]),
    (e) => e instanceof InrunError && /no positives/.test(e.message),
  );
  assert.throws(
    () => auroc([1, 2], [true, true]),
    (e) => e instanceof InrunError && /no negatives/.test(e.message),
  );
  assert.throws(() => auroc([1, Number.NaN], [true, false]), /NaN/);
  assert.throws(() => auroc([1, 2, 3], [true, false]), /3 scores but 2 labels/);
});

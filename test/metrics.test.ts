import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auroc, averagePrecision, precisionAtK } from '../src/metrics.js';
import { InrunError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { aurocByPairs } from './reference/metrics.js';

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
    const expected = aurocByPairs(scores, positives);
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

/** Every ranking of the items that respects the scores (highest first): each block of equal scores in every order. */
function rankingsRespectingScores(scores: number[]): number[][] {
  const distinct = [...new Set(scores)].sort((a, b) => b - a);
  const blocks = distinct.map((value) => scores.flatMap((s, i) => (s === value ? [i] : [])));
  const permutations = (items: number[]): number[][] =>
    items.length <= 1
      ? [items]
      : items.flatMap((item, k) =>
          permutations([...items.slice(0, k), ...items.slice(k + 1)]).map((rest) => [item, ...rest]),
        );
  let rankings: number[][] = [[]];
  for (const block of blocks) {
    const orders = permutations(block);
    rankings = rankings.flatMap((prefix) => orders.map((order) => [...prefix, ...order]));
  }
  return rankings;
}

/** The mean of `metric` over every ranking that respects the scores. */
function averageOverTieOrders(
  scores: number[],
  positives: boolean[],
  metric: (ranking: number[], positives: boolean[]) => number,
): number {
  const rankings = rankingsRespectingScores(scores);
  let sum = 0;
  for (const ranking of rankings) sum += metric(ranking, positives);
  return sum / rankings.length;
}

/** Average precision of one fixed ranking, by definition. */
function averagePrecisionOfRanking(ranking: number[], positives: boolean[]): number {
  let found = 0;
  let sum = 0;
  ranking.forEach((item, r) => {
    if (!positives[item]) return;
    found++;
    sum += found / (r + 1);
  });
  return sum / found;
}

function precisionAtKOfRanking(ranking: number[], positives: boolean[], k: number): number {
  return ranking.slice(0, k).filter((item) => positives[item]).length / k;
}

/** Random small inputs with many ties (few distinct score levels) or none. */
function randomSmallCase(rng: Rng, trial: number): { scores: number[]; positives: boolean[] } {
  const n = 1 + rng.int(7);
  const levels = trial % 3 === 0 ? 0 : 1 + rng.int(3);
  const scores = Array.from({ length: n }, () => (levels ? rng.int(levels) : rng.normal()));
  const positives = Array.from({ length: n }, () => rng.uniform() < 0.4);
  positives[rng.int(n)] = true;
  return { scores, positives };
}

test('averagePrecision: hand cases', () => {
  assert.equal(averagePrecision([0.9, 0.8, 0.1], [true, true, false]), 1);
  // Ranked: +, −, +  →  (1/1 + 2/3) / 2.
  assert.ok(Math.abs(averagePrecision([3, 2, 1], [true, false, true]) - (1 + 2 / 3) / 2) < 1e-15, '+, −, +');
  // One positive tied with one negative at the top: rank 1 or 2 with equal chance → (1 + 1/2) / 2.
  assert.equal(averagePrecision([5, 5, 1], [true, false, false]), 0.75);
  // Only positives: precision 1 whatever the order of the tie.
  assert.equal(averagePrecision([1, 1], [true, true]), 1);
});

test('averagePrecision: equals the mean over every ordering of tied scores (brute force)', () => {
  const rng = new Rng(11);
  for (let trial = 0; trial < 300; trial++) {
    const { scores, positives } = randomSmallCase(rng, trial);
    const expected = averageOverTieOrders(scores, positives, averagePrecisionOfRanking);
    const got = averagePrecision(scores, positives);
    assert.ok(Math.abs(got - expected) < 1e-12, `trial ${trial}: ${got} vs ${expected}`);
  }
});

test('averagePrecision: matches the definition on larger inputs without ties', () => {
  const rng = new Rng(12);
  for (let trial = 0; trial < 50; trial++) {
    const n = 2 + rng.int(200);
    const scores = Array.from({ length: n }, () => rng.normal());
    const positives = Array.from({ length: n }, () => rng.uniform() < 0.2);
    positives[0] = true;
    const ranking = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
    const expected = averagePrecisionOfRanking(ranking, positives);
    assert.ok(
      Math.abs(averagePrecision(Float64Array.from(scores), positives) - expected) < 1e-12,
      `trial ${trial}`,
    );
  }
});

test('precisionAtK: equals the mean over every ordering of tied scores (brute force)', () => {
  const rng = new Rng(13);
  for (let trial = 0; trial < 300; trial++) {
    const { scores, positives } = randomSmallCase(rng, trial);
    for (let k = 1; k <= scores.length; k++) {
      const expected = averageOverTieOrders(scores, positives, (ranking, p) =>
        precisionAtKOfRanking(ranking, p, k),
      );
      const got = precisionAtK(scores, positives, k);
      assert.ok(Math.abs(got - expected) < 1e-12, `trial ${trial}, k ${k}: ${got} vs ${expected}`);
    }
  }
});

test('precisionAtK: hand cases, including a tied block across the boundary', () => {
  assert.equal(precisionAtK([4, 3, 2, 1], [true, false, true, false], 1), 1);
  assert.equal(precisionAtK([4, 3, 2, 1], [true, false, true, false], 2), 0.5);
  // Top score is a negative; the next two tie, one positive: the 2nd place is a positive half the time.
  assert.equal(precisionAtK([9, 5, 5, 0], [false, true, false, true], 2), 0.25);
});

test('averagePrecision and precisionAtK: reject bad inputs with the same messages as auroc', () => {
  for (const [name, metric] of [
    ['averagePrecision', (s: number[], p: boolean[]) => averagePrecision(s, p)],
    ['precisionAtK', (s: number[], p: boolean[]) => precisionAtK(s, p, 1)],
  ] as const) {
    assert.throws(
      () => metric([1, 2], [false, false]),
      (e) => e instanceof InrunError && e.message === `${name}: there are no positives`,
    );
    assert.throws(() => metric([1, Number.NaN], [true, false]), new RegExp(`${name}: score 1 is NaN`));
    assert.throws(() => metric([1, 2, 3], [true, false]), new RegExp(`${name}: 3 scores but 2 labels`));
  }
  for (const k of [0, 4, 1.5, Number.NaN]) {
    assert.throws(
      () => precisionAtK([1, 2, 3], [true, false, false], k),
      (e) => e instanceof InrunError && /k must be an integer from 1 to the 3 scores/.test(e.message),
    );
  }
});

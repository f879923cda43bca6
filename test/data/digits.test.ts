import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DIGIT_PIXELS, digitCounts, loadDigits } from '../../src/data/digits.js';
import { InrunError } from '../../src/util/errors.js';

test('loadDigits: default sizes, interleaved classes, ids and groups', () => {
  const { train, validation, flipped, originalLabels } = loadDigits();
  assert.equal(train.size, 2000);
  assert.equal(validation.size, 500);
  assert.deepEqual(train.example, { tokens: 1, width: DIGIT_PIXELS });
  assert.equal(flipped.length, 2000);
  assert.equal(originalLabels.length, 2000);
  for (let i = 0; i < 30; i++) {
    assert.equal(originalLabels[i], i % 10);
    assert.equal(train.id(i), `digit-${i % 10}-${Math.floor(i / 10)}`);
    assert.equal(validation.id(i), `digit-${i % 10}-${200 + Math.floor(i / 10)}`);
    assert.equal(validation.label(i), i % 10);
  }
  for (let i = 0; i < train.size; i++) assert.equal(train.group(i), String(train.label(i)));
  const { input } = train.batch([0, 1], 'float32');
  let min = Infinity;
  let max = -Infinity;
  for (const v of input.data) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  assert.ok(min >= 0 && max <= 1 && max > 0.5, `pixels in [0, 1], got [${min}, ${max}]`);
});

test('loadDigits: training and validation ids are disjoint', () => {
  const { train, validation } = loadDigits({ trainPerClass: 30, validationPerClass: 20 });
  const ids = new Set<string | number>();
  for (let i = 0; i < train.size; i++) ids.add(train.id(i));
  for (let i = 0; i < validation.size; i++) assert.ok(!ids.has(validation.id(i)), String(validation.id(i)));
  assert.equal(ids.size, 300);
});

test('loadDigits: flips exactly round(fraction · n) labels, each to a different class', () => {
  for (const [fraction, trainPerClass] of [
    [0.1, 200],
    [0.25, 7],
    [0, 10],
    [1, 10],
  ] as const) {
    const { train, flipped, originalLabels } = loadDigits({ flipFraction: fraction, trainPerClass, seed: 3 });
    const n = train.size;
    assert.equal(flipped.filter(Boolean).length, Math.round(fraction * n));
    for (let i = 0; i < n; i++) {
      if (flipped[i]) assert.notEqual(train.label(i), originalLabels[i]);
      else assert.equal(train.label(i), originalLabels[i]);
    }
  }
});

test('loadDigits: deterministic for a seed, different across seeds; validation labels stay clean', () => {
  const a = loadDigits({ seed: 5 });
  const b = loadDigits({ seed: 5 });
  const c = loadDigits({ seed: 6 });
  assert.deepEqual(a.flipped, b.flipped);
  const labels = (d: typeof a) => Array.from({ length: d.train.size }, (_, i) => d.train.label(i));
  assert.deepEqual(labels(a), labels(b));
  assert.notDeepEqual(a.flipped, c.flipped);
  // The new labels are spread over the other classes, not always the same one.
  const shifts = new Set(
    a.flipped.flatMap((f, i) => (f ? [(a.train.label(i) - a.originalLabels[i] + 10) % 10] : [])),
  );
  assert.ok(shifts.size >= 8, `flips use ${shifts.size} of 9 possible shifts`);
  for (let i = 0; i < a.validation.size; i++) assert.equal(a.validation.label(i), i % 10);
});

test('loadDigits: rejects bad options, naming them', () => {
  const available = Math.min(...digitCounts());
  const cases: [object, RegExp][] = [
    [{ trainPerClass: available + 1 }, /trainPerClass/],
    [{ trainPerClass: available, validationPerClass: 1 }, /validationPerClass/],
    [{ trainPerClass: 0 }, /trainPerClass/],
    [{ trainPerClass: 2.5 }, /trainPerClass/],
    [{ validationPerClass: -1 }, /validationPerClass/],
    [{ flipFraction: 1.5 }, /flipFraction/],
    [{ flipFraction: Number.NaN }, /flipFraction/],
    [{ seed: 0.5 }, /seed/],
    [{ trainPerclass: 10 }, /unknown option "trainPerclass"/],
  ];
  for (const [options, message] of cases) {
    assert.throws(
      () => loadDigits(options),
      (e) => e instanceof InrunError && message.test(e.message),
      JSON.stringify(options),
    );
  }
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type ClassificationTable,
  FAULT_KINDS,
  type FaultSpec,
  injectFaults,
  parseFaultSpec,
} from '../../src/evaluate/faults.js';
import { InrunError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

/** Features with different scales per column (the last one constant), labels in 0..classes−1. */
function cleanTable(n: number, classes: number, seed: number): ClassificationTable {
  const rng = new Rng(seed);
  const scales = [1, 10, 0.1];
  const d = scales.length + 1;
  const features = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    scales.forEach((scale, j) => {
      features[i * d + j] = 3 + scale * rng.normal();
    });
    features[i * d + d - 1] = 7;
  }
  return { features, labels: Int32Array.from({ length: n }, () => rng.int(classes)), n, d, classes };
}

function columnStatistics(table: ClassificationTable) {
  const { features, n, d } = table;
  return Array.from({ length: d }, (_, j) => {
    const column = Array.from({ length: n }, (_, i) => features[i * d + j]);
    const mean = column.reduce((a, b) => a + b, 0) / n;
    const std = Math.sqrt(column.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
    return { mean, std, min: Math.min(...column), max: Math.max(...column) };
  });
}

/** Checks that `samples` look like N(0, σ²): mean and std within `z` standard errors. */
function assertNormal(samples: number[], sigma: number, what: string, z = 4) {
  const count = samples.length;
  const mean = samples.reduce((a, b) => a + b, 0) / count;
  const std = Math.sqrt(samples.reduce((a, b) => a + (b - mean) ** 2, 0) / (count - 1));
  assert.ok(Math.abs(mean) < (z * sigma) / Math.sqrt(count), `${what}: mean ${mean}`);
  assert.ok(Math.abs(std - sigma) < (z * sigma) / Math.sqrt(2 * count), `${what}: std ${std} vs ${sigma}`);
}

const ALL_KINDS: FaultSpec[] = [
  { kind: 'label-flip', rate: 0.1 },
  { kind: 'feature-noise', rate: 0.05 },
  { kind: 'duplicate', rate: 0.15 },
  { kind: 'near-duplicate', rate: 0.07 },
  { kind: 'out-of-distribution', rate: 0.03 },
];

test('injectFaults: round(rate·n) rows per kind, one kind per row, clean rows and the input untouched', () => {
  const table = cleanTable(200, 4, 1);
  const before = { features: table.features.slice(), labels: table.labels.slice() };
  const { table: faulted, faults, sourceRow } = injectFaults(table, ALL_KINDS, 42);
  for (const { kind, rate } of ALL_KINDS)
    assert.equal(faults.filter((f) => f === kind).length, Math.round(rate * 200), kind);
  assert.equal(faults.filter((f) => f === null).length, 200 - 20 - 10 - 30 - 14 - 6);
  assert.deepEqual(table.features, before.features);
  assert.deepEqual(table.labels, before.labels);
  for (let i = 0; i < 200; i++) {
    if (faults[i] !== null) continue;
    assert.deepEqual(faulted.features.subarray(i * 4, i * 4 + 4), table.features.subarray(i * 4, i * 4 + 4));
    assert.equal(faulted.labels[i], table.labels[i]);
    assert.equal(sourceRow[i], null);
  }
  // 0.35·90 is 31.4999… in floating point; the count is still the 32 that round(31.5) gives.
  const rounding = injectFaults(cleanTable(90, 2, 2), [{ kind: 'label-flip', rate: 0.35 }], 1);
  assert.equal(rounding.faults.filter((f) => f !== null).length, 32);
});

test('injectFaults: a seed reproduces the faults, another seed changes them, the order of the spec does not matter', () => {
  const table = cleanTable(100, 3, 3);
  const a = injectFaults(table, ALL_KINDS, 7);
  const b = injectFaults(table, [...ALL_KINDS].reverse(), 7);
  const c = injectFaults(table, ALL_KINDS, 8);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.faults, c.faults);
  assert.notDeepEqual(a.table.features, c.table.features);
});

test('injectFaults: flipped labels change to each other class about equally often; features stay', () => {
  const table = cleanTable(4000, 3, 4);
  const { table: faulted, faults } = injectFaults(table, [{ kind: 'label-flip', rate: 0.5 }], 5);
  const offsets = [0, 0, 0];
  for (let i = 0; i < table.n; i++) {
    if (faults[i] !== 'label-flip') continue;
    assert.notEqual(faulted.labels[i], table.labels[i]);
    assert.ok(faulted.labels[i] >= 0 && faulted.labels[i] < 3, `row ${i}: label ${faulted.labels[i]}`);
    offsets[(faulted.labels[i] - table.labels[i] + 3) % 3]++;
    assert.deepEqual(faulted.features.subarray(i * 4, i * 4 + 4), table.features.subarray(i * 4, i * 4 + 4));
  }
  // Each of the 2000 flips picks offset 1 or 2 with probability ½: within 4 standard errors (√500).
  assert.equal(offsets[0], 0);
  assert.ok(Math.abs(offsets[1] - 1000) < 4 * Math.sqrt(500), `offsets ${offsets}`);
});

test('injectFaults: duplicates copy a clean row exactly; near-duplicates add noise of 0.05 × the feature std', () => {
  const table = cleanTable(6000, 3, 6);
  const stats = columnStatistics(table);
  const {
    table: faulted,
    faults,
    sourceRow,
  } = injectFaults(
    table,
    [
      { kind: 'duplicate', rate: 0.2 },
      { kind: 'near-duplicate', rate: 0.4 },
    ],
    9,
  );
  const d = table.d;
  const nearNoise: number[][] = Array.from({ length: d }, () => []);
  for (let i = 0; i < table.n; i++) {
    const kind = faults[i];
    if (kind !== 'duplicate' && kind !== 'near-duplicate') {
      assert.equal(sourceRow[i], null);
      continue;
    }
    const source = sourceRow[i]!;
    assert.equal(faults[source], null, 'the source is a clean row');
    assert.equal(faulted.labels[i], table.labels[source]);
    for (let j = 0; j < d; j++) {
      const difference = faulted.features[i * d + j] - table.features[source * d + j];
      if (kind === 'duplicate') assert.equal(difference, 0);
      else nearNoise[j].push(difference);
    }
  }
  for (let j = 0; j < d - 1; j++) assertNormal(nearNoise[j], 0.05 * stats[j].std, `feature ${j}`);
  assert.ok(
    nearNoise[d - 1].every((v) => v === 0),
    'a constant feature gets no noise',
  );
});

test('injectFaults: feature noise has the std of each feature; constant features and labels stay', () => {
  const table = cleanTable(6000, 2, 7);
  const stats = columnStatistics(table);
  const { table: faulted, faults } = injectFaults(table, [{ kind: 'feature-noise', rate: 0.5 }], 11);
  const d = table.d;
  const noise: number[][] = Array.from({ length: d }, () => []);
  for (let i = 0; i < table.n; i++) {
    if (faults[i] !== 'feature-noise') continue;
    assert.equal(faulted.labels[i], table.labels[i]);
    for (let j = 0; j < d; j++) noise[j].push(faulted.features[i * d + j] - table.features[i * d + j]);
  }
  for (let j = 0; j < d - 1; j++) assertNormal(noise[j], stats[j].std, `feature ${j}`);
  assert.ok(
    noise[d - 1].every((v) => v === 0),
    'a constant feature gets no noise',
  );
});

test('injectFaults: out-of-distribution features are uniform on [min − r, max + r]; labels stay', () => {
  const table = cleanTable(6000, 2, 8);
  const stats = columnStatistics(table);
  const { table: faulted, faults } = injectFaults(table, [{ kind: 'out-of-distribution', rate: 0.5 }], 12);
  const d = table.d;
  for (let j = 0; j < d - 1; j++) {
    const { min, max } = stats[j];
    const range = max - min;
    // Position within the interval, scaled to [0, 1): uniform, so mean ½ and variance 1/12.
    const u: number[] = [];
    for (let i = 0; i < table.n; i++) {
      if (faults[i] !== 'out-of-distribution') continue;
      assert.equal(faulted.labels[i], table.labels[i]);
      u.push((faulted.features[i * d + j] - (min - range)) / (3 * range));
    }
    assert.ok(
      u.every((v) => v >= 0 && v < 1),
      `feature ${j} leaves its interval`,
    );
    const mean = u.reduce((a, b) => a + b, 0) / u.length;
    const variance = u.reduce((a, b) => a + (b - mean) ** 2, 0) / u.length;
    assert.ok(Math.abs(mean - 0.5) < 4 * Math.sqrt(1 / 12 / u.length), `mean ${mean}`);
    // Var of (u − ½)² is 1/80 − 1/144 = 1/180.
    assert.ok(Math.abs(variance - 1 / 12) < 4 * Math.sqrt(1 / 180 / u.length), `variance ${variance}`);
  }
  // A constant feature has range 0: it stays at its value.
  for (let i = 0; i < table.n; i++) if (faults[i]) assert.equal(faulted.features[i * d + d - 1], 7);
});

test('parseFaultSpec reads kind:rate pairs', () => {
  assert.deepEqual(parseFaultSpec('label-flip:0.1,duplicate:0.05'), [
    { kind: 'label-flip', rate: 0.1 },
    { kind: 'duplicate', rate: 0.05 },
  ]);
  assert.deepEqual(parseFaultSpec(' near-duplicate : .2 , out-of-distribution:5e-2 '), [
    { kind: 'near-duplicate', rate: 0.2 },
    { kind: 'out-of-distribution', rate: 0.05 },
  ]);
  assert.deepEqual(
    parseFaultSpec(FAULT_KINDS.map((kind) => `${kind}:0.1`).join(',')).map((s) => s.kind),
    FAULT_KINDS,
  );
});

test('parseFaultSpec and injectFaults name what is wrong', () => {
  const known = FAULT_KINDS.join(', ');
  const table = cleanTable(20, 3, 1);
  const cases: [() => unknown, string][] = [
    [
      () => parseFaultSpec(''),
      'fault spec is empty; give kind:rate pairs such as label-flip:0.1,duplicate:0.05',
    ],
    [
      () => parseFaultSpec('label-flip'),
      `fault spec entry "label-flip" is not kind:rate (e.g. label-flip:0.1,duplicate:0.05; kinds: ${known})`,
    ],
    [() => parseFaultSpec('label-flip:a'), 'fault rate "a" of label-flip is not a number'],
    [() => parseFaultSpec('label-flip:'), 'fault rate "" of label-flip is not a number'],
    [() => parseFaultSpec('typo:0.1'), `unknown fault kind "typo" (known: ${known})`],
    [
      () => parseFaultSpec('label-flip:0.6'),
      'fault rate of label-flip must be a number in (0, 0.5], got 0.6',
    ],
    [() => parseFaultSpec('duplicate:0'), 'fault rate of duplicate must be a number in (0, 0.5], got 0'],
    [
      () => parseFaultSpec('duplicate:0.1,duplicate:0.2'),
      'fault kind duplicate is given twice; give each kind once',
    ],
    [
      () => parseFaultSpec('label-flip:0.5,duplicate:0.3,feature-noise:0.2'),
      'fault rates add up to 1; at most 0.9 of the rows can be faulted',
    ],
    [
      () =>
        injectFaults(
          { ...table, classes: 1, labels: new Int32Array(20) },
          [{ kind: 'label-flip', rate: 0.1 }],
          1,
        ),
      'label-flip needs at least 2 classes, the table has 1',
    ],
    [
      () => injectFaults(table, [{ kind: 'near-duplicate', rate: Number.NaN }], 1),
      'fault rate of near-duplicate must be a number in (0, 0.5], got NaN',
    ],
    [() => injectFaults(table, [], 1.5), 'fault seed must be an integer, got 1.5'],
    [
      () => injectFaults({ ...table, labels: Int32Array.from(table.labels, () => 3) }, [], 1),
      'fault injection: row 0 has label 3, outside the classes 0..2',
    ],
    [
      () => injectFaults({ ...table, n: 21 }, [], 1),
      'fault injection: 80 feature values, expected n·d = 21·4 = 84',
    ],
    [
      () =>
        injectFaults(
          cleanTable(2, 2, 1),
          [
            { kind: 'label-flip', rate: 0.5 },
            { kind: 'duplicate', rate: 0.4 },
          ],
          1,
        ),
      'duplicates need a clean row to copy, but the fault rates fault all 2 rows',
    ],
    [
      () =>
        injectFaults(
          cleanTable(2, 2, 1),
          [
            { kind: 'label-flip', rate: 0.3 },
            { kind: 'feature-noise', rate: 0.3 },
            { kind: 'out-of-distribution', rate: 0.3 },
          ],
          1,
        ),
      'the fault rates ask for 3 faulted rows but the table has only 2',
    ],
  ];
  for (const [call, message] of cases)
    assert.throws(call, (e) => e instanceof InrunError && e.message === message, message);
});

// loadTrainingData and tableInputs on real-looking tables: missing-value policy per file, class
// names (inferred and pinned), standardization fitted on the training split, the summary line
// and the manifest's data section.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseTrainConfig } from '../../src/run/config.js';
import { listNames, loadTrainingData, tableInputs } from '../../src/run/data.js';
import { InrunError } from '../../src/util/errors.js';
import { tempDir, writeFiles } from '../cli/fixtures/train-data.js';
import { penguinRows, penguinsCsv } from './fixtures/penguins.js';

async function load(files: Record<string, string>, config: Record<string, unknown>) {
  const dir = writeFiles(tempDir('inrun-run-data-'), files);
  const value = structuredClone(config);
  const parsed = parseTrainConfig({ value, file: join(dir, 'run.yaml'), flagPaths: new Map() });
  return { dir, data: await loadTrainingData(parsed), config: parsed };
}

async function rejects(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof InrunError, String(error));
    assert.match(error.message, message);
    return true;
  });
}

test('penguins: drop, names, standardization; summary and manifest', async () => {
  const rows = penguinRows(60);
  const { data } = await load(
    { 'p.csv': penguinsCsv(rows) },
    {
      data: { train: 'p.csv', validationSplit: 0.25, missing: 'drop', standardize: true },
      columns: { label: 'species' },
    },
  );
  // Rows 3 (NA) and 7 (empty mass) go before the split: 58 rows, 15 held out.
  assert.equal(data.train.dataset.size + data.validation.dataset.size, 58);
  assert.equal(data.validation.dataset.size, 15);
  assert.deepEqual(data.dropped, { train: 2, validation: null });
  assert.ok(!data.train.ids.includes('3') && !data.validation.ids.includes('7'));
  assert.deepEqual(data.features, [
    'bill_length_mm',
    'bill_depth_mm',
    'flipper_length_mm',
    'body_mass_g',
    'year',
  ]);
  assert.deepEqual(data.ignoredColumns, ['island', 'sex']);
  assert.deepEqual(data.classNames, ['Adelie', 'Chinstrap', 'Gentoo']);
  assert.equal(data.classes, 3);
  // Labels follow the names: row i is species i % 3.
  data.train.ids.forEach((id, i) => {
    assert.equal(data.train.dataset.label(i), Number(id) % 3);
  });
  // Standardization by hand over the training split only.
  const s = data.standardization!;
  data.features.forEach((f, k) => {
    const xs = data.train.ids.map((id) => Number(rows[Number(id)][f as keyof (typeof rows)[0]]));
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const std = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length);
    assert.ok(Math.abs(s.mean[k] - mean) <= 1e-12 * Math.abs(mean), f);
    assert.ok(Math.abs(s.std[k] - std) <= 1e-12 * std, f);
    // The validation rows use the training statistics.
    const vid = Number(data.validation.ids[0]);
    const vx = data.validation.dataset.batch([0], 'float64').input.data[k];
    assert.ok(Math.abs(vx - (Number(rows[vid][f as keyof (typeof rows)[0]]) - mean) / std) < 1e-9, f);
  });
  const inputs = tableInputs(data);
  assert.match(
    inputs.summary,
    /^data: 43 training examples, 15 validation examples; 5 features \(bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g, year\), standardized; 3 classes \(Adelie, Chinstrap, Gentoo\); 2 rows with missing cells dropped \([^)]*p\.csv: 2\); columns not used: island, sex$/,
  );
  assert.deepEqual(inputs.manifestData.classNames, ['Adelie', 'Chinstrap', 'Gentoo']);
  assert.deepEqual(inputs.manifestData.droppedRows, { train: 2, validation: null });
  assert.deepEqual(inputs.manifestData.standardization, s);
});

test('missing cells: error by default, naming file, line and column; drop counts each file', async () => {
  const train = 'id,x,label\na,1,0\nb,,1\nc,3,0\nd,4,1\n';
  const val = 'id,x,label\nv1,1,0\nv2,NA,1\nv3,2,\nv4,3,1\n';
  await rejects(
    load(
      { 't.csv': train, 'v.csv': val },
      { data: { train: 't.csv', validation: 'v.csv' }, columns: { id: 'id' } },
    ),
    /t\.csv: line 3, column "x": empty cell, expected a number; set data\.missing: drop/,
  );
  const { data } = await load(
    { 't.csv': train, 'v.csv': val },
    { data: { train: 't.csv', validation: 'v.csv', missing: 'drop' }, columns: { id: 'id' } },
  );
  assert.deepEqual(data.train.ids, ['a', 'c', 'd']);
  assert.deepEqual(data.validation.ids, ['v1', 'v4']);
  assert.deepEqual(data.dropped, { train: 1, validation: 2 });
  assert.match(
    tableInputs(data).summary,
    /; 3 rows with missing cells dropped \([^)]*t\.csv: 1, [^)]*v\.csv: 2\)$/,
  );
  // Without drops, the manifest still says the policy dropped nothing; with error, it says nothing.
  const clean = await load(
    { 't.csv': 'x,label\n1,0\n2,1\n', 'v.csv': 'x,label\n1,0\n' },
    { data: { train: 't.csv', validation: 'v.csv', missing: 'drop' } },
  );
  assert.deepEqual(tableInputs(clean.data).manifestData.droppedRows, { train: 0, validation: 0 });
  assert.doesNotMatch(tableInputs(clean.data).summary, /dropped/);
  const strict = await load(
    { 't.csv': 'x,label\n1,0\n2,1\n', 'v.csv': 'x,label\n1,0\n' },
    { data: { train: 't.csv', validation: 'v.csv' } },
  );
  assert.equal(tableInputs(strict.data).manifestData.droppedRows, undefined);
  assert.equal(tableInputs(strict.data).manifestData.classNames, undefined);
  assert.equal(tableInputs(strict.data).manifestData.standardization, undefined);
});

test('class names pinned by config keep their indices when the training data lack a class', async () => {
  const { data } = await load(
    { 't.csv': 'x,label\n1,Gentoo\n2,Adelie\n3,Gentoo\n', 'v.csv': 'x,label\n1,Adelie\n' },
    {
      data: { train: 't.csv', validation: 'v.csv' },
      classNames: ['Adelie', 'Chinstrap', 'Gentoo'],
    },
  );
  assert.equal(data.classes, 3);
  assert.deepEqual(
    [0, 1, 2].map((i) => data.train.dataset.label(i)),
    [2, 0, 2],
  );
  // Inferred, the same data would give two classes with Gentoo = 1.
  const inferred = await load(
    { 't.csv': 'x,label\n1,Gentoo\n2,Adelie\n3,Gentoo\n', 'v.csv': 'x,label\n1,Adelie\n' },
    { data: { train: 't.csv', validation: 'v.csv' } },
  );
  assert.deepEqual(inferred.data.classNames, ['Adelie', 'Gentoo']);
  assert.equal(inferred.data.train.dataset.label(0), 1);
  await rejects(
    load(
      { 't.csv': 'x,label\n1,Gentoo\n2,Adelie\n', 'v.csv': 'x,label\n1,Adelie\n' },
      { data: { train: 't.csv', validation: 'v.csv' }, classes: 3 },
    ),
    /classes is 3, but the labels are 2 class names \(Adelie, Gentoo\); pin all 3 with classNames, or drop classes/,
  );
  // A validation label the names do not know is reported in the validation file.
  await rejects(
    load(
      { 't.csv': 'x,label\n1,Gentoo\n2,Adelie\n', 'v.csv': 'x,label\n1,Emperor\n' },
      { data: { train: 't.csv', validation: 'v.csv' }, classNames: ['Adelie', 'Gentoo'] },
    ),
    /v\.csv: line 2, column "label": label "Emperor" is not one of classNames \(Adelie, Gentoo\)/,
  );
  // Binary on two names.
  const binary = await load(
    { 't.csv': 'x,sex\n1,male\n2,female\n', 'v.csv': 'x,sex\n1,female\n' },
    { data: { train: 't.csv', validation: 'v.csv' }, columns: { label: 'sex' }, task: 'binary' },
  );
  assert.deepEqual(binary.data.classNames, ['female', 'male']);
  assert.equal(binary.data.classes, null);
  assert.match(tableInputs(binary.data).summary, /; labels female = 0, male = 1$/);
});

test('config: classNames, data.missing and data.standardize are checked', () => {
  const base = { data: { train: 't.csv', validationSplit: 0.2 } };
  const parse = (extra: Record<string, unknown>) =>
    parseTrainConfig({ value: { ...base, ...extra }, flagPaths: new Map() });
  assert.equal(parse({}).data.missing, 'error');
  assert.equal(parse({}).data.standardize, false);
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ classNames: ['a', 'a'] }, /classNames\.1: "a" is listed twice/],
    [{ classNames: ['a', '3'] }, /classNames\.1: "3" reads as a number; class names are text/],
    [{ classNames: ['a', ' b'] }, /classNames\.1: " b" has leading or trailing blanks/],
    [{ classNames: ['a', 'b', 'c'], task: 'binary' }, /classNames: a binary task has 2 class names/],
    [{ classNames: ['a', 'true'], task: 'binary' }, /classNames\.1: "true" is a binary label value/],
    [{ classNames: ['a', 'b'], task: 'regression' }, /classNames applies to tasks classification and binary/],
    [
      { classNames: ['a', 'b'], classes: 3 },
      /classes: classes \(3\) differs from the number of classNames \(2\)/,
    ],
    [{ classNames: ['a'] }, /classNames: needs at least 2 entries/],
    [{ data: { ...base.data, missing: 'skip' } }, /data\.missing: expected "error" or "drop"/],
    [
      { data: { ...base.data, missing: 'drop' }, model: { kind: 'gpt' } },
      /data\.missing applies to tabular models/,
    ],
    [
      { data: { ...base.data, standardize: true }, model: { kind: 'gpt' } },
      /data\.standardize applies to tabular models/,
    ],
  ];
  for (const [extra, message] of cases)
    assert.throws(
      () => parse(extra),
      (e: unknown) => e instanceof InrunError && message.test(e.message),
      `${JSON.stringify(extra)} → ${message}`,
    );
});

test('the summary names the features, abbreviating long lists', async () => {
  const names = Array.from({ length: 20 }, (_, k) => `f${k + 1}`);
  assert.equal(listNames(names), 'f1, f2, f3, f4, f5, f6, …, f18, f19, f20');
  assert.equal(listNames(names.slice(0, 12)), names.slice(0, 12).join(', '));
  const header = ['id', ...names, 'label'].join(',');
  const line = (i: number) => [i, ...names.map((_, k) => i + k), i % 2].join(',');
  const { data } = await load(
    { 't.csv': `${header}\n${line(1)}\n${line(2)}\n${line(3)}\n` },
    { data: { train: 't.csv', validationSplit: 0.34 } },
  );
  // The unconfigured "id" column is not a feature; it is listed as not used.
  assert.match(
    tableInputs(data).summary,
    /; 20 features \(f1, f2, f3, f4, f5, f6, …, f18, f19, f20\); 2 classes; columns not used: id$/,
  );
});

test('a column named id never becomes a feature without columns.id', async () => {
  const dir = tempDir('inrun-run-data-');
  writeFileSync(join(dir, 't.csv'), 'id,x,label\n1,0.5,0\n2,1.5,1\n3,0.1,0\n4,2,1\n');
  const config = parseTrainConfig({
    value: { data: { train: 't.csv', validation: 't.csv' } },
    file: join(dir, 'run.yaml'),
    flagPaths: new Map(),
  });
  const data = await loadTrainingData(config);
  assert.deepEqual(data.features, ['x']);
  assert.deepEqual(data.ignoredColumns, ['id']);
});

// The held-out test set of `inrun train` (data.test / data.testSplit, testEvery): config errors,
// the split (disjoint, reproducible, the validation rows kept), the evaluation in the trace
// checked against the saved final weights, exact resume, text runs, and old run directories.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadRun, parseTraceJsonl, RUN_FILES } from '../../src/io/run-dir.js';
import { loadModelTensors } from '../../src/io/safetensors.js';
import { traceToCsv } from '../../src/io/values-writers.js';
import { IGNORE_INDEX } from '../../src/losses/softmax-cross-entropy.js';
import { mean } from '../../src/models/sequential.js';
import { buildModel, buildTextModel } from '../../src/run/build.js';
import { applyOverrides, parseTrainConfig, type RawConfig, type TrainConfig } from '../../src/run/config.js';
import { loadTrainingData, PART, splitParts, tableInputs } from '../../src/run/data.js';
import { estimateRunMemory } from '../../src/run/memory.js';
import { isTestStep, testInterval } from '../../src/run/test-set.js';
import { loadTextTrainingData } from '../../src/run/text-data.js';
import { trainRun } from '../../src/run/train-run.js';
import { InrunError } from '../../src/util/errors.js';
import { blobs, runCli, tempDir, toCsv, writeFiles } from '../cli/fixtures/train-data.js';

const rows = blobs(120, { seed: 5, flip: 0.1 });

function raw(value: Record<string, unknown>): RawConfig {
  return { value: structuredClone(value), flagPaths: new Map() };
}

function parse(
  dir: string,
  extra: Record<string, unknown> = {},
  data: Record<string, unknown> = {},
): TrainConfig {
  return parseTrainConfig(
    raw({
      data: { train: join(dir, 'train.csv'), validationSplit: 0.2, testSplit: 0.25, ...data },
      columns: { id: 'id', group: 'src' },
      model: { kind: 'mlp', hidden: [8] },
      optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
      batchSize: 8,
      epochs: 3,
      out: join(dir, 'run'),
      ...extra,
    }),
  );
}

function configError(value: Record<string, unknown>, message: RegExp): void {
  assert.throws(
    () => parseTrainConfig(raw(value)),
    (error: unknown) => error instanceof InrunError && message.test(error.message),
  );
}

test('config: test file or split, not both; fractions in (0, 1); testEvery an integer ≥ 1 with a test set', () => {
  const data = { train: 't.csv', validationSplit: 0.2 };
  configError(
    { data: { ...data, test: 'x.csv', testSplit: 0.2 } },
    /give data\.test or data\.testSplit, not both/,
  );
  for (const bad of [0, 1, 1.5, -0.1])
    configError({ data: { ...data, testSplit: bad } }, /data\.testSplit: must be [<>] [01], got number/);
  configError(
    { data: { ...data, testSplit: 'a lot' } },
    /data\.testSplit: expected a number, got the string "a lot"/,
  );
  configError({ data: { ...data, testSplit: 0.2 }, testEvery: 0 }, /testEvery: must be ≥ 1, got number 0/);
  configError({ data: { ...data, testSplit: 0.2 }, testEvery: 2.5 }, /testEvery: expected an integer/);
  configError(
    { data, testEvery: 5 },
    /testEvery applies only with a test set \(data\.test or data\.testSplit\)/,
  );
  // Optional: a config without a test set parses as before, with no test fields filled in.
  const plain = parseTrainConfig(raw({ data }));
  assert.equal(plain.data.test, undefined);
  assert.equal(plain.data.testSplit, undefined);
  assert.equal(plain.testEvery, undefined);
  // Relative test paths resolve like the other paths.
  const withFile = parseTrainConfig({
    ...raw({ data: { ...data, test: 'sub/test.csv' } }),
    file: '/cfg/run.yaml',
  });
  assert.equal(withFile.data.test, '/cfg/sub/test.csv');
});

test('config: --test and --test-split exclude each other; a flag replaces its alternative from the file', () => {
  assert.throws(
    () =>
      applyOverrides(raw({ data: { train: 't.csv' } }), [
        { path: 'data.test', value: 'x.csv', flag: '--test' },
        { path: 'data.testSplit', value: 0.2, flag: '--test-split' },
      ]),
    /--test and --test-split exclude each other \(data\.test or data\.testSplit\)/,
  );
  const r = raw({ data: { train: 't.csv', validationSplit: 0.2, testSplit: 0.3 } });
  applyOverrides(r, [{ path: 'data.test', value: 'x.csv', flag: '--test' }]);
  assert.deepEqual(r.value.data, { train: 't.csv', validationSplit: 0.2, test: 'x.csv' });
});

test('testEvery: about 20 evaluations by default, always the last step', () => {
  assert.equal(testInterval({}, 100), 5);
  assert.equal(testInterval({}, 101), 6);
  assert.equal(testInterval({}, 7), 1);
  assert.equal(testInterval({ testEvery: 3 }, 100), 3);
  const due = (every: number, total: number) =>
    Array.from({ length: total }, (_, s) => s).filter((s) => isTestStep(s, every, total));
  assert.deepEqual(due(3, 10), [2, 5, 8, 9]);
  assert.deepEqual(due(5, 10), [4, 9]);
  assert.equal(due(testInterval({}, 1000), 1000).length, 20);
});

test('split: validation first, then test, the rest training; disjoint, reproducible, validation rows kept', async () => {
  const dir = writeFiles(tempDir('inrun-testset-'), { 'train.csv': toCsv(rows) });
  const both = await loadTrainingData(parse(dir));
  const again = await loadTrainingData(parse(dir));
  const onlyValidation = await loadTrainingData(parse(dir, {}, { testSplit: undefined }));
  const ids = (part: { ids: string[] } | null) => part!.ids.map(String);
  const [train, validation, testIds] = [ids(both.train), ids(both.validation), ids(both.test)];
  assert.equal(validation.length, 24);
  assert.equal(testIds.length, 30);
  assert.equal(train.length, 66);
  assert.equal(
    new Set([...train, ...validation, ...testIds]).size,
    120,
    'disjoint, and every row in one part',
  );
  assert.deepEqual([ids(again.train), ids(again.validation), ids(again.test)], [train, validation, testIds]);
  assert.deepEqual(
    ids(onlyValidation.validation),
    validation,
    'adding a test split keeps the validation rows',
  );
  assert.deepEqual(
    ids(onlyValidation.train).filter((id) => !testIds.includes(id)),
    train,
    'it only moves rows from training to test, in file order',
  );
  // Test rows keep the file's order and labels; the manifest records the counts (no file: a split).
  assert.deepEqual(
    testIds,
    rows.map((r) => r.id).filter((id) => testIds.includes(id)),
  );
  const inputs = tableInputs(both);
  assert.equal(inputs.manifestData.test, null);
  assert.equal(inputs.manifestData.testExamples, 30);
  assert.match(inputs.summary, /66 training examples, 24 validation examples, 30 test examples/);
  // Without a test set the manifest's data section has no test keys (as before test sets).
  assert.ok(!('test' in tableInputs(onlyValidation).manifestData));
  // Another seed draws other rows.
  const other = await loadTrainingData(parse(dir, { seed: 9 }));
  assert.notDeepEqual(ids(other.test), testIds);

  // splitParts alone: the fractions of n, and clear errors when a part would be empty.
  const parts = splitParts(
    10,
    0,
    { validation: 0.2, test: 0.3 },
    { count: '10 rows', where: 't.csv', unit: 'examples' },
  );
  assert.deepEqual(
    [PART.train, PART.validation, PART.test].map((p) => parts.filter((x) => x === p).length),
    [5, 2, 3],
  );
  assert.throws(
    () =>
      splitParts(
        10,
        0,
        { validation: 0.5, test: 0.5 },
        { count: '10 rows', where: 't.csv', unit: 'examples' },
      ),
    /data\.validationSplit 0\.5 and data\.testSplit 0\.5 of 10 rows leave no training examples \(t\.csv\)/,
  );
  assert.throws(
    () => splitParts(10, 0, { test: 0.01 }, { count: '10 rows', where: 't.csv', unit: 'examples' }),
    /data\.testSplit 0\.01 of 10 rows leaves no test examples \(t\.csv\)/,
  );
});

test('test file: checked like validation — columns, classes, standardization from training only', async () => {
  const testRows = blobs(30, { seed: 8, prefix: 't' });
  const dir = writeFiles(tempDir('inrun-testset-'), {
    'train.csv': toCsv(rows),
    'test.csv': toCsv(testRows),
    'no-x2.csv': toCsv(testRows).replace(/^id,x1,x2,/, 'id,x1,y2,'),
    'class7.csv': toCsv(testRows).replace(/,0\n/, ',7\n'),
  });
  const file = (name: string) => ({ testSplit: undefined, test: join(dir, name) });
  const data = await loadTrainingData(parse(dir, {}, { ...file('test.csv'), standardize: true }));
  assert.equal(data.test!.dataset.size, 30);
  assert.deepEqual(
    data.test!.ids,
    testRows.map((r) => r.id),
  );
  assert.equal(data.train.dataset.size + data.validation.dataset.size, 120, 'no row of data.train is taken');
  // Standardized with the training split's statistics, not the test set's.
  const s = data.standardization!;
  const x = data.test!.dataset.batch([0], 'float64').input.data;
  testRows[0].x.forEach((v, k) => {
    assert.ok(Math.abs(x[k] - (v - s.mean[k]) / s.std[k]) < 1e-12);
  });
  const inputs = tableInputs(data);
  assert.equal(inputs.manifestData.test?.path, join(dir, 'test.csv'));
  assert.equal(inputs.manifestData.test?.rows, 30);

  const rejects = async (name: string, message: RegExp) =>
    assert.rejects(loadTrainingData(parse(dir, {}, file(name))), (error: unknown) => {
      assert.ok(error instanceof InrunError, String(error));
      assert.match(error.message, message);
      return true;
    });
  await rejects('no-x2.csv', /no-x2\.csv.*x2/);
  await rejects(
    'class7.csv',
    /class7\.csv: line \d+, column "label": class 7 is out of range \(3 classes: 0 to 2\)/,
  );
  await rejects('train.csv', /data\.test .*train\.csv: has the same content as the training file/);
});

/** The model of a finished run at its saved final weights, and its test set. */
async function finalModel(runDir: string) {
  const run = await loadRun(runDir);
  const config = parseTrainConfig(raw(run.config));
  const data = await loadTrainingData(config);
  const inputs = tableInputs(data);
  const model = buildModel(config, inputs);
  loadModelTensors(model, run.weights.final, 'weights.final.safetensors');
  return { run, model, testSet: inputs.test! };
}

test('trainRun: the last row’s test loss and accuracy are those of the saved final weights', async () => {
  const dir = writeFiles(tempDir('inrun-testset-'), { 'train.csv': toCsv(rows) });
  const result = await trainRun({ config: parse(dir, { testEvery: 4 }) });
  assert.equal(result.status, 'complete');
  const { run, model, testSet } = await finalModel(result.runDir);
  const all = Array.from({ length: testSet.size }, (_, i) => i);
  const { input, targets } = testSet.batch(all, model.dtype);
  const pass = model.forward(input, targets);
  const expectedLoss = mean(pass.losses);
  const logits = pass.lossTape.output.data;
  let hits = 0;
  for (let i = 0; i < input.n; i++) {
    const row = Array.from(logits.subarray(3 * i, 3 * i + 3));
    if (row.indexOf(Math.max(...row)) === targets[i]) hits++;
  }
  const last = run.trace.at(-1)!;
  assert.equal(last.step, result.totalSteps - 1);
  assert.equal(last.testLoss, expectedLoss);
  assert.equal(last.testAccuracy, hits / input.n);
  assert.equal(result.summary?.finalTestLoss, expectedLoss);
  assert.equal(result.summary?.finalTestAccuracy, hits / input.n);
  assert.equal(result.summary?.testExamples, 30);
  // Evaluated after every 4th step and the last; null elsewhere, in both trace files.
  const evaluated = run.trace.filter((r) => r.testLoss !== null).map((r) => r.step);
  assert.deepEqual(
    evaluated,
    run.trace.map((r) => r.step).filter((s) => (s + 1) % 4 === 0 || s === result.totalSteps - 1),
  );
  for (const r of run.trace) assert.equal(r.testAccuracy === null, r.testLoss === null);
  const csv = readFileSync(join(result.runDir, RUN_FILES.traceCsv), 'utf8');
  assert.match(
    csv.split('\n')[0],
    /,linearisationGap,taylorCorrelation,expansionBroken,testLoss,testAccuracy$/,
  );
  assert.equal(csv, traceToCsv(run.trace), 'trace.csv carries the same test values as trace.jsonl');
  // The manifest records the test set like the other inputs.
  assert.equal(run.manifest.data.test, null);
  assert.equal(run.manifest.data.testExamples, 30);
});

test('trainRun: an interrupted run with a test set resumes to the same trace as an uninterrupted one', async () => {
  const dir = writeFiles(tempDir('inrun-testset-'), { 'train.csv': toCsv(rows) });
  // Checkpoints every 3 steps, evaluations every 2: a resume lands between evaluations and on one.
  const extra = { testEvery: 2, checkpointEvery: 3 };
  const whole = await trainRun({ config: parse(dir, { ...extra, out: join(dir, 'whole') }) });
  for (const stopAt of [5, 6]) {
    const stop = new AbortController();
    const out = join(dir, `parts-${stopAt}`);
    const first = await trainRun({
      config: parse(dir, { ...extra, out }),
      signal: stop.signal,
      onEvent: (e) => {
        if (e.type === 'step' && e.step === stopAt) stop.abort('SIGINT');
      },
    });
    assert.equal(first.status, 'interrupted');
    const second = await trainRun({ resume: out });
    assert.equal(second.status, 'complete');
    for (const name of [
      RUN_FILES.traceCsv,
      RUN_FILES.traceJsonl,
      RUN_FILES.weightsFinal,
      RUN_FILES.valuesCsv,
    ])
      assert.ok(
        readFileSync(join(whole.runDir, name)).equals(readFileSync(join(out, name))),
        `${name} differs after a resume at step ${stopAt}`,
      );
    assert.deepEqual(second.summary, whole.summary);
  }
  const run = await loadRun(whole.runDir);
  assert.ok(run.trace.filter((r) => typeof r.testLoss === 'number').length >= 10);
});

test('trainRun: the CLI prints the final test figures; --test with another file changed refuses to resume', async () => {
  const testRows = blobs(30, { seed: 8, prefix: 't' });
  const dir = writeFiles(tempDir('inrun-testset-'), {
    'train.csv': toCsv(rows),
    'test.csv': toCsv(testRows),
  });
  const out = join(dir, 'cli');
  const r = await runCli(
    'train',
    '--train',
    join(dir, 'train.csv'),
    '--validation-split',
    '0.2',
    '--test',
    join(dir, 'test.csv'),
    '--id-column',
    'id',
    '--steps',
    '6',
    '--checkpoint-every',
    '2',
    '--test-every',
    '3',
    '--out',
    out,
    '--quiet',
  );
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^test: loss \d+\.\d+, accuracy \d+\.\d% on 30 held-out examples \(final weights\)$/m);
  const run = await loadRun(out);
  assert.equal(run.manifest.data.test?.path, join(dir, 'test.csv'));
  assert.deepEqual(
    run.trace.map((t) => t.testLoss === null),
    [true, true, false, true, true, false],
  );

  // A resume checks the test file like the others.
  const stop = new AbortController();
  const partial = join(dir, 'partial');
  await trainRun({
    config: parseTrainConfig(raw({ ...run.config, out: partial })),
    signal: stop.signal,
    onEvent: (e) => {
      if (e.type === 'step' && e.step === 3) stop.abort();
    },
  });
  writeFileSync(join(dir, 'test.csv'), toCsv(testRows.slice(1)));
  await assert.rejects(
    trainRun({ resume: partial }),
    /test\.csv: the test data changed since the run started \(sha256 differs\); resume needs the same data/,
  );
});

test('old run directories without test fields load, and nothing is made up for them', async () => {
  const dir = writeFiles(tempDir('inrun-testset-'), { 'train.csv': toCsv(rows) });
  const result = await trainRun({ config: parse(dir, {}, { testSplit: undefined }) });
  const run = await loadRun(result.runDir);
  for (const row of run.trace) assert.ok(!('testLoss' in row) && !('testAccuracy' in row));
  assert.ok(!('test' in run.manifest.data) && !('testExamples' in run.manifest.data));
  assert.equal(result.summary?.finalTestLoss, null);
  assert.equal(result.summary?.finalTestAccuracy, null);
  const csvHeader = readFileSync(join(result.runDir, RUN_FILES.traceCsv), 'utf8').split('\n')[0];
  assert.ok(csvHeader.endsWith(',linearisationGap,taylorCorrelation,expansionBroken'), csvHeader);
  // A trace line as an older inrun wrote it: no test fields, and none appear.
  const [old] = parseTraceJsonl(
    '{"step":0,"validationLossBefore":1,"validationLossAfter":0.9}\n',
    'trace.jsonl',
  );
  assert.equal(old.testLoss, undefined);
  assert.equal(old.testAccuracy, undefined);
  // Nor the Taylor correlation and breakdown flag of 0.3.0: null, as not measured.
  assert.equal(old.taylorCorrelation, null);
  assert.equal(old.expansionBroken, null);
  // Nulls stay nulls (steps not evaluated), numbers stay numbers.
  const [none, some] = parseTraceJsonl(
    '{"step":0,"testLoss":null,"testAccuracy":null}\n{"step":1,"testLoss":0.5,"testAccuracy":0.75}\n',
    'trace.jsonl',
  );
  assert.deepEqual(
    [none.testLoss, none.testAccuracy, some.testLoss, some.testAccuracy],
    [null, null, 0.5, 0.75],
  );
  // The report of a run without a test set has no test chart.
  const report = await runCli('report', result.runDir);
  assert.equal(report.code, 0, report.err);
  assert.doesNotMatch(readFileSync(join(result.runDir, 'report.html'), 'utf8'), /data-chart="test"/);
});

test('regression: test loss without accuracy; the memory estimate counts the test chunk', async () => {
  const regression = rows.map((r) => ({ ...r, label: r.x[0] + 2 * r.x[1] }));
  const dir = writeFiles(tempDir('inrun-testset-'), { 'train.csv': toCsv(regression) });
  const result = await trainRun({ config: parse(dir, { task: 'regression', steps: 5, epochs: undefined }) });
  const run = await loadRun(result.runDir);
  assert.ok(run.trace.every((r) => r.testAccuracy === null));
  assert.ok(
    run.trace.every((r) => typeof r.testLoss === 'number'),
    'testEvery defaults to 1 for 5 steps',
  );
  assert.equal(result.summary?.finalTestAccuracy, null);

  const config = parse(dir);
  const shape = { inputs: 4, outputs: 3, trainExamples: 66, validationExamples: 24 };
  const without = estimateRunMemory(config, shape).bytes;
  const withTest = estimateRunMemory(config, { ...shape, testExamples: 30 }).bytes;
  assert.ok(withTest > without, `${withTest} > ${without}`);
});

test('text runs: a test split of whole documents, test loss only, the vocabulary untouched', async () => {
  const dir = tempDir('inrun-testset-text-');
  mkdirSync(join(dir, 'corpus'));
  const words = ['sea', 'ship', 'whale', 'wave', 'sail', 'bread', 'salt', 'soup', 'stone', 'field'];
  for (let d = 0; d < 12; d++)
    writeFileSync(
      join(dir, 'corpus', `doc${String(d).padStart(2, '0')}.txt`),
      Array.from({ length: 12 }, (_, k) => words[(d * 3 + k * 7) % words.length]).join(' '),
    );
  const value = {
    data: { train: join(dir, 'corpus'), validationSplit: 0.25, testSplit: 0.25 },
    model: { kind: 'gpt', layers: 1, heads: 2, width: 8, context: 16, tokenizer: 'bytes' },
    optimizer: { kind: 'adam', lr: 0.01 },
    batchSize: 4,
    steps: 4,
    testEvery: 2,
    kernels: 'portable',
    out: join(dir, 'run'),
  };
  const config = parseTrainConfig(raw(value));
  const text = await loadTextTrainingData(config);
  const docIds = (docs: { id: string }[]) => docs.map((d) => d.id);
  const parts = [
    docIds(text.train.documents),
    docIds(text.validation.documents),
    docIds(text.test!.documents),
  ];
  assert.deepEqual(
    parts.map((p) => p.length),
    [6, 3, 3],
  );
  assert.equal(new Set(parts.flat()).size, 12, 'disjoint documents');
  // The validation documents are those of a run without a test split.
  const noTest = await loadTextTrainingData(
    parseTrainConfig(raw({ ...value, data: { ...value.data, testSplit: undefined }, testEvery: undefined })),
  );
  assert.deepEqual(docIds(noTest.validation.documents), parts[1]);

  const result = await trainRun({ config });
  assert.equal(result.status, 'complete');
  const run = await loadRun(result.runDir);
  assert.deepEqual(
    run.trace.map((r) => [r.step, r.testLoss === null, r.testAccuracy]),
    [
      [0, true, null],
      [1, false, null],
      [2, true, null],
      [3, false, null],
    ],
  );
  assert.equal(run.manifest.data.text?.testDocuments, 3);
  assert.equal(run.manifest.data.testExamples, text.test!.dataset.size);
  // The last test loss is the final weights' mean loss over the scored test tokens.
  const model = buildTextModel(config, text);
  loadModelTensors(model, run.weights.final, 'weights.final.safetensors');
  const all = Array.from({ length: text.test!.dataset.size }, (_, i) => i);
  const { input, targets } = text.test!.dataset.batch(all, model.dtype);
  const losses = model.forward(input, targets).losses;
  let tokenLoss = 0;
  let tokens = 0;
  const context = input.tokens;
  losses.forEach((loss, i) => {
    const scored = targets.subarray(i * context, (i + 1) * context).filter((t) => t !== IGNORE_INDEX).length;
    tokenLoss += loss * scored;
    tokens += scored;
  });
  const expected = tokenLoss / tokens;
  assert.ok(Math.abs(run.trace.at(-1)!.testLoss! - expected) <= 1e-12 * expected);
  // Not the plain mean over sequences: the test documents end in shorter sequences.
  assert.ok(Math.abs(mean(losses) - expected) > 1e-6);
  assert.equal(result.summary?.finalTestAccuracy, null);
});

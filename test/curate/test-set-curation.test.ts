// `inrun curate` on runs with a held-out test set: the retrainings are tested on exactly the
// original's test rows (a test split is written out as a file, a test file is used as it is), and
// comparison.json and the report judge on test loss, with validation loss as secondary
// information. Without a test set the comparison says it uses the validation set.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { curate } from '../../src/curate/curate.js';
import { type LoadedRun, loadRun } from '../../src/io/run-dir.js';
import { testCurve } from '../../src/report/analysis.js';
import { VALIDATION_JUDGED_NOTICE } from '../../src/report/render.js';
import type { CurationComparison } from '../../src/report/types.js';
import { parseTrainConfig } from '../../src/run/config.js';
import { loadTrainingData } from '../../src/run/data.js';
import { trainRun } from '../../src/run/train-run.js';
import { blobs, runCli, tempDir, toCsv, toJsonl, writeFiles } from '../cli/fixtures/train-data.js';

function run(dir: string, data: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return trainRun({
    config: parseTrainConfig({
      value: {
        data,
        columns: { id: 'id', group: 'src' },
        model: { kind: 'mlp', hidden: [8] },
        optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
        batchSize: 16,
        epochs: 2,
        out: join(dir, 'run'),
        ...extra,
      },
      flagPaths: new Map(),
    }),
  });
}

/** The test rows (cells, in order) a run was evaluated on, loaded through its own config. */
async function testRows(r: LoadedRun) {
  const data = await loadTrainingData(
    parseTrainConfig({ value: structuredClone(r.config), flagPaths: new Map() }),
  );
  return data.test!.rows.map((row) => row.cells);
}

test('curate with a test split: every retraining is tested on the original’s test rows, judged on test loss', async () => {
  const dir = writeFiles(tempDir('inrun-curate-test-'), {
    'train.csv': toCsv(blobs(160, { seed: 4, flip: 0.2 })),
  });
  const original = await run(
    dir,
    { train: join(dir, 'train.csv'), validationSplit: 0.2, testSplit: 0.2 },
    { testEvery: 3 },
  );
  const said: string[] = [];
  const result = await curate({
    runDir: original.runDir,
    rule: { kind: 'negatives' },
    log: (l) => said.push(l),
  });
  const c = result.comparison;
  const originalRun = await loadRun(original.runDir);
  const curated = await loadRun(join(result.out, 'curated'));
  const random = await loadRun(join(result.out, 'random'));

  // The split became a file of exactly the original's test rows, which both retrainings use.
  const testFile = join(result.out, 'test.csv');
  assert.equal(c.judgedOn, 'test');
  assert.deepEqual(c.test && { ...c.test, targetLoss: 0, targetAccuracy: 0 }, {
    file: testFile,
    source: 'split',
    examples: 32,
    targetLoss: 0,
    targetAccuracy: 0,
  });
  assert.equal(c.notice, undefined);
  const expectedRows = await testRows(originalRun);
  for (const other of [curated, random]) {
    const data = other.config.data as Record<string, unknown>;
    assert.equal(data.test, testFile);
    assert.equal(data.testSplit, undefined);
    assert.equal(other.config.testEvery, 3);
    assert.equal(other.manifest.data.test?.sha256, curated.manifest.data.test?.sha256);
    assert.equal(other.manifest.data.testExamples, 32);
    assert.deepEqual(await testRows(other), expectedRows, 'identical test rows');
  }
  // The curated training file holds no test row (nor validation row).
  const testIds = new Set(expectedRows.map((cells) => String(cells.id)));
  assert.ok(curated.values.every((v) => !testIds.has(String(v.id))));

  // Comparison: test curves from each run's trace, the original's final test loss as the target.
  const originalTest = testCurve(originalRun.trace)!;
  assert.equal(c.test?.targetLoss, originalTest.loss.at(-1));
  assert.equal(c.test?.targetAccuracy, originalTest.accuracy.at(-1));
  for (const [r, loaded] of [
    [c.runs.original, originalRun],
    [c.runs.curated, curated],
    [c.runs.random, random],
  ] as const) {
    const curve = testCurve(loaded.trace)!;
    const t = r.test!;
    assert.deepEqual(t.step, originalTest.step, 'evaluated after the same steps');
    assert.deepEqual([t.loss, t.accuracy], [curve.loss, curve.accuracy]);
    assert.equal(t.finalLoss, curve.loss.at(-1));
    assert.equal(t.bestLoss, Math.min(...curve.loss));
    assert.equal(t.finalAccuracy, curve.accuracy.at(-1));
    const first = t.loss.findIndex((x) => x <= c.test!.targetLoss);
    assert.equal(t.stepsToTarget, first === -1 ? null : t.step[first]);
    // Validation loss stays, as secondary information.
    assert.equal(r.validationLoss.length, c.steps + 1);
  }
  assert.equal(
    c.runs.original.test?.stepsToTarget,
    c.steps,
    'the original reaches its own final loss at the end at the latest',
  );
  assert.deepEqual(JSON.parse(readFileSync(result.comparisonPath, 'utf8')), c);

  // The report: test-loss chart and table first, validation loss labelled secondary.
  const html = readFileSync(result.reportPath, 'utf8');
  assert.match(html, /data-chart="curation-test"/);
  assert.match(html, /data-chart="curation-test-accuracy"/);
  assert.match(html, /held-out test set/);
  assert.match(html, /Secondary: validation loss/);
  assert.ok(html.indexOf('data-chart="curation-test"') < html.indexOf('data-chart="curation"'));
  assert.doesNotMatch(html, new RegExp(VALIDATION_JUDGED_NOTICE.slice(0, 40)));
  assert.ok(said.some((line) => line.startsWith('curate: removing')));
});

test('curate with a test file: used as it is; the CLI prints the test comparison first', async () => {
  const dir = writeFiles(tempDir('inrun-curate-test-'), {
    'train.jsonl': toJsonl(blobs(120, { seed: 6, flip: 0.2 })),
    'test.jsonl': toJsonl(blobs(40, { seed: 7, prefix: 't' })),
  });
  const original = await run(dir, {
    train: join(dir, 'train.jsonl'),
    validationSplit: 0.25,
    test: join(dir, 'test.jsonl'),
  });
  const r = await runCli('curate', original.runDir, '--percentile', '10');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^judged on the held-out test set \(40 examples, the same in every run\):$/m);
  assert.match(
    r.out,
    /^curated: +\d+ examples, final test loss \S+, accuracy \d+\.\d%, (reaches|never reaches)/m,
  );
  assert.match(r.out, /^validation loss \(secondary: the set the values were computed against\):$/m);
  const out = join(original.runDir, 'curation');
  const c = JSON.parse(readFileSync(join(out, 'comparison.json'), 'utf8')) as CurationComparison;
  assert.equal(c.judgedOn, 'test');
  assert.equal(c.test?.source, 'file');
  assert.equal(c.test?.file, join(dir, 'test.jsonl'));
  const curated = await loadRun(join(out, 'curated'));
  assert.equal((curated.config.data as Record<string, unknown>).test, join(dir, 'test.jsonl'));
  assert.equal(
    curated.manifest.data.test?.sha256,
    (await loadRun(original.runDir)).manifest.data.test?.sha256,
  );
});

test('curate without a test set: validation-loss comparison as before, with a notice saying so', async () => {
  const dir = writeFiles(tempDir('inrun-curate-test-'), {
    'train.csv': toCsv(blobs(100, { seed: 3, flip: 0.2 })),
  });
  const original = await run(dir, { train: join(dir, 'train.csv'), validationSplit: 0.25 });
  const r = await runCli('curate', original.runDir, '--negatives');
  assert.equal(r.code, 0, r.err);
  assert.ok(r.err.includes(`inrun: ${VALIDATION_JUDGED_NOTICE}\n`), r.err);
  assert.match(r.out, /^curated: +\d+ examples, final validation loss/m);
  const out = join(original.runDir, 'curation');
  const c = JSON.parse(readFileSync(join(out, 'comparison.json'), 'utf8')) as CurationComparison;
  assert.equal(c.judgedOn, 'validation');
  assert.equal(c.notice, VALIDATION_JUDGED_NOTICE);
  assert.equal(c.test, undefined);
  for (const x of [c.runs.original, c.runs.curated, c.runs.random]) assert.equal(x.test, undefined);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /data-chart="curation"/);
  assert.doesNotMatch(html, /data-chart="curation-test"/);
  assert.match(
    html,
    /No held-out test set: this comparison uses the validation set the values were computed against/,
  );
});

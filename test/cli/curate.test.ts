import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseCsv } from '../../src/data/readers/csv.js';
import { loadRun } from '../../src/io/run-dir.js';
import type { CurationComparison } from '../../src/report/types.js';
import { COMPARISON_FILE } from '../../src/report/write.js';
import { blobs, runCli, tempDir, toCsv, toJsonl } from './fixtures/train-data.js';

const TRAIN_FLAGS = [
  '--label-column',
  'label',
  '--model',
  'mlp',
  '--hidden',
  '8',
  '--lr',
  '0.1',
  '--momentum',
  '0.9',
  '--batch-size',
  '16',
  '--epochs',
  '2',
  '--quiet',
];

/** A finished run on CSV with a validation file (ids and groups in columns). */
async function csvRun(): Promise<{ dir: string; run: string }> {
  const dir = tempDir('inrun-curate-');
  writeFileSync(join(dir, 'train.csv'), toCsv(blobs(120, { seed: 1, flip: 0.2 })));
  writeFileSync(join(dir, 'val.csv'), toCsv(blobs(40, { seed: 2, prefix: 'v' })));
  const run = join(dir, 'run');
  const r = await runCli(
    'train',
    '--train',
    join(dir, 'train.csv'),
    '--validation',
    join(dir, 'val.csv'),
    '--id-column',
    'id',
    '--group-column',
    'src',
    '--out',
    run,
    ...TRAIN_FLAGS,
  );
  assert.equal(r.code, 0, r.err);
  return { dir, run };
}

const csv = csvRun();

function readComparison(path: string): CurationComparison {
  return JSON.parse(readFileSync(path, 'utf8')) as CurationComparison;
}

test('inrun curate --negatives: curated CSV, retrainings with the same settings, comparison and report', async () => {
  const { run } = await csv;
  const original = await loadRun(run);
  const value = (v: { secondOrder: number | null; firstOrder: number }) => v.secondOrder ?? v.firstOrder;
  const negatives = original.values.filter((v) => value(v) < 0).map((v) => String(v.id));
  assert.ok(negatives.length > 0 && negatives.length < 120);

  const r = await runCli('curate', run, '--negatives');
  assert.equal(r.code, 0, r.err);
  const out = join(run, 'curation');
  assert.match(r.out, /comparison: .*comparison\.json/);
  assert.match(r.out, /report: .*curation.report\.html/);
  for (const name of [
    COMPARISON_FILE,
    'report.html',
    'train.curated.csv',
    'train.random.csv',
    'removed.jsonl',
    'random-removed.jsonl',
    'curated.config.json',
    'random.config.json',
    'curated',
    'random',
  ])
    assert.ok(existsSync(join(out, name)), name);

  // The curated file: the input's header, the kept rows unchanged, no removed id.
  const input = parseCsv(readFileSync(join(run, '..', 'train.csv'), 'utf8'), 'train.csv');
  const curated = parseCsv(readFileSync(join(out, 'train.curated.csv'), 'utf8'), 'train.curated.csv');
  assert.deepEqual(curated.columns, input.columns);
  const removed = new Set(negatives);
  assert.deepEqual(
    curated.rows.map((row) => row.cells),
    input.rows.filter((row) => !removed.has(String(row.cells.id))).map((row) => row.cells),
  );
  const removedFile = readFileSync(join(out, 'removed.jsonl'), 'utf8').trim().split('\n');
  assert.deepEqual(removedFile.map((line) => String(JSON.parse(line).id)).sort(), [...negatives].sort());

  // Retrainings: same settings and seed, the original's step count, the same validation set.
  const c = readComparison(join(out, COMPARISON_FILE));
  assert.equal(c.format, 'inrun-curation');
  assert.equal(c.removed, negatives.length);
  assert.equal(c.totalExamples, 120);
  assert.equal(c.steps, original.manifest.totalSteps);
  assert.equal(c.valueColumn, 'second_order');
  const curatedRun = await loadRun(join(out, 'curated'));
  const randomRun = await loadRun(join(out, 'random'));
  for (const other of [curatedRun, randomRun]) {
    assert.equal(other.manifest.totalSteps, original.manifest.totalSteps);
    assert.equal(other.manifest.seed, original.manifest.seed);
    assert.equal(other.manifest.data.trainExamples, 120 - negatives.length);
    assert.equal(other.manifest.data.validation?.sha256, original.manifest.data.validation?.sha256);
    assert.deepEqual(other.config.model, original.config.model);
    assert.deepEqual(other.config.optimizer, original.config.optimizer);
    assert.equal(other.config.order, original.config.order);
    assert.equal(
      other.trace[0].validationLossBefore,
      original.trace[0].validationLossBefore,
      'same initial weights',
    );
  }
  const randomIds = new Set(randomRun.values.map((v) => String(v.id)));
  assert.equal(randomIds.size, 120 - negatives.length);

  // Curves: the original's from its trace; steps to the target are the first crossing.
  const curve = [original.trace[0].validationLossBefore, ...original.trace.map((t) => t.validationLossAfter)];
  assert.deepEqual(c.runs.original.validationLoss, curve);
  assert.equal(c.targetValidationLoss, curve.at(-1));
  for (const run of [c.runs.original, c.runs.curated, c.runs.random]) {
    assert.equal(run.validationLoss.length, c.steps + 1);
    const first = run.validationLoss.findIndex((x) => x <= c.targetValidationLoss);
    assert.equal(run.stepsToTarget, first === -1 ? null : first);
  }
  assert.ok(c.runs.original.stepsToTarget !== null);

  // The curation folder's report holds the comparison; so does the run's report from then on.
  assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /data-chart="curation"/);
  const rep = await runCli('report', run);
  assert.equal(rep.code, 0, rep.err);
  assert.match(readFileSync(join(run, 'report.html'), 'utf8'), /data-chart="curation"/);

  // Again with --force: the same random removal (seeded), so the same comparison.
  const again = await runCli('curate', run, '--negatives', '--force', '--quiet');
  assert.equal(again.code, 0, again.err);
  assert.deepEqual(readComparison(join(out, COMPARISON_FILE)), c);
});

test('inrun curate --percentile on JSONL with a split-off validation set', async () => {
  const dir = tempDir('inrun-curate-jsonl-');
  writeFileSync(join(dir, 'train.jsonl'), toJsonl(blobs(100, { seed: 7, flip: 0.1 })));
  const run = join(dir, 'run');
  const t = await runCli(
    'train',
    '--train',
    join(dir, 'train.jsonl'),
    '--validation-split',
    '0.25',
    '--order',
    '1',
    '--out',
    run,
    ...TRAIN_FLAGS,
  );
  assert.equal(t.code, 0, t.err);
  const out = join(dir, 'cur');
  const r = await runCli('curate', run, '--percentile', '10', '--out', out, '--seed', '5');
  assert.equal(r.code, 0, r.err);
  const c = readComparison(join(out, COMPARISON_FILE));
  assert.equal(c.totalExamples, 75);
  assert.equal(c.removed, 8); // round(75 · 10%)
  assert.equal(c.randomSeed, 5);
  assert.equal(c.valueColumn, 'first_order');
  const lines = readFileSync(join(out, 'train.curated.jsonl'), 'utf8').trim().split('\n');
  assert.equal(lines.length, 67);
  const validation = readFileSync(join(out, 'validation.jsonl'), 'utf8').trim().split('\n');
  assert.equal(validation.length, 25);
  const original = await loadRun(run);
  const curated = await loadRun(join(out, 'curated'));
  // The same validation examples: the same loss at the same initial weights.
  assert.equal(curated.trace[0].validationLossBefore, original.trace[0].validationLossBefore);
  assert.equal(curated.manifest.data.validationExamples, 25);
});

test('inrun curate: bad input is one clear error line, exit ≠ 0, and leaves no files', async () => {
  const { dir, run } = await csv;
  const scratch = tempDir('inrun-curate-bad-');
  writeFileSync(join(scratch, 'keep.txt'), 'not a curation folder');
  const before = readdirSync(run).sort();
  const cases: [string[], RegExp][] = [
    [['curate', join(dir, 'missing-run'), '--negatives'], /missing-run: no such run directory/],
    [
      ['curate', run, '--percentile', '150'],
      /--percentile must be a number between 0 and 100 \(exclusive\), got "150"/,
    ],
    [['curate', run, '--percentile', '0'], /--percentile must be a number between 0 and 100/],
    [['curate', run, '--percentile', 'ten'], /--percentile must be a number between 0 and 100/],
    [['curate', run], /choose the examples to drop: --below <value>, --percentile <p> or --negatives/],
    [['curate', run, '--negatives', '--below', '0'], /give one of --below, --percentile and --negatives/],
    [['curate', run, '--below', 'x'], /--below must be a number, got "x"/],
    [['curate', run, '--below=-1e9'], /value < -1000000000 selects none of the 120 training examples/],
    [['curate', run, '--below', '1e9'], /selects all 120 training examples/],
    [['curate', run, '--negatives', '--out', scratch], /already exists; choose another --out or add --force/],
    [
      ['curate', run, '--negatives', '--out', scratch, '--force'],
      /--force replaces only folders of an earlier inrun curate/,
    ],
    [['curate', run, '--negatives', '--out', run, '--force'], /would replace the run directory itself/],
    [['curate', run, '--negatives', '--out', join(scratch, 'a', 'b')], /the folder .*a does not exist/],
    [['curate', run, '--negatives', '--seed', '-1'], /--seed must be an integer/],
  ];
  for (const [args, expected] of cases) {
    const r = await runCli(...args);
    assert.notEqual(r.code, 0, args.join(' '));
    const lines = r.err.trimEnd().split('\n');
    assert.equal(lines.length, 1, `${args.join(' ')}: ${r.err}`);
    assert.match(lines[0], /^inrun: error: /);
    assert.match(lines[0], expected, args.join(' '));
  }
  assert.deepEqual(readdirSync(scratch), ['keep.txt']);
  assert.deepEqual(readdirSync(run).sort(), before, 'the run directory is unchanged');
});

test('inrun curate: a retraining that fails removes the whole output folder', async () => {
  const { run } = await csv;
  const dir = tempDir('inrun-curate-diverge-');
  // A copy of the run whose config now diverges: the data and values are the same.
  const copy = join(dir, 'run');
  const r0 = await runCli('train', '--config', join(run, 'config.json'), '--out', copy, '--quiet');
  assert.equal(r0.code, 0, r0.err);
  const config = JSON.parse(readFileSync(join(copy, 'config.json'), 'utf8'));
  config.optimizer.lr = 1e30;
  writeFileSync(join(copy, 'config.json'), JSON.stringify(config));
  const out = join(dir, 'out');
  const r = await runCli('curate', copy, '--negatives', '--out', out);
  assert.equal(r.code, 1);
  assert.match(r.err, /^inrun: error: retraining the curated data failed: training diverged/);
  assert.equal(r.err.trimEnd().split('\n').length, 1);
  assert.ok(!existsSync(out), 'no partial results');
});

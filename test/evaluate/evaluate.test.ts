// `inrun evaluate` end to end on a small table: planted faults, one run, every signal scored,
// removal curves by retraining; and its errors.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Evaluation } from '../../src/evaluate/evaluate.js';
import { auroc } from '../../src/metrics.js';
import { blobs, runCli, tempDir, toCsv, writeFiles } from '../cli/fixtures/train-data.js';

function setUp(extra: Record<string, unknown> = {}) {
  const dir = tempDir('inrun-evaluate-');
  writeFiles(dir, {
    'train.csv': toCsv(blobs(160, { seed: 3 })),
    'val.csv': toCsv(blobs(60, { seed: 4, prefix: 'v' })),
    'test.csv': toCsv(blobs(80, { seed: 5, prefix: 't' })),
    'config.json': JSON.stringify({
      data: { train: 'train.csv', validation: 'val.csv', test: 'test.csv' },
      columns: { id: 'id', label: 'label', features: ['x1', 'x2', 'x3', 'x4'] },
      model: { kind: 'mlp', hidden: [8] },
      optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
      batchSize: 16,
      epochs: 3,
      ...extra,
    }),
  });
  return dir;
}

test('evaluate: planted faults, every signal scored against them, removal curves measured by retraining', async () => {
  const dir = setUp();
  const out = join(dir, 'eval');
  const result = await runCli(
    'evaluate',
    '--config',
    join(dir, 'config.json'),
    '--faults',
    'label-flip:0.1,duplicate:0.05',
    '--out',
    out,
    '--removal',
    '0.2',
    '--curves',
    'aum,random',
    '--json',
  );
  assert.equal(result.code, 0, result.err);
  const printed = JSON.parse(result.out.slice(0, result.out.lastIndexOf('}') + 1)) as Evaluation;
  const saved = JSON.parse(readFileSync(join(out, 'evaluation.json'), 'utf8')) as Evaluation;
  assert.deepEqual(printed.signals, saved.signals);
  assert.deepEqual(
    saved.faults.map((f) => [f.kind, f.rows]),
    [
      ['label-flip', 16],
      ['duplicate', 8],
    ],
  );
  // The planted rows are the ones faults.csv lists; the run's own suspects.csv exists.
  const faultIds = new Set(
    readFileSync(join(out, 'data', 'faults.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(',')[0]),
  );
  assert.equal(faultIds.size, 24);
  assert.ok(existsSync(join(out, 'run', 'suspects.csv')));
  assert.ok(existsSync(join(out, 'evaluation.html')));
  const names = saved.signals.map((s) => s.name);
  for (const name of [
    'value',
    'aum',
    'mean_loss',
    'self_influence',
    'knn_shapley_raw',
    'final_loss',
    'tracin_self',
    'random',
  ])
    assert.ok(names.includes(name), name);
  // Recompute one signal's AUROC from the run's values file: the table reports what the run found.
  const values = readFileSync(join(out, 'run', 'values.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { id: string; aum: number });
  const aum = saved.signals.find((s) => s.name === 'aum')!;
  assert.ok(
    Math.abs(
      aum.auroc -
        auroc(
          values.map((v) => -v.aum),
          values.map((v) => faultIds.has(v.id)),
        ),
    ) < 1e-12,
  );
  for (const s of saved.signals) {
    assert.ok(s.auroc >= 0 && s.auroc <= 1);
    assert.deepEqual(Object.keys(s.aurocByFault).sort(), ['duplicate', 'label-flip']);
  }
  assert.deepEqual(
    saved.removal.curves.map((c) => [c.name, c.points.map((p) => [p.fraction, p.removed])]),
    [
      ['aum', [[0.2, 32]]],
      ['random', [[0.2, 32]]],
    ],
  );
  for (const curve of saved.removal.curves)
    for (const p of curve.points)
      assert.ok(Number.isFinite(p.testLoss) && p.testAccuracy >= 0 && p.testAccuracy <= 1);

  // A second evaluation into the same folder needs --force; a foreign folder is never used.
  const again = await runCli(
    'evaluate',
    '--config',
    join(dir, 'config.json'),
    '--out',
    out,
    '--curves',
    'none',
  );
  assert.equal(again.code, 1);
  assert.match(again.err, /holds an earlier evaluation; add --force/);
  const foreign = await runCli(
    'evaluate',
    '--config',
    join(dir, 'config.json'),
    '--out',
    dir,
    '--curves',
    'none',
  );
  assert.equal(foreign.code, 1);
  assert.match(foreign.err, /holds files inrun evaluate did not write/);
});

test('evaluate: bad input is one clear line', async () => {
  const dir = setUp();
  const config = join(dir, 'config.json');
  const cases: [string[], RegExp][] = [
    [['--faults', 'label-flip:0.7'], /rate/],
    [['--faults', 'mislabel:0.1'], /label-flip/],
    [['--removal', '1.5'], /--removal/],
    [['--knn-k', '0'], /--knn-k/],
    [['--curves', 'nonsense'], /no signal "nonsense"/],
  ];
  for (const [args, pattern] of cases) {
    const result = await runCli(
      'evaluate',
      '--config',
      config,
      '--out',
      join(dir, `out-${args[0]}`),
      ...args,
    );
    assert.equal(result.code, 1, args.join(' '));
    assert.match(result.err, /^inrun: error: /);
    assert.match(result.err, pattern);
    assert.doesNotMatch(result.err, /\n {4}at /);
    assert.ok(!existsSync(join(dir, `out-${args[0]}`)), `${args.join(' ')}: nothing written`);
  }
  const noTest = setUp({ data: { train: 'train.csv', validation: 'val.csv' } });
  const result = await runCli(
    'evaluate',
    '--config',
    join(noTest, 'config.json'),
    '--out',
    join(noTest, 'o'),
  );
  assert.equal(result.code, 1);
  assert.match(result.err, /no test set; add data.test/);
  assert.ok(!existsSync(join(noTest, 'o')), 'nothing written');
});

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadDigits } from '../../src/data/digits.js';
import { runDigitsDemo } from '../../src/demo/digits-demo.js';
import { loadRun } from '../../src/io/run-dir.js';
import { writeRunReport } from '../../src/report/write.js';
import { runSeeds } from '../../src/run/data.js';
import { InrunError } from '../../src/util/errors.js';
import { aurocByPairs } from '../reference/metrics.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const csvLines = async (path: string) => (await readFile(path, 'utf8')).trimEnd().split('\n');

test('digits demo: negative values find the flipped labels, in a run directory that report accepts', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'inrun-demo-'));
  dirs.push(dir);
  const out = join(dir, 'nested', 'demo');
  const lines: string[] = [];
  const result = await runDigitsDemo({ quiet: true, seed: 0, out }, (line) => lines.push(line));
  assert.ok(result.auroc >= 0.85, `AUROC ${result.auroc}`);
  assert.ok(
    result.relativeEfficiencyResidual < 1e-4,
    `efficiency residual ${result.relativeEfficiencyResidual}`,
  );
  assert.ok(result.finalValidationLoss < result.initialValidationLoss);
  assert.equal(result.harmful.length, 10);
  assert.ok(result.harmful.filter((h) => h.flipped).length >= 7);
  // Quiet: the result lines only.
  assert.ok(lines.some((l) => l.startsWith('AUROC')));
  assert.ok(!lines.some((l) => l.startsWith('step')));

  // The data went through ordinary files outside the run directory.
  assert.equal(result.runDir, join(out, 'run'));
  assert.equal(result.dataDir, join(out, 'data'));
  const train = await csvLines(join(out, 'data', 'train.csv'));
  assert.equal(train.length, 2001);
  assert.equal(train[0].split(',').length, 2 + 784);
  assert.deepEqual(train[0].split(',').slice(0, 3), ['id', 'label', 'pixel_0']);
  assert.equal((await csvLines(join(out, 'data', 'validation.csv'))).length, 501);
  // The pixels read back as exactly the bundled float32 images, and the labels as the flipped ones.
  const digits = loadDigits({ seed: runSeeds(0).split });
  const pixels = digits.train.batch([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'float32').input.data;
  for (let i = 0; i < 10; i++) {
    const cells = train[i + 1].split(',');
    assert.equal(cells[0], String(digits.train.id(i)));
    assert.equal(Number(cells[1]), digits.train.label(i));
    const row = Float32Array.from(cells.slice(2).map(Number));
    assert.deepEqual(row, pixels.subarray(i * 784, (i + 1) * 784));
  }
  const flipped = await csvLines(join(out, 'data', 'flipped.csv'));
  assert.equal(flipped[0], 'id,label,original_label');
  assert.equal(flipped.length, 201);
  const index = new Map(Array.from({ length: digits.train.size }, (_, i) => [String(digits.train.id(i)), i]));
  for (const line of flipped.slice(1)) {
    const [id, label, original] = line.split(',');
    const i = index.get(id)!;
    assert.ok(digits.flipped[i], id);
    assert.equal(Number(label), digits.train.label(i));
    assert.equal(Number(original), digits.originalLabels[i]);
    assert.notEqual(label, original);
  }

  const run = await loadRun(result.runDir);
  assert.equal(run.manifest.status, 'complete');
  assert.equal(run.manifest.data.train.path, join(out, 'data', 'train.csv'));
  assert.equal(run.values.length, 2000);
  assert.equal(run.trace.length, result.steps);
  const csv = await csvLines(result.csvPath);
  assert.equal(csv.length, 2001);
  assert.match(csv[0], /^id,group,times_seen,first_order,second_order,normalized,stage_0/);
  const report = await writeRunReport({ runDir: result.runDir, image: { width: 28, height: 28 } });
  assert.match(await readFile(report, 'utf8'), /digit-/);
});

test('digits demo: a second run replaces the first, and prints the report command', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'inrun-demo-'));
  dirs.push(dir);
  const options = { trainPerClass: 10, validationPerClass: 5, batchSize: 20, epochs: 1, out: dir };
  await runDigitsDemo({ ...options, seed: 1, quiet: true }, () => {});
  const lines: string[] = [];
  const result = await runDigitsDemo({ ...options, seed: 2 }, (line) => lines.push(line));
  const run = await loadRun(result.runDir);
  assert.equal(run.manifest.seed, 2);
  assert.equal(run.values.length, 100);
  assert.ok(lines.some((l) => l.startsWith('step 5/5')));
  assert.ok(lines.some((l) => l.includes(`inrun report ${result.runDir} --image 28x28`)));
});

test('digits demo: rejects bad options before training', async () => {
  await assert.rejects(
    runDigitsDemo({ order: 3 as 1 }, () => {}),
    (e) => e instanceof InrunError && /order/.test(e.message),
  );
  await assert.rejects(
    runDigitsDemo({ lr: 0 }, () => {}),
    /lr/,
  );
  await assert.rejects(
    runDigitsDemo({ seed: 2 ** 32 }, () => {}),
    /seed/,
  );
  await assert.rejects(
    runDigitsDemo({ batchSize: 5000 }, () => {}),
    /batch size \(5000\)/,
  );
});

test('digits demo with --model cnn: a LeNet run with Adam, valued against sampled validation digits with momentum credit', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'inrun-cnn-demo-'));
  dirs.push(dir);
  const out = join(dir, 'demo');
  const result = await runDigitsDemo(
    { model: 'cnn', epochs: 1, trainPerClass: 30, validationPerClass: 12, quiet: true, out },
    () => {},
  );
  const run = await loadRun(result.runDir);
  const config = run.config as {
    model: { kind: string };
    validationBatch: number;
    optimizer: { kind: string; lr: number };
    momentumCredit: boolean;
    order: number;
  };
  assert.equal(config.model.kind, 'cnn');
  assert.equal(config.validationBatch, 100);
  assert.deepEqual([config.optimizer.kind, config.optimizer.lr], ['adam', 0.003], 'the CNN defaults');
  assert.equal(config.momentumCredit, true);
  assert.equal(config.order, 1);
  // The demo ranks by first-order value + momentum credit: its AUROC recomputed from values.csv.
  const flipped = new Set(
    (await readFile(join(result.dataDir, 'flipped.csv'), 'utf8'))
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(',')[0]),
  );
  const expected = aurocByPairs(
    run.values.map((v) => -(v.firstOrder + v.momentumCredit!)),
    run.values.map((v) => flipped.has(String(v.id))),
  );
  assert.ok(Math.abs(result.auroc - expected) < 1e-12, `${result.auroc} vs ${expected}`);
  assert.equal(result.valueName, 'first-order value + momentum credit');
  // Sampled values carry standard errors; Σ values still equals each step's (sampled) utility.
  assert.ok(run.values.every((v) => v.standardError !== null && v.standardError >= 0));
  assert.ok(result.relativeEfficiencyResidual < 1e-4, String(result.relativeEfficiencyResidual));
  assert.ok(result.auroc >= 0 && result.auroc <= 1 && result.aumAuroc >= 0 && result.aumAuroc <= 1);
  await assert.rejects(runDigitsDemo({ model: 'vit' as 'cnn' }), /model must be mlp or cnn, got "vit"/);
});

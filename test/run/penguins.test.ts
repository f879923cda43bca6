// End to end through the CLI on a penguins-like CSV (species names as labels, missing cells,
// features in mm and grams): `inrun train` with data.missing: drop and data.standardize: true,
// then `inrun report` shows label names and `inrun curate` retrains with the names pinned.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadRun } from '../../src/io/run-dir.js';
import { runCli, tempDir } from '../cli/fixtures/train-data.js';
import { MEASUREMENTS, penguinRows, penguinsCsv } from './fixtures/penguins.js';

const CONFIG = `data:
  train: penguins.csv
  validationSplit: 0.2
  missing: drop
  standardize: true
columns:
  label: species
model:
  kind: mlp
  hidden: [8]
optimizer:
  kind: sgd
  lr: 0.1
  momentum: 0.9
batchSize: 16
epochs: 3
`;

test('penguins CSV: trains end to end; report shows label names; curate pins them', async () => {
  const dir = tempDir('inrun-penguins-');
  const rows = penguinRows(150);
  writeFileSync(join(dir, 'penguins.csv'), penguinsCsv(rows));
  writeFileSync(join(dir, 'run.yaml'), CONFIG);
  const out = join(dir, 'run');
  const r = await runCli('train', '--config', join(dir, 'run.yaml'), '--out', out);
  assert.equal(r.code, 0, r.err);
  assert.match(
    r.out,
    /^data: 118 training examples, 30 validation examples; 5 features \(bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g, year\), standardized; 3 classes \(Adelie, Chinstrap, Gentoo\); 2 rows with missing cells dropped \([^)]*penguins\.csv: 2\); columns not used: island, sex$/m,
  );

  const run = await loadRun(out);
  const data = run.manifest.data;
  assert.deepEqual(data.classNames, ['Adelie', 'Chinstrap', 'Gentoo']);
  assert.deepEqual(data.droppedRows, { train: 2, validation: null });
  assert.equal(data.trainExamples, 118);
  // The stored statistics are the training rows' (ids are row numbers), computed by hand here.
  const s = data.standardization!;
  assert.deepEqual(s.features, [...MEASUREMENTS, 'year']);
  const trainRows = run.values.map((v) => rows[Number(v.id)]);
  s.features.forEach((f, k) => {
    const xs = trainRows.map((row) => Number(row[f as keyof (typeof rows)[0]]));
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const std = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length);
    assert.ok(Math.abs(s.mean[k] - mean) <= 1e-12 * Math.abs(mean), `${f} mean ${s.mean[k]} vs ${mean}`);
    assert.ok(Math.abs(s.std[k] - std) <= 1e-12 * std, `${f} std ${s.std[k]} vs ${std}`);
  });
  assert.ok(!run.values.some((v) => v.id === '3' || v.id === '7'), 'rows with missing cells are dropped');
  // Standardized inputs let it learn: well below chance (ln 3 ≈ 1.10).
  const last = run.trace[run.trace.length - 1];
  assert.ok(last.validationLossAfter < 0.6, `final validation loss ${last.validationLossAfter}`);

  const rep = await runCli('report', out);
  assert.equal(rep.code, 0, rep.err);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /species=(Adelie \(class 0\)|Chinstrap \(class 1\)|Gentoo \(class 2\)), island=/);

  const cur = await runCli('curate', out, '--percentile', '10', '--quiet');
  assert.equal(cur.code, 0, cur.err);
  const curated = JSON.parse(readFileSync(join(out, 'curation', 'curated.config.json'), 'utf8'));
  assert.deepEqual(curated.classNames, ['Adelie', 'Chinstrap', 'Gentoo']);
  assert.equal(curated.data.missing, 'drop');
  assert.equal(curated.data.standardize, true);
  const curatedRun = await loadRun(join(out, 'curation', 'curated'));
  assert.deepEqual(curatedRun.manifest.data.classNames, ['Adelie', 'Chinstrap', 'Gentoo']);
  assert.equal(curatedRun.manifest.data.trainExamples, 118 - Math.round(118 * 0.1));
});

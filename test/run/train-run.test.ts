import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadRun, RUN_FILES } from '../../src/io/run-dir.js';
import { parseTrainConfig, type TrainConfig } from '../../src/run/config.js';
import { type RunEvent, trainRun } from '../../src/run/train-run.js';
import { blobs, runCli, tempDir, toCsv, writeFiles } from '../cli/fixtures/train-data.js';

// Blobs whose first feature is in "grams" (×1000, offset 5000): a run on them warns about the
// feature scale and, at this learning rate, about the exploding loss and the Taylor error.
const rows = blobs(96, { seed: 3 }).map((r) => ({ ...r, x: [r.x[0] * 1000 + 5000, ...r.x.slice(1)] }));

function config(dir: string, out: string, extra: Record<string, unknown> = {}): TrainConfig {
  return parseTrainConfig({
    value: {
      data: { train: join(dir, 'train.csv'), validationSplit: 0.25 },
      columns: { id: 'id', group: 'src' },
      model: { kind: 'mlp', hidden: [8] },
      optimizer: { kind: 'sgd', lr: 0.05 },
      batchSize: 8,
      epochs: 2,
      checkpointEvery: 3,
      out,
      ...extra,
    },
    flagPaths: new Map(),
  });
}

test('trainRun: events in order; warnings reach the events, the manifest and the report', async () => {
  const dir = writeFiles(tempDir(), { 'train.csv': toCsv(rows) });
  const events: RunEvent[] = [];
  const result = await trainRun({ config: config(dir, join(dir, 'run')), onEvent: (e) => events.push(e) });
  assert.equal(result.status, 'complete');
  assert.equal(events[0].type, 'warning', 'the data check comes before training starts');
  assert.equal(events.find((e) => e.type !== 'warning')?.type, 'start');
  const steps = events.filter((e) => e.type === 'step').map((e) => (e as { step: number }).step);
  assert.deepEqual(
    steps,
    Array.from({ length: result.totalSteps }, (_, k) => k + 1),
  );
  const warned = events.flatMap((e) => (e.type === 'warning' ? [e.warning.code] : []));
  assert.ok(warned.includes('feature-scale') && warned.includes('exploding-loss'), warned.join(', '));
  assert.deepEqual(
    result.manifest.warnings?.map((w) => w.code),
    warned,
    'the manifest keeps every warning, once, in order',
  );
  const run = await loadRun(result.runDir);
  assert.deepEqual(run.manifest.warnings, result.manifest.warnings);

  const report = await runCli('report', result.runDir);
  assert.equal(report.code, 0, report.err);
  const html = readFileSync(join(result.runDir, 'report.html'), 'utf8');
  assert.match(html, /features are far from unit scale/);
});

test('trainRun: an aborted run resumes to the same files and the same warnings as an uninterrupted one', async () => {
  const dir = writeFiles(tempDir(), { 'train.csv': toCsv(rows) });
  const whole = await trainRun({ config: config(dir, join(dir, 'whole')) });
  const stop = new AbortController();
  const first = await trainRun({
    config: config(dir, join(dir, 'parts')),
    signal: stop.signal,
    onEvent: (e) => {
      if (e.type === 'step' && e.step === 7) stop.abort('SIGINT');
    },
  });
  assert.equal(first.status, 'interrupted');
  assert.equal(first.stepsDone, 7);
  assert.match(first.message ?? '', /^interrupted by SIGINT after step 7 of \d+; checkpoint saved$/);
  const notices: string[] = [];
  const second = await trainRun({
    resume: first.runDir,
    onEvent: (e) => {
      if (e.type === 'warning') notices.push(e.warning.code);
    },
  });
  assert.equal(second.status, 'complete');
  for (const name of [RUN_FILES.valuesCsv, RUN_FILES.traceCsv, RUN_FILES.traceJsonl, RUN_FILES.weightsFinal])
    assert.ok(
      readFileSync(join(whole.runDir, name)).equals(readFileSync(join(second.runDir, name))),
      `${name} differs after resume`,
    );
  assert.deepEqual(
    second.manifest.warnings?.map((w) => [w.code, w.step]),
    whole.manifest.warnings?.map((w) => [w.code, w.step]),
  );
  // Warnings given before the interruption are not given again.
  for (const code of notices) assert.ok(!first.manifest.warnings?.some((w) => w.code === code), code);
  assert.deepEqual(second.summary, whole.summary);
});

test('trainRun: new runs and resumes are one or the other', async () => {
  await assert.rejects(trainRun({}), /give either config \(a new run\) or resume/);
});

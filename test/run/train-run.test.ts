import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  await assert.rejects(trainRun({}), /give exactly one of config \(a new run\) and resume/);
  const dir = writeFiles(tempDir(), { 'train.csv': toCsv(rows) });
  await assert.rejects(
    trainRun({ config: config(dir, join(dir, 'a')), resume: join(dir, 'a') }),
    /give exactly one of config \(a new run\) and resume/,
  );
});

test('trainRun: an already aborted signal writes nothing, even with force over an old run', async () => {
  const dir = writeFiles(tempDir(), { 'train.csv': toCsv(rows) });
  const old = await trainRun({ config: config(dir, join(dir, 'run')) });
  const before = readFileSync(join(old.runDir, RUN_FILES.valuesCsv));
  const stop = new AbortController();
  stop.abort('SIGINT');
  await assert.rejects(
    trainRun({ config: config(dir, join(dir, 'run')), force: true, signal: stop.signal }),
    /^InrunError: interrupted by SIGINT before training started; nothing was written$/,
  );
  assert.ok(readFileSync(join(old.runDir, RUN_FILES.valuesCsv)).equals(before));
  assert.ok(!existsSync(join(old.runDir, '.inrun.lock')));
});

test('trainRun: a run stopped while being set up is named as such, and --force replaces it', async () => {
  const dir = writeFiles(tempDir(), { 'train.csv': toCsv(rows) });
  const out = join(dir, 'run');
  const stop = new AbortController();
  // Stop at once, then make it look like a process killed after the manifest, before the weights.
  await trainRun({
    config: config(dir, out),
    signal: stop.signal,
    onEvent: (e) => {
      if (e.type === 'start') stop.abort('SIGTERM');
    },
  });
  for (const name of [
    RUN_FILES.weightsInitial,
    RUN_FILES.traceCsv,
    RUN_FILES.traceJsonl,
    RUN_FILES.checkpoint,
  ])
    rmSync(join(out, name), { recursive: true, force: true });
  const manifestPath = join(out, RUN_FILES.manifest);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  writeFileSync(manifestPath, JSON.stringify({ ...manifest, status: 'running', stepsDone: 0 }));
  await assert.rejects(
    trainRun({ resume: out }),
    /run: the run stopped before its directory was set up \(no weights\.initial\.safetensors\); start it again \(--force replaces it\)$/,
  );
  // The manifest lists every set-up file, so --force knows them all and replaces the run.
  const again = await trainRun({ config: config(dir, out), force: true });
  assert.equal(again.status, 'complete');
});

test('trainRun: a format-1 run directory is not resumed', async () => {
  const dir = writeFiles(tempDir(), { 'train.csv': toCsv(rows) });
  const out = join(dir, 'run');
  const stop = new AbortController();
  await trainRun({
    config: config(dir, out),
    signal: stop.signal,
    onEvent: (e) => {
      if (e.type === 'step' && e.step === 2) stop.abort();
    },
  });
  const manifestPath = join(out, RUN_FILES.manifest);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  writeFileSync(manifestPath, JSON.stringify({ ...manifest, formatVersion: 1, files: undefined }));
  const before = readFileSync(manifestPath);
  await assert.rejects(
    trainRun({ resume: out }),
    /was written by inrun 0\.1 \(run directory format 1\), whose checkpoints this version cannot resume; start it again with its config/,
  );
  assert.ok(readFileSync(manifestPath).equals(before), 'nothing changed');
});

test('trainRun: coverage — examples never in a batch have no value, and the CLI says how many', async () => {
  const dir = writeFiles(tempDir(), { 'train.csv': toCsv(rows) });
  const partial = await trainRun({
    config: config(dir, join(dir, 'partial'), { steps: 3, epochs: undefined }),
  });
  assert.equal(partial.summary?.trainExamples, 72);
  assert.equal(partial.summary?.examplesValued, 24);
  assert.equal(partial.summary?.documentsValued, null);
  const cli = await runCli(
    'train',
    '--train',
    join(dir, 'train.csv'),
    '--validation-split',
    '0.25',
    '--id-column',
    'id',
    '--standardize',
    '--batch-size',
    '8',
    '--steps',
    '3',
    '--out',
    join(dir, 'cli'),
    '--quiet',
  );
  assert.equal(cli.code, 0, cli.err);
  assert.match(
    cli.out,
    /^coverage: 24 of 72 training examples valued \(33\.3%\); the rest were never in a batch/m,
  );
});

test('trainRun: steps whose expansion broke down are counted, and with excludeBrokenSteps left out of the values', async () => {
  const dir = writeFiles(tempDir(), { 'train.csv': toCsv(blobs(96, { seed: 3 })) });
  // Adam at a large rate: its steps overshoot what their expansion predicts.
  const adam = { optimizer: { kind: 'adam', lr: 0.2 }, model: { kind: 'mlp', hidden: [16] }, epochs: 3 };
  const kept = await trainRun({ config: config(dir, join(dir, 'kept'), adam) });
  const excluded = await trainRun({
    config: config(dir, join(dir, 'excluded'), { ...adam, excludeBrokenSteps: true }),
  });
  const trace = (await loadRun(kept.runDir)).trace;
  const broken = trace.filter((r) => r.expansionBroken === 1).length;
  assert.ok(broken > 0 && broken < trace.length, `${broken} of ${trace.length} steps broke down`);
  assert.equal(kept.summary?.brokenSteps, broken);
  assert.equal(kept.summary?.brokenStepsExcluded, false);
  assert.equal(excluded.summary?.brokenSteps, broken);
  assert.equal(excluded.summary?.brokenStepsExcluded, true);
  // The same steps, traced alike; only the values differ.
  assert.deepEqual((await loadRun(excluded.runDir)).trace, trace);
  const timesSeen = (run: Awaited<ReturnType<typeof loadRun>>) =>
    run.values.reduce((t, v) => t + v.timesSeen, 0);
  const brokenOccurrences = trace.filter((r) => r.expansionBroken === 1).reduce((t, r) => t + r.batchSize, 0);
  assert.equal(
    timesSeen(await loadRun(excluded.runDir)),
    timesSeen(await loadRun(kept.runDir)) - brokenOccurrences,
  );
  // Interrupted after a step whose values were still held (checkpoints every 3 steps), then
  // resumed: the same bytes as the uninterrupted run.
  const stop = new AbortController();
  const parts = join(dir, 'parts');
  const first = await trainRun({
    config: config(dir, parts, { ...adam, excludeBrokenSteps: true }),
    signal: stop.signal,
    onEvent: (e) => {
      if (e.type === 'step' && e.step === 7) stop.abort('SIGINT');
    },
  });
  assert.equal(first.status, 'interrupted');
  await trainRun({ resume: parts });
  for (const name of [RUN_FILES.valuesCsv, RUN_FILES.traceJsonl, RUN_FILES.traceCsv])
    assert.ok(readFileSync(join(parts, name)).equals(readFileSync(join(excluded.runDir, name))), name);
  const cli = await runCli(
    'train',
    '--config',
    join(excluded.runDir, 'config.json'),
    '--out',
    join(dir, 'cli'),
    '--quiet',
  );
  assert.equal(cli.code, 0, cli.err);
  assert.match(
    cli.out,
    new RegExp(
      `^expansion: in ${broken} of ${trace.length} steps the Taylor expansion broke down .*left out \\(excludeBrokenSteps\\)$`,
      'm',
    ),
  );
});

test('trainRun with momentum credit: credits in the values; refused with checkpoints; an interrupted run is failed, not resumable', async () => {
  const dir = writeFiles(tempDir(), { 'train.csv': toCsv(blobs(96, { seed: 3 })) });
  const momentum = { optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 }, momentumCredit: true };
  assert.throws(
    () => config(dir, join(dir, 'x'), momentum),
    /momentum credit keeps the last steps.*checkpointEvery: 0/,
  );
  const result = await trainRun({
    config: config(dir, join(dir, 'run'), { ...momentum, checkpointEvery: 0 }),
  });
  const run = await loadRun(result.runDir);
  // What the momentum carried, handed back, is the data part of Σ U(∅) (no weight decay here).
  const credits = run.values.reduce((sum, v) => sum + v.momentumCredit!, 0);
  const empty = run.trace.reduce((sum, row) => sum + row.emptyUtility, 0);
  assert.ok(Math.abs(credits - empty) < 1e-6 * Math.abs(empty), `${credits} vs ${empty}`);

  const controller = new AbortController();
  await assert.rejects(
    trainRun({
      config: config(dir, join(dir, 'stopped'), { ...momentum, checkpointEvery: 0 }),
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'step' && e.step === 2) controller.abort();
      },
    }),
    /after step 2 of \d+; momentum credit .* cannot resume: start it again/,
  );
  const manifest = JSON.parse(readFileSync(join(dir, 'stopped', RUN_FILES.manifest), 'utf8'));
  assert.equal(manifest.status, 'failed');
});

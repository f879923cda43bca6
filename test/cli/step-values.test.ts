// `inrun train --step-values`: step-values.parquet holds every step's value of each example in its
// batch, agrees with the trace, and comes out byte-identical after an interruption and --resume.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RUN_FILES, readManifest, readTraceRows } from '../../src/io/run-dir.js';
import { readStepValues, STEP_VALUES_SIDE_FILE, type StepValueRow } from '../../src/io/step-values.js';
import type { RunTraceEntry } from '../../src/io/values-writers.js';
import { blobs, runCli, tempDir, toCsv, writeFiles } from './fixtures/train-data.js';

const RUN_CLI = fileURLToPath(new URL('./fixtures/run-cli.ts', import.meta.url));

async function traceOf(run: string): Promise<RunTraceEntry[]> {
  const rows: RunTraceEntry[] = [];
  for await (const row of readTraceRows(join(run, RUN_FILES.traceJsonl))) rows.push(row);
  return rows;
}

function byStep(rows: StepValueRow[]): Map<number, StepValueRow[]> {
  const steps = new Map<number, StepValueRow[]>();
  for (const row of rows) {
    if (!steps.has(row.step)) steps.set(row.step, []);
    steps.get(row.step)!.push(row);
  }
  return steps;
}

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b), 1e-300), `${what}: ${a} vs ${b}`);

test('train --step-values: one row per occurrence, agreeing with the trace (sgd, clipped, order 2)', async () => {
  const dir = writeFiles(tempDir('inrun-step-values-'), {
    'train.csv': toCsv(blobs(100, { seed: 3 })),
    'val.csv': toCsv(blobs(30, { seed: 4, prefix: 'v' })),
  });
  const out = join(dir, 'run');
  const r = await runCli(
    'train',
    ...['--train', join(dir, 'train.csv'), '--validation', join(dir, 'val.csv'), '--id-column', 'id'],
    ...['--model', 'mlp', '--hidden', '8', '--lr', '0.2', '--clip-norm', '0.5'],
    ...[
      '--batch-size',
      '16',
      '--epochs',
      '2',
      '--out',
      out,
      '--step-values',
      '--record-batch-ids',
      '--quiet',
    ],
  );
  assert.equal(r.code, 0, r.err);
  const trace = await traceOf(out);
  const rows = await readStepValues(out);
  assert.equal(trace.length, 14);
  assert.equal(
    rows.length,
    trace.reduce((n, t) => n + t.batchSize, 0),
  );
  assert.equal(rows.length, 200, 'two epochs of 100 examples (last batches of 4)');
  const steps = byStep(rows);
  assert.deepEqual(
    [...steps.keys()],
    trace.map((t) => t.step),
  );
  let clipped = 0;
  for (const t of trace) {
    const mine = steps.get(t.step)!;
    assert.deepEqual(
      mine.map((row) => row.id),
      t.batchIds!.map(String),
      `step ${t.step}: ids in batch order`,
    );
    assert.deepEqual(
      mine.map((row) => row.position),
      mine.map((_, i) => i),
    );
    close(
      mine.reduce((s, row) => s + row.firstOrder!, 0),
      t.firstOrderSum,
      `step ${t.step} Σ first order`,
    );
    close(
      mine.reduce((s, row) => s + row.secondOrder!, 0),
      t.secondOrderSum!,
      `step ${t.step} Σ second order`,
    );
    for (const row of mine) {
      assert.equal(row.lr, t.lr);
      assert.equal(row.clipFactor, t.clipFactor);
      assert.equal(row.batchSize, t.batchSize);
      close(row.kScale, t.clipFactor / t.batchSize, `step ${t.step} k_scale`);
      assert.equal(row.cNorm, 0, 'plain SGD without decay has no c');
      assert.equal(row.kDiagonalMean, null);
    }
    if (t.clipFactor < 1) clipped++;
  }
  assert.ok(clipped > 0, 'some steps were clipped');

  const manifest = await readManifest(out);
  assert.ok(manifest.files!.includes(RUN_FILES.stepValues));
  assert.ok(!manifest.files!.includes(STEP_VALUES_SIDE_FILE));
  assert.ok(!existsSync(join(out, STEP_VALUES_SIDE_FILE)), 'the side file is removed');
  assert.equal(JSON.parse(readFileSync(join(out, RUN_FILES.config), 'utf8')).stepValues, true);
});

function spawnCli(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', RUN_CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Starts a training child with --json and sends SIGTERM once it has finished step `at`. */
function runAndStop(
  args: string[],
  at: number,
): Promise<{ code: number | null; err: string; lastStep: number }> {
  return new Promise((resolveRun, reject) => {
    const child = spawnCli([...args, '--json']);
    let buffer = '';
    let err = '';
    let lastStep = 0;
    let sent = false;
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const event = JSON.parse(buffer.slice(0, nl)) as { event: string; step?: number };
        buffer = buffer.slice(nl + 1);
        if (event.event !== 'step') continue;
        lastStep = event.step!;
        if (!sent && lastStep >= at) {
          sent = true;
          child.kill('SIGTERM');
        }
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      err += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code, err, lastStep }));
  });
}

test('train --step-values: SIGTERM and --resume give a byte-identical step-values.parquet (momentum, order 1)', async () => {
  const dir = writeFiles(tempDir('inrun-step-values-resume-'), {
    'train.csv': toCsv(blobs(320, { seed: 3, features: 16, flip: 0.1 })),
    'val.csv': toCsv(blobs(32, { seed: 4, features: 16, prefix: 'v' })),
  });
  const config = join(dir, 'run.yaml');
  writeFileSync(
    config,
    `data: { train: train.csv, validation: val.csv }
columns: { id: id }
model: { kind: mlp, hidden: [32, 32] }
optimizer: { kind: sgd, lr: 0.05, momentum: 0.9 }
batchSize: 16
epochs: 4
order: 1
checkpointEvery: 7
stepValues: true
`,
  );
  const reference = join(dir, 'reference');
  const r = await runCli('train', '--config', config, '--out', reference, '--quiet');
  assert.equal(r.code, 0, r.err);
  const rows = await readStepValues(reference);
  assert.equal(rows.length, 4 * 320);
  assert.ok(rows.every((row) => row.secondOrder === null && row.kDiagonalMean === null));
  assert.ok(rows.filter((row) => row.step === 0).every((row) => row.cNorm === 0));
  assert.ok(
    rows.filter((row) => row.step > 0).every((row) => row.cNorm > 0),
    'momentum carries c in',
  );
  const trace = await traceOf(reference);
  for (const [step, mine] of byStep(rows))
    close(
      mine.reduce((s, row) => s + row.firstOrder!, 0),
      trace[step].firstOrderSum,
      `step ${step}`,
    );

  const out = join(dir, 'stopped');
  const child = await runAndStop(['train', '--config', config, '--out', out], 10);
  assert.equal(child.code, 1, child.err);
  assert.match(child.err, /interrupted by SIGTERM after step \d+ of 80; checkpoint saved/);
  const manifest = await readManifest(out);
  assert.equal(manifest.status, 'interrupted');
  assert.ok(manifest.files!.includes(STEP_VALUES_SIDE_FILE), 'the side file is listed while the run goes');
  assert.ok(!existsSync(join(out, RUN_FILES.stepValues)));
  const side = readFileSync(join(out, STEP_VALUES_SIDE_FILE), 'utf8');
  assert.equal(side.split('\n').length - 1, manifest.stepsDone, 'one line per step done');
  // What a process killed after its checkpoint leaves: rows of steps the checkpoint does not cover.
  appendFileSync(
    join(out, STEP_VALUES_SIDE_FILE),
    side.split('\n')[0].replace('"step":0', `"step":${manifest.stepsDone}`),
  );

  const resumed = await runCli('train', '--resume', out, '--quiet');
  assert.equal(resumed.code, 0, resumed.err);
  assert.ok(
    readFileSync(join(out, RUN_FILES.stepValues)).equals(readFileSync(join(reference, RUN_FILES.stepValues))),
    `step-values.parquet differs (stopped after step ${child.lastStep})`,
  );
  for (const name of [RUN_FILES.valuesParquet, RUN_FILES.traceJsonl])
    assert.ok(readFileSync(join(out, name)).equals(readFileSync(join(reference, name))), name);
  assert.ok(!existsSync(join(out, STEP_VALUES_SIDE_FILE)));

  // Without the flag there is no such file; --force replaces a run with step values, even one
  // whose side file a crash right after completion left behind.
  writeFileSync(join(reference, STEP_VALUES_SIDE_FILE), side);
  const plain = await runCli(
    'train',
    ...[
      '--config',
      config,
      '--set',
      'stepValues=false',
      '--epochs',
      '1',
      '--out',
      reference,
      '--force',
      '--quiet',
    ],
  );
  assert.equal(plain.code, 0, plain.err);
  assert.ok(!existsSync(join(reference, RUN_FILES.stepValues)));
  assert.ok(!existsSync(join(reference, STEP_VALUES_SIDE_FILE)));
  assert.ok(!(await readManifest(reference)).files!.some((name) => name.includes('step-values')));
});

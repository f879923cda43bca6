import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RUN_FILES, readManifest } from '../../src/io/run-dir.js';
import { blobs, runCli, tempDir, toCsv, writeFiles } from './fixtures/train-data.js';

const RUN_CLI = fileURLToPath(new URL('./fixtures/run-cli.ts', import.meta.url));
const COMPARED = [
  RUN_FILES.valuesCsv,
  RUN_FILES.valuesJsonl,
  RUN_FILES.valuesParquet,
  RUN_FILES.traceCsv,
  RUN_FILES.traceJsonl,
  RUN_FILES.weightsFinal,
];

/** A run long enough (a few hundred steps of several ms) to be stopped part-way. */
function setup(optimizer: string): { dir: string; config: string; totalSteps: number } {
  const dir = writeFiles(tempDir('inrun-resume-'), {
    'train.csv': toCsv(blobs(640, { seed: 3, features: 16, flip: 0.1 })),
    'val.csv': toCsv(blobs(64, { seed: 4, features: 16, prefix: 'v' })),
  });
  const config = join(dir, 'run.yaml');
  writeFileSync(
    config,
    `data: { train: train.csv, validation: val.csv }
columns: { id: id, group: src }
model: { kind: mlp, hidden: [32, 32] }
optimizer: ${optimizer}
batchSize: 32
epochs: 6
stages: 3
checkpointEvery: 7
recordBatchIds: true
# Adam's first step is far from its linearisation (a warning); resuming must keep valueFrom too.
valueFrom: 1
`,
  );
  return { dir, config, totalSteps: 6 * Math.ceil(640 / 32) };
}

function spawnCli(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', RUN_CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Starts a training child with --json; calls `onStep` with each finished step number. */
function runUntil(
  args: string[],
  onStep: (child: ChildProcess, step: number) => void,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; err: string; lastStep: number }> {
  return new Promise((resolveRun, reject) => {
    const child = spawnCli([...args, '--json']);
    let buffer = '';
    let err = '';
    let lastStep = 0;
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      buffer += chunk;
      let nl = buffer.indexOf('\n');
      while (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const event = JSON.parse(line) as { event: string; step?: number };
        if (event.event === 'step') {
          lastStep = event.step!;
          onStep(child, event.step!);
        }
        nl = buffer.indexOf('\n');
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      err += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolveRun({ code, signal, err, lastStep }));
  });
}

function assertSameFiles(a: string, b: string, context: string): void {
  for (const name of COMPARED)
    assert.ok(
      readFileSync(join(a, name)).equals(readFileSync(join(b, name))),
      `${name} differs (${context})`,
    );
}

test('train --resume after SIGKILL at a random step is bit-identical to an uninterrupted run', async () => {
  const { dir, config, totalSteps } = setup('{ kind: sgd, lr: 0.05, momentum: 0.9, weightDecay: 0.0001 }');
  const reference = join(dir, 'reference');
  const r = await runCli('train', '--config', config, '--out', reference, '--quiet');
  assert.equal(r.code, 0, r.err);

  const killAt = 10 + Math.floor(Math.random() * (totalSteps / 2));
  const out = join(dir, 'killed');
  let killed = false;
  const child = await runUntil(['train', '--config', config, '--out', out], (proc, step) => {
    if (!killed && step >= killAt) {
      killed = true;
      proc.kill('SIGKILL');
    }
  });
  const context = `killed after step ${child.lastStep} (target ${killAt}) of ${totalSteps}`;
  assert.equal(child.signal, 'SIGKILL', `${context}; the run ended before the kill: ${child.err}`);
  assert.ok(existsSync(join(out, RUN_FILES.checkpoint)), context);
  assert.ok(!existsSync(join(out, RUN_FILES.valuesCsv)), context);
  assert.equal((await readManifest(out)).status, 'running');

  const resumed = await runCli('train', '--resume', out, '--quiet');
  assert.equal(resumed.code, 0, resumed.err);
  assertSameFiles(reference, out, context);
  const manifest = await readManifest(out);
  assert.equal(manifest.status, 'complete');
  assert.equal(manifest.times.resumedAt.length, 1);
  assert.ok(!existsSync(join(out, RUN_FILES.checkpoint)));
});

test('train: SIGTERM saves a checkpoint and exits with a message; --resume finishes identically (adam)', async () => {
  const { dir, config } = setup('{ kind: adam, lr: 0.002, weightDecay: 0.001, clipNorm: 5 }');
  const reference = join(dir, 'reference');
  const r = await runCli('train', '--config', config, '--out', reference, '--quiet');
  assert.equal(r.code, 0, r.err);

  const out = join(dir, 'stopped');
  let sent = false;
  const child = await runUntil(['train', '--config', config, '--out', out], (proc, step) => {
    if (!sent && step >= 12) {
      sent = true;
      proc.kill('SIGTERM');
    }
  });
  assert.equal(child.code, 1, child.err);
  const lines = child.err.trim().split('\n');
  assert.equal(lines.length, 1, child.err);
  assert.match(
    lines[0],
    /^inrun: error: interrupted by SIGTERM after step \d+ of \d+; checkpoint saved; continue with: inrun train --resume /,
  );
  const manifest = await readManifest(out);
  assert.equal(manifest.status, 'interrupted');
  assert.equal(manifest.stepsDone, child.lastStep);

  // --resume takes no other settings; then it finishes the run.
  const refused = await runCli('train', '--resume', out, '--lr', '0.1');
  assert.equal(refused.code, 1);
  assert.match(refused.err, /--resume continues with the run's saved config; drop --lr/);
  const resumed = await runCli('train', '--resume', out, '--quiet');
  assert.equal(resumed.code, 0, resumed.err);
  assertSameFiles(reference, out, `stopped after step ${child.lastStep}`);
  const again = await runCli('train', '--resume', out);
  assert.equal(again.code, 1);
  assert.match(again.err, /already complete/);
});

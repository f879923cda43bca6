import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { TensorDataset } from '../../src/data/dataset.js';
import { atomicTempName } from '../../src/io/atomic.js';
import {
  CHECKPOINT_DIR,
  loadCheckpoint,
  removeTemporaryFiles,
  saveCheckpoint,
} from '../../src/io/checkpoint.js';
import { TRACE_CSV, TRACE_JSONL, TraceLog } from '../../src/io/trace-log.js';
import { traceToCsv, traceToJsonl } from '../../src/io/values-writers.js';
import { mlp } from '../../src/models/builders.js';
import { adamw } from '../../src/optim/adam.js';
import type { TraceEntry } from '../../src/shapley/valuer.js';
import { Trainer } from '../../src/train/trainer.js';
import { InrunError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

const root = mkdtempSync(join(tmpdir(), 'inrun-checkpoint-'));
after(() => rmSync(root, { recursive: true, force: true }));
const freshDir = () => mkdtempSync(join(root, 'run-'));

function blobs(n: number, seed: number, prefix: string) {
  const rng = new Rng(seed);
  const features = new Float64Array(n * 4);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = rng.int(3);
    labels.push(y);
    for (let k = 0; k < 4; k++) features[i * 4 + k] = rng.normal() + (k === y ? 2 : 0);
  }
  const ids = labels.map((_, i) => `${prefix}${i}`);
  return new TensorDataset({ name: prefix, features, width: 4, labels, labelKind: 'class', ids });
}
const DATA = blobs(20, 1, 'x');
const VALIDATION = blobs(8, 2, 'v');

/** A valued AdamW run (optimizer state, linearisation gaps, batch ids); rows go to `onRow` when given. */
function makeTrainer(steps: number, onRow?: (row: TraceEntry) => void): Trainer {
  return new Trainer({
    model: mlp({ inputs: 4, hidden: [6], outputs: 3, seed: 3 }),
    optimizer: adamw({ lr: 0.01, clipNorm: 1 }),
    data: DATA,
    batchSize: 10,
    steps,
    seed: 4,
    valuation: {
      validation: VALIDATION,
      order: 2,
      stageStarts: [steps >> 1],
      recordBatchIds: true,
      ...(onRow ? { keepTrace: false, onTraceRow: onRow } : {}),
    },
  });
}

/**
 * The run loop as inrun train does it: a trace log, a checkpoint (trace flushed first) every
 * `every` steps, resume from the directory's checkpoint. `crashAfter`: stop dead after that step,
 * with rows past the checkpoint already written, as a killed process leaves them.
 */
async function runLoop(
  dir: string,
  steps: number,
  every: number,
  crashAfter?: number,
): Promise<Trainer | null> {
  let log: TraceLog | null = null;
  const trainer = makeTrainer(steps, (row) => log!.append(row));
  const loaded = await loadCheckpoint(dir, 'float32');
  if (loaded) {
    assert.ok(loaded.traceLog);
    log = await TraceLog.resume(dir, loaded.traceLog, { batchIds: true });
    trainer.restore(loaded);
  } else log = await TraceLog.create(dir, { batchIds: true });
  while (!trainer.done) {
    trainer.runStep();
    if (trainer.step % every === 0 && !trainer.done)
      await saveCheckpoint(dir, trainer.checkpoint(), await log.flush());
    if (trainer.step === crashAfter) {
      await log.close();
      return null;
    }
  }
  await log.close();
  return trainer;
}

test('a run killed past a checkpoint resumes to bit-identical weights and byte-identical trace files', async () => {
  const reference = makeTrainer(37);
  while (!reference.done) reference.runStep();
  for (const crashAfter of [3, 9, 36]) {
    const dir = freshDir();
    assert.equal(await runLoop(dir, 37, 5, crashAfter), null);
    const resumed = await runLoop(dir, 37, 5);
    assert.ok(resumed);
    assert.deepEqual(
      Buffer.from(resumed.model.params.buffer),
      Buffer.from(reference.model.params.buffer),
      `crash after ${crashAfter}`,
    );
    assert.deepEqual(resumed.valuer!.ledger.snapshot(), reference.valuer!.ledger.snapshot());
    assert.equal(readFileSync(join(dir, TRACE_CSV), 'utf8'), traceToCsv(reference.valuer!.trace));
    assert.equal(readFileSync(join(dir, TRACE_JSONL), 'utf8'), traceToJsonl(reference.valuer!.trace));
  }
});

test('a checkpoint does not grow with the step count: the trace is not in it', async () => {
  const sizes = async (stopAt: number) => {
    const dir = freshDir();
    let log: TraceLog | null = null;
    const trainer = makeTrainer(1000, (row) => log!.append(row));
    log = await TraceLog.create(dir, { batchIds: true });
    while (trainer.step < stopAt) trainer.runStep();
    await saveCheckpoint(dir, trainer.checkpoint(), await log.flush());
    await log.close();
    const loaded = await loadCheckpoint(dir, 'float32');
    assert.equal(loaded!.valuer!.trace.length, 1);
    assert.equal(loaded!.traceLog!.rows, stopAt - 1);
    const size = (name: string) => statSync(join(dir, CHECKPOINT_DIR, name)).size;
    return { tensors: size('tensors.safetensors'), state: size('state.json'), sums: size('SHA256SUMS') };
  };
  const early = await sizes(10);
  const late = await sizes(200);
  // Only numbers' digits (step, RNG words, byte counts) may differ; 190 trace rows would be ~23 kB.
  assert.equal(late.tensors, early.tensors);
  assert.equal(late.sums, early.sums);
  assert.ok(Math.abs(late.state - early.state) <= 64, `state.json ${early.state} → ${late.state} bytes`);
});

/** A saved checkpoint of a few steps, and its files. */
async function savedCheckpoint() {
  const dir = freshDir();
  assert.equal(await runLoop(dir, 12, 4, 9), null);
  const ckpt = join(dir, CHECKPOINT_DIR);
  return {
    dir,
    state: join(ckpt, 'state.json'),
    tensors: join(ckpt, 'tensors.safetensors'),
    sums: join(ckpt, 'SHA256SUMS'),
  };
}

function rejectsWith(pattern: RegExp) {
  return (e: unknown) => e instanceof InrunError && !e.message.includes('\n') && pattern.test(e.message);
}

const quoted = (path: string) => path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('checkpoints are checked against their sha256: a flipped bit or an edited field is refused', async () => {
  const { dir, state, tensors } = await savedCheckpoint();
  const intact = await loadCheckpoint(dir, 'float32');
  assert.equal(intact!.step, 8);
  const original = { state: readFileSync(state), tensors: readFileSync(tensors) };
  const restore = () => {
    writeFileSync(state, original.state);
    writeFileSync(tensors, original.tensors);
  };

  // One bit anywhere in the tensors: in the header, and in the data.
  for (const at of [20, original.tensors.length - 5]) {
    const flipped = Buffer.from(original.tensors);
    flipped[at] ^= 1;
    writeFileSync(tensors, flipped);
    await assert.rejects(
      loadCheckpoint(dir, 'float32'),
      rejectsWith(new RegExp(`^checkpoint ${quoted(tensors)} is corrupt or was modified: sha256 mismatch$`)),
      `bit flip at byte ${at}`,
    );
    restore();
  }

  const json = JSON.parse(original.state.toString('utf8'));
  const edits: [string, (s: typeof json) => void][] = [
    ['step', (s) => (s.step += 1)],
    ['rng', (s) => (s.rng[2] ^= 1)],
    ['position', (s) => (s.position = 0)],
    ['totalSteps', (s) => (s.totalSteps = 13)],
    ['an example id', (s) => (s.valuer.ids[0] = 'x99')],
    ['a batch id', (s) => (s.valuer.batchIds[0][0] = 'x0')],
    ['the trace position', (s) => (s.traceLog.rows -= 1)],
  ];
  for (const [what, edit] of edits) {
    const changed = structuredClone(json);
    edit(changed);
    writeFileSync(state, `${JSON.stringify(changed)}\n`);
    await assert.rejects(
      loadCheckpoint(dir, 'float32'),
      rejectsWith(new RegExp(`^checkpoint ${quoted(state)} is corrupt or was modified: sha256 mismatch$`)),
      what,
    );
    restore();
  }
  // Even whitespace: the sum covers the bytes.
  writeFileSync(state, `${original.state.toString('utf8').trimEnd()} \n`);
  await assert.rejects(
    loadCheckpoint(dir, 'float32'),
    /state\.json is corrupt or was modified: sha256 mismatch/,
  );
  restore();

  // The previous checkpoint of an interrupted swap is checked the same way.
  renameSync(join(dir, CHECKPOINT_DIR), join(dir, '.checkpoint.old'));
  const oldTensors = join(dir, '.checkpoint.old', 'tensors.safetensors');
  const flipped = Buffer.from(original.tensors);
  flipped[flipped.length - 1] ^= 0x80;
  writeFileSync(oldTensors, flipped);
  await assert.rejects(
    loadCheckpoint(dir, 'float32'),
    rejectsWith(new RegExp(`${quoted(oldTensors)} is corrupt or was modified: sha256 mismatch`)),
  );
});

test('a checkpoint without its sums, or of another format version, is refused with a clear message', async () => {
  const { dir, state, tensors, sums } = await savedCheckpoint();
  const json = JSON.parse(readFileSync(state, 'utf8'));
  const sha = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

  // Written by inrun 0.1 (format version 1): no SHA256SUMS, the trace inside.
  rmSync(sums);
  writeFileSync(state, `${JSON.stringify({ ...json, version: 1, traceLog: undefined })}\n`);
  await assert.rejects(
    loadCheckpoint(dir, 'float32'),
    rejectsWith(
      new RegExp(
        `^${quoted(state)}: checkpoint written by an older inrun \\(format version 1\\); this version cannot resume it`,
      ),
    ),
  );
  // Same version, sums lost: corrupt or incomplete.
  writeFileSync(state, `${JSON.stringify(json)}\n`);
  await assert.rejects(
    loadCheckpoint(dir, 'float32'),
    rejectsWith(
      new RegExp(`^checkpoint ${quoted(sums)} is missing: the checkpoint is corrupt or incomplete$`),
    ),
  );
  // A newer format, sums intact.
  const newer = `${JSON.stringify({ ...json, version: 3, somethingNew: [] })}\n`;
  writeFileSync(state, newer);
  writeFileSync(sums, `${sha(readFileSync(tensors))}  tensors.safetensors\n${sha(newer)}  state.json\n`);
  await assert.rejects(
    loadCheckpoint(dir, 'float32'),
    rejectsWith(/state\.json: checkpoint written by a newer inrun \(format version 3\); .*upgrade inrun/),
  );
  // Sums that name only one file.
  writeFileSync(state, `${JSON.stringify(json)}\n`);
  writeFileSync(sums, `${sha(readFileSync(tensors))}  tensors.safetensors\n`);
  await assert.rejects(
    loadCheckpoint(dir, 'float32'),
    /SHA256SUMS is corrupt or was modified: it has no sha256 of state\.json/,
  );
  // Consistent sums over a state.json that makes no sense: still refused, naming the field.
  const odd = `${JSON.stringify({ ...json, rng: [1, 2, 3] })}\n`;
  writeFileSync(state, odd);
  writeFileSync(sums, `${sha(readFileSync(tensors))}  tensors.safetensors\n${sha(odd)}  state.json\n`);
  await assert.rejects(loadCheckpoint(dir, 'float32'), rejectsWith(/state\.json is corrupt: rng: /));
  // And a missing tensors file.
  writeFileSync(state, `${JSON.stringify(json)}\n`);
  writeFileSync(
    sums,
    `${sha(readFileSync(tensors))}  tensors.safetensors\n${sha(readFileSync(state))}  state.json\n`,
  );
  assert.ok(await loadCheckpoint(dir, 'float32'), 'repaired');
  rmSync(tensors);
  await assert.rejects(
    loadCheckpoint(dir, 'float32'),
    rejectsWith(new RegExp(`^checkpoint ${quoted(tensors)} is missing: the checkpoint is incomplete$`)),
  );
});

test('removeTemporaryFiles removes exactly the leftovers of inrun’s own writers', async () => {
  const dir = freshDir();
  const file = (name: string) => writeFileSync(join(dir, name), 'x');
  const folder = (name: string) => {
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, 'state.json'), '{}');
  };
  // Leftovers of a killed process.
  const manifestTemp = atomicTempName('manifest.json');
  file(manifestTemp);
  file('.values.csv.123.0123456789ab.tmp');
  folder('.checkpoint.tmp-4242-deadbeef');
  folder(CHECKPOINT_DIR);
  folder('.checkpoint.old'); // stale: checkpoint/ is complete
  // Everything else stays, even names that look alike.
  const kept = [
    'notes.txt',
    'manifest.json',
    'trace.csv',
    '.manifest.json.tmp',
    '.values.csv.123.0123456789.tmp',
    '.values.csv.12a.0123456789ab.tmp',
    'values.csv.123.0123456789ab.tmp',
    '.checkpoint.tmp-foo',
    '.checkpoint.tmp-1-deadbeef0',
  ];
  for (const name of kept) file(name);
  folder('.report.html.1.0123456789ab.tmp'); // a folder, not a temporary file
  symlinkSync(join(dir, 'notes.txt'), join(dir, '.link.1.0123456789ab.tmp'));
  kept.push('.report.html.1.0123456789ab.tmp', '.link.1.0123456789ab.tmp', CHECKPOINT_DIR);

  const removed = await removeTemporaryFiles(dir);
  assert.deepEqual(
    removed.sort(),
    [
      manifestTemp,
      '.values.csv.123.0123456789ab.tmp',
      '.checkpoint.tmp-4242-deadbeef',
      '.checkpoint.old',
    ].sort(),
  );
  assert.deepEqual(readdirSync(dir).sort(), kept.sort());
  assert.ok(existsSync(join(dir, 'notes.txt')), 'the link target is untouched');
  assert.deepEqual(await removeTemporaryFiles(dir), []);

  // While checkpoint/ is missing, .checkpoint.old is the checkpoint to resume from: kept.
  rmSync(join(dir, CHECKPOINT_DIR), { recursive: true });
  folder('.checkpoint.old');
  assert.deepEqual(await removeTemporaryFiles(dir), []);
  assert.ok(existsSync(join(dir, '.checkpoint.old', 'state.json')));
  await assert.rejects(removeTemporaryFiles(join(dir, 'missing')), /missing: cannot list the run directory/);
});

test('a checkpoint saved without a trace log still round-trips (library use)', async () => {
  const dir = freshDir();
  const trainer = makeTrainer(6);
  for (let k = 0; k < 4; k++) trainer.runStep();
  const checkpoint = trainer.checkpoint();
  await saveCheckpoint(dir, checkpoint);
  const back = await loadCheckpoint(dir, 'float32');
  assert.deepEqual(back, { ...checkpoint, traceLog: null });
  assert.equal(back!.valuer!.trace.length, 4, 'with keepTrace (the default) the rows are in it');
});

test('a trace position that does not fit the step is a programming error at save time', async () => {
  const dir = freshDir();
  let log: TraceLog | null = null;
  const trainer = makeTrainer(9, (row) => log!.append(row));
  log = await TraceLog.create(dir, { batchIds: true });
  for (let k = 0; k < 4; k++) trainer.runStep();
  const stale = await log.flush();
  trainer.runStep(); // a step after the flush: its completed row is not in `stale`
  await assert.rejects(
    saveCheckpoint(dir, trainer.checkpoint(), stale),
    /the trace position \(3 rows\) does not fit step 5; flush the trace log right before/,
  );
  await saveCheckpoint(dir, trainer.checkpoint(), await log.flush());
  await log.close();
  assert.equal((await loadCheckpoint(dir, 'float32'))!.traceLog!.rows, 4);
});

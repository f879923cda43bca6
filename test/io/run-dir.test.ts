import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parquetReadObjects } from 'hyparquet';
import { hasCheckpoint, loadCheckpoint, removeCheckpoint, saveCheckpoint } from '../../src/io/checkpoint.js';
import { loadRun, parseTraceJsonl, RUN_FILES, writeJsonFile } from '../../src/io/run-dir.js';
import { traceToCsv, traceToJsonl, valuesToJsonl, valuesToParquet } from '../../src/io/values-writers.js';
import { ValueLedger } from '../../src/shapley/ledger.js';
import type { TraceEntry } from '../../src/shapley/valuer.js';
import type { TrainerCheckpoint } from '../../src/train/trainer.js';

const root = mkdtempSync(join(tmpdir(), 'inrun-rundir-'));

function ledgerWithValues(): ValueLedger {
  const ledger = new ValueLedger({ stageStarts: [2], hasSecondOrder: false, validationSize: 2 });
  ledger.addStep({
    step: 0,
    ids: ['a', 'b,"c"'],
    groups: ['g', undefined],
    firstOrder: Float64Array.of(0.1, -0.25),
    secondOrder: null,
    perValidation: Float64Array.of(0.05, 0.05, -0.2, -0.05),
  });
  ledger.addStep({
    step: 2,
    ids: ['a'],
    groups: ['g'],
    firstOrder: Float64Array.of(-0),
    secondOrder: null,
    perValidation: Float64Array.of(-0, 0),
  });
  return ledger;
}

function trace(): TraceEntry[] {
  const row = (step: number, after: number): TraceEntry => ({
    step,
    lr: 0.1,
    batchSize: 2,
    clipFactor: 1,
    trainLoss: 0.7,
    validationLossBefore: 0.69,
    validationLossAfter: after,
    firstOrderSum: 1e-300,
    firstOrderUtility: 5e-324,
    secondOrderSum: null,
    secondOrderUtility: null,
    efficiencyResidual: -0,
    actualUtility: Number.NaN,
    taylorError: Number.NaN,
    emptyUtility: -0,
    batchTaylorError: Number.NaN,
    linearisationGap: step === 0 ? null : 0.125,
    taylorCorrelation: step < 2 ? null : -0.25,
    expansionBroken: step === 0 ? 1 : 0,
    batchIds: ['a', 7],
  });
  return [row(0, 0.6), row(1, Number.NaN)];
}

test('checkpoints round-trip every bit (NaN, −0, null, subnormals, batch ids) and swap atomically', async () => {
  const dir = join(root, 'ckpt');
  mkdirSync(dir);
  assert.equal(await hasCheckpoint(dir), false);
  assert.equal(await loadCheckpoint(dir, 'float32'), null);
  const ledger = ledgerWithValues();
  const checkpoint: TrainerCheckpoint = {
    step: 2,
    totalSteps: 10,
    order: Int32Array.of(3, 1, 0, 2),
    position: 2,
    rng: Uint32Array.of(1, 0xffffffff, 3, 4),
    params: Float32Array.of(0.1, -0, Number.MIN_VALUE, 3.5),
    optimizer: {
      m: Float32Array.of(1, 2, 3, 4),
      v: Float32Array.of(0, 0, 1e-40, 1),
      step: Float64Array.of(2),
    },
    valuer: { ledger: ledger.snapshot(), trace: trace() },
  };
  await saveCheckpoint(dir, checkpoint);
  const back = await loadCheckpoint(dir, 'float32');
  assert.ok(back);
  assert.deepEqual(back, { ...checkpoint, traceLog: null });
  assert.ok(Object.is(back.params[1], -0));
  assert.ok(Object.is(back.valuer!.ledger[0].firstOrder, 0.1 + -0));
  assert.ok(Object.is(back.valuer!.trace[0].efficiencyResidual, -0));

  // A second save replaces the first; a crash between the two renames leaves the old one usable.
  await saveCheckpoint(dir, { ...checkpoint, step: 3 });
  assert.equal((await loadCheckpoint(dir, 'float32'))!.step, 3);
  renameSync(join(dir, RUN_FILES.checkpoint), join(dir, '.checkpoint.old'));
  assert.equal((await loadCheckpoint(dir, 'float32'))!.step, 3);
  await removeCheckpoint(dir);
  assert.equal(await hasCheckpoint(dir), false);
  assert.deepEqual(
    readdirSync(dir).filter((name) => name.startsWith('.checkpoint')),
    [],
  );
});

test('values and trace writers: CSV quoting, JSON nulls, Parquet columns', async () => {
  const ledger = ledgerWithValues();
  const jsonl = valuesToJsonl(ledger)
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  assert.deepEqual(jsonl[1], {
    id: 'b,"c"',
    group: null,
    times_seen: 1,
    first_order: -0.25,
    second_order: null,
    normalized: -0.25 / 0.35,
    stage_0: -0.25,
    stage_1: 0,
    // Added without signals: not measured.
    self_influence: null,
    mean_loss: null,
    aum: null,
    forgetting_events: null,
    times_correct: null,
    class_value: null,
    standard_error: null,
    momentum_credit: null,
  });
  const rows = (await parquetReadObjects({ file: valuesToParquet(ledger).buffer as ArrayBuffer })) as Record<
    string,
    unknown
  >[];
  assert.deepEqual(Object.keys(rows[0]), [
    'id',
    'group',
    'times_seen',
    'first_order',
    'second_order',
    'normalized',
    'stage_0',
    'stage_1',
    'self_influence',
    'mean_loss',
    'aum',
    'forgetting_events',
    'times_correct',
    'class_value',
    'standard_error',
    'momentum_credit',
  ]);
  assert.equal(rows[1].id, 'b,"c"');
  assert.equal(rows[1].second_order, null);
  assert.equal(rows[0].times_seen, 2);

  const csv = traceToCsv(trace()).split('\n');
  assert.equal(csv[0].split(',').at(-1), 'batchIds');
  assert.equal(csv[1], '0,0.1,2,1,0.7,0.69,0.6,1e-300,5e-324,,,0,,,0,,,,1,"[""a"",7]"');
  const j = traceToJsonl(trace())
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  assert.equal(j[1].validationLossAfter, null);
  assert.equal(j[1].linearisationGap, 0.125);
  assert.equal(j[1].batchTaylorError, null);
  assert.deepEqual(j[0].batchIds, ['a', 7]);
});

test('loadRun refuses unfinished or foreign folders', async () => {
  await assert.rejects(loadRun(join(root, 'nothing-here')), /no such run directory/);
  const dir = join(root, 'unfinished');
  mkdirSync(dir);
  await writeJsonFile(join(dir, RUN_FILES.manifest), {
    format: 'inrun-run',
    formatVersion: 2,
    status: 'running',
  });
  await assert.rejects(
    loadRun(dir),
    /the run is not complete \(status: running\); finish it with: inrun train --resume/,
  );
  const foreign = join(root, 'foreign');
  mkdirSync(foreign);
  await writeJsonFile(join(foreign, RUN_FILES.manifest), { name: 'something else' });
  await assert.rejects(loadRun(foreign), /not an inrun run manifest/);
  // A run directory of a later format is refused by name, not misread.
  const later = join(root, 'later');
  mkdirSync(later);
  await writeJsonFile(join(later, RUN_FILES.manifest), {
    format: 'inrun-run',
    formatVersion: 3,
    status: 'complete',
  });
  await assert.rejects(
    loadRun(later),
    /run directory format 3 is not one this inrun reads \(1 or 2\); it was written by a newer inrun/,
  );
});

test('trace rows written before emptyUtility and batchTaylorError existed read them as NaN', () => {
  const [row] = parseTraceJsonl('{"step":0,"taylorError":0.5,"actualUtility":null}\n', 'trace.jsonl');
  assert.ok(
    Number.isNaN(row.emptyUtility) && Number.isNaN(row.batchTaylorError) && Number.isNaN(row.actualUtility),
  );
  assert.equal(row.taylorError, 0.5);
});

import assert from 'node:assert/strict';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parquetMetadata } from 'hyparquet';
import { TensorDataset } from '../../src/data/dataset.js';
import { isAtomicTempName } from '../../src/io/atomic.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/io/checkpoint.js';
import { RUN_FILES } from '../../src/io/run-dir.js';
import {
  readStepValues,
  STEP_VALUE_COLUMNS,
  STEP_VALUES_SIDE_FILE,
  StepValuesLog,
  type StepValuesRecord,
  stepValuesLine,
  writeStepValuesParquet,
} from '../../src/io/step-values.js';
import { TraceLog } from '../../src/io/trace-log.js';
import { mlp } from '../../src/models/builders.js';
import { adamw } from '../../src/optim/adam.js';
import { sgd } from '../../src/optim/sgd.js';
import type { Optimizer, StepPlan } from '../../src/optim/types.js';
import { summarizePlan, Trainer } from '../../src/train/trainer.js';
import { InrunError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

const root = mkdtempSync(join(tmpdir(), 'inrun-step-values-'));
after(() => rmSync(root, { recursive: true, force: true }));
const freshDir = () => mkdtempSync(join(root, 'run-'));

/** Steps of uneven sizes, with awkward ids and values (number ids, quotes, NaN, subnormals). */
function records(n: number, secondOrder = true): StepValuesRecord[] {
  return Array.from({ length: n }, (_, step) => {
    const size = 1 + (step % 4);
    const ids = Array.from({ length: size }, (_, i) => (i % 2 ? `"é,${step}.${i}"` : step * 10 + i));
    const first = Float64Array.from({ length: size }, (_, i) =>
      step === 2 && i === 0 ? Number.NaN : (i - 1) / 3 + step * 1e-300,
    );
    const second = Float64Array.from(first, (x, i) => x - 5e-324 * i);
    return {
      step,
      ids,
      firstOrder: first,
      secondOrder: secondOrder ? second : null,
      plan: {
        lr: 0.1 / (step + 1),
        kScale: 1 / size,
        clipFactor: step === 1 ? 0.25 : 1,
        cNorm: step === 0 ? 0 : Math.sqrt(step),
        kDiagonalMean: step % 2 ? 1e3 / 7 : null,
      },
    };
  });
}

const isInrunError = (pattern: RegExp) => (e: unknown) =>
  e instanceof InrunError && !e.message.includes('\n') && pattern.test(e.message);

async function finish(dir: string, rowGroup?: number): Promise<number> {
  return writeStepValuesParquet(join(dir, STEP_VALUES_SIDE_FILE), join(dir, RUN_FILES.stepValues), rowGroup);
}

test('side file → step-values.parquet → readStepValues: one row per occurrence, every field exact', async () => {
  const dir = freshDir();
  const steps = records(7);
  const log = StepValuesLog.create(dir);
  for (const r of steps) log.append(r);
  assert.equal(log.stepCount, 7);
  log.close();
  log.close(); // harmless
  assert.equal(
    readFileSync(join(dir, STEP_VALUES_SIDE_FILE), 'utf8'),
    steps.map(stepValuesLine).join(''),
    'one JSON line per step',
  );
  const total = steps.reduce((n, r) => n + r.ids.length, 0);
  // Row groups of 3 rows: steps straddle them.
  assert.equal(await finish(dir, 3), total);
  assert.ok(
    readdirSync(dir).every((name) => !isAtomicTempName(name)),
    'no temporary file is left',
  );
  const bytes = readFileSync(join(dir, RUN_FILES.stepValues));
  const metadata = parquetMetadata(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer,
  );
  assert.deepEqual(
    metadata.schema.slice(1).map((e) => [e.name, e.type]),
    STEP_VALUE_COLUMNS.map((name) => [
      name,
      name === 'id' ? 'BYTE_ARRAY' : ['step', 'position', 'batch_size'].includes(name) ? 'INT32' : 'DOUBLE',
    ]),
  );
  assert.equal(metadata.row_groups.length, Math.ceil(total / 3));

  const rows = await readStepValues(dir);
  assert.equal(rows.length, total);
  let k = 0;
  for (const r of steps)
    r.ids.forEach((id, i) => {
      const finite = (x: number) => (Number.isFinite(x) ? x : null);
      assert.deepEqual(rows[k++], {
        step: r.step,
        position: i,
        id: String(id),
        firstOrder: finite(r.firstOrder[i]),
        secondOrder: finite(r.secondOrder![i]),
        lr: r.plan.lr,
        kScale: r.plan.kScale,
        clipFactor: r.plan.clipFactor,
        batchSize: r.ids.length,
        cNorm: r.plan.cNorm,
        kDiagonalMean: r.plan.kDiagonalMean,
      });
    });

  // The same rows in one row group: also read back alike; the default group size gives equal files.
  const other = freshDir();
  const again = StepValuesLog.create(other);
  for (const r of steps) again.append(r);
  again.close();
  await finish(other);
  assert.deepEqual(await readStepValues(other), rows);
  const third = freshDir();
  writeFileSync(join(third, STEP_VALUES_SIDE_FILE), readFileSync(join(other, STEP_VALUES_SIDE_FILE)));
  await finish(third);
  assert.ok(
    readFileSync(join(third, RUN_FILES.stepValues)).equals(readFileSync(join(other, RUN_FILES.stepValues))),
  );
});

test('first-order runs: second_order is null on every row', async () => {
  const dir = freshDir();
  const log = StepValuesLog.create(dir);
  for (const r of records(3, false)) log.append(r);
  log.close();
  await finish(dir);
  const rows = await readStepValues(dir);
  assert.ok(rows.length > 0 && rows.every((row) => row.secondOrder === null));
});

test('resume cuts the side file back to the checkpoint: the finished file is byte-identical', async () => {
  const steps = records(9);
  const whole = freshDir();
  const reference = StepValuesLog.create(whole);
  for (const r of steps) reference.append(r);
  reference.close();
  await finish(whole);

  const dir = freshDir();
  const first = StepValuesLog.create(dir);
  for (const r of steps.slice(0, 4)) first.append(r);
  const position = first.flush();
  // Steps after the checkpoint reach the disk, then the process dies (here: closes).
  for (const r of steps.slice(4, 7)) first.append(r);
  first.close();
  assert.ok(readFileSync(join(dir, STEP_VALUES_SIDE_FILE)).length > position.bytes);

  const resumed = StepValuesLog.resume(dir, position, 4);
  assert.equal(readFileSync(join(dir, STEP_VALUES_SIDE_FILE)).length, position.bytes);
  assert.throws(() => resumed.append(steps[5]), /step 5 where step 4 was next/);
  for (const r of steps.slice(4)) resumed.append(r);
  resumed.close();
  assert.ok(
    readFileSync(join(dir, STEP_VALUES_SIDE_FILE)).equals(readFileSync(join(whole, STEP_VALUES_SIDE_FILE))),
  );
  await finish(dir);
  assert.ok(
    readFileSync(join(dir, RUN_FILES.stepValues)).equals(readFileSync(join(whole, RUN_FILES.stepValues))),
  );
});

test('resume refuses a side file that is missing, shorter, modified or of another step count', () => {
  const setUp = () => {
    const dir = freshDir();
    const log = StepValuesLog.create(dir);
    for (const r of records(3)) log.append(r);
    const position = log.flush();
    log.close();
    return { dir, position, path: join(dir, STEP_VALUES_SIDE_FILE) };
  };
  let s = setUp();
  rmSync(s.path);
  assert.throws(
    () => StepValuesLog.resume(s.dir, s.position, 3),
    isInrunError(/\.step-values\.jsonl: missing; the checkpoint expects \d+ bytes of step values in it/),
  );
  s = setUp();
  writeFileSync(s.path, readFileSync(s.path).subarray(0, 10));
  assert.throws(
    () => StepValuesLog.resume(s.dir, s.position, 3),
    isInrunError(/shorter than the \d+ bytes the checkpoint recorded; the step values file was truncated/),
  );
  s = setUp();
  const bytes = readFileSync(s.path);
  bytes[5] ^= 1;
  writeFileSync(s.path, bytes);
  assert.throws(
    () => StepValuesLog.resume(s.dir, s.position, 3),
    isInrunError(/sha256 mismatch\); the step values file was modified/),
  );
  s = setUp();
  assert.throws(
    () => StepValuesLog.resume(s.dir, s.position, 4),
    isInrunError(/3 steps where the checkpoint recorded 4/),
  );
  // Bytes past the position are cut, whatever they are.
  s = setUp();
  appendFileSync(s.path, '{"half a line');
  StepValuesLog.resume(s.dir, s.position, 3).close();
  assert.equal(readFileSync(s.path).length, s.position.bytes);
});

test('a corrupt side file is refused at conversion, naming the line; no parquet is left', async () => {
  const dir = freshDir();
  const log = StepValuesLog.create(dir);
  for (const r of records(3)) log.append(r);
  log.close();
  appendFileSync(
    join(dir, STEP_VALUES_SIDE_FILE),
    '{"step":7,"ids":[],"firstOrder":[],"secondOrder":null}\n',
  );
  await assert.rejects(finish(dir), isInrunError(/line 4 is not step 3's values/));
  assert.deepEqual(readdirSync(dir), [STEP_VALUES_SIDE_FILE]);
  await assert.rejects(
    readStepValues(dir),
    isInrunError(/step-values\.parquet: no such file; the run was not trained with stepValues/),
  );
});

test('summarizePlan: ‖c‖ (0 without c) and the mean of K’s diagonal (null without one)', () => {
  const plan = (c: number[] | null, d: number[] | null): StepPlan => ({
    step: 0,
    lr: 0.5,
    c: c && Float32Array.from(c),
    kScale: 0.25,
    kDiagonal: d && Float32Array.from(d),
    clipFactor: 0.75,
  });
  assert.deepEqual(summarizePlan(plan(null, null)), {
    lr: 0.5,
    kScale: 0.25,
    clipFactor: 0.75,
    cNorm: 0,
    kDiagonalMean: null,
  });
  assert.deepEqual(summarizePlan(plan([3, -4], [1, 2, 6])), {
    lr: 0.5,
    kScale: 0.25,
    clipFactor: 0.75,
    cNorm: 5,
    kDiagonalMean: 3,
  });
});

function blobs(n: number, seed: number, prefix: string) {
  const rng = new Rng(seed);
  const features = new Float64Array(n * 4);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = rng.int(3);
    labels.push(y);
    for (let k = 0; k < 4; k++) features[i * 4 + k] = rng.normal() + (k === y ? 2 : 0);
  }
  return new TensorDataset({
    name: prefix,
    features,
    width: 4,
    labels,
    labelKind: 'class',
    ids: labels.map((_, i) => `${prefix}${i}`),
  });
}

test('StepReport.plan: SGD with decay has ‖c‖ > 0 from step 0, Adam a diagonal; training is unchanged', () => {
  const run = (optimizer: () => Optimizer, valued: boolean) => {
    const trainer = new Trainer({
      model: mlp({ inputs: 4, hidden: [5], outputs: 3, seed: 1 }),
      optimizer: optimizer(),
      data: blobs(24, 1, 'x'),
      batchSize: 8,
      steps: 4,
      seed: 2,
      planSummaries: true,
      ...(valued ? { valuation: { validation: blobs(6, 2, 'v'), order: 2 as const } } : {}),
    });
    const reports = Array.from({ length: 4 }, () => {
      const report = trainer.runStep();
      return { ...report, plan: report.plan! };
    });
    return { reports, params: trainer.model.params.slice() };
  };
  const decay = run(() => sgd({ lr: 0.1, weightDecay: 0.01 }), true);
  assert.ok(decay.reports.every((r) => r.plan.cNorm > 0 && r.plan.kDiagonalMean === null));
  assert.ok(
    decay.reports.every((r) => r.plan.kScale === 1 / 8 && r.plan.clipFactor === 1 && r.plan.lr === r.lr),
  );
  const adam = run(() => adamw({ lr: 0.01, clipNorm: 0.5 }), true);
  assert.ok(adam.reports.every((r) => r.plan.kDiagonalMean !== null && r.plan.kDiagonalMean > 0));
  assert.ok(adam.reports.some((r) => r.plan.clipFactor < 1));
  // Reading the plan changes nothing: the weights are those of plain training.
  const plain = run(() => sgd({ lr: 0.1, momentum: 0.9 }), false);
  const valued = run(() => sgd({ lr: 0.1, momentum: 0.9 }), true);
  assert.deepEqual(valued.params, plain.params);
  assert.deepEqual(
    valued.reports.map((r) => r.plan.cNorm > 0),
    [false, true, true, true],
  );
});

test('checkpoints keep the side file position; older ones (without it) still load', async () => {
  const dir = freshDir();
  const trainer = new Trainer({
    model: mlp({ inputs: 4, hidden: [5], outputs: 3, seed: 1 }),
    optimizer: sgd({ lr: 0.1 }),
    data: blobs(24, 1, 'x'),
    batchSize: 8,
    steps: 6,
    planSummaries: true,
    valuation: {
      validation: blobs(6, 2, 'v'),
      order: 1,
      keepTrace: false,
      onTraceRow: (row) => trace.append(row),
    },
  });
  const trace = await TraceLog.create(dir, { batchIds: false });
  const side = StepValuesLog.create(dir);
  for (let k = 0; k < 3; k++) {
    const r = trainer.runStep();
    side.append({
      step: r.step,
      ids: r.ids,
      firstOrder: r.values!.firstOrder,
      secondOrder: null,
      plan: r.plan!,
    });
  }
  const position = await trace.flush();
  const stepValues = side.flush();
  await saveCheckpoint(dir, trainer.checkpoint(), {
    ...position,
    stepValuesBytes: stepValues.bytes,
    stepValuesSha256: stepValues.sha256,
  });
  const loaded = await loadCheckpoint(dir, 'float32');
  assert.equal(loaded!.traceLog!.stepValuesBytes, stepValues.bytes);
  assert.equal(loaded!.traceLog!.stepValuesSha256, stepValues.sha256);
  StepValuesLog.resume(dir, stepValues, loaded!.step).close();

  await saveCheckpoint(dir, trainer.checkpoint(), position);
  const older = await loadCheckpoint(dir, 'float32');
  assert.ok(
    older!.traceLog && !('stepValuesBytes' in older!.traceLog) && !('stepValuesSha256' in older!.traceLog),
  );
  await trace.close();
  side.close();
  assert.ok(existsSync(join(dir, STEP_VALUES_SIDE_FILE)));
});

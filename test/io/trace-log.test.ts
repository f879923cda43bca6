import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { TRACE_CSV, TRACE_JSONL, TraceLog, type TracePosition } from '../../src/io/trace-log.js';
import { traceToCsv, traceToJsonl } from '../../src/io/values-writers.js';
import type { TraceEntry } from '../../src/shapley/valuer.js';
import { InrunError } from '../../src/util/errors.js';

const root = mkdtempSync(join(tmpdir(), 'inrun-tracelog-'));
after(() => rmSync(root, { recursive: true, force: true }));
const freshDir = () => mkdtempSync(join(root, 'run-'));

/** Rows with the awkward values: NaN, −0, nulls, subnormals, ids needing CSV quotes. */
function rows(n: number, batchIds: boolean): TraceEntry[] {
  return Array.from({ length: n }, (_, step) => ({
    step,
    lr: 0.1 * (step + 1),
    batchSize: 2,
    clipFactor: step % 3 === 0 ? 1 : 0.5,
    trainLoss: 0.7 - step * 1e-3,
    validationLossBefore: 0.69 - step * 1e-4,
    validationLossAfter: step === 2 ? Number.NaN : 0.68 - step * 1e-4,
    firstOrderSum: 1e-300,
    firstOrderUtility: 5e-324,
    secondOrderSum: step % 2 ? null : -0,
    secondOrderUtility: step % 2 ? null : 1 / 3,
    efficiencyResidual: (-1) ** step * step * 1e-17,
    actualUtility: Number.NaN,
    taylorError: step,
    emptyUtility: step % 2 ? 0 : -1 / 7,
    batchTaylorError: step === 2 ? Number.NaN : step + 1 / 7,
    linearisationGap: step === 0 ? null : 0.125,
    taylorCorrelation: step < 2 ? null : 0.5 - step / 7,
    expansionBroken: step % 3 === 0 ? 1 : 0,
    ...(batchIds ? { batchIds: ['a,"b"', step, `é${step}`] } : {}),
  }));
}

const read = (dir: string) => ({
  csv: readFileSync(join(dir, TRACE_CSV), 'utf8'),
  jsonl: readFileSync(join(dir, TRACE_JSONL), 'utf8'),
});

function isInrunError(pattern: RegExp, file: string) {
  return (e: unknown) =>
    e instanceof InrunError &&
    e.message.startsWith(file) &&
    !e.message.includes('\n') &&
    pattern.test(e.message);
}

test('rows appended as the run goes give exactly the bytes of traceToCsv / traceToJsonl', async () => {
  for (const batchIds of [false, true]) {
    const dir = freshDir();
    const all = rows(12, batchIds);
    const log = await TraceLog.create(dir, { batchIds });
    for (const row of all) log.append(row);
    const position: TracePosition = await log.flush();
    await log.close();
    await log.close(); // harmless
    const files = read(dir);
    assert.equal(files.csv, traceToCsv(all));
    assert.equal(files.jsonl, traceToJsonl(all));
    assert.equal(position.rows, 12);
    assert.equal(position.csvBytes, Buffer.byteLength(files.csv));
    assert.equal(position.jsonlBytes, Buffer.byteLength(files.jsonl));
    assert.equal(position.csvSha256, createHash('sha256').update(files.csv).digest('hex'));
    assert.equal(position.jsonlSha256, createHash('sha256').update(files.jsonl).digest('hex'));
    assert.deepEqual(position.stats, {
      initialValidationLoss: all[0].validationLossBefore,
      finalValidationLoss: all[11].validationLossAfter,
      maxAbsEfficiencyResidual: Math.abs(all[11].efficiencyResidual),
      // Every third row is flagged (rows 0, 3, 6, 9 of 12).
      brokenSteps: all.slice(0, 12).filter((row) => row.expansionBroken === 1).length,
    });
    assert.equal(position.stats.brokenSteps, 4);
    assert.throws(() => log.append(all[0]), /closed/);
  }
});

test('a row whose batchIds do not match the log is a programming error', async () => {
  const log = await TraceLog.create(freshDir(), { batchIds: true });
  assert.throws(
    () => log.append(rows(1, false)[0]),
    /lacks batchIds, the log was opened with batchIds: true/,
  );
  await log.close();
});

test('flush makes the rows durable; before it, large amounts still go to disk, so memory stays bounded', async () => {
  const dir = freshDir();
  const log = await TraceLog.create(dir, { batchIds: true });
  const many = rows(20000, true);
  for (const row of many.slice(0, 10)) log.append(row);
  assert.equal(statSync(join(dir, TRACE_JSONL)).size, 0, 'small amounts wait for flush');
  for (const row of many.slice(10)) log.append(row);
  const early = statSync(join(dir, TRACE_JSONL)).size;
  assert.ok(early > 0, 'more than the buffer was written out before any flush');
  const position = await log.flush();
  assert.ok(position.jsonlBytes > early);
  assert.equal(statSync(join(dir, TRACE_JSONL)).size, position.jsonlBytes);
  await log.close();
  assert.equal(read(dir).jsonl, traceToJsonl(many));
});

test('resume cuts both files back to the checkpoint position and continues to the same bytes', async () => {
  const all = rows(15, true);
  const dir = freshDir();
  const first = await TraceLog.create(dir, { batchIds: true });
  for (const row of all.slice(0, 6)) first.append(row);
  const position = await first.flush(); // the checkpoint
  // After the checkpoint the process went on, wrote more (some rows half-way), then died.
  for (const row of all.slice(6, 9)) first.append(row);
  await first.flush();
  await first.close();
  appendFileSync(join(dir, TRACE_CSV), '9,0.1,2,1,0.7');
  appendFileSync(join(dir, TRACE_JSONL), '{"step":9,"lr"');

  const resumed = await TraceLog.resume(dir, position, { batchIds: true });
  assert.equal(resumed.rowCount, 6);
  assert.equal(statSync(join(dir, TRACE_CSV)).size, position.csvBytes);
  assert.equal(statSync(join(dir, TRACE_JSONL)).size, position.jsonlBytes);
  for (const row of all.slice(6)) resumed.append(row);
  const end = await resumed.flush();
  await resumed.close();
  assert.deepEqual(read(dir), { csv: traceToCsv(all), jsonl: traceToJsonl(all) });
  assert.deepEqual(end.stats, {
    initialValidationLoss: all[0].validationLossBefore,
    finalValidationLoss: all[14].validationLossAfter,
    maxAbsEfficiencyResidual: Math.abs(all[14].efficiencyResidual),
    // Counted across the resume: rows 0, 3, …, 12 of 15.
    brokenSteps: 5,
  });

  // Resuming at a position of zero rows (a checkpoint before any row completed) works as well.
  const empty = freshDir();
  const log = await TraceLog.create(empty, { batchIds: false });
  const start = await log.flush();
  log.append(rows(1, false)[0]);
  await log.close();
  const again = await TraceLog.resume(empty, start, { batchIds: false });
  for (const row of rows(3, false)) again.append(row);
  await again.close();
  assert.deepEqual(read(empty), { csv: traceToCsv(rows(3, false)), jsonl: traceToJsonl(rows(3, false)) });
});

test('resume refuses trace files that are not what the checkpoint saw, naming the file', async () => {
  const setup = async () => {
    const dir = freshDir();
    const log = await TraceLog.create(dir, { batchIds: false });
    for (const row of rows(5, false)) log.append(row);
    const position = await log.flush();
    await log.close();
    return { dir, position, csv: join(dir, TRACE_CSV), jsonl: join(dir, TRACE_JSONL) };
  };

  let s = await setup();
  truncateSync(s.jsonl, s.position.jsonlBytes - 3);
  await assert.rejects(
    TraceLog.resume(s.dir, s.position, { batchIds: false }),
    isInrunError(/trace\.jsonl: \d+ bytes, shorter than the \d+ bytes the checkpoint recorded/, s.jsonl),
  );

  s = await setup();
  const text = readFileSync(s.csv, 'utf8');
  writeFileSync(s.csv, text.replace('0.69', '0.96'));
  await assert.rejects(
    TraceLog.resume(s.dir, s.position, { batchIds: false }),
    isInrunError(/not those the checkpoint recorded \(sha256 mismatch\); the trace was modified/, s.csv),
  );

  s = await setup();
  rmSync(s.jsonl);
  await assert.rejects(
    TraceLog.resume(s.dir, s.position, { batchIds: false }),
    isInrunError(/trace\.jsonl: missing; the checkpoint expects \d+ bytes of trace in it/, s.jsonl),
  );

  s = await setup();
  await assert.rejects(
    TraceLog.resume(s.dir, s.position, { batchIds: true }),
    isInrunError(/its header is not this run's \(with the batchIds column\)/, s.csv),
  );

  s = await setup();
  await assert.rejects(
    TraceLog.resume(s.dir, { ...s.position, rows: 4 }, { batchIds: false }),
    isInrunError(/trace\.csv: 5 rows where the checkpoint recorded 4/, s.csv),
  );
  // A refused resume changes nothing: the same files still resume.
  const log = await TraceLog.resume(s.dir, s.position, { batchIds: false });
  await log.close();
  assert.equal(read(s.dir).jsonl, traceToJsonl(rows(5, false)));
});

test('a full disk never breaks append (a training step); flush reports it, naming the file', {
  skip: !existsSync('/dev/full') && 'needs /dev/full',
}, async () => {
  const dir = freshDir();
  symlinkSync('/dev/full', join(dir, TRACE_JSONL));
  const log = await TraceLog.create(dir, { batchIds: true });
  for (const row of rows(5000, true)) log.append(row); // several spills, each refused by the disk
  await assert.rejects(
    log.flush(),
    isInrunError(/trace\.jsonl: cannot write the trace \(no space left on device\)$/, join(dir, TRACE_JSONL)),
  );
  await assert.rejects(log.close(), /no space left on device/);
  assert.throws(() => log.append(rows(1, true)[0]), /closed/);
});

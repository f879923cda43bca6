// step-values.parquet: with `stepValues` (`--step-values`), every step's values per example
// occurrence, so that any step can be audited from the run directory alone. During the run each
// step goes, as one JSON line, to the hidden side file .step-values.jsonl (appended in memory
// first and written in large pieces, like the trace: src/io/trace-log.ts); a checkpoint records
// how many of its bytes are durable (with their sha256) beside the trace files' position, and a
// resume cuts it back to them, so the rows of steps run after the checkpoint are written again,
// once. When the run completes the side file is converted to step-values.parquet (streamed, one
// row group at a time) and removed. Both are pure functions of the run: a resumed run's files are
// byte-identical to an uninterrupted run's.
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fsyncSync, openSync } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { parquetReadObjects } from 'hyparquet';
import { type ColumnSource, fileWriter, ParquetWriter, schemaFromColumnData } from 'hyparquet-writer';
import type { ExampleId } from '../data/dataset.js';
import type { StepPlanSummary } from '../train/trainer.js';
import { fail } from '../util/errors.js';
import { errorCode, failFileError } from '../util/fs-errors.js';
import { atomicTempName, syncDirectory } from './atomic.js';
import { RUN_FILES } from './run-dir.js';
import { checkPrefix, closeQuietly, cutTo, LogFile, openFile } from './trace-log.js';

/** The side file the rows go to while the run goes; removed once the run completes. */
export const STEP_VALUES_SIDE_FILE = '.step-values.jsonl';

/**
 * The columns of step-values.parquet, in order. Long format: one row per (step, example
 * occurrence), steps in order and each step's rows in batch order.
 *
 * - `step` (INT32): the 0-based optimizer step.
 * - `position` (INT32): the example's 0-based position in that step's batch.
 * - `id` (STRING): the example's id (as in values.parquet; a number id as its decimal text).
 * - `first_order` (DOUBLE): the example's first-order value at this step, φ_i = ⟨g_i, η Kᵀ g_V⟩
 *   (validation-loss units; positive = it lowered the validation loss).
 * - `second_order` (DOUBLE): with the curvature term, ⟨g_i, Kᵀ(η g_V − η² H_V (c + ½ K g_B))⟩;
 *   null for first-order runs (`order: 1`).
 * - then the step's summary, the same on every row of the step, with the step written as
 *   w⁺ = w − η (c + K g_B) (src/optim/types.ts):
 *   `lr` (DOUBLE) η; `k_scale` (DOUBLE) K's scalar factor, the clip factor / |B| for a mean loss;
 *   `clip_factor` (DOUBLE) the global-norm clip factor (1 = not clipped); `batch_size` (INT32) |B|;
 *   `c_norm` (DOUBLE) ‖c‖₂, the batch-independent part of the step (momentum carried in, weight
 *   decay), 0 when there is none (plain SGD without decay, and the first step of momentum SGD);
 *   `k_diagonal_mean` (DOUBLE) the mean of Adam's per-parameter diagonal of K, null for SGD.
 *
 * Σ over a step's rows of `first_order` is that step's trace `firstOrderSum` (and of
 * `second_order` its `secondOrderSum`), up to the rounding of the summation order. Every step of
 * the run is here, including steps before `valueFrom`, which the trace has too but values.* leave
 * out. Values are per step, before any momentum credit (`momentumCredit`) later steps add.
 * Non-finite numbers are null.
 */
export const STEP_VALUE_COLUMNS = [
  'step',
  'position',
  'id',
  'first_order',
  'second_order',
  'lr',
  'k_scale',
  'clip_factor',
  'batch_size',
  'c_norm',
  'k_diagonal_mean',
] as const;

/** One row of step-values.parquet (see STEP_VALUE_COLUMNS), camel-cased. */
export interface StepValueRow {
  step: number;
  position: number;
  id: string;
  firstOrder: number | null;
  /** Null for first-order runs. */
  secondOrder: number | null;
  lr: number;
  kScale: number;
  clipFactor: number;
  batchSize: number;
  cNorm: number;
  /** Null for SGD (K is a scalar). */
  kDiagonalMean: number | null;
}

/** One step as the trainer reports it (StepReport): ids and values by batch position, and the plan. */
export interface StepValuesRecord {
  step: number;
  ids: ExampleId[];
  firstOrder: ArrayLike<number>;
  secondOrder: ArrayLike<number> | null;
  plan: StepPlanSummary;
}

/** One line of the side file, as JSON: a step. */
interface SideLine {
  step: number;
  lr: number | null;
  kScale: number | null;
  clipFactor: number | null;
  cNorm: number | null;
  kDiagonalMean: number | null;
  ids: ExampleId[];
  firstOrder: (number | null)[];
  secondOrder: (number | null)[] | null;
}

/** The side file's durable bytes at a checkpoint (kept in TracePosition as stepValuesBytes/Sha256). */
export interface StepValuesPosition {
  bytes: number;
  sha256: string;
}

const WHAT = 'step values';
/** The file, in messages of the checks on resume. */
const FILE_WHAT = 'step values file';

/** One side-file line, with its newline. JSON keeps every finite double exactly; NaN and ±∞ become null. */
export function stepValuesLine(record: StepValuesRecord): string {
  const { ids, firstOrder, secondOrder, plan } = record;
  if (firstOrder.length !== ids.length || (secondOrder && secondOrder.length !== ids.length))
    throw new Error(
      `stepValuesLine: step ${record.step} has ${ids.length} ids but ${firstOrder.length} first-order${secondOrder ? ` and ${secondOrder.length} second-order` : ''} values`,
    );
  const line: SideLine = {
    step: record.step,
    lr: plan.lr,
    kScale: plan.kScale,
    clipFactor: plan.clipFactor,
    cNorm: plan.cNorm,
    kDiagonalMean: plan.kDiagonalMean,
    ids,
    firstOrder: Array.from(firstOrder),
    secondOrder: secondOrder ? Array.from(secondOrder) : null,
  };
  return `${JSON.stringify(line)}\n`;
}

/** Appends steps to .step-values.jsonl in a run directory (see the file comment). */
export class StepValuesLog {
  private closed = false;

  private constructor(
    private readonly file: LogFile,
    private steps: number,
  ) {}

  /** Starts the side file empty (replacing any). */
  static create(runDir: string): StepValuesLog {
    const path = join(runDir, STEP_VALUES_SIDE_FILE);
    const fd = openFile(path, 'w', null, WHAT);
    return new StepValuesLog(new LogFile(path, fd, 0, createHash('sha256'), `the ${WHAT}`), 0);
  }

  /**
   * Continues the side file of an interrupted run from a checkpoint's position: checks that it
   * begins with exactly the bytes the checkpoint saw, holding `steps` steps (the checkpoint's
   * step), and cuts off what was written after them.
   */
  static resume(runDir: string, position: StepValuesPosition, steps: number): StepValuesLog {
    const path = join(runDir, STEP_VALUES_SIDE_FILE);
    const fd = openFile(path, 'r+', position.bytes, WHAT);
    try {
      const prefix = checkPrefix(fd, path, position.bytes, position.sha256, FILE_WHAT);
      if (prefix.lines !== steps)
        fail(
          `${path}: ${prefix.lines} steps where the checkpoint recorded ${steps}, so the run cannot resume`,
        );
      cutTo(fd, path, prefix.size, position.bytes, FILE_WHAT);
      return new StepValuesLog(new LogFile(path, fd, position.bytes, prefix.hash, `the ${WHAT}`), steps);
    } catch (error) {
      closeQuietly(fd);
      throw error;
    }
  }

  /** Adds one step (in step order). Memory stays bounded: large amounts go to disk. */
  append(record: StepValuesRecord): void {
    if (this.closed) throw new Error('StepValuesLog.append: the step values log is closed');
    if (record.step !== this.steps)
      throw new Error(`StepValuesLog.append: step ${record.step} where step ${this.steps} was next`);
    this.file.add(stepValuesLine(record));
    this.steps += 1;
  }

  /** Steps appended so far. */
  get stepCount(): number {
    return this.steps;
  }

  /** Writes and fsyncs everything appended; the position returned is on disk, for the checkpoint. */
  flush(): StepValuesPosition {
    if (this.closed) throw new Error('StepValuesLog.flush: the step values log is closed');
    this.file.sync();
    return { bytes: this.file.bytes, sha256: this.file.sha256() };
  }

  /** Flushes and closes the file (closed even when the flush fails). Closing twice is harmless. */
  close(): void {
    if (this.closed) return;
    try {
      this.flush();
    } finally {
      this.closed = true;
      this.file.close();
    }
  }
}

/** Rows per row group of step-values.parquet: fixed, so equal runs give equal files. */
export const STEP_VALUES_ROW_GROUP = 100_000;

const finite = (x: number | null): number | null => (x === null || !Number.isFinite(x) ? null : x);

/** Column buffers of one row group. */
class Columns {
  step: number[] = [];
  position: number[] = [];
  id: string[] = [];
  first: (number | null)[] = [];
  second: (number | null)[] = [];
  lr: (number | null)[] = [];
  kScale: (number | null)[] = [];
  clip: (number | null)[] = [];
  batchSize: number[] = [];
  cNorm: (number | null)[] = [];
  kDiagonal: (number | null)[] = [];

  get length(): number {
    return this.step.length;
  }

  sources(): ColumnSource[] {
    return [
      { name: 'step', data: this.step, type: 'INT32' },
      { name: 'position', data: this.position, type: 'INT32' },
      { name: 'id', data: this.id, type: 'STRING' },
      { name: 'first_order', data: this.first, type: 'DOUBLE' },
      { name: 'second_order', data: this.second, type: 'DOUBLE' },
      { name: 'lr', data: this.lr, type: 'DOUBLE' },
      { name: 'k_scale', data: this.kScale, type: 'DOUBLE' },
      { name: 'clip_factor', data: this.clip, type: 'DOUBLE' },
      { name: 'batch_size', data: this.batchSize, type: 'INT32' },
      { name: 'c_norm', data: this.cNorm, type: 'DOUBLE' },
      { name: 'k_diagonal_mean', data: this.kDiagonal, type: 'DOUBLE' },
    ];
  }
}

function parseLine(text: string, path: string, lineNumber: number, expectedStep: number): SideLine {
  let line: SideLine;
  try {
    line = JSON.parse(text) as SideLine;
  } catch (error) {
    return fail(
      `${path}: line ${lineNumber} is not valid JSON (${(error as Error).message}); the file is corrupt`,
    );
  }
  const ok =
    line !== null &&
    typeof line === 'object' &&
    line.step === expectedStep &&
    Array.isArray(line.ids) &&
    Array.isArray(line.firstOrder) &&
    line.firstOrder.length === line.ids.length &&
    (line.secondOrder === null ||
      (Array.isArray(line.secondOrder) && line.secondOrder.length === line.ids.length));
  if (!ok)
    fail(
      `${path}: line ${lineNumber} is not step ${expectedStep}'s values (ids and values of equal length); the file is corrupt`,
    );
  return line;
}

/**
 * Converts a side file (`sidePath`) into step-values.parquet at `outPath`, written under a
 * temporary name (writeFileAtomic's form, so cleanup knows it), fsynced and renamed into place;
 * memory holds one row group at a time. Returns the number of rows. Fails (an InrunError naming
 * the file) on a line that is not the next step's.
 */
export async function writeStepValuesParquet(
  sidePath: string,
  outPath: string,
  /** Rows per row group (tests use small ones). */
  rowGroup = STEP_VALUES_ROW_GROUP,
): Promise<number> {
  const temp = join(dirname(outPath), atomicTempName(basename(outPath)));
  const empty = new Columns();
  const schema = schemaFromColumnData({ columnData: empty.sources() });
  let rows = 0;
  let created = false;
  try {
    let writer: ReturnType<typeof fileWriter>;
    try {
      writer = fileWriter(temp);
      created = true;
    } catch (error) {
      return failFileError(error, temp, 'write the step values');
    }
    const parquet = new ParquetWriter({ writer, schema });
    let group = new Columns();
    const writeGroup = () => {
      if (group.length === 0) return;
      try {
        parquet.write({ columnData: group.sources(), rowGroupSize: group.length });
      } catch (error) {
        if (errorCode(error) !== undefined) failFileError(error, temp, 'write the step values');
        throw error;
      }
      group = new Columns();
    };
    const input = createReadStream(sidePath, { encoding: 'utf8' });
    const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
    let step = 0;
    try {
      for await (const text of lines) {
        const line = parseLine(text, sidePath, step + 1, step);
        const n = line.ids.length;
        for (let i = 0; i < n; i++) {
          group.step.push(line.step);
          group.position.push(i);
          group.id.push(String(line.ids[i]));
          group.first.push(finite(line.firstOrder[i]));
          group.second.push(line.secondOrder ? finite(line.secondOrder[i]) : null);
          group.lr.push(finite(line.lr));
          group.kScale.push(finite(line.kScale));
          group.clip.push(finite(line.clipFactor));
          group.batchSize.push(n);
          group.cNorm.push(finite(line.cNorm));
          group.kDiagonal.push(finite(line.kDiagonalMean));
          if (group.length === rowGroup) writeGroup();
        }
        rows += n;
        step += 1;
      }
    } catch (error) {
      if (errorCode(error) !== undefined) failFileError(error, sidePath, 'read the step values');
      throw error;
    } finally {
      lines.close();
      input.destroy();
    }
    writeGroup();
    try {
      await parquet.finish();
      const fd = openSync(temp, 'r+');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      await rename(temp, outPath);
    } catch (error) {
      return failFileError(error, outPath, 'write the step values');
    }
    created = false;
    await syncDirectory(dirname(outPath));
    return rows;
  } finally {
    if (created) await rm(temp, { force: true }).catch(() => {});
  }
}

/**
 * Reads `<runDir>/step-values.parquet` (a run trained with `stepValues`) back: one row per
 * (step, example occurrence), in file order (see STEP_VALUE_COLUMNS for what each column means).
 */
export async function readStepValues(runDir: string): Promise<StepValueRow[]> {
  const path = join(runDir, RUN_FILES.stepValues);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if (errorCode(error) === 'ENOENT')
      fail(
        `${path}: no such file; the run was not trained with stepValues (--step-values), or has not completed`,
      );
    return failFileError(error, path, 'read');
  }
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let objects: Record<string, unknown>[];
  try {
    objects = (await parquetReadObjects({ file: buffer })) as Record<string, unknown>[];
  } catch (error) {
    return fail(
      `${path}: cannot decode the Parquet data (${(error as Error).message}); is the file corrupt?`,
    );
  }
  const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  return objects.map((o) => ({
    step: Number(o.step),
    position: Number(o.position),
    id: String(o.id),
    firstOrder: num(o.first_order),
    secondOrder: num(o.second_order),
    lr: Number(o.lr),
    kScale: Number(o.k_scale),
    clipFactor: Number(o.clip_factor),
    batchSize: Number(o.batch_size),
    cNorm: Number(o.c_norm),
    kDiagonalMean: num(o.k_diagonal_mean),
  }));
}

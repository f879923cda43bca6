// trace.csv and trace.jsonl written as the run goes: each completed step's row is appended (in
// memory first, on disk in large writes), and `flush()` makes everything appended so far durable
// and returns the files' position for the checkpoint. A resume cuts both files back to the
// checkpoint's position, after checking that what is there is what the checkpoint saw, so rows
// written after the checkpoint (and lost with the process) are written again, once. The finished
// files are byte-identical to traceToCsv / traceToJsonl of the whole trace.
import { createHash, type Hash } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../util/errors.js';
import { failFileError } from '../util/fs-errors.js';
import { type RunTraceEntry, traceCsvHeader, traceCsvRow, traceJsonlLine } from './values-writers.js';

export const TRACE_CSV = 'trace.csv';
export const TRACE_JSONL = 'trace.jsonl';

/** What the trace files held at a checkpoint; stored in the checkpoint, constant in size. */
export interface TracePosition {
  /** Complete rows in both files. */
  rows: number;
  csvBytes: number;
  jsonlBytes: number;
  /** sha256 (hex) of the first csvBytes / jsonlBytes bytes: a resume continues only the same files. */
  csvSha256: string;
  jsonlSha256: string;
  /** Figures of the rows so far, for the run's summary without reading the files back. */
  stats: TraceStats;
  /**
   * Runs with `stepValues`: the bytes of .step-values.jsonl (src/io/step-values.ts) that hold the
   * checkpoint's steps, and their sha256. Absent (checkpoints of runs without step values, and of
   * inrun before it had them): no step values.
   */
  stepValuesBytes?: number;
  stepValuesSha256?: string;
}

export interface TraceStats {
  /** Validation loss before the first step; null until a row was written. */
  initialValidationLoss: number | null;
  /** Validation loss after the last written row's step; null until a row was written. */
  finalValidationLoss: number | null;
  /** max |efficiencyResidual| over the rows written; 0 before any. */
  maxAbsEfficiencyResidual: number;
  /** Rows with expansionBroken = 1 (steps whose Taylor expansion broke down). */
  brokenSteps: number;
}

export interface TraceLogOptions {
  /** Whether rows carry batchIds (trace.csv then has the batchIds column). */
  batchIds: boolean;
  /** Whether rows carry testLoss and testAccuracy (a run with a test set; trace.csv then has their columns). */
  test?: boolean;
}

/** Bytes held in memory before they are written out (without fsync) between flushes. */
const SPILL_BYTES = 1 << 20;

/**
 * An append-only log file (each of the two trace files; also .step-values.jsonl, see
 * src/io/step-values.ts): its descriptor, what has been written, its running sha256, and what
 * waits in memory.
 */
export class LogFile {
  private readonly hash: Hash;
  private pending: string[] = [];
  private pendingBytes = 0;
  /** Buffered bytes that trigger the next write. */
  private nextSpill = SPILL_BYTES;

  constructor(
    readonly path: string,
    private fd: number | null,
    /** Bytes on disk (written, maybe not yet synced). */
    private written: number,
    hash: Hash,
    /** What the file holds, for messages ("the trace"). */
    private readonly what = 'the trace',
  ) {
    this.hash = hash;
  }

  get bytes(): number {
    return this.written + this.pendingBytes;
  }

  add(text: string): void {
    this.pending.push(text);
    this.pendingBytes += Buffer.byteLength(text);
    if (this.pendingBytes < this.nextSpill) return;
    try {
      this.write();
      this.nextSpill = SPILL_BYTES;
    } catch {
      // Kept in memory; flush() writes it again (at the same offset) and reports the problem, so
      // a full disk never breaks a training step half-way. Retrying only once the buffer has
      // doubled keeps a disk that stays full from costing a rewrite of the buffer every step.
      this.nextSpill = 2 * this.pendingBytes;
    }
  }

  /** Writes what waits in memory at the end of what is on disk. */
  write(): void {
    if (this.pendingBytes === 0) return;
    const data = Buffer.from(this.pending.join(''), 'utf8');
    try {
      let done = 0;
      while (done < data.length)
        done += writeSync(this.open(), data, done, data.length - done, this.written + done);
    } catch (error) {
      failFileError(error, this.path, `write ${this.what}`);
    }
    this.hash.update(data);
    this.written += data.length;
    this.pending = [];
    this.pendingBytes = 0;
  }

  sync(): void {
    this.write();
    try {
      fsyncSync(this.open());
    } catch (error) {
      failFileError(error, this.path, `write ${this.what}`);
    }
  }

  sha256(): string {
    return this.hash.copy().digest('hex');
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      closeSync(fd);
    } catch (error) {
      failFileError(error, this.path, `close ${this.what}`);
    }
  }

  private open(): number {
    if (this.fd === null) throw new Error(`${this.path}: ${this.what} log is closed`);
    return this.fd;
  }
}

/** Closes a descriptor on an error path, where the first error is the one to report. */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // The error being reported already says what went wrong.
  }
}

/** Opens a log file: 'w' to start it empty, 'r+' to continue it from a checkpoint's `position` (bytes). */
export function openFile(path: string, flags: 'w' | 'r+', position: number | null, what = 'trace'): number {
  try {
    return openSync(path, flags);
  } catch (error) {
    if (position !== null && (error as NodeJS.ErrnoException).code === 'ENOENT')
      fail(
        `${path}: missing; the checkpoint expects ${position} bytes of ${what} in it, so the run cannot resume`,
      );
    return failFileError(error, path, flags === 'w' ? `create the ${what}` : `open the ${what}`);
  }
}

/**
 * Checks that the open file begins with the `bytes` bytes the checkpoint recorded. Returns the
 * hash of those bytes (to continue it), how many lines they hold, and the file's size.
 */
export function checkPrefix(
  fd: number,
  path: string,
  bytes: number,
  sha256: string,
  what = 'trace',
): { hash: Hash; lines: number; size: number } {
  let size: number;
  try {
    size = fstatSync(fd).size;
  } catch (error) {
    return failFileError(error, path, `read the ${what}`);
  }
  if (size < bytes)
    fail(
      `${path}: ${size} bytes, shorter than the ${bytes} bytes the checkpoint recorded; the ${what} was truncated or replaced, so the run cannot resume`,
    );
  const hash = createHash('sha256');
  const chunk = Buffer.alloc(Math.min(SPILL_BYTES, Math.max(bytes, 1)));
  let lines = 0;
  try {
    for (let at = 0; at < bytes; ) {
      const got = readSync(fd, chunk, 0, Math.min(chunk.length, bytes - at), at);
      if (got === 0) break;
      const part = chunk.subarray(0, got);
      hash.update(part);
      for (let k = part.indexOf(10); k >= 0; k = part.indexOf(10, k + 1)) lines++;
      at += got;
    }
  } catch (error) {
    return failFileError(error, path, `read the ${what}`);
  }
  if (hash.copy().digest('hex') !== sha256)
    fail(
      `${path}: its first ${bytes} bytes are not those the checkpoint recorded (sha256 mismatch); the ${what} was modified, so the run cannot resume`,
    );
  return { hash, lines, size };
}

/** Cuts off what was written after the checkpoint. */
export function cutTo(fd: number, path: string, size: number, bytes: number, what = 'trace'): void {
  try {
    if (size > bytes) ftruncateSync(fd, bytes);
    fsyncSync(fd);
  } catch (error) {
    failFileError(error, path, `cut the ${what} back to the checkpoint`);
  }
}

/** Appends trace rows to trace.csv and trace.jsonl in a run directory (see the file comment). */
export class TraceLog {
  private rows: number;
  private readonly stats: TraceStats;
  private closed = false;

  private constructor(
    private readonly csv: LogFile,
    private readonly jsonl: LogFile,
    private readonly batchIds: boolean,
    private readonly test: boolean,
    rows: number,
    stats: TraceStats,
  ) {
    this.rows = rows;
    this.stats = { ...stats };
  }

  /** Starts both files empty (replacing any), trace.csv with its header. */
  static async create(runDir: string, options: TraceLogOptions): Promise<TraceLog> {
    const csvPath = join(runDir, TRACE_CSV);
    const jsonlPath = join(runDir, TRACE_JSONL);
    const csvFd = openFile(csvPath, 'w', null);
    let jsonlFd: number;
    try {
      jsonlFd = openFile(jsonlPath, 'w', null);
    } catch (error) {
      closeQuietly(csvFd);
      throw error;
    }
    const log = new TraceLog(
      new LogFile(csvPath, csvFd, 0, createHash('sha256')),
      new LogFile(jsonlPath, jsonlFd, 0, createHash('sha256')),
      options.batchIds,
      options.test ?? false,
      0,
      { initialValidationLoss: null, finalValidationLoss: null, maxAbsEfficiencyResidual: 0, brokenSteps: 0 },
    );
    log.csv.add(`${traceCsvHeader(options.batchIds, options.test)}\n`);
    return log;
  }

  /**
   * Continues the files of an interrupted run from a checkpoint's position: checks that they still
   * begin with exactly the bytes the checkpoint saw (and trace.csv with this run's header), and
   * cuts off whatever was written after it.
   */
  static async resume(runDir: string, position: TracePosition, options: TraceLogOptions): Promise<TraceLog> {
    const csvPath = join(runDir, TRACE_CSV);
    const jsonlPath = join(runDir, TRACE_JSONL);
    const fds: number[] = [];
    try {
      const csvFd = openFile(csvPath, 'r+', position.csvBytes);
      fds.push(csvFd);
      const jsonlFd = openFile(jsonlPath, 'r+', position.jsonlBytes);
      fds.push(jsonlFd);
      const csv = checkPrefix(csvFd, csvPath, position.csvBytes, position.csvSha256);
      const jsonl = checkPrefix(jsonlFd, jsonlPath, position.jsonlBytes, position.jsonlSha256);
      // The bytes are the checkpoint's; these catch a run set up differently from the one that wrote them.
      const header = Buffer.from(`${traceCsvHeader(options.batchIds, options.test)}\n`);
      const start = Buffer.alloc(header.length);
      let got = 0;
      try {
        got = readSync(csvFd, start, 0, start.length, 0);
      } catch (error) {
        failFileError(error, csvPath, 'read the trace');
      }
      if (position.csvBytes < header.length || got < header.length || !start.equals(header))
        fail(
          `${csvPath}: its header is not this run's (${options.batchIds ? 'with' : 'without'} the batchIds column${options.test ? ', with the test columns' : ''}), or an older version of inrun wrote other columns, so the run cannot resume`,
        );
      if (csv.lines !== position.rows + 1)
        fail(
          `${csvPath}: ${csv.lines - 1} rows where the checkpoint recorded ${position.rows}, so the run cannot resume`,
        );
      if (jsonl.lines !== position.rows)
        fail(
          `${jsonlPath}: ${jsonl.lines} rows where the checkpoint recorded ${position.rows}, so the run cannot resume`,
        );
      cutTo(csvFd, csvPath, csv.size, position.csvBytes);
      cutTo(jsonlFd, jsonlPath, jsonl.size, position.jsonlBytes);
      return new TraceLog(
        new LogFile(csvPath, csvFd, position.csvBytes, csv.hash),
        new LogFile(jsonlPath, jsonlFd, position.jsonlBytes, jsonl.hash),
        options.batchIds,
        options.test ?? false,
        position.rows,
        position.stats,
      );
    } catch (error) {
      for (const fd of fds) closeQuietly(fd);
      throw error;
    }
  }

  /** Adds one completed row (in step order). Memory stays bounded: large amounts go to disk. */
  append(row: RunTraceEntry): void {
    if (this.closed) throw new Error('TraceLog.append: the trace log is closed');
    if ((row.batchIds !== undefined) !== this.batchIds)
      throw new Error(
        `TraceLog.append: the row ${row.batchIds === undefined ? 'lacks' : 'has'} batchIds, the log was opened with batchIds: ${this.batchIds}`,
      );
    // Every row of a run with a test set has the test fields (null where not evaluated), so both files agree.
    if ((row.testLoss !== undefined) !== this.test)
      throw new Error(
        `TraceLog.append: the row ${row.testLoss === undefined ? 'lacks' : 'has'} testLoss, the log was opened with test: ${this.test}`,
      );
    this.csv.add(`${traceCsvRow(row, this.batchIds, this.test)}\n`);
    this.jsonl.add(traceJsonlLine(row));
    if (this.rows === 0) this.stats.initialValidationLoss = row.validationLossBefore;
    this.stats.finalValidationLoss = Number.isFinite(row.validationLossAfter)
      ? row.validationLossAfter
      : null;
    this.stats.maxAbsEfficiencyResidual = Math.max(
      this.stats.maxAbsEfficiencyResidual,
      Math.abs(row.efficiencyResidual),
    );
    if (row.expansionBroken === 1) this.stats.brokenSteps += 1;
    this.rows += 1;
  }

  /** Rows appended so far. */
  get rowCount(): number {
    return this.rows;
  }

  /** Figures of the rows appended so far (over the run, across resumes). */
  get summary(): TraceStats {
    return { ...this.stats };
  }

  /** Writes and fsyncs everything appended; the position returned is on disk, for the checkpoint. */
  async flush(): Promise<TracePosition> {
    if (this.closed) throw new Error('TraceLog.flush: the trace log is closed');
    this.csv.sync();
    this.jsonl.sync();
    return {
      rows: this.rows,
      csvBytes: this.csv.bytes,
      jsonlBytes: this.jsonl.bytes,
      csvSha256: this.csv.sha256(),
      jsonlSha256: this.jsonl.sha256(),
      stats: { ...this.stats },
    };
  }

  /**
   * Flushes and closes both files (closed even when the flush fails); the log takes no more rows.
   * Closing twice is harmless.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
    } finally {
      this.closed = true;
      try {
        this.csv.close();
      } finally {
        this.jsonl.close();
      }
    }
  }
}

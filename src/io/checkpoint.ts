// Trainer checkpoints on disk, exact to the bit: every float (weights, optimizer state, ledger,
// the trace rows the valuer holds) is stored as raw IEEE bytes in a safetensors file, everything
// else (ids, groups, batch ids, the RNG state, the trace files' position) as JSON. SHA256SUMS
// (sha256sum's format) holds the sha256 of both, so a flipped bit or an edited field is refused
// instead of resuming to a wrong result. A checkpoint is a folder written whole under a temporary
// name and renamed into place, so a crash at any moment leaves the previous checkpoint or the new
// one. The trace itself is not in it (src/io/trace-log.ts), so its size does not grow with the step.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { FloatArray } from '../kernels/types.js';
import { type LedgerEntry, perValidationMatrices } from '../shapley/ledger.js';
import type { TraceEntry } from '../shapley/valuer.js';
import type { TrainerCheckpoint } from '../train/trainer.js';
import { fail } from '../util/errors.js';
import { errorCode, failFileError } from '../util/fs-errors.js';
import { sha256Hex } from '../util/hash.js';
import { isAtomicTempName, syncDirectory } from './atomic.js';
import { RUN_FILES } from './run-files.js';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from './safetensors.js';
import type { TracePosition } from './trace-log.js';
import { TRACE_FIELDS } from './values-writers.js';

export const CHECKPOINT_DIR = RUN_FILES.checkpoint;
const OLD_DIR = '.checkpoint.old';
const TEMP_DIR = /^\.checkpoint\.tmp-\d+-[0-9a-f]{8}$/;

/** The names of the checkpoint writer's temporary folders (a new one, and the previous one while swapping). */
export function isCheckpointTempName(name: string): boolean {
  return TEMP_DIR.test(name) || name === OLD_DIR;
}
const STATE_JSON = 'state.json';
const TENSORS = 'tensors.safetensors';
const SUMS = 'SHA256SUMS';
const FORMAT = 'inrun-checkpoint';
/** 1: no checksums, the whole trace inside. 2: SHA256SUMS, the trace files' position instead. */
const VERSION = 2;

/** A checkpoint as read back: the trainer's state and where the trace files stood. */
export interface LoadedCheckpoint extends TrainerCheckpoint {
  /** The trace files' position saved with it; null when it was saved without a trace log. */
  traceLog: TracePosition | null;
}

/** Ledger signals stored as one float64 tensor each (`lastCorrect` is coded −1/0/1 beside them). */
const SIGNAL_TENSORS = [
  ['ledger.self_influence', 'selfInfluence'],
  ['ledger.loss_sum', 'lossSum'],
  ['ledger.margin_sum', 'marginSum'],
  ['ledger.forgetting_events', 'forgettingEvents'],
  ['ledger.times_correct', 'timesCorrect'],
  ['ledger.class_value', 'classValue'],
  ['ledger.value_variance', 'valueVariance'],
  ['ledger.momentum_credit', 'momentumCredit'],
] as const;

const count = z.number().int().min(0);
const id = z.union([z.string(), z.number()]);
const finiteOrNull = z.number().nullable();
const StateSchema = z.strictObject({
  format: z.literal(FORMAT),
  version: z.literal(VERSION),
  step: count,
  totalSteps: count,
  position: count,
  rng: z.array(z.number().int().min(0).max(0xffffffff)).length(4),
  optimizer: z.array(z.string()),
  valuer: z
    .strictObject({
      ids: z.array(id),
      groups: z.array(z.string().nullable()),
      stages: count,
      perValidation: count.nullable(),
      traceRows: count,
      /** The running Taylor correlation's sums (absent before 0.3.0). */
      taylorSums: z.array(z.number().nullable()).length(6).optional(),
      /** Trace fields that are null, per row (only fields with any null). */
      traceNulls: z.record(z.string(), z.array(count)),
      batchIds: z.array(z.array(id)).nullable(),
    })
    .nullable(),
  traceLog: z
    .strictObject({
      rows: count,
      csvBytes: count,
      jsonlBytes: count,
      csvSha256: z.string().regex(/^[0-9a-f]{64}$/),
      jsonlSha256: z.string().regex(/^[0-9a-f]{64}$/),
      stats: z.strictObject({
        initialValidationLoss: finiteOrNull,
        finalValidationLoss: finiteOrNull,
        // JSON has no NaN: a non-finite maximum is stored as null.
        maxAbsEfficiencyResidual: finiteOrNull,
        // Absent before 0.3.0, whose rows had no breakdown flags: 0.
        brokenSteps: count.default(0),
      }),
      // Runs with stepValues (src/io/step-values.ts); absent in older checkpoints: no step values.
      stepValuesBytes: count.optional(),
      stepValuesSha256: z
        .string()
        .regex(/^[0-9a-f]{64}$/)
        .optional(),
    })
    .nullable(),
});
type StateJson = z.infer<typeof StateSchema>;

/**
 * Whether the trace files' position fits the checkpoint: every row before the step's is in the
 * files, and the step's own row (still waiting for its validation loss after) in the valuer.
 */
function traceFits(step: number, trace: TraceEntry[], traceLog: { rows: number }): boolean {
  const last = trace.at(-1);
  const pending = last !== undefined && Number.isNaN(last.validationLossAfter) ? 1 : 0;
  return traceLog.rows + pending === step;
}

async function writeSynced(path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function f64(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values);
}

/**
 * Writes `checkpoint` into `<runDir>/checkpoint/`, replacing the previous one atomically, with
 * `traceLog`: the position TraceLog.flush() returned just before (null without a trace log).
 */
export async function saveCheckpoint(
  runDir: string,
  checkpoint: TrainerCheckpoint,
  traceLog: TracePosition | null = null,
): Promise<void> {
  if (traceLog && checkpoint.valuer && !traceFits(checkpoint.step, checkpoint.valuer.trace, traceLog))
    throw new Error(
      `saveCheckpoint: the trace position (${traceLog.rows} rows) does not fit step ${checkpoint.step}; flush the trace log right before`,
    );
  const tensors: NamedTensor[] = [
    { name: 'params', shape: [checkpoint.params.length], data: checkpoint.params },
    { name: 'order', shape: [checkpoint.order.length], data: f64(checkpoint.order) },
  ];
  const optimizerNames = Object.keys(checkpoint.optimizer).sort();
  for (const name of optimizerNames) {
    const t = checkpoint.optimizer[name];
    tensors.push({ name: `optimizer.${name}`, shape: [t.length], data: t });
  }
  let valuer: StateJson['valuer'] = null;
  if (checkpoint.valuer) {
    const { ledger, trace } = checkpoint.valuer;
    const n = ledger.length;
    const stages = ledger[0]?.stages.length ?? 0;
    const perValidation = ledger[0]?.perValidation ? ledger[0].perValidation.length : null;
    const column = (get: (e: LedgerEntry) => number) => f64(ledger.map(get));
    tensors.push(
      { name: 'ledger.first_order', shape: [n], data: column((e) => e.firstOrder) },
      { name: 'ledger.second_order', shape: [n], data: column((e) => e.secondOrder) },
      { name: 'ledger.normalized', shape: [n], data: column((e) => e.normalized) },
      // A tensor rather than JSON: the checkpoint's size must not grow as the counts gain digits.
      { name: 'ledger.times_seen', shape: [n], data: column((e) => e.timesSeen) },
    );
    for (const [name, field] of SIGNAL_TENSORS)
      tensors.push({ name, shape: [n], data: column((e) => e[field]) });
    tensors.push({
      name: 'ledger.last_correct',
      shape: [n],
      data: column((e) => (e.lastCorrect === null ? -1 : e.lastCorrect ? 1 : 0)),
    });
    const stageData = new Float64Array(n * stages);
    ledger.forEach((e, i) => {
      stageData.set(e.stages, i * stages);
    });
    tensors.push({ name: 'ledger.stages', shape: [n, stages], data: stageData });
    if (perValidation !== null) {
      const q = perValidation;
      const matrices = perValidationMatrices(ledger, q, stages);
      tensors.push(
        { name: 'ledger.per_validation', shape: [n, q], data: matrices.firstOrder },
        { name: 'ledger.per_validation_normalized', shape: [n, q], data: matrices.normalized },
      );
      if (matrices.secondOrder)
        tensors.push({ name: 'ledger.per_validation_second', shape: [n, q], data: matrices.secondOrder });
      if (matrices.stages)
        tensors.push({ name: 'ledger.per_validation_stages', shape: [n, q * stages], data: matrices.stages });
    }
    const traceNulls: Record<string, number[]> = {};
    for (const field of TRACE_FIELDS) {
      const values = new Float64Array(trace.length);
      trace.forEach((row, r) => {
        const v = row[field];
        if (v === null) {
          traceNulls[field] ??= [];
          traceNulls[field].push(r);
        }
        values[r] = v ?? Number.NaN;
      });
      tensors.push({ name: `trace.${field}`, shape: [trace.length], data: values });
    }
    const withIds = trace.length > 0 && trace.every((row) => row.batchIds !== undefined);
    valuer = {
      ids: ledger.map((e) => e.id),
      groups: ledger.map((e) => e.group ?? null),
      stages,
      perValidation,
      traceRows: trace.length,
      // JSON has no NaN: a sum that stopped counting (an older checkpoint's) is stored as null.
      ...(checkpoint.valuer.taylorSums
        ? { taylorSums: checkpoint.valuer.taylorSums.map((x) => (Number.isFinite(x) ? x : null)) }
        : {}),
      traceNulls,
      batchIds: withIds ? trace.map((row) => row.batchIds!) : null,
    };
  }
  const state: StateJson = {
    format: FORMAT,
    version: VERSION,
    step: checkpoint.step,
    totalSteps: checkpoint.totalSteps,
    position: checkpoint.position,
    rng: Array.from(checkpoint.rng),
    optimizer: optimizerNames,
    valuer,
    traceLog: traceLog && {
      rows: traceLog.rows,
      csvBytes: traceLog.csvBytes,
      jsonlBytes: traceLog.jsonlBytes,
      csvSha256: traceLog.csvSha256,
      jsonlSha256: traceLog.jsonlSha256,
      stats: { ...traceLog.stats },
      ...(traceLog.stepValuesBytes !== undefined
        ? { stepValuesBytes: traceLog.stepValuesBytes, stepValuesSha256: traceLog.stepValuesSha256 }
        : {}),
    },
  };
  const tensorBytes = encodeSafetensors(tensors, { format: FORMAT });
  const stateText = `${JSON.stringify(state)}\n`;
  const sums = `${sha256Hex(tensorBytes)}  ${TENSORS}\n${sha256Hex(stateText)}  ${STATE_JSON}\n`;

  const temp = join(runDir, `.checkpoint.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(temp);
  try {
    await writeSynced(join(temp, TENSORS), tensorBytes);
    await writeSynced(join(temp, STATE_JSON), stateText);
    await writeSynced(join(temp, SUMS), sums);
    const current = join(runDir, CHECKPOINT_DIR);
    const old = join(runDir, OLD_DIR);
    await rm(old, { recursive: true, force: true });
    if (await exists(current)) await rename(current, old);
    await rename(temp, current);
    await syncDirectory(runDir);
    await rm(old, { recursive: true, force: true });
  } catch (error) {
    await rm(temp, { recursive: true, force: true }).catch(() => {});
    throw error;
  }
}

/** Whether the run directory holds a checkpoint (possibly the previous one of an interrupted swap). */
export async function hasCheckpoint(runDir: string): Promise<boolean> {
  return (
    (await exists(join(runDir, CHECKPOINT_DIR, STATE_JSON))) ||
    (await exists(join(runDir, OLD_DIR, STATE_JSON)))
  );
}

/** Removes the checkpoint folders (after a run completes). */
export async function removeCheckpoint(runDir: string): Promise<void> {
  await rm(join(runDir, CHECKPOINT_DIR), { recursive: true, force: true });
  await rm(join(runDir, OLD_DIR), { recursive: true, force: true });
}

/** Reads a file of the checkpoint; file-system problems in words. */
async function readPart(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') fail(`checkpoint ${path} is missing: the checkpoint is incomplete`);
    return failFileError(error, path, 'read the checkpoint');
  }
}

/** The format version a state.json claims, when it is readable at all (for a clear message). */
function claimedVersion(text: string): number | null {
  try {
    const value = JSON.parse(text) as { format?: unknown; version?: unknown };
    return value.format === FORMAT && typeof value.version === 'number' ? value.version : null;
  } catch {
    return null;
  }
}

function checkVersion(text: string, where: string): void {
  const version = claimedVersion(text);
  if (version !== null && version < VERSION)
    fail(
      `${where}: checkpoint written by an older inrun (format version ${version}); this version cannot resume it (start the run again)`,
    );
  if (version !== null && version > VERSION)
    fail(
      `${where}: checkpoint written by a newer inrun (format version ${version}); this version reads version ${VERSION}, so upgrade inrun to resume it`,
    );
}

/** Reads SHA256SUMS (written last: without it the checkpoint is of an older format or incomplete). */
async function readSums(dir: string, stateText: string): Promise<Map<string, string>> {
  const sumsPath = join(dir, SUMS);
  let sumsText: string;
  try {
    sumsText = await readFile(sumsPath, 'utf8');
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') return failFileError(error, sumsPath, 'read the checkpoint');
    checkVersion(stateText, join(dir, STATE_JSON));
    return fail(`checkpoint ${sumsPath} is missing: the checkpoint is corrupt or incomplete`);
  }
  const sums = new Map<string, string>();
  for (const line of sumsText.split('\n')) {
    if (line === '') continue;
    const match = /^([0-9a-f]{64}) {2}(\S+)$/.exec(line);
    if (!match) fail(`checkpoint ${sumsPath} is corrupt or was modified: a line is not "<sha256>  <file>"`);
    sums.set(match[2], match[1]);
  }
  return sums;
}

function verify(dir: string, sums: Map<string, string>, name: string, bytes: Uint8Array): void {
  const want = sums.get(name);
  if (want === undefined)
    fail(`checkpoint ${join(dir, SUMS)} is corrupt or was modified: it has no sha256 of ${name}`);
  if (sha256Hex(bytes) !== want)
    fail(`checkpoint ${join(dir, name)} is corrupt or was modified: sha256 mismatch`);
}

/**
 * Reads the run's checkpoint, or null if it has none. `dtype` is the model's float type (the
 * parameters and optimizer state come back as that type). Every file is checked against its
 * sha256 first; a checkpoint of another format version is refused with a message saying so.
 */
export async function loadCheckpoint(
  runDir: string,
  dtype: 'float32' | 'float64',
): Promise<LoadedCheckpoint | null> {
  let dir = join(runDir, CHECKPOINT_DIR);
  if (!(await exists(join(dir, STATE_JSON)))) {
    dir = join(runDir, OLD_DIR);
    if (!(await exists(join(dir, STATE_JSON)))) return null;
  }
  const where = join(dir, STATE_JSON);
  const stateBytes = await readPart(where);
  const stateText = stateBytes.toString('utf8');
  const sums = await readSums(dir, stateText);
  verify(dir, sums, STATE_JSON, stateBytes);
  // Now state.json is as written; an older or newer format is told as such before anything else.
  checkVersion(stateText, where);
  const tensorPath = join(dir, TENSORS);
  const tensorBytes = await readPart(tensorPath);
  verify(dir, sums, TENSORS, tensorBytes);
  let parsed: unknown;
  try {
    parsed = JSON.parse(stateText);
  } catch (error) {
    return fail(`checkpoint ${where} is corrupt: not valid JSON (${(error as Error).message})`);
  }
  const result = StateSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    return fail(
      `checkpoint ${where} is corrupt: ${issue.path.join('.') || 'the top level'}: ${issue.message}`,
    );
  }
  const state: StateJson = result.data;
  if (
    state.traceLog &&
    (state.traceLog.stepValuesBytes === undefined) !== (state.traceLog.stepValuesSha256 === undefined)
  )
    fail(`checkpoint ${where} is corrupt: traceLog has only one of stepValuesBytes and stepValuesSha256`);
  const { tensors } = decodeSafetensors(tensorBytes, tensorPath);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const get = (name: string, shape: number[]): FloatArray => {
    const t = byName.get(name);
    if (!t) fail(`checkpoint ${tensorPath} is corrupt: no tensor "${name}"`);
    if (t.shape.join() !== shape.join())
      fail(
        `checkpoint ${tensorPath} is corrupt: tensor "${name}" has shape [${t.shape}], expected [${shape}]`,
      );
    return t.data;
  };
  const length = (name: string): number => {
    const t = byName.get(name);
    if (t?.shape.length !== 1) fail(`checkpoint ${tensorPath} is corrupt: no 1-D tensor "${name}"`);
    return t.shape[0];
  };
  const asDtype = (t: FloatArray): FloatArray =>
    dtype === 'float32'
      ? t instanceof Float32Array
        ? t
        : Float32Array.from(t)
      : t instanceof Float64Array
        ? t
        : Float64Array.from(t);
  const optimizer: Record<string, FloatArray> = {};
  for (const name of state.optimizer) {
    const key = `optimizer.${name}`;
    const t = get(key, [length(key)]);
    // Step counters are stored as float64 whatever the model's type.
    optimizer[name] = name === 'step' ? t : asDtype(t);
  }
  let valuer: TrainerCheckpoint['valuer'] = null;
  if (state.valuer) {
    const v = state.valuer;
    const n = v.ids.length;
    if (v.groups.length !== n) fail(`checkpoint ${where} is corrupt: ${n} ids but ${v.groups.length} groups`);
    const first = get('ledger.first_order', [n]);
    const second = get('ledger.second_order', [n]);
    const normalized = get('ledger.normalized', [n]);
    const timesSeen = get('ledger.times_seen', [n]);
    const stages = get('ledger.stages', [n, v.stages]);
    const q = v.perValidation;
    const pv = q !== null ? get('ledger.per_validation', [n, q]) : null;
    // Before 0.3.0 per-validation values had no normalised, second-order or per-stage columns.
    if (q !== null && !byName.has('ledger.per_validation_normalized'))
      fail(
        `checkpoint ${where} was written by an older inrun without per-validation normalised values; this version cannot resume it (start the run again)`,
      );
    const optional = (name: string, width: number) => (byName.has(name) ? get(name, [n, width]) : null);
    const pvNormalized = q !== null ? get('ledger.per_validation_normalized', [n, q]) : null;
    const pvSecond = q !== null ? optional('ledger.per_validation_second', q) : null;
    const pvStages = q !== null ? optional('ledger.per_validation_stages', q * v.stages) : null;
    const row = (data: FloatArray, i: number, width: number) =>
      Float64Array.from(data.subarray(i * width, (i + 1) * width));
    // Checkpoints from before 0.3.0 lack the signals: NaN, as not measured.
    const signal = (name: string) =>
      byName.has(name) ? get(name, [n]) : new Float64Array(n).fill(Number.NaN);
    const signals = SIGNAL_TENSORS.map(([name, field]) => [field, signal(name)] as const);
    const lastCorrect = signal('ledger.last_correct');
    const ledger: LedgerEntry[] = v.ids.map((id, i) => ({
      ...(Object.fromEntries(signals.map(([field, data]) => [field, data[i]])) as Record<
        (typeof SIGNAL_TENSORS)[number][1],
        number
      >),
      lastCorrect: lastCorrect[i] === 1 ? true : lastCorrect[i] === 0 ? false : null,
      id,
      group: v.groups[i] ?? undefined,
      timesSeen: timesSeen[i],
      firstOrder: first[i],
      secondOrder: second[i],
      stages: Array.from(stages.subarray(i * v.stages, (i + 1) * v.stages)),
      normalized: normalized[i],
      ...(pv && q !== null
        ? {
            perValidation: row(pv, i, q),
            perValidationNormalized: row(pvNormalized!, i, q),
            ...(pvSecond ? { perValidationSecond: row(pvSecond, i, q) } : {}),
            ...(pvStages ? { perValidationStages: row(pvStages, i, q * v.stages) } : {}),
          }
        : {}),
    }));
    const rows = v.traceRows;
    if (v.batchIds && v.batchIds.length !== rows)
      fail(`checkpoint ${where} is corrupt: ${v.batchIds.length} batches of ids for ${rows} trace rows`);
    // Checkpoints from before 0.2.0 lack these columns: NaN, as not measured.
    const added = new Set<string>(['emptyUtility', 'batchTaylorError']);
    // Before 0.3.0 they lacked these: null, as not measured.
    const addedNullable = new Set<string>(['taylorCorrelation', 'expansionBroken']);
    const columns = Object.fromEntries(
      TRACE_FIELDS.map((f) => [
        f,
        (added.has(f) || addedNullable.has(f)) && !byName.has(`trace.${f}`)
          ? new Float64Array(rows).fill(Number.NaN)
          : get(`trace.${f}`, [rows]),
      ]),
    );
    const nulls = Object.fromEntries(Object.entries(v.traceNulls).map(([f, r]) => [f, new Set(r)]));
    const trace: TraceEntry[] = [];
    for (let r = 0; r < rows; r++) {
      const row: Record<string, unknown> = {};
      for (const f of TRACE_FIELDS)
        row[f] =
          nulls[f]?.has(r) || (addedNullable.has(f) && !byName.has(`trace.${f}`)) ? null : columns[f][r];
      if (v.batchIds) row.batchIds = v.batchIds[r];
      trace.push(row as unknown as TraceEntry);
    }
    valuer = {
      ledger,
      trace,
      ...(v.taylorSums ? { taylorSums: v.taylorSums.map((x) => x ?? Number.NaN) } : {}),
    };
    if (state.traceLog && !traceFits(state.step, trace, state.traceLog))
      fail(`checkpoint ${where} is corrupt: its trace position does not fit its step`);
  }
  return {
    step: state.step,
    totalSteps: state.totalSteps,
    order: Int32Array.from(get('order', [length('order')])),
    position: state.position,
    rng: Uint32Array.from(state.rng),
    params: asDtype(get('params', [length('params')])),
    optimizer,
    valuer,
    traceLog: state.traceLog && {
      ...state.traceLog,
      stats: {
        ...state.traceLog.stats,
        maxAbsEfficiencyResidual: state.traceLog.stats.maxAbsEfficiencyResidual ?? Number.NaN,
      },
    },
  };
}

/**
 * Removes what inrun's own writers leave behind when a process dies mid-write: writeFileAtomic's
 * `.<name>.<pid>.<hex>.tmp` files, checkpoint folders `.checkpoint.tmp-<pid>-<hex>`, and
 * `.checkpoint.old` once `checkpoint/` is complete (before that, it is the checkpoint to resume
 * from). Nothing else is touched. Returns the names removed. Call it only while no other inrun
 * process writes to the directory.
 */
export async function removeTemporaryFiles(runDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(runDir);
  } catch (error) {
    return failFileError(error, runDir, 'list the run directory');
  }
  const currentComplete = await exists(join(runDir, CHECKPOINT_DIR, STATE_JSON));
  const removed: string[] = [];
  for (const name of names.sort()) {
    const path = join(runDir, name);
    let kind: 'file' | 'dir' | 'other';
    try {
      const info = await lstat(path);
      kind = info.isFile() ? 'file' : info.isDirectory() ? 'dir' : 'other';
    } catch {
      continue; // gone meanwhile
    }
    const ours =
      (kind === 'file' && isAtomicTempName(name)) ||
      (kind === 'dir' && (TEMP_DIR.test(name) || (name === OLD_DIR && currentComplete)));
    if (!ours) continue;
    try {
      await rm(path, { recursive: true, force: true });
    } catch (error) {
      failFileError(error, path, 'remove a leftover temporary file');
    }
    removed.push(name);
  }
  return removed;
}

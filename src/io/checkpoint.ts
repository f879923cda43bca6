// Trainer checkpoints on disk, exact to the bit: every float (weights, optimizer state, ledger,
// trace) is stored as raw IEEE bytes in a safetensors file, everything else (ids, groups, batch
// ids, the RNG state) as JSON. A checkpoint is a folder written whole under a temporary name and
// renamed into place, so a crash at any moment leaves the previous checkpoint or the new one.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExampleId } from '../data/dataset.js';
import type { FloatArray } from '../kernels/types.js';
import type { LedgerEntry } from '../shapley/ledger.js';
import type { TraceEntry } from '../shapley/valuer.js';
import type { TrainerCheckpoint } from '../train/trainer.js';
import { fail } from '../util/errors.js';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from './safetensors.js';
import { TRACE_FIELDS } from './values-writers.js';

export const CHECKPOINT_DIR = 'checkpoint';
const OLD_DIR = '.checkpoint.old';
const STATE_JSON = 'state.json';
const TENSORS = 'tensors.safetensors';
const FORMAT = 'inrun-checkpoint';
const VERSION = 1;

interface StateJson {
  format: string;
  version: number;
  step: number;
  totalSteps: number;
  position: number;
  rng: number[];
  optimizer: string[];
  valuer: null | {
    ids: ExampleId[];
    groups: (string | null)[];
    timesSeen: number[];
    stages: number;
    perValidation: number | null;
    traceRows: number;
    /** Trace fields that are null, per row (only fields with any null). */
    traceNulls: Record<string, number[]>;
    batchIds: ExampleId[][] | null;
  };
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

/** Writes `checkpoint` into `<runDir>/checkpoint/`, replacing the previous one atomically. */
export async function saveCheckpoint(runDir: string, checkpoint: TrainerCheckpoint): Promise<void> {
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
    );
    const stageData = new Float64Array(n * stages);
    ledger.forEach((e, i) => {
      stageData.set(e.stages, i * stages);
    });
    tensors.push({ name: 'ledger.stages', shape: [n, stages], data: stageData });
    if (perValidation !== null) {
      const pv = new Float64Array(n * perValidation);
      ledger.forEach((e, i) => {
        pv.set(e.perValidation!, i * perValidation);
      });
      tensors.push({ name: 'ledger.per_validation', shape: [n, perValidation], data: pv });
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
      timesSeen: ledger.map((e) => e.timesSeen),
      stages,
      perValidation,
      traceRows: trace.length,
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
  };

  const temp = join(runDir, `.checkpoint.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(temp);
  try {
    await writeSynced(join(temp, TENSORS), encodeSafetensors(tensors, { format: FORMAT }));
    // state.json last: a folder with it is complete.
    await writeSynced(join(temp, STATE_JSON), `${JSON.stringify(state)}\n`);
    const current = join(runDir, CHECKPOINT_DIR);
    const old = join(runDir, OLD_DIR);
    await rm(old, { recursive: true, force: true });
    if (await exists(current)) await rename(current, old);
    await rename(temp, current);
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

/**
 * Reads the run's checkpoint, or null if it has none. `dtype` is the model's float type (the
 * parameters and optimizer state come back as that type).
 */
export async function loadCheckpoint(
  runDir: string,
  dtype: 'float32' | 'float64',
): Promise<TrainerCheckpoint | null> {
  let dir = join(runDir, CHECKPOINT_DIR);
  if (!(await exists(join(dir, STATE_JSON)))) {
    dir = join(runDir, OLD_DIR);
    if (!(await exists(join(dir, STATE_JSON)))) return null;
  }
  const where = join(dir, STATE_JSON);
  let state: StateJson;
  try {
    state = JSON.parse(await readFile(where, 'utf8')) as StateJson;
  } catch (error) {
    return fail(`${where}: unreadable checkpoint (${(error as Error).message})`);
  }
  if (state.format !== FORMAT || state.version !== VERSION)
    fail(`${where}: not an inrun checkpoint of format version ${VERSION}`);
  const tensorPath = join(dir, TENSORS);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(tensorPath);
  } catch {
    return fail(`${tensorPath}: the checkpoint's tensors are missing`);
  }
  const { tensors } = decodeSafetensors(bytes, tensorPath);
  const byName = new Map(tensors.map((t) => [t.name, t.data]));
  const get = (name: string): FloatArray => {
    const t = byName.get(name);
    if (!t) fail(`${tensorPath}: no tensor "${name}"`);
    return t;
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
    const t = get(`optimizer.${name}`);
    // Step counters are stored as float64 whatever the model's type.
    optimizer[name] = name === 'step' ? t : asDtype(t);
  }
  let valuer: TrainerCheckpoint['valuer'] = null;
  if (state.valuer) {
    const v = state.valuer;
    const first = get('ledger.first_order');
    const second = get('ledger.second_order');
    const normalized = get('ledger.normalized');
    const stages = get('ledger.stages');
    const pv = v.perValidation !== null ? get('ledger.per_validation') : null;
    const ledger: LedgerEntry[] = v.ids.map((id, i) => ({
      id,
      group: v.groups[i] ?? undefined,
      timesSeen: v.timesSeen[i],
      firstOrder: first[i],
      secondOrder: second[i],
      stages: Array.from(stages.subarray(i * v.stages, (i + 1) * v.stages)),
      normalized: normalized[i],
      ...(pv
        ? { perValidation: Float64Array.from(pv.subarray(i * v.perValidation!, (i + 1) * v.perValidation!)) }
        : {}),
    }));
    const columns = Object.fromEntries(TRACE_FIELDS.map((f) => [f, get(`trace.${f}`)]));
    const nulls = Object.fromEntries(Object.entries(v.traceNulls).map(([f, rows]) => [f, new Set(rows)]));
    const trace: TraceEntry[] = [];
    for (let r = 0; r < v.traceRows; r++) {
      const row: Record<string, unknown> = {};
      for (const f of TRACE_FIELDS) row[f] = nulls[f]?.has(r) ? null : columns[f][r];
      if (v.batchIds) row.batchIds = v.batchIds[r];
      trace.push(row as unknown as TraceEntry);
    }
    valuer = { ledger, trace };
  }
  return {
    step: state.step,
    totalSteps: state.totalSteps,
    order: Int32Array.from(get('order')),
    position: state.position,
    rng: Uint32Array.from(state.rng),
    params: asDtype(get('params')),
    optimizer,
    valuer,
  };
}

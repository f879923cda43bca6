// The value ledger and the trace as files: values.csv / values.jsonl / values.parquet and
// trace.csv / trace.jsonl. Output is a pure function of the ledger and trace (no times, no
// machine details), so equal runs give byte-identical files.
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { LedgerEntry, ValueLedger } from '../shapley/ledger.js';
import type { TraceEntry } from '../shapley/valuer.js';
import { csvField, SIGNAL_COLUMNS, valuesToCsv } from './values-csv.js';

export { SIGNAL_COLUMNS };

/** Columns of the values files, in order; `stage_0 … stage_{k-1}` follow `normalized`. */
export const VALUE_COLUMNS = [
  'id',
  'group',
  'times_seen',
  'first_order',
  'second_order',
  'normalized',
] as const;

/** The numeric fields of a trace row, in file order; `batchIds` follows when recorded. */
export const TRACE_FIELDS = [
  'step',
  'lr',
  'batchSize',
  'clipFactor',
  'trainLoss',
  'validationLossBefore',
  'validationLossAfter',
  'firstOrderSum',
  'firstOrderUtility',
  'secondOrderSum',
  'secondOrderUtility',
  'efficiencyResidual',
  'actualUtility',
  'taylorError',
  'emptyUtility',
  'batchTaylorError',
  'linearisationGap',
  'taylorCorrelation',
  'expansionBroken',
] as const satisfies readonly (keyof TraceEntry)[];

/**
 * A trace row of a run with a held-out test set: the mean test loss (and, for classification and
 * binary tasks, the test accuracy) at the weights after the step, on the steps the run evaluated
 * (testEvery, and always the last); null on the others, and the accuracy null for regression and
 * text. Rows of runs without a test set (and of runs before test sets existed) lack both fields.
 */
export interface RunTraceEntry extends TraceEntry {
  testLoss?: number | null;
  testAccuracy?: number | null;
}

/** The test columns of a run with a test set, after TRACE_FIELDS (and before batchIds). */
export const TEST_TRACE_FIELDS = [
  'testLoss',
  'testAccuracy',
] as const satisfies readonly (keyof RunTraceEntry)[];

/** A number for JSON: NaN and ±Infinity (never expected) become null. */
function jsonNumber(x: number | null): number | null {
  return x === null || !Number.isFinite(x) ? null : x;
}

function stageNames(ledger: ValueLedger): string[] {
  return Array.from({ length: ledger.stageCount }, (_, s) => `stage_${s}`);
}

/** One JSON object per line with the columns of values.csv; missing numbers are null. */
export function valuesToJsonl(ledger: ValueLedger): string {
  const stages = stageNames(ledger);
  return ledger
    .all()
    .map((e) => {
      const row: Record<string, unknown> = {
        id: e.id,
        group: e.group ?? null,
        times_seen: e.timesSeen,
        first_order: jsonNumber(e.firstOrder),
        second_order: jsonNumber(e.secondOrder),
        normalized: jsonNumber(e.normalized),
      };
      stages.forEach((name, s) => {
        row[name] = jsonNumber(e.stages[s]);
      });
      for (const column of SIGNAL_COLUMNS) row[column.name] = jsonNumber(column.of(e));
      return `${JSON.stringify(row)}\n`;
    })
    .join('');
}

/** values.parquet: id and group as UTF-8 strings, times_seen INT32, values DOUBLE (null if absent). */
export function valuesToParquet(ledger: ValueLedger): Uint8Array {
  const entries = ledger.all();
  const doubles = (get: (e: LedgerEntry) => number) =>
    entries.map((e) => {
      const x = get(e);
      return Number.isFinite(x) ? x : null;
    });
  const columnData = [
    { name: 'id', data: entries.map((e) => String(e.id)), type: 'STRING' as const },
    { name: 'group', data: entries.map((e) => e.group ?? null), type: 'STRING' as const },
    { name: 'times_seen', data: entries.map((e) => e.timesSeen), type: 'INT32' as const },
    { name: 'first_order', data: doubles((e) => e.firstOrder), type: 'DOUBLE' as const },
    { name: 'second_order', data: doubles((e) => e.secondOrder), type: 'DOUBLE' as const },
    { name: 'normalized', data: doubles((e) => e.normalized), type: 'DOUBLE' as const },
    ...stageNames(ledger).map((name, s) => ({
      name,
      data: doubles((e) => e.stages[s]),
      type: 'DOUBLE' as const,
    })),
    ...SIGNAL_COLUMNS.map((column) => ({
      name: column.name,
      data: doubles(column.of),
      type: 'DOUBLE' as const,
    })),
  ];
  return new Uint8Array(parquetWriteBuffer({ columnData }));
}

export { valuesToCsv };

/**
 * trace.csv's header line (without its newline); `batchIds`: the column of each step's batch ids;
 * `test`: the testLoss and testAccuracy columns of a run with a test set.
 */
export function traceCsvHeader(batchIds: boolean, test = false): string {
  return [...TRACE_FIELDS, ...(test ? TEST_TRACE_FIELDS : []), ...(batchIds ? ['batchIds'] : [])].join(',');
}

/** One trace.csv line (without its newline). */
export function traceCsvRow(row: RunTraceEntry, batchIds: boolean, test = false): string {
  const cells = TRACE_FIELDS.map((f) => csvField(row[f]));
  if (test) for (const f of TEST_TRACE_FIELDS) cells.push(csvField(row[f] ?? null));
  if (batchIds) cells.push(csvField(JSON.stringify(row.batchIds ?? [])));
  return cells.join(',');
}

/** One trace.jsonl line, with its newline (NaN as null); the test fields when the row has them. */
export function traceJsonlLine(row: RunTraceEntry): string {
  const out: Record<string, unknown> = {};
  for (const f of TRACE_FIELDS) out[f] = jsonNumber(row[f]);
  for (const f of TEST_TRACE_FIELDS) if (row[f] !== undefined) out[f] = jsonNumber(row[f]);
  if (row.batchIds !== undefined) out.batchIds = row.batchIds;
  return `${JSON.stringify(out)}\n`;
}

/** Whether trace rows carry the test fields (a run with a test set). */
function hasTestFields(trace: RunTraceEntry[]): boolean {
  return trace.some((row) => row.testLoss !== undefined);
}

/** trace.csv: the TraceEntry fields as columns, then the test columns and `batchIds` (a JSON array) when present. */
export function traceToCsv(trace: RunTraceEntry[]): string {
  const withIds = trace.some((row) => row.batchIds !== undefined);
  const withTest = hasTestFields(trace);
  const lines = [
    traceCsvHeader(withIds, withTest),
    ...trace.map((row) => traceCsvRow(row, withIds, withTest)),
  ];
  return `${lines.join('\n')}\n`;
}

/** trace.jsonl: one TraceEntry per line (NaN as null). */
export function traceToJsonl(trace: RunTraceEntry[]): string {
  return trace.map(traceJsonlLine).join('');
}

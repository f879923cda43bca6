// The value ledger and the trace as files: values.csv / values.jsonl / values.parquet and
// trace.csv / trace.jsonl. Output is a pure function of the ledger and trace (no times, no
// machine details), so equal runs give byte-identical files.
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { LedgerEntry, ValueLedger } from '../shapley/ledger.js';
import type { TraceEntry } from '../shapley/valuer.js';
import { csvField, valuesToCsv } from './values-csv.js';

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
] as const satisfies readonly (keyof TraceEntry)[];

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
  ];
  return new Uint8Array(parquetWriteBuffer({ columnData }));
}

export { valuesToCsv };

/** trace.csv's header line (without its newline); `batchIds`: the column of each step's batch ids. */
export function traceCsvHeader(batchIds: boolean): string {
  return [...TRACE_FIELDS, ...(batchIds ? ['batchIds'] : [])].join(',');
}

/** One trace.csv line (without its newline). */
export function traceCsvRow(row: TraceEntry, batchIds: boolean): string {
  const cells = TRACE_FIELDS.map((f) => csvField(row[f]));
  if (batchIds) cells.push(csvField(JSON.stringify(row.batchIds ?? [])));
  return cells.join(',');
}

/** One trace.jsonl line, with its newline (NaN as null). */
export function traceJsonlLine(row: TraceEntry): string {
  const out: Record<string, unknown> = {};
  for (const f of TRACE_FIELDS) out[f] = jsonNumber(row[f]);
  if (row.batchIds !== undefined) out.batchIds = row.batchIds;
  return `${JSON.stringify(out)}\n`;
}

/** trace.csv: the TraceEntry fields as columns; `batchIds` (when recorded) as a JSON array. */
export function traceToCsv(trace: TraceEntry[]): string {
  const withIds = trace.some((row) => row.batchIds !== undefined);
  const lines = [traceCsvHeader(withIds), ...trace.map((row) => traceCsvRow(row, withIds))];
  return `${lines.join('\n')}\n`;
}

/** trace.jsonl: one TraceEntry per line (NaN as null). */
export function traceToJsonl(trace: TraceEntry[]): string {
  return trace.map(traceJsonlLine).join('');
}

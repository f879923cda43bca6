import type { LedgerEntry, ValueLedger } from '../shapley/ledger.js';
import { fail } from '../util/errors.js';

export type CsvCell = string | number | boolean | null | undefined;

/** Extra columns after the standard ones: header → the cell of an entry. */
export type ExtraColumns = Record<string, (entry: LedgerEntry) => CsvCell>;

/**
 * One CSV field (RFC 4180): numbers in their shortest exact round-trip form (String(x)), NaN,
 * null and undefined as an empty field, and text quoted when it holds a comma, quote, CR or LF.
 */
export function csvField(cell: CsvCell): string {
  if (cell === null || cell === undefined) return '';
  if (typeof cell === 'number') return Number.isNaN(cell) ? '' : String(cell);
  const text = String(cell);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * The ledger as CSV, one row per example in first-seen order:
 * `id,group,times_seen,first_order,second_order,normalized,stage_0,…,stage_k[,extra…]`.
 * `second_order` is empty when the run computed first-order values only.
 */
export function valuesToCsv(ledger: ValueLedger, extra: ExtraColumns = {}): string {
  const stages = Array.from({ length: ledger.stageCount }, (_, s) => `stage_${s}`);
  const extraNames = Object.keys(extra);
  const header = [
    'id',
    'group',
    'times_seen',
    'first_order',
    'second_order',
    'normalized',
    ...stages,
    ...extraNames,
  ];
  const seen = new Set<string>();
  for (const name of header) {
    if (seen.has(name)) fail(`valuesToCsv: column "${name}" appears twice`);
    seen.add(name);
  }
  const lines = [header.map(csvField).join(',')];
  for (const entry of ledger.all()) {
    const cells: CsvCell[] = [
      String(entry.id),
      entry.group,
      entry.timesSeen,
      entry.firstOrder,
      entry.secondOrder,
      entry.normalized,
      ...entry.stages,
      ...extraNames.map((name) => extra[name](entry)),
    ];
    lines.push(cells.map(csvField).join(','));
  }
  return `${lines.join('\n')}\n`;
}

import type { LedgerEntry, ValueLedger } from '../shapley/ledger.js';
import { fail } from '../util/errors.js';

/**
 * The per-example signals besides the values, after the `stage_k` columns of every values file
 * (empty/null where not measured: regression has no margin or class value, runs from before 0.3.0
 * have none). Meaning in src/shapley/ledger.ts (LedgerEntry) and docs/cli.md.
 */
export const SIGNAL_COLUMNS: readonly { name: string; of: (e: LedgerEntry) => number }[] = [
  { name: 'self_influence', of: (e) => e.selfInfluence },
  { name: 'mean_loss', of: (e) => e.lossSum / e.timesSeen },
  { name: 'aum', of: (e) => e.marginSum / e.timesSeen },
  { name: 'forgetting_events', of: (e) => e.forgettingEvents },
  { name: 'times_correct', of: (e) => e.timesCorrect },
  { name: 'class_value', of: (e) => e.classValue },
  { name: 'standard_error', of: (e) => Math.sqrt(e.valueVariance) },
  { name: 'momentum_credit', of: (e) => e.momentumCredit },
];

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
 * `id,group,times_seen,first_order,second_order,normalized,stage_0,…,stage_k,<signals>[,extra…]`
 * (SIGNAL_COLUMNS).
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
    ...SIGNAL_COLUMNS.map((column) => column.name),
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
      ...SIGNAL_COLUMNS.map((column) => column.of(entry)),
      ...extraNames.map((name) => extra[name](entry)),
    ];
    lines.push(cells.map(csvField).join(','));
  }
  return `${lines.join('\n')}\n`;
}

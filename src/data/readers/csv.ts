// CSV (RFC 4180, comma-separated, first line a header) through csv-parse.
import { parse } from 'csv-parse/sync';
import { fail } from '../../util/errors.js';
import { displayPath, type TableRow } from './table.js';

interface CsvRecord {
  record: string[];
  info: { lines: number };
}

/** A record and the line it starts on. */
interface CsvLine {
  record: string[];
  line: number;
}

/**
 * Text without a quote character cannot hold a quoted comma or line break: its records are its
 * non-empty lines split at commas — what csv-parse returns for it, several times faster (a wide
 * table of numbers is read mostly here).
 */
export function splitUnquoted(text: string): CsvLine[] {
  const records: CsvLine[] = [];
  const lines = text.split(/\r\n|\n|\r/);
  for (let k = 0; k < lines.length; k++)
    if (lines[k] !== '') records.push({ record: lines[k].split(','), line: k + 1 });
  return records;
}

/** Quoted CSV through csv-parse. */
export function parseQuoted(text: string, shown: string): CsvLine[] {
  let records: CsvRecord[];
  try {
    records = parse(text, {
      info: true,
      relax_column_count: true,
      skip_empty_lines: true,
      record_delimiter: ['\r\n', '\n', '\r'],
    }) as unknown as CsvRecord[];
  } catch (error) {
    const e = error as CsvParseError;
    const line = e.lines !== undefined ? `line ${e.lines}: ` : '';
    const reason = (e.message ?? String(e)).replace(/\s+at line \d+.*$/s, '').replace(/^[^:]*:\s*/, '');
    return fail(`${shown}: ${line}malformed CSV (${reason})`);
  }
  // csv-parse reports the line where a record ends; a record starts earlier by the line breaks
  // inside its quoted fields.
  return records.map((r) => ({
    record: r.record,
    line: r.info.lines - r.record.reduce((s, field) => s + (field.match(/\r\n|\n|\r/g)?.length ?? 0), 0),
  }));
}

interface CsvParseError extends Error {
  code?: string;
  lines?: number;
}

/** Parses CSV text into a header and rows of string cells; every problem names file and line. */
export function parseCsv(text: string, path: string): { columns: string[]; rows: TableRow[] } {
  const shown = displayPath(path);
  let records = text.includes('"') ? parseQuoted(text, shown) : splitUnquoted(text);
  // A line of only blanks is an empty line, not a one-field record.
  records = records.filter((r) => !(r.record.length === 1 && r.record[0].trim() === ''));
  if (records.length === 0) fail(`${shown}: no header line (the file holds no CSV records)`);
  const header = records[0];
  const columns = header.record.map((name) => name.trim());
  const seen = new Map<string, number>();
  columns.forEach((name, k) => {
    if (name === '') fail(`${shown}: line ${header.line}: header column ${k + 1} has no name`);
    const first = seen.get(name);
    if (first !== undefined)
      fail(
        `${shown}: line ${header.line}: column ${JSON.stringify(name)} appears twice in the header (columns ${first + 1} and ${k + 1})`,
      );
    seen.set(name, k);
  });
  if (records.length === 1) fail(`${shown}: no data rows (only a header line)`);
  const rows: TableRow[] = [];
  for (let r = 1; r < records.length; r++) {
    const rec = records[r];
    const line = rec.line;
    if (rec.record.length !== columns.length) {
      const what = rec.record.length < columns.length ? 'missing columns' : 'extra columns';
      fail(
        `${shown}: line ${line}: ${what}: ${rec.record.length} fields, the header has ${columns.length} (${columns.join(', ')})`,
      );
    }
    const cells: Record<string, unknown> = {};
    columns.forEach((name, k) => {
      cells[name] = rec.record[k];
    });
    rows.push({ cells, index: r - 1, line });
  }
  return { columns, rows };
}

/** One CSV field: quoted when it holds a comma, quote, CR or LF, or leading/trailing blanks. */
export function csvCell(cell: unknown): string {
  if (cell === null || cell === undefined) return '';
  const text =
    typeof cell === 'string' ? cell : typeof cell === 'object' ? JSON.stringify(cell) : String(cell);
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Rows as CSV text with the given header (LF line ends). */
export function formatCsv(columns: string[], rows: Record<string, unknown>[]): string {
  const lines = [columns.map(csvCell).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvCell(row[c])).join(','));
  return `${lines.join('\n')}\n`;
}

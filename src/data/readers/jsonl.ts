// JSON Lines: one JSON object per line, every object with the same keys as the first.
import { fail } from '../../util/errors.js';
import { displayPath, type TableRow } from './table.js';

export function parseJsonl(text: string, path: string): { columns: string[]; rows: TableRow[] } {
  const shown = displayPath(path);
  const lines = text.split('\n');
  const rows: TableRow[] = [];
  let columns: string[] | null = null;
  let columnSet: Set<string> | null = null;
  let firstLine = 0;
  lines.forEach((rawLine, k) => {
    const line = k + 1;
    const raw = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      const reason = (error as Error).message.replace(/\s*in JSON at position.*$/, '');
      fail(`${shown}: line ${line}: not valid JSON (${reason})`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      fail(
        `${shown}: line ${line}: expected a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`,
      );
    const cells = value as Record<string, unknown>;
    const keys = Object.keys(cells);
    if (columns === null || columnSet === null) {
      if (keys.length === 0) fail(`${shown}: line ${line}: the first object has no keys (no columns)`);
      columns = keys;
      columnSet = new Set(keys);
      firstLine = line;
    } else {
      for (const key of columns)
        if (!Object.hasOwn(cells, key))
          fail(
            `${shown}: line ${line}, column ${JSON.stringify(key)}: missing (line ${firstLine} has it; every object needs the same keys)`,
          );
      for (const key of keys)
        if (!columnSet.has(key))
          fail(
            `${shown}: line ${line}, column ${JSON.stringify(key)}: extra column, not in line ${firstLine} (every object needs the same keys)`,
          );
    }
    rows.push({ cells, index: rows.length, line, raw });
  });
  if (columns === null) fail(`${shown}: no data rows (the file holds only blank lines)`);
  return { columns: columns as string[], rows };
}

/** Rows as JSON Lines: a row's original line when it has one, else its cells as JSON. */
export function formatJsonl(rows: (TableRow | Record<string, unknown>)[]): string {
  return rows
    .map((row) => {
      if (isTableRow(row)) return row.raw ?? JSON.stringify(row.cells, bigintAsNumber);
      return JSON.stringify(row, bigintAsNumber);
    })
    .map((line) => `${line}\n`)
    .join('');
}

export function isTableRow(row: unknown): row is TableRow {
  return (
    typeof row === 'object' &&
    row !== null &&
    'cells' in row &&
    typeof (row as TableRow).cells === 'object' &&
    typeof (row as TableRow).line === 'number'
  );
}

function bigintAsNumber(_key: string, value: unknown): unknown {
  if (typeof value !== 'bigint') return value;
  return Number.isSafeInteger(Number(value)) ? Number(value) : String(value);
}

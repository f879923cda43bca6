// Tabular data files (CSV, JSON Lines, Parquet) → tables → TensorDatasets, and back to files.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { writeFileAtomic } from '../../io/atomic.js';
import { fail } from '../../util/errors.js';
import { formatCsv, parseCsv } from './csv.js';
import { formatJsonl, isTableRow, parseJsonl } from './jsonl.js';
import { formatParquet, parseParquet } from './parquet.js';
import {
  decodeText,
  displayPath,
  MAX_LINE_BYTES,
  TABLE_FORMATS,
  type Table,
  type TableFormat,
  type TableRow,
} from './table.js';

export { parseCsv } from './csv.js';
export { parseJsonl } from './jsonl.js';
export {
  displayPath,
  location,
  MAX_LINE_BYTES,
  type Table,
  type TableFormat,
  type TableRow,
} from './table.js';
export {
  type ColumnSpec,
  type LoadedTable,
  numericCell,
  readLabels,
  resolveColumns,
  type TableToDatasetOptions,
  type TaskKind,
  tableIds,
  tableToDataset,
} from './to-dataset.js';

/** The format of a data file, from its extension (.csv, .jsonl/.ndjson, .parquet). */
export function tableFormat(path: string): TableFormat {
  const format = TABLE_FORMATS[extname(path).toLowerCase()];
  if (!format)
    fail(
      `${displayPath(path)}: unknown data file type ${JSON.stringify(extname(path))} (inrun reads .csv, .jsonl, .ndjson and .parquet)`,
    );
  return format;
}

export interface ReadTableOptions {
  /** Longest accepted line of a text file, in bytes (default MAX_LINE_BYTES). */
  maxLineBytes?: number;
}

/** Reads a CSV, JSONL or Parquet file; every problem is an InrunError naming the file (and line). */
export async function readTable(path: string, options: ReadTableOptions = {}): Promise<Table> {
  const format = tableFormat(path);
  const shown = displayPath(path);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (code ?? String(error));
    return fail(`${shown}: cannot read the data file (${why})`);
  }
  if (bytes.length === 0) fail(`${shown}: the file is empty`);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const base = { path, format, sha256, bytes: bytes.length };
  if (format === 'parquet') {
    const { columns, rows, schema } = await parseParquet(bytes, path);
    return { ...base, columns, rows, parquetSchema: schema };
  }
  const text = decodeText(bytes, path, options.maxLineBytes ?? MAX_LINE_BYTES);
  if (text.trim() === '') fail(`${shown}: the file holds only blank lines`);
  const { columns, rows } = format === 'csv' ? parseCsv(text, path) : parseJsonl(text, path);
  return { ...base, columns, rows };
}

/**
 * Writes rows of `inputPath` (rows of `readTable(inputPath)`, or plain records keyed by its
 * column names) to `outPath` in the input's format: CSV with the input's header, JSONL with each
 * row's original line, Parquet with the input's schema. The write is atomic.
 */
export async function writeRowsLike(
  inputPath: string,
  rows: (TableRow | Record<string, unknown>)[],
  outPath: string,
): Promise<void> {
  const input = await readTable(inputPath);
  let data: string | Uint8Array;
  switch (input.format) {
    case 'csv':
      data = formatCsv(
        input.columns,
        rows.map((row) => (isTableRow(row) ? row.cells : row)),
      );
      break;
    case 'jsonl':
      data = formatJsonl(rows);
      break;
    case 'parquet':
      data = formatParquet(input.columns, rows, input.parquetSchema as Parameters<typeof formatParquet>[2]);
      break;
  }
  await writeFileAtomic(outPath, data);
}

// A data file's bytes as a Table: its format from its name, then the checks and parsers of
// readTable (./index.ts), shared with the web page, which gets the bytes from a dropped file. No
// Node imports.
import { fail } from '../../util/errors.js';
import { parseCsv } from './csv.js';
import { parseJsonl } from './jsonl.js';
import { parseParquet } from './parquet.js';
import {
  decodeText,
  displayPath,
  MAX_LINE_BYTES,
  TABLE_FORMATS,
  type Table,
  type TableFormat,
} from './table.js';

export interface ReadTableOptions {
  /** Longest accepted line of a text file, in bytes (default MAX_LINE_BYTES). */
  maxLineBytes?: number;
}

/** A file name's extension as node:path's extname gives it ('' for none, and for ".csv" alone). */
function extension(path: string): string {
  const trimmed = path.replace(/[/\\]+$/, '');
  const base = trimmed.slice(Math.max(trimmed.lastIndexOf('/'), trimmed.lastIndexOf('\\')) + 1);
  const dot = base.lastIndexOf('.');
  return dot <= 0 || base === '..' ? '' : base.slice(dot);
}

/** The formats of data files (an image folder is a folder). */
export type FileFormat = Exclude<TableFormat, 'images'>;

/** The format of a data file, from its extension (.csv, .jsonl/.ndjson, .parquet). */
export function tableFormat(path: string): FileFormat {
  const ext = extension(path);
  // TABLE_FORMATS maps extensions to file formats only.
  const format = TABLE_FORMATS[ext.toLowerCase()] as FileFormat | undefined;
  if (!format)
    fail(
      `${displayPath(path)}: ${ext === '' ? 'no file extension to tell the data file type' : `unknown data file type ${JSON.stringify(ext)}`} (inrun reads .csv, .jsonl, .ndjson and .parquet)`,
    );
  return format;
}

/**
 * Parses a data file's bytes (`path` names it in messages); every problem is an InrunError naming
 * the file (and line). `sha256` hashes the bytes for the Table's checksum.
 */
export async function tableFromBytes(
  path: string,
  format: FileFormat,
  bytes: Uint8Array,
  sha256: (bytes: Uint8Array) => string,
  options: ReadTableOptions = {},
): Promise<Table> {
  const shown = displayPath(path);
  if (bytes.length === 0) fail(`${shown}: the file is empty`);
  const base = { path, format, sha256: sha256(bytes), bytes: bytes.length };
  if (format === 'parquet') {
    const { columns, rows, schema } = await parseParquet(bytes, path);
    return { ...base, columns, rows, parquetSchema: schema };
  }
  const text = decodeText(bytes, path, options.maxLineBytes ?? MAX_LINE_BYTES);
  if (text.trim() === '') fail(`${shown}: the file holds only blank lines`);
  const { columns, rows } = format === 'csv' ? parseCsv(text, path) : parseJsonl(text, path);
  return { ...base, columns, rows };
}

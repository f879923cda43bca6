// A table read from a data file: named columns, rows of raw cells, and where each row came from,
// so every error can name the file, the line (or Parquet row) and the column.
import { firstInvalidUtf8Offset } from '../../text/utf8.js';
import { fail } from '../../util/errors.js';

/** `images`: an image folder read as a table (src/data/readers/images.ts): id, label, pixel_k. */
export type TableFormat = 'csv' | 'jsonl' | 'parquet' | 'images';

export const TABLE_FORMATS: Record<string, TableFormat> = {
  '.csv': 'csv',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.parquet': 'parquet',
};

/** One data row as read: cells keyed by column name, before any type conversion. */
export interface TableRow {
  /**
   * Raw cells. CSV: strings (as unquoted by the parser). JSONL: JSON values. Parquet: the decoded
   * values (numbers, bigints for INT64, strings, booleans, null).
   */
  cells: Record<string, unknown>;
  /** 0-based position among the file's data rows. */
  index: number;
  /** 1-based line where the row starts (CSV, JSONL) or 1-based row number (Parquet). */
  line: number;
  /** JSONL: the line's original text, so a subset can be written back unchanged. */
  raw?: string;
  /** Image folders: the image file the row came from (messages name it instead of a line). */
  source?: string;
}

export interface Table {
  /** The path as the user gave it (resolved), used in messages. */
  path: string;
  format: TableFormat;
  columns: string[];
  rows: TableRow[];
  /** sha256 of the file's bytes (hex). */
  sha256: string;
  bytes: number;
  /** Parquet only: the file's schema elements, reused when writing a subset back. */
  parquetSchema?: unknown[];
  /** Image folders only: the images' shape (pixel_k columns hold [channels, height, width]). */
  image?: { channels: 1 | 3; height: number; width: number };
}

/** The longest line (CSV record line or JSONL line) a reader accepts, in bytes. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

/**
 * A path for messages: relative to the working directory when inside it, else as is. Without
 * node:path, so the parsers stay importable in a browser, where there is no working directory and
 * a file's name is shown as given.
 */
export function displayPath(path: string): string {
  if (typeof process === 'undefined' || typeof process.cwd !== 'function') return path;
  const rel = pathInside(process.cwd(), path, process.platform === 'win32');
  return rel !== undefined && rel !== '' && !rel.startsWith('..') ? rel : path;
}

/**
 * `path` relative to the folder `dir` when it resolves to a place inside it (what node:path's
 * `relative(dir, path)` gives then); undefined when it lies outside. Windows paths compare without
 * case, with either slash.
 */
export function pathInside(dir: string, path: string, windows: boolean): string | undefined {
  const slashes = (p: string) => (windows ? p.replaceAll('\\', '/') : p);
  const base = segments(slashes(dir));
  let p = slashes(path);
  if (windows && p.startsWith('/') && !p.startsWith('//')) p = `${base[0]}${p}`;
  const absolute = windows ? /^([a-zA-Z]:)?\//.test(p) : p.startsWith('/');
  const full = segments(absolute ? p : `${base.join('/')}/${p}`);
  const same = (a: string, b: string) => (windows ? a.toLowerCase() === b.toLowerCase() : a === b);
  if (full.length < base.length || !base.every((part, k) => same(part, full[k]))) return undefined;
  return full.slice(base.length).join(windows ? '\\' : '/');
}

/** An absolute path's root ('' or a drive) and names, with '.', '..' and repeated slashes resolved. */
function segments(path: string): string[] {
  const [root, ...rest] = path.split('/');
  const out = [root];
  for (const part of rest) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 1) out.pop();
    } else out.push(part);
  }
  return out;
}

/** "file: line 5" (or "row 5" for Parquet), plus `, column "x"` when a column is given. */
export function location(table: Pick<Table, 'path' | 'format'>, row: TableRow, column?: string): string {
  const unit = table.format === 'parquet' ? 'row' : 'line';
  const col = column === undefined ? '' : `, column ${JSON.stringify(column)}`;
  if (row.source !== undefined) return `${displayPath(row.source)}${col}`;
  return `${displayPath(table.path)}: ${unit} ${row.line}${col}`;
}

/** Short description of a cell for messages: strings quoted and cut to 40 characters. */
export function showCell(cell: unknown): string {
  if (typeof cell === 'string') {
    const cut = cell.length > 40 ? `${cell.slice(0, 40)}…` : cell;
    return JSON.stringify(cut);
  }
  if (typeof cell === 'bigint') return String(cell);
  if (cell === null || cell === undefined) return 'null';
  if (typeof cell === 'object') return Array.isArray(cell) ? 'an array' : 'an object';
  return String(cell);
}

const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes a text file's bytes as strict UTF-8 (a leading BOM is dropped). Invalid bytes are an
 * error naming the byte offset and line; so is a line longer than `maxLineBytes`.
 */
export function decodeText(bytes: Uint8Array, path: string, maxLineBytes = MAX_LINE_BYTES): string {
  const shown = displayPath(path);
  // Line lengths first, on the bytes: a huge line is refused before anything tries to parse it.
  let line = 1;
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      if (i - start > maxLineBytes)
        fail(
          `${shown}: line ${line} is ${i - start} bytes long; lines longer than ${maxLineBytes} bytes are refused`,
        );
      line++;
      start = i + 1;
    }
  }
  try {
    return strictDecoder.decode(bytes);
  } catch {
    const offset = firstInvalidUtf8Offset(bytes);
    let at = 1;
    for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) at++;
    const hex = Array.from(bytes.subarray(offset, offset + 4), (b) => b.toString(16).padStart(2, '0')).join(
      ' ',
    );
    return fail(
      `${shown}: line ${at}: invalid UTF-8 at byte offset ${offset} (bytes ${hex}); the file must be UTF-8 text`,
    );
  }
}

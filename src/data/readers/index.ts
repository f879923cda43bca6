import type { Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { writeFileAtomic } from '../../io/atomic.js';
import { fail } from '../../util/errors.js';
import { errorCode, failFileError } from '../../util/fs-errors.js';
import { sha256Hex } from '../../util/hash.js';
import { formatCsv } from './csv.js';
import { readImageTable, writeImageFolderLike } from './images.js';
import { formatJsonl, isTableRow } from './jsonl.js';
import { formatParquet } from './parquet.js';
import { displayPath, TABLE_FORMATS, type Table, type TableRow } from './table.js';
import { type ReadTableOptions, tableFormat, tableFromBytes } from './table-bytes.js';

export { parseCsv } from './csv.js';
export { readImageFolder, readImageTable, writeImageFolderLike } from './images.js';
export { parseJsonl } from './jsonl.js';
export {
  displayPath,
  location,
  MAX_LINE_BYTES,
  type Table,
  type TableFormat,
  type TableRow,
} from './table.js';
export { type ReadTableOptions, tableFormat, tableFromBytes } from './table-bytes.js';
export {
  type ColumnSpec,
  compareCodePoints,
  dropMissing,
  FLOAT32_MAX,
  featureMatrix,
  fitStandardization,
  isMissing,
  type LabelSource,
  type LoadedTable,
  labelClassNames,
  type MissingPolicy,
  numericCell,
  readLabels,
  readsAsNumber,
  resolveColumns,
  type Standardization,
  type TableToDatasetOptions,
  type TaskKind,
  tableIds,
  tableToDataset,
  type UsedColumn,
} from './to-dataset.js';

const DATA_FILE_TYPES = '.csv, .jsonl, .ndjson or .parquet';

/** Node reads a whole file into one buffer of at most 2 GiB − 1 bytes. */
const MAX_FILE_BYTES = 2 ** 31 - 1;

function formatBytes(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** What a path that is neither a file nor a folder is, for messages. */
function specialKind(info: Stats): string {
  if (info.isFIFO()) return 'a named pipe';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return 'a special file';
}

/** Whether `path` is a folder (an image folder, for a table); false when it cannot be read at all. */
async function isFolder(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Checks that `path` is a regular file before it is read, and returns its size. A folder or a
 * device would otherwise get a puzzling "unknown file type" message, and reading a named pipe or
 * a terminal could wait forever. `what` names the file ("the data file"); `types` lists the
 * accepted file types for the hint; `shown` is the path in messages (default: displayPath).
 */
export async function checkRegularFile(
  path: string,
  what: string,
  types?: string,
  shown = displayPath(path),
): Promise<number> {
  let info: Stats;
  try {
    info = await stat(path);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') fail(`${shown}: cannot read ${what} (no such file)`);
    return failFileError(error, shown, `read ${what}`);
  }
  const hint = types ? ` (${types})` : '';
  if (info.isDirectory()) fail(`${shown}: is a directory; give a file${hint}`);
  if (!info.isFile()) fail(`${shown}: is not a regular file (${specialKind(info)}); give a file${hint}`);
  return info.size;
}

/** Reads a CSV, JSONL or Parquet file; every problem is an InrunError naming the file (and line). */
export async function readTable(path: string, options: ReadTableOptions = {}): Promise<Table> {
  const shown = displayPath(path);
  // A folder is an image folder, unless its name says it was meant as a data file (adir.csv/).
  if ((await isFolder(path)) && !TABLE_FORMATS[extname(path).toLowerCase()]) return readImageTable(path);
  const size = await checkRegularFile(path, 'the data file', DATA_FILE_TYPES);
  const format = tableFormat(path);
  if (size > MAX_FILE_BYTES)
    fail(
      `${shown}: the file is ${formatBytes(size)}; inrun reads data files of up to ${formatBytes(MAX_FILE_BYTES)}`,
    );
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    return failFileError(error, shown, 'read the data file');
  }
  return tableFromBytes(path, format, bytes, sha256Hex, options);
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
  if (input.format === 'images') {
    await writeImageFolderLike(inputPath, rows as TableRow[], outPath);
    return;
  }
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

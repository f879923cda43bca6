// Parquet through hyparquet (reading) and hyparquet-writer (writing a subset back).
import { type FileMetaData, parquetMetadata, parquetReadObjects, type SchemaElement } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { fail } from '../../util/errors.js';
import { isTableRow } from './jsonl.js';
import { displayPath, type TableRow } from './table.js';

export async function parseParquet(
  bytes: Uint8Array,
  path: string,
): Promise<{ columns: string[]; rows: TableRow[]; schema: SchemaElement[] }> {
  const shown = displayPath(path);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const magic = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (bytes.length < 12 || magic(0) !== 'PAR1')
    fail(`${shown}: not a Parquet file (it does not start with the PAR1 magic bytes)`);
  if (magic(bytes.length - 4) !== 'PAR1')
    fail(`${shown}: truncated Parquet file (the PAR1 footer is missing; ${bytes.length} bytes present)`);
  let metadata: FileMetaData;
  try {
    metadata = parquetMetadata(buffer);
  } catch (error) {
    return fail(`${shown}: corrupt Parquet metadata (${(error as Error).message})`);
  }
  const top = topLevelColumns(metadata.schema);
  const columns = top.map((e) => e.name);
  const seen = new Set<string>();
  for (const name of columns) {
    if (seen.has(name)) fail(`${shown}: column ${JSON.stringify(name)} appears twice in the schema`);
    seen.add(name);
  }
  if (Number(metadata.num_rows) === 0) fail(`${shown}: no data rows (the Parquet file holds 0 rows)`);
  let objects: Record<string, unknown>[];
  try {
    objects = (await parquetReadObjects({ file: buffer, metadata })) as Record<string, unknown>[];
  } catch (error) {
    return fail(
      `${shown}: cannot decode the Parquet data (${(error as Error).message}); is the file corrupt?`,
    );
  }
  if (objects.length !== Number(metadata.num_rows))
    fail(
      `${shown}: the Parquet metadata promises ${metadata.num_rows} rows but ${objects.length} could be read`,
    );
  const rows = objects.map((cells, index) => ({ cells, index, line: index + 1 }));
  return { columns, rows, schema: metadata.schema };
}

/** The root's direct children (a nested column counts once, by its top-level name). */
function topLevelColumns(schema: SchemaElement[]): SchemaElement[] {
  const out: SchemaElement[] = [];
  let i = 1;
  const skip = (k: number): number => {
    // Returns the index after element k and all its descendants.
    const children = schema[k].num_children ?? 0;
    let next = k + 1;
    for (let c = 0; c < children; c++) next = skip(next);
    return next;
  };
  const rootChildren = schema[0]?.num_children ?? 0;
  for (let c = 0; c < rootChildren && i < schema.length; c++) {
    out.push(schema[i]);
    i = skip(i);
  }
  return out;
}

/**
 * Rows as a Parquet file image: with the input's own schema when it is flat (so column types
 * survive the round trip), else with types inferred from the values.
 */
export function formatParquet(
  columns: string[],
  rows: (TableRow | Record<string, unknown>)[],
  schema: SchemaElement[] | undefined,
): Uint8Array {
  const cellsOf = (row: TableRow | Record<string, unknown>) => (isTableRow(row) ? row.cells : row);
  const flat = schema?.slice(1).every((e) => !e.num_children) ?? false;
  const columnData = columns.map((name) => ({
    name,
    data: rows.map((row) => {
      const cell = cellsOf(row)[name];
      return cell === undefined ? null : cell;
    }),
  }));
  const buffer =
    flat && schema
      ? parquetWriteBuffer({ columnData, schema })
      : parquetWriteBuffer({ columnData: columnData.map((c) => ({ ...c, type: inferType(c.data) })) });
  return new Uint8Array(buffer);
}

function inferType(data: unknown[]): 'DOUBLE' | 'INT64' | 'BOOLEAN' | 'STRING' | 'JSON' {
  const present = data.filter((v) => v !== null && v !== undefined);
  if (present.length === 0) return 'STRING';
  if (present.every((v) => typeof v === 'bigint')) return 'INT64';
  if (present.every((v) => typeof v === 'number')) return 'DOUBLE';
  if (present.every((v) => typeof v === 'boolean')) return 'BOOLEAN';
  if (present.every((v) => typeof v === 'string')) return 'STRING';
  return 'JSON';
}

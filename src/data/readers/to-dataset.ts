// Turns a table's rows into a TensorDataset: feature columns → a float matrix, the label column →
// class indices (from integers or class names) or real targets, ids and groups kept. Every bad
// cell is an error naming the file, the line (or Parquet row) and the column.
import { fail } from '../../util/errors.js';
import { TensorDataset } from '../dataset.js';
import { displayPath, location, showCell, type Table, type TableRow } from './table.js';

export type TaskKind = 'classification' | 'binary' | 'regression';

/** What to do with a row whose feature, label or id cell is missing (empty, null, CSV `NA`). */
export type MissingPolicy = 'error' | 'drop';

export interface ColumnSpec {
  /** Column of unique example ids; without it an example's id is its 0-based row number in the file. */
  id?: string;
  label: string;
  /**
   * Feature columns, in order; default: every other column whose non-missing cells are all
   * numbers (a column named `id` excepted).
   */
  features?: string[];
  /** Column naming each example's group (source, domain, …) for per-group totals. */
  group?: string;
}

/** Per-feature mean and standard deviation fitted on the training rows. */
export interface Standardization {
  features: string[];
  mean: number[];
  std: number[];
}

export interface LoadedTable {
  table: Table;
  /** The rows the dataset holds, in dataset order (a subset of the table's after a split). */
  rows: TableRow[];
  dataset: TensorDataset;
  ids: string[];
  /** The standardization applied to the features, or null. */
  standardization: Standardization | null;
}

/**
 * The largest finite float32. Training runs in float32, where a larger input becomes infinity
 * and the run diverges, so the input check refuses it.
 */
export const FLOAT32_MAX = 3.4028234663852886e38;

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const NON_FINITE = /^[+-]?(nan|inf|infinity)$/i;
const BOOLEAN = /^(true|false)$/i;

/**
 * Whether a cell reads as a number: numbers, bigints and strings spelling one (in any format, so
 * that a JSONL or Parquet column of numbers stored as text is reported rather than skipped;
 * non-finite spellings too, so they are reported rather than skipped).
 */
function looksNumeric(cell: unknown): boolean {
  if (typeof cell === 'number' || typeof cell === 'bigint') return true;
  if (typeof cell !== 'string') return false;
  const text = cell.trim();
  return NUMBER.test(text) || NON_FINITE.test(text);
}

/** Whether text spells a number (finite or not), as a CSV cell that is read as one. */
export function readsAsNumber(text: string): boolean {
  return looksNumeric(text);
}

/** Space, tab, CR, LF and the other characters String.prototype.trim removes below U+00A0. */
function isBlank(code: number): boolean {
  return (
    code <= 32 || code === 0xa0 || code === 0xfeff || (code >= 0x1680 && /\s/.test(String.fromCharCode(code)))
  );
}

function isEmpty(cell: unknown): boolean {
  return cell === null || cell === undefined || (typeof cell === 'string' && cell.trim() === '');
}

/**
 * Whether a cell is a missing value: null, an empty or blank string, or in CSV the text `NA`
 * (what R's write.csv writes for a missing value).
 */
export function isMissing(table: Pick<Table, 'format'>, cell: unknown): boolean {
  // Most cells are plain text without surrounding blanks: decided without trimming.
  if (
    typeof cell === 'string' &&
    cell.length > 0 &&
    !isBlank(cell.charCodeAt(0)) &&
    !isBlank(cell.charCodeAt(cell.length - 1))
  )
    return table.format === 'csv' && cell === 'NA';
  if (isEmpty(cell)) return true;
  return table.format === 'csv' && typeof cell === 'string' && cell.trim() === 'NA';
}

/** "line 5" or "row 5" of the same file, or "file: line 5" of another. */
function otherPlace(here: Table, there: Table, row: TableRow): string {
  const unit = there.format === 'parquet' ? 'row' : 'line';
  return there === here ? `${unit} ${row.line}` : `${displayPath(there.path)}: ${unit} ${row.line}`;
}

/** A column named `id` holds identifiers, never a feature, even when columns.id names another. */
function isIdName(name: string): boolean {
  return name.toLowerCase() === 'id';
}

/**
 * Checks that the spec's columns exist in the table and resolves the feature columns. Without a
 * list, a column is a feature when every non-missing cell reads as a number; a column of numbers
 * and other cells together is an error naming both, whichever row they are in; a column of no
 * numbers at all is not used. The id, label and group columns, and any column named `id`, are
 * never features.
 */
export function resolveColumns(table: Table, spec: ColumnSpec, features?: string[]): string[] {
  const shown = displayPath(table.path);
  const has = new Set(table.columns);
  const need = (name: string, role: string) => {
    if (!has.has(name))
      fail(
        `${shown}: no ${role} column ${JSON.stringify(name)} (the file's columns: ${table.columns.join(', ')})`,
      );
  };
  need(spec.label, 'label');
  if (spec.id !== undefined) need(spec.id, 'id');
  if (spec.group !== undefined) need(spec.group, 'group');
  const reserved = new Set([spec.label, spec.id, spec.group].filter((c) => c !== undefined));
  let resolved = features ?? spec.features;
  if (resolved) {
    if (resolved.length === 0) fail('columns.features: the list of feature columns is empty');
    const seen = new Set<string>();
    for (const name of resolved) {
      need(name, 'feature');
      if (reserved.has(name))
        fail(`columns.features: ${JSON.stringify(name)} is also the id, label or group column`);
      if (seen.has(name)) fail(`columns.features: ${JSON.stringify(name)} is listed twice`);
      seen.add(name);
    }
    return resolved;
  }
  resolved = table.columns.filter((name) => {
    if (reserved.has(name) || isIdName(name)) return false;
    let number: TableRow | undefined;
    let other: TableRow | undefined;
    for (const row of table.rows) {
      const cell = row.cells[name];
      if (isMissing(table, cell)) continue;
      if (looksNumeric(cell)) number ??= row;
      else other ??= row;
      if (number && other) break;
    }
    if (number && other) {
      const problem = numberProblem(table, other.cells[name], 'a number');
      fail(
        `${location(table, other, name)}: ${problem}, though other cells of the column are numbers (${otherPlace(table, table, number)}: ${showCell(number.cells[name])}); fix the cell, or list the features in columns.features to leave ${JSON.stringify(name)} out`,
      );
    }
    return number !== undefined;
  });
  if (resolved.length === 0)
    fail(`${shown}: no numeric feature columns (besides id, label and group); name them in columns.features`);
  return resolved;
}

/** Why a cell is not a usable number (without its location), or its value. */
function parseNumber(
  table: Pick<Table, 'format'>,
  cell: unknown,
  what: string,
): { value: number } | { problem: string } {
  if (isMissing(table, cell))
    return {
      problem: isEmpty(cell)
        ? `empty cell, expected ${what}`
        : `missing value ${showCell(cell)}, expected ${what}`,
    };
  let value: number;
  if (typeof cell === 'number') value = cell;
  else if (typeof cell === 'bigint') {
    value = Number(cell);
    if (!Number.isSafeInteger(value)) return { problem: `${cell} is too large to be represented exactly` };
  } else if (typeof cell === 'string' && table.format === 'csv' && NUMBER.test(cell)) {
    // The common case: a plain decimal number, no blanks around it.
    value = Number(cell);
  } else if (typeof cell === 'string' && table.format === 'csv') {
    const text = cell.trim();
    if (NON_FINITE.test(text)) return { problem: `${showCell(cell)} is not a finite number` };
    if (!NUMBER.test(text)) return { problem: `${showCell(cell)} is not a number` };
    value = Number(text);
  } else {
    const type =
      typeof cell === 'string'
        ? `the string ${showCell(cell)}`
        : typeof cell === 'object'
          ? showCell(cell)
          : `${typeof cell} ${showCell(cell)}`;
    return { problem: `expected ${what}, got ${type}` };
  }
  if (!Number.isFinite(value)) return { problem: `${showCell(cell)} is not a finite number` };
  if (Math.abs(value) > FLOAT32_MAX)
    return { problem: `${showCell(cell)} exceeds float32 range (±3.4e38); rescale the column` };
  return { value };
}

function numberProblem(table: Pick<Table, 'format'>, cell: unknown, what: string): string {
  const parsed = parseNumber(table, cell, what);
  return 'problem' in parsed ? parsed.problem : '';
}

/**
 * A cell as a finite number within float32 range; anything else is an error naming file, line
 * and column.
 */
export function numericCell(table: Table, row: TableRow, column: string, what = 'a number'): number {
  const parsed = parseNumber(table, row.cells[column], what);
  if ('problem' in parsed) fail(`${location(table, row, column)}: ${parsed.problem}`);
  return parsed.value;
}

// ---------------------------------------------------------------------------------------------
// Missing values

/** A column a row needs, and what to call its missing cell. */
export interface UsedColumn {
  name: string;
  role: 'feature' | 'label' | 'id';
}

/**
 * Applies the missing-value policy to rows: `error` fails at the first missing cell of a used
 * column (naming file, line and column), `drop` leaves such rows out. Returns the rows kept and
 * how many were dropped.
 */
export function dropMissing(
  table: Table,
  rows: TableRow[],
  used: UsedColumn[],
  policy: MissingPolicy,
): { rows: TableRow[]; dropped: number } {
  const kept: TableRow[] = [];
  for (const row of rows) {
    const cells = row.cells;
    let missing: UsedColumn | undefined;
    for (const column of used)
      if (isMissing(table, cells[column.name])) {
        missing = column;
        break;
      }
    if (!missing) {
      kept.push(row);
      continue;
    }
    if (policy === 'drop') continue;
    const cell = row.cells[missing.name];
    const what =
      typeof cell === 'string' && cell.trim() !== ''
        ? `missing value ${showCell(cell)}`
        : missing.role === 'feature'
          ? 'empty cell, expected a number'
          : `empty ${missing.role}`;
    fail(
      `${location(table, row, missing.name)}: ${what}; set data.missing: drop to leave out rows with missing cells`,
    );
  }
  if (kept.length === 0)
    fail(
      `${displayPath(table.path)}: every row has a missing cell in a used column (${used.map((c) => c.name).join(', ')}); no rows are left`,
    );
  return { rows: kept, dropped: rows.length - kept.length };
}

// ---------------------------------------------------------------------------------------------
// Labels

/** Rows of one table whose labels are read together with others'. */
export interface LabelSource {
  table: Table;
  rows: TableRow[];
}

type LabelCell = { kind: 'number' } | { kind: 'boolean'; value: 0 | 1 } | { kind: 'name'; name: string };

/**
 * What a label cell is: a number (class index, 0/1, target), a boolean (binary), or a class name
 * (text that does not read as a number). A cell that can be none of them is an error here.
 */
function labelCell(table: Table, row: TableRow, column: string, task: TaskKind): LabelCell {
  const cell = row.cells[column];
  const at = location(table, row, column);
  if (task === 'regression') return { kind: 'number' };
  if (isMissing(table, cell)) {
    const what = isEmpty(cell) ? 'empty label' : `missing label ${showCell(cell)}`;
    fail(
      task === 'binary'
        ? `${at}: ${what}; a binary task needs 0 or 1 (or true/false)`
        : `${at}: ${what}; classification needs a class index (an integer ≥ 0) or a class name`,
    );
  }
  if (task === 'binary') {
    if (cell === true || cell === false) return { kind: 'boolean', value: cell ? 1 : 0 };
    if (typeof cell === 'string' && BOOLEAN.test(cell.trim()))
      return { kind: 'boolean', value: cell.trim().toLowerCase() === 'true' ? 1 : 0 };
  }
  if (typeof cell === 'number' || typeof cell === 'bigint') return { kind: 'number' };
  if (typeof cell === 'string') {
    if (!looksNumeric(cell)) return { kind: 'name', name: cell.trim() };
    if (table.format === 'csv') return { kind: 'number' };
    // JSONL and Parquet have number types: a number stored as text is neither index nor name.
    const what = task === 'binary' ? 'a label 0 or 1' : 'a class index';
    fail(`${at}: expected ${what}, got the string ${showCell(cell)}; a class name must not read as a number`);
  }
  return fail(
    task === 'binary'
      ? `${at}: label ${showCell(cell)} is not 0 or 1 (or true/false), as a binary task needs`
      : `${at}: label ${showCell(cell)} is not a class index or a class name`,
  );
}

/** Code-point order (JavaScript's default sort compares UTF-16 code units). */
export function compareCodePoints(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0)!);
  const y = Array.from(b, (c) => c.codePointAt(0)!);
  for (let k = 0; k < Math.min(x.length, y.length); k++) if (x[k] !== y[k]) return x[k] - y[k];
  return x.length - y.length;
}

/**
 * Decides, over every labelled row of the training and validation data together, whether the
 * labels are class names, and returns the class names in class order: `pinned` when given (every
 * label must be one of them), else the distinct names sorted in code-point order. Null when the
 * labels are numbers (or booleans). A column of both names and numbers is an error naming one
 * of each, whichever rows they are in; so is a binary column without exactly two names.
 */
export function labelClassNames(
  sources: LabelSource[],
  column: string,
  task: TaskKind,
  pinned?: string[] | null,
): string[] | null {
  if (task === 'regression') return null;
  let firstName: { source: LabelSource; row: TableRow; name: string } | undefined;
  let firstOther: { source: LabelSource; row: TableRow } | undefined;
  const names = new Map<string, { source: LabelSource; row: TableRow }>();
  for (const source of sources)
    for (const row of source.rows) {
      const kind = labelCell(source.table, row, column, task);
      if (kind.kind === 'name') {
        firstName ??= { source, row, name: kind.name };
        if (!names.has(kind.name)) names.set(kind.name, { source, row });
      } else firstOther ??= { source, row };
    }
  if (firstName && firstOther) {
    const { source, row } = firstName;
    const not = task === 'binary' ? 'is not 0 or 1 (or true/false)' : 'is not a class index';
    const kinds =
      task === 'binary' ? '0/1 (or true/false) or two class names' : 'class indices or class names';
    fail(
      `${location(source.table, row, column)}: label ${showCell(row.cells[column])} ${not}, but ${otherPlace(source.table, firstOther.source.table, firstOther.row)} holds ${showCell(firstOther.row.cells[column])}; a label column holds ${kinds}, not both`,
    );
  }
  if (pinned) {
    if (firstOther) {
      const { source, row } = firstOther;
      fail(
        `${location(source.table, row, column)}: label ${showCell(row.cells[column])} is not a class name, but classNames is set; the label column must hold the names (${pinned.join(', ')})`,
      );
    }
    const known = new Set(pinned);
    for (const [name, { source, row }] of names)
      if (!known.has(name))
        fail(
          `${location(source.table, row, column)}: label ${showCell(name)} is not one of classNames (${pinned.join(', ')})`,
        );
    return [...pinned];
  }
  if (!firstName) return null;
  const sorted = [...names.keys()].sort(compareCodePoints);
  const { source, row } = firstName;
  if (task === 'binary' && sorted.length !== 2) {
    const third = [...names.entries()][2];
    if (third)
      fail(
        `${location(third[1].source.table, third[1].row, column)}: label ${showCell(third[0])} is a third class name (after ${[
          ...names.keys(),
        ]
          .slice(0, 2)
          .map((n) => showCell(n))
          .join(' and ')}); a binary task has two classes: use task classification`,
      );
    fail(
      `${location(source.table, row, column)}: every label is ${showCell(firstName.name)}; a binary task needs two class names (or pin both with classNames)`,
    );
  }
  if (sorted.length < 2)
    fail(
      `${displayPath(source.table.path)}: every label is ${showCell(firstName.name)}; classification needs at least 2 classes (or pin the class names with classNames)`,
    );
  return sorted;
}

/**
 * Each row's label: a class index (classification), 0/1 (binary) or a real target (regression).
 * With `classNames`, labels are class names and class k is `classNames[k]`.
 */
export function readLabels(
  table: Table,
  rows: TableRow[],
  column: string,
  task: TaskKind,
  classNames?: string[] | null,
): number[] {
  const index = classNames ? new Map(classNames.map((name, k) => [name, k])) : null;
  return rows.map((row) => {
    if (task === 'regression') return numericCell(table, row, column, 'a numeric regression target');
    const cell = row.cells[column];
    const at = location(table, row, column);
    const kind = labelCell(table, row, column, task);
    if (index) {
      const k = kind.kind === 'name' ? index.get(kind.name) : undefined;
      if (k === undefined)
        fail(
          kind.kind === 'name'
            ? `${at}: label ${showCell(kind.name)} is not one of the class names (${classNames!.join(', ')})`
            : `${at}: label ${showCell(cell)} is not a class name; the run's labels are class names (${classNames!.join(', ')})`,
        );
      return k;
    }
    if (kind.kind === 'name')
      fail(
        task === 'binary'
          ? `${at}: label ${showCell(cell)} is not 0 or 1 (or true/false), as a binary task needs`
          : `${at}: label ${showCell(cell)} is not a class index (classification needs integers ≥ 0 or class names)`,
      );
    if (kind.kind === 'boolean') return kind.value;
    if (task === 'binary') {
      const y = numericCell(table, row, column, 'a label 0 or 1');
      if (y !== 0 && y !== 1)
        fail(`${at}: label ${showCell(cell)} is out of range; a binary task needs 0 or 1`);
      return y;
    }
    const y = numericCell(table, row, column, 'a class index');
    if (!Number.isInteger(y) || y < 0)
      fail(`${at}: label ${showCell(cell)} is not a class index (classification needs integers ≥ 0)`);
    return y;
  });
}

// ---------------------------------------------------------------------------------------------
// Ids, groups, features

/**
 * Each row's id as text: the id column's cell (strings and integers; not empty, unique over the
 * rows), or the row's 0-based position in the file when there is no id column.
 */
export function tableIds(table: Table, rows: TableRow[], idColumn: string | undefined): string[] {
  // An image's id is its path in the folder, which survives reordering (a row number would not).
  if (idColumn === undefined && table.format === 'images') return rows.map((row) => String(row.cells.id));
  if (idColumn === undefined) return rows.map((row) => String(row.index));
  const firstLine = new Map<string, TableRow>();
  return rows.map((row) => {
    const cell = row.cells[idColumn];
    const at = location(table, row, idColumn);
    if (isEmpty(cell)) fail(`${at}: empty id`);
    let id: string;
    if (typeof cell === 'string') id = cell;
    else if (typeof cell === 'bigint' || (typeof cell === 'number' && Number.isInteger(cell)))
      id = String(cell);
    else return fail(`${at}: id ${showCell(cell)} must be a string or an integer`);
    const first = firstLine.get(id);
    if (first)
      fail(
        `${at}: duplicate id ${showCell(id)} (already used on ${table.format === 'parquet' ? 'row' : 'line'} ${first.line}); ids must be unique`,
      );
    firstLine.set(id, row);
    return id;
  });
}

function readGroups(table: Table, rows: TableRow[], column: string): (string | undefined)[] {
  return rows.map((row) => {
    const cell = row.cells[column];
    if (isMissing(table, cell)) return undefined;
    if (typeof cell === 'string') return cell;
    if (typeof cell === 'number' || typeof cell === 'bigint' || typeof cell === 'boolean')
      return String(cell);
    return fail(`${location(table, row, column)}: group ${showCell(cell)} must be a string or a number`);
  });
}

/** The feature cells of `rows` as a row-major float64 matrix (rows × features). */
export function featureMatrix(table: Table, rows: TableRow[], features: string[]): Float64Array {
  const width = features.length;
  const matrix = new Float64Array(rows.length * width);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    for (let k = 0; k < width; k++) matrix[r * width + k] = numericCell(table, row, features[k]);
  }
  return matrix;
}

/**
 * Mean and population standard deviation (divided by n) of each feature; a feature with a single
 * value gets std 1, so standardizing maps it to 0 instead of dividing by zero.
 */
export function fitStandardization(matrix: Float64Array, features: string[]): Standardization {
  const width = features.length;
  const n = matrix.length / width;
  const mean = new Array<number>(width).fill(0);
  const std = new Array<number>(width).fill(0);
  for (let k = 0; k < width; k++) {
    let sum = 0;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let r = 0; r < n; r++) {
      const x = matrix[r * width + k];
      sum += x;
      if (x < min) min = x;
      if (x > max) max = x;
    }
    const m = sum / n;
    // Deviations scaled by the largest one, so tiny spreads do not square to zero.
    let scale = 0;
    for (let r = 0; r < n; r++) scale = Math.max(scale, Math.abs(matrix[r * width + k] - m));
    let squares = 0;
    for (let r = 0; r < n; r++) squares += ((matrix[r * width + k] - m) / scale) ** 2;
    mean[k] = m;
    // Exactly equal values: their computed deviations are rounding noise, not spread.
    std[k] = min === max ? 1 : scale * Math.sqrt(squares / n);
  }
  return { features: [...features], mean, std };
}

/**
 * Per-channel statistics of channels-first image rows (pixel_k of channel c: k in [c·H·W, (c+1)·H·W)),
 * written out per feature so they apply like any standardization: each channel's mean and std over
 * all its pixels of all rows, as torchvision's Normalize expects them.
 */
export function fitChannelStandardization(
  matrix: Float64Array,
  features: string[],
  table: Table,
): Standardization {
  const image = table.image;
  if (!image)
    fail(
      `${displayPath(table.path)}: data.standardize: channels needs images (an image folder); use data.standardize: true for per-feature statistics`,
    );
  const plane = image.height * image.width;
  if (features.length !== image.channels * plane)
    fail(`${displayPath(table.path)}: data.standardize: channels needs every pixel column as a feature`);
  const n = matrix.length / features.length;
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < image.channels; c++) {
    const values = new Float64Array(n * plane);
    for (let r = 0; r < n; r++)
      values.set(
        matrix.subarray(r * features.length + c * plane, r * features.length + (c + 1) * plane),
        r * plane,
      );
    const stats = fitStandardization(values, ['channel']);
    for (let p = 0; p < plane; p++) {
      mean.push(stats.mean[0]);
      std.push(stats.std[0]);
    }
  }
  return { features: [...features], mean, std };
}

/** Standardizes the matrix in place; a result beyond float32 range is an error naming the cell. */
function applyStandardization(
  table: Table,
  rows: TableRow[],
  matrix: Float64Array,
  stats: Standardization,
): void {
  const width = stats.features.length;
  rows.forEach((row, r) => {
    for (let k = 0; k < width; k++) {
      const x = matrix[r * width + k];
      const z = (x - stats.mean[k]) / stats.std[k];
      if (!(Math.abs(z) <= FLOAT32_MAX))
        fail(
          `${location(table, row, stats.features[k])}: ${x} standardizes to ${z}, beyond float32 range (the training rows' std of this feature is ${stats.std[k]})`,
        );
      matrix[r * width + k] = z;
    }
  });
}

export interface TableToDatasetOptions {
  columns: ColumnSpec;
  /** Resolved feature columns (from `resolveColumns` on the training table). */
  features: string[];
  task: TaskKind;
  /** Classification: the number of classes; a label ≥ it is an error. */
  classes?: number;
  /**
   * Class names in class order when the labels are names (from `labelClassNames`); null or
   * absent: labels are numbers (names are then decided from these rows alone).
   */
  classNames?: string[] | null;
  /**
   * Standardize the features: `fit` on these rows (per feature), `fit-channels` on these rows per
   * image channel (the table's `image` shape: every pixel of a channel shares one mean and std), or
   * apply given statistics.
   */
  standardize?: 'fit' | 'fit-channels' | Standardization;
  /** Rows to take (default all of the table's), in dataset order. */
  rows?: TableRow[];
  /** Dataset name for messages. */
  name?: string;
}

export function tableToDataset(table: Table, options: TableToDatasetOptions): LoadedTable {
  const { columns, features, task } = options;
  const rows = options.rows ?? table.rows;
  resolveColumns(table, columns, features);
  const width = features.length;
  const matrix = featureMatrix(table, rows, features);
  let standardization: Standardization | null = null;
  if (options.standardize) {
    standardization =
      options.standardize === 'fit'
        ? fitStandardization(matrix, features)
        : options.standardize === 'fit-channels'
          ? fitChannelStandardization(matrix, features, table)
          : options.standardize;
    applyStandardization(table, rows, matrix, standardization);
  }
  const classNames =
    options.classNames !== undefined
      ? options.classNames
      : labelClassNames([{ table, rows }], columns.label, task);
  const labels = readLabels(table, rows, columns.label, task, classNames);
  if (task === 'classification' && options.classes !== undefined) {
    labels.forEach((y, r) => {
      if (y >= options.classes!)
        fail(
          `${location(table, rows[r], columns.label)}: class ${y} is out of range (${options.classes} classes: 0 to ${options.classes! - 1})`,
        );
    });
  }
  const ids = tableIds(table, rows, columns.id);
  const groups = columns.group !== undefined ? readGroups(table, rows, columns.group) : undefined;
  const dataset = new TensorDataset({
    name: options.name ?? displayPath(table.path),
    features: matrix,
    width,
    labels,
    labelKind: task === 'classification' ? 'class' : 'real',
    ids,
    groups: groups as string[] | undefined,
  });
  return { table, rows, dataset, ids, standardization };
}

// Turns a table's rows into a TensorDataset: feature columns → a float matrix, the label column →
// class indices or real targets, ids and groups kept. Every bad cell is an error naming the file,
// the line (or Parquet row) and the column.
import { fail } from '../../util/errors.js';
import { TensorDataset } from '../dataset.js';
import { displayPath, location, showCell, type Table, type TableRow } from './table.js';

export type TaskKind = 'classification' | 'binary' | 'regression';

export interface ColumnSpec {
  /** Column of unique example ids; without it an example's id is its 0-based row number in the file. */
  id?: string;
  label: string;
  /** Feature columns, in order; default: every other column whose first non-empty cell is a number. */
  features?: string[];
  /** Column naming each example's group (source, domain, …) for per-group totals. */
  group?: string;
}

export interface LoadedTable {
  table: Table;
  /** The rows the dataset holds, in dataset order (a subset of the table's after a split). */
  rows: TableRow[];
  dataset: TensorDataset;
  ids: string[];
}

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const NON_FINITE = /^[+-]?(nan|inf|infinity)$/i;

/** Whether a cell reads as a number (non-finite spellings included, so they are reported, not skipped). */
function looksNumeric(cell: unknown): boolean {
  if (typeof cell === 'number' || typeof cell === 'bigint') return true;
  if (typeof cell !== 'string') return false;
  const text = cell.trim();
  return NUMBER.test(text) || NON_FINITE.test(text);
}

function isEmpty(cell: unknown): boolean {
  return cell === null || cell === undefined || (typeof cell === 'string' && cell.trim() === '');
}

/** Checks that the spec's columns exist in the table and resolves the feature columns. */
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
  } else {
    resolved = table.columns.filter((name) => {
      if (reserved.has(name)) return false;
      const first = table.rows.find((row) => !isEmpty(row.cells[name]));
      return first !== undefined && looksNumeric(first.cells[name]);
    });
    if (resolved.length === 0)
      fail(
        `${shown}: no numeric feature columns (besides id, label and group); name them in columns.features`,
      );
  }
  return resolved;
}

/** A cell as a finite number; anything else is an error naming file, line and column. */
export function numericCell(table: Table, row: TableRow, column: string, what = 'a number'): number {
  const cell = row.cells[column];
  const at = location(table, row, column);
  if (isEmpty(cell)) fail(`${at}: empty cell, expected ${what}`);
  let value: number;
  if (typeof cell === 'number') value = cell;
  else if (typeof cell === 'bigint') {
    value = Number(cell);
    if (!Number.isSafeInteger(value)) fail(`${at}: ${cell} is too large to be represented exactly`);
  } else if (typeof cell === 'string' && table.format === 'csv') {
    const text = cell.trim();
    if (NON_FINITE.test(text)) fail(`${at}: ${showCell(cell)} is not a finite number`);
    if (!NUMBER.test(text)) fail(`${at}: ${showCell(cell)} is not a number`);
    value = Number(text);
  } else {
    const type =
      typeof cell === 'string'
        ? `the string ${showCell(cell)}`
        : typeof cell === 'object'
          ? showCell(cell)
          : `${typeof cell} ${showCell(cell)}`;
    return fail(`${at}: expected ${what}, got ${type}`);
  }
  if (!Number.isFinite(value)) fail(`${at}: ${showCell(cell)} is not a finite number`);
  return value;
}

/** Each row's label: a class index (classification), 0/1 (binary) or a real target (regression). */
export function readLabels(table: Table, rows: TableRow[], column: string, task: TaskKind): number[] {
  return rows.map((row) => {
    const cell = row.cells[column];
    const at = location(table, row, column);
    if (task === 'binary') {
      if (cell === true || cell === false) return cell ? 1 : 0;
      if (typeof cell === 'string' && /^(true|false)$/i.test(cell.trim()))
        return cell.trim().toLowerCase() === 'true' ? 1 : 0;
      if (isEmpty(cell)) fail(`${at}: empty label; a binary task needs 0 or 1 (or true/false)`);
      if (!looksNumeric(cell) || typeof cell === 'boolean')
        fail(`${at}: label ${showCell(cell)} is not 0 or 1 (or true/false), as a binary task needs`);
      const y = numericCell(table, row, column, 'a label 0 or 1');
      if (y !== 0 && y !== 1)
        fail(`${at}: label ${showCell(cell)} is out of range; a binary task needs 0 or 1`);
      return y;
    }
    if (task === 'classification') {
      if (isEmpty(cell)) fail(`${at}: empty label; classification needs a class index (an integer ≥ 0)`);
      if (!looksNumeric(cell))
        fail(`${at}: label ${showCell(cell)} is not a class index (classification needs integers ≥ 0)`);
      const y = numericCell(table, row, column, 'a class index');
      if (!Number.isInteger(y) || y < 0)
        fail(`${at}: label ${showCell(cell)} is not a class index (classification needs integers ≥ 0)`);
      return y;
    }
    return numericCell(table, row, column, 'a numeric regression target');
  });
}

/**
 * Each row's id as text: the id column's cell (strings and integers; not empty, unique over the
 * rows), or the row's 0-based position in the file when there is no id column.
 */
export function tableIds(table: Table, rows: TableRow[], idColumn: string | undefined): string[] {
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
    if (isEmpty(cell)) return undefined;
    if (typeof cell === 'string') return cell;
    if (typeof cell === 'number' || typeof cell === 'bigint' || typeof cell === 'boolean')
      return String(cell);
    return fail(`${location(table, row, column)}: group ${showCell(cell)} must be a string or a number`);
  });
}

export interface TableToDatasetOptions {
  columns: ColumnSpec;
  /** Resolved feature columns (from `resolveColumns` on the training table). */
  features: string[];
  task: TaskKind;
  /** Classification: the number of classes; a label ≥ it is an error. */
  classes?: number;
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
  const matrix = new Float64Array(rows.length * width);
  rows.forEach((row, r) => {
    features.forEach((name, k) => {
      matrix[r * width + k] = numericCell(table, row, name);
    });
  });
  const labels = readLabels(table, rows, columns.label, task);
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
  return { table, rows, dataset, ids };
}

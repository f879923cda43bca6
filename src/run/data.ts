// The data a run config names, loaded and checked: tabular files for logreg and mlp, text for gpt
// (src/run/text-data.ts). Everything that can be wrong with the input is found here, before a run
// writes anything.
import type { Dataset } from '../data/dataset.js';
import {
  dropMissing,
  type LoadedTable,
  labelClassNames,
  readLabels,
  readTable,
  resolveColumns,
  type Standardization,
  type Table,
  type TableRow,
  tableToDataset,
  type UsedColumn,
} from '../data/readers/index.js';
import { displayPath } from '../data/readers/table.js';
import type { DataFileInfo, RunManifest } from '../io/run-dir.js';
import { fail } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import type { TrainConfig } from './config.js';
import type { TextTrainingData } from './text-data.js';
import { textManifest } from './text-outputs.js';

/**
 * Training and validation data as TensorDatasets. EXTENSION POINT: model kinds on other data
 * (e.g. `gpt` on text) branch here on config.model.kind to their own loader.
 */
export interface TrainingData {
  train: LoadedTable;
  validation: LoadedTable;
  features: string[];
  /** Columns of the training file used as nothing (not numeric, or not among the named features). */
  ignoredColumns: string[];
  classes: number | null;
  /** Labels given as names: class k is classNames[k]; null when the labels are numbers. */
  classNames: string[] | null;
  /** The validation file's table, or null when validation was split off the training file. */
  validationTable: Table | null;
  /**
   * With data.missing drop: rows left out for a missing used cell, per file (validation null when
   * split off the training file); null with data.missing error.
   */
  dropped: { train: number; validation: number | null } | null;
  /** With data.standardize: the training split's per-feature mean and std, applied to both sets. */
  standardization: Standardization | null;
}

/** Seeds for the independent random choices of a run, all from `config.seed`. */
export function runSeeds(seed: number): { split: number; model: number; order: number } {
  const rng = new Rng(seed);
  return { split: rng.nextUint32(), model: rng.nextUint32(), order: rng.nextUint32() };
}

/** The columns each row needs, in the file's column order (so a missing cell is found left to right). */
function usedColumns(table: Table, features: string[], label: string, id: string | undefined): UsedColumn[] {
  const role = new Map<string, UsedColumn['role']>(features.map((name) => [name, 'feature']));
  role.set(label, 'label');
  if (id !== undefined) role.set(id, 'id');
  return table.columns.filter((c) => role.has(c)).map((name) => ({ name, role: role.get(name)! }));
}

export async function loadTrainingData(config: TrainConfig): Promise<TrainingData> {
  if (config.model.kind === 'gpt')
    fail('model kind gpt trains on text: load its data with loadTextTrainingData (src/run/text-data.ts)');
  const policy = config.data.missing;
  const label = config.columns.label;
  const trainTable = await readTable(config.data.train);
  const features = resolveColumns(trainTable, config.columns);
  // Rows with a missing cell go (or fail) before the split, so the split is over usable rows.
  const trainKept = dropMissing(
    trainTable,
    trainTable.rows,
    usedColumns(trainTable, features, label, config.columns.id),
    policy,
  );
  let trainRows = trainKept.rows;
  let validationTable: Table | null = null;
  let validationSource: Table = trainTable;
  let validationRows: TableRow[];
  let validationDropped: number | null = null;
  if (config.data.validation !== undefined) {
    validationTable = await readTable(config.data.validation);
    validationSource = validationTable;
    validationRows = validationTable.rows;
  } else {
    const n = trainRows.length;
    const fraction = config.data.validationSplit!;
    const count = Math.round(n * fraction);
    const rows =
      trainKept.dropped > 0
        ? `${n} rows (after dropping ${trainKept.dropped} with missing cells)`
        : `${n} rows`;
    if (count < 1 || count > n - 1)
      fail(
        `data.validationSplit ${fraction} of ${rows} leaves ${count < 1 ? 'no validation' : 'no training'} examples (${displayPath(trainTable.path)})`,
      );
    const perm = new Rng(runSeeds(config.seed).split).permutation(n);
    const held = new Uint8Array(n);
    for (let k = 0; k < count; k++) held[perm[k]] = 1;
    validationRows = trainRows.filter((_, i) => held[i] === 1);
    trainRows = trainRows.filter((_, i) => held[i] === 0);
  }
  // The validation file needs the label and feature columns; its id and group columns are optional.
  const has = (name: string | undefined) => name !== undefined && validationSource.columns.includes(name);
  const validationColumns = {
    label,
    id: has(config.columns.id) ? config.columns.id : undefined,
    group: has(config.columns.group) ? config.columns.group : undefined,
  };
  if (validationTable) {
    resolveColumns(validationTable, validationColumns, features);
    const kept = dropMissing(
      validationTable,
      validationRows,
      usedColumns(validationTable, features, label, validationColumns.id),
      policy,
    );
    validationRows = kept.rows;
    validationDropped = kept.dropped;
  }
  // Class names are decided over training and validation labels together, so both get one mapping.
  const classNames = labelClassNames(
    [
      { table: trainTable, rows: trainRows },
      { table: validationSource, rows: validationRows },
    ],
    label,
    config.task,
    config.classNames ?? null,
  );
  let classes: number | null = null;
  if (config.task === 'classification') {
    if (classNames) {
      if (config.classes !== undefined && config.classes !== classNames.length)
        fail(
          `${displayPath(trainTable.path)}: classes is ${config.classes}, but the labels are ${classNames.length} class names (${listNames(classNames)}); pin all ${config.classes} with classNames, or drop classes`,
        );
      classes = classNames.length;
    } else if (config.classes !== undefined) classes = config.classes;
    else {
      let max = -1;
      for (const y of readLabels(trainTable, trainRows, label, 'classification')) max = Math.max(max, y);
      for (const y of readLabels(validationSource, validationRows, label, 'classification'))
        max = Math.max(max, y);
      classes = max + 1;
      if (classes < 2)
        fail(
          `${displayPath(trainTable.path)}: every label is 0; classification needs at least 2 classes (or set classes)`,
        );
    }
  }
  const train = tableToDataset(trainTable, {
    columns: config.columns,
    features,
    task: config.task,
    classes: classes ?? undefined,
    classNames,
    standardize: config.data.standardize ? 'fit' : undefined,
    rows: trainRows,
    name: displayPath(trainTable.path),
  });
  const validation = tableToDataset(validationSource, {
    columns: validationColumns,
    features,
    task: config.task,
    classes: classes ?? undefined,
    classNames,
    standardize: train.standardization ?? undefined,
    rows: validationRows,
    name: `${displayPath(validationSource.path)} (validation)`,
  });
  const used = new Set([...features, label, config.columns.id, config.columns.group]);
  const ignoredColumns = trainTable.columns.filter((c) => !used.has(c));
  return {
    train,
    validation,
    features,
    ignoredColumns,
    classes,
    classNames,
    validationTable,
    dropped: policy === 'drop' ? { train: trainKept.dropped, validation: validationDropped } : null,
    standardization: train.standardization,
  };
}

/** A list for one line: all names up to 12, else the first 6, "…" and the last 3. */
export function listNames(names: string[]): string {
  if (names.length <= 12) return names.join(', ');
  return `${names.slice(0, 6).join(', ')}, …, ${names.slice(-3).join(', ')}`;
}

export function fileInfo(table: Table, rows: number): DataFileInfo {
  return { path: table.path, format: table.format, sha256: table.sha256, bytes: table.bytes, rows };
}

/** What a run needs of its data, tabular or text. */
export interface RunInputs {
  train: Dataset;
  validation: Dataset;
  validationIds: string[];
  trainInfo: DataFileInfo;
  validationInfo: DataFileInfo | null;
  features: string[];
  ignoredColumns: string[];
  classes: number | null;
  /** The "data: …" line. */
  summary: string;
  /** What manifest.json records of the data (its `data` section). */
  manifestData: RunManifest['data'];
}

export function tableInputs(data: TrainingData): RunInputs {
  const trainInfo = fileInfo(data.train.table, data.train.table.rows.length);
  const validationInfo = data.validationTable
    ? fileInfo(data.validationTable, data.validationTable.rows.length)
    : null;
  return {
    train: data.train.dataset,
    validation: data.validation.dataset,
    validationIds: data.validation.ids,
    trainInfo,
    validationInfo,
    features: data.features,
    ignoredColumns: data.ignoredColumns,
    classes: data.classes,
    summary: tableSummary(data),
    manifestData: {
      train: trainInfo,
      validation: validationInfo,
      trainExamples: data.train.dataset.size,
      validationExamples: data.validation.dataset.size,
      features: data.features,
      ignoredColumns: data.ignoredColumns,
      classes: data.classes,
      ...(data.classNames ? { classNames: data.classNames } : {}),
      ...(data.dropped ? { droppedRows: data.dropped } : {}),
      ...(data.standardization ? { standardization: data.standardization } : {}),
    },
  };
}

/**
 * The "data: …" line of a tabular run: example counts, the features by name, the classes (by
 * name when the labels are names), rows dropped per file, and the columns not used.
 */
function tableSummary(data: TrainingData): string {
  const f = data.features;
  const parts = [
    `data: ${data.train.dataset.size} training examples, ${data.validation.dataset.size} validation examples`,
    `${f.length} feature${f.length === 1 ? '' : 's'} (${listNames(f)})${data.standardization ? ', standardized' : ''}`,
  ];
  if (data.classes) {
    const names = data.classNames ? ` (${listNames(data.classNames)})` : '';
    parts.push(`${data.classes} classes${names}`);
  } else if (data.classNames) parts.push(`labels ${data.classNames[0]} = 0, ${data.classNames[1]} = 1`);
  const dropped = data.dropped;
  if (dropped && dropped.train + (dropped.validation ?? 0) > 0) {
    const total = dropped.train + (dropped.validation ?? 0);
    const perFile = [`${displayPath(data.train.table.path)}: ${dropped.train}`];
    if (data.validationTable && dropped.validation !== null)
      perFile.push(`${displayPath(data.validationTable.path)}: ${dropped.validation}`);
    parts.push(`${total} row${total === 1 ? '' : 's'} with missing cells dropped (${perFile.join(', ')})`);
  }
  if (data.ignoredColumns.length > 0) parts.push(`columns not used: ${data.ignoredColumns.join(', ')}`);
  return parts.join('; ');
}

export function textInputs(data: TextTrainingData): RunInputs {
  const docs = (n: number) => `${n} document${n === 1 ? '' : 's'}`;
  const v = data.vocabulary;
  return {
    train: data.train.dataset,
    validation: data.validation.dataset,
    validationIds: data.validation.ids,
    trainInfo: data.trainInfo,
    validationInfo: data.validationInfo,
    features: [],
    ignoredColumns: [],
    classes: null,
    summary:
      `data: ${docs(data.train.documents.length)} → ${data.train.dataset.size} training sequences of ${data.train.dataset.context} tokens ` +
      `(${data.tokens.train} tokens); validation: ${docs(data.validation.documents.length)} → ${data.validation.dataset.size} sequences; ` +
      `${v.tokenizer} tokenizer, vocabulary ${v.size}${v.original ? ` (compacted from ${v.tokenizerSize})` : ''}` +
      (data.skipped.length > 0 ? `; ${docs(data.skipped.length)} skipped` : '') +
      (data.tokens.validationUnknown > 0
        ? `; ${data.tokens.validationUnknown} validation token${data.tokens.validationUnknown === 1 ? '' : 's'} not in the training text (not scored)`
        : ''),
    manifestData: {
      train: data.trainInfo,
      validation: data.validationInfo,
      trainExamples: data.train.dataset.size,
      validationExamples: data.validation.dataset.size,
      features: [],
      ignoredColumns: [],
      classes: null,
      text: textManifest(data),
    },
  };
}

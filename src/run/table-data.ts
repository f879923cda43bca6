// The tabular data a run config names, loaded and checked, with the files read through a given
// reader: Node reads them from disk (./data.ts), the web page from the files it was given.
// Everything that can be wrong with the input is found here, before a run writes anything. No
// Node imports.
import type { Dataset } from '../data/dataset.js';
import { displayPath, type Table, type TableRow } from '../data/readers/table.js';
import {
  dropMissing,
  type LoadedTable,
  labelClassNames,
  readLabels,
  resolveColumns,
  type Standardization,
  tableToDataset,
  type UsedColumn,
} from '../data/readers/to-dataset.js';
import type { DataFileInfo, RunManifest } from '../io/run-dir.js';
import type { ImageShape } from '../layers/conv2d.js';
import { fail } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import type { TrainConfig } from './config-schema.js';

/**
 * Training, validation and (optional) test data as TensorDatasets. EXTENSION POINT: model kinds on
 * other data (e.g. `gpt` on text) branch here on config.model.kind to their own loader.
 */
export interface TrainingData {
  train: LoadedTable;
  validation: LoadedTable;
  /** The held-out test set (data.test or data.testSplit); null without one. */
  test: LoadedTable | null;
  features: string[];
  /** Columns of the training file used as nothing (not numeric, or not among the named features). */
  ignoredColumns: string[];
  classes: number | null;
  /** Labels given as names: class k is classNames[k]; null when the labels are numbers. */
  classNames: string[] | null;
  /** The validation file's table, or null when validation was split off the training file. */
  validationTable: Table | null;
  /** The test file's table, or null when the test set was split off the training file (or there is none). */
  testTable: Table | null;
  /**
   * With data.missing drop: rows left out for a missing used cell, per file (validation and test
   * null when split off the training file; test only with a test set); null with data.missing error.
   */
  dropped: { train: number; validation: number | null; test?: number | null } | null;
  /** With data.standardize: the training split's per-feature mean and std, applied to both sets. */
  standardization: Standardization | null;
}

/** Seeds for the independent random choices of a run, all from `config.seed`. */
export function runSeeds(seed: number): { split: number; model: number; order: number; validation: number } {
  const rng = new Rng(seed);
  // Drawn in this order; a new stream goes last, so the earlier ones never change.
  return {
    split: rng.nextUint32(),
    model: rng.nextUint32(),
    order: rng.nextUint32(),
    validation: rng.nextUint32(),
  };
}

/** Which part of the training file a row (or document) goes to; see `splitParts`. */
export const PART = { train: 0, validation: 1, test: 2 } as const;

/**
 * Splits n rows (or documents) of the training file into training, validation and test parts:
 * one permutation from the run's split seed; its first round(n·validationSplit) positions are the
 * validation rows, the next round(n·testSplit) the test rows, the rest stay for training. So the
 * same seed and fractions always give the same parts, and adding a test split (or changing its
 * fraction) keeps the validation rows and only moves rows from training to test. Returns each
 * row's PART; fails, naming the count and the file, when a part would be empty.
 */
export function splitParts(
  n: number,
  seed: number,
  fractions: { validation?: number; test?: number },
  what: { count: string; where: string; unit: 'examples' | 'documents' },
): Uint8Array {
  const parts = new Uint8Array(n);
  const validation = fractions.validation === undefined ? 0 : Math.round(n * fractions.validation);
  const test = fractions.test === undefined ? 0 : Math.round(n * fractions.test);
  // Text runs can name the held-out documents as files instead.
  const advice = (field: string) => (what.unit === 'documents' ? `; give data.${field} instead` : '');
  if (fractions.validation !== undefined && (validation < 1 || validation > n - 1))
    fail(
      `data.validationSplit ${fractions.validation} of ${what.count} leaves ${validation < 1 ? 'no validation' : 'no training'} ${what.unit} (${what.where})${advice('validation')}`,
    );
  if (fractions.test !== undefined && (test < 1 || test > n - 1))
    fail(
      `data.testSplit ${fractions.test} of ${what.count} leaves ${test < 1 ? 'no test' : 'no training'} ${what.unit} (${what.where})${advice('test')}`,
    );
  if (validation + test > n - 1)
    fail(
      `data.validationSplit ${fractions.validation} and data.testSplit ${fractions.test} of ${what.count} leave no training ${what.unit} (${what.where})`,
    );
  if (validation + test === 0) return parts;
  const perm = new Rng(runSeeds(seed).split).permutation(n);
  for (let k = 0; k < validation; k++) parts[perm[k]] = PART.validation;
  for (let k = validation; k < validation + test; k++) parts[perm[k]] = PART.test;
  return parts;
}

/** The columns each row needs, in the file's column order (so a missing cell is found left to right). */
function usedColumns(table: Table, features: string[], label: string, id: string | undefined): UsedColumn[] {
  const role = new Map<string, UsedColumn['role']>(features.map((name) => [name, 'feature']));
  role.set(label, 'label');
  if (id !== undefined) role.set(id, 'id');
  return table.columns.filter((c) => role.has(c)).map((name) => ({ name, role: role.get(name)! }));
}

/** Reads a data file the config names (readTable on disk; the web page reads the files it was given). */
export type TableReader = (path: string) => Promise<Table>;

/**
 * The training, validation and test data of a tabular run config, each table read with `read`:
 * every check, split, class mapping and standardization of a run, whatever holds the files.
 */
export async function loadTrainingDataFrom(config: TrainConfig, read: TableReader): Promise<TrainingData> {
  if (config.model.kind === 'gpt')
    fail('model kind gpt trains on text: load its data with loadTextTrainingData (src/run/text-data.ts)');
  const policy = config.data.missing;
  const label = config.columns.label;
  const trainTable = await read(config.data.train);
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
  let validationRows: TableRow[] = [];
  let validationDropped: number | null = null;
  const testSplit = config.data.testSplit;
  const testFile = config.data.test;
  let testTable: Table | null = null;
  let testSource: Table = trainTable;
  let testRows: TableRow[] = [];
  let testDropped: number | null = null;
  if (config.data.validation !== undefined) {
    validationTable = await read(config.data.validation);
    validationSource = validationTable;
    validationRows = validationTable.rows;
  }
  if (testFile !== undefined) {
    testTable = await read(testFile);
    testSource = testTable;
    testRows = testTable.rows;
    checkHeldOutFile(testTable, trainTable, validationTable);
  }
  const validationSplit = config.data.validationSplit;
  if (validationSplit !== undefined || testSplit !== undefined) {
    const n = trainRows.length;
    const parts = splitParts(
      n,
      config.seed,
      { validation: validationSplit, test: testSplit },
      {
        count:
          trainKept.dropped > 0
            ? `${n} rows (after dropping ${trainKept.dropped} with missing cells)`
            : `${n} rows`,
        where: displayPath(trainTable.path),
        unit: 'examples',
      },
    );
    if (validationSplit !== undefined)
      validationRows = trainRows.filter((_, i) => parts[i] === PART.validation);
    if (testSplit !== undefined) testRows = trainRows.filter((_, i) => parts[i] === PART.test);
    trainRows = trainRows.filter((_, i) => parts[i] === PART.train);
  }
  // The validation and test files need the label and feature columns; id and group are optional.
  const heldOutColumns = (source: Table) => {
    const has = (name: string | undefined) => name !== undefined && source.columns.includes(name);
    return {
      label,
      id: has(config.columns.id) ? config.columns.id : undefined,
      group: has(config.columns.group) ? config.columns.group : undefined,
    };
  };
  // A held-out file's columns resolved, and its rows with missing cells handled by the policy.
  const keepHeldOut = (table: Table, rows: typeof trainRows, columns: ReturnType<typeof heldOutColumns>) => {
    resolveColumns(table, columns, features);
    return dropMissing(table, rows, usedColumns(table, features, label, columns.id), policy);
  };
  const validationColumns = heldOutColumns(validationSource);
  if (validationTable)
    ({ rows: validationRows, dropped: validationDropped } = keepHeldOut(
      validationTable,
      validationRows,
      validationColumns,
    ));
  const testColumns = heldOutColumns(testSource);
  if (testTable) {
    ({ rows: testRows, dropped: testDropped } = keepHeldOut(testTable, testRows, testColumns));
    if (testRows.length === 0)
      fail(`${displayPath(testTable.path)}: the test file has no rows left to test on`);
  }
  // Class names are decided over training and validation labels together, so both get one mapping.
  // The test labels never change it (nor the model): a test label outside it is an error.
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
    standardize:
      config.data.standardize === 'channels' ? 'fit-channels' : config.data.standardize ? 'fit' : undefined,
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
  const test =
    testFile !== undefined || testSplit !== undefined
      ? tableToDataset(testSource, {
          columns: testColumns,
          features,
          task: config.task,
          classes: classes ?? undefined,
          classNames,
          standardize: train.standardization ?? undefined,
          rows: testRows,
          name: `${displayPath(testSource.path)} (test)`,
        })
      : null;
  const used = new Set([...features, label, config.columns.id, config.columns.group]);
  const ignoredColumns = trainTable.columns.filter((c) => !used.has(c));
  return {
    train,
    validation,
    test,
    features,
    ignoredColumns,
    classes,
    classNames,
    validationTable,
    testTable,
    dropped:
      policy === 'drop'
        ? {
            train: trainKept.dropped,
            validation: validationDropped,
            ...(test ? { test: testDropped } : {}),
          }
        : null,
    standardization: train.standardization,
  };
}

/**
 * A test file must be held out: the same bytes as the training or validation file would judge the
 * model on data it trained on or was valued against.
 */
function checkHeldOutFile(test: Table, train: Table, validation: Table | null): void {
  for (const [role, other] of [
    ['training', train],
    ['validation', validation],
  ] as const)
    if (other && other.sha256 === test.sha256)
      fail(
        `data.test ${displayPath(test.path)}: has the same content as the ${role} file ${displayPath(other.path)}; the test set must be held out (or use data.testSplit)`,
      );
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
  /** The held-out test set: evaluated during the run, never used for training or values; null without one. */
  test: Dataset | null;
  trainInfo: DataFileInfo;
  validationInfo: DataFileInfo | null;
  /** The test file; null when split off the training file or without a test set. */
  testInfo: DataFileInfo | null;
  features: string[];
  ignoredColumns: string[];
  classes: number | null;
  /** Labels given as names: class k is classNames[k]; null when they are numbers (and for text). */
  classNames: string[] | null;
  /** Image folders: the images' shape (for a cnn); null otherwise. */
  image: ImageShape | null;
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
  const testInfo = data.testTable ? fileInfo(data.testTable, data.testTable.rows.length) : null;
  return {
    train: data.train.dataset,
    validation: data.validation.dataset,
    validationIds: data.validation.ids,
    test: data.test?.dataset ?? null,
    trainInfo,
    validationInfo,
    testInfo,
    features: data.features,
    ignoredColumns: data.ignoredColumns,
    classes: data.classes,
    classNames: data.classNames,
    image: data.train.table.image ?? null,
    summary: tableSummary(data),
    manifestData: {
      train: trainInfo,
      validation: validationInfo,
      trainExamples: data.train.dataset.size,
      validationExamples: data.validation.dataset.size,
      ...(data.test ? { test: testInfo, testExamples: data.test.dataset.size } : {}),
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
    `data: ${data.train.dataset.size} training examples, ${data.validation.dataset.size} validation examples${data.test ? `, ${data.test.dataset.size} test examples` : ''}`,
    `${f.length} feature${f.length === 1 ? '' : 's'} (${listNames(f)})${data.standardization ? ', standardized' : ''}`,
  ];
  if (data.classes) {
    const names = data.classNames ? ` (${listNames(data.classNames)})` : '';
    parts.push(`${data.classes} classes${names}`);
  } else if (data.classNames) parts.push(`labels ${data.classNames[0]} = 0, ${data.classNames[1]} = 1`);
  const dropped = data.dropped;
  const droppedTotal = dropped ? dropped.train + (dropped.validation ?? 0) + (dropped.test ?? 0) : 0;
  if (dropped && droppedTotal > 0) {
    const total = droppedTotal;
    const perFile = [`${displayPath(data.train.table.path)}: ${dropped.train}`];
    if (data.validationTable && dropped.validation !== null)
      perFile.push(`${displayPath(data.validationTable.path)}: ${dropped.validation}`);
    if (data.testTable && dropped.test != null)
      perFile.push(`${displayPath(data.testTable.path)}: ${dropped.test}`);
    parts.push(`${total} row${total === 1 ? '' : 's'} with missing cells dropped (${perFile.join(', ')})`);
  }
  if (data.ignoredColumns.length > 0) parts.push(`columns not used: ${data.ignoredColumns.join(', ')}`);
  return parts.join('; ');
}

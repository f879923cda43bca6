// The data a run config names, loaded and checked: tabular files for logreg and mlp, text for gpt
// (src/run/text-data.ts). Everything that can be wrong with the input is found here, before a run
// writes anything.
import type { Dataset } from '../data/dataset.js';
import {
  type LoadedTable,
  readLabels,
  readTable,
  resolveColumns,
  type Table,
  type TableRow,
  tableToDataset,
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
  /** The validation file's table, or null when validation was split off the training file. */
  validationTable: Table | null;
}

/** Seeds for the independent random choices of a run, all from `config.seed`. */
export function runSeeds(seed: number): { split: number; model: number; order: number } {
  const rng = new Rng(seed);
  return { split: rng.nextUint32(), model: rng.nextUint32(), order: rng.nextUint32() };
}

export async function loadTrainingData(config: TrainConfig): Promise<TrainingData> {
  if (config.model.kind === 'gpt')
    fail('model kind gpt trains on text: load its data with loadTextTrainingData (src/run/text-data.ts)');
  const trainTable = await readTable(config.data.train);
  const features = resolveColumns(trainTable, config.columns);
  let trainRows = trainTable.rows;
  let validationTable: Table | null = null;
  let validationSource: Table = trainTable;
  let validationRows: TableRow[];
  if (config.data.validation !== undefined) {
    validationTable = await readTable(config.data.validation);
    validationSource = validationTable;
    validationRows = validationTable.rows;
  } else {
    const n = trainRows.length;
    const fraction = config.data.validationSplit!;
    const count = Math.round(n * fraction);
    if (count < 1 || count > n - 1)
      fail(
        `data.validationSplit ${fraction} of ${n} rows leaves ${count < 1 ? 'no validation' : 'no training'} examples (${displayPath(trainTable.path)})`,
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
    label: config.columns.label,
    id: has(config.columns.id) ? config.columns.id : undefined,
    group: has(config.columns.group) ? config.columns.group : undefined,
  };
  let classes: number | null = null;
  if (config.task === 'classification') {
    if (config.classes !== undefined) classes = config.classes;
    else {
      let max = -1;
      for (const y of readLabels(trainTable, trainRows, config.columns.label, 'classification'))
        max = Math.max(max, y);
      resolveColumns(validationSource, validationColumns, features);
      for (const y of readLabels(validationSource, validationRows, config.columns.label, 'classification'))
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
    rows: trainRows,
    name: displayPath(trainTable.path),
  });
  const validation = tableToDataset(validationSource, {
    columns: validationColumns,
    features,
    task: config.task,
    classes: classes ?? undefined,
    rows: validationRows,
    name: `${displayPath(validationSource.path)} (validation)`,
  });
  const used = new Set([...features, config.columns.label, config.columns.id, config.columns.group]);
  const ignoredColumns = trainTable.columns.filter((c) => !used.has(c));
  return { train, validation, features, ignoredColumns, classes, validationTable };
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
    summary:
      `data: ${data.train.dataset.size} training examples, ${data.validation.dataset.size} validation examples, ` +
      `${data.features.length} features${data.classes ? `, ${data.classes} classes` : ''}` +
      (data.ignoredColumns.length > 0 ? ` (columns not used: ${data.ignoredColumns.join(', ')})` : ''),
    manifestData: {
      train: trainInfo,
      validation: validationInfo,
      trainExamples: data.train.dataset.size,
      validationExamples: data.validation.dataset.size,
      features: data.features,
      ignoredColumns: data.ignoredColumns,
      classes: data.classes,
    },
  };
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
      (data.skipped.length > 0 ? `; ${docs(data.skipped.length)} skipped` : ''),
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

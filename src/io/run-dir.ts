/**
 * The run directory of `inrun train` and everything in it. Layout (see docs/cli.md):
 *
 *   config.json                  the resolved config (defaults filled in, paths absolute); a valid
 *                                `--config` file itself
 *   manifest.json                status, inrun and Node versions, kernels, seed, sha256 of the data
 *                                files, data shapes, step counts, and the run's times — the ONLY
 *                                file with times or machine details
 *   values.csv / .jsonl / .parquet
 *                                one row per training example, in first-seen order: id, group,
 *                                times_seen, first_order, second_order, normalized, stage_0..k-1
 *   suspects.csv                 classification runs (not gpt): every valued example, most suspicious
 *                                first: rank, id, label, predicted, confidence, rank_<signal>…
 *                                (src/run/suspects.ts); absent in regression runs and older runs
 *   per_validation.safetensors   (perValidation: true) tensor "values" [train, validation], rows in
 *                                values order, columns in validation order
 *   trace.csv / trace.jsonl      one row per step: every TraceEntry field, testLoss and
 *                                testAccuracy with a test set, batchIds on request
 *   weights.initial.safetensors  weights before the first step and after the last; tensor names
 *   weights.final.safetensors    are the model's layer names, Linear weights [out, in]
 *   checkpoint/                  while a run is unfinished: the state to resume from
 *
 * Text (model kind gpt) runs also have:
 *
 *   vocabulary.json              the token-id mapping: tokenizer, model vocabulary size, and
 *                                `original[k]` = the tokenizer id of model id k (null: identity)
 *   documents.csv                one row per training document: document_id, source, sequences
 *                                (trained on), first_order, second_order, stage_0..k-1 — the sums
 *                                of its sequences' values
 *   sources.csv                  one row per source: source, documents, sequences, first_order,
 *                                second_order, stage_0..k-1
 *   attribution.csv              (perValidation) one row per query (validation document) and
 *                                training document, ranked per query: query_id, query_source,
 *                                rank, document_id, source, sequences, sequences_valued,
 *                                times_seen, first_order, second_order, normalized, best_sequence,
 *                                best_normalized, rank_tfidf, rank_bm25, stage_0..k-1
 *
 * Every file is written atomically except trace.csv and trace.jsonl, which grow a row per step
 * (src/io/trace-log.ts; a resume cuts them back to the checkpoint). manifest.json lists the files
 * the run wrote; .inrun.lock exists while a process writes the run (src/run/lock.ts). Values,
 * trace and weights depend only on the config and the data, so equal runs (and resumed runs) give
 * byte-identical files.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseCsv } from '../data/readers/csv.js';
import { displayPath } from '../data/readers/table.js';
import { fail } from '../util/errors.js';
import { errorCode, failFileError } from '../util/fs-errors.js';
import { writeFileAtomic } from './atomic.js';
import { checkArchiveComplete, unzipRunArchive } from './run-archive.js';
import { jsonFileText, RUN_FILES } from './run-files.js';
import { decodeSafetensors, type NamedTensor } from './safetensors.js';
import type { RunTraceEntry } from './values-writers.js';

export { RUN_FILES } from './run-files.js';
export type { RunTraceEntry } from './values-writers.js';

export type RunStatus = 'running' | 'interrupted' | 'complete' | 'failed';

export interface DataFileInfo {
  path: string;
  format: string;
  sha256: string;
  bytes: number;
  rows: number;
}

/** What manifest.json records of a text run's data (`data.text`). */
export interface TextManifest {
  tokenizer: string;
  vocabularySize: number;
  compactVocabulary: boolean;
  context: number;
  trainDocuments: number;
  validationDocuments: number;
  trainTokens: number;
  validationTokens: number;
  /** Validation target tokens the training text never has: read as end-of-text, not scored (absent before 0.2). */
  validationUnknownTokens?: number;
  /** Runs with a test set: its documents, tokens, and target tokens the training text never has (not scored). */
  testDocuments?: number;
  testTokens?: number;
  testUnknownTokens?: number;
  /** One line per document that gave no sequence (empty, too short). */
  skipped: string[];
}

/** vocabulary.json of a text run: model id k is the tokenizer's id `original[k]` (null: the same id). */
export interface VocabularyFile {
  tokenizer: string;
  /** The model's vocabulary size. */
  size: number;
  /** The tokenizer's vocabulary size. */
  tokenizerSize: number;
  original: number[] | null;
}

/** A row of documents.csv (per training document) or, with `documents`, of sources.csv. */
export interface TextValueRow {
  /** documents.csv: the document id; sources.csv: the source. */
  id: string;
  source: string;
  /** sources.csv only: documents of the source. */
  documents: number | null;
  sequences: number;
  firstOrder: number;
  secondOrder: number | null;
  stages: number[];
}

/**
 * A warning about a run whose values may be meaningless (src/run/diagnostics.ts): printed during
 * the run, kept in manifest.json and shown at the top of the report.
 */
export interface RunWarning {
  /** Which check: exploding-loss, taylor-error, efficiency-residual, feature-scale, target-scale. */
  code: string;
  /** What was seen and what to change. */
  message: string;
  /** The step at which it was first seen; null for checks of the data before training. */
  step: number | null;
}

/** manifest.json. */
export interface RunManifest {
  format: 'inrun-run';
  /** 1: up to inrun 0.1 (no file list or checksums); 2: files and checksums recorded. */
  formatVersion: 1 | 2;
  status: RunStatus;
  inrunVersion: string;
  nodeVersion: string;
  kernels: string;
  seed: number;
  config: Record<string, unknown>;
  data: {
    train: DataFileInfo;
    /** The validation file, or null when it was split off the training file. */
    validation: DataFileInfo | null;
    /**
     * Runs with a test set (data.test or data.testSplit): the test file, or null when it was split
     * off the training file. Absent without a test set (and in runs before test sets existed).
     */
    test?: DataFileInfo | null;
    trainExamples: number;
    validationExamples: number;
    /** Runs with a test set: its examples (text: sequences). */
    testExamples?: number;
    features: string[];
    /** Training-file columns used as nothing (neither id, label, group nor feature). */
    ignoredColumns: string[];
    /** Classification: the number of classes. */
    classes: number | null;
    /** Labels given as names: class k is classNames[k] (binary: class 0 and 1). */
    classNames?: string[];
    /**
     * data.missing drop: rows left out for a missing feature, label or id cell, per file (validation,
     * test null: split off; test only in runs with a test set).
     */
    droppedRows?: { train: number; validation: number | null; test?: number | null };
    /** data.standardize: each feature's training mean and std; inputs are (x − mean) / std. */
    standardization?: { features: string[]; mean: number[]; std: number[] };
    /** Text (gpt) runs: tokenizer, vocabulary, document and token counts, skipped documents. */
    text?: TextManifest;
  };
  model: { parameters: number; tensors: { name: string; shape: number[] }[] };
  totalSteps: number;
  stageStarts: number[];
  stepsDone: number;
  /** (format 2) Every file and folder the run wrote, by name: what `--force` may delete. */
  files?: string[];
  /** (format 2) sha256 of the files a resume relies on (config, vocabulary, initial weights). */
  checksums?: Record<string, string>;
  /** Failure or interruption message. */
  message?: string;
  /** Warnings about the run's values, each check at most once, in the order they were seen. */
  warnings?: RunWarning[];
  /** Wall-clock times (ISO 8601) — the only times anywhere in the run directory. */
  times: {
    startedAt: string;
    finishedAt: string | null;
    /** When each `--resume` started. */
    resumedAt: string[];
    /** Seconds spent training, over the first run and every resume. */
    trainingSeconds: number;
  };
}

/** JSON with a final newline, written atomically. */
export async function writeJsonFile(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, jsonFileText(value));
}

/**
 * Where a run's files are read from: its directory, or an archive of it (loadRunArchive). Files
 * are named by path (<dir>/<name>), so messages read the same for both.
 */
export interface RunFiles {
  /** What holds the files, in "missing from the run directory". */
  kind: 'directory' | 'archive';
  /** A file's bytes; null when the run has no such file. */
  read(path: string): Promise<Uint8Array | null>;
}

/** The files of a run directory on disk. */
export const DIRECTORY_FILES: RunFiles = {
  kind: 'directory',
  async read(path) {
    try {
      return await readFile(path);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return null;
      return failFileError(error, displayPath(path), 'read');
    }
  },
};

/** Reads a file of the run; a missing one is named as missing from the run. */
async function readRunFile(path: string, files: RunFiles): Promise<Uint8Array> {
  const bytes = await files.read(path);
  if (bytes === null) fail(`${displayPath(path)}: missing from the run ${files.kind}`);
  return bytes;
}

/** A JSON object (not a list or a scalar) from a file of the run. */
async function readJsonFile<T extends object>(path: string, files: RunFiles): Promise<T> {
  const text = new TextDecoder().decode(await readRunFile(path, files));
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return fail(`${displayPath(path)}: not valid JSON (${(error as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    fail(`${displayPath(path)}: expected a JSON object`);
  return value as T;
}

/**
 * Reads `<dir>/manifest.json`. A path that is no folder, a folder without a manifest, or a
 * manifest inrun did not write is "not a run directory" (naming the folder the user gave).
 */
export async function readManifest(dir: string): Promise<RunManifest> {
  const shown = displayPath(dir);
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(dir)).isDirectory();
  } catch (error) {
    if (errorCode(error) === 'ENOENT') fail(`${shown}: no such run directory`);
    return failFileError(error, shown, 'read the run directory');
  }
  if (!isDirectory) fail(`${shown}: not a run directory (no ${RUN_FILES.manifest})`);
  const path = join(dir, RUN_FILES.manifest);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') fail(`${shown}: not a run directory (no ${RUN_FILES.manifest})`);
    return failFileError(error, displayPath(path), 'read');
  }
  return parseManifest(text, path, `${shown}: not a run directory`);
}

/**
 * manifest.json's text, checked: `path` names the file, `notRun` starts the message for a manifest
 * inrun did not write ("<dir>: not a run directory").
 */
export function parseManifest(text: string, path: string, notRun: string): RunManifest {
  let manifest: Partial<RunManifest> | null;
  try {
    manifest = JSON.parse(text) as Partial<RunManifest> | null;
  } catch (error) {
    return fail(`${displayPath(path)}: not valid JSON (${(error as Error).message})`);
  }
  if (manifest === null || typeof manifest !== 'object' || manifest.format !== 'inrun-run')
    fail(`${notRun} (its ${RUN_FILES.manifest} is not an inrun run manifest)`);
  const version = manifest.formatVersion as unknown;
  if (version !== 1 && version !== 2)
    fail(
      `${displayPath(path)}: run directory format ${JSON.stringify(version)} is not one this inrun reads (1 or 2); it was written by a newer inrun — upgrade inrun to read it`,
    );
  return manifest as RunManifest;
}

/** One row of the values files. */
export interface ValueRow {
  id: string | number;
  group: string | null;
  timesSeen: number;
  firstOrder: number;
  /** Null for first-order runs. */
  secondOrder: number | null;
  normalized: number;
  stages: number[];
  /**
   * The per-example signals (SIGNAL_COLUMNS, camel-cased); null where not measured, and null for
   * every example of a run from before 0.3.0.
   */
  selfInfluence: number | null;
  meanLoss: number | null;
  aum: number | null;
  forgettingEvents: number | null;
  timesCorrect: number | null;
  classValue: number | null;
  /** Runs with valuation.validationBatch: the standard error of the main value. */
  standardError: number | null;
  /** Runs with momentum credit: what momentum carried from the example into later steps. */
  momentumCredit: number | null;
}

export interface LoadedRun {
  dir: string;
  /** config.json: the resolved config (see src/run/config.ts TrainConfig). */
  config: Record<string, unknown>;
  manifest: RunManifest;
  values: ValueRow[];
  /** With a test set, rows carry testLoss/testAccuracy; without one (or from older runs) they lack them. */
  trace: RunTraceEntry[];
  weights: { initial: NamedTensor[]; final: NamedTensor[] };
  /** perValidation runs: [train, validation] row-major, rows in `values` order. */
  perValidation: { values: Float64Array; shape: [number, number]; validationIds: string[] } | null;
  /**
   * Classification runs: suspects.csv, most suspicious first; null when the run has none
   * (regression, text runs, runs from before 0.3.0).
   */
  suspects: SuspectsTable | null;
  /** Text (gpt) runs: documents.csv, sources.csv and vocabulary.json; null otherwise. */
  text: {
    documents: TextValueRow[];
    sources: TextValueRow[];
    vocabulary: VocabularyFile;
    /** attribution.csv (runs with per-validation values); null when the run has none. */
    attribution: AttributionFileRow[] | null;
  } | null;
}

/** One row of suspects.csv (src/run/suspects.ts). */
export interface SuspectRow {
  /** 1-based, by the signal the file is ordered by (the area under the margin): the row's position. */
  rank: number;
  id: string;
  /** The given label and the final model's prediction, as written (a class index, or its name). */
  label: string;
  predicted: string;
  /** The final model's probability of `predicted`; null for an empty cell. */
  confidence: number | null;
  /** Each signal's rank of the example (1 = most suspicious): signal name → rank; null for an empty cell. */
  ranks: Record<string, number | null>;
}

/** suspects.csv read back: the signals of its `rank_<signal>` columns, in file order, and its rows. */
export interface SuspectsTable {
  signals: string[];
  rows: SuspectRow[];
}

const SUSPECT_COLUMNS = ['rank', 'id', 'label', 'predicted', 'confidence'] as const;

/**
 * Parses suspects.csv: `rank,id,label,predicted,confidence,rank_<signal>…` (plain CSV, fields quoted
 * only when needed). Cells stay text except the numbers; every problem names the file and line.
 */
export function parseSuspectsCsv(text: string, path: string): SuspectsTable {
  const shown = displayPath(path);
  const lines = text.split(/\r\n|\n|\r/).filter((line) => line.trim() !== '');
  // A run without valued examples writes the header alone (its names need no quotes); parseCsv
  // wants data rows.
  const { columns, rows } =
    lines.length === 1
      ? { columns: lines[0].split(',').map((c) => c.trim()), rows: [] }
      : parseCsv(text, path);
  for (const name of SUSPECT_COLUMNS)
    if (!columns.includes(name))
      fail(`${shown}: not a suspects file of inrun: no column "${name}" (columns: ${columns.join(', ')})`);
  const rankColumns = columns.filter((c) => c.startsWith('rank_'));
  const number = (cell: unknown, line: number, column: string, integer: boolean): number | null => {
    const raw = String(cell ?? '').trim();
    if (raw === '') return null;
    const x = Number(raw);
    if (!Number.isFinite(x) || (integer && !Number.isInteger(x)))
      fail(
        `${shown}: line ${line}, column "${column}": ${JSON.stringify(raw)} is not ${integer ? 'a whole number' : 'a number'}`,
      );
    return x;
  };
  return {
    signals: rankColumns.map((c) => c.slice('rank_'.length)),
    rows: rows.map(({ cells, line }) => {
      const rank = number(cells.rank, line, 'rank', true);
      if (rank === null) fail(`${shown}: line ${line}, column "rank": empty`);
      return {
        rank,
        id: String(cells.id),
        label: String(cells.label),
        predicted: String(cells.predicted),
        confidence: number(cells.confidence, line, 'confidence', false),
        ranks: Object.fromEntries(
          rankColumns.map((c) => [c.slice('rank_'.length), number(cells[c], line, c, true)]),
        ),
      };
    }),
  };
}

/** Reads `<dir>/suspects.csv`; null when the run has none. */
export async function readSuspects(
  dir: string,
  files: RunFiles = DIRECTORY_FILES,
): Promise<SuspectsTable | null> {
  const path = join(dir, RUN_FILES.suspects);
  const bytes = await files.read(path);
  return bytes === null ? null : parseSuspectsCsv(new TextDecoder().decode(bytes), path);
}

/** A row of attribution.csv: a training document's place for one query (src/text/attribution.ts). */
export interface AttributionFileRow {
  queryId: string;
  querySource: string;
  rank: number;
  documentId: string;
  source: string;
  sequences: number;
  sequencesValued: number;
  timesSeen: number;
  firstOrder: number;
  secondOrder: number | null;
  normalized: number;
  bestSequence: string | null;
  bestNormalized: number | null;
  rankTfidf: number | null;
  rankBm25: number | null;
  stages: number[];
}

/** A CSV cell as a number; an empty (or absent) cell is null. */
function optionalNumber(cell: unknown): number | null {
  return cell === '' || cell === undefined ? null : Number(cell);
}

function readAttribution(csvText: string, path: string): AttributionFileRow[] {
  const { columns, rows } = parseCsv(csvText, path);
  for (const column of ['query_id', 'rank', 'document_id', 'first_order', 'normalized'])
    if (!columns.includes(column))
      fail(`${displayPath(path)}: no ${column} column; the file is not inrun's attribution.csv`);
  const stageColumns = columns.filter((c) => /^stage_\d+$/.test(c));
  return rows.map(({ cells }) => ({
    queryId: String(cells.query_id),
    querySource: String(cells.query_source ?? ''),
    rank: Number(cells.rank),
    documentId: String(cells.document_id),
    source: String(cells.source ?? ''),
    sequences: Number(cells.sequences),
    sequencesValued: Number(cells.sequences_valued),
    timesSeen: Number(cells.times_seen),
    firstOrder: Number(cells.first_order),
    secondOrder: optionalNumber(cells.second_order),
    normalized: Number(cells.normalized),
    bestSequence:
      cells.best_sequence === '' || cells.best_sequence === undefined ? null : String(cells.best_sequence),
    bestNormalized: optionalNumber(cells.best_normalized),
    rankTfidf: optionalNumber(cells.rank_tfidf),
    rankBm25: optionalNumber(cells.rank_bm25),
    stages: stageColumns.map((c) => Number(cells[c])),
  }));
}

function readTextValues(csvText: string, path: string, kind: 'documents' | 'sources'): TextValueRow[] {
  const { columns, rows } = parseCsv(csvText, path);
  const stageColumns = columns.filter((c) => /^stage_\d+$/.test(c));
  return rows.map(({ cells }) => ({
    id: String(kind === 'documents' ? cells.document_id : cells.source),
    source: String(cells.source),
    documents: kind === 'sources' ? optionalNumber(cells.documents) : null,
    sequences: Number(cells.sequences),
    firstOrder: Number(cells.first_order),
    secondOrder: optionalNumber(cells.second_order),
    stages: stageColumns.map((c) => Number(cells[c])),
  }));
}

async function readTensors(
  path: string,
  files: RunFiles,
): Promise<{ tensors: NamedTensor[]; metadata: Record<string, string> }> {
  return decodeSafetensors(await readRunFile(path, files), path);
}

function parseJsonLines<T>(text: string, path: string): T[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, k) => {
      try {
        return JSON.parse(line) as T;
      } catch {
        return fail(`${path}: line ${k + 1} is not valid JSON`);
      }
    });
}

/**
 * A trace.jsonl row as written (NaN was written as null in the non-nullable fields). Rows of runs
 * from before 0.2.0 have no emptyUtility or batchTaylorError: NaN, as not measured; rows from
 * before 0.3.0 have no taylorCorrelation or expansionBroken: null, as not measured. testLoss and
 * testAccuracy stay as written: null where the run did not evaluate, absent in runs without a test
 * set (nothing is made up for them).
 */
function traceEntry(row: Record<string, unknown>): RunTraceEntry {
  for (const key of [
    'validationLossAfter',
    'actualUtility',
    'taylorError',
    'emptyUtility',
    'batchTaylorError',
  ])
    row[key] ??= Number.NaN;
  row.taylorCorrelation ??= null;
  row.expansionBroken ??= null;
  return row as unknown as RunTraceEntry;
}

/** The rows of a trace.jsonl text. */
export function parseTraceJsonl(text: string, path: string): RunTraceEntry[] {
  return parseJsonLines<Record<string, unknown>>(text, path).map(traceEntry);
}

/** The rows of a trace.jsonl file one by one, in constant memory (a trace can outgrow a string). */
export async function* readTraceRows(path: string): AsyncGenerator<RunTraceEntry> {
  let lines: ReturnType<typeof createInterface>;
  try {
    const stream = createReadStream(path, 'utf8');
    await new Promise<void>((resolve, reject) => stream.once('open', () => resolve()).once('error', reject));
    lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  } catch (error) {
    return failFileError(error, path, 'read');
  }
  let k = 0;
  for await (const line of lines) {
    k += 1;
    if (line.trim() === '') continue;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return fail(`${path}: line ${k} is not valid JSON`);
    }
    yield traceEntry(row);
  }
}

/** A signal cell of values.jsonl: a number, or null when absent (older runs) or not measured. */
function signal(cell: unknown): number | null {
  return typeof cell === 'number' ? cell : null;
}

/** Reads a finished run directory back (values, trace, weights, config, manifest). */
export async function loadRun(dir: string): Promise<LoadedRun> {
  return loadRunFiles(dir, DIRECTORY_FILES, await readManifest(dir));
}

/**
 * Reads a run archive (a zip of a run directory, as the web page downloads it) back like a run
 * directory; its files are named <archive>/<name> in messages.
 */
export async function loadRunArchive(path: string): Promise<LoadedRun> {
  const { dir, files, manifest } = await openRunArchive(path);
  return loadRunFiles(dir, files, manifest);
}

/**
 * A run archive's files, read as <dir>/<name> (dir: the archive's absolute path), and its
 * manifest. Every file every run needs is checked for first, so a broken archive names all it
 * lacks at once.
 */
export async function openRunArchive(
  path: string,
): Promise<{ dir: string; files: RunFiles; manifest: RunManifest }> {
  const dir = resolve(path);
  const shown = displayPath(dir);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(dir);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') fail(`${shown}: no such run archive`);
    if (errorCode(error) === 'EISDIR') fail(`${shown}: is a folder, not a run archive`);
    return failFileError(error, shown, 'read the run archive');
  }
  const entries = unzipRunArchive(bytes, shown);
  const manifest = parseManifest(
    new TextDecoder().decode(entries.get(RUN_FILES.manifest)),
    join(dir, RUN_FILES.manifest),
    `${shown}: not a run archive`,
  );
  checkArchiveComplete(entries, shown);
  const files: RunFiles = {
    kind: 'archive',
    read: async (file) => entries.get(relative(dir, file).replaceAll('\\', '/')) ?? null,
  };
  return { dir, files, manifest };
}

/** A run's files, read through `files`, once its manifest has been read. */
export async function loadRunFiles(dir: string, files: RunFiles, manifest: RunManifest): Promise<LoadedRun> {
  if (manifest.status !== 'complete')
    fail(
      `${dir}: the run is not complete (status: ${manifest.status}); finish it with: inrun train --resume ${dir}`,
    );
  const config = await readJsonFile<Record<string, unknown>>(join(dir, RUN_FILES.config), files);
  const valuesPath = join(dir, RUN_FILES.valuesJsonl);
  const tracePath = join(dir, RUN_FILES.traceJsonl);
  const readText = async (path: string) => new TextDecoder().decode(await readRunFile(path, files));
  const values = parseJsonLines<Record<string, unknown>>(await readText(valuesPath), valuesPath).map(
    (row) => {
      const stages: number[] = [];
      for (let s = 0; `stage_${s}` in row; s++) stages.push(row[`stage_${s}`] as number);
      return {
        id: row.id as string | number,
        group: (row.group as string | null) ?? null,
        timesSeen: row.times_seen as number,
        firstOrder: row.first_order as number,
        secondOrder: (row.second_order as number | null) ?? null,
        normalized: row.normalized as number,
        stages,
        selfInfluence: signal(row.self_influence),
        meanLoss: signal(row.mean_loss),
        aum: signal(row.aum),
        forgettingEvents: signal(row.forgetting_events),
        timesCorrect: signal(row.times_correct),
        classValue: signal(row.class_value),
        standardError: signal(row.standard_error),
        momentumCredit: signal(row.momentum_credit),
      };
    },
  );
  const trace = parseTraceJsonl(await readText(tracePath), tracePath);
  const initial = (await readTensors(join(dir, RUN_FILES.weightsInitial), files)).tensors;
  const final = (await readTensors(join(dir, RUN_FILES.weightsFinal), files)).tensors;
  let perValidation: LoadedRun['perValidation'] = null;
  if (config.perValidation === true) {
    const { tensors, metadata } = await readTensors(join(dir, RUN_FILES.perValidation), files);
    const t = tensors.find((x) => x.name === 'values');
    const path = join(dir, RUN_FILES.perValidation);
    if (t?.shape.length !== 2 || !t) fail(`${displayPath(path)}: no 2-D tensor "values"`);
    let validationIds: unknown;
    try {
      validationIds = JSON.parse(metadata.validation_ids ?? '[]');
    } catch {
      validationIds = undefined;
    }
    if (!Array.isArray(validationIds))
      fail(`${displayPath(path)}: metadata validation_ids is not a JSON list`);
    perValidation = {
      values: Float64Array.from(t.data),
      shape: [t.shape[0], t.shape[1]],
      validationIds: validationIds as string[],
    };
  }
  let text: LoadedRun['text'] = null;
  if ((config.model as { kind?: unknown } | undefined)?.kind === 'gpt') {
    const documentsPath = join(dir, RUN_FILES.documents);
    const sourcesPath = join(dir, RUN_FILES.sources);
    const attributionPath = join(dir, RUN_FILES.attribution);
    // Listed in the manifest when written; runs from before 0.3.0 (or without perValidation) have none.
    const attributionBytes = manifest.files?.includes(RUN_FILES.attribution)
      ? await readRunFile(attributionPath, files)
      : null;
    text = {
      documents: readTextValues(await readText(documentsPath), documentsPath, 'documents'),
      sources: readTextValues(await readText(sourcesPath), sourcesPath, 'sources'),
      vocabulary: await readJsonFile<VocabularyFile>(join(dir, RUN_FILES.vocabulary), files),
      attribution: attributionBytes
        ? readAttribution(new TextDecoder().decode(attributionBytes), attributionPath)
        : null,
    };
  }
  const suspects = await readSuspects(dir, files);
  return { dir, config, manifest, values, trace, weights: { initial, final }, perValidation, suspects, text };
}

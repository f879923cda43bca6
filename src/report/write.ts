// A run's HTML report, written to a file: the run (a run directory, or a run archive) read back,
// each listed example's content from the run's training data, and an optional curation comparison
// (src/curate/).
import { existsSync, type Stats, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { ExampleId } from '../data/dataset.js';
import { checkRegularFile, readTable, tableFormat, tableFromBytes } from '../data/readers/index.js';
import { displayPath } from '../data/readers/table.js';
import { writeFileAtomic } from '../io/atomic.js';
import { type LoadedRun, loadRun, loadRunFiles, openRunArchive } from '../io/run-dir.js';
import { parseTrainConfig } from '../run/config.js';
import { type loadTrainingData, loadTrainingDataFrom, type TableReader } from '../run/data.js';
import { loadTextTrainingData } from '../run/text-data.js';
import { fail, InrunError } from '../util/errors.js';
import { errorCode, failFileError } from '../util/fs-errors.js';
import { sha256Hex } from '../util/hash.js';
import { reportInputFromRun } from './inputs.js';
import { renderReport } from './render.js';
import type { CurationComparison, ReportContent } from './types.js';

/** Where `inrun report` writes by default, inside the run directory. */
export const REPORT_FILE = 'report.html';
/** The folder `inrun curate` writes to by default, inside the run directory. */
export const CURATION_DIR = 'curation';
/** The comparison file of `inrun curate`. */
export const COMPARISON_FILE = 'comparison.json';

export interface RunReportOptions {
  runDir: string;
  /** The HTML file (default <runDir>/report.html). */
  out?: string;
  /** A comparison.json; default <runDir>/curation/comparison.json when it exists. */
  curationFile?: string;
  /** A comparison to include as is (instead of a file). */
  curation?: CurationComparison;
  /**
   * Show each example's features as a width × height image (channels-first; 1 channel grey, 3 RGB).
   * Runs on image folders show their images without it.
   */
  image?: { width: number; height: number; channels?: 1 | 3 };
  /** How many of the most harmful and most helpful examples to list. */
  top?: number;
}

/**
 * Checks that `path` can be written as a file: its folder exists, and it is not a folder or a
 * device (the file is written beside it and renamed over it, which would replace a device's entry).
 */
export function checkWritableFile(path: string, flag: string): void {
  const where = `${flag} ${displayPath(path)}`;
  const look = (p: string): Stats | undefined => {
    try {
      return statSync(p);
    } catch (error) {
      const code = errorCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      return failFileError(error, where, 'check');
    }
  };
  const dir = dirname(path);
  const folder = look(dir);
  if (!folder) fail(`${where}: the folder ${displayPath(dir)} does not exist`);
  if (!folder.isDirectory()) fail(`${where}: ${displayPath(dir)} is not a folder`);
  const info = look(path);
  if (info?.isDirectory()) fail(`${where}: is a directory; give a file name such as report.html`);
  if (info && !info.isFile()) fail(`${where}: is not a regular file; give a file name such as report.html`);
}

/** Reads a comparison.json of `inrun curate`. */
export async function readComparison(path: string): Promise<CurationComparison> {
  await checkRegularFile(path, 'the curation comparison', 'comparison.json of inrun curate');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    return failFileError(error, displayPath(path), 'read the curation comparison');
  }
  let value: CurationComparison;
  try {
    value = JSON.parse(text) as CurationComparison;
  } catch (error) {
    return fail(`${displayPath(path)}: not valid JSON (${(error as Error).message})`);
  }
  if (
    value?.format !== 'inrun-curation' ||
    !value.runs?.original ||
    !value.runs.curated ||
    !value.runs.random
  )
    fail(`${displayPath(path)}: not a curation comparison of inrun curate`);
  return value;
}

/**
 * Each listed example's content from the run's training file: its cells as `column=value` text
 * (label first; id and group left out, as the table shows them), or its features as an image.
 * When the file is gone or changed, the report says so instead.
 */
async function exampleContent(
  run: LoadedRun,
  given: { width: number; height: number; channels?: 1 | 3 } | undefined,
  /** Where the data files are read: from disk, or (run archives) from the archive. */
  read: TableReader,
): Promise<{
  content?: (id: ExampleId) => ReportContent | undefined;
  queryText?: (id: string) => string | undefined;
  notes: string[];
}> {
  if (run.text) return textExampleContent(run, given);
  let image = given;
  let data: Awaited<ReturnType<typeof loadTrainingData>>;
  try {
    // Relative data paths (a run archive's data/…) are relative to the run itself.
    const config = parseTrainConfig({ value: structuredClone(run.config), flagPaths: new Map() }, run.dir);
    data = await loadTrainingDataFrom(config, read);
  } catch (error) {
    if (!(error instanceof InrunError)) throw error;
    if (image) fail(`--image needs the run's training data: ${error.message}`);
    return { notes: [`Example contents are not shown: ${error.message}`] };
  }
  const shown = displayPath(data.train.table.path);
  if (data.train.table.sha256 !== run.manifest.data.train.sha256) {
    const why = `${shown} changed since the run (sha256 differs)`;
    if (image) fail(`--image needs the run's training data, but ${why}`);
    return { notes: [`Example contents are not shown: ${why}.`] };
  }
  const index = new Map<string, number>();
  data.train.ids.forEach((id, i) => {
    index.set(String(id), i);
  });
  const features = data.features;
  // An image folder's images are shown as such unless --image says otherwise.
  image ??= data.train.table.image;
  const channels = image?.channels ?? 1;
  if (image && image.width * image.height * channels !== features.length)
    fail(
      `--image ${image.width}x${image.height}${channels === 1 ? '' : `x${channels}`} needs ${image.width * image.height * channels} features; the run has ${features.length}`,
    );
  const config = run.config as { columns?: { id?: string; group?: string; label?: string } };
  const label = config.columns?.label ?? 'label';
  const hidden = new Set([config.columns?.id, config.columns?.group].filter((c) => c !== undefined));
  const columns = [label, ...data.train.table.columns.filter((c) => c !== label && !hidden.has(c))];
  // Labels given as names: the name with its class index, as the model saw it.
  const classNames = run.manifest.data.classNames ?? data.classNames;
  const classOf = new Map(classNames?.map((name, k) => [name, k]));
  const labelText = (cell: unknown): string => {
    const name = cellText(cell).trim();
    const k = classOf.get(name);
    return k === undefined ? cellText(cell) : `${name} (class ${k})`;
  };
  const content = (id: ExampleId): ReportContent | undefined => {
    const i = index.get(String(id));
    if (i === undefined) return undefined;
    if (image) {
      const batch = data.train.dataset.batch([i], 'float64');
      return { kind: 'image', pixels: batch.input.data, width: image.width, height: image.height, channels };
    }
    const cells = data.train.rows[i].cells;
    const text = columns
      .map((c) => `${c}=${c === label ? labelText(cells[c]) : cellText(cells[c])}`)
      .join(', ');
    return { kind: 'text', text };
  };
  return { content, notes: [] };
}

/** Longest snippet shown per text sequence, in characters. */
const SNIPPET_CHARS = 240;

/**
 * Text (gpt) runs: each listed sequence's input tokens, decoded through vocabulary.json and the
 * tokenizer, as a snippet (its document and source first); and the validation documents' texts
 * (the queries of the attribution section).
 */
async function textExampleContent(
  run: LoadedRun,
  image: { width: number; height: number } | undefined,
): Promise<{
  content?: (id: ExampleId) => ReportContent | undefined;
  queryText?: (id: string) => string | undefined;
  notes: string[];
}> {
  if (image) fail('--image applies to tabular runs; this run trained a gpt model on text');
  let data: Awaited<ReturnType<typeof loadTextTrainingData>>;
  try {
    const config = parseTrainConfig({ value: structuredClone(run.config), flagPaths: new Map() });
    data = await loadTextTrainingData(config);
  } catch (error) {
    if (!(error instanceof InrunError)) throw error;
    return { notes: [`Example contents are not shown: ${error.message}`] };
  }
  if (data.trainInfo.sha256 !== run.manifest.data.train.sha256)
    return {
      notes: [
        `Example contents are not shown: ${displayPath(data.trainInfo.path)} changed since the run (sha256 differs).`,
      ],
    };
  const vocabulary = run.text!.vocabulary;
  const sequences = new Map(data.train.sequences.map((s) => [s.id, s]));
  const content = (id: ExampleId): ReportContent | undefined => {
    const s = sequences.get(String(id));
    if (!s) return undefined;
    // The inputs without padding: tokens[0 .. length-1], in the run's model ids.
    const ids = Array.from(s.tokens.subarray(0, Math.max(1, s.tokens.length - 1)), (k) =>
      vocabulary.original ? (vocabulary.original[k] ?? k) : k,
    );
    let snippet = data.tokenizer.decode(ids);
    if (snippet.length > SNIPPET_CHARS) snippet = `${snippet.slice(0, SNIPPET_CHARS)}…`;
    return { kind: 'text', text: `${s.documentId} (${s.source}): ${snippet}` };
  };
  const queries = new Map(data.validation.documents.map((d) => [d.id, d.text]));
  return { content, queryText: (id) => queries.get(id), notes: [] };
}

function cellText(cell: unknown): string {
  if (cell === null || cell === undefined) return '';
  if (typeof cell === 'string') return cell;
  if (typeof cell === 'bigint') return String(cell);
  if (typeof cell === 'object')
    return JSON.stringify(cell, (_k, v) => (typeof v === 'bigint' ? String(v) : v));
  return String(cell);
}

/** Renders the report of a run directory and writes it atomically; returns the file's path. */
export async function writeRunReport(options: RunReportOptions): Promise<string> {
  const out = options.out ?? join(options.runDir, REPORT_FILE);
  // Everything is checked and read before anything is written.
  const run = await loadRun(options.runDir);
  checkWritableFile(out, '--out');
  let curation = options.curation ?? null;
  if (!curation) {
    const file = options.curationFile ?? join(options.runDir, CURATION_DIR, COMPARISON_FILE);
    if (options.curationFile !== undefined || existsSync(file)) curation = await readComparison(file);
  }
  return writeReport(run, out, curation, options, (path) => readTable(path));
}

export interface ArchiveReportOptions extends Omit<RunReportOptions, 'runDir'> {
  /** A run archive: the zip of a run directory the web page downloads. */
  archive: string;
}

/**
 * Renders the report of a run archive (by default to report.html beside it): the same report as
 * for its run directory, the examples' content from the data files inside the archive.
 */
export async function writeArchiveReport(options: ArchiveReportOptions): Promise<string> {
  const dir = resolve(options.archive);
  const out = options.out ?? join(dirname(dir), REPORT_FILE);
  const { files, manifest } = await openRunArchive(dir);
  const run = await loadRunFiles(dir, files, manifest);
  checkWritableFile(out, '--out');
  const curation =
    options.curation ??
    (options.curationFile !== undefined ? await readComparison(options.curationFile) : null);
  return writeReport(run, out, curation, options, async (path) => {
    const content = await files.read(path);
    if (content === null) fail(`${displayPath(path)}: missing from the run archive`);
    return tableFromBytes(path, tableFormat(path), content, sha256Hex);
  });
}

async function writeReport(
  run: LoadedRun,
  out: string,
  curation: CurationComparison | null,
  options: Pick<RunReportOptions, 'image' | 'top'>,
  read: TableReader,
): Promise<string> {
  const { content, queryText, notes } = await exampleContent(run, options.image, read);
  const shownDir = displayPath(run.dir);
  const input = reportInputFromRun(run, {
    title: `In-Run Data Shapley: ${shownDir}`,
    subtitle: `${displayPath(run.manifest.data.train.path)} · ${run.manifest.data.trainExamples} training examples, ${run.manifest.data.validationExamples} validation examples${run.manifest.data.testExamples !== undefined ? `, ${run.manifest.data.testExamples} test examples` : ''} · ${run.manifest.totalSteps} steps · inrun ${run.manifest.inrunVersion}`,
    content,
    queryText,
    curation,
    topCount: options.top,
    notes,
  });
  await writeFileAtomic(out, renderReport(input)).catch((error) =>
    failFileError(error, out, 'write the report'),
  );
  return out;
}

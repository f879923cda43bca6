// What the web page runs (web/src/worker.ts), as a library function Node can call too: the
// page's settings become a run config and data files, an ArchiveRun trains on them, and the
// results the page shows — values, the most harmful and helpful examples with their content, the
// flipped-label AUROC — come from the finished run. Node runs the same code to check the page.
// No Node imports.
import { DIGIT_CLASSES, DIGIT_SIDE, digitsFromImages } from '../data/digit-sets.js';
import { DIGITS_COLUMNS, DIGITS_DEMO_DEFAULTS, DIGITS_DEMO_FILES, digitsCsv } from '../demo/digits-data.js';
import { ARCHIVE_DATA_DIR } from '../io/run-archive.js';
import type { RunWarning } from '../io/run-dir.js';
import type { RunTraceEntry } from '../io/values-writers.js';
import type { Kernels } from '../kernels/types.js';
import { auroc } from '../metrics.js';
import { mainValue } from '../report/analysis.js';
import { ArchiveRun, type DataFile } from '../run/archive-run.js';
import { runSeeds } from '../run/table-data.js';
import type { LedgerEntry } from '../shapley/ledger.js';
import { checkNumber, fail } from '../util/errors.js';
import type { PageSettings } from './page-settings.js';

export {
  PAGE_DIGITS_PER_CLASS,
  PAGE_DIGITS_SETTINGS,
  type PageData,
  type PageSettings,
} from './page-settings.js';

/** A run's config and data files from the page's settings, and the flipped labels when known. */
export interface PageRunInputs {
  config: Record<string, unknown>;
  files: Record<string, DataFile>;
  /** Digits: the true label of each flipped training example by id; null for a user's table. */
  flipped: Map<string, number> | null;
}

/** Checks the settings; every problem names the setting as the page labels it. */
function checkSettings(s: PageSettings): void {
  if (checkNumber('learning rate', s.lr) <= 0) fail(`learning rate must be greater than 0, got ${s.lr}`);
  checkNumber('epochs', s.epochs, { min: 1, max: 1000, integer: true });
  checkNumber('batch size', s.batchSize, { min: 1, integer: true });
  checkNumber('seed', s.seed, { min: 0, max: 0xffffffff, integer: true });
  if (s.order !== 1 && s.order !== 2) fail(`order must be 1 or 2, got ${s.order}`);
  if (s.model === 'mlp') {
    if (s.hidden.length === 0)
      fail('hidden sizes: an MLP needs at least one hidden layer, e.g. 128 or 64, 32');
    s.hidden.forEach((h, k) => {
      checkNumber(`hidden size ${k + 1}`, h, { min: 1, max: 4096, integer: true });
    });
  }
  if (s.data.kind === 'table')
    checkNumber('validation share', s.data.validationSplit, { min: 0.01, max: 0.9 });
}

/**
 * The config and files of the run the settings describe. Digits: the bundled images as CSV files
 * with a seeded 10% of training labels flipped, exactly as `inrun demo` writes them; a table: the
 * user's file, with a validation share split off it.
 */
export function pageRunInputs(settings: PageSettings, digitImages: Float32Array[] | null): PageRunInputs {
  checkSettings(settings);
  const common = {
    model:
      settings.model === 'mlp'
        ? { kind: 'mlp', hidden: settings.hidden, activation: 'relu' }
        : { kind: 'logreg' },
    optimizer:
      settings.optimizer === 'adam'
        ? { kind: 'adam', lr: settings.lr }
        : {
            kind: 'sgd',
            lr: settings.lr,
            momentum: settings.optimizer === 'momentum' ? DIGITS_DEMO_DEFAULTS.momentum : 0,
          },
    batchSize: settings.batchSize,
    epochs: settings.epochs,
    order: settings.order,
    seed: settings.seed,
    // The run directory is the archive itself; config.json's paths are relative to it.
    out: '.',
    // A page's run is run again, not resumed.
    checkpointEvery: 0,
  };
  const path = (name: string) => `${ARCHIVE_DATA_DIR}/${name}`;
  const data = settings.data;
  if (data.kind === 'table') {
    // A browser's file name has no folders; a library caller's might.
    const name = data.name.replace(/[/\\]/g, '_');
    return {
      config: {
        data: {
          train: path(name),
          validationSplit: data.validationSplit,
          missing: data.dropMissing ? 'drop' : 'error',
          standardize: data.standardize,
        },
        columns: { label: data.label, ...(data.id ? { id: data.id } : {}) },
        task: data.task,
        ...common,
      },
      files: { [path(name)]: { name, bytes: data.bytes } },
      flipped: null,
    };
  }
  if (!digitImages) fail('the bundled digits are not loaded');
  // The flips take the run's split seed, as in `inrun demo`.
  const digits = digitsFromImages(digitImages, {
    trainPerClass: DIGITS_DEMO_DEFAULTS.trainPerClass,
    validationPerClass: DIGITS_DEMO_DEFAULTS.validationPerClass,
    flipFraction: DIGITS_DEMO_DEFAULTS.flipFraction,
    seed: runSeeds(settings.seed).split,
  });
  const flipped = new Map<string, number>();
  const flippedRows = ['id,label,original_label'];
  for (let i = 0; i < digits.train.size; i++) {
    if (!digits.flipped[i]) continue;
    const id = String(digits.train.id(i));
    flipped.set(id, digits.originalLabels[i]);
    flippedRows.push(`${id},${digits.train.label(i)},${digits.originalLabels[i]}`);
  }
  const encoder = new TextEncoder();
  const file = (name: string, text: string): [string, DataFile] => [
    path(name),
    { name, bytes: encoder.encode(text) },
  ];
  return {
    config: {
      data: { train: path(DIGITS_DEMO_FILES.train), validation: path(DIGITS_DEMO_FILES.validation) },
      columns: DIGITS_COLUMNS,
      task: 'classification',
      classes: DIGIT_CLASSES,
      ...common,
    },
    files: Object.fromEntries([
      file(DIGITS_DEMO_FILES.train, digitsCsv(digits.train)),
      file(DIGITS_DEMO_FILES.validation, digitsCsv(digits.validation)),
      // Not read by the run: which labels were flipped, for whoever opens the archive.
      file(DIGITS_DEMO_FILES.flipped, `${flippedRows.join('\n')}\n`),
    ]),
    flipped,
  };
}

export interface StartPageRunOptions {
  kernels: Kernels;
  /** The bundled digits' images per class (needed for the digits). */
  digitImages: Float32Array[] | null;
  inrunVersion: string;
  runtime: string;
  onTraceRow?: (row: RunTraceEntry) => void;
  onWarning?: (warning: RunWarning) => void;
  now?: () => Date;
}

/** A page's run and what the page knows of its data. */
export interface PageRun {
  run: ArchiveRun;
  /** Digits: the true label of each flipped training example by id; null for a user's table. */
  flipped: Map<string, number> | null;
  /** Whether the examples are the digits' 28×28 images (else a table's rows). */
  images: boolean;
}

/** Checks the settings and the data and builds the run; nothing has trained yet. */
export async function startPageRun(settings: PageSettings, options: StartPageRunOptions): Promise<PageRun> {
  const { config, files, flipped } = pageRunInputs(settings, options.digitImages);
  const run = await ArchiveRun.start({
    config,
    files,
    kernels: options.kernels,
    inrunVersion: options.inrunVersion,
    runtime: options.runtime,
    onTraceRow: options.onTraceRow,
    onWarning: options.onWarning,
    now: options.now,
  });
  return { run, flipped, images: settings.data.kind === 'digits' };
}

/** What the page shows of one training example. */
export interface ExampleView {
  id: string;
  /** The label it trained with, as written in the data. */
  label: string;
  value: number;
  /** Digits: its true label when its label was flipped (else null). */
  originalLabel: number | null;
  content:
    | { kind: 'image'; width: number; height: number; pixels: Float32Array }
    | { kind: 'cells'; cells: [string, string][] };
}

export interface PageResults {
  order: 1 | 2;
  steps: number;
  kernels: string;
  trainingSeconds: number;
  examples: number;
  /** AUROC of −value for finding the flipped labels (as `inrun demo` computes it); null without flips. */
  auroc: number | null;
  flippedCount: number;
  /** Share of flipped labels among as many lowest-valued examples as there are flips. */
  flippedAmongLowest: number | null;
  initialValidationLoss: number;
  finalValidationLoss: number;
  /** max |Σ values − Taylor utility| over the steps, relative to the largest |utility| of a step. */
  relativeEfficiencyResidual: number;
  harmful: ExampleView[];
  helpful: ExampleView[];
}

/** The main value of a ledger entry: second order in order-2 runs, else first order. */
export function entryValue(entry: LedgerEntry, order: 1 | 2): number {
  return mainValue(
    { firstOrder: entry.firstOrder, secondOrder: order === 2 ? entry.secondOrder : null },
    order,
  );
}

/** The results of a finished run: `count` most harmful and most helpful examples with their content. */
export function pageResults({ run, flipped, images }: PageRun, count = 10): PageResults {
  const order = run.config.order;
  const entries = run.ledger.all();
  const value = (e: LedgerEntry) => entryValue(e, order);
  const isFlipped = entries.map((e) => flipped?.has(String(e.id)) ?? false);
  const flips = isFlipped.filter(Boolean).length;
  const score =
    flips > 0 && flips < entries.length
      ? auroc(
          entries.map((e) => -value(e)),
          isFlipped,
        )
      : null;
  const ranked = [...entries].sort((a, b) => value(a) - value(b));
  const lowest = ranked.slice(0, flips);
  let maxResidual = 0;
  let maxUtility = 0;
  for (const row of run.trace) {
    maxResidual = Math.max(maxResidual, Math.abs(row.efficiencyResidual));
    maxUtility = Math.max(maxUtility, Math.abs(row.secondOrderUtility ?? row.firstOrderUtility));
  }
  const view = exampleViews(run, flipped, images, order);
  return {
    order,
    steps: run.trainer.step,
    kernels: run.manifest.kernels,
    trainingSeconds: run.trainingSeconds,
    examples: entries.length,
    auroc: score,
    flippedCount: flips,
    flippedAmongLowest: flips > 0 ? lowest.filter((e) => flipped!.has(String(e.id))).length / flips : null,
    initialValidationLoss: run.trace[0].validationLossBefore,
    finalValidationLoss: run.trace[run.trace.length - 1].validationLossAfter,
    relativeEfficiencyResidual: maxUtility > 0 ? maxResidual / maxUtility : 0,
    harmful: ranked.slice(0, count).map(view),
    helpful: ranked
      .slice(Math.max(0, ranked.length - count))
      .reverse()
      .map(view),
  };
}

/** Each example as the page shows it: digits as images, a table's rows as their cells. */
function exampleViews(
  run: ArchiveRun,
  flipped: Map<string, number> | null,
  images: boolean,
  order: 1 | 2,
): (entry: LedgerEntry) => ExampleView {
  const { train } = run.data;
  const index = new Map(train.ids.map((id, i) => [String(id), i]));
  const columns = run.config.columns;
  const hidden = new Set([columns.id, columns.group, columns.label]);
  const shown = train.table.columns.filter((c) => !hidden.has(c));
  return (entry) => {
    const i = index.get(String(entry.id))!;
    const cells = train.rows[i].cells;
    const id = String(entry.id);
    return {
      id,
      label: cellText(cells[columns.label]),
      value: entryValue(entry, order),
      originalLabel: flipped?.get(id) ?? null,
      content: images
        ? {
            kind: 'image',
            width: DIGIT_SIDE,
            height: DIGIT_SIDE,
            pixels: train.dataset.batch([i], 'float32').input.data as Float32Array,
          }
        : { kind: 'cells', cells: shown.map((c) => [c, cellText(cells[c])]) },
    };
  };
}

function cellText(cell: unknown): string {
  if (cell === null || cell === undefined) return '';
  if (typeof cell === 'string') return cell;
  if (typeof cell === 'object')
    return JSON.stringify(cell, (_k, v) => (typeof v === 'bigint' ? String(v) : v));
  return String(cell);
}

// The training worker: loads the kernels (WebAssembly when inrun_kernels.wasm is served beside
// the page, else the portable TypeScript ones), reads the data, and trains a step at a time,
// yielding between steps so that pause and stop arrive. Everything it runs is the library's
// browser-safe code (src/browser/page-run.ts); the page only draws.
import {
  entryValue,
  PAGE_DIGITS_PER_CLASS,
  type PageSettings,
  pageResults,
  startPageRun,
} from '../../src/browser/page-run.js';
import { DIGIT_PIXELS } from '../../src/data/digit-sets.js';
import { decodeDigitsAsset } from '../../src/data/digits-asset.js';
import { tableFormat, tableFromBytes } from '../../src/data/readers/table-bytes.js';
import { RUN_FILES } from '../../src/io/run-files.js';
import { createPortableKernels } from '../../src/kernels/portable.js';
import type { Kernels } from '../../src/kernels/types.js';
import { createWasmKernelsAsync } from '../../src/kernels/wasm.js';
import { histogram } from '../../src/report/analysis.js';
import type { ArchiveRun } from '../../src/run/archive-run.js';
import { sha256Hex } from '../../src/util/sha256.js';
import type { FromWorker, StepPoint, ToWorker } from './protocol.js';

/** Set by the build (scripts/build-web.mjs) from package.json. */
declare const INRUN_VERSION: string;

/** The files the build puts beside the page. */
const WASM_FILE = 'inrun_kernels.wasm';
const DIGITS_FILE = 'digits.bin';

/** How often the page hears of progress (and gets a new histogram), at most. */
const PROGRESS_MS = 150;
const HISTOGRAM_MS = 600;

interface WorkerScope {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
}
const scope = self as unknown as WorkerScope;
const post = (message: FromWorker, transfer: Transferable[] = []) => scope.postMessage(message, transfer);

const kernelsReady: Promise<Kernels> = loadKernels();
let digitImages: Promise<Float32Array[]> | null = null;
let control: { paused: boolean; stopped: boolean; wake: (() => void) | null } | null = null;

async function loadKernels(): Promise<Kernels> {
  let kernels: Kernels;
  let note: string | null = null;
  try {
    kernels = await createWasmKernelsAsync(fetch(WASM_FILE));
  } catch (error) {
    kernels = createPortableKernels();
    note = `the WebAssembly kernels did not load (${firstLine(error)}); training uses the portable TypeScript kernels`;
  }
  post({ type: 'ready', kernels: kernels.kind, note });
  return kernels;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0];
}

async function loadDigits(): Promise<Float32Array[]> {
  const response = await fetch(DIGITS_FILE);
  if (!response.ok)
    throw new Error(`${DIGITS_FILE}: HTTP ${response.status}; rebuild the page (npm run build:web)`);
  const images = decodeDigitsAsset(new Uint8Array(await response.arrayBuffer()), DIGITS_FILE);
  const fewest = Math.min(...images.map((pixels) => pixels.length / DIGIT_PIXELS));
  if (fewest < PAGE_DIGITS_PER_CLASS)
    throw new Error(
      `${DIGITS_FILE} holds ${fewest} images per class; the page needs ${PAGE_DIGITS_PER_CLASS}`,
    );
  return images;
}

/** A turn of the event loop with no delay (setTimeout would wait 4 ms once nested). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

scope.onmessage = (event) => {
  const message = event.data;
  switch (message.type) {
    case 'inspect':
      inspect(message.name, new Uint8Array(message.bytes)).catch((error) =>
        post({ type: 'error', phase: 'file', message: firstLine(error) }),
      );
      break;
    case 'start':
      if (control) return;
      train(message.settings).catch((error) => {
        control = null;
        post({ type: 'error', phase: 'run', message: firstLine(error) });
      });
      break;
    case 'pause':
      if (control) control.paused = true;
      break;
    case 'resume':
      if (control?.paused) {
        control.paused = false;
        control.wake?.();
      }
      break;
    case 'stop':
      if (control) {
        control.stopped = true;
        control.wake?.();
      }
      break;
  }
};

/** Parses a chosen file as the run will (the CLI's readers and checks), for its columns. */
async function inspect(name: string, bytes: Uint8Array): Promise<void> {
  const table = await tableFromBytes(name, tableFormat(name), bytes, sha256Hex);
  post({ type: 'inspected', name, columns: table.columns, rows: table.rows.length });
}

async function train(settings: PageSettings): Promise<void> {
  control = { paused: false, stopped: false, wake: null };
  const started = performance.now();
  const kernels = await kernelsReady;
  let images: Float32Array[] | null = null;
  if (settings.data.kind === 'digits') {
    digitImages ??= loadDigits();
    images = await digitImages.catch((error) => {
      digitImages = null;
      throw error;
    });
  }
  const points: StepPoint[] = [];
  const pageRun = await startPageRun(settings, {
    kernels,
    digitImages: images,
    inrunVersion: INRUN_VERSION,
    runtime: `browser: ${navigator.userAgent}`,
    onTraceRow: (row) => {
      points.push({
        step: row.step,
        trainLoss: row.trainLoss,
        validationLoss: row.validationLossBefore,
        valueSum: row.secondOrderSum ?? row.firstOrderSum,
        utility: row.secondOrderUtility ?? row.firstOrderUtility,
      });
    },
    onWarning: (warning) => post({ type: 'warning', message: warning.message }),
  });
  const { run } = pageRun;
  post({
    type: 'started',
    totalSteps: run.totalSteps,
    trainExamples: run.inputs.train.size,
    validationExamples: run.inputs.validation.size,
    parameters: run.model.parameterCount,
    kernels: run.manifest.kernels,
    seconds: (performance.now() - started) / 1000,
  });
  let lastProgress = 0;
  let lastHistogram = 0;
  const order = run.config.order;
  const progress = (force: boolean) => {
    const now = performance.now();
    if (!force && now - lastProgress < PROGRESS_MS) return;
    const withHistogram = force || now - lastHistogram >= HISTOGRAM_MS;
    post({
      type: 'progress',
      step: run.trainer.step,
      totalSteps: run.totalSteps,
      points: points.splice(0),
      histogram: withHistogram ? valueHistogram(run, order) : null,
    });
    lastProgress = now;
    if (withHistogram) lastHistogram = now;
  };
  const state = control;
  while (!run.done) {
    if (state.stopped) {
      progress(true);
      control = null;
      post({ type: 'stopped', step: run.trainer.step, totalSteps: run.totalSteps });
      return;
    }
    if (state.paused) {
      progress(true);
      post({ type: 'paused', step: run.trainer.step });
      await new Promise<void>((resolve) => {
        state.wake = resolve;
      });
      state.wake = null;
      if (!state.stopped) post({ type: 'resumed' });
      continue;
    }
    run.step();
    progress(false);
    await nextTurn();
  }
  progress(true);
  const results = pageResults(pageRun);
  const files = run.files();
  const zipped = run.archive();
  // The archive's own bytes, transferred rather than copied.
  const archive = (zipped.byteLength === zipped.buffer.byteLength ? zipped : zipped.slice())
    .buffer as ArrayBuffer;
  control = null;
  post(
    {
      type: 'done',
      results,
      histogram: valueHistogram(run, order),
      valuesCsv: files[RUN_FILES.valuesCsv] as string,
      archive,
    },
    [archive],
  );
}

function valueHistogram(run: ArchiveRun, order: 1 | 2) {
  return histogram(
    run.ledger.all().map((entry) => entryValue(entry, order)),
    40,
  );
}

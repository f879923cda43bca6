// The page: reads the settings, talks to the training worker (worker.ts), and draws what it
// reports — live charts while it trains, then the most harmful and most helpful examples, the
// flipped-label AUROC and the downloads. It computes nothing itself.
import 'uplot/dist/uPlot.min.css';
import './page.css';
import type { ExampleView, PageResults } from '../../src/browser/page-run.js';
import { PAGE_DIGITS_SETTINGS, type PageSettings } from '../../src/browser/page-settings.js';
import type { TaskKind } from '../../src/data/readers/to-dataset.js';
import { formatNumber, HistogramChart, LossChart, UtilityChart } from './charts.js';
import type { FromWorker, ToWorker } from './protocol.js';

/**
 * Where a user's table starts: `inrun train`'s learning rate and batch size (0.05, 32) and an MLP of
 * its default width (64), with momentum, for 20 epochs — enough passes for a small table.
 */
const TABLE_SETTINGS = {
  model: 'mlp',
  hidden: '64',
  optimizer: 'momentum',
  lr: '0.05',
  epochs: '20',
  batchSize: '32',
};

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no element #${id}`);
  return found as T;
}

const form = element<HTMLFormElement>('settings');
const inputs = {
  sourceDigits: element<HTMLInputElement>('source-digits'),
  sourceFile: element<HTMLInputElement>('source-file'),
  file: element<HTMLInputElement>('file'),
  label: element<HTMLSelectElement>('label-column'),
  id: element<HTMLSelectElement>('id-column'),
  task: element<HTMLSelectElement>('task'),
  validationSplit: element<HTMLInputElement>('validation-split'),
  standardize: element<HTMLInputElement>('standardize'),
  dropMissing: element<HTMLInputElement>('drop-missing'),
  model: element<HTMLSelectElement>('model'),
  hidden: element<HTMLInputElement>('hidden'),
  optimizer: element<HTMLSelectElement>('optimizer'),
  lr: element<HTMLInputElement>('lr'),
  epochs: element<HTMLInputElement>('epochs'),
  batchSize: element<HTMLInputElement>('batch-size'),
  seed: element<HTMLInputElement>('seed'),
  order2: element<HTMLInputElement>('order-2'),
  order1: element<HTMLInputElement>('order-1'),
};
const buttons = {
  start: element<HTMLButtonElement>('start'),
  pause: element<HTMLButtonElement>('pause'),
  stop: element<HTMLButtonElement>('stop'),
};
const fieldsets = Array.from(form.querySelectorAll<HTMLFieldSetElement>(':scope > fieldset'));
const fileFields = element<HTMLDivElement>('file-fields');
const dropZone = element<HTMLDivElement>('drop-zone');
const fileSummary = element<HTMLParagraphElement>('file-summary');
const fileError = element<HTMLDivElement>('file-error');
const runError = element<HTMLDivElement>('run-error');
const status = element<HTMLParagraphElement>('status');
const progressBar = element<HTMLProgressElement>('progress');
const warnings = element<HTMLUListElement>('warnings');
const kernelsLine = element<HTMLParagraphElement>('kernels');

const charts = {
  loss: new LossChart(element('loss-chart')),
  utility: new UtilityChart(element('utility-chart')),
  histogram: new HistogramChart(element('histogram-chart')),
};
const chartTexts = {
  loss: element<HTMLParagraphElement>('loss-text'),
  utility: element<HTMLParagraphElement>('utility-text'),
  histogram: element<HTMLParagraphElement>('histogram-text'),
};

const worker = new Worker('worker.js');
const send = (message: ToWorker, transfer: Transferable[] = []) => worker.postMessage(message, transfer);

/** The chosen table: its bytes (kept for Start) and its columns once the worker has read it. */
let table: { name: string; bytes: ArrayBuffer; columns: string[] | null } | null = null;
let running = false;
let paused = false;
/** Announced progress, in quarters, so the live region speaks a few times per run, not every step. */
let announcedQuarter = 0;
/** The finished run's downloads. */
const files: { values: Blob | null; run: Blob | null } = { values: null, run: null };

/** Saves a blob as a file: a link to it, clicked (the URL is released once the download has it). */
function download(blob: Blob | null, name: string): void {
  if (!blob) return;
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

element('download-values').addEventListener('click', () => download(files.values, 'values.csv'));
element('download-run').addEventListener('click', () => download(files.run, 'run.zip'));

// ---------------------------------------------------------------------------------------------
// Settings

/** A setting the user must correct: the message names it, and focus goes to its field. */
class SettingError extends Error {
  constructor(
    readonly field: HTMLElement,
    message: string,
  ) {
    super(message);
  }
}

function numberSetting(
  input: HTMLInputElement,
  name: string,
  check: { min: number; integer?: boolean; max?: number },
): number {
  const text = input.value.trim();
  const value = Number(text);
  const kind = check.integer ? 'a whole number' : 'a number';
  if (text === '' || !Number.isFinite(value) || (check.integer && !Number.isInteger(value)))
    throw new SettingError(input, `${name}: enter ${kind}${text === '' ? '' : `, not "${text}"`}`);
  if (value < check.min || (check.max !== undefined && value > check.max))
    throw new SettingError(
      input,
      `${name}: enter ${kind} ${check.max === undefined ? `of at least ${check.min}` : `from ${check.min} to ${check.max}`}, not ${text}`,
    );
  return value;
}

function readSettings(): PageSettings {
  const model = inputs.model.value === 'logreg' ? 'logreg' : 'mlp';
  let hidden: number[] = [];
  if (model === 'mlp') {
    const parts = inputs.hidden.value.split(',').map((part) => part.trim());
    hidden = parts.map((part) => {
      const size = Number(part);
      if (part === '' || !Number.isInteger(size) || size < 1 || size > 4096)
        throw new SettingError(
          inputs.hidden,
          `Hidden sizes: give whole numbers from 1 to 4096 separated by commas, e.g. 64, 32`,
        );
      return size;
    });
  }
  const lr = numberSetting(inputs.lr, 'Learning rate', { min: 0 });
  if (lr === 0) throw new SettingError(inputs.lr, 'Learning rate: enter a number greater than 0');
  const common = {
    model,
    hidden,
    optimizer: inputs.optimizer.value as PageSettings['optimizer'],
    lr,
    epochs: numberSetting(inputs.epochs, 'Epochs', { min: 1, max: 1000, integer: true }),
    batchSize: numberSetting(inputs.batchSize, 'Batch size', { min: 1, integer: true }),
    order: inputs.order1.checked ? 1 : 2,
    seed: numberSetting(inputs.seed, 'Seed', { min: 0, max: 0xffffffff, integer: true }),
  } as const;
  if (inputs.sourceDigits.checked) return { data: { kind: 'digits' }, ...common };
  if (!table) throw new SettingError(inputs.file, 'Data: choose a file, or the handwritten digits');
  if (!table.columns)
    throw new SettingError(inputs.file, `Data: ${table.name} could not be read; choose another file`);
  return {
    data: {
      kind: 'table',
      name: table.name,
      bytes: new Uint8Array(table.bytes),
      label: inputs.label.value,
      id: inputs.id.value === '' ? null : inputs.id.value,
      task: inputs.task.value as TaskKind,
      validationSplit: numberSetting(inputs.validationSplit, 'Validation share', { min: 0.01, max: 0.9 }),
      standardize: inputs.standardize.checked,
      dropMissing: inputs.dropMissing.checked,
    },
    ...common,
  };
}

/** Fills the model and training fields with a data source's defaults. */
function applyDefaults(kind: 'digits' | 'file'): void {
  if (kind === 'digits') {
    const d = PAGE_DIGITS_SETTINGS;
    inputs.model.value = d.model;
    inputs.hidden.value = d.hidden.join(', ');
    inputs.optimizer.value = d.optimizer;
    inputs.lr.value = String(d.lr);
    inputs.epochs.value = String(d.epochs);
    inputs.batchSize.value = String(d.batchSize);
  } else {
    inputs.model.value = TABLE_SETTINGS.model;
    inputs.hidden.value = TABLE_SETTINGS.hidden;
    inputs.optimizer.value = TABLE_SETTINGS.optimizer;
    inputs.lr.value = TABLE_SETTINGS.lr;
    inputs.epochs.value = TABLE_SETTINGS.epochs;
    inputs.batchSize.value = TABLE_SETTINGS.batchSize;
  }
  inputs.hidden.disabled = inputs.model.value !== 'mlp';
}

function onSourceChange(): void {
  const file = inputs.sourceFile.checked;
  fileFields.hidden = !file;
  fileError.textContent = '';
  applyDefaults(file ? 'file' : 'digits');
}

inputs.sourceDigits.addEventListener('change', onSourceChange);
inputs.sourceFile.addEventListener('change', onSourceChange);
inputs.model.addEventListener('change', () => {
  inputs.hidden.disabled = inputs.model.value !== 'mlp';
});

async function chooseFile(file: File): Promise<void> {
  fileError.textContent = '';
  fileSummary.textContent = `Reading ${file.name}…`;
  const bytes = await file.arrayBuffer();
  table = { name: file.name, bytes, columns: null };
  fillColumns([]);
  // The worker parses a copy with the CLI's readers; the page keeps the bytes for Start.
  send({ type: 'inspect', name: file.name, bytes: bytes.slice(0) });
}

function fillColumns(columns: string[]): void {
  const options = (select: HTMLSelectElement, names: string[], chosen: string) => {
    select.replaceChildren(
      ...names.map((name) => {
        const option = document.createElement('option');
        option.value = name;
        option.textContent = name === '' ? '(none: row numbers)' : name;
        option.selected = name === chosen;
        return option;
      }),
    );
    select.disabled = names.length === 0;
  };
  const lower = columns.map((c) => c.toLowerCase());
  const label = columns[lower.indexOf('label')] ?? columns[columns.length - 1] ?? '';
  const id = columns[lower.indexOf('id')] ?? '';
  options(inputs.label, columns, label);
  options(inputs.id, columns.length > 0 ? ['', ...columns] : [], id);
}

inputs.file.addEventListener('change', () => {
  const file = inputs.file.files?.[0];
  if (file) void chooseFile(file);
});
dropZone.addEventListener('dragover', (event) => {
  event.preventDefault();
  dropZone.classList.add('over');
});
dropZone.addEventListener('dragleave', () => dropZone.classList.remove('over'));
dropZone.addEventListener('drop', (event) => {
  event.preventDefault();
  dropZone.classList.remove('over');
  const file = event.dataTransfer?.files[0];
  if (file) void chooseFile(file);
});

// ---------------------------------------------------------------------------------------------
// Running

function setRunning(on: boolean): void {
  running = on;
  paused = false;
  for (const fieldset of fieldsets) fieldset.disabled = on;
  buttons.start.disabled = on;
  buttons.pause.disabled = !on;
  buttons.stop.disabled = !on;
  buttons.pause.textContent = 'Pause';
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (running) return;
  runError.textContent = '';
  let settings: PageSettings;
  try {
    settings = readSettings();
  } catch (error) {
    if (!(error instanceof SettingError)) throw error;
    runError.textContent = error.message;
    error.field.focus();
    return;
  }
  files.values = null;
  files.run = null;
  warnings.replaceChildren();
  charts.loss.clear();
  charts.utility.clear();
  charts.histogram.clear();
  describeCharts();
  element('results-empty').hidden = false;
  element('results-body').hidden = true;
  progressBar.value = 0;
  announcedQuarter = 0;
  setRunning(true);
  say(settings.data.kind === 'digits' ? 'Loading the digits…' : `Reading ${settings.data.name}…`);
  send({ type: 'start', settings });
});

buttons.pause.addEventListener('click', () => {
  send({ type: paused ? 'resume' : 'pause' });
});
buttons.stop.addEventListener('click', () => {
  send({ type: 'stop' });
  buttons.pause.disabled = true;
  buttons.stop.disabled = true;
});

function say(text: string): void {
  status.textContent = text;
}

function describeCharts(): void {
  chartTexts.loss.textContent = charts.loss.describe();
  chartTexts.utility.textContent = charts.utility.describe();
  chartTexts.histogram.textContent = charts.histogram.describe();
}

worker.onmessage = (event: MessageEvent<FromWorker>) => {
  const message = event.data;
  switch (message.type) {
    case 'ready':
      kernelsLine.textContent = `Kernels: ${message.kernels === 'wasm' ? 'WebAssembly SIMD' : 'portable TypeScript'}${message.note ? ` (${message.note})` : ''}`;
      kernelsLine.dataset.kernels = message.kernels;
      break;
    case 'inspected':
      if (table?.name !== message.name) return;
      table.columns = message.columns;
      fillColumns(message.columns);
      fileSummary.textContent = `${message.name}: ${message.rows} rows, ${message.columns.length} columns. Choose the label column.`;
      break;
    case 'started':
      say(
        `Training on ${message.trainExamples} examples (${message.validationExamples} for validation), ` +
          `${message.parameters} parameters, ${message.totalSteps} steps, ${message.kernels} kernels.`,
      );
      break;
    case 'progress': {
      progressBar.max = message.totalSteps;
      progressBar.value = message.step;
      charts.loss.add(message.points);
      charts.utility.add(message.points);
      if (message.histogram) charts.histogram.show(message.histogram);
      describeCharts();
      const quarter = Math.floor((4 * message.step) / message.totalSteps);
      if (quarter > announcedQuarter && message.step < message.totalSteps) {
        announcedQuarter = quarter;
        say(`Training: step ${message.step} of ${message.totalSteps}.`);
      }
      break;
    }
    case 'warning': {
      const item = document.createElement('li');
      item.textContent = message.message;
      warnings.append(item);
      break;
    }
    case 'paused':
      paused = true;
      buttons.pause.textContent = 'Resume';
      say(`Paused after step ${message.step}.`);
      break;
    case 'resumed':
      paused = false;
      buttons.pause.textContent = 'Pause';
      say('Training again.');
      break;
    case 'stopped':
      setRunning(false);
      say(
        `Stopped after step ${message.step} of ${message.totalSteps}; nothing to download. Press Start to train again.`,
      );
      break;
    case 'done':
      setRunning(false);
      progressBar.value = progressBar.max;
      charts.histogram.show(message.histogram);
      describeCharts();
      showResults(message.results, message.valuesCsv, message.archive);
      break;
    case 'error':
      if (message.phase === 'file') {
        fileError.textContent = message.message;
        fileSummary.textContent = '';
        fillColumns([]);
      } else {
        setRunning(false);
        runError.textContent = message.message;
        say('The run did not finish.');
      }
      break;
  }
};

worker.onerror = (event) => {
  setRunning(false);
  runError.textContent = `The training worker failed: ${event.message}`;
};

// ---------------------------------------------------------------------------------------------
// Results

function showResults(results: PageResults, valuesCsv: string, archive: ArrayBuffer): void {
  const summary = element<HTMLDListElement>('summary');
  const rows: [string, string, string?][] = [
    ['Steps', `${results.steps} (${results.examples} examples valued, order ${results.order})`],
    ['Training time', `${results.trainingSeconds.toFixed(1)} s on ${results.kernels} kernels`],
    [
      'Validation loss',
      `${formatNumber(results.initialValidationLoss)} → ${formatNumber(results.finalValidationLoss)}`,
    ],
    [
      'Efficiency',
      `Σ values − Taylor utility: at most ${formatNumber(results.relativeEfficiencyResidual)} of a step's utility`,
    ],
  ];
  if (results.auroc !== null) {
    rows.push(['Flipped labels found (AUROC)', results.auroc.toFixed(3), 'auroc']);
    rows.push([
      'Flipped among the lowest',
      `${Math.round(100 * (results.flippedAmongLowest ?? 0))}% of the ${results.flippedCount} lowest-valued examples have flipped labels`,
    ]);
  }
  summary.replaceChildren(
    ...rows.flatMap(([term, description, id]) => {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = description;
      if (id) dd.id = id;
      return [dt, dd];
    }),
  );
  element<HTMLOListElement>('harmful').replaceChildren(...results.harmful.map(exampleItem));
  element<HTMLOListElement>('helpful').replaceChildren(...results.helpful.map(exampleItem));
  files.values = new Blob([valuesCsv], { type: 'text/csv' });
  files.run = new Blob([archive], { type: 'application/zip' });
  element('results-empty').hidden = true;
  element('results-body').hidden = false;
  const found =
    results.auroc === null
      ? ''
      : ` The values found the flipped labels with AUROC ${results.auroc.toFixed(3)}.`;
  say(`Done: ${results.steps} steps in ${results.trainingSeconds.toFixed(1)} s.${found} Results below.`);
}

function exampleItem(example: ExampleView): HTMLLIElement {
  const item = document.createElement('li');
  item.className = 'example';
  const flipped = example.originalLabel !== null;
  const labelText = flipped
    ? `label ${example.label}, flipped (true label ${example.originalLabel})`
    : `label ${example.label}`;
  if (example.content.kind === 'image') {
    const { width, height, pixels } = example.content;
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', `Image of example ${example.id}, ${labelText}`);
    const context = canvas.getContext('2d');
    if (context) {
      const image = context.createImageData(width, height);
      for (let k = 0; k < width * height; k++) {
        // Dark ink on white paper.
        const ink = 255 - Math.round(255 * Math.min(1, Math.max(0, pixels[k])));
        image.data.set([ink, ink, ink, 255], 4 * k);
      }
      context.putImageData(image, 0, 0);
    }
    item.append(canvas);
  } else {
    const cells = document.createElement('dl');
    cells.className = 'cells';
    const shown = example.content.cells.slice(0, 8);
    for (const [column, text] of shown) {
      const dt = document.createElement('dt');
      dt.textContent = column;
      const dd = document.createElement('dd');
      dd.textContent = text;
      cells.append(dt, dd);
    }
    if (example.content.cells.length > shown.length) {
      const more = document.createElement('dd');
      more.textContent = `… and ${example.content.cells.length - shown.length} more columns`;
      cells.append(more);
    }
    item.append(cells);
  }
  const meta = document.createElement('p');
  meta.className = flipped ? 'meta flipped' : 'meta';
  meta.textContent = `${example.id}: ${labelText}; value ${formatNumber(example.value)}`;
  item.append(meta);
  return item;
}

applyDefaults('digits');
describeCharts();

// `inrun demo-lm`: a small GPT trained on a mixture of bundled corpora, valued against held-out
// text from one of them; prints per-source value over training stages and the training
// documents that helped the validation text most.
//
// It is an ordinary run: the documents are written as text files to <out>/data/train/<source>/
// and the validation passages to <out>/data/validation/, trainRun trains on them into the run
// directory <out>/run (which `inrun report` and `inrun curate` accept), and the results are read
// back from there.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { displayPath } from '../data/readers/table.js';
import { loadRun, RUN_FILES, type TextValueRow } from '../io/run-dir.js';
import type { KernelChoice } from '../kernels/index.js';
import { parseTrainConfig } from '../run/config.js';
import { trainRun } from '../run/train-run.js';
import type { DocumentValue } from '../text/aggregate.js';
import { loadBundledCorpus } from '../text/corpora.js';
import { splitIntoSequences, type TextDocument } from '../text/sequences.js';
import { getTokenizer, type Tokenizer } from '../text/tokenizer.js';
import { checkKnownKeys, checkNumber, describe, fail } from '../util/errors.js';
import { errorCode, failFileError } from '../util/fs-errors.js';
import { DEMO_DATA_DIR, DEMO_RUN_DIR, shellPath } from './shared.js';

export interface LanguageDemoOptions {
  steps?: number;
  batchSize?: number;
  context?: number;
  layers?: number;
  width?: number;
  heads?: number;
  lr?: number;
  order?: 1 | 2;
  /** The run's seed (0 to 2^32 − 1) of the initial weights and the data order. */
  seed?: number;
  /** Documents taken from each bundled corpus (speeches, moby-dick, kjv). */
  documentsPerSource?: number;
  /**
   * Validation passages (sequences of `context` tokens) taken from the start of the validation
   * text: only their text is written as the validation documents, as it is evaluated every step.
   */
  validationSequences?: number;
  /** Validation text: these documents, held out from training (default: two Moby-Dick chapters). */
  validation?: TextDocument[];
  /** More training documents, added to the mixture (e.g. to check that a copy of the validation text ranks first). */
  extraTraining?: TextDocument[];
  /** Folder for the text files (<out>/data) and the run directory (<out>/run); default runs/demo-lm. */
  out?: string;
  kernels?: KernelChoice;
  quiet?: boolean;
}

export const LANGUAGE_DEMO_DEFAULTS = {
  steps: 120,
  batchSize: 16,
  context: 64,
  layers: 4,
  width: 128,
  heads: 4,
  lr: 3e-3,
  order: 1 as 1 | 2,
  seed: 0,
  documentsPerSource: 8,
  validationSequences: 16,
  out: 'runs/demo-lm',
  kernels: 'auto' as KernelChoice,
};

const OPTION_KEYS = [...Object.keys(LANGUAGE_DEMO_DEFAULTS), 'validation', 'extraTraining', 'quiet'];
const SOURCES = ['speeches', 'moby-dick', 'kjv'] as const;
/** Moby-Dick chapters held out as the default validation text. */
const VALIDATION_CHAPTERS = ['moby-dick/chapter-001', 'moby-dick/chapter-002'];
const STAGES = 4;
/** Marks a document folder as the demo's own, which each run replaces whole. */
const FOLDER_MARKER = '.inrun-demo-lm';

export interface LanguageDemoResult {
  /** The run directory (<out>/run): `inrun report <runDir>` shows it. */
  runDir: string;
  /** The text files' folder (<out>/data: train/<source>/*.txt and validation/). */
  dataDir: string;
  sources: { source: string; stages: number[]; total: number }[];
  /** Training documents, most helpful first; ids are the files' paths below data/train. */
  documents: DocumentValue[];
  stageStarts: number[];
  validationLoss: { first: number; last: number };
  /** values.csv of the run directory (one row per training sequence). */
  valuesPath: string;
}

export async function runLanguageDemo(
  options: LanguageDemoOptions = {},
  log: (line: string) => void = console.log,
): Promise<LanguageDemoResult> {
  checkKnownKeys('runLanguageDemo', options, OPTION_KEYS);
  const d = LANGUAGE_DEMO_DEFAULTS;
  const steps = checkNumber('steps', options.steps ?? d.steps, { min: STAGES, integer: true });
  const batchSize = checkNumber('batchSize', options.batchSize ?? d.batchSize, { min: 1, integer: true });
  const context = checkNumber('context', options.context ?? d.context, { min: 2, integer: true });
  const perSource = checkNumber('documentsPerSource', options.documentsPerSource ?? d.documentsPerSource, {
    min: 1,
    integer: true,
  });
  const passages = checkNumber('validationSequences', options.validationSequences ?? d.validationSequences, {
    min: 1,
    integer: true,
  });
  const seed = checkNumber('seed', options.seed ?? d.seed, { min: 0, max: 0xffffffff, integer: true });
  const order = options.order ?? d.order;
  if (order !== 1 && order !== 2) fail(`order must be 1 or 2, got ${describe(order)}`);
  const out = options.out ?? d.out;
  if (typeof out !== 'string' || out === '') fail(`out must be a folder path, got ${describe(out)}`);
  const layers = options.layers ?? d.layers;
  const width = options.width ?? d.width;
  const say = options.quiet ? () => {} : log;

  // The mixture: the first documents of each corpus, minus the held-out validation text.
  const corpora = SOURCES.map((name) => loadBundledCorpus(name));
  const validationDocs =
    options.validation ?? corpora[1].filter((doc) => VALIDATION_CHAPTERS.includes(doc.id));
  if (validationDocs.length === 0) fail('the validation text is empty');
  const held = new Set(validationDocs.map((doc) => doc.id));
  const extra = options.extraTraining ?? [];
  const trainingDocs = [
    ...corpora.flatMap((docs) => docs.filter((doc) => !held.has(doc.id)).slice(0, perSource)),
    ...extra,
  ];
  const tokenizer = getTokenizer('gpt2');
  const validationPassages = firstPassages(validationDocs, tokenizer, context, passages);

  const dataDir = resolve(out, DEMO_DATA_DIR);
  const trainDir = join(dataDir, 'train');
  const validationDir = join(dataDir, 'validation');
  const runDir = resolve(out, DEMO_RUN_DIR);
  await writeDocumentFolder(trainDir, trainingDocs);
  await writeDocumentFolder(validationDir, validationPassages.documents);

  const config = parseTrainConfig({
    value: {
      data: { train: trainDir, validation: validationDir },
      model: {
        kind: 'gpt',
        layers,
        heads: options.heads ?? d.heads,
        width,
        context,
        tokenizer: 'gpt2',
      },
      optimizer: {
        kind: 'adamw',
        lr: options.lr ?? d.lr,
        weightDecay: 0.1,
        clipNorm: 1,
        schedule: { kind: 'cosine', warmupSteps: Math.ceil(steps / 10), minFactor: 0.1 },
      },
      batchSize,
      steps,
      order,
      seed,
      stages: STAGES,
      gapSamples: 1,
      out: runDir,
      // A demo run is rerun, not resumed.
      checkpointEvery: 0,
      kernels: options.kernels ?? d.kernels,
    },
    flagPaths: new Map(),
  });

  const every = Math.max(1, Math.round(steps / 8));
  let started = performance.now();
  const run = await trainRun({
    config,
    // The demo replaces its own earlier run.
    force: true,
    onEvent: (event) => {
      if (event.type === 'start') {
        started = performance.now();
        const extraText = extra.length > 0 ? ` plus ${extra.length} more` : '';
        say(
          `documents: ${perSource} from each of ${SOURCES.join(', ')}${extraText}, in ${displayPath(trainDir)}; ` +
            `validation: ${validationPassages.description}, in ${displayPath(validationDir)}`,
        );
        say(event.dataSummary);
        say(
          `model: GPT ${layers} layer${layers === 1 ? '' : 's'}, width ${width}, ${event.parameters} parameters, ${event.kernels.split(' ')[0]} kernels; ` +
            `AdamW, ${steps} steps of ${batchSize}; order-${order} values`,
        );
      } else if (event.type === 'step') {
        if (event.step % every !== 0 && event.step !== event.totalSteps) return;
        say(
          `step ${String(event.step).padStart(4)}/${event.totalSteps}  train loss ${event.trainLoss.toFixed(3)}  ` +
            `validation loss ${(event.validationLoss ?? Number.NaN).toFixed(3)}  (${((performance.now() - started) / 1000).toFixed(0)} s)`,
        );
      } else if (event.type === 'notice') say(event.message);
      else if (event.type === 'warning') say(`warning: ${event.warning.message}`);
    },
  });
  if (run.status !== 'complete') fail(run.message ?? `${displayPath(runDir)}: the run did not complete`);

  const loaded = await loadRun(runDir);
  const text = loaded.text!;
  const main = (row: TextValueRow) => (order === 2 ? row.secondOrder! : row.firstOrder);
  const documents = [...text.documents]
    .sort((a, b) => main(b) - main(a))
    .map((row) => ({
      documentId: row.id,
      source: row.source,
      sequences: row.sequences,
      firstOrder: row.firstOrder,
      secondOrder: row.secondOrder ?? 0,
      stages: row.stages,
    }));
  // The bundled corpora first, in their usual order, then any other source (extra documents).
  const rank = (source: string) => {
    const k = (SOURCES as readonly string[]).indexOf(source);
    return k < 0 ? SOURCES.length : k;
  };
  const sources = [...text.sources]
    .sort((a, b) => rank(a.source) - rank(b.source))
    .map((row) => ({ source: row.source, stages: row.stages, total: main(row) }));
  const stageStarts = loaded.manifest.stageStarts;
  const trace = loaded.trace;

  say('');
  say(
    `value per source and training stage (validation-loss decrease; stages start at steps 0, ${stageStarts.join(', ')}):`,
  );
  const sourceWidth = Math.max(10, ...sources.map((row) => row.source.length));
  const headers = [...Array.from({ length: STAGES }, (_, s) => `stage ${s + 1}`), 'total'];
  say(`  ${'source'.padEnd(sourceWidth)} ${headers.map((h) => h.padStart(11)).join('')}`);
  for (const row of sources)
    say(
      `  ${row.source.padEnd(sourceWidth)} ${[...row.stages, row.total].map((v) => v.toExponential(2).padStart(11)).join('')}`,
    );
  say('');
  say('training documents that helped the validation text most:');
  for (const doc of documents.slice(0, 10))
    say(
      `  ${(order === 2 ? doc.secondOrder : doc.firstOrder).toExponential(3).padStart(11)}  ${doc.documentId} (${doc.sequences} sequences)`,
    );

  const valuesPath = join(runDir, RUN_FILES.valuesCsv);
  say('');
  say(
    `run directory ${displayPath(runDir)}: sequence values in ${RUN_FILES.valuesCsv}, document values in ` +
      `${RUN_FILES.documents}, source values in ${RUN_FILES.sources}`,
  );
  say('next:');
  say(
    `  inrun report ${shellPath(runDir)}   # HTML report: values, sources, stages, most helpful and harmful text`,
  );
  return {
    runDir,
    dataDir,
    sources,
    documents,
    stageStarts,
    validationLoss: {
      first: trace[0].validationLossBefore,
      last: trace[trace.length - 1].validationLossAfter,
    },
    valuesPath,
  };
}

/**
 * The validation text cut to its first `count` passages of `context` tokens, as documents: a
 * document with all its passages taken is kept whole, the one cut short keeps the text of its
 * first k·context tokens (so it splits into the same k passages, the last one predicting the end
 * of text where the original went on), and the rest are left out.
 */
export function firstPassages(
  docs: TextDocument[],
  tokenizer: Tokenizer,
  context: number,
  count: number,
): { documents: TextDocument[]; description: string } {
  const split = splitIntoSequences(docs, tokenizer, { context });
  if (split.sequences.length === 0) fail('the validation text tokenizes to nothing');
  const total = new Map<string, number>();
  for (const s of split.sequences) total.set(s.documentId, (total.get(s.documentId) ?? 0) + 1);
  const taken = new Map<string, number>();
  for (const s of split.sequences.slice(0, count))
    taken.set(s.documentId, (taken.get(s.documentId) ?? 0) + 1);
  const documents: TextDocument[] = [];
  for (const doc of docs) {
    const k = taken.get(doc.id);
    if (k === undefined) continue;
    if (k === total.get(doc.id)) {
      documents.push(doc);
      continue;
    }
    let tokens = tokenizer.encode(doc.text).subarray(0, k * context);
    let text = tokenizer.decode(tokens);
    // A cut inside a character, or a shorter text that encodes to more tokens, gives back a token.
    while (!doc.text.startsWith(text) || tokenizer.encode(text).length > k * context) {
      tokens = tokens.subarray(0, tokens.length - 1);
      text = tokenizer.decode(tokens);
    }
    documents.push({ ...doc, text });
  }
  const passages = Math.min(count, split.sequences.length);
  const whole = passages === split.sequences.length;
  const names = documents.map((doc) => doc.id).join(', ');
  return {
    documents,
    description: whole
      ? `${names} (${passages} passage${passages === 1 ? '' : 's'} of up to ${context} tokens)`
      : `the first ${passages} passages of ${context} tokens of ${names}`,
  };
}

/** A document's file below its folder: <source>/<name>.txt, every part a plain file name. */
function documentFile(doc: TextDocument): string {
  const name = doc.id.startsWith(`${doc.source}/`) ? doc.id.slice(doc.source.length + 1) : doc.id;
  const part = (text: string) => text.replace(/[^\w.-]+/g, '-').replace(/^[.-]+/, '') || '_';
  return `${[doc.source, ...name.split('/')].map(part).join('/')}.txt`;
}

/**
 * Writes documents as text files, one folder per source (the text-folder reader takes the first
 * sub-folder as the source). The folder is the demo's own and is replaced whole, so documents of an
 * earlier run with other options do not linger; a folder the demo did not write is refused.
 */
async function writeDocumentFolder(dir: string, docs: TextDocument[]): Promise<void> {
  const files = new Map<string, string>();
  for (const doc of docs) {
    const file = documentFile(doc);
    // Case-insensitive file systems would merge names that differ only in case.
    const key = file.toLowerCase();
    const other = files.get(key);
    if (other !== undefined)
      fail(
        `documents ${JSON.stringify(other)} and ${JSON.stringify(doc.id)} would both be written to ${file}; give them distinct ids`,
      );
    files.set(key, doc.id);
  }
  let entries: string[] | null = null;
  try {
    entries = await readdir(dir);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') failFileError(error, displayPath(dir), 'read the folder');
  }
  if (entries !== null && entries.length > 0) {
    if (!entries.includes(FOLDER_MARKER))
      fail(`${displayPath(dir)}: the folder exists and inrun demo-lm did not write it; choose another --out`);
    await rm(dir, { recursive: true, force: true });
  }
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, FOLDER_MARKER),
      'written by inrun demo-lm, which replaces this folder on each run\n',
    );
    for (const doc of docs) {
      const path = join(dir, documentFile(doc));
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, doc.text);
    }
  } catch (error) {
    failFileError(error, displayPath(dir), 'write the documents');
  }
}

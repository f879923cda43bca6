// `inrun demo-lm`: a small GPT trained on a mixture of bundled corpora, valued against held-out
// text from one of them; prints per-source value over training stages and the training
// documents that helped the validation text most.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { csvField, valuesToCsv } from '../io/values-csv.js';
import type { KernelChoice } from '../kernels/index.js';
import { gpt } from '../models/gpt.js';
import { adamw } from '../optim/adam.js';
import { type DocumentValue, documentValues } from '../text/aggregate.js';
import { loadBundledCorpus } from '../text/corpora.js';
import { splitIntoSequences, type TextDocument, TextSequenceDataset } from '../text/sequences.js';
import { getTokenizer } from '../text/tokenizer.js';
import { compactVocabulary } from '../text/vocabulary.js';
import { Trainer } from '../train/trainer.js';
import { checkKnownKeys, checkNumber, fail } from '../util/errors.js';

export interface LanguageDemoOptions {
  steps?: number;
  batchSize?: number;
  context?: number;
  layers?: number;
  width?: number;
  heads?: number;
  lr?: number;
  order?: 1 | 2;
  seed?: number;
  /** Documents taken from each bundled corpus (speeches, moby-dick, kjv). */
  documentsPerSource?: number;
  /** Validation passages (sequences) used from the start of the validation text: it is evaluated every step. */
  validationSequences?: number;
  /** Validation text: these documents, held out from training (default: two Moby-Dick chapters). */
  validation?: TextDocument[];
  /** More training documents, added to the mixture (e.g. to check that a copy of the validation text ranks first). */
  extraTraining?: TextDocument[];
  out?: string | null;
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

export interface LanguageDemoResult {
  sources: { source: string; stages: number[]; total: number }[];
  documents: DocumentValue[];
  stageStarts: number[];
  validationLoss: { first: number; last: number };
  valuesPath: string | null;
}

export async function runLanguageDemo(
  options: LanguageDemoOptions = {},
  log: (line: string) => void = console.log,
): Promise<LanguageDemoResult> {
  checkKnownKeys('runLanguageDemo', options, OPTION_KEYS);
  const d = LANGUAGE_DEMO_DEFAULTS;
  const steps = checkNumber('steps', options.steps ?? d.steps, { min: 4, integer: true });
  const batchSize = checkNumber('batchSize', options.batchSize ?? d.batchSize, { min: 1, integer: true });
  const context = checkNumber('context', options.context ?? d.context, { min: 2, integer: true });
  const perSource = checkNumber('documentsPerSource', options.documentsPerSource ?? d.documentsPerSource, {
    min: 1,
    integer: true,
  });
  const order = options.order ?? d.order;
  if (order !== 1 && order !== 2) fail(`order must be 1 or 2, got ${order}`);
  const say = options.quiet ? () => {} : log;

  // The mixture: the first documents of each corpus, minus the held-out validation text.
  const corpora = SOURCES.map((name) => loadBundledCorpus(name));
  const validationDocs =
    options.validation ?? corpora[1].filter((doc) => VALIDATION_CHAPTERS.includes(doc.id));
  if (validationDocs.length === 0) fail('the validation text is empty');
  const held = new Set(validationDocs.map((doc) => doc.id));
  const trainingDocs = [
    ...corpora.flatMap((docs) => docs.filter((doc) => !held.has(doc.id)).slice(0, perSource)),
    ...(options.extraTraining ?? []),
  ];
  const tokenizer = getTokenizer('gpt2');
  const split = splitIntoSequences(trainingDocs, tokenizer, { context });
  for (const skip of split.skipped) say(skip.message);
  const validationSplit = splitIntoSequences(validationDocs, tokenizer, { context });
  if (validationSplit.sequences.length === 0) fail('the validation text tokenizes to nothing');
  const vocabulary = compactVocabulary(split.sequences, validationSplit.sequences);
  // The vocabulary covers all of the validation text; only its first passages are evaluated.
  const sequences = split.sequences.map(vocabulary.remap);
  const train = new TextSequenceDataset('training mixture', sequences, context);
  const passages = checkNumber('validationSequences', options.validationSequences ?? d.validationSequences, {
    min: 1,
    integer: true,
  });
  const validation = new TextSequenceDataset(
    'validation text',
    validationSplit.sequences.slice(0, passages).map(vocabulary.remap),
    context,
  );
  say(
    `data: ${split.documentCount} documents from ${SOURCES.join(', ')} → ${train.size} sequences of ${context} tokens ` +
      `(${split.tokenCount} tokens, GPT-2 BPE, ${vocabulary.size} distinct ids); validation: ${validationDocs.map((doc) => doc.id).join(', ')} ` +
      `(${validation.size} sequences)`,
  );

  const model = gpt({
    vocabSize: vocabulary.size,
    context,
    layers: options.layers ?? d.layers,
    heads: options.heads ?? d.heads,
    width: options.width ?? d.width,
    seed: options.seed ?? d.seed,
    kernels: options.kernels ?? d.kernels,
  });
  const stageStarts = [1, 2, 3].map((k) => Math.round((k * steps) / 4));
  say(
    `model: GPT ${options.layers ?? d.layers} layers, width ${options.width ?? d.width}, ${model.parameterCount} parameters, ${model.kernels.kind} kernels; AdamW, ${steps} steps of ${batchSize}; order-${order} values`,
  );
  const trainer = new Trainer({
    model,
    optimizer: adamw({
      lr: options.lr ?? d.lr,
      weightDecay: 0.1,
      clipNorm: 1,
      schedule: { kind: 'cosine', warmupSteps: Math.ceil(steps / 10), minFactor: 0.1 },
    }),
    data: train,
    batchSize,
    steps,
    seed: options.seed ?? d.seed,
    valuation: { validation, order, stageStarts, gapSamples: 1 },
  });
  const valuer = trainer.valuer!;
  const every = Math.max(1, Math.round(steps / 8));
  const started = performance.now();
  while (!trainer.done) {
    const report = trainer.runStep();
    if ((report.step + 1) % every === 0 || trainer.done) {
      const row = valuer.trace[report.step];
      say(
        `step ${String(report.step + 1).padStart(4)}/${steps}  train loss ${report.trainLoss.toFixed(3)}  validation loss ${row.validationLossBefore.toFixed(3)}  (${((performance.now() - started) / 1000).toFixed(0)} s)`,
      );
    }
  }
  const trace = valuer.trace;

  // Per-source totals per stage, and documents ranked by their value for the validation text.
  const documents = documentValues(valuer.ledger, sequences).sort((a, b) => main(b, order) - main(a, order));
  const sources = SOURCES.map((source) => ({ source, stages: new Array(4).fill(0), total: 0 }));
  for (const total of valuer.ledger.groupTotals()) {
    const row = sources.find((s) => s.source === total.group);
    if (!row) continue;
    row.stages = total.stages;
    row.total = order === 2 ? total.secondOrder : total.firstOrder;
  }
  say('');
  say(
    `value per source and training stage (validation-loss decrease; stages start at steps 0, ${stageStarts.join(', ')}):`,
  );
  say(
    `  ${'source'.padEnd(10)} ${['stage 1', 'stage 2', 'stage 3', 'stage 4', 'total'].map((h) => h.padStart(11)).join('')}`,
  );
  for (const row of sources)
    say(
      `  ${row.source.padEnd(10)} ${[...row.stages, row.total].map((v) => v.toExponential(2).padStart(11)).join('')}`,
    );
  say('');
  say('training documents that helped the validation text most:');
  for (const doc of documents.slice(0, 10))
    say(
      `  ${main(doc, order).toExponential(3).padStart(11)}  ${doc.documentId} (${doc.sequences} sequences)`,
    );

  let valuesPath: string | null = null;
  const out = options.out === undefined ? d.out : options.out;
  if (out) {
    await mkdir(out, { recursive: true });
    valuesPath = join(out, 'values.csv');
    await writeFileAtomic(valuesPath, valuesToCsv(valuer.ledger));
    const header = 'document_id,source,sequences,first_order,second_order\n';
    const rows = documents.map((doc) =>
      [
        csvField(doc.documentId),
        csvField(doc.source),
        doc.sequences,
        doc.firstOrder,
        order === 2 ? doc.secondOrder : '',
      ].join(','),
    );
    await writeFileAtomic(join(out, 'documents.csv'), `${header}${rows.join('\n')}\n`);
    say('');
    say(`sequence values written to ${valuesPath}; document values to ${join(out, 'documents.csv')}`);
  }
  return {
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

function main(doc: DocumentValue, order: 1 | 2): number {
  return order === 2 ? doc.secondOrder : doc.firstOrder;
}

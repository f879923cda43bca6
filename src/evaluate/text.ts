// `inrun evaluate` on a text (model kind gpt) run: junk documents planted among the training
// documents (src/text/junk.ts), one run, and every signal scored per training document — the
// in-run values summed over a document's sequences against the baselines a text curator knows
// (lexical similarity to the validation text, the final model's loss, random) — then removal
// curves of whole documents, each retraining as many optimizer steps as the run.
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { loadRun, RUN_FILES, type TextValueRow, type ValueRow, writeJsonFile } from '../io/run-dir.js';
import { loadModelTensors, readSafetensors } from '../io/safetensors.js';
import { csvField } from '../io/values-csv.js';
import type { FloatArray } from '../kernels/types.js';
import { buildTextModel } from '../run/build.js';
import { parseTrainConfig, type TrainConfig } from '../run/config.js';
import { TestEvaluator } from '../run/test-set.js';
import { loadTextTrainingData, type TextTrainingData } from '../run/text-data.js';
import { trainRun } from '../run/train-run.js';
import { type LexicalDocument, LexicalIndex, lexicalWords } from '../text/lexical.js';
import type { TextDocument } from '../text/sequences.js';
import { fail } from '../util/errors.js';
import type { TextEvaluation } from './evaluate.js';
import { type FaultSpec, injectTextFaults, TEXT_FAULT_KINDS } from './faults.js';
import {
  curveSignals,
  detectionResults,
  failUntrained,
  initialWeights,
  randomSignal,
  removalCurves,
  type ScoredSignal,
  trainWithoutValuation,
} from './signals.js';
import { SubsetDataset } from './subset.js';
import { finalModelLoss } from './tracin.js';

/** Faults planted in a text run unless told otherwise: 5% of the documents of each text kind. */
export const TEXT_DEFAULT_FAULTS: FaultSpec[] = TEXT_FAULT_KINDS.map((kind) => ({ kind, rate: 0.05 }));

/** What the in-run signals of a document are computed from. */
interface DocumentRun {
  /** Its row of documents.csv: the sums of its sequences' values. */
  document: TextValueRow;
  /** The values rows of its sequences that were trained on. */
  rows: ValueRow[];
  /** Each of those sequences' target tokens (its weight in a mean over tokens). */
  tokens: number[];
}

/** In-run signals of a training document, as suspicion scores (higher = more suspicious). */
const TEXT_IN_RUN: { name: string; description: string; of: (d: DocumentRun) => number | null }[] = [
  {
    name: 'value',
    description: "−the document's value (its sequences' summed; second order when computed)",
    of: (d) => -(d.document.secondOrder ?? d.document.firstOrder),
  },
  {
    name: 'first_order',
    description: "−the document's first-order value",
    of: (d) => -d.document.firstOrder,
  },
  {
    name: 'normalized',
    description: "−its sequences' per-step normalised values, summed",
    of: (d) => -sum(d.rows.map((r) => r.normalized)),
  },
  {
    name: 'best_sequence',
    description: '−the lowest value of its sequences (its most harmful chunk)',
    of: (d) => -Math.min(...d.rows.map((r) => r.secondOrder ?? r.firstOrder)),
  },
  {
    name: 'mean_loss',
    description: 'training loss when trained on, mean over its tokens',
    of: (d) =>
      tokenMean(
        d.rows.map((r) => r.meanLoss),
        d.tokens,
      ),
  },
  {
    name: 'self_influence',
    description: "its sequences' in-run self-influence Σ η⟨g_i, K g_i⟩, summed",
    of: (d) =>
      d.rows.some((r) => r.selfInfluence === null) ? null : sum(d.rows.map((r) => r.selfInfluence!)),
  },
];

/** Every signal of a text evaluation, in-run then baselines (KNN-Shapley and TracIn-CP are table-only). */
export const TEXT_SIGNALS = [...TEXT_IN_RUN.map((s) => s.name), 'tfidf', 'bm25', 'final_loss', 'random'];

/** Signals whose removal curves a text evaluation measures unless `curves` says otherwise. */
export const TEXT_REMOVAL_DEFAULT = [
  'value',
  'normalized',
  'mean_loss',
  'tfidf',
  'bm25',
  'final_loss',
  'random',
];

export interface TextEvaluationSetup {
  out: string;
  dataDir: string;
  faults: FaultSpec[];
  seed: number;
  removal: number[];
  /** The signals to measure removal curves for, and whether the user named them. */
  curves: { names: string[]; given: boolean };
  force: boolean;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** The text half of `evaluate` (src/evaluate/evaluate.ts), after its checks of the options. */
export async function evaluateText(base: TrainConfig, setup: TextEvaluationSetup): Promise<TextEvaluation> {
  const { out, dataDir, removal, log } = setup;
  const clean = await loadTextTrainingData(base);
  // Junk replaces documents that give sequences; the others (empty, too short) are written as they
  // are, and skipped again.
  const trained = new Set(clean.train.sequences.map((s) => s.documentId));
  const documents = clean.train.documents;
  const candidates = documents.flatMap((d, i) => (trained.has(d.id) ? [i] : []));
  const planted = injectTextFaults(
    candidates.map((i) => documents[i].text),
    setup.faults,
    setup.seed,
  );
  const faulted = documents.slice();
  candidates.forEach((i, c) => {
    faulted[i] = { ...documents[i], text: planted.texts[c] };
  });

  // JSONL keeps every document's id and source exactly, whatever the input was (a folder, a table
  // with its own ids, a split), so faults.csv and the run name the same documents.
  const files = {
    train: join(dataDir, 'train.jsonl'),
    validation: join(dataDir, 'validation.jsonl'),
    test: join(dataDir, 'test.jsonl'),
    faults: join(dataDir, 'faults.csv'),
  };
  await writeFileAtomic(files.train, documentsJsonl(faulted));
  await writeFileAtomic(files.validation, documentsJsonl(clean.validation.documents));
  await writeFileAtomic(files.test, documentsJsonl(clean.test!.documents));
  const faultRows = ['id,fault,source_id'];
  candidates.forEach((i, c) => {
    const kind = planted.faults[c];
    const source = planted.sourceDocument[c];
    if (kind)
      faultRows.push(
        [documents[i].id, kind, source === null ? '' : documents[candidates[source]].id]
          .map(csvField)
          .join(','),
      );
  });
  await writeFileAtomic(files.faults, `${faultRows.join('\n')}\n`);

  const config = parseTrainConfig({
    value: {
      ...base,
      data: { train: files.train, validation: files.validation, test: files.test },
      columns: { id: 'id', text: 'text', group: 'source' },
      out: join(out, 'run'),
      checkpointEvery: 0,
    },
    flagPaths: new Map(),
  });
  const data = await loadTextTrainingData(config);
  const sequencesOf = documentSequences(
    data,
    candidates.map((i) => documents[i].id),
  );
  candidates.forEach((i, c) => {
    if (sequencesOf[c].length === 0)
      fail(
        `inrun evaluate: the planted ${planted.faults[c]} document ${JSON.stringify(documents[i].id)} gives no training sequence; plant fewer faults or use longer documents`,
      );
  });
  const n = candidates.length;
  log(`training on ${n} documents with ${planted.faults.filter(Boolean).length} planted junk documents…`);
  let started = Date.now();
  const result = await trainRun({ config, force: setup.force, signal: setup.signal });
  if (result.status !== 'complete') fail('inrun evaluate: the run was interrupted');
  const runSeconds = (Date.now() - started) / 1000;

  // Every signal as one score per training document, in document order.
  started = Date.now();
  const run = await loadRun(config.out);
  const steps = run.manifest.totalSteps;
  const valueRowOf = new Map(run.values.map((v) => [String(v.id), v]));
  const documentRows = new Map(run.text!.documents.map((d) => [d.id, d]));
  const seen = sequencesOf.map((ks) => ks.filter((k) => valueRowOf.has(data.train.sequences[k].id)));
  const untrained = seen.filter((ks) => ks.length === 0).length;
  if (untrained > 0) failUntrained(untrained, 'training documents');
  const perDocument: DocumentRun[] = candidates.map((i, c) => ({
    document: documentRows.get(documents[i].id)!,
    rows: seen[c].map((k) => valueRowOf.get(data.train.sequences[k].id)!),
    tokens: seen[c].map((k) => data.train.sequences[k].length),
  }));
  const signals: ScoredSignal[] = [];
  for (const s of TEXT_IN_RUN) {
    const scores = perDocument.map(s.of);
    if (scores.some((x) => x === null || Number.isNaN(x))) continue; // not measured in this run
    signals.push({
      name: s.name,
      kind: 'in-run',
      description: s.description,
      scores: Float64Array.from(scores as number[]),
    });
  }
  const trainDocuments = candidates.map((i) => faulted[i]);
  const lexical = lexicalSuspicion(
    trainDocuments,
    data.validation.documents.map((d) => d.text),
  );
  if (lexical) signals.push(...lexical);
  else log('the validation text has no words, so the lexical baselines (tfidf, bm25) are left out');
  const model = buildTextModel(config, data);
  const finalPath = join(config.out, RUN_FILES.weightsFinal);
  loadModelTensors(model, (await readSafetensors(finalPath)).tensors, finalPath);
  const sequenceLoss = finalModelLoss(model, model.params, data.train.dataset, {
    batchSize: config.batchSize,
  });
  signals.push({
    name: 'final_loss',
    kind: 'baseline',
    description: "the final model's loss, mean over the document's tokens",
    scores: Float64Array.from(
      sequencesOf,
      (ks) =>
        tokenMean(
          ks.map((k) => sequenceLoss[k]),
          ks.map((k) => data.train.sequences[k].length),
        )!,
    ),
  });
  signals.push(randomSignal(n, setup.seed));
  const baselineSeconds = (Date.now() - started) / 1000;
  const results = detectionResults(signals, planted.faults);

  // Removal curves: whole documents dropped, retrained for the run's own number of steps.
  started = Date.now();
  const curveNames = curveSignals(setup.curves.names, setup.curves.given, signals);
  log('retraining for the removal curves…');
  const initial = await initialWeights(config, buildTextModel(config, data));
  const retrain = (keep: number[] | null) => ({
    testLoss: retrainDocuments(
      config,
      data,
      initial,
      keep === null ? null : keep.flatMap((c) => sequencesOf[c]).sort((a, b) => a - b),
      steps,
    ),
  });
  const baseline = retrain(null);
  const curves = removalCurves(signals, curveNames, removal, planted.faults, retrain);
  const evaluation: TextEvaluation = {
    task: 'text',
    out,
    runDir: config.out,
    data: dataDir,
    trainSize: n,
    text: { sequences: data.train.dataset.size, steps },
    faults: setup.faults.map((f) => ({ ...f, rows: planted.faults.filter((k) => k === f.kind).length })),
    signals: results,
    removal: { baseline, curves },
    seconds: { run: runSeconds, baselines: baselineSeconds, removal: (Date.now() - started) / 1000 },
  };
  await writeJsonFile(join(out, 'evaluation.json'), evaluation);
  return evaluation;
}

/**
 * TF-IDF and BM25 baselines: each training document scored −(its largest similarity to any
 * validation document), so a document unlike every validation text is the most suspicious. The
 * index is over the training documents (their idf), each validation text a query; validation
 * texts without words are no query. Null when no validation text has a word.
 */
export function lexicalSuspicion(
  train: readonly LexicalDocument[],
  validation: readonly string[],
): [ScoredSignal, ScoredSignal] | null {
  const queries = validation.filter((text) => lexicalWords(text).length > 0);
  if (queries.length === 0) return null;
  const index = new LexicalIndex(train);
  const position = new Map(train.map((d, i) => [d.id, i]));
  // Similarities are ≥ 0, so 0 is the largest of none.
  const tfidf = new Float64Array(train.length);
  const bm25 = new Float64Array(train.length);
  for (const query of queries) {
    for (const { id, score } of index.tfidf(query))
      tfidf[position.get(id)!] = Math.max(tfidf[position.get(id)!], score);
    for (const { id, score } of index.bm25(query))
      bm25[position.get(id)!] = Math.max(bm25[position.get(id)!], score);
  }
  return [
    {
      name: 'tfidf',
      kind: 'baseline',
      description: '−the largest TF-IDF cosine similarity to a validation document',
      scores: tfidf.map((x) => -x),
    },
    {
      name: 'bm25',
      kind: 'baseline',
      description: '−the largest BM25 score for a validation document as the query',
      scores: bm25.map((x) => -x),
    },
  ];
}

/** For each document id, the training dataset's indices of its sequences (none: it gives none). */
function documentSequences(data: TextTrainingData, ids: string[]): number[][] {
  const sequencesOf = new Map(ids.map((id) => [id, [] as number[]]));
  data.train.sequences.forEach((s, k) => {
    sequencesOf.get(s.documentId)?.push(k);
  });
  return ids.map((id) => sequencesOf.get(id)!);
}

/**
 * Trains without valuation on the sequences at `keep` (all when null) for `steps` steps; the
 * final test loss, the mean over the test tokens as the run computes it.
 */
function retrainDocuments(
  config: TrainConfig,
  data: TextTrainingData,
  initial: FloatArray,
  keep: number[] | null,
  steps: number,
): number {
  const train = keep ? new SubsetDataset(data.train.dataset, keep) : data.train.dataset;
  const model = buildTextModel(config, data);
  trainWithoutValuation(config, model, initial, train, steps);
  // Tested a batch at a time: the memory of a training step, whatever the test set's size.
  const test = data.test!;
  return new TestEvaluator(model, test.dataset, null, config.batchSize, test.weights).evaluate().loss;
}

function documentsJsonl(documents: readonly TextDocument[]): string {
  return documents.map((d) => `${JSON.stringify({ id: d.id, source: d.source, text: d.text })}\n`).join('');
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

/** Σ w·x / Σ w; null when some x is missing. */
function tokenMean(xs: (number | null)[], weights: number[]): number | null {
  if (xs.some((x) => x === null)) return null;
  let total = 0;
  let weight = 0;
  xs.forEach((x, k) => {
    total += weights[k] * x!;
    weight += weights[k];
  });
  return total / weight;
}

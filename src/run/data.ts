// The data a run config names, loaded and checked: tabular files for logreg and mlp
// (./table-data.ts, here read from disk), text for gpt (src/run/text-data.ts). Everything that can
// be wrong with the input is found here, before a run writes anything.
import { readTable } from '../data/readers/index.js';
import type { TrainConfig } from './config.js';
import { loadTrainingDataFrom, type RunInputs, type TrainingData } from './table-data.js';
import type { TextTrainingData } from './text-data.js';
import { textManifest } from './text-outputs.js';

export {
  fileInfo,
  listNames,
  loadTrainingDataFrom,
  PART,
  type RunInputs,
  runSeeds,
  splitParts,
  type TableReader,
  type TrainingData,
  tableInputs,
} from './table-data.js';

/** The tabular data of a run config, its files read from disk. */
export function loadTrainingData(config: TrainConfig): Promise<TrainingData> {
  return loadTrainingDataFrom(config, (path) => readTable(path));
}

export function textInputs(data: TextTrainingData): RunInputs {
  const docs = (n: number) => `${n} document${n === 1 ? '' : 's'}`;
  const v = data.vocabulary;
  const testUnknown = data.tokens.testUnknown ?? 0;
  return {
    train: data.train.dataset,
    validation: data.validation.dataset,
    validationIds: data.validation.ids,
    test: data.test?.dataset ?? null,
    trainInfo: data.trainInfo,
    validationInfo: data.validationInfo,
    testInfo: data.testInfo,
    features: [],
    ignoredColumns: [],
    classes: null,
    classNames: null,
    image: null,
    summary:
      `data: ${docs(data.train.documents.length)} → ${data.train.dataset.size} training sequences of ${data.train.dataset.context} tokens ` +
      `(${data.tokens.train} tokens); validation: ${docs(data.validation.documents.length)} → ${data.validation.dataset.size} sequences; ` +
      (data.test ? `test: ${docs(data.test.documents.length)} → ${data.test.dataset.size} sequences; ` : '') +
      `${v.tokenizer} tokenizer, vocabulary ${v.size}${v.original ? ` (compacted from ${v.tokenizerSize})` : ''}` +
      (data.skipped.length > 0 ? `; ${docs(data.skipped.length)} skipped` : '') +
      (data.tokens.validationUnknown > 0
        ? `; ${data.tokens.validationUnknown} validation token${data.tokens.validationUnknown === 1 ? '' : 's'} not in the training text (not scored)`
        : '') +
      (testUnknown > 0
        ? `; ${testUnknown} test token${testUnknown === 1 ? '' : 's'} not in the training text (not scored)`
        : ''),
    manifestData: {
      train: data.trainInfo,
      validation: data.validationInfo,
      trainExamples: data.train.dataset.size,
      validationExamples: data.validation.dataset.size,
      ...(data.test ? { test: data.testInfo, testExamples: data.test.dataset.size } : {}),
      features: [],
      ignoredColumns: [],
      classes: null,
      text: textManifest(data),
    },
  };
}

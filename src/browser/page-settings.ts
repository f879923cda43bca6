// The web page's settings and the defaults it starts with. Kept apart from ./page-run.ts, which
// pulls in the whole training library, so the page's own script stays small. No Node imports.
import type { TaskKind } from '../data/readers/to-dataset.js';
import { DIGITS_DEMO_DEFAULTS } from '../demo/digits-data.js';

/** Where the page's data comes from: the bundled digits, or a table the user gave. */
export type PageData =
  | { kind: 'digits' }
  | {
      kind: 'table';
      /** The file's name (its extension says its format: .csv, .jsonl, .ndjson, .parquet). */
      name: string;
      bytes: Uint8Array;
      label: string;
      /** Column of example ids; none: the row number. */
      id: string | null;
      task: TaskKind;
      /** Share of the rows held out as the validation set. */
      validationSplit: number;
      standardize: boolean;
      /** Drop rows with empty cells instead of refusing the file. */
      dropMissing: boolean;
    };

export interface PageSettings {
  data: PageData;
  model: 'logreg' | 'mlp';
  /** Hidden layer widths of the MLP. */
  hidden: number[];
  /** SGD, SGD with momentum 0.9, or Adam. */
  optimizer: 'sgd' | 'momentum' | 'adam';
  lr: number;
  epochs: number;
  batchSize: number;
  order: 1 | 2;
  seed: number;
}

/**
 * The page's digits run: `inrun demo`'s settings (MLP 784-128-10, SGD with momentum, lr 0.005,
 * batches of 128, order 2) for 4 epochs instead of 8, so that it finishes within a minute on
 * the portable kernels (AUROC for the flipped labels 0.93 at 4 epochs, 0.94 at 8).
 */
export const PAGE_DIGITS_SETTINGS: PageSettings = {
  data: { kind: 'digits' },
  model: 'mlp',
  hidden: [DIGITS_DEMO_DEFAULTS.hidden],
  optimizer: 'momentum',
  lr: DIGITS_DEMO_DEFAULTS.lr,
  epochs: 4,
  batchSize: DIGITS_DEMO_DEFAULTS.batchSize,
  order: DIGITS_DEMO_DEFAULTS.order,
  seed: DIGITS_DEMO_DEFAULTS.seed,
};

/** Images of the bundled digits the page needs per class: the demo's training and validation ones. */
export const PAGE_DIGITS_PER_CLASS =
  DIGITS_DEMO_DEFAULTS.trainPerClass + DIGITS_DEMO_DEFAULTS.validationPerClass;

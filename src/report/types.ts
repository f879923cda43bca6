import type { RunWarning, SuspectRow } from '../io/run-dir.js';
import type { TraceEntry } from '../shapley/valuer.js';

/** What an example holds, shown next to its value in the top and bottom lists. */
export type ReportContent =
  | { kind: 'text'; text: string }
  | {
      kind: 'image';
      /** Pixels, channels-first: [channels, height, width] (grey: one plane). */
      pixels: ArrayLike<number>;
      width: number;
      height: number;
      /** 1 (grey, the default) or 3 (RGB). */
      channels?: 1 | 3;
      /** The pixel value drawn black and the one drawn white (default: the image's own min and max). */
      range?: [number, number];
    };

/** One training example's values over the run (a values-file row). */
export interface ReportValue {
  id: string | number;
  group: string | null;
  timesSeen: number;
  firstOrder: number;
  /** Null for first-order runs. */
  secondOrder: number | null;
  /** The main value split by training stage. */
  stages: number[];
  normalized: number;
  /**
   * The per-example signals of the values file (src/io/values-csv.ts SIGNAL_COLUMNS); null or
   * absent where not measured (regression has no margin, runs from before 0.3.0 have none).
   */
  selfInfluence?: number | null;
  meanLoss?: number | null;
  /** Area under the margin: the mean margin of the given label over the example's occurrences. */
  aum?: number | null;
  forgettingEvents?: number | null;
  timesCorrect?: number | null;
  classValue?: number | null;
  /** Runs with valuation.validationBatch: the standard error of the main value. */
  standardError?: number | null;
  /** Runs with momentum credit: the value with its credit is firstOrder + momentumCredit. */
  momentumCredit?: number | null;
  /** Shown only for the examples listed in the report (the most harmful and most helpful). */
  content?: ReportContent;
}

/** One training document's place in a query's attribution (a row of attribution.csv). */
export interface ReportAttributionRow {
  rank: number;
  documentId: string;
  source: string;
  sequences: number;
  sequencesValued: number;
  timesSeen: number;
  /** The main value (second order when kept) for this query, and its per-step normalised sum. */
  value: number;
  normalized: number;
  bestNormalized: number | null;
  bestSequence: string | null;
  rankTfidf: number | null;
  rankBm25: number | null;
  /** The best sequence's text. */
  snippet?: ReportContent;
}

/** Text runs with per-validation values: per query, its top training documents. */
export interface ReportAttributionQuery {
  id: string;
  source: string;
  /** The query's text (shortened), when the run's data could be read. */
  text?: string;
  rows: ReportAttributionRow[];
  /** Training documents ranked for the query (the rows shown are its first). */
  documents: number;
}

/** A row of suspects.csv as the report lists it, with the example's content. */
export interface ReportSuspect extends SuspectRow {
  content?: ReportContent;
}

/** The top of suspects.csv: the rows listed (most suspicious first) out of `total`. */
export interface ReportSuspects {
  /** The signals of the rank columns, in the file's order. */
  signals: string[];
  rows: ReportSuspect[];
  /** Rows in suspects.csv (valued examples). */
  total: number;
}

/**
 * The trace fields the report uses (a TraceEntry has them all), and the test evaluation of runs
 * with a test set (absent without one; null on steps not evaluated).
 */
export type ReportTraceRow = { testLoss?: number | null; testAccuracy?: number | null } & Pick<
  TraceEntry,
  | 'step'
  | 'lr'
  | 'trainLoss'
  | 'validationLossBefore'
  | 'validationLossAfter'
  | 'firstOrderSum'
  | 'firstOrderUtility'
  | 'secondOrderSum'
  | 'secondOrderUtility'
  | 'efficiencyResidual'
  | 'actualUtility'
  | 'taylorError'
>;

/** One retraining in a curation comparison. */
export interface CurationRun {
  /** 'original', 'curated' or 'random'. */
  name: string;
  /** Training examples it used. */
  examples: number;
  /** Examples removed from the original training set. */
  removed: number;
  /** Validation loss after k steps at index k (index 0: before the first step). */
  validationLoss: number[];
  finalValidationLoss: number;
  /** The lowest validation loss of the curve. */
  bestValidationLoss: number;
  /** First k at which validationLoss[k] ≤ the original run's final validation loss; null if never. */
  stepsToTarget: number | null;
  /** Runs with a held-out test set: its evaluations and how they compare (see CurationTestRun). */
  test?: CurationTestRun;
  /** Its run directory (curated and random retrainings). */
  runDir?: string;
  /** Its training data file (curated and random retrainings). */
  dataFile?: string;
}

/** The held-out test evaluations of one run of a curation comparison. */
export interface CurationTestRun {
  /** Steps after which the test set was evaluated (testEvery, and the last step): the same in every run. */
  step: number[];
  /** Mean test loss after step[i] steps. */
  loss: number[];
  /** Test accuracy after step[i] steps; null for regression and text runs. */
  accuracy: (number | null)[];
  finalLoss: number;
  bestLoss: number;
  finalAccuracy: number | null;
  bestAccuracy: number | null;
  /** The first evaluated step at which the test loss ≤ the original run's final test loss; null if never. */
  stepsToTarget: number | null;
}

/** `comparison.json` of `inrun curate`: original vs curated vs random-removal retraining. */
export interface CurationComparison {
  format: 'inrun-curation';
  formatVersion: 1;
  /** The original run directory. */
  runDir: string;
  rule: {
    kind: 'below' | 'percentile' | 'negatives';
    /** --below: the value threshold; --percentile: p. */
    threshold?: number;
    description: string;
  };
  /** Which value ranked the examples: 'second_order' or 'first_order'. */
  valueColumn: 'second_order' | 'first_order';
  totalExamples: number;
  removed: number;
  /** Σ value of the removed examples. */
  removedValue: number;
  /** Seed of the random removal. */
  randomSeed: number;
  /** Every retraining ran this many optimizer steps (the original run's count). */
  steps: number;
  /** The original run's final validation loss, the target of `stepsToTarget`. */
  targetValidationLoss: number;
  /**
   * What the comparison is judged on: 'test', the held-out test set (each run's `test`), or
   * 'validation', the set the values were computed against (a circular comparison: the values were
   * chosen to lower exactly that loss). Absent in comparisons written before test sets existed (validation).
   */
  judgedOn?: 'test' | 'validation';
  /** Runs with a test set: where its rows came from and the original's final test figures (the targets). */
  test?: {
    /** The test file every run was evaluated on (a test split of the original is written out as a file). */
    file: string;
    /** 'file' (data.test) or 'split' (data.testSplit of the original training file). */
    source: 'file' | 'split';
    examples: number;
    targetLoss: number;
    targetAccuracy: number | null;
  };
  /** Something the reader must know about the comparison (e.g. that it is judged on the validation set). */
  notice?: string;
  runs: { original: CurationRun; curated: CurationRun; random: CurationRun };
}

export interface ReportInput {
  title: string;
  /** A line under the title (e.g. the run directory). */
  subtitle?: string;
  /** The run's settings, shown as JSON. */
  config?: unknown;
  order: 1 | 2;
  /** First steps of stages 2..k (empty for one stage). */
  stageStarts: number[];
  values: ReportValue[];
  trace: ReportTraceRow[];
  curation?: CurationComparison | null;
  /** How many of the most harmful and of the most helpful examples to list (default 12). */
  topCount?: number;
  /** Extra remarks shown at the top (e.g. why example contents are missing). */
  notes?: string[];
  /** Warnings about the run's values (manifest.json `warnings`), shown first in a box of their own. */
  warnings?: RunWarning[];
  /** Classification runs: the most suspicious examples of suspects.csv; null or absent: no section. */
  suspects?: ReportSuspects | null;
  /** Text runs with per-validation values: attribution.csv per query; null or absent: no section. */
  attribution?: ReportAttributionQuery[] | null;
}

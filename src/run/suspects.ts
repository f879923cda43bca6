// suspects.csv: the training examples of a classification run ordered from most to least suspicious
// (mislabelled, atypical), with what the final model predicts for them and where every signal of
// the run ranks them, so a user can review the top rows and see whether the signals agree.
import type { Dataset } from '../data/dataset.js';
import { csvField } from '../io/values-csv.js';
import type { Sequential } from '../models/sequential.js';
import type { LedgerEntry, ValueLedger } from '../shapley/ledger.js';

/** One signal as a suspicion score: higher = more suspicious; NaN where the signal is missing. */
export interface SuspectSignal {
  /** Column suffix in suspects.csv (`rank_<name>`) and the name `inrun evaluate` reports. */
  name: string;
  score: (entry: LedgerEntry, ledger: ValueLedger) => number;
}

/**
 * The run's signals as suspicion scores, the default first. The default, the area under the margin,
 * found flipped labels best among the in-run signals on the bundled digits under `inrun evaluate`
 * (docs/cli.md gives the measured AUROCs of every signal); a low value ranks an example as harmful.
 */
export const SUSPECT_SIGNALS: readonly SuspectSignal[] = [
  { name: 'aum', score: (e) => -e.marginSum / e.timesSeen },
  { name: 'mean_loss', score: (e) => e.lossSum / e.timesSeen },
  { name: 'self_influence', score: (e) => e.selfInfluence },
  { name: 'value', score: (e, ledger) => -ledger.value(e) },
  { name: 'normalized', score: (e) => -e.normalized },
  // Toneva et al. rank examples never classified correctly as the most forgettable of all.
  {
    name: 'forgetting_events',
    score: (e) => (e.timesCorrect === 0 ? Number.POSITIVE_INFINITY : e.forgettingEvents),
  },
];

export const DEFAULT_SUSPECT_SIGNAL = SUSPECT_SIGNALS[0].name;

export interface SuspectsInput {
  model: Sequential;
  /** Weights to predict with (the run's final weights). */
  params: Float64Array | Float32Array;
  /** The training data the ledger's ids come from. */
  train: Dataset;
  ledger: ValueLedger;
  /** Label names when the labels were given as names; class k prints as classNames[k]. */
  classNames: string[] | null;
}

/**
 * 1-based ranks of `scores` from most suspicious (1) down, NaN scores last; ties keep the given
 * order, so equal runs give equal files.
 */
export function suspicionRanks(scores: ArrayLike<number>): Int32Array {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => {
    const x = scores[a];
    const y = scores[b];
    if (Number.isNaN(x) || Number.isNaN(y)) return Number(Number.isNaN(x)) - Number(Number.isNaN(y)) || a - b;
    return y - x || a - b;
  });
  const ranks = new Int32Array(scores.length);
  order.forEach((i, r) => {
    ranks[i] = r + 1;
  });
  return ranks;
}

/** Each example's predicted class and its probability under the model at `params`. */
export function predictions(
  model: Sequential,
  params: Float64Array | Float32Array,
  data: Dataset,
  indices: number[],
): { predicted: Int32Array; confidence: Float64Array } {
  const predicted = new Int32Array(indices.length);
  const confidence = new Float64Array(indices.length);
  const chunk = 256;
  for (let start = 0; start < indices.length; start += chunk) {
    const part = indices.slice(start, start + chunk);
    const batch = data.batch(part, model.dtype);
    const logits = model.forward(batch.input, batch.targets, params).lossTape.output.data;
    const width = model.outputShape.width;
    part.forEach((_, r) => {
      const at = start + r;
      if (width === 1) {
        const p = 1 / (1 + Math.exp(-logits[r]));
        predicted[at] = p >= 0.5 ? 1 : 0;
        confidence[at] = Math.max(p, 1 - p);
        return;
      }
      let best = 0;
      for (let k = 1; k < width; k++) if (logits[r * width + k] > logits[r * width + best]) best = k;
      let total = 0;
      for (let k = 0; k < width; k++) total += Math.exp(logits[r * width + k] - logits[r * width + best]);
      predicted[at] = best;
      confidence[at] = 1 / total;
    });
  }
  return { predicted, confidence };
}

/**
 * suspects.csv: `rank,id,label,predicted,confidence,rank_<signal>…` for every valued training
 * example, ordered by the default signal (rank = its rank there). Examples never in a batch have
 * no values and are not listed.
 */
export function suspectsCsv(input: SuspectsInput): string {
  const { model, train, ledger } = input;
  const entries = ledger.all();
  const indexOf = new Map<string | number, number>();
  for (let i = 0; i < train.size; i++) indexOf.set(train.id(i), i);
  const indices = entries.map((e) => indexOf.get(e.id)!);
  const labels = train.batch(indices, model.dtype).targets;
  const { predicted, confidence } = predictions(model, input.params, train, indices);
  const ranks = SUSPECT_SIGNALS.map((signal) => suspicionRanks(entries.map((e) => signal.score(e, ledger))));
  const name = (k: number) => (input.classNames ? input.classNames[k] : k);
  const rows = entries.map((e, r) => [
    ranks[0][r],
    String(e.id),
    name(Math.round(labels[r])),
    name(predicted[r]),
    confidence[r],
    ...ranks.map((rank) => rank[r]),
  ]);
  rows.sort((a, b) => (a[0] as number) - (b[0] as number));
  const header = [
    'rank',
    'id',
    'label',
    'predicted',
    'confidence',
    ...SUSPECT_SIGNALS.map((s) => `rank_${s.name}`),
  ];
  return `${[header, ...rows].map((row) => row.map(csvField).join(',')).join('\n')}\n`;
}

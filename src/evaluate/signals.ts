// What tables and text share in `inrun evaluate`: signals scored against the planted faults, the
// removal curves measured by retraining on what a signal keeps, and the retraining itself.
import type { Dataset } from '../data/dataset.js';
import { loadModelTensors, readSafetensors } from '../io/safetensors.js';
import type { FloatArray } from '../kernels/types.js';
import type { Sequential } from '../models/sequential.js';
import { buildOptimizer } from '../run/build.js';
import type { TrainConfig } from '../run/config.js';
import { runSeeds } from '../run/data.js';
import { Trainer } from '../train/trainer.js';
import { fail } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { type DetectionSummary, detectionScores, removalOrder } from './detection.js';
import type { FaultKind } from './faults.js';

/** One score per training row (text: per training document); higher = more suspicious. */
export interface ScoredSignal {
  name: string;
  kind: 'in-run' | 'baseline';
  /** What the score is. */
  description: string;
  scores: Float64Array;
}

export interface SignalResult extends DetectionSummary {
  kind: 'in-run' | 'baseline';
  /** What the score is, higher = more suspicious. */
  description: string;
  /** AUROC per planted fault kind (that kind against the clean rows), when several kinds were planted. */
  aurocByFault: Partial<Record<FaultKind, number>>;
}

/** Where a removal curve starts: what a retraining measured at the end. */
export interface RemovalBaseline {
  testLoss: number;
  testAccuracy: number;
}

/** A removal curve's point: the signal's most suspicious rows removed, and the retraining measured. */
export interface RemovalPoint extends RemovalBaseline {
  fraction: number;
  removed: number;
  /** Of the removed rows, how many were planted faults. */
  faultsRemoved: number;
}

/** Text runs: the test loss is the mean over the test tokens, and there is no accuracy. */
export type TextRemovalBaseline = Omit<RemovalBaseline, 'testAccuracy'>;

/** A text removal curve's point; the rows removed are training documents. */
export type TextRemovalPoint = Omit<RemovalPoint, 'testAccuracy'>;

/**
 * AUROC, average precision and precision at k (k = the number of planted faults) of every signal,
 * and with several kinds planted its AUROC for each kind against the clean rows alone.
 */
export function detectionResults(signals: ScoredSignal[], faults: (FaultKind | null)[]): SignalResult[] {
  const positives = faults.map((kind) => kind !== null);
  const faultCount = positives.filter(Boolean).length;
  const kinds = [...new Set(faults.filter((k): k is FaultKind => k !== null))];
  const summaries = detectionScores(signals, positives, [faultCount]);
  return summaries.map((summary, s) => ({
    ...summary,
    kind: signals[s].kind,
    description: signals[s].description,
    aurocByFault:
      kinds.length > 1
        ? Object.fromEntries(
            kinds.map((kind) => {
              const rows = faults.flatMap((k, i) => (k === null || k === kind ? [i] : []));
              const only = detectionScores(
                [{ name: signals[s].name, scores: rows.map((i) => signals[s].scores[i]) }],
                rows.map((i) => faults[i] === kind),
                [1],
              )[0];
              return [kind, only.auroc];
            }),
          )
        : {},
  }));
}

/** A uniform random score per row: the chance level every other signal is read against. */
export function randomSignal(n: number, seed: number): ScoredSignal {
  const rng = new Rng(seed ^ 0x5eed);
  return {
    name: 'random',
    kind: 'baseline',
    description: 'a random score (chance)',
    scores: Float64Array.from({ length: n }, () => rng.uniform()),
  };
}

/** The error for in-run signals missing on some rows: those rows were never trained on. */
export function failUntrained(missing: number, what: string): never {
  return fail(
    `inrun evaluate: ${missing} ${what} were never in a batch, so they have no values; train at least one epoch (set epochs, not steps)`,
  );
}

/**
 * The signals the removal curves are measured for. Names the user gave must have been measured;
 * the defaults are kept where they were (a run without per-example signals has no mean_loss).
 */
export function curveSignals(names: string[], given: boolean, signals: ScoredSignal[]): string[] {
  const measured = new Set(signals.map((s) => s.name));
  if (!given) return names.filter((name) => measured.has(name));
  for (const name of names)
    if (!measured.has(name))
      fail(
        `--curves: the signal "${name}" was not measured on this data (${signals.map((s) => s.name).join(', ')} were)`,
      );
  return names;
}

/**
 * For each named signal and fraction: drop the signal's ⌈fraction·n⌉ most suspicious rows,
 * retrain on the rest (`retrain` gets the kept positions, ascending) and measure.
 */
export function removalCurves<Metrics extends object>(
  signals: ScoredSignal[],
  names: string[],
  fractions: number[],
  faults: (FaultKind | null)[],
  retrain: (keep: number[]) => Metrics,
): { name: string; points: (Metrics & { fraction: number; removed: number; faultsRemoved: number })[] }[] {
  const n = faults.length;
  return names.map((name) => {
    const scores = signals.find((s) => s.name === name)!.scores;
    return {
      name,
      points: fractions.map((fraction) => {
        const drop = removalOrder(scores, fraction);
        const dropped = new Set(drop);
        const keep = Array.from({ length: n }, (_, i) => i).filter((i) => !dropped.has(i));
        const metrics = retrain(keep);
        let faultsRemoved = 0;
        for (const i of drop) if (faults[i] !== null) faultsRemoved++;
        return { fraction, removed: drop.length, ...metrics, faultsRemoved };
      }),
    };
  });
}

/**
 * The run's initial weights: a freshly built model's seeded initialisation, or the config's
 * initWeights loaded into it.
 */
export async function initialWeights(config: TrainConfig, model: Sequential): Promise<FloatArray> {
  if (config.initWeights !== undefined)
    loadModelTensors(model, (await readSafetensors(config.initWeights)).tensors, config.initWeights);
  return model.params.slice();
}

/**
 * Trains `model` from `initial` on `train` without valuation, with the run's optimizer, batch size
 * (at most the data's size) and data-order seed, for `steps` steps.
 */
export function trainWithoutValuation(
  config: TrainConfig,
  model: Sequential,
  initial: FloatArray,
  train: Dataset,
  steps: number,
): void {
  model.params.set(initial);
  const trainer = new Trainer({
    model,
    optimizer: buildOptimizer(config),
    data: train,
    batchSize: Math.min(config.batchSize, train.size),
    steps,
    seed: runSeeds(config.seed).order,
  });
  while (!trainer.done) trainer.runStep();
}

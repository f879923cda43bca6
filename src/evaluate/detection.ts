/**
 * Scoring bad-data detectors: how well each signal (a valuation method's negated values, a loss,
 * a self-influence) ranks the planted faults above the clean rows, and which rows to drop.
 */
import { auroc, averagePrecision, precisionAtK } from '../metrics.js';
import { fail } from '../util/errors.js';

export interface DetectionSignal {
  name: string;
  /** One score per example; higher = more suspicious. */
  scores: ArrayLike<number>;
}

export interface DetectionSummary {
  name: string;
  auroc: number;
  averagePrecision: number;
  /** Precision among the k most suspicious examples, for each requested k. */
  precisionAtK: Record<number, number>;
}

/**
 * AUROC, average precision and precision@k of every signal for finding `positives` (the faulted
 * examples), in the order the signals were given. Ties are scored by their expected value over
 * random tie orders (see src/metrics.ts).
 */
export function detectionScores(
  signals: readonly DetectionSignal[],
  positives: ArrayLike<boolean>,
  ks: readonly number[],
): DetectionSummary[] {
  const n = positives.length;
  let faulty = 0;
  for (let i = 0; i < n; i++) if (positives[i]) faulty++;
  if (faulty === 0) fail('detectionScores: no example is marked as faulty; there is nothing to detect');
  if (faulty === n)
    fail('detectionScores: every example is marked as faulty; there are no clean ones to tell apart');
  for (const k of ks)
    if (!Number.isInteger(k) || k < 1 || k > n)
      fail(`detectionScores: k = ${k} must be an integer from 1 to the ${n} examples`);
  return signals.map(({ name, scores }) => {
    if (scores.length !== n)
      fail(`detectionScores: signal "${name}" has ${scores.length} scores for ${n} examples`);
    for (let i = 0; i < n; i++)
      if (Number.isNaN(scores[i])) fail(`detectionScores: signal "${name}" scores example ${i} as NaN`);
    const atK: Record<number, number> = {};
    for (const k of ks) atK[k] = precisionAtK(scores, positives, k);
    return {
      name,
      auroc: auroc(scores, positives),
      averagePrecision: averagePrecision(scores, positives),
      precisionAtK: atK,
    };
  });
}

/**
 * The ⌈fraction·n⌉ most suspicious examples (highest scores first, equal scores by lower index):
 * what a curation step would remove. fraction·n is rounded to 12 significant digits before the
 * ceiling, so 0.07·100 = 7.000000000000001 removes 7 examples, not 8.
 */
export function removalOrder(scores: ArrayLike<number>, fraction: number): Int32Array {
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1))
    fail(`removalOrder: fraction must be a number in [0, 1], got ${fraction}`);
  const n = scores.length;
  for (let i = 0; i < n; i++) if (Number.isNaN(scores[i])) fail(`removalOrder: score ${i} is NaN`);
  const count = Math.min(n, Math.ceil(Number((fraction * n).toPrecision(12))));
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
  return Int32Array.from(order.slice(0, count));
}

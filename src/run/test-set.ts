// The held-out test set of a run (data.test or data.testSplit): evaluated at the weights after
// some steps, never used for training or for the values. Values measure the decrease of the
// validation loss, so judging curation on the validation set would be circular; the test set is
// what `inrun curate` judges on.
import type { Dataset } from '../data/dataset.js';
import type { Sequential } from '../models/sequential.js';
import type { TrainConfig } from './config.js';

/** Evaluations a run gets by default (plus the last step when the step count is not a multiple). */
export const DEFAULT_TEST_EVALUATIONS = 20;

/** Steps between test evaluations: config.testEvery, or ⌈totalSteps / 20⌉ for about 20 of them. */
export function testInterval(config: Pick<TrainConfig, 'testEvery'>, totalSteps: number): number {
  return config.testEvery ?? Math.max(1, Math.ceil(totalSteps / DEFAULT_TEST_EVALUATIONS));
}

/**
 * Whether the trace row of `step` (0-based; its weights are those after step + 1 steps) gets a
 * test evaluation: after every `every`-th step, and after the last.
 */
export function isTestStep(step: number, every: number, totalSteps: number): boolean {
  return (step + 1) % every === 0 || step === totalSteps - 1;
}

export interface TestMetrics {
  /** Mean per-example loss; with weights the weighted mean (text: the mean over scored tokens). */
  loss: number;
  /** Fraction of examples classified right (classification: arg-max class; binary: logit > 0); null for regression and text. */
  accuracy: number | null;
}

/**
 * Evaluates a model on a test set at its current weights. The set goes through the model in
 * chunks of at most `chunk` examples, so the evaluation never holds more activations than a pass
 * of that many examples; per-example losses do not depend on the chunking.
 */
export class TestEvaluator {
  constructor(
    private readonly model: Sequential,
    private readonly data: Dataset,
    /** Whether the model's outputs are classes to count hits of: classification (K logits) or binary (one logit). */
    private readonly task: 'classification' | 'binary' | null,
    private readonly chunk: number,
    /** Per-example loss weights (text: each sequence's scored tokens); null: the plain mean. */
    private readonly weights: Float64Array | null = null,
  ) {
    if (data.size === 0) throw new Error('TestEvaluator: the test set is empty');
    if (weights && weights.length !== data.size)
      throw new Error(`TestEvaluator: ${weights.length} weights for ${data.size} examples`);
  }

  evaluate(): TestMetrics {
    const n = this.data.size;
    const weights = this.weights;
    let lossSum = 0;
    let weightSum = 0;
    let hits = 0;
    for (let start = 0; start < n; start += this.chunk) {
      const indices = Array.from({ length: Math.min(this.chunk, n - start) }, (_, k) => start + k);
      const { input, targets } = this.data.batch(indices, this.model.dtype);
      const pass = this.model.forward(input, targets);
      pass.losses.forEach((loss, k) => {
        const w = weights ? weights[start + k] : 1;
        lossSum += w * loss;
        weightSum += w;
      });
      if (this.task !== null) hits += countHits(pass.lossTape.output.data, targets, input.n, this.task);
    }
    return { loss: lossSum / weightSum, accuracy: this.task === null ? null : hits / n };
  }
}

/** Examples whose prediction matches the target: arg-max of K logits, or the sign of one logit. */
function countHits(
  output: ArrayLike<number>,
  targets: ArrayLike<number>,
  n: number,
  task: 'classification' | 'binary',
): number {
  let hits = 0;
  if (task === 'binary') {
    for (let i = 0; i < n; i++) if (output[i] > 0 === targets[i] > 0.5) hits++;
    return hits;
  }
  const classes = output.length / n;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (output[i * classes + k] > output[i * classes + best]) best = k;
    if (best === targets[i]) hits++;
  }
  return hits;
}

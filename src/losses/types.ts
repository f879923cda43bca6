import type { FloatArray } from '../kernels/types.js';
import type { Activation, PassContext } from '../layers/types.js';

/** Class indices (cross-entropy) or real-valued targets (binary logistic, MSE), one per output token. */
export type Targets = Int32Array | FloatArray;

export interface LossTape {
  output: Activation;
  targets: Targets;
  /** Cached link-function values (softmax or sigmoid probabilities) where the loss has one. */
  probabilities?: FloatArray;
  /** Per-token loss weights within each example (masking and the token reduction). */
  tokenWeights?: Float64Array;
}

/**
 * A per-example loss. Example i's loss combines its tokens' losses (see each loss); backward returns, for every
 * example, the gradient of *its own* loss (not of a batch mean) — the ghost products need each
 * example's signal separately, and the optimizer applies the batch reduction afterwards.
 */
export interface Loss {
  readonly kind: string;
  /**
   * Throws a clear error unless `targets` suit n examples of [tokens, width] model outputs.
   * Messages count examples from `firstExample` so a caller checking in chunks names the right one.
   */
  checkTargets(
    targets: Targets,
    n: number,
    tokens: number,
    width: number,
    where: string,
    firstExample?: number,
  ): void;
  forward(ctx: PassContext, output: Activation, targets: Targets, tape: LossTape): Float64Array;
  backward(ctx: PassContext, tape: LossTape): Activation;
  /** R{dL/doutput} given R{output}: the loss's own Hessian applied to the direction. */
  rBackward(ctx: PassContext, tape: LossTape, rOutput: Activation): Activation;
}

/** "example 7" or, for sequences, "example 7, token 3", for the target at flat index `e`. */
export function position(firstExample: number, e: number, tokens: number): string {
  const example = firstExample + Math.floor(e / tokens);
  return tokens === 1 ? `example ${example}` : `example ${example}, token ${e % tokens}`;
}

import type { FloatArray } from '../kernels/types.js';
import { checkKnownKeys, checkNumber } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import {
  type Activation,
  type Layer,
  type LayerTape,
  outputActivation,
  type ParamSlot,
  type PassContext,
  passBuffers,
  zeroActivation,
} from './types.js';

/** Dropout's tape: the multipliers m/(1 − p) of this pass, or null when it ran without dropout. */
type DropoutTape = LayerTape & { mask?: FloatArray | null };

export interface DropoutOptions {
  /** Seed of the masks (default 0); give each Dropout of a model its own. */
  seed?: number;
}

/** Mixes 32-bit words into one (murmur3's finaliser after each word). */
function mix(...words: number[]): number {
  let h = 0x9e3779b9;
  for (const w of words) {
    h = Math.imul(h ^ (w >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/**
 * Inverted dropout, as PyTorch's nn.Dropout(p): in a training pass each value is zeroed with
 * probability p and the rest scaled by 1/(1 − p); otherwise (validation, Hessian-vector
 * products, evaluation: any pass without `training` in its PassContext) it is the identity.
 *
 * Masks are drawn per example from (seed, step, position of the example in the batch), so a run
 * is reproducible and resumable, and masks differ from step to step. The pass's mask stays on its
 * tape: backward (dx = m ⊙ dy), the ghost products (which read the G and A this layer produced)
 * and the R-operator (R{y} = m ⊙ R{x}) of the same pass all see the same mask. Values computed
 * for a training step are therefore the exact values of the step taken with its masks.
 * Without `step` in the context, consecutive training passes count themselves.
 */
export class Dropout implements Layer {
  readonly kind = 'dropout';
  params: ParamSlot[] = [];
  readonly seed: number;
  private passes = 0;

  constructor(
    readonly p: number,
    options: DropoutOptions = {},
  ) {
    checkNumber('Dropout: p', p, { min: 0, max: 1 });
    checkKnownKeys('Dropout', options, ['seed']);
    this.seed = checkNumber('Dropout: seed', options.seed ?? 0, { integer: true });
  }

  paramSpecs() {
    return [];
  }

  outputShape(input: { tokens: number; width: number }) {
    return input;
  }

  /** This pass's multipliers for a batch of n examples of `per` values each. */
  private drawMask(ctx: PassContext, n: number, per: number): FloatArray {
    const key = ctx.step ?? this.passes++;
    const mask = passBuffers(ctx).uninitialized(ctx.dtype, n * per);
    const keep = this.p < 1 ? 1 / (1 - this.p) : 0;
    const threshold = this.p * 4294967296; // drop where a uniform 32-bit draw is below p·2³²
    for (let i = 0; i < n; i++) {
      const rng = new Rng(mix(this.seed, Math.floor(key / 4294967296), key, i));
      for (let e = i * per; e < (i + 1) * per; e++) mask[e] = rng.nextUint32() < threshold ? 0 : keep;
    }
    return mask;
  }

  private static scaled(ctx: PassContext, a: Activation, mask: FloatArray): Activation {
    const out = outputActivation(ctx, a.n, a.tokens, a.width);
    for (let e = 0; e < mask.length; e++) out.data[e] = a.data[e] * mask[e];
    return out;
  }

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    const t = tape as DropoutTape;
    t.input = x;
    t.mask = ctx.training && this.p > 0 ? this.drawMask(ctx, x.n, x.tokens * x.width) : null;
    t.output = t.mask ? Dropout.scaled(ctx, x, t.mask) : x;
    return t.output;
  }

  /** The mask of the tape's forward pass (null: that pass ran without dropout). */
  maskOf(tape: LayerTape): FloatArray | null {
    const mask = (tape as DropoutTape).mask;
    if (mask === undefined) throw new Error('internal: forward has not run on this tape');
    return mask;
  }

  backward(ctx: PassContext, dy: Activation, tape: LayerTape, needInputGrad: boolean): Activation | null {
    tape.outputGrad = dy;
    if (!needInputGrad) return null;
    const mask = this.maskOf(tape);
    return mask ? Dropout.scaled(ctx, dy, mask) : dy;
  }

  rForward(ctx: PassContext, _v: FloatArray, tape: LayerTape, rx: Activation | null): Activation {
    const mask = this.maskOf(tape);
    const y = tape.output;
    const ry = !rx ? zeroActivation(ctx, y.n, y.tokens, y.width) : mask ? Dropout.scaled(ctx, rx, mask) : rx;
    tape.rInput = rx;
    tape.rOutput = ry;
    return ry;
  }

  rBackward(
    ctx: PassContext,
    _v: FloatArray,
    tape: LayerTape,
    rdy: Activation,
    _hv: FloatArray,
    needInputGrad: boolean,
  ): Activation | null {
    if (!needInputGrad) return null;
    const mask = this.maskOf(tape);
    return mask ? Dropout.scaled(ctx, rdy, mask) : rdy;
  }
}

import type { FloatArray } from '../kernels/types.js';
import { checkKnownKeys, checkNumber, describe, fail } from '../util/errors.js';
import {
  type AffineParts,
  type AffineRows,
  affineRowDots,
  affineRowDotsEach,
  affineRowSelfDots,
} from './affine-rows.js';
import type { ShapeWithImage } from './conv2d.js';
import { Scratch } from './scratch.js';
import {
  type Activation,
  type ExampleRange,
  type Layer,
  type LayerTape,
  outputActivation,
  type ParamSlot,
  type ParamSpec,
  type PassContext,
  passBuffers,
  slotView,
} from './types.js';

/**
 * What GroupNorm keeps on its tape besides A and G (a "row" is one group of one example: its
 * S = (C/groups)·H·W values, contiguous in the channels-first layout):
 * - normalized: x̂ = (x − μ)·r, [n, C·H·W];
 * - rstd: r = 1/√(var + eps) per row, [n·groups] in float64;
 * - rNormalized: R{x̂} from the latest rForward (null when its input was data);
 * - rShrink: c = −R{r}/r = r·mean(x̂ ⊙ R{x}) per row (null when R{x̂} is).
 */
type GroupNormTape = LayerTape & {
  normalized?: FloatArray;
  rstd?: Float64Array;
  rNormalized?: FloatArray | null;
  rShrink?: Float64Array | null;
};

export interface GroupNormOptions {
  eps?: number;
  /** Learn a per-channel scale γ (from 1) and shift β (from 0); default true. */
  affine?: boolean;
}

/**
 * PyTorch's nn.GroupNorm(groups, channels): the channels of each example split into `groups`
 * groups; each group is normalised over its channels × H × W with its own mean and (biased)
 * variance, then y = γ_c x̂ + β_c per channel. Statistics are per example, so examples never mix
 * (unlike BatchNorm) and per-example gradients are well defined: γ_i,c = Σ_hw G_i ⊙ x̂_i and
 * β_i,c = Σ_hw G_i over channel c's plane, only 2C numbers, formed outright by the ghost routes.
 * GroupNorm(1, C) normalises each example over all its values (LayerNorm over [C, H, W] with
 * per-channel γ, β); GroupNorm(C, C) is instance norm.
 *
 * Works on any input whose width is a multiple of C (it needs no image height and width; an
 * image shape passes through). Each row's map x ↦ x̂ has the symmetric Jacobian
 * J = r(I − 11ᵀ/S − x̂x̂ᵀ/S), as LayerNorm's, which backward and the R-operator use.
 */
export class GroupNorm implements Layer {
  readonly kind = 'group-norm';
  params: ParamSlot[] = [];
  private readonly scratch = new Scratch();
  readonly eps: number;
  readonly affine: boolean;

  constructor(
    readonly groups: number,
    readonly channels: number,
    options: GroupNormOptions = {},
  ) {
    checkKnownKeys('GroupNorm', options, ['eps', 'affine']);
    if (!Number.isInteger(channels) || channels < 1)
      fail(`GroupNorm: channels must be a positive integer, got ${describe(channels)}`);
    if (!Number.isInteger(groups) || groups < 1 || channels % groups !== 0)
      fail(
        `GroupNorm: groups must be a positive integer dividing channels (${channels}), got ${describe(groups)}`,
      );
    this.eps = checkNumber('GroupNorm: eps', options.eps ?? 1e-5, { min: 0 });
    this.affine = options.affine ?? true;
    if (typeof this.affine !== 'boolean')
      fail(`GroupNorm: affine must be a boolean, got ${describe(this.affine)}`);
  }

  paramSpecs(): ParamSpec[] {
    if (!this.affine) return [];
    return [
      { name: 'weight', shape: [this.channels], init: { kind: 'constant', value: 1 } },
      { name: 'bias', shape: [this.channels], init: { kind: 'constant', value: 0 } },
    ];
  }

  outputShape(input: ShapeWithImage) {
    if (input.tokens !== 1)
      fail(
        `GroupNorm(${this.groups}, ${this.channels}) takes one image (or channels-first feature map) per example, tokens = 1; got ${input.tokens} tokens`,
      );
    if (input.width % this.channels !== 0 || (input.image && input.image.channels !== this.channels))
      fail(
        `GroupNorm(${this.groups}, ${this.channels}) got inputs of width ${input.width}` +
          (input.image
            ? ` (images [${input.image.channels}, ${input.image.height}, ${input.image.width}])`
            : '') +
          `, expected ${this.channels} channels`,
      );
    return input;
  }

  private gamma(flat: FloatArray): FloatArray | null {
    return this.affine ? slotView(flat, this.params[0]) : null;
  }

  private beta(flat: FloatArray): FloatArray | null {
    return this.affine ? slotView(flat, this.params[1]) : null;
  }

  /** Values per channel plane (H·W), checked against the input. */
  private plane(x: Activation): number {
    if (x.tokens !== 1 || x.width % this.channels !== 0)
      this.outputShape({ tokens: x.tokens, width: x.width });
    return x.width / this.channels;
  }

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    const HW = this.plane(x);
    const C = this.channels;
    const cg = C / this.groups;
    const S = cg * HW;
    const rows = x.n * this.groups;
    const xd = x.data;
    const y = outputActivation(ctx, x.n, x.tokens, x.width);
    const xhat = passBuffers(ctx).uninitialized(ctx.dtype, xd.length);
    const rstd = passBuffers(ctx).uninitialized('float64', rows);
    const gamma = this.gamma(ctx.params);
    const beta = this.beta(ctx.params);
    for (let row = 0; row < rows; row++) {
      const base = row * S;
      let mu = 0;
      for (let e = 0; e < S; e++) mu += xd[base + e];
      mu /= S;
      let ms = 0;
      for (let e = 0; e < S; e++) ms += (xd[base + e] - mu) ** 2;
      const r = 1 / Math.sqrt(ms / S + this.eps);
      rstd[row] = r;
      const c0 = (row % this.groups) * cg;
      for (let k = 0; k < cg; k++) {
        const g = gamma ? gamma[c0 + k] : 1;
        const b = beta ? beta[c0 + k] : 0;
        const cb = base + k * HW;
        for (let p = 0; p < HW; p++) {
          const h = (xd[cb + p] - mu) * r;
          xhat[cb + p] = h;
          y.data[cb + p] = g * h + b;
        }
      }
    }
    const t = tape as GroupNormTape;
    t.input = x;
    t.output = y;
    t.normalized = xhat;
    t.rstd = rstd;
    return y;
  }

  backward(ctx: PassContext, dy: Activation, tape: LayerTape, needInputGrad: boolean): Activation | null {
    tape.outputGrad = dy;
    if (!needInputGrad) return null;
    // Per row, with h = γ ⊙ G: dx = r (h − mean(h) − x̂ mean(h ⊙ x̂))  (= J h).
    const { xhat, rstd } = saved(tape);
    const HW = this.plane(dy);
    const cg = this.channels / this.groups;
    const S = cg * HW;
    const gamma = this.gamma(ctx.params);
    const gd = dy.data;
    const dx = outputActivation(ctx, dy.n, dy.tokens, dy.width);
    for (let row = 0; row < rstd.length; row++) {
      const base = row * S;
      const c0 = (row % this.groups) * cg;
      let a = 0;
      let b = 0;
      for (let k = 0; k < cg; k++) {
        const g = gamma ? gamma[c0 + k] : 1;
        for (let e = base + k * HW; e < base + (k + 1) * HW; e++) {
          const h = g * gd[e];
          a += h;
          b += h * xhat[e];
        }
      }
      a /= S;
      b /= S;
      const r = rstd[row];
      for (let k = 0; k < cg; k++) {
        const g = gamma ? gamma[c0 + k] : 1;
        for (let e = base + k * HW; e < base + (k + 1) * HW; e++)
          dx.data[e] = r * (g * gd[e] - a - xhat[e] * b);
      }
    }
    return dx;
  }

  /**
   * Per-example gradients of examples [start, end), [count, 2C] in float64, each row laid out
   * [γ_i (C), β_i (C)] with γ_i,c = Σ_hw G ⊙ x̂ and β_i,c = Σ_hw G over channel c's plane. In
   * scratch buffer `name`.
   */
  private perExampleGradients(
    tape: LayerTape,
    start = 0,
    end = tape.input.n,
    name = 'perExample',
  ): Float64Array {
    const dy = tape.outputGrad;
    if (!dy) throw new Error('internal: backward has not run on this tape');
    const { xhat } = saved(tape);
    const C = this.channels;
    const HW = this.plane(dy);
    const gd = dy.data;
    const per = this.scratch.take(name, 'float64', (end - start) * 2 * C);
    for (let i = start; i < end; i++) {
      const o = (i - start) * 2 * C;
      for (let c = 0; c < C; c++) {
        let sg = 0;
        let sb = 0;
        for (let e = (i * C + c) * HW; e < (i * C + c + 1) * HW; e++) {
          sg += gd[e] * xhat[e];
          sb += gd[e];
        }
        per[o + c] = sg;
        per[o + C + c] = sb;
      }
    }
    return per;
  }

  addGrad(_ctx: PassContext, tape: LayerTape, examples: ExampleRange, scale: number, out: FloatArray): void {
    if (!this.affine || examples.end <= examples.start) return;
    const per = this.perExampleGradients(tape, examples.start, examples.end);
    const C = this.channels;
    const og = this.gamma(out)!;
    const ob = this.beta(out)!;
    for (let i = 0; i < examples.end - examples.start; i++)
      for (let c = 0; c < C; c++) {
        og[c] += scale * per[i * 2 * C + c];
        ob[c] += scale * per[i * 2 * C + C + c];
      }
  }

  ghostCost(nTrain: number, nValidation: number, _tokens: number) {
    // Forming per-example gradients costs a pass over G per example; pairwise then adds
    // nTrain·nVal·2C, vector nTrain·2C per u. Pairwise also forms the validation gradients.
    const K = 2 * this.channels;
    return {
      pairwise: (nTrain + nValidation) * K + nTrain * nValidation * K,
      vector: nTrain * K + nTrain * K,
    };
  }

  ghostPairwise(ctx: PassContext, train: LayerTape, validation: LayerTape, out: Float64Array): void {
    if (!this.affine) return;
    const nTrain = train.input.n;
    const nVal = validation.input.n;
    if (nTrain === 0 || nVal === 0) return;
    const ga = this.perExampleGradients(train, 0, nTrain, 'perTrain');
    const gv = this.perExampleGradients(validation, 0, nVal, 'perValidation');
    const K = 2 * this.channels;
    ctx.kernels.gemm(false, true, nTrain, nVal, K, 1, ga, K, gv, K, 1, out, nVal);
  }

  ghostDot(_ctx: PassContext, tape: LayerTape, us: FloatArray[], outs: Float64Array[]): void {
    if (!this.affine) return;
    const rows = this.rows(tape);
    affineRowDots(rows, this.parts, us, outs);
  }

  ghostDotEach(
    _ctx: PassContext,
    tape: LayerTape,
    us: FloatArray[],
    which: Int32Array,
    out: Float64Array,
  ): void {
    if (this.affine) affineRowDotsEach(this.rows(tape), this.parts, us, which, out);
  }

  ghostSelfDot(_ctx: PassContext, tape: LayerTape, weights: FloatArray | null, out: Float64Array): void {
    if (this.affine) affineRowSelfDots(this.rows(tape), this.parts, weights, out);
  }

  /** The batch's per-example gradient rows [γ_i, β_i] (affine layers only). */
  private rows(tape: LayerTape): AffineRows {
    return { rows: this.perExampleGradients(tape), n: tape.input.n, channels: this.channels, shifted: true };
  }

  private readonly parts: AffineParts = (flat) => ({ scale: this.gamma(flat)!, shift: this.beta(flat) });

  rForward(ctx: PassContext, v: FloatArray, tape: LayerTape, rx: Activation | null): Activation {
    // Per row: R{z} = R{x} − mean(R{x});  c = r·mean(x̂ ⊙ R{z})  (so R{r} = −r c);
    // R{x̂} = r R{z} − c x̂;  R{y} = v_γ ⊙ x̂ + γ ⊙ R{x̂} + v_β.
    const t = tape as GroupNormTape;
    const { xhat, rstd } = saved(tape);
    const x = tape.input;
    const HW = this.plane(x);
    const cg = this.channels / this.groups;
    const S = cg * HW;
    const gamma = this.gamma(ctx.params);
    const vg = this.gamma(v);
    const vb = this.beta(v);
    const ry = outputActivation(ctx, x.n, x.tokens, x.width);
    let rxhat: FloatArray | null = null;
    let shrink: Float64Array | null = null;
    if (rx) {
      rxhat = passBuffers(ctx).uninitialized(ctx.dtype, xhat.length);
      shrink = passBuffers(ctx).uninitialized('float64', rstd.length);
      const rxd = rx.data;
      for (let row = 0; row < rstd.length; row++) {
        const base = row * S;
        let rmu = 0;
        for (let e = base; e < base + S; e++) rmu += rxd[e];
        rmu /= S;
        let dotz = 0;
        for (let e = base; e < base + S; e++) dotz += xhat[e] * (rxd[e] - rmu);
        const r = rstd[row];
        const c = (r * dotz) / S;
        shrink[row] = c;
        for (let e = base; e < base + S; e++) rxhat[e] = r * (rxd[e] - rmu) - c * xhat[e];
      }
    }
    for (let row = 0; row < rstd.length; row++) {
      const c0 = (row % this.groups) * cg;
      for (let k = 0; k < cg; k++) {
        const c = c0 + k;
        const g = gamma ? gamma[c] : 1;
        const base = row * S + k * HW;
        for (let e = base; e < base + HW; e++) {
          let value = vg ? vg[c] * xhat[e] + vb![c] : 0;
          if (rxhat) value += g * rxhat[e];
          ry.data[e] = value;
        }
      }
    }
    t.rInput = rx;
    t.rOutput = ry;
    t.rNormalized = rxhat;
    t.rShrink = shrink;
    return ry;
  }

  rBackward(
    ctx: PassContext,
    v: FloatArray,
    tape: LayerTape,
    rdy: Activation,
    hv: FloatArray,
    needInputGrad: boolean,
  ): Activation | null {
    const t = tape as GroupNormTape;
    const dy = tape.outputGrad;
    if (!dy) throw new Error('internal: backward has not run on this tape');
    const { xhat, rstd } = saved(tape);
    const rxhat = t.rNormalized ?? null;
    const shrink = t.rShrink ?? null;
    const C = this.channels;
    const HW = this.plane(dy);
    const cg = C / this.groups;
    const S = cg * HW;
    const gd = dy.data;
    const rgd = rdy.data;

    // R{dγ}_c = Σ (R{G} ⊙ x̂ + G ⊙ R{x̂}) and R{dβ}_c = Σ R{G}, over channel c's planes.
    const hg = this.gamma(hv);
    const hb = this.beta(hv);
    if (hg && hb) {
      for (let i = 0; i < dy.n; i++)
        for (let c = 0; c < C; c++) {
          let sg = 0;
          let sb = 0;
          for (let e = (i * C + c) * HW; e < (i * C + c + 1) * HW; e++) {
            sg += rgd[e] * xhat[e];
            if (rxhat) sg += gd[e] * rxhat[e];
            sb += rgd[e];
          }
          hg[c] += sg;
          hb[c] += sb;
        }
    }
    if (!needInputGrad) return null;

    // With h = γ ⊙ G, a = mean(h), b = mean(h ⊙ x̂), dx = r (h − a − x̂ b) per row:
    //   R{h} = v_γ ⊙ G + γ ⊙ R{G},  R{a} = mean(R{h}),  R{b} = mean(R{h} ⊙ x̂ + h ⊙ R{x̂}),
    //   R{dx} = −c·dx + r (R{h} − R{a} − b R{x̂} − x̂ R{b}).
    const gamma = this.gamma(ctx.params);
    const vg = this.gamma(v);
    const rdx = outputActivation(ctx, dy.n, dy.tokens, dy.width);
    const out = rdx.data;
    const h = this.scratch.take('h', 'float64', S);
    const rh = this.scratch.take('rh', 'float64', S);
    for (let row = 0; row < rstd.length; row++) {
      const base = row * S;
      const c0 = (row % this.groups) * cg;
      let a = 0;
      let b = 0;
      let ra = 0;
      let rb = 0;
      for (let k = 0; k < cg; k++) {
        const g = gamma ? gamma[c0 + k] : 1;
        const dg = vg ? vg[c0 + k] : 0;
        for (let p = 0; p < HW; p++) {
          const s = k * HW + p;
          const e = base + s;
          const hs = g * gd[e];
          const rhs = dg * gd[e] + g * rgd[e];
          h[s] = hs;
          rh[s] = rhs;
          a += hs;
          ra += rhs;
          b += hs * xhat[e];
          rb += rhs * xhat[e];
          if (rxhat) rb += hs * rxhat[e];
        }
      }
      a /= S;
      ra /= S;
      b /= S;
      rb /= S;
      const r = rstd[row];
      const c = shrink ? shrink[row] : 0;
      for (let s = 0; s < S; s++) {
        const e = base + s;
        const xh = xhat[e];
        let value = -c * r * (h[s] - a - xh * b) + r * (rh[s] - ra - xh * rb);
        if (rxhat) value -= r * b * rxhat[e];
        out[e] = value;
      }
    }
    return rdx;
  }
}

function saved(tape: LayerTape): { xhat: FloatArray; rstd: Float64Array } {
  const t = tape as GroupNormTape;
  if (!t.normalized || !t.rstd) throw new Error('internal: forward has not run on this tape');
  return { xhat: t.normalized, rstd: t.rstd };
}

/** The message BatchNorm2d is refused with. */
export const BATCH_NORM_REFUSED =
  'BatchNorm2d normalises each channel with statistics of the whole batch, so every example’s output ' +
  'and gradient depend on the other examples in its batch: a per-example gradient, and so a per-example ' +
  'data value, is not defined. inrun does not support it. Use GroupNorm, which normalises each example ' +
  'on its own: GroupNorm(32, C) (the usual choice), or GroupNorm(1, C) to normalise over all of an ' +
  'example’s channels.';

/**
 * Refused: BatchNorm mixes the examples of a batch (see BATCH_NORM_REFUSED). Exported so that code
 * ported from PyTorch fails at construction with a message that says what to use instead.
 */
export class BatchNorm2d {
  constructor(..._args: unknown[]) {
    fail(BATCH_NORM_REFUSED);
  }
}

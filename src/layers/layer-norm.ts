import type { FloatArray } from '../kernels/types.js';
import { checkKnownKeys, checkNumber, fail } from '../util/errors.js';
import {
  type AffineParts,
  type AffineRows,
  affineRowDots,
  affineRowDotsEach,
  affineRowSelfDots,
} from './affine-rows.js';
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
  tail,
} from './types.js';

/**
 * What a normalisation layer keeps on its tape besides A and G. Per token row (n·T rows of
 * `width` features):
 * - normalized: x̂ = z·r, with z = x − μ (LayerNorm) or z = x (RMSNorm), [n, T, width];
 * - rstd: r = 1/√(mean(z²) + eps), [n·T] in float64;
 * - rNormalized: R{x̂} from the latest rForward (null when its input was data);
 * - rShrink: c = −R{r}/r = r·mean(x̂ ⊙ R{z}), [n·T] (null when R{x̂} is).
 */
type NormTape = LayerTape & {
  normalized?: FloatArray;
  rstd?: Float64Array;
  rNormalized?: FloatArray | null;
  rShrink?: Float64Array | null;
};

/**
 * Shared body of LayerNorm and RMSNorm, over the last dimension of every token (width d):
 *
 *   z = x − mean(x) (centred) or x,   r = 1/√(mean(z²) + eps),   x̂ = z·r,   y = γ ⊙ x̂ (+ β).
 *
 * Each token is normalised on its own, so examples never mix and example i's gradients are
 * γ_i = Σ_t G_i,t ⊙ x̂_i,t and β_i = Σ_t G_i,t: only 2d numbers, cheap to form outright, so
 * both ghost routes form them.
 *
 * The Jacobian of x ↦ x̂ is J = r(P − x̂x̂ᵀ/d), with P = I − 11ᵀ/d when centred (x̂ ⊥ 1 then)
 * and P = I otherwise; it is symmetric, so backward and R-forward share its form.
 */
abstract class TokenNorm implements Layer {
  abstract readonly kind: string;
  params: ParamSlot[] = [];
  private readonly scratch = new Scratch();

  constructor(
    readonly width: number,
    readonly eps: number,
    private readonly center: boolean,
    readonly bias: boolean,
    private readonly label: string,
  ) {
    if (!Number.isInteger(width) || width < 1)
      fail(`${label}: width must be a positive integer, got ${width}`);
    checkNumber(`${label}: eps`, eps, { min: 0 });
  }

  paramSpecs(): ParamSpec[] {
    const specs: ParamSpec[] = [
      { name: 'weight', shape: [this.width], init: { kind: 'constant', value: 1 } },
    ];
    if (this.bias) specs.push({ name: 'bias', shape: [this.width], init: { kind: 'constant', value: 0 } });
    return specs;
  }

  outputShape(input: { tokens: number; width: number }) {
    if (input.width !== this.width)
      fail(`${this.label}(${this.width}) got inputs of width ${input.width}, expected ${this.width}`);
    return input;
  }

  private gamma(flat: FloatArray): FloatArray {
    return slotView(flat, this.params[0]);
  }

  private betaOf(flat: FloatArray): FloatArray | null {
    return this.bias ? slotView(flat, this.params[1]) : null;
  }

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    const d = this.width;
    const rows = x.n * x.tokens;
    const xd = x.data;
    const y = outputActivation(ctx, x.n, x.tokens, d);
    const yd = y.data;
    const xhat = passBuffers(ctx).uninitialized(ctx.dtype, rows * d);
    const rstd = passBuffers(ctx).uninitialized('float64', rows);
    ctx.kernels.layerNormForward(
      xd,
      this.gamma(ctx.params),
      this.betaOf(ctx.params),
      rows,
      d,
      this.eps,
      this.center,
      xhat,
      rstd,
      yd,
    );
    const t = tape as NormTape;
    t.input = x;
    t.output = y;
    t.normalized = xhat;
    t.rstd = rstd;
    return y;
  }

  backward(ctx: PassContext, dy: Activation, tape: LayerTape, needInputGrad: boolean): Activation | null {
    tape.outputGrad = dy;
    if (!needInputGrad) return null;
    // h = γ ⊙ G;  dx = r (h − mean(h)·[centred] − x̂ mean(h ⊙ x̂))  (= Jᵀ h)
    const { xhat, rstd } = saved(tape);
    const d = this.width;
    const rows = dy.n * dy.tokens;
    const dx = outputActivation(ctx, dy.n, dy.tokens, d);
    ctx.kernels.layerNormBackward(dy.data, xhat, rstd, this.gamma(ctx.params), rows, d, this.center, dx.data);
    return dx;
  }

  addGrad(ctx: PassContext, tape: LayerTape, examples: ExampleRange, scale: number, out: FloatArray): void {
    const d = this.width;
    const sums = this.gradientSums(ctx, tape, examples.start, examples.end);
    if (!sums) return;
    const og = this.gamma(out);
    for (let c = 0; c < d; c++) og[c] += scale * sums[c];
    const ob = this.betaOf(out);
    if (ob) for (let c = 0; c < d; c++) ob[c] += scale * sums[d + c];
  }

  /**
   * Σ over examples [start, end) of [γ-gradient, β-gradient] (β part only with a bias), in
   * float64: column sums over all their token rows at once, no per-example rows formed.
   */
  private gradientSums(ctx: PassContext, tape: LayerTape, start: number, end: number): Float64Array | null {
    if (end <= start) return null;
    const sums = this.scratch.zeros('sums', 'float64', this.gradWidth);
    this.addTokenSums(ctx, tape, sums, start, end, 1);
    return sums;
  }

  /** Length of one example's gradient here: d (γ) or 2d (γ, β). */
  private get gradWidth(): number {
    return this.bias ? 2 * this.width : this.width;
  }

  /**
   * Adds Σ G ⊙ x̂ (γ) and Σ G (β, with a bias) over the token rows of examples [start, end) into
   * out, laid out [γ (d), β (d)] per row: one row per example (segments = end − start), or one
   * for all of them (segments = 1).
   */
  private addTokenSums(
    ctx: PassContext,
    tape: LayerTape,
    out: Float64Array,
    start: number,
    end: number,
    segments: number,
  ): void {
    const dy = tape.outputGrad;
    if (!dy) throw new Error('internal: backward has not run on this tape');
    const { xhat } = saved(tape);
    const d = this.width;
    const T = dy.tokens;
    const K = this.gradWidth;
    const rows = ((end - start) * T) / segments;
    const g = tail(dy.data, start * T * d);
    ctx.kernels.columnSums(out, g, tail(xhat, start * T * d), segments, rows, d, K);
    if (this.bias) ctx.kernels.columnSums(tail(out, d), g, null, segments, rows, d, K);
  }

  /**
   * Per-example gradients of examples [start, end), [count, K] in float64, each row laid out
   * [γ_i (d), β_i (d)]: γ_i = Σ_t G_i,t ⊙ x̂_i,t, β_i = Σ_t G_i,t. In scratch buffer `name`.
   */
  private perExampleGradients(
    ctx: PassContext,
    tape: LayerTape,
    start = 0,
    end = tape.input.n,
    name = 'perExample',
  ): Float64Array {
    const per = this.scratch.zeros(name, 'float64', (end - start) * this.gradWidth);
    if (end > start) this.addTokenSums(ctx, tape, per, start, end, end - start);
    return per;
  }

  ghostCost(nTrain: number, nValidation: number, tokens: number) {
    // Forming the per-example gradients costs (examples)·T·K; pairwise then adds nTrain·nVal·K,
    // vector nTrain·K per u. Pairwise also forms the validation gradients, so vector is never dearer.
    const K = this.gradWidth;
    return {
      pairwise: (nTrain + nValidation) * tokens * K + nTrain * nValidation * K,
      vector: nTrain * tokens * K + nTrain * K,
    };
  }

  ghostPairwise(ctx: PassContext, train: LayerTape, validation: LayerTape, out: Float64Array): void {
    // out[i, j] += ⟨g_i, g_j⟩ = (Ga Gvᵀ)_ij, Ga [nTrain, K], Gv [nVal, K].
    const ga = this.perExampleGradients(ctx, train, 0, train.input.n, 'perTrain');
    const gv = this.perExampleGradients(ctx, validation, 0, validation.input.n, 'perValidation');
    const nTrain = train.input.n;
    const nVal = validation.input.n;
    if (nTrain === 0 || nVal === 0) return;
    const K = this.gradWidth;
    ctx.kernels.gemm(false, true, nTrain, nVal, K, 1, ga, K, gv, K, 1, out, nVal);
  }

  ghostDot(ctx: PassContext, tape: LayerTape, us: FloatArray[], outs: Float64Array[]): void {
    const rows = this.rows(ctx, tape);
    affineRowDots(rows, this.parts, us, outs);
  }

  ghostDotEach(
    ctx: PassContext,
    tape: LayerTape,
    us: FloatArray[],
    which: Int32Array,
    out: Float64Array,
  ): void {
    affineRowDotsEach(this.rows(ctx, tape), this.parts, us, which, out);
  }

  ghostSelfDot(ctx: PassContext, tape: LayerTape, weights: FloatArray | null, out: Float64Array): void {
    affineRowSelfDots(this.rows(ctx, tape), this.parts, weights, out);
  }

  /** The batch's per-example gradient rows, formed at once (they are only d or 2d long). */
  private rows(ctx: PassContext, tape: LayerTape): AffineRows {
    return {
      rows: this.perExampleGradients(ctx, tape),
      n: tape.input.n,
      channels: this.width,
      shifted: this.bias,
    };
  }

  private readonly parts: AffineParts = (flat) => ({ scale: this.gamma(flat), shift: this.betaOf(flat) });

  rForward(ctx: PassContext, v: FloatArray, tape: LayerTape, rx: Activation | null): Activation {
    // R{z} = R{x} − mean(R{x})·[centred];  c = r·mean(x̂ ⊙ R{z})  (so R{r} = −r c);
    // R{x̂} = r R{z} − c x̂  (= J R{x});  R{y} = v_γ ⊙ x̂ + γ ⊙ R{x̂} + v_β.
    const t = tape as NormTape;
    const { xhat, rstd } = saved(tape);
    const x = tape.input;
    const d = this.width;
    const rows = x.n * x.tokens;
    const gamma = this.gamma(ctx.params);
    const vg = this.gamma(v);
    const vb = this.betaOf(v);
    const ry = outputActivation(ctx, x.n, x.tokens, d);
    const rxhat = rx ? passBuffers(ctx).uninitialized(ctx.dtype, rows * d) : null;
    const shrink = rx ? passBuffers(ctx).uninitialized('float64', rows) : null;
    ctx.kernels.layerNormRForward(
      xhat,
      rstd,
      gamma,
      vg,
      vb,
      rx ? rx.data : null,
      rows,
      d,
      this.center,
      rxhat,
      shrink,
      ry.data,
    );
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
    const t = tape as NormTape;
    const dy = tape.outputGrad;
    if (!dy) throw new Error('internal: backward has not run on this tape');
    const { xhat, rstd } = saved(tape);
    const rxhat = t.rNormalized ?? null;
    const shrink = t.rShrink ?? null;
    const d = this.width;
    const rows = dy.n * dy.tokens;

    // R{dγ} = Σ_rows (R{G} ⊙ x̂ + G ⊙ R{x̂});  R{dβ} = Σ_rows R{G}, summed in float64.
    // With h = γ ⊙ G, a = mean(h)·[centred], b = mean(h ⊙ x̂), dx = r (h − a − x̂ b):
    //   R{h} = v_γ ⊙ G + γ ⊙ R{G},  R{a} = mean(R{h})·[centred],
    //   R{b} = mean(R{h} ⊙ x̂ + h ⊙ R{x̂}),
    //   R{dx} = R{r}/r · dx + r (R{h} − R{a} − b R{x̂} − x̂ R{b})   with R{r}/r = −c.
    const hg = this.gamma(hv);
    const hb = this.betaOf(hv);
    const accG = this.scratch.zeros('accG', 'float64', d);
    const accB = hb ? this.scratch.zeros('accB', 'float64', d) : null;
    const rdx = needInputGrad ? outputActivation(ctx, dy.n, dy.tokens, d) : null;
    ctx.kernels.layerNormRBackward(
      dy.data,
      rdy.data,
      xhat,
      rxhat,
      rstd,
      shrink,
      this.gamma(ctx.params),
      this.gamma(v),
      rows,
      d,
      this.center,
      accG,
      accB,
      rdx ? rdx.data : null,
    );
    for (let c = 0; c < d; c++) hg[c] += accG[c];
    if (hb && accB) for (let c = 0; c < d; c++) hb[c] += accB[c];
    return rdx;
  }
}

function saved(tape: LayerTape): { xhat: FloatArray; rstd: Float64Array } {
  const t = tape as NormTape;
  if (!t.normalized || !t.rstd) throw new Error('internal: forward has not run on this tape');
  return { xhat: t.normalized, rstd: t.rstd };
}

/**
 * PyTorch's nn.LayerNorm over the last dimension: y = γ ⊙ (x − μ)/√(var + eps) + β, with the
 * biased variance. γ starts at 1, β at 0.
 */
export class LayerNorm extends TokenNorm {
  readonly kind = 'layer-norm';

  constructor(width: number, options: { eps?: number; bias?: boolean } = {}) {
    checkKnownKeys('LayerNorm', options, ['eps', 'bias']);
    const bias = options.bias ?? true;
    if (typeof bias !== 'boolean') fail(`LayerNorm: bias must be a boolean, got ${String(bias)}`);
    super(width, options.eps ?? 1e-5, true, bias, 'LayerNorm');
  }
}

/** RMSNorm: y = γ ⊙ x/√(mean(x²) + eps), no centring and no bias. γ starts at 1. */
export class RMSNorm extends TokenNorm {
  readonly kind = 'rms-norm';

  constructor(width: number, options: { eps?: number } = {}) {
    checkKnownKeys('RMSNorm', options, ['eps']);
    super(width, options.eps ?? 1e-6, false, false, 'RMSNorm');
  }
}

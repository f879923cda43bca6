import type { FloatArray } from '../kernels/types.js';
import { checkKnownKeys, describe, fail } from '../util/errors.js';
import { Linear } from './linear.js';
import { Scratch } from './scratch.js';
import {
  type Activation,
  type ExampleRange,
  type Layer,
  type LayerTape,
  outputActivation,
  type ParamInit,
  type ParamSlot,
  type ParamSpec,
  type PassContext,
  passBuffers,
  slotView,
  tail,
  zeroActivation,
} from './types.js';

// Images and convolutions.
//
// An image batch is an ordinary Activation with tokens = 1 and each example's pixels stored
// channels-first, [C, H, W] flattened into width = C·H·W (PyTorch's NCHW memory order). Spatial
// layers learn (C, H, W) when the model lays them out: from the shape the previous spatial layer
// reports (its outputShape carries an `image` field along), from their `input` option, or —
// for a first convolution, which knows C — from a square H = W.

/** The shape of one channels-first image, [channels, height, width]. */
export interface ImageShape {
  channels: number;
  height: number;
  width: number;
}

/** A layer's input shape as the model passes it along: spatial layers add `image`. */
export interface ShapeWithImage {
  tokens: number;
  width: number;
  image?: ImageShape;
}

/** A size given once for both spatial dimensions or as [height, width]. */
export type Size2 = number | [number, number];

/** A window slid over an image: kernel size, stride, zero padding and dilation, each [h, w]. */
export interface Window {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
}

/** Reads a Size2 argument as [h, w] of integers ≥ min, naming it in errors. */
export function size2(label: string, name: string, value: Size2 | undefined, fallback: Size2, min: number) {
  const v = value ?? fallback;
  const hw: [number, number] = typeof v === 'number' ? [v, v] : Array.isArray(v) ? [v[0], v[1]] : [NaN, NaN];
  if (
    (Array.isArray(v) && v.length !== 2) ||
    !hw.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= min)
  )
    fail(
      `${label}: ${name} must be an integer ≥ ${min} or a pair [height, width] of them, got ${Array.isArray(v) ? `[${v.join(', ')}]` : describe(v)}`,
    );
  return hw;
}

const formatImage = (s: ImageShape) => `[${s.channels}, ${s.height}, ${s.width}]`;
const sameImage = (a: ImageShape, b: ImageShape) =>
  a.channels === b.channels && a.height === b.height && a.width === b.width;

/** Checks an `input` image option: positive integers (channels may be left out where known). */
export function imageOption(
  label: string,
  value: { channels?: number; height: number; width: number } | undefined,
  channels?: number,
): ImageShape | undefined {
  if (value === undefined) return undefined;
  const c = value.channels ?? channels;
  const dims = [c, value.height, value.width];
  if (!dims.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 1))
    fail(
      `${label}: input must be { channels, height, width } of positive integers, got ${JSON.stringify(value)}`,
    );
  if (channels !== undefined && c !== channels)
    fail(`${label}: input.channels is ${c} but the layer takes ${channels} channels`);
  return { channels: c!, height: value.height, width: value.width };
}

/**
 * The image shape of a spatial layer's inputs: the `image` the previous layer reported, else the
 * layer's own `given` shape, else a square image of `channels` channels. Throws a clear error
 * when none applies, when the sizes disagree with the input width, or when the layer was already
 * set up for another shape (`bound`).
 */
export function resolveImage(
  label: string,
  input: ShapeWithImage,
  given: ImageShape | undefined,
  bound: ImageShape | null,
  channels?: number,
): ImageShape {
  if (input.tokens !== 1)
    fail(
      `${label} takes one image per example (tokens = 1, width = channels·height·width), got ${input.tokens} tokens of width ${input.width}`,
    );
  let image: ImageShape;
  if (given) {
    if (input.image && !sameImage(input.image, given))
      fail(
        `${label}: its input option says images ${formatImage(given)}, the previous layer outputs ${formatImage(input.image)}`,
      );
    image = given;
  } else if (input.image) {
    image = input.image;
  } else if (channels !== undefined) {
    const plane = input.width / channels;
    const side = Math.round(Math.sqrt(plane));
    if (!Number.isInteger(plane) || side * side !== plane)
      fail(
        `${label}: inputs of width ${input.width} are not square images of ${channels} channel${channels === 1 ? '' : 's'}; ` +
          'give the image size with the input option, e.g. { input: { height: 28, width: 32 } }',
      );
    image = { channels, height: side, width: side };
  } else {
    fail(
      `${label}: cannot tell the image shape of inputs of width ${input.width}; place it after a Conv2d ` +
        '(or another image layer), or give { input: { channels, height, width } }',
    );
  }
  if (image.channels * image.height * image.width !== input.width)
    fail(
      `${label}: inputs of width ${input.width} are not images of shape ${formatImage(image)} (${image.channels * image.height * image.width} values)`,
    );
  if (channels !== undefined && image.channels !== channels)
    fail(`${label} takes ${channels} input channels, got images of shape ${formatImage(image)}`);
  if (bound && !sameImage(bound, image))
    fail(
      `${label}: this layer was set up for images ${formatImage(bound)} and now gets ${formatImage(image)}; ` +
        'create one layer per input shape',
    );
  return image;
}

/** Output height and width of a window slid over an image (PyTorch's floor rule). */
export function windowOutput(label: string, image: ImageShape, win: Window): [number, number] {
  const out = [0, 1].map((d) => {
    const size = d === 0 ? image.height : image.width;
    const span = win.dilation[d] * (win.kernel[d] - 1) + 1;
    return Math.floor((size + 2 * win.padding[d] - span) / win.stride[d]) + 1;
  }) as [number, number];
  if (out[0] < 1 || out[1] < 1)
    fail(
      `${label}: a ${win.kernel.join('×')} window (dilation ${win.dilation.join('×')}, padding ${win.padding.join('×')}) ` +
        `does not fit in ${image.height}×${image.width} images`,
    );
  return out;
}

/**
 * For every output position p (row-major over the output plane) and window offset q (row-major
 * over kh×kw): the offset ih·W + iw that it reads inside one channel plane, or −1 where the
 * window lies on the zero padding. Shape [positions, kh·kw].
 */
export function windowOffsets(image: ImageShape, win: Window, outH: number, outW: number): Int32Array {
  const [kh, kw] = win.kernel;
  const [sh, sw] = win.stride;
  const [ph, pw] = win.padding;
  const [dh, dw] = win.dilation;
  const { height: H, width: W } = image;
  const offsets = new Int32Array(outH * outW * kh * kw);
  let e = 0;
  for (let oh = 0; oh < outH; oh++)
    for (let ow = 0; ow < outW; ow++)
      for (let a = 0; a < kh; a++)
        for (let b = 0; b < kw; b++) {
          const ih = oh * sh - ph + a * dh;
          const iw = ow * sw - pw + b * dw;
          offsets[e++] = ih >= 0 && ih < H && iw >= 0 && iw < W ? ih * W + iw : -1;
        }
  return offsets;
}

export interface Conv2dOptions {
  stride?: Size2;
  padding?: Size2;
  dilation?: Size2;
  /** Add a bias per output channel (default true). */
  bias?: boolean;
  /** Weight initialisation; default PyTorch's U(−1/√fan_in, 1/√fan_in), fan_in = in·kh·kw. */
  init?: ParamInit;
  /** Input image size, when the layer cannot learn it from the previous layer (a first layer on non-square images). */
  input?: { channels?: number; height: number; width: number };
}

/** Sizes of a convolution once its input shape is known. */
interface ConvGeometry {
  input: ImageShape;
  output: ImageShape;
  /** P = output height · width. */
  positions: number;
  /** K = in·kh·kw, the length of one unfolded patch. */
  patch: number;
  /** For each position p and patch entry k: the input offset within one example, or −1 (padding). [P, K] */
  index: Int32Array;
}

/**
 * A convolution's tape besides A and G (its input and output in image layout): the same pass seen
 * as a Linear map over unfolded patches — input A = patches [n, P, K], output gradient
 * G = [n, P, out], R{A} = the patches of R{x} — which the ghost routes and gradients read.
 */
type ConvTape = LayerTape & { rows?: LayerTape; formed?: FormedGradients };

/**
 * Each example's gradient g_i = G_iᵀA_i (plus the bias gradient), [n, D], formed once per pass by
 * the first ghost product that asks and kept on the tape with the patches and output gradient it
 * came from: the values' vector route, the self product and the class values all read it then at
 * n·D multiply-adds each instead of another n·P·K·out pass over the patches.
 */
interface FormedGradients {
  patches: FloatArray;
  outputGrad: FloatArray;
  gradients: FloatArray;
}

/**
 * PyTorch's nn.Conv2d (groups = 1): y[o, oh, ow] = b[o] + Σ_{c,a,b} W[o, c, a, b]·x[c, oh·sh − ph + a·dh, ow·sw − pw + b·dw],
 * zero padding, weight [out, in, kh, kw] and bias [out] in PyTorch's layout (weight files load
 * into PyTorch as they are).
 *
 * Unfolding (im2col) turns it into a Linear layer: example i's patches A_i [P, K] (one row per
 * output position, K = in·kh·kw, in the weight's (c, a, b) order) times Wᵀ [K, out] give its
 * output, one row per position. So everything runs through a Linear over patch rows — forward and
 * backward as gemm, the R-operator, and both ghost routes with T = P positions:
 *   pairwise ⟨G_iᵀA_i, G_vᵀA_v⟩ = Σ_{t,s} (A_i A_vᵀ)_{ts} (G_i G_vᵀ)_{ts}  (+1 in the patch Gram for the bias),
 *   vector   ⟨G_iᵀA_i, U⟩ = Σ_t ⟨G_i,t, U A_i,t⟩,
 * with the engine picking the cheaper one (pairwise grows with P²; where P² is large the pairwise
 * route forms each example's gradient instead, see pairwisePlan). Only the layout changes
 * around it: the output is transposed to channels-first, and input gradients are folded back
 * (col2im). The tape keeps the patches, n·P·K values.
 */
export class Conv2d implements Layer {
  readonly kind = 'conv2d';
  /** The formed-gradient pairwise route holds about this many gradient values per side at once. */
  static formedChunkElements = 1 << 22;
  /**
   * A pass's per-example gradients (FormedGradients) are kept on its tape up to this many values;
   * larger layers take the Linear routes over patch rows instead.
   */
  static formedCacheElements = 1 << 20;
  readonly kernel: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly bias: boolean;
  /** The same parameters seen as a Linear(in·kh·kw → out) over patch rows. */
  private readonly patchLinear: Linear;
  private readonly givenInput: ImageShape | undefined;
  private geometry: ConvGeometry | null = null;
  private readonly scratch = new Scratch();

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernel: Size2,
    private readonly options: Conv2dOptions = {},
  ) {
    const label = 'Conv2d';
    checkKnownKeys(label, options, ['stride', 'padding', 'dilation', 'bias', 'init', 'input']);
    for (const [name, value] of [
      ['inChannels', inChannels],
      ['outChannels', outChannels],
    ] as const)
      if (!Number.isInteger(value) || value < 1)
        fail(`${label}: ${name} must be a positive integer, got ${describe(value)}`);
    this.kernel = size2(label, 'kernel', kernel, 1, 1);
    this.stride = size2(label, 'stride', options.stride, 1, 1);
    this.padding = size2(label, 'padding', options.padding, 0, 0);
    this.dilation = size2(label, 'dilation', options.dilation, 1, 1);
    this.bias = options.bias ?? true;
    if (typeof this.bias !== 'boolean') fail(`${label}: bias must be a boolean, got ${describe(this.bias)}`);
    this.givenInput = imageOption(label, options.input, inChannels);
    const K = inChannels * this.kernel[0] * this.kernel[1];
    this.patchLinear = new Linear(K, outChannels, { bias: this.bias });
  }

  // The model assigns the slots here; the patch Linear reads the same ones (only offsets and
  // sizes matter to it, and [out, in, kh, kw] has the layout of its [out, in·kh·kw]).
  get params(): ParamSlot[] {
    return this.patchLinear.params;
  }
  set params(slots: ParamSlot[]) {
    this.patchLinear.params = slots;
  }

  private get label(): string {
    return `Conv2d(${this.inChannels}→${this.outChannels}, ${this.kernel.join('×')})`;
  }

  paramSpecs(): ParamSpec[] {
    // PyTorch's default: kaiming_uniform(a = √5) gives U(−1/√fan_in, 1/√fan_in), and the bias
    // the same bound. A custom weight initialisation comes with zero biases (as Linear).
    const [kh, kw] = this.kernel;
    const bound = 1 / Math.sqrt(this.inChannels * kh * kw);
    const custom = this.options.init;
    const weight: ParamSpec = {
      name: 'weight',
      shape: [this.outChannels, this.inChannels, kh, kw],
      init: custom ?? { kind: 'uniform', bound },
    };
    if (!this.bias) return [weight];
    const biasInit: ParamInit = custom ? { kind: 'constant', value: 0 } : { kind: 'uniform', bound };
    return [weight, { name: 'bias', shape: [this.outChannels], init: biasInit }];
  }

  outputShape(input: ShapeWithImage): { tokens: number; width: number; image: ImageShape } {
    const image = resolveImage(
      this.label,
      input,
      this.givenInput,
      this.geometry?.input ?? null,
      this.inChannels,
    );
    if (!this.geometry) {
      const win: Window = {
        kernel: this.kernel,
        stride: this.stride,
        padding: this.padding,
        dilation: this.dilation,
      };
      const [outH, outW] = windowOutput(this.label, image, win);
      const offsets = windowOffsets(image, win, outH, outW);
      const P = outH * outW;
      const KK = this.kernel[0] * this.kernel[1];
      const K = this.inChannels * KK;
      const plane = image.height * image.width;
      const index = new Int32Array(P * K);
      for (let p = 0; p < P; p++)
        for (let c = 0; c < this.inChannels; c++)
          for (let q = 0; q < KK; q++) {
            const off = offsets[p * KK + q];
            index[p * K + c * KK + q] = off < 0 ? -1 : c * plane + off;
          }
      this.geometry = {
        input: image,
        output: { channels: this.outChannels, height: outH, width: outW },
        positions: P,
        patch: K,
        index,
      };
    }
    const { output } = this.geometry;
    return { tokens: 1, width: output.channels * output.height * output.width, image: output };
  }

  /** The geometry for these inputs (set up on first use outside a model). */
  private geometryFor(x: Activation): ConvGeometry {
    if (!this.geometry || x.width !== this.inputWidth || x.tokens !== 1)
      this.outputShape({ tokens: x.tokens, width: x.width });
    return this.geometry!;
  }

  private get inputWidth(): number {
    const s = this.geometry!.input;
    return s.channels * s.height * s.width;
  }

  /** Unfolds images [n, C·H·W] into patch rows [n, P, K] (zeros on the padding): im2col as a gather. */
  private unfold(ctx: PassContext, x: Activation, g: ConvGeometry): Activation {
    const out = outputActivation(ctx, x.n, g.positions, g.patch);
    ctx.kernels.gather(x.data, g.index, x.n, x.width, out.data);
    return out;
  }

  /** Folds patch-row gradients [n, P, K] back onto the images (col2im): overlapping patches add up. */
  private fold(ctx: PassContext, rows: FloatArray, n: number, g: ConvGeometry): Activation {
    const inSize = this.inputWidth;
    const out = zeroActivation(ctx, n, 1, inSize);
    ctx.kernels.scatterAdd(rows, g.index, n, inSize, out.data);
    return out;
  }

  /** An image batch [n, out·P] → patch rows [n, P, out]. */
  private toRows(ctx: PassContext, images: Activation, g: ConvGeometry): Activation {
    const rows = outputActivation(ctx, images.n, g.positions, this.outChannels);
    ctx.kernels.transpose(images.data, rows.data, images.n, this.outChannels, g.positions);
    return rows;
  }

  /**
   * y_i = beta·y_i + W_w A_iᵀ (+ the bias of `weights`) for every example: one batched gemm
   * straight into the channels-first layout, [out, K] × [K, P] per example; beta = 0 ignores what
   * y held. (`weights` is a flat parameter-shaped vector: the model's weights, or a direction v
   * for the R-operator.)
   */
  private convolve(
    ctx: PassContext,
    patches: Activation,
    weights: FloatArray,
    y: Activation,
    bias: boolean,
    beta: 0 | 1,
  ) {
    const { positions: P, patch: K } = this.geometry!;
    const O = this.outChannels;
    const n = patches.n;
    const w = slotView(weights, this.params[0]);
    ctx.kernels.gemmBatched(
      false,
      true,
      O,
      P,
      K,
      1,
      w,
      K,
      0,
      patches.data,
      K,
      P * K,
      beta,
      y.data,
      P,
      O * P,
      n,
    );
    if (bias && this.bias) ctx.kernels.addBias(y.data, slotView(weights, this.params[1]), n, O, P);
  }

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    const g = this.geometryFor(x);
    const patches = this.unfold(ctx, x, g);
    const y = outputActivation(ctx, x.n, 1, this.outChannels * g.positions);
    this.convolve(ctx, patches, ctx.params, y, true, 0);
    tape.input = x;
    tape.output = y;
    // The Linear's view of this pass (it never reads its output, so that keeps the image layout).
    (tape as ConvTape).rows = { input: patches, output: y };
    return y;
  }

  backward(ctx: PassContext, dy: Activation, tape: LayerTape, needInputGrad: boolean): Activation | null {
    const g = this.geometry!;
    tape.outputGrad = dy;
    const rows = rowsOf(tape);
    const dyRows = this.toRows(ctx, dy, g);
    rows.outputGrad = dyRows;
    if (!needInputGrad) return null;
    // The patches' gradient G W, [n·P, K], lives only until fold adds it onto the images: scratch.
    const { positions: P, patch: K } = g;
    const O = this.outChannels;
    const patchGrads = this.scratch.take('patchGrads', ctx.dtype, dy.n * P * K);
    const w = slotView(ctx.params, this.params[0]);
    ctx.kernels.gemm(false, false, dy.n * P, K, O, 1, dyRows.data, O, w, K, 0, patchGrads, K);
    return this.fold(ctx, patchGrads, dy.n, g);
  }

  rForward(ctx: PassContext, v: FloatArray, tape: LayerTape, rx: Activation | null): Activation {
    // R{y} = W R{A}ᵀ + V Aᵀ + v_b, with R{A} the patches of R{x}.
    const g = this.geometry!;
    const rows = rowsOf(tape);
    const ry = outputActivation(ctx, tape.input.n, 1, this.outChannels * g.positions);
    this.convolve(ctx, rows.input, v, ry, true, 0);
    const rPatches = rx ? this.unfold(ctx, rx, g) : null;
    if (rPatches) this.convolve(ctx, rPatches, ctx.params, ry, false, 1);
    rows.rInput = rPatches;
    rows.rOutput = ry;
    tape.rInput = rx;
    tape.rOutput = ry;
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
    const g = this.geometry!;
    const rdPatches = this.patchLinear.rBackward(
      ctx,
      v,
      rowsOf(tape),
      this.toRows(ctx, rdy, g),
      hv,
      needInputGrad,
    );
    return rdPatches ? this.fold(ctx, rdPatches.data, rdPatches.n, g) : null;
  }

  /**
   * A whole pass's gradient (or part of one whose per-example gradients are already formed) is
   * summed from the per-example gradients, formed here for the ghost products that follow: forming
   * them costs what the one gemm over all patch rows would, and the row sum is n·D.
   */
  addGrad(ctx: PassContext, tape: LayerTape, examples: ExampleRange, scale: number, out: FloatArray): void {
    const count = examples.end - examples.start;
    if (count === 0) return;
    const whole = examples.start === 0 && examples.end === tape.input.n;
    const gradients = whole ? this.formedGradients(ctx, tape) : this.cachedGradients(tape);
    if (!gradients) {
      this.patchLinear.addGrad(ctx, rowsOf(tape), examples, scale, out);
      return;
    }
    const D = this.gradientLength;
    const O = this.outChannels;
    const OK = O * this.geometry!.patch;
    const ones = this.scratch.take('exampleOnes', ctx.dtype, count).fill(1);
    const rows = tail(gradients, examples.start * D);
    ctx.kernels.gemm(
      false,
      false,
      1,
      OK,
      count,
      scale,
      ones,
      count,
      rows,
      D,
      1,
      slotView(out, this.params[0]),
      OK,
    );
    if (this.bias)
      ctx.kernels.gemm(
        false,
        false,
        1,
        O,
        count,
        scale,
        ones,
        count,
        rows.subarray(OK),
        D,
        1,
        slotView(out, this.params[1]),
        O,
      );
  }

  /**
   * The pairwise route two ways. Through Gram matrices over pairs of positions (Linear's rule):
   * nTrain·nVal·P²·(K + out). Or by forming each example's gradient g_i = G_iᵀA_i, [out, K] (plus
   * the bias), and taking their inner products: (nTrain·passes + nVal)·P·K·out + nTrain·nVal·D,
   * where D is the gradient's length and `passes` the number of validation chunks. The first wins
   * only for tiny feature maps (P of a few positions); the second keeps per-validation values
   * affordable for convolutions on real images, where P² is in the hundreds of thousands.
   */
  private pairwisePlan(nTrain: number, nValidation: number) {
    const { positions: P, patch: K } = this.geometry!;
    const out = this.outChannels;
    const D = this.gradientLength;
    const trainChunk = Math.max(1, Math.min(nTrain, Math.floor(Conv2d.formedChunkElements / D)));
    const valChunk = Math.max(1, Math.min(nValidation, Math.floor(Conv2d.formedChunkElements / D)));
    const passes = Math.ceil(nValidation / valChunk);
    return {
      grams: nTrain * nValidation * P * P * (K + out),
      formed: (nTrain * passes + nValidation) * P * K * out + nTrain * nValidation * D,
      trainChunk,
      valChunk,
    };
  }

  /** Length of one example's gradient here: out·K, plus out for the bias. */
  private get gradientLength(): number {
    const g = this.geometry!;
    return this.outChannels * g.patch + (this.bias ? this.outChannels : 0);
  }

  ghostCost(nTrain: number, nValidation: number, _tokens: number) {
    if (!this.geometry) throw new Error('internal: Conv2d has not been laid out in a model');
    const plan = this.pairwisePlan(nTrain, nValidation);
    const { positions: P, patch: K } = this.geometry;
    return { pairwise: Math.min(plan.grams, plan.formed), vector: nTrain * P * K * this.outChannels };
  }

  ghostPairwise(ctx: PassContext, train: LayerTape, validation: LayerTape, out: Float64Array): void {
    const nTrain = train.input.n;
    const nVal = validation.input.n;
    const plan = this.pairwisePlan(nTrain, nVal);
    if (plan.grams <= plan.formed) {
      this.patchLinear.ghostPairwise(ctx, rowsOf(train), rowsOf(validation), out);
      return;
    }
    const D = this.gradientLength;
    const gram = this.scratch.take('pairGram', ctx.dtype, plan.trainChunk * plan.valChunk);
    for (let v0 = 0; v0 < nVal; v0 += plan.valChunk) {
      const cv = Math.min(plan.valChunk, nVal - v0);
      const gv = this.exampleGradients(
        ctx,
        validation,
        v0,
        cv,
        this.scratch.take('pairValidation', ctx.dtype, cv * D),
      );
      for (let t0 = 0; t0 < nTrain; t0 += plan.trainChunk) {
        const ct = Math.min(plan.trainChunk, nTrain - t0);
        const gt = this.exampleGradients(
          ctx,
          train,
          t0,
          ct,
          this.scratch.take('pairTrain', ctx.dtype, ct * D),
        );
        ctx.kernels.gemm(false, true, ct, cv, D, 1, gt, D, gv, D, 0, gram, cv);
        for (let i = 0; i < ct; i++)
          for (let j = 0; j < cv; j++) out[(t0 + i) * nVal + v0 + j] += gram[i * cv + j];
      }
    }
  }

  /**
   * Gradients of examples [start, start + count) of a pass into `into` [count, D]: each row the
   * weight gradient G_iᵀA_i [out, K] — one batched gemm of the output gradient in its image layout,
   * [out, P] per example, times the patches [P, K] — then the bias gradient Σ_t G_i,t, row sums of
   * that layout (in float64, then rounded once).
   */
  private exampleGradients(
    ctx: PassContext,
    tape: LayerTape,
    start: number,
    count: number,
    into: FloatArray,
  ) {
    const { positions: P, patch: K } = this.geometry!;
    const O = this.outChannels;
    const D = this.gradientLength;
    const a = tail(rowsOf(tape).input.data, start * P * K);
    const dy = tail(tape.outputGrad!.data, start * O * P);
    ctx.kernels.gemmBatched(false, false, O, K, P, 1, dy, P, O * P, a, K, P * K, 0, into, K, D, count);
    if (this.bias) {
      // Σ_t G_i,t: the row sums of every example's [out, P] output gradient (a gemm per example
      // with N = 1 costs several times more), placed after each example's weight gradient.
      const ones = this.scratch.take('positionOnes', ctx.dtype, P).fill(1);
      const sums = this.scratch.zeros('biasSums', 'float64', count * O);
      ctx.kernels.rowDots(dy, ones, null, count * O, P, P, 0, sums);
      for (let i = 0; i < count; i++) for (let o = 0; o < O; o++) into[i * D + O * K + o] = sums[i * O + o];
    }
    return into;
  }

  /** The pass's per-example gradients [n, D] (see FormedGradients), or null where they would not fit. */
  private formedGradients(ctx: PassContext, tape: LayerTape): FloatArray | null {
    const n = tape.input.n;
    const D = this.gradientLength;
    if (n * D > Conv2d.formedCacheElements) return null;
    const cached = this.cachedGradients(tape);
    if (cached) return cached;
    const patches = rowsOf(tape).input.data;
    const outputGrad = tape.outputGrad?.data;
    if (!outputGrad) throw new Error('internal: backward has not run on this tape');
    // Kept on the tape, so from the pass's buffers (`ctx` must be this tape's pass's).
    const gradients = this.exampleGradients(
      ctx,
      tape,
      0,
      n,
      passBuffers(ctx).uninitialized(ctx.dtype, n * D),
    );
    (tape as ConvTape).formed = { patches, outputGrad, gradients };
    return gradients;
  }

  /** The formed gradients kept on the tape, if they were formed from its current patches and output gradient. */
  private cachedGradients(tape: LayerTape): FloatArray | null {
    const cached = (tape as ConvTape).formed;
    const current =
      cached && cached.patches === rowsOf(tape).input.data && cached.outputGrad === tape.outputGrad?.data;
    return current ? cached.gradients : null;
  }

  /** outs[r] += ⟨g_{first+r}, u⟩ for `rows` rows of formed gradients, u a flat parameter-shaped vector. */
  private formedDots(
    ctx: PassContext,
    gradients: FloatArray,
    first: number,
    rows: number,
    u: FloatArray,
    out: Float64Array,
  ): void {
    const D = this.gradientLength;
    const OK = this.outChannels * this.geometry!.patch;
    const g = tail(gradients, first * D);
    ctx.kernels.rowDots(g, slotView(u, this.params[0]), null, rows, OK, D, 0, out);
    if (this.bias)
      ctx.kernels.rowDots(
        g.subarray(OK),
        slotView(u, this.params[1]),
        null,
        rows,
        this.outChannels,
        D,
        0,
        out,
      );
  }

  ghostDot(ctx: PassContext, tape: LayerTape, us: FloatArray[], outs: Float64Array[]): void {
    const gradients = this.formedGradients(ctx, tape);
    if (!gradients) {
      this.patchLinear.ghostDot(ctx, rowsOf(tape), us, outs);
      return;
    }
    for (let k = 0; k < us.length; k++) this.formedDots(ctx, gradients, 0, tape.input.n, us[k], outs[k]);
  }

  ghostSelfDot(ctx: PassContext, tape: LayerTape, weights: FloatArray | null, out: Float64Array): void {
    const gradients = this.formedGradients(ctx, tape);
    if (!gradients) {
      this.patchLinear.ghostSelfDot(ctx, rowsOf(tape), weights, out);
      return;
    }
    // Σ_e w_e g_ie² over the weight and bias entries alike (w = 1 without a metric).
    const n = tape.input.n;
    const D = this.gradientLength;
    if (!weights) {
      ctx.kernels.rowDots(gradients, gradients, null, n, D, D, D, out);
      return;
    }
    const OK = this.outChannels * this.geometry!.patch;
    ctx.kernels.rowDots(gradients, gradients, slotView(weights, this.params[0]), n, OK, D, D, out);
    if (this.bias) {
      const b = gradients.subarray(OK);
      ctx.kernels.rowDots(b, b, slotView(weights, this.params[1]), n, D - OK, D, D, out);
    }
  }

  ghostDotEach(
    ctx: PassContext,
    tape: LayerTape,
    us: FloatArray[],
    which: Int32Array,
    out: Float64Array,
  ): void {
    const gradients = this.formedGradients(ctx, tape);
    if (!gradients) {
      this.patchLinear.ghostDotEach(ctx, rowsOf(tape), us, which, out);
      return;
    }
    for (let i = 0; i < tape.input.n; i++)
      if (which[i] >= 0) this.formedDots(ctx, gradients, i, 1, us[which[i]], out.subarray(i, i + 1));
  }
}

function rowsOf(tape: LayerTape): LayerTape {
  const rows = (tape as ConvTape).rows;
  if (!rows) throw new Error('internal: forward has not run on this tape');
  return rows;
}

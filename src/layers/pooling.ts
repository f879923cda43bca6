import type { FloatArray } from '../kernels/types.js';
import { checkKnownKeys, describe, fail } from '../util/errors.js';
import {
  type ImageShape,
  imageOption,
  resolveImage,
  type ShapeWithImage,
  type Size2,
  size2,
  type Window,
  windowOffsets,
  windowOutput,
} from './conv2d.js';
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

// Parameter-free image layers: pooling and Flatten. They own no parameters, so the ghost routes
// never visit them; they only pass gradients and R-operator directions through.

interface PoolGeometry {
  input: ImageShape;
  output: ImageShape;
  /** Output positions per channel. */
  positions: number;
  /** Window entries kh·kw. */
  taps: number;
  /** [positions, taps]: offset inside a channel plane, or −1 on the padding. */
  offsets: Int32Array;
}

/** Shared set-up of MaxPool2d and AvgPool2d: window, input image shape, geometry. */
abstract class Pool2d implements Layer {
  abstract readonly kind: string;
  params: ParamSlot[] = [];
  readonly window: Window;
  protected geometry: PoolGeometry | null = null;
  private readonly givenInput: ImageShape | undefined;

  constructor(
    protected readonly label: string,
    kernel: Size2,
    stride: Size2 | undefined,
    padding: Size2 | undefined,
    dilation: Size2 | undefined,
    input: { channels: number; height: number; width: number } | undefined,
  ) {
    const k = size2(label, 'kernel', kernel, 1, 1);
    const d = size2(label, 'dilation', dilation, 1, 1);
    this.window = {
      kernel: k,
      stride: size2(label, 'stride', stride ?? undefined, k, 1), // PyTorch: stride defaults to the kernel
      padding: size2(label, 'padding', padding, 0, 0),
      dilation: d,
    };
    this.window.padding.forEach((p, axis) => {
      const span = d[axis] * (k[axis] - 1) + 1;
      if (p > span / 2)
        fail(
          `${label}: padding ${p} is more than half the ${span}-wide window (as in PyTorch, at most ${Math.floor(span / 2)})`,
        );
    });
    this.givenInput = imageOption(label, input);
  }

  paramSpecs() {
    return [];
  }

  outputShape(input: ShapeWithImage): { tokens: number; width: number; image: ImageShape } {
    const image = resolveImage(this.label, input, this.givenInput, this.geometry?.input ?? null);
    if (!this.geometry) {
      const [outH, outW] = windowOutput(this.label, image, this.window);
      this.geometry = {
        input: image,
        output: { channels: image.channels, height: outH, width: outW },
        positions: outH * outW,
        taps: this.window.kernel[0] * this.window.kernel[1],
        offsets: windowOffsets(image, this.window, outH, outW),
      };
    }
    const { output } = this.geometry;
    return { tokens: 1, width: output.channels * output.height * output.width, image: output };
  }

  protected geometryFor(x: Activation): PoolGeometry {
    const s = this.geometry?.input;
    if (!s || x.tokens !== 1 || x.width !== s.channels * s.height * s.width)
      this.outputShape({ tokens: x.tokens, width: x.width });
    return this.geometry!;
  }

  abstract forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation;
  abstract backward(
    ctx: PassContext,
    dy: Activation,
    tape: LayerTape,
    needInputGrad: boolean,
  ): Activation | null;
  abstract rForward(ctx: PassContext, v: FloatArray, tape: LayerTape, rx: Activation | null): Activation;
  abstract rBackward(
    ctx: PassContext,
    v: FloatArray,
    tape: LayerTape,
    rdy: Activation,
    hv: FloatArray,
    needInputGrad: boolean,
  ): Activation | null;
}

/** Where each output of a max pool took its value from: an index into the input batch's data. */
type MaxPoolTape = LayerTape & { argmax?: Int32Array };

export interface Pool2dOptions {
  dilation?: Size2;
  /** Input image shape, when the layer cannot learn it from the previous layer. */
  input?: { channels: number; height: number; width: number };
}

/**
 * PyTorch's nn.MaxPool2d(kernel, stride = kernel, padding = 0): the largest value of each window
 * of each channel, padding never chosen. Locally it routes each output to one input (the argmax,
 * kept on the tape), so backward, R{y} = R{x}[argmax] and R{dx} all follow the argmax positions
 * chosen in the forward pass. Ties go to the first window entry; NaN propagates.
 */
export class MaxPool2d extends Pool2d {
  readonly kind = 'max-pool2d';

  constructor(kernel: Size2, stride?: Size2, padding?: Size2, options: Pool2dOptions = {}) {
    checkKnownKeys('MaxPool2d', options, ['dilation', 'input']);
    super('MaxPool2d', kernel, stride, padding, options.dilation, options.input);
  }

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    const g = this.geometryFor(x);
    const { positions: P, taps, offsets } = g;
    const C = g.input.channels;
    const plane = g.input.height * g.input.width;
    const y = outputActivation(ctx, x.n, 1, C * P);
    const argmax = passBuffers(ctx).indices(x.n * C * P);
    ctx.kernels.maxPoolForward(x.data, offsets, x.n * C, plane, P, taps, y.data, argmax);
    tape.input = x;
    tape.output = y;
    (tape as MaxPoolTape).argmax = argmax;
    return y;
  }

  /** dst[argmax[o]] += src[o]: the adjoint of picking the argmax (backward and R-backward). */
  private scatter(ctx: PassContext, src: Activation, tape: LayerTape): Activation {
    const argmax = argmaxOf(tape);
    const x = tape.input;
    const out = zeroActivation(ctx, x.n, x.tokens, x.width);
    ctx.kernels.scatterAdd(src.data, argmax, 1, 0, out.data);
    return out;
  }

  backward(ctx: PassContext, dy: Activation, tape: LayerTape, needInputGrad: boolean): Activation | null {
    tape.outputGrad = dy;
    return needInputGrad ? this.scatter(ctx, dy, tape) : null;
  }

  rForward(ctx: PassContext, _v: FloatArray, tape: LayerTape, rx: Activation | null): Activation {
    const argmax = argmaxOf(tape);
    const y = tape.output;
    const ry = rx
      ? outputActivation(ctx, y.n, y.tokens, y.width)
      : zeroActivation(ctx, y.n, y.tokens, y.width);
    if (rx) ctx.kernels.gather(rx.data, argmax, 1, 0, ry.data);
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
    return needInputGrad ? this.scatter(ctx, rdy, tape) : null;
  }
}

function argmaxOf(tape: LayerTape): Int32Array {
  const argmax = (tape as MaxPoolTape).argmax;
  if (!argmax) throw new Error('internal: forward has not run on this tape');
  return argmax;
}

export interface AvgPool2dOptions {
  /** Divide by the whole window, padding included (PyTorch's default, true), or by its in-image part. */
  countIncludePad?: boolean;
  /** Input image shape, when the layer cannot learn it from the previous layer. */
  input?: { channels: number; height: number; width: number };
}

/**
 * PyTorch's nn.AvgPool2d(kernel, stride = kernel, padding = 0, count_include_pad = true): the
 * mean of each window of each channel, zero padding counted in the divisor unless
 * `countIncludePad` is false. A fixed linear map M, so backward is Mᵀ, R{y} = M R{x} and
 * R{dx} = Mᵀ R{dy}.
 */
export class AvgPool2d extends Pool2d {
  readonly kind = 'avg-pool2d';
  readonly countIncludePad: boolean;
  private weights: Float64Array | null = null;

  constructor(kernel: Size2, stride?: Size2, padding?: Size2, options: AvgPool2dOptions = {}) {
    checkKnownKeys('AvgPool2d', options, ['countIncludePad', 'input']);
    super('AvgPool2d', kernel, stride, padding, undefined, options.input);
    this.countIncludePad = options.countIncludePad ?? true;
    if (typeof this.countIncludePad !== 'boolean')
      fail(`AvgPool2d: countIncludePad must be a boolean, got ${describe(this.countIncludePad)}`);
  }

  /** 1/divisor per output position. */
  private scales(g: PoolGeometry): Float64Array {
    if (!this.weights) {
      const { positions: P, taps, offsets } = g;
      this.weights = new Float64Array(P);
      for (let p = 0; p < P; p++) {
        let inside = 0;
        for (let q = 0; q < taps; q++) if (offsets[p * taps + q] >= 0) inside++;
        this.weights[p] = 1 / (this.countIncludePad ? taps : inside);
      }
    }
    return this.weights;
  }

  /** M src (adjoint: Mᵀ src) over a batch of n images. */
  private apply(ctx: PassContext, src: Activation, n: number, adjoint: boolean): Activation {
    const g = this.geometry!;
    const { positions: P, taps, offsets } = g;
    const C = g.input.channels;
    const plane = g.input.height * g.input.width;
    const scale = this.scales(g);
    // The adjoint adds each output into the taps of its window; the forward map writes every output.
    const out = adjoint ? zeroActivation(ctx, n, 1, C * plane) : outputActivation(ctx, n, 1, C * P);
    const s = src.data;
    const d = out.data;
    for (let ic = 0; ic < n * C; ic++) {
      const base = ic * plane;
      for (let p = 0; p < P; p++) {
        const o = ic * P + p;
        if (adjoint) {
          const v = s[o] * scale[p];
          for (let q = 0; q < taps; q++) {
            const off = offsets[p * taps + q];
            if (off >= 0) d[base + off] += v;
          }
        } else {
          let sum = 0;
          for (let q = 0; q < taps; q++) {
            const off = offsets[p * taps + q];
            if (off >= 0) sum += s[base + off];
          }
          d[o] = sum * scale[p];
        }
      }
    }
    return out;
  }

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    this.geometryFor(x);
    const y = this.apply(ctx, x, x.n, false);
    tape.input = x;
    tape.output = y;
    return y;
  }

  backward(ctx: PassContext, dy: Activation, tape: LayerTape, needInputGrad: boolean): Activation | null {
    tape.outputGrad = dy;
    return needInputGrad ? this.apply(ctx, dy, dy.n, true) : null;
  }

  rForward(ctx: PassContext, _v: FloatArray, tape: LayerTape, rx: Activation | null): Activation {
    const y = tape.output;
    const ry = rx ? this.apply(ctx, rx, rx.n, false) : zeroActivation(ctx, y.n, y.tokens, y.width);
    tape.rInput = rx;
    tape.rOutput = ry;
    return ry;
  }

  rBackward(
    ctx: PassContext,
    _v: FloatArray,
    _tape: LayerTape,
    rdy: Activation,
    _hv: FloatArray,
    needInputGrad: boolean,
  ): Activation | null {
    return needInputGrad ? this.apply(ctx, rdy, rdy.n, true) : null;
  }
}

/**
 * The mean of each channel over the whole image (PyTorch's nn.AdaptiveAvgPool2d(1)): [C, H, W] →
 * [C, 1, 1], i.e. width C. A fixed linear map, like AvgPool2d.
 */
export class GlobalAvgPool2d implements Layer {
  readonly kind = 'global-avg-pool2d';
  params: ParamSlot[] = [];
  private readonly givenInput: ImageShape | undefined;
  private image: ImageShape | null = null;

  constructor(options: { input?: { channels: number; height: number; width: number } } = {}) {
    checkKnownKeys('GlobalAvgPool2d', options, ['input']);
    this.givenInput = imageOption('GlobalAvgPool2d', options.input);
  }

  paramSpecs() {
    return [];
  }

  outputShape(input: ShapeWithImage): { tokens: number; width: number; image: ImageShape } {
    this.image = resolveImage('GlobalAvgPool2d', input, this.givenInput, this.image);
    const C = this.image.channels;
    return { tokens: 1, width: C, image: { channels: C, height: 1, width: 1 } };
  }

  private imageFor(x: Activation): ImageShape {
    const s = this.image;
    if (!s || x.tokens !== 1 || x.width !== s.channels * s.height * s.width)
      this.outputShape({ tokens: x.tokens, width: x.width });
    return this.image!;
  }

  /** Means (or, adjoint, the spread of each channel's value over its plane, divided by H·W). */
  private apply(ctx: PassContext, src: Activation, adjoint: boolean): Activation {
    const { channels: C, height, width } = this.image!;
    const plane = height * width;
    const n = src.n;
    const out = outputActivation(ctx, n, 1, adjoint ? C * plane : C);
    const s = src.data;
    const d = out.data;
    for (let ic = 0; ic < n * C; ic++) {
      const base = ic * plane;
      if (adjoint) {
        const v = s[ic] / plane;
        for (let e = 0; e < plane; e++) d[base + e] = v;
      } else {
        let sum = 0;
        for (let e = 0; e < plane; e++) sum += s[base + e];
        d[ic] = sum / plane;
      }
    }
    return out;
  }

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    this.imageFor(x);
    const y = this.apply(ctx, x, false);
    tape.input = x;
    tape.output = y;
    return y;
  }

  backward(ctx: PassContext, dy: Activation, tape: LayerTape, needInputGrad: boolean): Activation | null {
    tape.outputGrad = dy;
    return needInputGrad ? this.apply(ctx, dy, true) : null;
  }

  rForward(ctx: PassContext, _v: FloatArray, tape: LayerTape, rx: Activation | null): Activation {
    const y = tape.output;
    const ry = rx ? this.apply(ctx, rx, false) : zeroActivation(ctx, y.n, y.tokens, y.width);
    tape.rInput = rx;
    tape.rOutput = ry;
    return ry;
  }

  rBackward(
    ctx: PassContext,
    _v: FloatArray,
    _tape: LayerTape,
    rdy: Activation,
    _hv: FloatArray,
    needInputGrad: boolean,
  ): Activation | null {
    return needInputGrad ? this.apply(ctx, rdy, true) : null;
  }
}

/**
 * [n, T, width] → [n, 1, T·width], sharing the data (row-major, so nothing moves). On images
 * (tokens = 1, channels-first) it changes nothing but the shape the next layer is told: it ends
 * the image part of a network, as PyTorch's nn.Flatten() before the classifier does.
 */
export class Flatten implements Layer {
  readonly kind = 'flatten';
  params: ParamSlot[] = [];

  paramSpecs() {
    return [];
  }

  outputShape(input: { tokens: number; width: number }) {
    return { tokens: 1, width: input.tokens * input.width };
  }

  private static reshape(a: Activation, tokens: number, width: number): Activation {
    return { data: a.data, n: a.n, tokens, width };
  }

  forward(_ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    tape.input = x;
    tape.output = Flatten.reshape(x, 1, x.tokens * x.width);
    return tape.output;
  }

  backward(_ctx: PassContext, dy: Activation, tape: LayerTape, needInputGrad: boolean): Activation | null {
    tape.outputGrad = dy;
    return needInputGrad ? Flatten.reshape(dy, tape.input.tokens, tape.input.width) : null;
  }

  rForward(ctx: PassContext, _v: FloatArray, tape: LayerTape, rx: Activation | null): Activation {
    const y = tape.output;
    const ry = rx ? Flatten.reshape(rx, 1, y.width) : zeroActivation(ctx, y.n, 1, y.width);
    tape.rInput = rx;
    tape.rOutput = ry;
    return ry;
  }

  rBackward(
    _ctx: PassContext,
    _v: FloatArray,
    tape: LayerTape,
    rdy: Activation,
    _hv: FloatArray,
    needInputGrad: boolean,
  ): Activation | null {
    return needInputGrad ? Flatten.reshape(rdy, tape.input.tokens, tape.input.width) : null;
  }
}

import type { FloatArray } from '../kernels/types.js';
import {
  type Activation,
  activation,
  type Layer,
  type LayerTape,
  type ParamSlot,
  type PassContext,
} from './types.js';

/**
 * A parameter-free activation y = f(x), applied element by element. Its backward needs f′ and
 * its R-operator f″: R{dx} = f″(x)·R{x}·dy + f′(x)·R{dy}. Each function gets (x, y) so it can
 * use whichever is cheaper (tanh′ = 1 − y²).
 */
interface ElementwiseFunction {
  kind: string;
  df(x: number, y: number): number;
  d2f(x: number, y: number): number;
  /**
   * y = f(x) and dx = f′ ⊙ dy over whole arrays. These hot loops are written out per function
   * (not built from f and df) so that each one inlines its own arithmetic.
   */
  map(x: FloatArray, y: FloatArray): void;
  backprop(x: FloatArray, y: FloatArray, dy: FloatArray, dx: FloatArray): void;
}

class Elementwise implements Layer {
  readonly kind: string;
  params: ParamSlot[] = [];

  constructor(private readonly fn: ElementwiseFunction) {
    this.kind = fn.kind;
  }

  paramSpecs() {
    return [];
  }

  outputShape(input: { tokens: number; width: number }) {
    return input;
  }

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    const y = activation(ctx.dtype, x.n, x.tokens, x.width);
    this.fn.map(x.data, y.data);
    tape.input = x;
    tape.output = y;
    return y;
  }

  backward(ctx: PassContext, dy: Activation, tape: LayerTape, needInputGrad: boolean): Activation | null {
    tape.outputGrad = dy;
    if (!needInputGrad) return null;
    const dx = activation(ctx.dtype, dy.n, dy.tokens, dy.width);
    this.fn.backprop(tape.input.data, tape.output.data, dy.data, dx.data);
    return dx;
  }

  rForward(ctx: PassContext, _v: FloatArray, tape: LayerTape, rx: Activation | null): Activation {
    const x = tape.input;
    const ry = activation(ctx.dtype, x.n, x.tokens, x.width);
    if (rx) {
      const { df } = this.fn;
      const yd = tape.output.data;
      for (let e = 0; e < ry.data.length; e++) ry.data[e] = df(x.data[e], yd[e]) * rx.data[e];
    }
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
    const dy = tape.outputGrad;
    if (!dy) throw new Error('internal: backward has not run on this tape');
    const { df, d2f } = this.fn;
    const xd = tape.input.data;
    const yd = tape.output.data;
    const rx = tape.rInput?.data;
    const rdx = activation(ctx.dtype, rdy.n, rdy.tokens, rdy.width);
    for (let e = 0; e < rdx.data.length; e++) {
      let r = df(xd[e], yd[e]) * rdy.data[e];
      if (rx) r += d2f(xd[e], yd[e]) * rx[e] * dy.data[e];
      rdx.data[e] = r;
    }
    return rdx;
  }
}

const relu: ElementwiseFunction = {
  kind: 'relu',
  df: (x) => (x > 0 ? 1 : 0),
  d2f: () => 0,
  // Branch-free loops: activations have random signs, so branches mispredict (≈4× slower).
  map(x, y) {
    for (let e = 0; e < x.length; e++) {
      const v = x[e];
      y[e] = (v + Math.abs(v)) * 0.5; // NaN stays NaN
    }
  },
  backprop(x, _y, dy, dx) {
    for (let e = 0; e < x.length; e++) dx[e] = dy[e] * +(x[e] > 0);
  },
};

const tanh: ElementwiseFunction = {
  kind: 'tanh',
  df: (_x, y) => 1 - y * y,
  d2f: (_x, y) => -2 * y * (1 - y * y),
  map(x, y) {
    for (let e = 0; e < x.length; e++) y[e] = Math.tanh(x[e]);
  },
  backprop(_x, y, dy, dx) {
    for (let e = 0; e < y.length; e++) dx[e] = (1 - y[e] * y[e]) * dy[e];
  },
};

const sigmoid: ElementwiseFunction = {
  kind: 'sigmoid',
  df: (_x, y) => y * (1 - y),
  d2f: (_x, y) => y * (1 - y) * (1 - 2 * y),
  map(x, y) {
    for (let e = 0; e < x.length; e++) y[e] = 1 / (1 + Math.exp(-x[e]));
  },
  backprop(_x, y, dy, dx) {
    for (let e = 0; e < y.length; e++) dx[e] = y[e] * (1 - y[e]) * dy[e];
  },
};

// GELU with GPT-2's tanh approximation: ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³).
const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;
/** tanh(u) through one exp: about twice as fast as Math.tanh in V8, and exact to rounding for |u| ≳ 1e-8 (GELU only needs 1 + tanh). */
function fastTanh(u: number): number {
  return 1 - 2 / (Math.exp(2 * u) + 1);
}
function geluDf(x: number): number {
  const th = fastTanh(GELU_C * (x + GELU_A * x * x * x));
  const du = GELU_C * (1 + 3 * GELU_A * x * x);
  return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * du;
}
const gelu: ElementwiseFunction = {
  kind: 'gelu',
  df: geluDf,
  d2f: (x) => {
    const th = Math.tanh(GELU_C * (x + GELU_A * x * x * x));
    const sech2 = 1 - th * th;
    const du = GELU_C * (1 + 3 * GELU_A * x * x);
    const d2u = GELU_C * 6 * GELU_A * x;
    return sech2 * du - x * sech2 * th * du * du + 0.5 * x * sech2 * d2u;
  },
  map(x, y) {
    for (let e = 0; e < x.length; e++) {
      const v = x[e];
      y[e] = 0.5 * v * (1 + fastTanh(GELU_C * (v + GELU_A * v * v * v)));
    }
  },
  backprop(x, _y, dy, dx) {
    for (let e = 0; e < x.length; e++) dx[e] = geluDf(x[e]) * dy[e];
  },
};

export const ReLU = () => new Elementwise(relu);
export const Tanh = () => new Elementwise(tanh);
export const Sigmoid = () => new Elementwise(sigmoid);
export const GELU = () => new Elementwise(gelu);

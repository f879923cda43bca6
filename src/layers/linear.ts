import type { FloatArray } from '../kernels/types.js';
import { fail } from '../util/errors.js';
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
  slotView,
  tail,
} from './types.js';

/** Pairwise route scratch is nTrain·T × nVal·T; above this many elements it is done in chunks. */
const PAIRWISE_CHUNK_ELEMENTS = 1 << 22;
/** The self product's scratch (formed gradients or per-example Gram matrices) holds at most this many elements. */
const SELF_CHUNK_ELEMENTS = 1 << 22;

/**
 * y = x Wᵀ + b, applied to every token of every example.
 * Shapes: x [n, T, in], W [out, in] (PyTorch's layout), b [out], y [n, T, out].
 *
 * Example i's weight gradient is G_iᵀ A_i (A_i = its inputs [T, in], G_i = its output gradients
 * [T, out]) and its bias gradient Σ_t G_i,t; neither is ever formed by the ghost routes.
 */
export interface LinearOptions {
  /** Add a bias b (default true). */
  bias?: boolean;
  /** Weight initialisation; default PyTorch's U(−1/√in, 1/√in). GPT-2 uses normal(0, 0.02). */
  init?: ParamInit;
  /** Use another layer's [out, in] parameter as this weight (e.g. an LM head tied to the token embedding). */
  tiedWeight?: { layer: Layer; index: number };
}

export class Linear implements Layer {
  readonly kind = 'linear';
  params: ParamSlot[] = [];
  readonly bias: boolean;
  private readonly scratch = new Scratch();

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    private readonly options: LinearOptions = {},
  ) {
    this.bias = options.bias ?? true;
    if (!Number.isInteger(inFeatures) || inFeatures < 1)
      fail(`Linear: inFeatures must be a positive integer, got ${inFeatures}`);
    if (!Number.isInteger(outFeatures) || outFeatures < 1)
      fail(`Linear: outFeatures must be a positive integer, got ${outFeatures}`);
  }

  paramSpecs(): ParamSpec[] {
    // PyTorch's nn.Linear default: U(−1/√in, 1/√in) for both weight and bias; a custom weight
    // initialisation (GPT-2 style) comes with zero biases.
    const bound = 1 / Math.sqrt(this.inFeatures);
    const custom = this.options.init;
    const weight: ParamSpec = {
      name: 'weight',
      shape: [this.outFeatures, this.inFeatures],
      init: custom ?? { kind: 'uniform', bound },
      tiedTo: this.options.tiedWeight,
    };
    if (!this.bias) return [weight];
    const biasInit: ParamInit = custom ? { kind: 'constant', value: 0 } : { kind: 'uniform', bound };
    return [weight, { name: 'bias', shape: [this.outFeatures], init: biasInit }];
  }

  outputShape(input: { tokens: number; width: number }) {
    if (input.width !== this.inFeatures)
      fail(
        `Linear(${this.inFeatures}→${this.outFeatures}) got inputs of width ${input.width}, expected ${this.inFeatures}`,
      );
    return { tokens: input.tokens, width: this.outFeatures };
  }

  private weight(flat: FloatArray): FloatArray {
    return slotView(flat, this.params[0]);
  }

  private biasOf(flat: FloatArray): FloatArray | null {
    return this.bias ? slotView(flat, this.params[1]) : null;
  }

  /** y = x Wᵀ (+ b): the shared affine map of forward and R-forward. */
  private affine(ctx: PassContext, x: Activation, weights: FloatArray, y: Activation, beta: number): void {
    const rows = x.n * x.tokens;
    ctx.kernels.gemm(
      false,
      true,
      rows,
      this.outFeatures,
      this.inFeatures,
      1,
      x.data,
      this.inFeatures,
      this.weight(weights),
      this.inFeatures,
      beta,
      y.data,
      this.outFeatures,
    );
    const b = this.biasOf(weights);
    if (b) ctx.kernels.addBias(y.data, b, rows, this.outFeatures, 1);
  }

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    const y = outputActivation(ctx, x.n, x.tokens, this.outFeatures);
    this.affine(ctx, x, ctx.params, y, 0);
    tape.input = x;
    tape.output = y;
    return y;
  }

  backward(ctx: PassContext, dy: Activation, tape: LayerTape, needInputGrad: boolean): Activation | null {
    tape.outputGrad = dy;
    if (!needInputGrad) return null;
    const dx = outputActivation(ctx, dy.n, dy.tokens, this.inFeatures);
    ctx.kernels.gemm(
      false,
      false,
      dy.n * dy.tokens,
      this.inFeatures,
      this.outFeatures,
      1,
      dy.data,
      this.outFeatures,
      this.weight(ctx.params),
      this.inFeatures,
      0,
      dx.data,
      this.inFeatures,
    );
    return dx;
  }

  addGrad(ctx: PassContext, tape: LayerTape, examples: ExampleRange, scale: number, out: FloatArray): void {
    const { input: x, outputGrad: dy } = requireGrad(tape);
    const T = x.tokens;
    const rows = (examples.end - examples.start) * T;
    if (rows === 0) return;
    const first = examples.start * T;
    const a = tail(x.data, first * this.inFeatures);
    const g = tail(dy.data, first * this.outFeatures);
    ctx.kernels.gemm(
      true,
      false,
      this.outFeatures,
      this.inFeatures,
      rows,
      scale,
      g,
      this.outFeatures,
      a,
      this.inFeatures,
      1,
      this.weight(out),
      this.inFeatures,
    );
    const b = this.biasOf(out);
    if (b) ctx.kernels.sumBias(b, g, rows, this.outFeatures, 1, scale);
  }

  ghostCost(nTrain: number, nValidation: number, tokens: number) {
    return {
      pairwise: nTrain * nValidation * tokens * tokens * (this.inFeatures + this.outFeatures),
      vector: nTrain * tokens * this.inFeatures * this.outFeatures,
    };
  }

  ghostPairwise(ctx: PassContext, train: LayerTape, validation: LayerTape, out: Float64Array): void {
    const { input: xa, outputGrad: ga } = requireGrad(train);
    const { input: xv, outputGrad: gv } = requireGrad(validation);
    const T = xa.tokens;
    const nVal = xv.n;
    const valRows = nVal * T;
    const chunk = Math.max(1, Math.min(xa.n, Math.floor(PAIRWISE_CHUNK_ELEMENTS / (T * valRows))));
    const inputGram = this.scratch.take('inputGram', ctx.dtype, chunk * T * valRows);
    const gradGram = this.scratch.take('gradGram', ctx.dtype, chunk * T * valRows);
    // The bias acts like an extra input fixed at 1, so it adds 1 to every input Gram entry.
    const biasTerm = this.bias ? 1 : 0;
    for (let start = 0; start < xa.n; start += chunk) {
      const count = Math.min(chunk, xa.n - start);
      const rows = count * T;
      // (A_i A_jᵀ)_{ts} and (G_i G_jᵀ)_{ts} for a block of training examples against all of V.
      ctx.kernels.gemm(
        false,
        true,
        rows,
        valRows,
        this.inFeatures,
        1,
        tail(xa.data, start * T * this.inFeatures),
        this.inFeatures,
        xv.data,
        this.inFeatures,
        0,
        inputGram,
        valRows,
      );
      ctx.kernels.gemm(
        false,
        true,
        rows,
        valRows,
        this.outFeatures,
        1,
        tail(ga.data, start * T * this.outFeatures),
        this.outFeatures,
        gv.data,
        this.outFeatures,
        0,
        gradGram,
        valRows,
      );
      if (T === 1) {
        // One row per example: out[i·|V| + j] += (A_i·A_j + 1 with a bias)(G_i·G_j), element-wise
        // products accumulated in float64 (columnSums over one row).
        const outRows = out.subarray(start * nVal, (start + count) * nVal);
        ctx.kernels.columnSums(outRows, gradGram, inputGram, 1, 1, count * nVal);
        if (biasTerm) ctx.kernels.columnSums(outRows, gradGram, null, 1, 1, count * nVal);
        continue;
      }
      for (let i = 0; i < count; i++) {
        const outRow = (start + i) * nVal;
        for (let t = 0; t < T; t++) {
          const rowBase = (i * T + t) * valRows;
          for (let j = 0; j < nVal; j++) {
            let sum = 0;
            const base = rowBase + j * T;
            for (let s = 0; s < T; s++) sum += (inputGram[base + s] + biasTerm) * gradGram[base + s];
            out[outRow + j] += sum;
          }
        }
      }
    }
  }

  ghostDot(ctx: PassContext, tape: LayerTape, us: FloatArray[], outs: Float64Array[]): void {
    const { input: x, outputGrad: dy } = requireGrad(tape);
    const rows = x.n * x.tokens;
    const T = x.tokens;
    const width = this.outFeatures;
    const projected = this.scratch.take('projected', ctx.dtype, rows * width);
    for (let k = 0; k < us.length; k++) {
      // ⟨G_iᵀA_i, U⟩ + ⟨Σ_t G_i,t, u_b⟩ = Σ_t ⟨G_i,t, U A_i,t + u_b⟩: one extra forward-sized
      // product per vector, then per-example dot products (summed in float64).
      ctx.kernels.gemm(
        false,
        true,
        rows,
        width,
        this.inFeatures,
        1,
        x.data,
        this.inFeatures,
        this.weight(us[k]),
        this.inFeatures,
        0,
        projected,
        width,
      );
      const ub = this.biasOf(us[k]);
      if (ub) ctx.kernels.addBias(projected, ub, rows, width, 1);
      const L = T * width;
      ctx.kernels.rowDots(dy.data, projected, null, x.n, L, L, L, outs[k]);
    }
  }

  ghostSelfDot(ctx: PassContext, tape: LayerTape, weights: FloatArray | null, out: Float64Array): void {
    const { input: x, outputGrad: dy } = requireGrad(tape);
    const T = x.tokens;
    const inF = this.inFeatures;
    const outF = this.outFeatures;
    const wb = weights ? this.biasOf(weights) : null;
    if (T === 1) {
      // g_i = δ_i a_iᵀ: Σ_rc w_rc δ_r² a_c² = ⟨δ_i², W a_i²⟩, or ‖δ_i‖²‖a_i‖² when w = 1.
      let projected: FloatArray | null = null;
      if (weights) {
        const squares = this.scratch.take('squares', ctx.dtype, x.n * inF);
        for (let e = 0; e < squares.length; e++) squares[e] = x.data[e] * x.data[e];
        projected = this.scratch.take('projected', ctx.dtype, x.n * outF);
        ctx.kernels.gemm(
          false,
          true,
          x.n,
          outF,
          inF,
          1,
          squares,
          inF,
          this.weight(weights),
          inF,
          0,
          projected,
          outF,
        );
      }
      for (let i = 0; i < x.n; i++) {
        let sum = 0;
        let biasSum = 0;
        if (projected) {
          for (let r = 0; r < outF; r++) {
            const d2 = dy.data[i * outF + r] ** 2;
            sum += d2 * projected[i * outF + r];
            if (this.bias) biasSum += d2 * (wb ? wb[r] : 1);
          }
        } else {
          let a2 = 0;
          let d2 = 0;
          for (let c = 0; c < inF; c++) a2 += x.data[i * inF + c] ** 2;
          for (let r = 0; r < outF; r++) d2 += dy.data[i * outF + r] ** 2;
          sum = a2 * d2;
          if (this.bias) biasSum = d2;
        }
        out[i] += sum + biasSum;
      }
      return;
    }
    if (!weights && this.selfGramCheaper(x.n, T)) {
      this.ghostSelfDotGram(ctx, x, dy, out);
      return;
    }
    // Sequences: g_i = G_iᵀA_i formed for a chunk of examples at a time by one batched gemm.
    const D = outF * inF;
    const chunk = Math.max(1, Math.min(x.n, Math.floor(SELF_CHUNK_ELEMENTS / D)));
    const g = this.scratch.take('gradients', ctx.dtype, chunk * D);
    const ww = weights ? this.weight(weights) : null;
    for (let start = 0; start < x.n; start += chunk) {
      const count = Math.min(chunk, x.n - start);
      const dyc = tail(dy.data, start * T * outF);
      ctx.kernels.gemmBatched(
        true,
        false,
        outF,
        inF,
        T,
        1,
        dyc,
        outF,
        T * outF,
        tail(x.data, start * T * inF),
        inF,
        T * inF,
        0,
        g,
        inF,
        D,
        count,
      );
      ctx.kernels.rowDots(g, g, ww, count, D, D, D, out.subarray(start, start + count));
      if (!this.bias) continue;
      for (let j = 0; j < count; j++) {
        const dyi = dyc.subarray(j * T * outF);
        let sum = 0;
        for (let r = 0; r < outF; r++) {
          let b = 0;
          for (let t = 0; t < T; t++) b += dyi[t * outF + r];
          sum += (wb ? wb[r] : 1) * b * b;
        }
        out[start + j] += sum;
      }
    }
  }

  /**
   * Whether the Gram form of the self product, n·T²·(in + out) multiply-adds, beats forming each
   * gradient, n·T·in·out (both with unit weights; a diagonal metric needs the formed gradients).
   */
  private selfGramCheaper(n: number, T: number): boolean {
    return T * (this.inFeatures + this.outFeatures) < this.inFeatures * this.outFeatures && n > 0;
  }

  /**
   * ‖g_i‖² = ‖G_iᵀA_i‖² + ‖Σ_t G_i,t‖² = Σ_{t,s} (a_t·a_s + 1)(δ_t·δ_s): per-example T×T Gram
   * matrices of inputs and output gradients (batched gemms), never the gradient itself.
   */
  private ghostSelfDotGram(ctx: PassContext, x: Activation, dy: Activation, out: Float64Array): void {
    const T = x.tokens;
    const inF = this.inFeatures;
    const outF = this.outFeatures;
    const TT = T * T;
    const chunk = Math.max(1, Math.min(x.n, Math.floor(SELF_CHUNK_ELEMENTS / TT)));
    const inputGram = this.scratch.take('inputGram', ctx.dtype, chunk * TT);
    const gradGram = this.scratch.take('gradGram', ctx.dtype, chunk * TT);
    const biasTerm = this.bias ? 1 : 0;
    for (let start = 0; start < x.n; start += chunk) {
      const count = Math.min(chunk, x.n - start);
      const a = tail(x.data, start * T * inF);
      const g = tail(dy.data, start * T * outF);
      ctx.kernels.gemmBatched(
        false,
        true,
        T,
        T,
        inF,
        1,
        a,
        inF,
        T * inF,
        a,
        inF,
        T * inF,
        0,
        inputGram,
        T,
        TT,
        count,
      );
      ctx.kernels.gemmBatched(
        false,
        true,
        T,
        T,
        outF,
        1,
        g,
        outF,
        T * outF,
        g,
        outF,
        T * outF,
        0,
        gradGram,
        T,
        TT,
        count,
      );
      for (let j = 0; j < count; j++) {
        let sum = 0;
        for (let e = j * TT; e < (j + 1) * TT; e++) sum += (inputGram[e] + biasTerm) * gradGram[e];
        out[start + j] += sum;
      }
    }
  }

  ghostDotEach(
    ctx: PassContext,
    tape: LayerTape,
    us: FloatArray[],
    which: Int32Array,
    out: Float64Array,
  ): void {
    const { input: x, outputGrad: dy } = requireGrad(tape);
    const T = x.tokens;
    const inF = this.inFeatures;
    const outF = this.outFeatures;
    // Examples grouped by their vector: gather their rows, then as ghostDot on the group.
    for (let k = 0; k < us.length; k++) {
      const members: number[] = [];
      for (let i = 0; i < x.n; i++) if (which[i] === k) members.push(i);
      if (members.length === 0) continue;
      const rows = members.length * T;
      const gathered = this.scratch.take('gathered', ctx.dtype, rows * inF);
      members.forEach((i, r) => {
        gathered.set(x.data.subarray(i * T * inF, (i + 1) * T * inF), r * T * inF);
      });
      const projected = this.scratch.take('projected', ctx.dtype, rows * outF);
      ctx.kernels.gemm(
        false,
        true,
        rows,
        outF,
        inF,
        1,
        gathered,
        inF,
        this.weight(us[k]),
        inF,
        0,
        projected,
        outF,
      );
      const ub = this.biasOf(us[k]);
      if (ub) ctx.kernels.addBias(projected, ub, rows, outF, 1);
      members.forEach((i, r) => {
        let sum = 0;
        const base = i * T * outF;
        for (let e = 0; e < T * outF; e++) sum += dy.data[base + e] * projected[r * T * outF + e];
        out[i] += sum;
      });
    }
  }

  rForward(ctx: PassContext, v: FloatArray, tape: LayerTape, rx: Activation | null): Activation {
    // R{y} = R{x} Wᵀ + x Vᵀ + v_b
    const x = tape.input;
    const ry = outputActivation(ctx, x.n, x.tokens, this.outFeatures);
    this.affine(ctx, x, v, ry, 0);
    if (rx) {
      ctx.kernels.gemm(
        false,
        true,
        x.n * x.tokens,
        this.outFeatures,
        this.inFeatures,
        1,
        rx.data,
        this.inFeatures,
        this.weight(ctx.params),
        this.inFeatures,
        1,
        ry.data,
        this.outFeatures,
      );
    }
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
    const { input: x, outputGrad: dy } = requireGrad(tape);
    const rows = x.n * x.tokens;
    const inF = this.inFeatures;
    const outF = this.outFeatures;
    // R{dW} = R{dy}ᵀ x + dyᵀ R{x};  R{db} = Σ R{dy}
    ctx.kernels.gemm(true, false, outF, inF, rows, 1, rdy.data, outF, x.data, inF, 1, this.weight(hv), inF);
    if (tape.rInput)
      ctx.kernels.gemm(
        true,
        false,
        outF,
        inF,
        rows,
        1,
        dy.data,
        outF,
        tape.rInput.data,
        inF,
        1,
        this.weight(hv),
        inF,
      );
    const hb = this.biasOf(hv);
    if (hb) ctx.kernels.sumBias(hb, rdy.data, rows, outF, 1, 1);
    if (!needInputGrad) return null;
    // R{dx} = R{dy} W + dy V
    const rdx = outputActivation(ctx, x.n, x.tokens, inF);
    ctx.kernels.gemm(
      false,
      false,
      rows,
      inF,
      outF,
      1,
      rdy.data,
      outF,
      this.weight(ctx.params),
      inF,
      0,
      rdx.data,
      inF,
    );
    ctx.kernels.gemm(false, false, rows, inF, outF, 1, dy.data, outF, this.weight(v), inF, 1, rdx.data, inF);
    return rdx;
  }
}

export function requireGrad(tape: LayerTape): { input: Activation; outputGrad: Activation } {
  if (!tape.outputGrad) throw new Error('internal: backward has not run on this tape');
  return { input: tape.input, outputGrad: tape.outputGrad };
}

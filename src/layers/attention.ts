import type { FloatArray } from '../kernels/types.js';
import { fail } from '../util/errors.js';
import { Scratch } from './scratch.js';
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

/**
 * What attention keeps on its tape besides A and G, each [n, heads, T, T] row-major:
 * - probs: the attention probabilities P = softmax(mask(Q Kᵀ/√dh)), exactly 0 above the diagonal;
 * - rProbs: R{P} from the latest rForward (null when its input was data).
 */
type AttentionTape = LayerTape & {
  probs?: FloatArray;
  rProbs?: FloatArray | null;
};

/**
 * The parameter-free core of GPT-2 multi-head causal self-attention; its projections are the
 * surrounding Linear layers. Input [n, T, 3d] holds q, k and v per token in GPT-2's c_attn layout
 * (columns [0, d) q, [d, 2d) k, [2d, 3d) v; head h takes columns h·dh … (h+1)·dh of each, with
 * dh = d/heads); output [n, T, d] holds the heads side by side in the same layout. Per example
 * and head:
 *
 *   S = Q Kᵀ/√dh,   P = softmax(S) row-wise over s ≤ t (token t sees tokens s ≤ t),   O = P V.
 *
 * (The brief's A, the probabilities, is called P here to keep it apart from the tape's input A.)
 * Examples never mix. Q, K and V are strided views into the input rows (leading dimension 3d),
 * so every product is one batched gemm over all (example, head) pairs, without copies.
 */
export class CausalSelfAttention implements Layer {
  readonly kind = 'causal-self-attention';
  params: ParamSlot[] = [];
  private readonly scratch = new Scratch();

  constructor(readonly heads: number) {
    if (!Number.isInteger(heads) || heads < 1)
      fail(`CausalSelfAttention: heads must be a positive integer, got ${heads}`);
  }

  paramSpecs() {
    return [];
  }

  outputShape(input: { tokens: number; width: number }) {
    const { width } = input;
    if (width % (3 * this.heads) !== 0 || width === 0)
      fail(
        `CausalSelfAttention(${this.heads} heads) needs input width 3·d with d divisible by ${this.heads} ` +
          `(concatenated q, k, v), got width ${width}, which is not a positive multiple of ${3 * this.heads}`,
      );
    return { tokens: input.tokens, width: width / 3 };
  }

  /** Sizes for an input of this shape: d, dh, the input row length 3d and 1/√dh. */
  private dims(x: Activation) {
    const d = this.outputShape(x).width;
    const dh = d / this.heads;
    return { d, dh, w: 3 * d, scale: 1 / Math.sqrt(dh) };
  }

  /**
   * Strided views for one call over all (example, head) pairs: problem (i, h) starts at
   * i·stride + h·innerStride of `data`, with leading dimension ld.
   */
  private views(x: Activation) {
    const T = x.tokens;
    const { d, dh, w } = this.dims(x);
    const H = this.heads;
    return {
      /** Column block `col` (0 q, 1 k, 2 v) of an [n, T, 3d] array. */
      qkv: (data: FloatArray, col: number): View => ({
        data: data.subarray(col * d),
        ld: w,
        stride: T * w,
        innerStride: dh,
      }),
      /** An [n, T, d] array, heads side by side. */
      out: (data: FloatArray): View => ({ data, ld: d, stride: T * d, innerStride: dh }),
      /** An [n, heads, T, T] array. */
      square: (data: FloatArray): View => ({ data, ld: T, stride: H * T * T, innerStride: T * T }),
    };
  }

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    const { n, tokens: T } = x;
    const { d, dh, scale } = this.dims(x);
    const H = this.heads;
    const mm = batchedGemm(ctx, n, H);
    const { qkv, out, square } = this.views(x);
    const y = outputActivation(ctx, n, T, d);
    const probs = passBuffers(ctx).uninitialized(ctx.dtype, n * H * T * T);
    // S = Q Kᵀ/√dh, then the masked softmax in place.
    mm(false, true, T, T, dh, scale, qkv(x.data, 0), qkv(x.data, 1), 0, square(probs));
    ctx.kernels.causalSoftmaxForward(probs, n * H, T);
    // O = P V.
    mm(false, false, T, dh, T, 1, square(probs), qkv(x.data, 2), 0, out(y.data));
    const t = tape as AttentionTape;
    t.input = x;
    t.output = y;
    t.probs = probs;
    return y;
  }

  backward(ctx: PassContext, dy: Activation, tape: LayerTape, needInputGrad: boolean): Activation | null {
    tape.outputGrad = dy;
    if (!needInputGrad) return null;
    // dV = Pᵀ dO;  dP = dO Vᵀ;  dS = P ⊙ (dP − rowsum(dP ⊙ P));  dQ = dS K/√dh;  dK = dSᵀ Q/√dh.
    const x = tape.input;
    const probs = savedProbs(tape);
    const { n, tokens: T } = x;
    const { dh, w, scale } = this.dims(x);
    const H = this.heads;
    const mm = batchedGemm(ctx, n, H);
    const { qkv, out, square } = this.views(x);
    const q = qkv(x.data, 0);
    const k = qkv(x.data, 1);
    const v = qkv(x.data, 2);
    const P = square(probs);
    const dO = out(dy.data);
    const dx = outputActivation(ctx, n, T, w);
    const dS = this.scratch.take('dS', ctx.dtype, n * H * T * T);
    mm(true, false, T, dh, T, 1, P, dO, 0, qkv(dx.data, 2));
    mm(false, true, T, T, dh, 1, dO, v, 0, square(dS));
    ctx.kernels.causalSoftmaxBackward(probs, dS, n * H, T);
    mm(false, false, T, dh, T, scale, square(dS), k, 0, qkv(dx.data, 0));
    mm(true, false, T, dh, T, scale, square(dS), q, 0, qkv(dx.data, 1));
    return dx;
  }

  rForward(ctx: PassContext, _v: FloatArray, tape: LayerTape, rx: Activation | null): Activation {
    // R{S} = (R{Q} Kᵀ + Q R{K}ᵀ)/√dh;  R{P} = P ⊙ (R{S} − rowsum(P ⊙ R{S}));  R{O} = R{P} V + P R{V}.
    const t = tape as AttentionTape;
    const x = tape.input;
    const probs = savedProbs(tape);
    const { n, tokens: T } = x;
    const { d, dh, scale } = this.dims(x);
    const H = this.heads;
    // Without R{x} (the input is data) R{y} is zero.
    const ry = rx ? outputActivation(ctx, n, T, d) : zeroActivation(ctx, n, T, d);
    let rProbs: FloatArray | null = null;
    if (rx) {
      const mm = batchedGemm(ctx, n, H);
      const { qkv, out, square } = this.views(x);
      rProbs = passBuffers(ctx).uninitialized(ctx.dtype, n * H * T * T);
      const rP = square(rProbs);
      mm(false, true, T, T, dh, scale, qkv(rx.data, 0), qkv(x.data, 1), 0, rP);
      mm(false, true, T, T, dh, scale, qkv(x.data, 0), qkv(rx.data, 1), 1, rP);
      ctx.kernels.causalSoftmaxBackward(probs, rProbs, n * H, T);
      const ro = out(ry.data);
      mm(false, false, T, dh, T, 1, rP, qkv(x.data, 2), 0, ro);
      mm(false, false, T, dh, T, 1, square(probs), qkv(rx.data, 2), 1, ro);
    }
    t.rInput = rx;
    t.rOutput = ry;
    t.rProbs = rProbs;
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
    const x = tape.input;
    const probs = savedProbs(tape);
    const rx = tape.rInput?.data ?? null;
    const rProbs = (tape as AttentionTape).rProbs ?? null;
    if (rx && !rProbs) throw new Error('internal: rForward has not run on this tape');
    const { n, tokens: T } = x;
    const { dh, w, scale } = this.dims(x);
    const H = this.heads;
    const mm = batchedGemm(ctx, n, H);
    const { qkv, out, square } = this.views(x);
    const q = qkv(x.data, 0);
    const k = qkv(x.data, 1);
    const v = qkv(x.data, 2);
    const P = square(probs);
    const dO = out(dy.data);
    const rdO = out(rdy.data);
    const rdx = outputActivation(ctx, n, T, w);
    const rdQ = qkv(rdx.data, 0);
    const rdK = qkv(rdx.data, 1);
    const rdV = qkv(rdx.data, 2);
    const dS = this.scratch.take('dS', ctx.dtype, n * H * T * T);
    const rdS = this.scratch.take('rdS', ctx.dtype, n * H * T * T);

    // R{dV} = R{P}ᵀ dO + Pᵀ R{dO}.
    mm(true, false, T, dh, T, 1, P, rdO, 0, rdV);
    if (rProbs) mm(true, false, T, dh, T, 1, square(rProbs), dO, 1, rdV);
    // dP = dO Vᵀ;  R{dP} = R{dO} Vᵀ + dO R{V}ᵀ.
    mm(false, true, T, T, dh, 1, dO, v, 0, square(dS));
    mm(false, true, T, T, dh, 1, rdO, v, 0, square(rdS));
    if (rx) mm(false, true, T, T, dh, 1, dO, qkv(rx, 2), 1, square(rdS));
    // dS = P ⊙ (dP − c), c = rowsum(dP ⊙ P);
    // R{dS} = R{P} ⊙ (dP − c) + P ⊙ (R{dP} − rowsum(R{dP} ⊙ P + dP ⊙ R{P})).
    ctx.kernels.causalSoftmaxRBackward(probs, rProbs, dS, rdS, n * H, T);
    // R{dQ} = (R{dS} K + dS R{K})/√dh;  R{dK} = (R{dS}ᵀ Q + dSᵀ R{Q})/√dh.
    mm(false, false, T, dh, T, scale, square(rdS), k, 0, rdQ);
    if (rx) mm(false, false, T, dh, T, scale, square(dS), qkv(rx, 1), 1, rdQ);
    mm(true, false, T, dh, T, scale, square(rdS), q, 0, rdK);
    if (rx) mm(true, false, T, dh, T, scale, square(dS), qkv(rx, 0), 1, rdK);
    return rdx;
  }
}

/** A matrix operand repeated over (example, head): see CausalSelfAttention.views. */
interface View {
  data: FloatArray;
  ld: number;
  stride: number;
  innerStride: number;
}

/**
 * C ← alpha·op(A)·op(B) + beta·C for every (example, head) pair in one kernels call, so the
 * per-call overhead is paid once per product instead of n·heads times.
 */
function batchedGemm(ctx: PassContext, n: number, heads: number) {
  const kernels = ctx.kernels;
  return (
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: View,
    B: View,
    beta: number,
    C: View,
  ): void =>
    kernels.gemmBatched(
      transA,
      transB,
      M,
      N,
      K,
      alpha,
      A.data,
      A.ld,
      A.stride,
      B.data,
      B.ld,
      B.stride,
      beta,
      C.data,
      C.ld,
      C.stride,
      n,
      heads,
      A.innerStride,
      B.innerStride,
      C.innerStride,
    );
}

function savedProbs(tape: LayerTape): FloatArray {
  const probs = (tape as AttentionTape).probs;
  if (!probs) throw new Error('internal: forward has not run on this tape');
  return probs;
}

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
  tail,
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

  /** The per-head width dh of an input [n, T, 3d] (its width checked when the model was built). */
  private headWidth(x: Activation): number {
    return x.width / 3 / this.heads;
  }

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    const { n, tokens: T } = x;
    const H = this.heads;
    const dh = this.headWidth(x);
    const mm = new BatchedGemm(ctx, n, T, H, dh);
    const y = outputActivation(ctx, n, T, H * dh);
    const probs = passBuffers(ctx).uninitialized(ctx.dtype, n * H * T * T);
    // S = Q Kᵀ/√dh, then the masked softmax in place.
    mm.run(false, true, T, T, dh, mm.scale, mm.qkv(x.data, 0), mm.qkv(x.data, 1), 0, mm.square(probs));
    ctx.kernels.causalSoftmaxForward(probs, n * H, T);
    // O = P V.
    mm.run(false, false, T, dh, T, 1, mm.square(probs), mm.qkv(x.data, 2), 0, mm.heads(y.data));
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
    const H = this.heads;
    const dh = this.headWidth(x);
    const mm = new BatchedGemm(ctx, n, T, H, dh);
    const P = mm.square(probs);
    const dO = mm.heads(dy.data);
    const dx = outputActivation(ctx, n, T, x.width);
    const dS = this.scratch.take('dS', ctx.dtype, n * H * T * T);
    mm.run(true, false, T, dh, T, 1, P, dO, 0, mm.qkv(dx.data, 2));
    mm.run(false, true, T, T, dh, 1, dO, mm.qkv(x.data, 2), 0, mm.square(dS));
    ctx.kernels.causalSoftmaxBackward(probs, dS, n * H, T);
    mm.run(false, false, T, dh, T, mm.scale, mm.square(dS), mm.qkv(x.data, 1), 0, mm.qkv(dx.data, 0));
    mm.run(true, false, T, dh, T, mm.scale, mm.square(dS), mm.qkv(x.data, 0), 0, mm.qkv(dx.data, 1));
    return dx;
  }

  rForward(ctx: PassContext, _v: FloatArray, tape: LayerTape, rx: Activation | null): Activation {
    // R{S} = (R{Q} Kᵀ + Q R{K}ᵀ)/√dh;  R{P} = P ⊙ (R{S} − rowsum(P ⊙ R{S}));  R{O} = R{P} V + P R{V}.
    const t = tape as AttentionTape;
    const x = tape.input;
    const probs = savedProbs(tape);
    const { n, tokens: T } = x;
    const H = this.heads;
    const dh = this.headWidth(x);
    // Without R{x} (the input is data) R{y} is zero.
    const ry = rx ? outputActivation(ctx, n, T, H * dh) : zeroActivation(ctx, n, T, H * dh);
    let rProbs: FloatArray | null = null;
    if (rx) {
      const mm = new BatchedGemm(ctx, n, T, H, dh);
      rProbs = passBuffers(ctx).uninitialized(ctx.dtype, n * H * T * T);
      const rP = mm.square(rProbs);
      mm.run(false, true, T, T, dh, mm.scale, mm.qkv(rx.data, 0), mm.qkv(x.data, 1), 0, rP);
      mm.run(false, true, T, T, dh, mm.scale, mm.qkv(x.data, 0), mm.qkv(rx.data, 1), 1, rP);
      ctx.kernels.causalSoftmaxBackward(probs, rProbs, n * H, T);
      const ro = mm.heads(ry.data);
      mm.run(false, false, T, dh, T, 1, rP, mm.qkv(x.data, 2), 0, ro);
      mm.run(false, false, T, dh, T, 1, mm.square(probs), mm.qkv(rx.data, 2), 1, ro);
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
    const H = this.heads;
    const dh = this.headWidth(x);
    const mm = new BatchedGemm(ctx, n, T, H, dh);
    const scale = mm.scale;
    const q = mm.qkv(x.data, 0);
    const k = mm.qkv(x.data, 1);
    const v = mm.qkv(x.data, 2);
    const P = mm.square(probs);
    const dO = mm.heads(dy.data);
    const rdO = mm.heads(rdy.data);
    const rdx = outputActivation(ctx, n, T, x.width);
    const rdQ = mm.qkv(rdx.data, 0);
    const rdK = mm.qkv(rdx.data, 1);
    const rdV = mm.qkv(rdx.data, 2);
    const dS = this.scratch.take('dS', ctx.dtype, n * H * T * T);
    const rdS = this.scratch.take('rdS', ctx.dtype, n * H * T * T);

    // R{dV} = R{P}ᵀ dO + Pᵀ R{dO}.
    mm.run(true, false, T, dh, T, 1, P, rdO, 0, rdV);
    if (rProbs) mm.run(true, false, T, dh, T, 1, mm.square(rProbs), dO, 1, rdV);
    // dP = dO Vᵀ;  R{dP} = R{dO} Vᵀ + dO R{V}ᵀ.
    mm.run(false, true, T, T, dh, 1, dO, v, 0, mm.square(dS));
    mm.run(false, true, T, T, dh, 1, rdO, v, 0, mm.square(rdS));
    if (rx) mm.run(false, true, T, T, dh, 1, dO, mm.qkv(rx, 2), 1, mm.square(rdS));
    // dS = P ⊙ (dP − c), c = rowsum(dP ⊙ P);
    // R{dS} = R{P} ⊙ (dP − c) + P ⊙ (R{dP} − rowsum(R{dP} ⊙ P + dP ⊙ R{P})).
    ctx.kernels.causalSoftmaxRBackward(probs, rProbs, dS, rdS, n * H, T);
    // R{dQ} = (R{dS} K + dS R{K})/√dh;  R{dK} = (R{dS}ᵀ Q + dSᵀ R{Q})/√dh.
    mm.run(false, false, T, dh, T, scale, mm.square(rdS), k, 0, rdQ);
    if (rx) mm.run(false, false, T, dh, T, scale, mm.square(dS), mm.qkv(rx, 1), 1, rdQ);
    mm.run(true, false, T, dh, T, scale, mm.square(rdS), q, 0, rdK);
    if (rx) mm.run(true, false, T, dh, T, scale, mm.square(dS), mm.qkv(rx, 0), 1, rdK);
    return rdx;
  }
}

/**
 * A matrix operand repeated over (example, head): problem (i, h) starts at element
 * i·stride + h·innerStride of `data`, with leading dimension ld.
 */
interface View {
  data: FloatArray;
  /** Where `data` starts in the array it was made from. */
  offset: number;
  ld: number;
  stride: number;
  innerStride: number;
}

/**
 * The views made so far, per array. A pass's arrays come back from its arena step after step, so
 * each view is made once (as slotView does for parameter slices); the map is keyed weakly by the
 * array, so its views go with it.
 */
const madeViews = new WeakMap<FloatArray, View[]>();
/** An array used with more shapes than this drops its oldest views (a bound, never reached by one model). */
const MAX_VIEWS_PER_ARRAY = 16;

function view(data: FloatArray, offset: number, ld: number, stride: number, innerStride: number): View {
  let views = madeViews.get(data);
  if (views === undefined) {
    views = [];
    madeViews.set(data, views);
  }
  for (let k = 0; k < views.length; k++) {
    const v = views[k];
    if (v.offset === offset && v.ld === ld && v.stride === stride && v.innerStride === innerStride) return v;
  }
  const made = { data: tail(data, offset), offset, ld, stride, innerStride };
  if (views.length === MAX_VIEWS_PER_ARRAY) views.shift();
  views.push(made);
  return made;
}

/**
 * C ← alpha·op(A)·op(B) + beta·C for every (example, head) pair in one kernels call, so the
 * per-call overhead is paid once per product instead of n·heads times; and the layer's three
 * layouts as views for it.
 */
class BatchedGemm {
  /** 1/√dh, the scores' scale. */
  readonly scale: number;

  constructor(
    private readonly ctx: PassContext,
    private readonly n: number,
    private readonly T: number,
    private readonly H: number,
    private readonly dh: number,
  ) {
    this.scale = 1 / Math.sqrt(dh);
  }

  /** Column block `col` (0 q, 1 k, 2 v) of an [n, T, 3d] array. */
  qkv(data: FloatArray, col: number): View {
    const d = this.H * this.dh;
    return view(data, col * d, 3 * d, this.T * 3 * d, this.dh);
  }

  /** An [n, T, d] array, heads side by side. */
  heads(data: FloatArray): View {
    const d = this.H * this.dh;
    return view(data, 0, d, this.T * d, this.dh);
  }

  /** An [n, heads, T, T] array. */
  square(data: FloatArray): View {
    const T = this.T;
    return view(data, 0, T, this.H * T * T, T * T);
  }

  run(
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
  ): void {
    this.ctx.kernels.gemmBatched(
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
      this.n,
      this.H,
      A.innerStride,
      B.innerStride,
      C.innerStride,
    );
  }
}

function savedProbs(tape: LayerTape): FloatArray {
  const probs = (tape as AttentionTape).probs;
  if (!probs) throw new Error('internal: forward has not run on this tape');
  return probs;
}

import { allocFloat } from '../kernels/index.js';
import type { FloatArray } from '../kernels/types.js';
import { fail } from '../util/errors.js';
import {
  type Activation,
  activation,
  type Layer,
  type LayerTape,
  type ParamSlot,
  type PassContext,
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
 * so every product is one gemm per (example, head) on subarrays, without copies.
 */
export class CausalSelfAttention implements Layer {
  readonly kind = 'causal-self-attention';
  params: ParamSlot[] = [];

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

  forward(ctx: PassContext, x: Activation, tape: LayerTape): Activation {
    const { n, tokens: T } = x;
    const { d, dh, w, scale } = this.dims(x);
    const H = this.heads;
    const gemm = ctx.kernels.gemm.bind(ctx.kernels);
    const xd = x.data;
    const y = activation(ctx.dtype, n, T, d);
    const probs = allocFloat(ctx.dtype, n * H * T * T);
    for (let i = 0; i < n; i++) {
      const xb = i * T * w;
      for (let h = 0; h < H; h++) {
        const q = xd.subarray(xb + h * dh);
        const k = xd.subarray(xb + d + h * dh);
        const v = xd.subarray(xb + 2 * d + h * dh);
        const p = probs.subarray((i * H + h) * T * T, (i * H + h + 1) * T * T);
        // S = Q Kᵀ/√dh, then the masked softmax in place.
        gemm(false, true, T, T, dh, scale, q, w, k, w, 0, p, T);
        for (let t = 0; t < T; t++) {
          const row = t * T;
          let max = -Infinity;
          for (let s = 0; s <= t; s++) if (p[row + s] > max) max = p[row + s];
          let sum = 0;
          for (let s = 0; s <= t; s++) {
            const e = Math.exp(p[row + s] - max);
            p[row + s] = e;
            sum += e;
          }
          const inv = 1 / sum;
          for (let s = 0; s <= t; s++) p[row + s] *= inv;
          for (let s = t + 1; s < T; s++) p[row + s] = 0;
        }
        // O = P V.
        gemm(false, false, T, dh, T, 1, p, T, v, w, 0, y.data.subarray(i * T * d + h * dh), d);
      }
    }
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
    const { d, dh, w, scale } = this.dims(x);
    const H = this.heads;
    const gemm = ctx.kernels.gemm.bind(ctx.kernels);
    const xd = x.data;
    const dx = activation(ctx.dtype, n, T, w);
    const dS = allocFloat(ctx.dtype, T * T);
    for (let i = 0; i < n; i++) {
      const xb = i * T * w;
      for (let h = 0; h < H; h++) {
        const q = xd.subarray(xb + h * dh);
        const k = xd.subarray(xb + d + h * dh);
        const v = xd.subarray(xb + 2 * d + h * dh);
        const p = probs.subarray((i * H + h) * T * T);
        const dO = dy.data.subarray(i * T * d + h * dh);
        gemm(true, false, T, dh, T, 1, p, T, dO, d, 0, dx.data.subarray(xb + 2 * d + h * dh), w);
        gemm(false, true, T, T, dh, 1, dO, d, v, w, 0, dS, T);
        softmaxBackward(p, dS, T);
        gemm(false, false, T, dh, T, scale, dS, T, k, w, 0, dx.data.subarray(xb + h * dh), w);
        gemm(true, false, T, dh, T, scale, dS, T, q, w, 0, dx.data.subarray(xb + d + h * dh), w);
      }
    }
    return dx;
  }

  rForward(ctx: PassContext, _v: FloatArray, tape: LayerTape, rx: Activation | null): Activation {
    // R{S} = (R{Q} Kᵀ + Q R{K}ᵀ)/√dh;  R{P} = P ⊙ (R{S} − rowsum(P ⊙ R{S}));  R{O} = R{P} V + P R{V}.
    const t = tape as AttentionTape;
    const x = tape.input;
    const probs = savedProbs(tape);
    const { n, tokens: T } = x;
    const { d, dh, w, scale } = this.dims(x);
    const H = this.heads;
    const ry = activation(ctx.dtype, n, T, d);
    let rProbs: FloatArray | null = null;
    if (rx) {
      const gemm = ctx.kernels.gemm.bind(ctx.kernels);
      const xd = x.data;
      const rxd = rx.data;
      rProbs = allocFloat(ctx.dtype, n * H * T * T);
      for (let i = 0; i < n; i++) {
        const xb = i * T * w;
        for (let h = 0; h < H; h++) {
          const q = xd.subarray(xb + h * dh);
          const k = xd.subarray(xb + d + h * dh);
          const v = xd.subarray(xb + 2 * d + h * dh);
          const rq = rxd.subarray(xb + h * dh);
          const rk = rxd.subarray(xb + d + h * dh);
          const rv = rxd.subarray(xb + 2 * d + h * dh);
          const p = probs.subarray((i * H + h) * T * T);
          const rp = rProbs.subarray((i * H + h) * T * T, (i * H + h + 1) * T * T);
          gemm(false, true, T, T, dh, scale, rq, w, k, w, 0, rp, T);
          gemm(false, true, T, T, dh, scale, q, w, rk, w, 1, rp, T);
          softmaxBackward(p, rp, T);
          const ro = ry.data.subarray(i * T * d + h * dh);
          gemm(false, false, T, dh, T, 1, rp, T, v, w, 0, ro, d);
          gemm(false, false, T, dh, T, 1, p, T, rv, w, 1, ro, d);
        }
      }
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
    const { d, dh, w, scale } = this.dims(x);
    const H = this.heads;
    const gemm = ctx.kernels.gemm.bind(ctx.kernels);
    const xd = x.data;
    const rdx = activation(ctx.dtype, n, T, w);
    const out = rdx.data;
    const dS = allocFloat(ctx.dtype, T * T);
    const rdS = allocFloat(ctx.dtype, T * T);
    for (let i = 0; i < n; i++) {
      const xb = i * T * w;
      for (let h = 0; h < H; h++) {
        const q = xd.subarray(xb + h * dh);
        const k = xd.subarray(xb + d + h * dh);
        const v = xd.subarray(xb + 2 * d + h * dh);
        const p = probs.subarray((i * H + h) * T * T);
        const dO = dy.data.subarray(i * T * d + h * dh);
        const rdO = rdy.data.subarray(i * T * d + h * dh);
        const rdQ = out.subarray(xb + h * dh);
        const rdK = out.subarray(xb + d + h * dh);
        const rdV = out.subarray(xb + 2 * d + h * dh);
        const rq = rx ? rx.subarray(xb + h * dh) : null;
        const rk = rx ? rx.subarray(xb + d + h * dh) : null;
        const rv = rx ? rx.subarray(xb + 2 * d + h * dh) : null;
        const rp = rProbs ? rProbs.subarray((i * H + h) * T * T) : null;

        // R{dV} = R{P}ᵀ dO + Pᵀ R{dO}.
        gemm(true, false, T, dh, T, 1, p, T, rdO, d, 0, rdV, w);
        if (rp) gemm(true, false, T, dh, T, 1, rp, T, dO, d, 1, rdV, w);
        // dP = dO Vᵀ;  R{dP} = R{dO} Vᵀ + dO R{V}ᵀ.
        gemm(false, true, T, T, dh, 1, dO, d, v, w, 0, dS, T);
        gemm(false, true, T, T, dh, 1, rdO, d, v, w, 0, rdS, T);
        if (rv) gemm(false, true, T, T, dh, 1, dO, d, rv, w, 1, rdS, T);
        // dS = P ⊙ (dP − c), c = rowsum(dP ⊙ P);
        // R{dS} = R{P} ⊙ (dP − c) + P ⊙ (R{dP} − rowsum(R{dP} ⊙ P + dP ⊙ R{P})).
        for (let t = 0; t < T; t++) {
          const row = t * T;
          let c = 0;
          let rc = 0;
          for (let s = 0; s <= t; s++) {
            c += dS[row + s] * p[row + s];
            rc += rdS[row + s] * p[row + s];
            if (rp) rc += dS[row + s] * rp[row + s];
          }
          for (let s = 0; s <= t; s++) {
            const e = row + s;
            const g = dS[e] - c;
            let r = p[e] * (rdS[e] - rc);
            if (rp) r += rp[e] * g;
            dS[e] = p[e] * g;
            rdS[e] = r;
          }
          for (let s = t + 1; s < T; s++) {
            dS[row + s] = 0;
            rdS[row + s] = 0;
          }
        }
        // R{dQ} = (R{dS} K + dS R{K})/√dh;  R{dK} = (R{dS}ᵀ Q + dSᵀ R{Q})/√dh.
        gemm(false, false, T, dh, T, scale, rdS, T, k, w, 0, rdQ, w);
        if (rk) gemm(false, false, T, dh, T, scale, dS, T, rk, w, 1, rdQ, w);
        gemm(true, false, T, dh, T, scale, rdS, T, q, w, 0, rdK, w);
        if (rq) gemm(true, false, T, dh, T, scale, dS, T, rq, w, 1, rdK, w);
      }
    }
    return rdx;
  }
}

/**
 * In place, row by row over the causal part s ≤ t of a T×T block: g ← P ⊙ (g − rowsum(g ⊙ P)),
 * the softmax Jacobian (symmetric) applied to g; entries above the diagonal become exactly 0.
 */
function softmaxBackward(p: FloatArray, g: FloatArray, T: number): void {
  for (let t = 0; t < T; t++) {
    const row = t * T;
    let c = 0;
    for (let s = 0; s <= t; s++) c += g[row + s] * p[row + s];
    for (let s = 0; s <= t; s++) g[row + s] = p[row + s] * (g[row + s] - c);
    for (let s = t + 1; s < T; s++) g[row + s] = 0;
  }
}

function savedProbs(tape: LayerTape): FloatArray {
  const probs = (tape as AttentionTape).probs;
  if (!probs) throw new Error('internal: forward has not run on this tape');
  return probs;
}

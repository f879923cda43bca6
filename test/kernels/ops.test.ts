// Every element-wise op of every kernel set (KernelOps) against a slow float64 reference written
// straight from the op's definition, and every non-portable set against the portable one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allocFloat } from '../../src/kernels/alloc.js';
import type { ActivationKind, DType, FloatArray, Kernels } from '../../src/kernels/types.js';
import { Rng } from '../../src/util/rng.js';
import { ALL_SETS, type KernelSet, kernelsOrSkip, portableSet } from './kernel-sets.js';

const portable = portableSet.kernels!;
const DTYPES: DType[] = ['float32', 'float64'];
/**
 * Against the float64 reference: float32 results are rounded once or twice per value (≈6e-8
 * relative each) and intermediate float32 stores (p, x̂) add a few more; float64 only reorders
 * nothing, so 1e-12 leaves room for libm's last bit.
 */
const REF_TOL: Record<DType, number> = { float32: 2e-6, float64: 1e-12 };
/** Against the portable twin: same operations in the same order, so only libm's last bit differs. */
const TWIN_TOL: Record<DType, number> = { float32: 2e-7, float64: 1e-14 };

function random(dtype: DType, length: number, rng: Rng, scale = 2): FloatArray {
  const a = allocFloat(dtype, length);
  for (let i = 0; i < length; i++) a[i] = (rng.uniform() - 0.5) * scale;
  return a;
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e)) {
      assert.ok(Number.isNaN(a), `${what}[${i}]: expected NaN, got ${a}`);
      continue;
    }
    const err = Math.abs(a - e);
    assert.ok(err <= tol * Math.max(1, Math.abs(e)), `${what}[${i}]: got ${a}, expected ${e} (|Δ| ${err})`);
  }
}

/** One op case: runs on a kernel set (fresh copies of its inputs) and returns the arrays it wrote. */
type Run = (k: Kernels) => Record<string, ArrayLike<number>>;
interface OpCase {
  name: string;
  run: Run;
  /** The same outputs from the definition, in float64. */
  reference: () => Record<string, ArrayLike<number>>;
}

const copy = <A extends FloatArray | Float64Array | Int32Array>(a: A): A => a.slice() as A;

// ---------------------------------------------------------------- slow references

const GELU_C = Math.sqrt(2 / Math.PI);
const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x ** 3)));
const fRef: Record<ActivationKind, (x: number) => number> = {
  relu: (x) => Math.max(0, x),
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  gelu,
};
/** Derivatives by central differences of the float64 definitions (h chosen for ~1e-10 accuracy). */
const dRef = (kind: ActivationKind, x: number) => {
  if (kind === 'relu') return x > 0 ? 1 : 0;
  const h = 1e-5;
  return (fRef[kind](x + h) - fRef[kind](x - h)) / (2 * h);
};
const d2Ref = (kind: ActivationKind, x: number) => {
  if (kind === 'relu') return 0;
  const h = 1e-4;
  return (fRef[kind](x + h) - 2 * fRef[kind](x) + fRef[kind](x - h)) / (h * h);
};

/** Dual numbers v + dε (ε² = 0): R-operators by forward-mode differentiation of the plain definitions. */
interface Dual {
  v: number;
  d: number;
}
const dual = (v: number, d = 0): Dual => ({ v, d });
const dAdd = (a: Dual, b: Dual): Dual => dual(a.v + b.v, a.d + b.d);
const dSub = (a: Dual, b: Dual): Dual => dual(a.v - b.v, a.d - b.d);
const dMul = (a: Dual, b: Dual): Dual => dual(a.v * b.v, a.d * b.v + a.v * b.d);
const dScale = (a: Dual, k: number): Dual => dual(a.v * k, a.d * k);
const dSum = (xs: Dual[]): Dual => xs.reduce(dAdd, dual(0));
/** 1/√a. */
const dRsqrt = (a: Dual): Dual => dual(1 / Math.sqrt(a.v), (-0.5 * a.d) / (a.v * Math.sqrt(a.v)));

/**
 * One row of LayerNorm (center) or RMSNorm written plainly on duals: x̂ and r from x, and
 * backward's dx = r(h − mean(h)·[center] − x̂ mean(h ⊙ x̂)), h = γ ⊙ dy.
 */
function normRow(x: Dual[], eps: number, center: boolean): { xhat: Dual[]; r: Dual } {
  const d = x.length;
  const mu = center ? dScale(dSum(x), 1 / d) : dual(0);
  const z = x.map((v) => dSub(v, mu));
  const r = dRsqrt(dAdd(dScale(dSum(z.map((v) => dMul(v, v))), 1 / d), dual(eps)));
  return { xhat: z.map((v) => dMul(v, r)), r };
}
function normBackwardRow(xhat: Dual[], r: Dual, gamma: Dual[], dy: Dual[], center: boolean): Dual[] {
  const d = xhat.length;
  const h = dy.map((g, c) => dMul(gamma[c], g));
  const a = center ? dScale(dSum(h), 1 / d) : dual(0);
  const b = dScale(dSum(h.map((v, c) => dMul(v, xhat[c]))), 1 / d);
  return h.map((v, c) => dMul(r, dSub(dSub(v, a), dMul(xhat[c], b))));
}

function cases(dtype: DType): OpCase[] {
  const rng = new Rng(dtype === 'float32' ? 11 : 12);
  const out: OpCase[] = [];

  // addBias / sumBias: Linear layout (inner 1) and Conv2d layout (inner = positions).
  for (const [outer, channels, inner] of [
    [7, 5, 1],
    [3, 4, 9],
  ] as const) {
    const data = random(dtype, outer * channels * inner, rng);
    const bias = random(dtype, channels, rng);
    const at = (o: number, c: number, p: number) => (o * channels + c) * inner + p;
    out.push({
      name: `addBias ${outer}×${channels}×${inner}`,
      run: (k) => {
        const d = copy(data);
        k.addBias(d, bias, outer, channels, inner);
        return { data: d };
      },
      reference: () => {
        const d = Array.from(data);
        for (let o = 0; o < outer; o++)
          for (let c = 0; c < channels; c++) for (let p = 0; p < inner; p++) d[at(o, c, p)] += bias[c];
        return { data: d };
      },
    });
    out.push({
      name: `sumBias ${outer}×${channels}×${inner}`,
      run: (k) => {
        const o = copy(bias);
        k.sumBias(o, data, outer, channels, inner, 0.5);
        return { out: o };
      },
      reference: () => {
        const o = Array.from(bias);
        for (let c = 0; c < channels; c++) {
          let s = 0;
          for (let r = 0; r < outer; r++) for (let p = 0; p < inner; p++) s += data[at(r, c, p)];
          o[c] += 0.5 * s;
        }
        return { out: o };
      },
    });
  }

  // rowDots: rows against one vector (strideB 0), squared norms (a = b) with a metric, and rows
  // read at a stride longer than their length (a block's columns, as a formed gradient's weight
  // part); rows shorter than the eight partial sums, and longer with a remainder.
  for (const [length, stride] of [
    [7, 9],
    [29, 31],
  ]) {
    const rows = 5;
    const a = random(dtype, rows * stride, rng);
    const b = random(dtype, rows * stride, rng);
    const weights = random(dtype, length, rng);
    const start = new Float64Array(rows).map((_, r) => r - 2);
    for (const [label, bb, strideB, w] of [
      ['one vector', b, 0, null],
      ['rows', b, stride, null],
      ['norms with weights', a, stride, weights],
    ] as const) {
      out.push({
        name: `rowDots ${label} (length ${length})`,
        run: (k) => {
          const o = copy(start);
          k.rowDots(a, bb, w, rows, length, stride, strideB, o);
          return { out: o };
        },
        reference: () => {
          const o = Array.from(start);
          for (let r = 0; r < rows; r++)
            for (let e = 0; e < length; e++) o[r] += a[r * stride + e] * bb[r * strideB + e] * (w ? w[e] : 1);
          return { out: o };
        },
      });
    }
  }

  // columnSums: per-segment sums of products and plain sums, out rows further apart than width
  // (LayerNorm's [γ, β] rows), the default outStride, outStride 0 (every segment into one row), a
  // single row per segment and a NaN that must reach its column only.
  {
    const width = 7;
    const a = random(dtype, 5 * 3 * width, rng);
    const b = random(dtype, 5 * 3 * width, rng);
    a[2 * width + 4] = Number.NaN;
    for (const [segments, rows, stride, withB] of [
      [5, 3, 2 * width, true],
      [5, 3, 2 * width, false],
      [3, 5, undefined, true],
      [15, 1, width + 1, true],
      [5, 3, 0, false],
      [1, 15, width, true],
    ] as const) {
      const outStride = stride ?? width;
      const start = new Float64Array((segments - 1) * outStride + width).map((_, e) => e / 8);
      out.push({
        name: `columnSums ${segments}×${rows}×${width} outStride=${stride}${withB ? '' : ' (no b)'}`,
        run: (k) => {
          const o = copy(start);
          k.columnSums(o, a, withB ? b : null, segments, rows, width, stride);
          return { out: o };
        },
        reference: () => {
          const o = Array.from(start);
          for (let s = 0; s < segments; s++)
            for (let r = 0; r < rows; r++)
              for (let c = 0; c < width; c++) {
                const e = (s * rows + r) * width + c;
                o[s * outStride + c] += a[e] * (withB ? b[e] : 1);
              }
          return { out: o };
        },
      });
    }
  }

  // add: a length off the vector widths, arrays longer than out, and out = a in place.
  {
    const n = 37;
    const a = random(dtype, n + 3, rng);
    const b = random(dtype, n + 5, rng);
    b[6] = Number.NaN;
    const want = () => Array.from({ length: n }, (_, e) => a[e] + b[e]);
    out.push({
      name: 'add',
      run: (k) => {
        const o = allocFloat(dtype, n);
        k.add(a, b, o);
        return { out: o };
      },
      reference: () => ({ out: want() }),
    });
    out.push({
      name: 'add in place',
      run: (k) => {
        const o = copy(a).subarray(0, n);
        k.add(o, b, o);
        return { out: o };
      },
      reference: () => ({ out: want() }),
    });
  }

  // Activations: forward, backward and both R-operator passes, with a NaN for ReLU's propagation.
  for (const kind of ['relu', 'gelu', 'tanh', 'sigmoid'] as const) {
    const n = 37;
    const x = random(dtype, n, rng, 6);
    if (kind === 'relu') x[3] = Number.NaN;
    const y = allocFloat(dtype, n);
    portable.activationForward(kind, x, y);
    const dy = random(dtype, n, rng);
    const rdy = random(dtype, n, rng);
    const rx = random(dtype, n, rng);
    const defined = (v: number) => (Number.isNaN(v) ? 0 : v);
    out.push({
      name: `activationForward ${kind}`,
      run: (k) => {
        const o = allocFloat(dtype, n);
        k.activationForward(kind, x, o);
        return { y: o };
      },
      reference: () => ({ y: Array.from(x, (v) => (Number.isNaN(v) ? v : fRef[kind](v))) }),
    });
    // Finite-difference derivatives are good to ~1e-9: compared at float32 tolerance only.
    const fd = dtype === 'float32';
    out.push({
      name: `activationBackward ${kind}`,
      run: (k) => {
        const o = allocFloat(dtype, n);
        k.activationBackward(kind, x, y, dy, o);
        return { dx: o.map(defined) };
      },
      reference: () => ({ dx: fd ? Array.from(x, (v, e) => defined(dRef(kind, v) * dy[e])) : [] }),
    });
    out.push({
      name: `activationRForward ${kind}`,
      run: (k) => {
        const o = allocFloat(dtype, n);
        k.activationRForward(kind, x, y, rx, o);
        return { ry: o.map(defined) };
      },
      reference: () => ({ ry: fd ? Array.from(x, (v, e) => defined(dRef(kind, v) * rx[e])) : [] }),
    });
    for (const withRx of [true, false]) {
      out.push({
        name: `activationRBackward ${kind}${withRx ? '' : ' (no rx)'}`,
        run: (k) => {
          const o = allocFloat(dtype, n);
          k.activationRBackward(kind, x, y, dy, rdy, withRx ? rx : null, o);
          return { rdx: o.map(defined) };
        },
        reference: () => ({
          rdx: fd
            ? Array.from(x, (v, e) =>
                defined(dRef(kind, v) * rdy[e] + (withRx ? d2Ref(kind, v) * rx[e] * dy[e] : 0)),
              )
            : [],
        }),
      });
    }
  }

  // Softmax cross-entropy, with an ignored row (weight 0, target −1).
  {
    const rows = 6;
    const C = 5;
    const z = random(dtype, rows * C, rng, 8);
    const targets = Int32Array.from([0, 4, -1, 2, 1, 3]);
    const weights = Float64Array.from([0.5, 0.5, 0, 1, 1, 0.25]);
    out.push({
      name: 'softmaxCrossEntropyForward',
      run: (k) => {
        const p = allocFloat(dtype, rows * C);
        const loss = new Float64Array(rows);
        k.softmaxCrossEntropyForward(z, targets, weights, rows, C, p, loss);
        return { p, loss };
      },
      reference: () => {
        const p: number[] = [];
        const loss: number[] = [];
        for (let r = 0; r < rows; r++) {
          const row = Array.from(z.subarray(r * C, (r + 1) * C));
          const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
          for (const v of row) p.push(Math.exp(v - lse));
          loss.push(weights[r] === 0 ? 0 : weights[r] * (lse - row[targets[r]]));
        }
        return { p, loss };
      },
    });
    const p = allocFloat(dtype, rows * C);
    portable.softmaxCrossEntropyForward(z, targets, weights, rows, C, p, new Float64Array(rows));
    out.push({
      name: 'softmaxCrossEntropyBackward',
      run: (k) => {
        const dz = allocFloat(dtype, rows * C);
        k.softmaxCrossEntropyBackward(p, targets, weights, rows, C, dz);
        return { dz };
      },
      reference: () => ({
        dz: Array.from(p, (v, e) => {
          const r = Math.floor(e / C);
          return weights[r] * (v - (e % C === targets[r] ? 1 : 0));
        }),
      }),
    });
    const rz = random(dtype, rows * C, rng);
    out.push({
      name: 'softmaxCrossEntropyRBackward',
      run: (k) => {
        // Garbage the op must overwrite, the ignored row's included.
        const rdz = allocFloat(dtype, rows * C).fill(Number.NaN);
        k.softmaxCrossEntropyRBackward(p, rz, weights, rows, C, rdz);
        return { rdz };
      },
      reference: () => {
        // w·J rz with the softmax Jacobian J = diag(p) − p pᵀ as an explicit matrix.
        const rdz = new Array<number>(rows * C).fill(0);
        for (let r = 0; r < rows; r++)
          for (let i = 0; i < C; i++)
            for (let j = 0; j < C; j++) {
              const J = (i === j ? p[r * C + i] : 0) - p[r * C + i] * p[r * C + j];
              rdz[r * C + i] += weights[r] * J * rz[r * C + j];
            }
        return { rdz };
      },
    });
  }

  // Causal softmax: T = 1 (every row a single 1), a T past the vector widths with large scores,
  // and T above the 256-value chunks of the native exponentials; a NaN score spoils its row only.
  for (const [blocks, T] of [
    [3, 1],
    [4, 13],
    [1, 300],
  ] as const) {
    const total = blocks * T * T;
    const scores = random(dtype, total, rng, 20);
    // Above-diagonal garbage the op must overwrite with zeros.
    if (T > 1) scores[1] = Number.NaN;
    if (T === 13) scores[2 * T * T + 5 * T + 3] = Number.NaN;
    const causal = (e: number) => e % T <= Math.floor(e / T) % T;
    const p = copy(scores);
    portable.causalSoftmaxForward(p, blocks, T);
    out.push({
      name: `causalSoftmaxForward ${blocks}×${T}×${T}`,
      run: (k) => {
        const s = copy(scores);
        k.causalSoftmaxForward(s, blocks, T);
        return { p: s };
      },
      reference: () => {
        const ref = new Array<number>(total).fill(0);
        for (let row = 0; row < blocks * T; row++) {
          const t = row % T;
          const z = Array.from(scores.subarray(row * T, row * T + t + 1));
          const m = Math.max(...z);
          const sum = z.reduce((acc, v) => acc + Math.exp(v - m), 0);
          z.forEach((v, s) => {
            ref[row * T + s] = Math.exp(v - m) / sum;
          });
        }
        return { p: ref };
      },
    });
    const g = random(dtype, total, rng);
    const rp = random(dtype, total, rng, 0.5);
    const rg = random(dtype, total, rng);
    // y = J x with J = diag(p) − p pᵀ over each causal row.
    const jacobian = (x: ArrayLike<number>) => {
      const y = new Array<number>(total).fill(0);
      for (let row = 0; row < blocks * T; row++) {
        const base = row * T;
        const t = row % T;
        for (let i = 0; i <= t; i++)
          for (let j = 0; j <= t; j++)
            y[base + i] += ((i === j ? p[base + i] : 0) - p[base + i] * p[base + j]) * x[base + j];
      }
      return y;
    };
    out.push({
      name: `causalSoftmaxBackward ${blocks}×${T}×${T}`,
      run: (k) => {
        const o = copy(g);
        k.causalSoftmaxBackward(p, o, blocks, T);
        return { g: o };
      },
      reference: () => ({ g: jacobian(g) }),
    });
    for (const withRp of [true, false]) {
      out.push({
        name: `causalSoftmaxRBackward ${blocks}×${T}×${T}${withRp ? '' : ' (no rp)'}`,
        run: (k) => {
          const dS = copy(g);
          const rdS = copy(rg);
          k.causalSoftmaxRBackward(p, withRp ? rp : null, dS, rdS, blocks, T);
          return { dS, rdS };
        },
        reference: () => {
          // R{J g} = J R{g} + R{J} g, with R{J} = diag(rp) − rp pᵀ − p rpᵀ on each causal row.
          const rdS = jacobian(rg);
          if (withRp)
            for (let row = 0; row < blocks * T; row++) {
              const base = row * T;
              const t = row % T;
              for (let i = 0; i <= t; i++)
                for (let j = 0; j <= t; j++) {
                  const rJ =
                    (i === j ? rp[base + i] : 0) - rp[base + i] * p[base + j] - p[base + i] * rp[base + j];
                  rdS[base + i] += rJ * g[base + j];
                }
            }
          return { dS: jacobian(g), rdS: rdS.map((v, e) => (causal(e) ? v : 0)) };
        },
      });
    }
  }

  // LayerNorm (centred, with β) and RMSNorm (no centring, no β).
  for (const center of [true, false]) {
    const rows = 4;
    const d = 9;
    const x = random(dtype, rows * d, rng, 4);
    const gamma = random(dtype, d, rng);
    const beta = center ? random(dtype, d, rng) : null;
    const eps = 1e-5;
    const norm = (r: number) => {
      const row = Array.from(x.subarray(r * d, (r + 1) * d));
      const mu = center ? row.reduce((s, v) => s + v, 0) / d : 0;
      const rs = 1 / Math.sqrt(row.reduce((s, v) => s + (v - mu) ** 2, 0) / d + eps);
      return { xhat: row.map((v) => (v - mu) * rs), rs };
    };
    out.push({
      name: `layerNormForward center=${center}`,
      run: (k) => {
        const xhat = allocFloat(dtype, rows * d);
        const rstd = new Float64Array(rows);
        const y = allocFloat(dtype, rows * d);
        k.layerNormForward(x, gamma, beta, rows, d, eps, center, xhat, rstd, y);
        return { xhat, rstd, y };
      },
      reference: () => {
        const xhat: number[] = [];
        const rstd: number[] = [];
        const y: number[] = [];
        for (let r = 0; r < rows; r++) {
          const { xhat: h, rs } = norm(r);
          rstd.push(rs);
          h.forEach((v, c) => {
            xhat.push(v);
            y.push(gamma[c] * v + (beta ? beta[c] : 0));
          });
        }
        return { xhat, rstd, y };
      },
    });
    const xhat = allocFloat(dtype, rows * d);
    const rstd = new Float64Array(rows);
    portable.layerNormForward(x, gamma, beta, rows, d, eps, center, xhat, rstd, allocFloat(dtype, rows * d));
    const dy = random(dtype, rows * d, rng);
    out.push({
      name: `layerNormBackward center=${center}`,
      run: (k) => {
        const dx = allocFloat(dtype, rows * d);
        k.layerNormBackward(dy, xhat, rstd, gamma, rows, d, center, dx);
        return { dx };
      },
      reference: () => {
        // dx = Jᵀ(γ ⊙ dy), J = r(P − x̂x̂ᵀ/d), written as an explicit matrix-vector product.
        const dx: number[] = [];
        for (let r = 0; r < rows; r++) {
          const h = Array.from({ length: d }, (_, c) => gamma[c] * dy[r * d + c]);
          const xh = Array.from(xhat.subarray(r * d, (r + 1) * d));
          for (let i = 0; i < d; i++) {
            let s = 0;
            for (let j = 0; j < d; j++) {
              const P = (i === j ? 1 : 0) - (center ? 1 / d : 0);
              s += rstd[r] * (P - (xh[i] * xh[j]) / d) * h[j];
            }
            dx.push(s);
          }
        }
        return { dx };
      },
    });

    // The R-operators, against the forward and backward above differentiated along (rx, vγ, vβ,
    // rdy) on duals; without rx (a data input) R{x} = 0 and rxhat, shrink stay null.
    const rx = random(dtype, rows * d, rng);
    const rdy = random(dtype, rows * d, rng);
    const vGamma = random(dtype, d, rng);
    const vBeta = center ? random(dtype, d, rng) : null;
    const rowDuals = (r: number, withRx: boolean) =>
      normRow(
        Array.from({ length: d }, (_, c) => dual(x[r * d + c], withRx ? rx[r * d + c] : 0)),
        eps,
        center,
      );
    for (const withRx of [true, false]) {
      out.push({
        name: `layerNormRForward center=${center}${withRx ? '' : ' (no rx)'}`,
        run: (k): Record<string, ArrayLike<number>> => {
          const ry = allocFloat(dtype, rows * d);
          const rxhat = withRx ? allocFloat(dtype, rows * d) : null;
          const shrink = withRx ? new Float64Array(rows) : null;
          k.layerNormRForward(
            xhat,
            rstd,
            gamma,
            vGamma,
            vBeta,
            withRx ? rx : null,
            rows,
            d,
            center,
            rxhat,
            shrink,
            ry,
          );
          return rxhat && shrink ? { ry, rxhat, shrink } : { ry };
        },
        reference: (): Record<string, ArrayLike<number>> => {
          const ry: number[] = [];
          const rxhat: number[] = [];
          const shrink: number[] = [];
          for (let r = 0; r < rows; r++) {
            const { xhat: h, r: rs } = rowDuals(r, withRx);
            // c = −R{r}/r
            shrink.push(-rs.d / rs.v);
            h.forEach((v, c) => {
              rxhat.push(v.d);
              const y = dAdd(dMul(dual(gamma[c], vGamma[c]), v), dual(0, vBeta ? vBeta[c] : 0));
              ry.push(y.d);
            });
          }
          return withRx ? { ry, rxhat, shrink } : { ry };
        },
      });
      const rxhat = withRx ? allocFloat(dtype, rows * d) : null;
      const shrink = withRx ? new Float64Array(rows) : null;
      if (withRx)
        portable.layerNormRForward(
          xhat,
          rstd,
          gamma,
          vGamma,
          vBeta,
          rx,
          rows,
          d,
          center,
          rxhat,
          shrink,
          allocFloat(dtype, rows * d),
        );
      const startG = new Float64Array(d).map((_, c) => c / 4);
      const startB = new Float64Array(d).map((_, c) => 1 - c / 8);
      for (const withDx of [true, false]) {
        out.push({
          name: `layerNormRBackward center=${center}${withRx ? '' : ' (no rx)'}${withDx ? '' : ' (sums only)'}`,
          run: (k): Record<string, ArrayLike<number>> => {
            const gammaSums = copy(startG);
            const betaSums = center ? copy(startB) : null;
            const rdx = withDx ? allocFloat(dtype, rows * d) : null;
            k.layerNormRBackward(
              dy,
              rdy,
              xhat,
              rxhat,
              rstd,
              shrink,
              gamma,
              vGamma,
              rows,
              d,
              center,
              gammaSums,
              betaSums,
              rdx,
            );
            return { gammaSums, ...(betaSums ? { betaSums } : {}), ...(rdx ? { rdx } : {}) };
          },
          reference: (): Record<string, ArrayLike<number>> => {
            const gammaSums = Array.from(startG);
            const betaSums = Array.from(startB);
            const rdx: number[] = [];
            for (let r = 0; r < rows; r++) {
              const { xhat: h, r: rs } = rowDuals(r, withRx);
              const g = Array.from({ length: d }, (_, c) => dual(dy[r * d + c], rdy[r * d + c]));
              const gam = Array.from({ length: d }, (_, c) => dual(gamma[c], vGamma[c]));
              for (const v of normBackwardRow(h, rs, gam, g, center)) rdx.push(v.d);
              // R of the γ and β gradients Σ dy ⊙ x̂ and Σ dy.
              for (let c = 0; c < d; c++) {
                gammaSums[c] += dMul(g[c], h[c]).d;
                betaSums[c] += g[c].d;
              }
            }
            return { gammaSums, ...(center ? { betaSums } : {}), ...(withDx ? { rdx } : {}) };
          },
        });
      }
    }
  }

  // gather / scatterAdd with a patch-like table (padding −1, repeated indices), and count = 1.
  for (const count of [3, 1]) {
    const stride = 7;
    const index = Int32Array.from([0, 3, -1, 6, 3, 2, -1, 5]);
    const L = index.length;
    const src = random(dtype, count * stride, rng);
    const rows = random(dtype, count * L, rng);
    out.push({
      name: `gather count=${count}`,
      run: (k) => {
        const dst = allocFloat(dtype, count * L);
        k.gather(src, index, count, stride, dst);
        return { dst };
      },
      reference: () => ({
        dst: Array.from({ length: count * L }, (_, e) => {
          const j = e % L;
          return index[j] < 0 ? 0 : src[Math.floor(e / L) * stride + index[j]];
        }),
      }),
    });
    out.push({
      name: `scatterAdd count=${count}`,
      run: (k) => {
        const dst = copy(src);
        k.scatterAdd(rows, index, count, stride, dst);
        return { dst };
      },
      reference: () => {
        const dst = Array.from(src);
        for (let e = 0; e < count * L; e++) {
          const j = e % L;
          if (index[j] >= 0) dst[Math.floor(e / L) * stride + index[j]] += rows[e];
        }
        return { dst };
      },
    });
  }

  // gatherRows / scatterAddRows: repeated rows (they add up in order), the first and last row.
  {
    const [tableRows, width] = [6, 5];
    const rows = Int32Array.from([3, 0, 5, 3, 3, 1]);
    const table = random(dtype, tableRows * width, rng);
    const src = random(dtype, rows.length * width, rng);
    const scale = 0.75;
    out.push({
      name: 'gatherRows',
      run: (k) => {
        const dst = allocFloat(dtype, rows.length * width);
        k.gatherRows(table, rows, width, dst);
        return { dst };
      },
      reference: () => ({
        dst: Array.from(
          { length: rows.length * width },
          (_, e) => table[rows[Math.floor(e / width)] * width + (e % width)],
        ),
      }),
    });
    out.push({
      name: 'scatterAddRows',
      run: (k) => {
        const dst = copy(table);
        k.scatterAddRows(src, rows, width, scale, dst);
        return { dst };
      },
      reference: () => {
        const dst = Array.from(table);
        rows.forEach((row, r) => {
          for (let c = 0; c < width; c++) dst[row * width + c] += scale * src[r * width + c];
        });
        return { dst };
      },
    });
  }

  // transpose: sizes across the 16×16 tiles of the native loop.
  {
    const [batch, rows, cols] = [2, 19, 33];
    const src = random(dtype, batch * rows * cols, rng);
    out.push({
      name: 'transpose',
      run: (k) => {
        const dst = allocFloat(dtype, src.length);
        k.transpose(src, dst, batch, rows, cols);
        return { dst };
      },
      reference: () => ({
        dst: Array.from(src, (_, e) => {
          const b = Math.floor(e / (rows * cols));
          const c = Math.floor((e % (rows * cols)) / rows);
          const r = e % rows;
          return src[b * rows * cols + r * cols + c];
        }),
      }),
    });
  }

  // maxPoolForward: 2×2 windows over 4×4 planes, with one padded tap and without (native kernels
  // take a separate path when no window reaches into padding), a tie, a NaN after numbers, two
  // NaNs in one window (the first stays) and a NaN before numbers.
  for (const padded of [true, false]) {
    const planes = 3;
    const H = 4;
    const offsets = new Int32Array(4 * 4);
    for (let p = 0; p < 4; p++)
      for (let q = 0; q < 4; q++) {
        const oh = Math.floor(p / 2) * 2 + Math.floor(q / 2);
        const ow = (p % 2) * 2 + (q % 2);
        offsets[p * 4 + q] = oh * H + ow;
      }
    if (padded) offsets[3] = -1;
    const x = random(dtype, planes * 16, rng);
    x[16 + 0] = 0.75;
    x[16 + 1] = 0.75;
    x[32 + 1] = 5;
    x[32 + 4] = Number.NaN;
    x[32 + 5] = Number.NaN;
    x[32 + 2] = Number.NaN;
    out.push({
      name: `maxPoolForward${padded ? ' (padded)' : ''}`,
      run: (k) => {
        const y = allocFloat(dtype, planes * 4);
        const argmax = new Int32Array(planes * 4);
        k.maxPoolForward(x, offsets, planes, 16, 4, 4, y, argmax);
        return { y, argmax };
      },
      reference: () => {
        const y: number[] = [];
        const argmax: number[] = [];
        for (let k = 0; k < planes; k++)
          for (let p = 0; p < 4; p++) {
            let best = Number.NEGATIVE_INFINITY;
            let arg = -1;
            for (let q = 0; q < 4; q++) {
              const off = offsets[p * 4 + q];
              if (off < 0) continue;
              const v = x[k * 16 + off];
              if (Number.isNaN(v)) {
                best = v;
                arg = k * 16 + off;
                break;
              }
              if (arg < 0 || v > best) {
                best = v;
                arg = k * 16 + off;
              }
            }
            y.push(best);
            argmax.push(arg);
          }
        return { y, argmax };
      },
    });
  }

  // Optimizer updates: SGD plain, with momentum (first step and later), Adam with both decays.
  {
    const n = 29;
    const w = random(dtype, n, rng);
    const g = random(dtype, n, rng);
    const buf = random(dtype, n, rng);
    for (const [momentum, first] of [
      [0, false],
      [0.9, true],
      [0.9, false],
    ] as const) {
      out.push({
        name: `sgdUpdate momentum=${momentum} first=${first}`,
        run: (k): Record<string, ArrayLike<number>> => {
          const p = copy(w);
          const b = momentum > 0 ? copy(buf) : null;
          k.sgdUpdate(p, g, b, 0.1, 0.25, 0.01, 0.02, momentum, first);
          return b ? { params: p, buffer: b } : { params: p };
        },
        reference: (): Record<string, ArrayLike<number>> => {
          const p = Array.from(w);
          const b = Array.from(buf);
          for (let e = 0; e < n; e++) {
            if (momentum > 0) {
              const ge = 0.25 * g[e] + 0.01 * p[e];
              b[e] = first ? ge : momentum * b[e] + ge;
              p[e] -= 0.1 * (b[e] + 0.02 * p[e]);
            } else {
              p[e] -= 0.1 * (0.25 * g[e] + 0.03 * p[e]);
            }
          }
          return momentum > 0 ? { params: p, buffer: b } : { params: p };
        },
      });
    }
    const m = random(dtype, n, rng, 0.1);
    const v = random(dtype, n, rng, 0.1).map(Math.abs) as FloatArray;
    out.push({
      name: 'adamUpdate',
      run: (k) => {
        const p = copy(w);
        const mm = copy(m);
        const vv = copy(v);
        k.adamUpdate(p, g, mm, vv, 0.5, 0.01, 0.9, 0.999, 0.999, 0.003, 0.3, 1e-8);
        return { params: p, m: mm, v: vv };
      },
      reference: () => {
        const p = Array.from(w);
        const mm = Array.from(m);
        const vv = Array.from(v);
        for (let e = 0; e < n; e++) {
          const ge = 0.5 * g[e] + 0.01 * p[e];
          mm[e] = 0.9 * mm[e] + 0.1 * ge;
          vv[e] = 0.999 * vv[e] + 0.001 * ge * ge;
          p[e] = p[e] * 0.999 - 0.003 * (mm[e] / (Math.sqrt(vv[e]) / 0.3 + 1e-8));
        }
        return { params: p, m: mm, v: vv };
      },
    });

    // Adam's plan: the preconditioner (first step, no v yet, and later), c both ways (with and
    // without m) and K's diagonal in place, and K applied with and without a diagonal.
    for (const withV of [true, false]) {
      out.push({
        name: `adamPreconditioner${withV ? '' : ' (no v)'}`,
        run: (k) => {
          const P = allocFloat(dtype, n);
          k.adamPreconditioner(w, g, withV ? v : null, 0.5, 0.01, 0.999, 0.3, 1e-8, P);
          return { P };
        },
        reference: () => ({
          P: Array.from(w, (we, e) => {
            const ge = 0.5 * g[e] + 0.01 * we;
            const vt = (withV ? 0.999 * v[e] : 0) + 0.001 * ge * ge;
            return 1 / (Math.sqrt(vt) / 0.3 + 1e-8);
          }),
        }),
      });
    }
    const P0 = random(dtype, n, rng, 4).map(Math.abs) as FloatArray;
    for (const [decoupled, withM, withC] of [
      [true, true, true],
      [true, false, true],
      [false, true, true],
      [false, false, true],
      [false, true, false],
    ] as const) {
      out.push({
        name: `adamLinearise decoupled=${decoupled}${withM ? '' : ' (no m)'}${withC ? '' : ' (no c)'}`,
        run: (k): Record<string, ArrayLike<number>> => {
          const P = copy(P0);
          const c = withC ? allocFloat(dtype, n) : null;
          k.adamLinearise(P, w, withM ? m : null, c, 0.9, 0.01, decoupled, 0.19, 0.1 / 0.19);
          return c ? { P, c } : { P };
        },
        reference: (): Record<string, ArrayLike<number>> => {
          const c = Array.from(P0, (p, e) => {
            const me = withM ? m[e] : 0;
            return decoupled
              ? (p * 0.9 * me) / 0.19 + 0.01 * w[e]
              : (p * (0.9 * me + 0.1 * 0.01 * w[e])) / 0.19;
          });
          const P = Array.from(P0, (p) => (p * 0.1) / 0.19);
          return withC ? { P, c } : { P };
        },
      });
    }
    for (const [withDiagonal, inPlace] of [
      [true, false],
      [true, true],
      [false, true],
    ] as const) {
      out.push({
        name: `scaleVector${withDiagonal ? '' : ' (no diagonal)'}${inPlace ? ' in place' : ''}`,
        run: (k) => {
          const x = copy(g);
          const o = inPlace ? x : allocFloat(dtype, n);
          k.scaleVector(x, 0.25, withDiagonal ? P0 : null, o);
          return { out: o };
        },
        reference: () => ({ out: Array.from(g, (ge, e) => 0.25 * (withDiagonal ? P0[e] : 1) * ge) }),
      });
    }
  }
  return out;
}

for (const set of ALL_SETS) {
  for (const dtype of DTYPES) {
    test(`${set.kind} ops (${dtype}) match their float64 definitions and the portable twins`, (t) => {
      const kernels = kernelsOrSkip(t, set);
      if (!kernels) return;
      for (const c of cases(dtype)) {
        const got = c.run(kernels);
        const want = c.reference();
        const twin = set.kind === 'portable' ? null : c.run(portable);
        for (const [key, value] of Object.entries(got)) {
          if (want[key].length > 0) close(value, want[key], REF_TOL[dtype], `${c.name} ${key} vs reference`);
          if (twin) close(value, twin[key], TWIN_TOL[dtype], `${c.name} ${key} vs portable`);
        }
      }
    });
  }
}

// rowDots sums in a fixed order of eight partial sums on every kernel set, so the valuer's
// parameter-length dots (utilities, norms) give the same bits whichever set runs them.
for (const set of ALL_SETS) {
  test(`${set.kind} rowDots gives the portable twin's bits on long rows`, (t) => {
    const kernels = kernelsOrSkip(t, set);
    if (!kernels) return;
    const rng = new Rng(17);
    for (const dtype of DTYPES) {
      const length = 100_003;
      const a = random(dtype, 3 * length, rng);
      const b = random(dtype, length, rng);
      const w = random(dtype, length, rng);
      for (const weights of [null, w]) {
        const got = new Float64Array(3);
        const want = new Float64Array(3);
        kernels.rowDots(a, b, weights, 3, length, length, 0, got);
        portable.rowDots(a, b, weights, 3, length, length, 0, want);
        assert.deepEqual(got, want, `${dtype}${weights ? ' with weights' : ''}`);
      }
    }
  });
}

/**
 * Softmax cross-entropy over one row (0, v, 0) per v (target class 0), with each row's expected
 * probabilities and loss from the definition in float64.
 */
function softmaxRows(kernels: Kernels, dtype: DType, vs: ArrayLike<number>) {
  const rows = vs.length;
  const z = allocFloat(dtype, rows * 3);
  for (let r = 0; r < rows; r++) z.set([0, vs[r], 0], r * 3);
  const p = allocFloat(dtype, z.length);
  const loss = new Float64Array(rows);
  kernels.softmaxCrossEntropyForward(
    z,
    new Int32Array(rows),
    new Float64Array(rows).fill(1),
    rows,
    3,
    p,
    loss,
  );
  return Array.from({ length: rows }, (_, r) => {
    const v = z[r * 3 + 1];
    const max = Math.max(0, v);
    const e0 = Math.exp(-max);
    const e1 = Math.exp(v - max);
    return {
      v,
      got: [p[r * 3], p[r * 3 + 1]],
      want: [e0 / (2 * e0 + e1), e1 / (2 * e0 + e1)],
      loss: loss[r],
      wantLoss: Math.log(2 * e0 + e1) + max,
    };
  });
}

/** |a − e| in units in the last place of e (subnormal spacing below the normal range); NaN matches NaN. */
function ulps(a: number, e: number): number {
  if (Number.isNaN(e)) return Number.isNaN(a) ? 0 : Number.POSITIVE_INFINITY;
  if (a === e) return 0;
  return Math.abs(a - e) / Math.max(Math.abs(e) * 2 ** -52, 2 ** -1074);
}

// The native exp is the kernels' own (vectorisable) one, not libm's: sigmoid is e^x/(1 + e^x) in
// relative terms all the way down to the subnormals, and softmax divides one e^x by a sum, so both
// expose exp's relative error across its whole range, overflow, underflow, ±∞ and NaN.
for (const set of ALL_SETS) {
  test(`${set.kind} sigmoid and softmax stay within 4 ulp of libm's exp over its whole range`, (t) => {
    const kernels = kernelsOrSkip(t, set);
    if (!kernels) return;
    const rng = new Rng(11);
    const edges = [-800, -745.2, -745, -744.4, -720, -708.5, -708.3, -700, -40, -1e-300, 0, 5e-324];
    const more = [1e-8, 1, 40, 700, 709.7, 709.8, 745, 800, Infinity, -Infinity, Number.NaN];
    const x = Float64Array.from([
      ...edges,
      ...more,
      ...Array.from({ length: 4000 }, () => (rng.uniform() - 0.5) * 1500),
      ...Array.from({ length: 1000 }, () => (rng.uniform() - 0.5) * 4),
    ]);
    const y = new Float64Array(x.length);
    kernels.activationForward('sigmoid', x, y);
    let worst = 0;
    for (let i = 0; i < x.length; i++) {
      const err = ulps(y[i], 1 / (1 + Math.exp(-x[i])));
      assert.ok(err <= 4, `sigmoid(${x[i]}) = ${y[i]}: ${err} ulp from 1/(1 + exp(−x))`);
      worst = Math.max(worst, err);
    }
    // One softmax row per x: logits (0, x, 0) (±∞ as 0), so p[1] = e^x / (1 + e^x + 1).
    const finite = x.map((v) => (Number.isFinite(v) || Number.isNaN(v) ? v : 0));
    for (const { v, got, want } of softmaxRows(kernels, 'float64', finite)) {
      for (const c of [0, 1]) {
        const err = ulps(got[c], want[c]);
        assert.ok(err <= 4, `softmax of (0, ${v}, 0)[${c}] = ${got[c]}, expected ${want[c]}: ${err} ulp`);
      }
    }
    t.diagnostic(`worst sigmoid error ${worst.toFixed(2)} ulp`);
  });
}

// Float32 tensors: the native kernels compute GELU and softmax cross-entropy's exponentials in float
// arithmetic (8 lanes to a vector). Against float64 definitions written without cancellation
// (σ(2u) from e^{−2|u|}), every set stays within float32 rounding of max(1, |value|). In relative
// terms GELU stays within 32 float ulp for 0.01 ≤ |x| ≤ 4: the exponential's argument −2|u| (up to
// 10.5 there) is itself rounded to float, and e^a's relative error is |a| times that of a.
for (const set of ALL_SETS) {
  test(`${set.kind} float32 GELU, its derivative and softmax stay within float32 rounding of their definitions`, (t) => {
    const kernels = kernelsOrSkip(t, set);
    if (!kernels) return;
    const C = Math.sqrt(2 / Math.PI);
    const A = 0.044715;
    const sigmoid = (v: number) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));
    const u = (x: number) => C * (x + A * x ** 3);
    const gelu = (x: number) => x * sigmoid(2 * u(x));
    const geluDf = (x: number) =>
      sigmoid(2 * u(x)) + 2 * x * sigmoid(2 * u(x)) * sigmoid(-2 * u(x)) * C * (1 + 3 * A * x * x);
    /** The spacing of float32 numbers at v. */
    const floatUlp = (v: number) => 2 ** (Math.max(Math.floor(Math.log2(Math.abs(v))), -126) - 23);
    const x = Float32Array.from([
      ...Array.from({ length: 8001 }, (_, i) => -20 + i / 200),
      -1e-30,
      0,
      1e-30,
      1e4,
      -1e4,
      Number.POSITIVE_INFINITY,
      Number.NaN,
    ]);
    const y = new Float32Array(x.length);
    const dx = new Float32Array(x.length);
    kernels.activationForward('gelu', x, y);
    kernels.activationBackward('gelu', x, y, new Float32Array(x.length).fill(1), dx);
    for (let i = 0; i < x.length; i++) {
      if (Number.isNaN(x[i])) {
        assert.ok(Number.isNaN(y[i]) && Number.isNaN(dx[i]), 'GELU of NaN is NaN');
        continue;
      }
      if (!Number.isFinite(x[i])) {
        assert.equal(y[i], Number.POSITIVE_INFINITY);
        continue;
      }
      for (const [name, got, want] of [
        ['GELU', y[i], gelu(x[i])],
        ['GELU′', dx[i], geluDf(x[i])],
      ] as const) {
        const err = Math.abs(got - want);
        assert.ok(err <= 2.5e-7 * Math.max(1, Math.abs(want)), `${name}(${x[i]}) = ${got}, expected ${want}`);
        if (name === 'GELU' && Math.abs(x[i]) <= 4 && Math.abs(x[i]) >= 0.01)
          assert.ok(err <= 32 * floatUlp(want), `${name}(${x[i]}): ${err / floatUlp(want)} float ulp`);
      }
    }
    // Softmax rows (0, v, 0) for v across the float exponential's range, overflow and underflow.
    const vs = [...Array.from({ length: 2001 }, (_, i) => -110 + i * 0.1), 100, 1e30];
    for (const { v, got, want, loss, wantLoss } of softmaxRows(kernels, 'float32', vs)) {
      for (const c of [0, 1])
        assert.ok(
          Math.abs(got[c] - want[c]) <= 2.5e-7,
          `softmax of (0, ${v}, 0)[${c}] = ${got[c]}, expected ${want[c]}`,
        );
      assert.ok(Math.abs(loss - wantLoss) <= 2.5e-7 * Math.max(1, wantLoss), `loss of (0, ${v}, 0)`);
    }
  });
}

/** Messages must name the argument and what was wrong, the same in every set. */
function errorCases(): [string, (k: Kernels) => void, RegExp][] {
  const f32 = new Float32Array(4);
  return [
    ['short data', (k) => k.addBias(f32, f32, 2, 3, 1), /addBias: data has 4 elements but needs 6/],
    ['mixed types', (k) => k.addBias(f32, new Float64Array(4), 1, 2, 1), /addBias: bias is a Float64Array/],
    ['bad size', (k) => k.transpose(f32, f32, 1, 1.5, 1), /transpose: rows must be an integer/],
    ['bad kind', (k) => k.activationForward('swish' as ActivationKind, f32, f32), /kind must be one of/],
    [
      'index past src',
      (k) => k.gather(f32, Int32Array.of(0, 4), 1, 4, new Float32Array(2)),
      /gather: index reaches 4/,
    ],
    [
      'row past src',
      (k) => k.gatherRows(f32, Int32Array.of(1, 2), 2, new Float32Array(4)),
      /gatherRows: rows\[1\] is 2, outside the 2 rows of src \(width 2\)/,
    ],
    [
      'negative row',
      (k) => k.scatterAddRows(f32, Int32Array.of(-1), 2, 1, new Float32Array(4)),
      /scatterAddRows: rows\[0\] is -1, outside the 2 rows of dst \(width 2\)/,
    ],
    [
      'target outside classes',
      (k) =>
        k.softmaxCrossEntropyBackward(
          f32,
          Int32Array.of(2, 0),
          Float64Array.of(1, 1),
          2,
          2,
          new Float32Array(4),
        ),
      /softmaxCrossEntropyBackward: targets\[0\] = 2 is outside 0\.\.1/,
    ],
    [
      'short scores',
      (k) => k.causalSoftmaxForward(new Float32Array(17), 2, 3),
      /causalSoftmaxForward: s has 17 elements but needs 18/,
    ],
    [
      'bad T',
      (k) => k.causalSoftmaxBackward(f32, f32, 1, -2),
      /causalSoftmaxBackward: T must be an integer in \[0, 2147483647\], got -2/,
    ],
    [
      'rp type',
      (k) => k.causalSoftmaxRBackward(f32, new Float64Array(4), f32, f32, 1, 2),
      /causalSoftmaxRBackward: rp is a Float64Array but the first array is a Float32Array/,
    ],
    [
      'short rdS',
      (k) => k.causalSoftmaxRBackward(f32, null, f32, new Float32Array(3), 1, 2),
      /causalSoftmaxRBackward: rdS has 3 elements but needs 4/,
    ],
    [
      'columnSums out type',
      (k) => k.columnSums(f32 as never, f32, null, 1, 1, 4),
      /columnSums: out must be a Float64Array, got Float32Array/,
    ],
    [
      'short columnSums out',
      (k) => k.columnSums(new Float64Array(9), f32, null, 2, 1, 2, 8),
      /columnSums: out has 9 elements but needs 10/,
    ],
    [
      'short columnSums b',
      (k) => k.columnSums(new Float64Array(4), f32, new Float32Array(3), 2, 1, 2),
      /columnSums: b has 3 elements but needs 4/,
    ],
    [
      'bad outStride',
      (k) => k.columnSums(new Float64Array(4), f32, null, 2, 1, 2, 0.5),
      /columnSums: outStride must be an integer/,
    ],
    ['short add b', (k) => k.add(f32, new Float32Array(3), f32), /add: b has 3 elements but needs 4/],
    [
      'mixed add types',
      (k) => k.add(f32, f32, new Float64Array(4)),
      /add: out is a Float64Array but the first array is a Float32Array/,
    ],
    [
      'rstd type',
      (k) => k.layerNormBackward(f32, f32, new Float32Array(2) as never, f32, 2, 2, true, f32),
      /rstd must be a Float64Array/,
    ],
    [
      'rxhat missing with rx',
      (k) => k.layerNormRForward(f32, new Float64Array(2), f32, f32, null, f32, 2, 2, true, null, null, f32),
      /layerNormRForward: rxhat must be a Float32Array or Float64Array, got null/,
    ],
    [
      'short vGamma',
      (k) =>
        k.layerNormRForward(
          f32,
          new Float64Array(2),
          f32,
          new Float32Array(1),
          null,
          null,
          2,
          2,
          true,
          null,
          null,
          f32,
        ),
      /layerNormRForward: vGamma has 1 elements but needs 2/,
    ],
    [
      'short gammaSums',
      (k) =>
        k.layerNormRBackward(
          f32,
          f32,
          f32,
          null,
          new Float64Array(2),
          null,
          f32,
          f32,
          2,
          2,
          true,
          new Float64Array(1),
          null,
          f32,
        ),
      /layerNormRBackward: gammaSums has 1 elements but needs 2/,
    ],
    [
      'shrink type',
      (k) =>
        k.layerNormRBackward(
          f32,
          f32,
          f32,
          f32,
          new Float64Array(2),
          new Float32Array(2) as never,
          f32,
          f32,
          2,
          2,
          true,
          new Float64Array(2),
          null,
          null,
        ),
      /layerNormRBackward: shrink must be a Float64Array, got Float32Array/,
    ],
    [
      'mixed rz type',
      (k) => k.softmaxCrossEntropyRBackward(f32, new Float64Array(4), Float64Array.of(1, 1), 2, 2, f32),
      /softmaxCrossEntropyRBackward: rz is a Float64Array but the first array is a Float32Array/,
    ],
    [
      'short preconditioner out',
      (k) => k.adamPreconditioner(f32, f32, null, 1, 0, 0.999, 1, 1e-8, new Float32Array(3)),
      /adamPreconditioner: out has 3 elements but needs 4/,
    ],
    [
      'short m',
      (k) => k.adamLinearise(f32, f32, new Float32Array(2), null, 0.9, 0, true, 0.1, 1),
      /adamLinearise: m has 2 elements but needs 4/,
    ],
    [
      'short diagonal',
      (k) => k.scaleVector(f32, 2, new Float32Array(3), f32),
      /scaleVector: diagonal has 3 elements but needs 4/,
    ],
  ];
}

for (const set of ALL_SETS as readonly KernelSet[]) {
  test(`${set.kind} ops reject bad arguments with messages naming them`, (t) => {
    const kernels = kernelsOrSkip(t, set);
    if (!kernels) return;
    for (const [what, call, message] of errorCases()) assert.throws(() => call(kernels), message, what);
  });
}

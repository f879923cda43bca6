/**
 * Portable TypeScript implementations of `KernelOps` (see ./types.ts): the loops the layers,
 * losses and optimizers used to run inline, moved here so the native addon can take them over.
 * The native twins (native/inrun_ops.c) follow these loops operation for operation — float64
 * arithmetic, the same summation order, the same roundings to float32 — so the two agree to the
 * last bit or so; keep them in step when changing either.
 *
 * Browser-safe (no Node imports): the portable and wasm kernel sets both use this object.
 */
import type { ActivationKind, FloatArray, KernelOps } from './types.js';

// ---------------------------------------------------------------- argument checks
// The same rules and messages as native/inrun_ops.c: O(1) per call, so the hot path keeps them.

function typeName(value: unknown): string {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return value.constructor.name;
  return value === null ? 'null' : typeof value;
}

function size(fn: string, name: string, value: unknown): number {
  if (typeof value !== 'number')
    throw new TypeError(`${fn}: ${name} must be a number, got ${typeName(value)}`);
  if (!Number.isInteger(value) || value < 0 || value > 2147483647)
    throw new RangeError(`${fn}: ${name} must be an integer in [0, 2147483647], got ${value}`);
  return value;
}

function number(fn: string, name: string, value: unknown): number {
  if (typeof value !== 'number')
    throw new TypeError(`${fn}: ${name} must be a number, got ${typeName(value)}`);
  return value;
}

function floats(fn: string, name: string, value: unknown, need: number, like?: FloatArray): FloatArray {
  if (!(value instanceof Float32Array || value instanceof Float64Array))
    throw new TypeError(`${fn}: ${name} must be a Float32Array or Float64Array, got ${typeName(value)}`);
  if (like && value.constructor !== like.constructor)
    throw new TypeError(
      `${fn}: ${name} is a ${value.constructor.name} but the first array is a ${like.constructor.name} (float arrays must share one element type)`,
    );
  if (value.length < need)
    throw new RangeError(`${fn}: ${name} has ${value.length} elements but needs ${need}`);
  return value;
}

function doubles(fn: string, name: string, value: unknown, need: number): Float64Array {
  if (!(value instanceof Float64Array))
    throw new TypeError(`${fn}: ${name} must be a Float64Array, got ${typeName(value)}`);
  if (value.length < need)
    throw new RangeError(`${fn}: ${name} has ${value.length} elements but needs ${need}`);
  return value;
}

function ints(fn: string, name: string, value: unknown, need: number): Int32Array {
  if (!(value instanceof Int32Array))
    throw new TypeError(`${fn}: ${name} must be an Int32Array, got ${typeName(value)}`);
  if (value.length < need)
    throw new RangeError(`${fn}: ${name} has ${value.length} elements but needs ${need}`);
  return value;
}

function activationKind(fn: string, kind: unknown): ActivationKind {
  if (kind === 'relu' || kind === 'gelu' || kind === 'tanh' || kind === 'sigmoid') return kind;
  throw new TypeError(`${fn}: kind must be one of relu, gelu, tanh, sigmoid, got ${String(kind)}`);
}

/** n·m, checked to stay an exact integer (sizes are at most 2^31 each, so the product is exact). */
const times = (a: number, b: number) => a * b;

/**
 * Long sums run in LANES partial sums, element e into lane e mod LANES and the last (n mod LANES)
 * elements added after them, combined in laneSum's fixed order: the native kernels' order (one
 * running sum waits on each add, eight vectorise), so both twins round alike.
 */
const LANES = 8;
const lanes = new Float64Array(LANES);
/** The lanes' total in the fixed order; eight numbers rather than an array, so no call allocates. */
function laneSum(
  s0: number,
  s1: number,
  s2: number,
  s3: number,
  s4: number,
  s5: number,
  s6: number,
  s7: number,
) {
  return s0 + s4 + (s1 + s5) + (s2 + s6 + (s3 + s7));
}

// ---------------------------------------------------------------- activations

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
function geluD2f(x: number): number {
  const th = fastTanh(GELU_C * (x + GELU_A * x * x * x));
  const sech2 = 1 - th * th;
  const du = GELU_C * (1 + 3 * GELU_A * x * x);
  const d2u = GELU_C * 6 * GELU_A * x;
  return sech2 * du - x * sech2 * th * du * du + 0.5 * x * sech2 * d2u;
}

/** f′(x) given x and y = f(x) (each function uses whichever is cheaper: tanh′ = 1 − y²). */
function derivative(kind: ActivationKind): (x: number, y: number) => number {
  switch (kind) {
    case 'relu':
      return (x) => +(x > 0);
    case 'tanh':
      return (_x, y) => 1 - y * y;
    case 'sigmoid':
      return (_x, y) => y * (1 - y);
    case 'gelu':
      return geluDf;
  }
}

function secondDerivative(kind: ActivationKind): (x: number, y: number) => number {
  switch (kind) {
    case 'relu':
      return () => 0;
    case 'tanh':
      return (_x, y) => -2 * y * (1 - y * y);
    case 'sigmoid':
      return (_x, y) => y * (1 - y) * (1 - 2 * y);
    case 'gelu':
      return geluD2f;
  }
}

// ---------------------------------------------------------------- the ops

export const portableOps: KernelOps = {
  addBias(data, bias, outer, channels, inner) {
    const fn = 'addBias';
    const total = times(
      times(size(fn, 'outer', outer), size(fn, 'channels', channels)),
      size(fn, 'inner', inner),
    );
    floats(fn, 'data', data, total);
    floats(fn, 'bias', bias, channels, data);
    if (inner === 1) {
      for (let o = 0; o < outer; o++) {
        const base = o * channels;
        for (let c = 0; c < channels; c++) data[base + c] += bias[c];
      }
      return;
    }
    for (let o = 0; o < outer; o++)
      for (let c = 0; c < channels; c++) {
        const base = (o * channels + c) * inner;
        const b = bias[c];
        for (let p = 0; p < inner; p++) data[base + p] += b;
      }
  },

  sumBias(out, data, outer, channels, inner, scale) {
    const fn = 'sumBias';
    const total = times(
      times(size(fn, 'outer', outer), size(fn, 'channels', channels)),
      size(fn, 'inner', inner),
    );
    floats(fn, 'out', out, channels);
    floats(fn, 'data', data, total, out);
    // Rows outer, channels inner: a float64 accumulator per channel, summed in row order.
    const acc = new Float64Array(channels);
    if (inner === 1) {
      for (let o = 0; o < outer; o++) {
        const base = o * channels;
        for (let c = 0; c < channels; c++) acc[c] += data[base + c];
      }
    } else {
      for (let o = 0; o < outer; o++)
        for (let c = 0; c < channels; c++) {
          const base = (o * channels + c) * inner;
          let s = 0;
          for (let p = 0; p < inner; p++) s += data[base + p];
          acc[c] += s;
        }
    }
    for (let c = 0; c < channels; c++) out[c] += scale * acc[c];
  },

  rowDots(a, b, weights, rows, length, strideA, strideB, out) {
    const fn = 'rowDots';
    const n = size(fn, 'rows', rows);
    const L = size(fn, 'length', length);
    const span = (stride: number) => (n === 0 ? 0 : (n - 1) * stride + L);
    floats(fn, 'a', a, span(size(fn, 'strideA', strideA)));
    floats(fn, 'b', b, span(size(fn, 'strideB', strideB)), a);
    if (weights !== null) floats(fn, 'weights', weights, L, a);
    doubles(fn, 'out', out, n);
    // In lanes (see laneSum), written out: the native kernel's order, so both give the same bits.
    const body = L - (L % LANES);
    for (let r = 0; r < n; r++) {
      const baseA = r * strideA;
      const baseB = r * strideB;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let s4 = 0;
      let s5 = 0;
      let s6 = 0;
      let s7 = 0;
      let e = 0;
      // The weighted and unweighted loops are written out: a shared closure costs 3× here.
      if (weights)
        for (; e < body; e += 8) {
          const i = baseA + e;
          const j = baseB + e;
          s0 += a[i] * b[j] * weights[e];
          s1 += a[i + 1] * b[j + 1] * weights[e + 1];
          s2 += a[i + 2] * b[j + 2] * weights[e + 2];
          s3 += a[i + 3] * b[j + 3] * weights[e + 3];
          s4 += a[i + 4] * b[j + 4] * weights[e + 4];
          s5 += a[i + 5] * b[j + 5] * weights[e + 5];
          s6 += a[i + 6] * b[j + 6] * weights[e + 6];
          s7 += a[i + 7] * b[j + 7] * weights[e + 7];
        }
      else
        for (; e < body; e += 8) {
          const i = baseA + e;
          const j = baseB + e;
          s0 += a[i] * b[j];
          s1 += a[i + 1] * b[j + 1];
          s2 += a[i + 2] * b[j + 2];
          s3 += a[i + 3] * b[j + 3];
          s4 += a[i + 4] * b[j + 4];
          s5 += a[i + 5] * b[j + 5];
          s6 += a[i + 6] * b[j + 6];
          s7 += a[i + 7] * b[j + 7];
        }
      let sum = laneSum(s0, s1, s2, s3, s4, s5, s6, s7);
      if (weights) for (; e < L; e++) sum += a[baseA + e] * b[baseB + e] * weights[e];
      else for (; e < L; e++) sum += a[baseA + e] * b[baseB + e];
      out[r] += sum;
    }
  },

  columnSums(out, a, b, segments, rowsPerSegment, width, outStride = width) {
    const fn = 'columnSums';
    const S = size(fn, 'segments', segments);
    const R = size(fn, 'rowsPerSegment', rowsPerSegment);
    const W = size(fn, 'width', width);
    const stride = size(fn, 'outStride', outStride);
    const total = times(times(S, R), W);
    doubles(fn, 'out', out, S === 0 || W === 0 ? 0 : (S - 1) * stride + W);
    floats(fn, 'a', a, total);
    if (b !== null) floats(fn, 'b', b, total, a);
    for (let s = 0; s < S; s++) {
      const o = s * stride;
      for (let r = 0; r < R; r++) {
        const base = (s * R + r) * W;
        if (b) for (let c = 0; c < W; c++) out[o + c] += a[base + c] * b[base + c];
        else for (let c = 0; c < W; c++) out[o + c] += a[base + c];
      }
    }
  },

  add(a, b, out) {
    const fn = 'add';
    floats(fn, 'a', a, 0);
    floats(fn, 'b', b, 0, a);
    const n = floats(fn, 'out', out, 0, a).length;
    floats(fn, 'a', a, n);
    floats(fn, 'b', b, n);
    for (let e = 0; e < n; e++) out[e] = a[e] + b[e];
  },

  activationForward(kind, x, y) {
    const fn = 'activationForward';
    activationKind(fn, kind);
    const n = floats(fn, 'x', x, 0).length;
    floats(fn, 'y', y, n, x);
    // Loops written out per function so each inlines its own arithmetic.
    switch (kind) {
      case 'relu':
        // Branch-free: activations have random signs, so branches mispredict (≈4× slower).
        for (let e = 0; e < n; e++) {
          const v = x[e];
          y[e] = (v + Math.abs(v)) * 0.5; // NaN stays NaN
        }
        return;
      case 'tanh':
        for (let e = 0; e < n; e++) y[e] = Math.tanh(x[e]);
        return;
      case 'sigmoid':
        for (let e = 0; e < n; e++) y[e] = 1 / (1 + Math.exp(-x[e]));
        return;
      case 'gelu':
        for (let e = 0; e < n; e++) {
          const v = x[e];
          y[e] = 0.5 * v * (1 + fastTanh(GELU_C * (v + GELU_A * v * v * v)));
        }
        return;
    }
  },

  activationBackward(kind, x, y, dy, dx) {
    const fn = 'activationBackward';
    activationKind(fn, kind);
    const n = floats(fn, 'x', x, 0).length;
    floats(fn, 'y', y, n, x);
    floats(fn, 'dy', dy, n, x);
    floats(fn, 'dx', dx, n, x);
    switch (kind) {
      case 'relu':
        for (let e = 0; e < n; e++) dx[e] = dy[e] * +(x[e] > 0);
        return;
      case 'tanh':
        for (let e = 0; e < n; e++) dx[e] = (1 - y[e] * y[e]) * dy[e];
        return;
      case 'sigmoid':
        for (let e = 0; e < n; e++) dx[e] = y[e] * (1 - y[e]) * dy[e];
        return;
      case 'gelu':
        for (let e = 0; e < n; e++) dx[e] = geluDf(x[e]) * dy[e];
        return;
    }
  },

  activationRForward(kind, x, y, rx, ry) {
    const fn = 'activationRForward';
    const df = derivative(activationKind(fn, kind));
    const n = floats(fn, 'x', x, 0).length;
    floats(fn, 'y', y, n, x);
    floats(fn, 'rx', rx, n, x);
    floats(fn, 'ry', ry, n, x);
    for (let e = 0; e < n; e++) ry[e] = df(x[e], y[e]) * rx[e];
  },

  activationRBackward(kind, x, y, dy, rdy, rx, rdx) {
    const fn = 'activationRBackward';
    const df = derivative(activationKind(fn, kind));
    const d2f = secondDerivative(kind);
    const n = floats(fn, 'x', x, 0).length;
    floats(fn, 'y', y, n, x);
    floats(fn, 'dy', dy, n, x);
    floats(fn, 'rdy', rdy, n, x);
    if (rx !== null) floats(fn, 'rx', rx, n, x);
    floats(fn, 'rdx', rdx, n, x);
    for (let e = 0; e < n; e++) {
      let r = df(x[e], y[e]) * rdy[e];
      if (rx) r += d2f(x[e], y[e]) * rx[e] * dy[e];
      rdx[e] = r;
    }
  },

  softmaxCrossEntropyForward(z, targets, weights, rows, classes, p, rowLoss) {
    const fn = 'softmaxCrossEntropyForward';
    const C = size(fn, 'classes', classes);
    const total = times(size(fn, 'rows', rows), C);
    floats(fn, 'z', z, total);
    ints(fn, 'targets', targets, rows);
    doubles(fn, 'weights', weights, rows);
    floats(fn, 'p', p, total, z);
    doubles(fn, 'rowLoss', rowLoss, rows);
    for (let r = 0; r < rows; r++) {
      const base = r * C;
      let max = Number.NEGATIVE_INFINITY;
      for (let c = 0; c < C; c++) if (z[base + c] > max) max = z[base + c];
      // Summed in lanes as the C twin does (see laneSum).
      const body = C - (C % LANES);
      lanes.fill(0);
      for (let c = 0; c < body; c++) {
        const e = Math.exp(z[base + c] - max);
        p[base + c] = e;
        lanes[c % LANES] += e;
      }
      let sum = laneSum(lanes[0], lanes[1], lanes[2], lanes[3], lanes[4], lanes[5], lanes[6], lanes[7]);
      for (let c = body; c < C; c++) {
        const e = Math.exp(z[base + c] - max);
        p[base + c] = e;
        sum += e;
      }
      // p holds e rounded to its element type before the division, as the C twin does.
      for (let c = 0; c < C; c++) p[base + c] /= sum;
      const w = weights[r];
      if (w === 0) {
        rowLoss[r] = 0;
        continue;
      }
      const y = targets[r];
      if (!(y >= 0 && y < C)) throw new RangeError(`${fn}: targets[${r}] = ${y} is outside 0..${C - 1}`);
      rowLoss[r] = w * (Math.log(sum) + max - z[base + y]);
    }
  },

  softmaxCrossEntropyBackward(p, targets, weights, rows, classes, dz) {
    const fn = 'softmaxCrossEntropyBackward';
    const C = size(fn, 'classes', classes);
    const total = times(size(fn, 'rows', rows), C);
    floats(fn, 'p', p, total);
    ints(fn, 'targets', targets, rows);
    doubles(fn, 'weights', weights, rows);
    floats(fn, 'dz', dz, total, p);
    for (let r = 0; r < rows; r++) {
      const w = weights[r];
      if (w === 0) continue;
      const y = targets[r];
      if (!(y >= 0 && y < C)) throw new RangeError(`${fn}: targets[${r}] = ${y} is outside 0..${C - 1}`);
      const base = r * C;
      for (let c = 0; c < C; c++) dz[base + c] = w * p[base + c];
      dz[base + y] -= w;
    }
  },

  softmaxCrossEntropyRBackward(p, rz, weights, rows, classes, rdz) {
    const fn = 'softmaxCrossEntropyRBackward';
    const C = size(fn, 'classes', classes);
    const total = times(size(fn, 'rows', rows), C);
    floats(fn, 'p', p, total);
    floats(fn, 'rz', rz, total, p);
    doubles(fn, 'weights', weights, rows);
    floats(fn, 'rdz', rdz, total, p);
    for (let r = 0; r < rows; r++) {
      const base = r * C;
      const w = weights[r];
      if (w === 0) {
        rdz.fill(0, base, base + C);
        continue;
      }
      let pr = 0;
      for (let c = 0; c < C; c++) pr += p[base + c] * rz[base + c];
      for (let c = 0; c < C; c++) rdz[base + c] = w * p[base + c] * (rz[base + c] - pr);
    }
  },

  causalSoftmaxForward(s, blocks, T) {
    const fn = 'causalSoftmaxForward';
    const rows = times(size(fn, 'blocks', blocks), size(fn, 'T', T));
    floats(fn, 's', s, times(rows, T));
    for (let b = 0; b < rows; b++) {
      const t = b % T;
      const row = b * T;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j <= t; j++) if (s[row + j] > max) max = s[row + j];
      let sum = 0;
      for (let j = 0; j <= t; j++) {
        const e = Math.exp(s[row + j] - max);
        s[row + j] = e;
        sum += e;
      }
      // Scaled from the stored (rounded) exponentials, as the C twin does.
      const inv = 1 / sum;
      for (let j = 0; j <= t; j++) s[row + j] *= inv;
      for (let j = t + 1; j < T; j++) s[row + j] = 0;
    }
  },

  causalSoftmaxBackward(p, g, blocks, T) {
    const fn = 'causalSoftmaxBackward';
    const rows = times(size(fn, 'blocks', blocks), size(fn, 'T', T));
    const total = times(rows, T);
    floats(fn, 'p', p, total);
    floats(fn, 'g', g, total, p);
    for (let b = 0; b < rows; b++) {
      const t = b % T;
      const row = b * T;
      let c = 0;
      for (let j = 0; j <= t; j++) c += g[row + j] * p[row + j];
      for (let j = 0; j <= t; j++) g[row + j] = p[row + j] * (g[row + j] - c);
      for (let j = t + 1; j < T; j++) g[row + j] = 0;
    }
  },

  causalSoftmaxRBackward(p, rp, dS, rdS, blocks, T) {
    const fn = 'causalSoftmaxRBackward';
    const rows = times(size(fn, 'blocks', blocks), size(fn, 'T', T));
    const total = times(rows, T);
    floats(fn, 'p', p, total);
    if (rp !== null) floats(fn, 'rp', rp, total, p);
    floats(fn, 'dS', dS, total, p);
    floats(fn, 'rdS', rdS, total, p);
    for (let b = 0; b < rows; b++) {
      const t = b % T;
      const row = b * T;
      let c = 0;
      let rc = 0;
      for (let j = 0; j <= t; j++) {
        c += dS[row + j] * p[row + j];
        rc += rdS[row + j] * p[row + j];
        if (rp) rc += dS[row + j] * rp[row + j];
      }
      for (let j = 0; j <= t; j++) {
        const e = row + j;
        const g = dS[e] - c;
        let r = p[e] * (rdS[e] - rc);
        if (rp) r += rp[e] * g;
        dS[e] = p[e] * g;
        rdS[e] = r;
      }
      for (let j = t + 1; j < T; j++) {
        dS[row + j] = 0;
        rdS[row + j] = 0;
      }
    }
  },

  layerNormForward(x, gamma, beta, rows, width, eps, center, xhat, rstd, y) {
    const fn = 'layerNormForward';
    const d = size(fn, 'width', width);
    const total = times(size(fn, 'rows', rows), d);
    floats(fn, 'x', x, total);
    floats(fn, 'gamma', gamma, d, x);
    if (beta !== null) floats(fn, 'beta', beta, d, x);
    floats(fn, 'xhat', xhat, total, x);
    doubles(fn, 'rstd', rstd, rows);
    floats(fn, 'y', y, total, x);
    for (let row = 0; row < rows; row++) {
      const base = row * d;
      let mu = 0;
      if (center) {
        for (let c = 0; c < d; c++) mu += x[base + c];
        mu /= d;
      }
      let ms = 0;
      for (let c = 0; c < d; c++) {
        const z = x[base + c] - mu;
        ms += z * z;
      }
      const r = 1 / Math.sqrt(ms / d + eps);
      rstd[row] = r;
      for (let c = 0; c < d; c++) {
        const h = (x[base + c] - mu) * r;
        xhat[base + c] = h;
        y[base + c] = gamma[c] * h + (beta ? beta[c] : 0);
      }
    }
  },

  layerNormBackward(dy, xhat, rstd, gamma, rows, width, center, dx) {
    const fn = 'layerNormBackward';
    const d = size(fn, 'width', width);
    const total = times(size(fn, 'rows', rows), d);
    floats(fn, 'dy', dy, total);
    floats(fn, 'xhat', xhat, total, dy);
    doubles(fn, 'rstd', rstd, rows);
    floats(fn, 'gamma', gamma, d, dy);
    floats(fn, 'dx', dx, total, dy);
    for (let row = 0; row < rows; row++) {
      const base = row * d;
      let a = 0;
      let bdot = 0;
      for (let c = 0; c < d; c++) {
        const h = gamma[c] * dy[base + c];
        a += h;
        bdot += h * xhat[base + c];
      }
      a = center ? a / d : 0;
      bdot /= d;
      const r = rstd[row];
      for (let c = 0; c < d; c++) dx[base + c] = r * (gamma[c] * dy[base + c] - a - xhat[base + c] * bdot);
    }
  },

  layerNormRForward(xhat, rstd, gamma, vGamma, vBeta, rx, rows, width, center, rxhat, shrink, ry) {
    const fn = 'layerNormRForward';
    const d = size(fn, 'width', width);
    const total = times(size(fn, 'rows', rows), d);
    floats(fn, 'xhat', xhat, total);
    doubles(fn, 'rstd', rstd, rows);
    floats(fn, 'gamma', gamma, d, xhat);
    floats(fn, 'vGamma', vGamma, d, xhat);
    if (vBeta !== null) floats(fn, 'vBeta', vBeta, d, xhat);
    if (rx !== null) {
      floats(fn, 'rx', rx, total, xhat);
      floats(fn, 'rxhat', rxhat, total, xhat);
      doubles(fn, 'shrink', shrink, rows);
    }
    floats(fn, 'ry', ry, total, xhat);
    for (let row = 0; row < rows; row++) {
      const base = row * d;
      if (rx && rxhat && shrink) {
        let rmu = 0;
        if (center) {
          for (let c = 0; c < d; c++) rmu += rx[base + c];
          rmu /= d;
        }
        let dotz = 0;
        for (let c = 0; c < d; c++) dotz += xhat[base + c] * (rx[base + c] - rmu);
        const r = rstd[row];
        const cShrink = (r * dotz) / d;
        shrink[row] = cShrink;
        for (let c = 0; c < d; c++) rxhat[base + c] = r * (rx[base + c] - rmu) - cShrink * xhat[base + c];
        // R{x̂} read back as stored (rounded to the element type), as the C twin does.
        for (let c = 0; c < d; c++)
          ry[base + c] = vGamma[c] * xhat[base + c] + (vBeta ? vBeta[c] : 0) + gamma[c] * rxhat[base + c];
      } else {
        for (let c = 0; c < d; c++) ry[base + c] = vGamma[c] * xhat[base + c] + (vBeta ? vBeta[c] : 0);
      }
    }
  },

  layerNormRBackward(
    dy,
    rdy,
    xhat,
    rxhat,
    rstd,
    shrink,
    gamma,
    vGamma,
    rows,
    width,
    center,
    gammaSums,
    betaSums,
    rdx,
  ) {
    const fn = 'layerNormRBackward';
    const d = size(fn, 'width', width);
    const total = times(size(fn, 'rows', rows), d);
    floats(fn, 'dy', dy, total);
    floats(fn, 'rdy', rdy, total, dy);
    floats(fn, 'xhat', xhat, total, dy);
    if (rxhat !== null) floats(fn, 'rxhat', rxhat, total, dy);
    doubles(fn, 'rstd', rstd, rows);
    if (shrink !== null) doubles(fn, 'shrink', shrink, rows);
    floats(fn, 'gamma', gamma, d, dy);
    floats(fn, 'vGamma', vGamma, d, dy);
    doubles(fn, 'gammaSums', gammaSums, d);
    if (betaSums !== null) doubles(fn, 'betaSums', betaSums, d);
    if (rdx !== null) floats(fn, 'rdx', rdx, total, dy);
    for (let row = 0; row < rows; row++) {
      const base = row * d;
      for (let c = 0; c < d; c++) {
        let s = rdy[base + c] * xhat[base + c];
        if (rxhat) s += dy[base + c] * rxhat[base + c];
        gammaSums[c] += s;
      }
      if (betaSums) for (let c = 0; c < d; c++) betaSums[c] += rdy[base + c];
    }
    if (!rdx) return;
    for (let row = 0; row < rows; row++) {
      const base = row * d;
      let a = 0;
      let b = 0;
      let ra = 0;
      let rb = 0;
      for (let c = 0; c < d; c++) {
        const g = dy[base + c];
        const h = gamma[c] * g;
        const rh = vGamma[c] * g + gamma[c] * rdy[base + c];
        a += h;
        ra += rh;
        b += h * xhat[base + c];
        rb += rh * xhat[base + c];
        if (rxhat) rb += h * rxhat[base + c];
      }
      a = center ? a / d : 0;
      ra = center ? ra / d : 0;
      b /= d;
      rb /= d;
      const r = rstd[row];
      const cShrink = shrink ? shrink[row] : 0;
      // h and R{h} formed again rather than kept: the same float64 values, no scratch.
      for (let c = 0; c < d; c++) {
        const g = dy[base + c];
        const xh = xhat[base + c];
        const h = gamma[c] * g;
        const rh = vGamma[c] * g + gamma[c] * rdy[base + c];
        const dxc = r * (h - a - xh * b);
        let value = -cShrink * dxc + r * (rh - ra - xh * rb);
        if (rxhat) value -= r * b * rxhat[base + c];
        rdx[base + c] = value;
      }
    }
  },

  gather(src, index, count, srcStride, dst) {
    const fn = 'gather';
    size(fn, 'count', count);
    size(fn, 'srcStride', srcStride);
    const L = ints(fn, 'index', index, 0).length;
    const s = floats(fn, 'src', src, 0);
    floats(fn, 'dst', dst, times(count, L), s);
    // Every index must land inside src: checked once over the table (count ≥ 1 reads them all).
    if (count > 0) checkIndexRange(fn, index, srcStride, count, s.length);
    for (let i = 0; i < count; i++) {
      const sb = i * srcStride;
      const db = i * L;
      for (let j = 0; j < L; j++) {
        const k = index[j];
        dst[db + j] = k >= 0 ? src[sb + k] : 0;
      }
    }
  },

  scatterAdd(src, index, count, dstStride, dst) {
    const fn = 'scatterAdd';
    size(fn, 'count', count);
    size(fn, 'dstStride', dstStride);
    const L = ints(fn, 'index', index, 0).length;
    floats(fn, 'src', src, times(count, L));
    const d = floats(fn, 'dst', dst, 0, src);
    if (count > 0) checkIndexRange(fn, index, dstStride, count, d.length);
    for (let i = 0; i < count; i++) {
      const db = i * dstStride;
      const sb = i * L;
      for (let j = 0; j < L; j++) {
        const k = index[j];
        if (k >= 0) dst[db + k] += src[sb + j];
      }
    }
  },

  gatherRows(src, rows, width, dst) {
    const fn = 'gatherRows';
    size(fn, 'width', width);
    const count = ints(fn, 'rows', rows, 0).length;
    const s = floats(fn, 'src', src, 0);
    floats(fn, 'dst', dst, times(count, width), s);
    checkRows(fn, rows, width, 'src', s.length);
    // A view per row and set(): several times an element loop's speed in JavaScript.
    for (let r = 0; r < count; r++) dst.set(src.subarray(rows[r] * width, (rows[r] + 1) * width), r * width);
  },

  scatterAddRows(src, rows, width, scale, dst) {
    const fn = 'scatterAddRows';
    size(fn, 'width', width);
    number(fn, 'scale', scale);
    const count = ints(fn, 'rows', rows, 0).length;
    const s = floats(fn, 'src', src, times(count, width));
    const d = floats(fn, 'dst', dst, 0, s);
    checkRows(fn, rows, width, 'dst', d.length);
    for (let r = 0; r < count; r++) {
      const db = rows[r] * width;
      const sb = r * width;
      for (let c = 0; c < width; c++) dst[db + c] += scale * src[sb + c];
    }
  },

  transpose(src, dst, batch, rows, cols) {
    const fn = 'transpose';
    const per = times(size(fn, 'rows', rows), size(fn, 'cols', cols));
    const total = times(size(fn, 'batch', batch), per);
    floats(fn, 'src', src, total);
    floats(fn, 'dst', dst, total, src);
    for (let b = 0; b < batch; b++) {
      const base = b * per;
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < cols; c++) dst[base + c * rows + r] = src[base + r * cols + c];
    }
  },

  maxPoolForward(x, offsets, planes, planeSize, positions, taps, y, argmax) {
    const fn = 'maxPoolForward';
    size(fn, 'planes', planes);
    size(fn, 'planeSize', planeSize);
    const P = size(fn, 'positions', positions);
    size(fn, 'taps', taps);
    floats(fn, 'x', x, times(planes, planeSize));
    ints(fn, 'offsets', offsets, times(P, taps));
    floats(fn, 'y', y, times(planes, P), x);
    ints(fn, 'argmax', argmax, times(planes, P));
    if (planes > 0) checkIndexRange(fn, offsets.subarray(0, P * taps), 0, 1, planeSize);
    for (let k = 0; k < planes; k++) {
      const base = k * planeSize;
      for (let p = 0; p < P; p++) {
        let best = Number.NEGATIVE_INFINITY;
        let arg = -1;
        for (let q = 0; q < taps; q++) {
          const off = offsets[p * taps + q];
          if (off < 0) continue;
          const v = x[base + off];
          if (arg < 0 || v > best || Number.isNaN(v)) {
            best = v;
            arg = base + off;
            if (Number.isNaN(v)) break;
          }
        }
        y[k * P + p] = best;
        argmax[k * P + p] = arg;
      }
    }
  },

  sgdUpdate(params, grad, buffer, lr, gradScale, weightDecay, decoupledWeightDecay, momentum, first) {
    const fn = 'sgdUpdate';
    const n = floats(fn, 'params', params, 0).length;
    floats(fn, 'grad', grad, n, params);
    if (buffer !== null) floats(fn, 'buffer', buffer, n, params);
    if (buffer) {
      for (let e = 0; e < n; e++) {
        const g = gradScale * grad[e] + weightDecay * params[e];
        buffer[e] = first ? g : momentum * buffer[e] + g;
        params[e] -= lr * (buffer[e] + decoupledWeightDecay * params[e]);
      }
    } else {
      const decay = weightDecay + decoupledWeightDecay;
      for (let e = 0; e < n; e++) params[e] -= lr * (gradScale * grad[e] + decay * params[e]);
    }
  },

  adamUpdate(
    params,
    grad,
    m,
    v,
    gradScale,
    coupledWeightDecay,
    beta1,
    beta2,
    shrink,
    stepSize,
    bc2Sqrt,
    eps,
  ) {
    const fn = 'adamUpdate';
    const n = floats(fn, 'params', params, 0).length;
    floats(fn, 'grad', grad, n, params);
    floats(fn, 'm', m, n, params);
    floats(fn, 'v', v, n, params);
    for (let e = 0; e < n; e++) {
      const w = params[e];
      const g = gradScale * grad[e] + coupledWeightDecay * w;
      m[e] = beta1 * m[e] + (1 - beta1) * g;
      v[e] = beta2 * v[e] + (1 - beta2) * g * g;
      params[e] = w * shrink - stepSize * (m[e] / (Math.sqrt(v[e]) / bc2Sqrt + eps));
    }
  },

  adamPreconditioner(params, grad, v, gradScale, coupledWeightDecay, beta2, bc2Sqrt, eps, out) {
    const fn = 'adamPreconditioner';
    const n = floats(fn, 'params', params, 0).length;
    floats(fn, 'grad', grad, n, params);
    if (v !== null) floats(fn, 'v', v, n, params);
    floats(fn, 'out', out, n, params);
    for (let e = 0; e < n; e++) {
      const g = gradScale * grad[e] + coupledWeightDecay * params[e];
      const vt = (v ? beta2 * v[e] : 0) + (1 - beta2) * g * g;
      out[e] = 1 / (Math.sqrt(vt) / bc2Sqrt + eps);
    }
  },

  adamLinearise(P, params, m, c, beta1, weightDecay, decoupled, bc1, kFactor) {
    const fn = 'adamLinearise';
    const n = floats(fn, 'P', P, 0).length;
    floats(fn, 'params', params, n, P);
    if (m !== null) floats(fn, 'm', m, n, P);
    if (c !== null) floats(fn, 'c', c, n, P);
    if (c) {
      if (decoupled) {
        for (let e = 0; e < n; e++) c[e] = (m ? (P[e] * beta1 * m[e]) / bc1 : 0) + weightDecay * params[e];
      } else {
        // (1 − β1)λ formed once: the same double as the per-element left-to-right product.
        const decay = (1 - beta1) * weightDecay;
        for (let e = 0; e < n; e++) c[e] = (P[e] * ((m ? beta1 * m[e] : 0) + decay * params[e])) / bc1;
      }
    }
    for (let e = 0; e < n; e++) P[e] *= kFactor;
  },

  scaleVector(x, scale, diagonal, out) {
    const fn = 'scaleVector';
    const n = floats(fn, 'x', x, 0).length;
    if (diagonal !== null) floats(fn, 'diagonal', diagonal, n, x);
    floats(fn, 'out', out, n, x);
    if (diagonal) for (let e = 0; e < n; e++) out[e] = scale * diagonal[e] * x[e];
    else for (let e = 0; e < n; e++) out[e] = scale * x[e];
  },
};

/** Throws unless every rows[r] names a whole row of width `width` inside an array of `length` elements. */
function checkRows(fn: string, rows: Int32Array, width: number, name: string, length: number): void {
  const tableRows = width === 0 ? Number.POSITIVE_INFINITY : Math.floor(length / width);
  for (let r = 0; r < rows.length; r++)
    if (rows[r] < 0 || rows[r] >= tableRows)
      throw new RangeError(
        `${fn}: rows[${r}] is ${rows[r]}, outside the ${tableRows} rows of ${name} (width ${width})`,
      );
}

/** Throws unless every index is < 0 (skipped) or lands inside an array of `length` for all `count` blocks. */
function checkIndexRange(fn: string, index: Int32Array, stride: number, count: number, length: number): void {
  let max = -1;
  for (let j = 0; j < index.length; j++) if (index[j] > max) max = index[j];
  if (max >= 0 && (count - 1) * stride + max >= length)
    throw new RangeError(
      `${fn}: index reaches ${max} in block ${count - 1} (stride ${stride}), past the array's ${length} elements`,
    );
}

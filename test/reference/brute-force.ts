// Slow, exact references. Nothing here uses ghost products or the R-operator: per-example
// gradients come from back-propagating one example at a time, Hessians from central
// differences of gradients, Shapley values from enumerating every subset.
import type { FloatArray } from '../../src/kernels/types.js';
import type { Activation } from '../../src/layers/types.js';
import type { Targets } from '../../src/losses/types.js';
import type { Sequential } from '../../src/models/sequential.js';

export interface Examples {
  input: Activation;
  targets: Targets;
}

/** Example i alone, as a batch of one. */
export function slice(batch: Examples, i: number): Examples {
  const { tokens, width } = batch.input;
  const per = tokens * width;
  const targetsPer = batch.targets.length / batch.input.n;
  const ids = batch.input.ids?.slice(i * tokens, (i + 1) * tokens);
  return {
    input: {
      data: ids ? batch.input.data : batch.input.data.slice(i * per, (i + 1) * per),
      n: 1,
      tokens,
      width,
      ids,
    },
    targets: batch.targets.slice(i * targetsPer, (i + 1) * targetsPer) as Targets,
  };
}

/** Gradient of example i's own loss, by a separate backward pass over that example alone. */
export function perExampleGradients(model: Sequential, batch: Examples): Float64Array[] {
  return Array.from({ length: batch.input.n }, (_, i) => {
    const one = slice(batch, i);
    const { grad } = model.lossAndGradient(one.input, one.targets);
    return Float64Array.from(grad);
  });
}

/** Mean loss of a batch at the given weights. */
export function meanLoss(model: Sequential, batch: Examples, params: FloatArray = model.params): number {
  const { losses } = model.forward(batch.input, batch.targets, params);
  let s = 0;
  for (const l of losses) s += l;
  return s / losses.length;
}

/** Mean gradient of a batch at the given weights. */
export function meanGradient(model: Sequential, batch: Examples, params: FloatArray): Float64Array {
  const saved = model.params.slice();
  model.params.set(params);
  const { grad } = model.lossAndGradient(batch.input, batch.targets);
  model.params.set(saved);
  return Float64Array.from(grad);
}

/** Dense Hessian of the mean loss by central differences of exact gradients (float64 models). */
export function denseHessian(model: Sequential, batch: Examples, h = 1e-5): Float64Array[] {
  const P = model.parameterCount;
  const w = model.params.slice();
  const columns: Float64Array[] = [];
  for (let k = 0; k < P; k++) {
    const plus = w.slice();
    plus[k] += h;
    const minus = w.slice();
    minus[k] -= h;
    const gp = meanGradient(model, batch, plus);
    const gm = meanGradient(model, batch, minus);
    columns.push(gp.map((v, e) => (v - gm[e]) / (2 * h)));
  }
  // Symmetrise: removes the antisymmetric part of the finite-difference error.
  const H = Array.from({ length: P }, () => new Float64Array(P));
  for (let r = 0; r < P; r++) for (let c = 0; c < P; c++) H[r][c] = 0.5 * (columns[c][r] + columns[r][c]);
  return H;
}

export function matVec(H: Float64Array[], x: ArrayLike<number>): Float64Array {
  return Float64Array.from(H, (row) => dot(row, x));
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let e = 0; e < a.length; e++) s += a[e] * b[e];
  return s;
}

export function add(a: ArrayLike<number>, b: ArrayLike<number>, scaleB = 1): Float64Array {
  return Float64Array.from(a, (v, e) => v + scaleB * b[e]);
}

/** ‖a − b‖ / ‖b‖ (or ‖a − b‖ when b = 0). */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let norm = 0;
  for (let e = 0; e < a.length; e++) {
    diff += (a[e] - b[e]) ** 2;
    norm += b[e] ** 2;
  }
  return norm > 0 ? Math.sqrt(diff / norm) : Math.sqrt(diff);
}

/**
 * Exact Shapley values of a set function over n players by enumerating all 2^n subsets
 * (players are bit positions of the subset mask).
 */
export function shapleyByEnumeration(n: number, utility: (mask: number) => number): Float64Array {
  const values = new Float64Array(n);
  const cache = new Float64Array(1 << n);
  for (let mask = 0; mask < 1 << n; mask++) cache[mask] = utility(mask);
  const factorial = [1];
  for (let k = 1; k <= n; k++) factorial.push(factorial[k - 1] * k);
  for (let i = 0; i < n; i++) {
    for (let mask = 0; mask < 1 << n; mask++) {
      if (mask & (1 << i)) continue;
      const s = popcount(mask);
      const weight = (factorial[s] * factorial[n - s - 1]) / factorial[n];
      values[i] += weight * (cache[mask | (1 << i)] - cache[mask]);
    }
  }
  return values;
}

function popcount(x: number): number {
  let c = 0;
  while (x) {
    c += x & 1;
    x >>>= 1;
  }
  return c;
}

/**
 * Exact KNN-Shapley (Jia et al. 2019, "Efficient task-specific data valuation for nearest
 * neighbor algorithms"): the Shapley value of every training point for a K-nearest-neighbour
 * classifier, in O(n log n) per validation point instead of the 2^n subsets of the definition.
 * It needs no training run, so it is a baseline for the values inrun computes in one.
 */
import { getKernels } from '../kernels/index.js';
import type { Kernels } from '../kernels/types.js';
import { fail } from '../util/errors.js';

/** n points of d features (row-major) with one integer class label each. */
export interface LabeledPoints {
  features: Float32Array | Float64Array;
  labels: Int32Array | number[];
  n: number;
  d: number;
}

export interface KnnShapleyOptions {
  /** Kernels for the distance products (default: `getKernels()`). */
  kernels?: Kernels;
  /**
   * Validation points whose distances to every training point are held at once (default: as many
   * as fit in about 32 MB). Only memory and speed depend on it.
   */
  blockRows?: number;
}

const DEFAULT_BLOCK_ELEMENTS = 1 << 22;

/**
 * Shapley values of the training points for the utility
 *   U(S) = (1/K) Σ_{j=1}^{min(K,|S|)} 1[y_{α_j(S)} = y_v],
 * α_j(S) being the j-th nearest member of S to the validation point v (Euclidean distance),
 * averaged over the validation points. Per validation point, with the training points sorted by
 * distance (α_1 nearest, α_N farthest):
 *   s_{α_N} = 1[y_{α_N} = y_v] · min(K, N) / (N·K)
 *   s_{α_i} = s_{α_{i+1}} + (1[y_{α_i} = y_v] − 1[y_{α_{i+1}} = y_v]) / K · min(K, i) / i.
 * The first line is the paper's 1[·]/N when K ≤ N; the min(K, N) extends it to K > N, where every
 * point is always among the K nearest and s_i = 1[y_i = y_v]/K.
 *
 * Points at equal distance are ordered by training index (lower index = nearer), in the utility as
 * in the recursion, so the values are exact Shapley values of that tie-broken classifier.
 * Distances are computed in float64 as ‖x‖² + ‖v‖² − 2⟨x, v⟩ (one gemm per block of validation
 * points); rounding there can split or merge near-ties, as any distance computation would.
 */
export function knnShapley(
  train: LabeledPoints,
  validation: LabeledPoints,
  k: number,
  options: KnnShapleyOptions = {},
): Float64Array {
  checkPoints('knnShapley: training data', train);
  checkPoints('knnShapley: validation data', validation);
  if (validation.d !== train.d)
    fail(`knnShapley: validation points have ${validation.d} features, training points ${train.d}`);
  if (!Number.isInteger(k) || k < 1) fail(`knnShapley: K must be a positive integer, got ${k}`);

  const n = train.n;
  const values = new Float64Array(n);
  const order = new Uint32Array(n);
  const matches = new Uint8Array(n);
  forEachDistanceBlock(train, validation, options, (first, rows, distances) => {
    for (let r = 0; r < rows; r++) {
      const distance = distances.subarray(r * n, (r + 1) * n);
      for (let i = 0; i < n; i++) order[i] = i;
      order.sort((a, b) => distance[a] - distance[b] || a - b);
      const label = validation.labels[first + r];
      for (let i = 0; i < n; i++) matches[i] = train.labels[order[i]] === label ? 1 : 0;
      // Positions are 1-based in the recursion: position p sits at order[p − 1].
      let s = (matches[n - 1] * Math.min(k, n)) / (n * k);
      values[order[n - 1]] += s;
      for (let p = n - 1; p >= 1; p--) {
        s += ((matches[p - 1] - matches[p]) / k) * (Math.min(k, p) / p);
        values[order[p - 1]] += s;
      }
    }
  });
  for (let i = 0; i < n; i++) values[i] /= validation.n;
  return values;
}

/**
 * Squared Euclidean distances, m × n row-major: entry (j, i) is ‖v_j − x_i‖² for validation point
 * j and training point i. The same computation knnShapley ranks by (clamped at 0).
 */
export function squaredDistances(
  train: LabeledPoints,
  validation: LabeledPoints,
  options: KnnShapleyOptions = {},
): Float64Array {
  checkPoints('squaredDistances: training data', train);
  checkPoints('squaredDistances: validation data', validation);
  if (validation.d !== train.d)
    fail(`squaredDistances: validation points have ${validation.d} features, training points ${train.d}`);
  const out = new Float64Array(validation.n * train.n);
  forEachDistanceBlock(train, validation, options, (first, rows, distances) => {
    out.set(distances.subarray(0, rows * train.n), first * train.n);
  });
  return out;
}

/** Calls `visit` with the distances of validation points [first, first + rows) to every training point. */
function forEachDistanceBlock(
  train: LabeledPoints,
  validation: LabeledPoints,
  options: KnnShapleyOptions,
  visit: (first: number, rows: number, distances: Float64Array) => void,
): void {
  const { n, d } = train;
  const m = validation.n;
  const blockRows = options.blockRows ?? Math.max(1, Math.floor(DEFAULT_BLOCK_ELEMENTS / n));
  if (!Number.isInteger(blockRows) || blockRows < 1)
    fail(`knnShapley: blockRows must be a positive integer, got ${blockRows}`);
  const kernels = options.kernels ?? getKernels();
  const x = Float64Array.from(train.features);
  const v = Float64Array.from(validation.features);
  const trainNorms = rowSquaredNorms(x, n, d);
  const validationNorms = rowSquaredNorms(v, m, d);
  const block = new Float64Array(Math.min(blockRows, m) * n);
  for (let first = 0; first < m; first += blockRows) {
    const rows = Math.min(blockRows, m - first);
    kernels.gemm(false, true, rows, n, d, -2, v.subarray(first * d), d, x, d, 0, block, n);
    for (let r = 0; r < rows; r++) {
      const vNorm = validationNorms[first + r];
      const base = r * n;
      for (let i = 0; i < n; i++) {
        // Cancellation can leave a tiny negative for (near-)identical points.
        const squared = block[base + i] + vNorm + trainNorms[i];
        block[base + i] = Math.max(squared, 0);
      }
    }
    visit(first, rows, block);
  }
}

function rowSquaredNorms(data: Float64Array, rows: number, d: number): Float64Array {
  const norms = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let c = r * d; c < (r + 1) * d; c++) sum += data[c] * data[c];
    norms[r] = sum;
  }
  return norms;
}

function checkPoints(where: string, points: LabeledPoints): void {
  const { features, labels, n, d } = points;
  if (!Number.isInteger(n) || n < 1) fail(`${where}: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(d) || d < 1) fail(`${where}: d must be a positive integer, got ${d}`);
  if (features.length !== n * d)
    fail(`${where}: ${features.length} feature values, expected n·d = ${n}·${d} = ${n * d}`);
  if (labels.length !== n) fail(`${where}: ${labels.length} labels for ${n} points`);
  for (let e = 0; e < features.length; e++) {
    if (!Number.isFinite(features[e]))
      fail(`${where}: point ${Math.floor(e / d)}, feature ${e % d} is ${features[e]}`);
  }
  for (let i = 0; i < n; i++) {
    if (!Number.isInteger(labels[i]))
      fail(`${where}: point ${i} has label ${labels[i]}; labels must be integers`);
  }
}

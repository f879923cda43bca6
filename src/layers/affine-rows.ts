// Ghost products for the normalisation layers (LayerNorm, RMSNorm, GroupNorm). Their per-example
// gradients are short — a scale and an optional shift per channel — so they are formed whole, one
// row per example laid out [γ_i (C values), β_i (C values, with a shift)], and every product the
// valuer asks for is read off those rows here.
import type { FloatArray } from '../kernels/types.js';

/** Per-example gradient rows: `n` rows of C (scale only) or 2C (scale, then shift) values. */
export interface AffineRows {
  rows: Float64Array;
  n: number;
  channels: number;
  shifted: boolean;
}

/** The scale and shift parts of a parameter-shaped vector (shift null without one). */
export type AffineParts = (flat: FloatArray) => { scale: FloatArray; shift: FloatArray | null };

/** outs[k][i] += ⟨row_i, us[k]⟩ for every example and vector. */
export function affineRowDots(
  rows: AffineRows,
  parts: AffineParts,
  us: FloatArray[],
  outs: Float64Array[],
): void {
  for (let k = 0; k < us.length; k++) {
    const u = parts(us[k]);
    for (let i = 0; i < rows.n; i++) outs[k][i] += rowDot(rows, i, u);
  }
}

/** out[i] += ⟨row_i, us[which[i]]⟩ for every example (skipped where which[i] < 0). */
export function affineRowDotsEach(
  rows: AffineRows,
  parts: AffineParts,
  us: FloatArray[],
  which: Int32Array,
  out: Float64Array,
): void {
  const views = us.map(parts);
  for (let i = 0; i < rows.n; i++) if (which[i] >= 0) out[i] += rowDot(rows, i, views[which[i]]);
}

/** ⟨row_i, u⟩ with u given by its scale and shift parts. */
function rowDot(
  { rows, channels: C, shifted }: AffineRows,
  i: number,
  { scale, shift }: { scale: FloatArray; shift: FloatArray | null },
): number {
  const o = i * (shifted ? 2 * C : C);
  let sum = 0;
  for (let c = 0; c < C; c++) sum += rows[o + c] * scale[c];
  if (shifted && shift) for (let c = 0; c < C; c++) sum += rows[o + C + c] * shift[c];
  return sum;
}

/** out[i] += Σ_e w_e·row_ie² for every example (w = `weights`, 1 where null). */
export function affineRowSelfDots(
  { rows, n, channels: C, shifted }: AffineRows,
  parts: AffineParts,
  weights: FloatArray | null,
  out: Float64Array,
): void {
  const K = shifted ? 2 * C : C;
  const w = weights ? parts(weights) : null;
  for (let i = 0; i < n; i++) {
    const o = i * K;
    let sum = 0;
    for (let c = 0; c < C; c++) sum += (w ? w.scale[c] : 1) * rows[o + c] ** 2;
    if (shifted) for (let c = 0; c < C; c++) sum += (w?.shift ? w.shift[c] : 1) * rows[o + C + c] ** 2;
    out[i] += sum;
  }
}

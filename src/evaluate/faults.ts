/**
 * Planted bad data for the detection benchmark: known faults injected into a clean table, so that
 * a valuation method can be scored on how well its lowest values find them.
 */
import { fail } from '../util/errors.js';
import { Rng } from '../util/rng.js';

/**
 * The kinds of fault, in the order they are assigned rows (so a spec's order does not matter):
 *
 * - `label-flip`: the label is replaced by one drawn uniformly from the other classes.
 * - `feature-noise`: every feature gets Gaussian noise with std equal to that feature's standard
 *   deviation over the input table (features that are constant there are left alone); label kept.
 * - `duplicate`: features and label become an exact copy of a randomly chosen clean row.
 * - `near-duplicate`: as `duplicate`, plus Gaussian noise with std 0.05 × the feature's std.
 * - `out-of-distribution`: each feature is drawn uniformly from [min − r, max + r], r = max − min
 *   of that feature over the input table, so most such rows lie outside the data's bounding box.
 *   The label is left as it was, which makes it meaningless for the new features.
 */
export const FAULT_KINDS = [
  'label-flip',
  'feature-noise',
  'duplicate',
  'near-duplicate',
  'out-of-distribution',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultSpec {
  kind: FaultKind;
  /** Fraction of the table's rows given this fault, in (0, MAX_FAULT_RATE]. */
  rate: number;
}

export const MAX_FAULT_RATE = 0.5;
/** Some rows must stay clean: duplicates copy them, and detection needs negatives. */
export const MAX_TOTAL_FAULT_RATE = 0.9;
const NEAR_DUPLICATE_NOISE = 0.05;

/** A numeric classification table: n rows of d features (row-major) and labels in 0..classes−1. */
export interface ClassificationTable {
  features: Float64Array;
  labels: Int32Array;
  n: number;
  d: number;
  classes: number;
}

export interface InjectedFaults {
  /** A faulted copy; the input table is not modified. */
  table: ClassificationTable;
  /** Each row's fault, or null for a clean row. */
  faults: (FaultKind | null)[];
  /** For duplicate and near-duplicate rows, the clean row they copy; null elsewhere. */
  sourceRow: (number | null)[];
}

/** Throws a clear error unless `spec` lists known kinds, once each, with valid rates. */
export function checkFaultSpec(spec: readonly FaultSpec[]): void {
  if (!Array.isArray(spec)) fail('fault spec must be an array of { kind, rate }');
  const seen = new Set<string>();
  let total = 0;
  for (const { kind, rate } of spec) {
    if (!FAULT_KINDS.includes(kind))
      fail(`unknown fault kind ${JSON.stringify(kind)} (known: ${FAULT_KINDS.join(', ')})`);
    if (seen.has(kind)) fail(`fault kind ${kind} is given twice; give each kind once`);
    seen.add(kind);
    if (typeof rate !== 'number' || !(rate > 0 && rate <= MAX_FAULT_RATE))
      fail(`fault rate of ${kind} must be a number in (0, ${MAX_FAULT_RATE}], got ${rate}`);
    total += rate;
  }
  // The tolerance forgives sums like 0.2 + 0.2 + 0.5 that land a rounding error above 0.9.
  if (total > MAX_TOTAL_FAULT_RATE + 1e-12)
    fail(
      `fault rates add up to ${Number(total.toPrecision(12))}; at most ${MAX_TOTAL_FAULT_RATE} of the rows can be faulted`,
    );
}

/** Parses a CLI fault spec such as `label-flip:0.1,duplicate:0.05` and checks it. */
export function parseFaultSpec(text: string): FaultSpec[] {
  const example = 'label-flip:0.1,duplicate:0.05';
  if (text.trim() === '') fail(`fault spec is empty; give kind:rate pairs such as ${example}`);
  const spec = text.split(',').map((entry): FaultSpec => {
    const parts = entry.split(':');
    if (parts.length !== 2)
      fail(
        `fault spec entry ${JSON.stringify(entry.trim())} is not kind:rate (e.g. ${example}; kinds: ${FAULT_KINDS.join(', ')})`,
      );
    const kind = parts[0].trim();
    const rateText = parts[1].trim();
    // Plain decimals only: Number() would also take "", "0x1" or "Infinity".
    if (!/^(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(rateText))
      fail(`fault rate ${JSON.stringify(rateText)} of ${kind} is not a number`);
    return { kind: kind as FaultKind, rate: Number(rateText) };
  });
  checkFaultSpec(spec);
  return spec;
}

/**
 * Plants the faults of `spec` in a copy of `table`: round(rate·n) rows per kind, the row sets of
 * different kinds disjoint, all drawn with `Rng(seed)` so a seed reproduces the same faults.
 * Feature statistics (std, min, max) are those of the input table; duplicates copy rows that
 * receive no fault.
 */
export function injectFaults(
  table: ClassificationTable,
  spec: readonly FaultSpec[],
  seed: number,
): InjectedFaults {
  checkTable(table);
  checkFaultSpec(spec);
  if (!Number.isInteger(seed)) fail(`fault seed must be an integer, got ${seed}`);
  const { n, d, classes } = table;
  if (classes < 2 && spec.some((s) => s.kind === 'label-flip'))
    fail(`label-flip needs at least 2 classes, the table has ${classes}`);

  const rateOf = new Map(spec.map((s) => [s.kind, s.rate]));
  const counts = FAULT_KINDS.map((kind) => rowCount(rateOf.get(kind) ?? 0, n));
  const faulted = counts.reduce((a, b) => a + b, 0);
  if (faulted > n) fail(`the fault rates ask for ${faulted} faulted rows but the table has only ${n}`);
  const copies = counts[FAULT_KINDS.indexOf('duplicate')] + counts[FAULT_KINDS.indexOf('near-duplicate')];
  if (copies > 0 && faulted === n)
    fail(`duplicates need a clean row to copy, but the fault rates fault all ${n} rows`);

  const rng = new Rng(seed);
  const permutation = rng.permutation(n);
  const faults: (FaultKind | null)[] = new Array(n).fill(null);
  const rowsOf = new Map<FaultKind, Int32Array>();
  let cursor = 0;
  FAULT_KINDS.forEach((kind, k) => {
    const rows = permutation.subarray(cursor, cursor + counts[k]);
    for (const row of rows) faults[row] = kind;
    rowsOf.set(kind, rows);
    cursor += counts[k];
  });
  const cleanRows = permutation.subarray(cursor);

  const stats = featureStatistics(table);
  const features = Float64Array.from(table.features);
  const labels = Int32Array.from(table.labels);
  const sourceRow: (number | null)[] = new Array(n).fill(null);

  for (const row of rowsOf.get('label-flip')!)
    labels[row] = (labels[row] + 1 + rng.int(classes - 1)) % classes;
  for (const row of rowsOf.get('feature-noise')!) addNoise(features, row, d, stats.std, 1, rng);
  for (const kind of ['duplicate', 'near-duplicate'] as const) {
    for (const row of rowsOf.get(kind)!) {
      const source = cleanRows[rng.int(cleanRows.length)];
      features.set(table.features.subarray(source * d, (source + 1) * d), row * d);
      labels[row] = table.labels[source];
      sourceRow[row] = source;
      if (kind === 'near-duplicate') addNoise(features, row, d, stats.std, NEAR_DUPLICATE_NOISE, rng);
    }
  }
  for (const row of rowsOf.get('out-of-distribution')!) {
    for (let j = 0; j < d; j++) {
      const range = stats.max[j] - stats.min[j];
      features[row * d + j] = stats.min[j] - range + 3 * range * rng.uniform();
    }
  }
  return { table: { features, labels, n, d, classes }, faults, sourceRow };
}

/** round(rate·n), rounding the product to 12 digits first so that 0.35·90 = 31.4999… counts 32. */
function rowCount(rate: number, n: number): number {
  return Math.round(Number((rate * n).toPrecision(12)));
}

/** Adds N(0, (scale·std_j)²) to each feature j of a row whose std is positive. */
function addNoise(
  features: Float64Array,
  row: number,
  d: number,
  std: Float64Array,
  scale: number,
  rng: Rng,
): void {
  for (let j = 0; j < d; j++) if (std[j] > 0) features[row * d + j] += scale * std[j] * rng.normal();
}

/** Per-feature population standard deviation, minimum and maximum. */
function featureStatistics({ features, n, d }: ClassificationTable) {
  const mean = new Float64Array(d);
  const min = new Float64Array(d).fill(Infinity);
  const max = new Float64Array(d).fill(-Infinity);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const x = features[i * d + j];
      mean[j] += x / n;
      if (x < min[j]) min[j] = x;
      if (x > max[j]) max[j] = x;
    }
  }
  const std = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) std[j] += (features[i * d + j] - mean[j]) ** 2 / n;
  // A constant feature has std exactly 0, whatever rounding the mean picked up.
  for (let j = 0; j < d; j++) std[j] = min[j] === max[j] ? 0 : Math.sqrt(std[j]);
  return { std, min, max };
}

function checkTable({ features, labels, n, d, classes }: ClassificationTable): void {
  if (!Number.isInteger(n) || n < 1) fail(`fault injection: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(d) || d < 1) fail(`fault injection: d must be a positive integer, got ${d}`);
  if (!Number.isInteger(classes) || classes < 1)
    fail(`fault injection: classes must be a positive integer, got ${classes}`);
  if (features.length !== n * d)
    fail(`fault injection: ${features.length} feature values, expected n·d = ${n}·${d} = ${n * d}`);
  if (labels.length !== n) fail(`fault injection: ${labels.length} labels for ${n} rows`);
  for (let e = 0; e < features.length; e++)
    if (!Number.isFinite(features[e]))
      fail(`fault injection: row ${Math.floor(e / d)}, feature ${e % d} is ${features[e]}`);
  for (let i = 0; i < n; i++)
    if (labels[i] < 0 || labels[i] >= classes)
      fail(`fault injection: row ${i} has label ${labels[i]}, outside the classes 0..${classes - 1}`);
}

// The numbers behind the report's plots, computed once at render time so the HTML embeds only
// plot-ready arrays (bounded in size however large the run).
import type { ReportTraceRow, ReportValue } from './types.js';

/** The run's main value of an example: second order when the run computed it, else first order. */
export function mainValue(v: Pick<ReportValue, 'firstOrder' | 'secondOrder'>, order: 1 | 2): number {
  return order === 2 && v.secondOrder !== null ? v.secondOrder : v.firstOrder;
}

/** Validation loss after k steps at index k (index 0: before the first step). */
export function validationLossCurve(
  trace: Pick<ReportTraceRow, 'validationLossBefore' | 'validationLossAfter'>[],
): number[] {
  if (trace.length === 0) return [];
  return [trace[0].validationLossBefore, ...trace.map((t) => t.validationLossAfter)];
}

/** The first k with curve[k] ≤ target, or null if the curve never gets there. */
export function stepsToReach(curve: number[], target: number): number | null {
  for (let k = 0; k < curve.length; k++) if (curve[k] <= target) return k;
  return null;
}

/**
 * A run's held-out test evaluations: after `step[i]` steps (the weights after trace row
 * step[i] − 1) the mean test loss was `loss[i]` and the accuracy `accuracy[i]` (null for
 * regression and text). Only the steps the run evaluated; null when the run had no test set.
 */
export interface TestCurve {
  step: number[];
  loss: number[];
  accuracy: (number | null)[];
}

export function testCurve(
  trace: Pick<ReportTraceRow, 'step' | 'testLoss' | 'testAccuracy'>[],
): TestCurve | null {
  if (!trace.some((t) => t.testLoss !== undefined)) return null;
  const curve: TestCurve = { step: [], loss: [], accuracy: [] };
  for (const t of trace) {
    if (typeof t.testLoss !== 'number') continue;
    curve.step.push(t.step + 1);
    curve.loss.push(t.testLoss);
    curve.accuracy.push(typeof t.testAccuracy === 'number' ? t.testAccuracy : null);
  }
  return curve;
}

/**
 * Steps until a sparsely evaluated curve (`values[i]` after `steps[i]` steps) is at or below
 * `target`: the first evaluated step that is, or null if none. Its resolution is the spacing of
 * the evaluations.
 */
export function stepsToReachAt(steps: number[], values: number[], target: number): number | null {
  for (let i = 0; i < values.length; i++) if (values[i] <= target) return steps[i];
  return null;
}

/**
 * The report's test chart: test loss (and accuracy) at the steps the run evaluated, beside the
 * validation loss at the same weights (the row's validationLossAfter). Null without a test set.
 */
export function testSeries(
  trace: Pick<ReportTraceRow, 'step' | 'validationLossAfter' | 'testLoss' | 'testAccuracy'>[],
  maxPoints = 600,
): {
  step: number[];
  testLoss: number[];
  validationLoss: (number | null)[];
  testAccuracy: (number | null)[] | null;
} | null {
  const curve = testCurve(trace);
  if (!curve) return null;
  const down = downsampleTestCurve(curve, maxPoints);
  const validationAfter = new Map(trace.map((t) => [t.step + 1, t.validationLossAfter]));
  return {
    step: down.step,
    testLoss: down.loss,
    validationLoss: down.step.map((k) => finiteOrNull(validationAfter.get(k))),
    testAccuracy: down.accuracy.some((a) => a !== null) ? down.accuracy : null,
  };
}

/** At most maxPoints evaluations of a test curve, evenly strided, always keeping the last. */
export function downsampleTestCurve(curve: TestCurve, maxPoints = 600): TestCurve {
  const n = curve.step.length;
  const stride = Math.max(1, Math.ceil(n / maxPoints));
  if (stride === 1) return curve;
  const keep: number[] = [];
  for (let i = 0; i < n; i += stride) keep.push(i);
  if (keep.at(-1) !== n - 1) keep.push(n - 1);
  return {
    step: keep.map((i) => curve.step[i]),
    loss: keep.map((i) => curve.loss[i]),
    accuracy: keep.map((i) => curve.accuracy[i]),
  };
}

export interface Histogram {
  /** Bin edges, bins + 1 of them; 0 is an edge whenever values of both signs occur. */
  edges: number[];
  centers: number[];
  /** Counts of bins below 0 (null above), and above 0 (null below). */
  negative: (number | null)[];
  positive: (number | null)[];
  /** Values outside [edges[0], edges[bins]] counted into the end bins. */
  clipped: number;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

/**
 * A histogram of `values` with about `bins` bins. Its range is the 0.5–99.5% quantiles, so a few
 * extreme values do not squeeze the rest into one bar; they are counted into the end bins.
 */
export function histogram(values: number[], bins = 40): Histogram {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return { edges: [], centers: [], negative: [], positive: [], clipped: 0 };
  let lo = quantile(finite, 0.005);
  let hi = quantile(finite, 0.995);
  if (!(hi > lo)) {
    lo = finite[0];
    hi = finite[finite.length - 1];
  }
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.5 : 1;
    lo -= pad;
    hi += pad;
  }
  let width = (hi - lo) / bins;
  let start = lo;
  let count = bins;
  if (lo < 0 && hi > 0) {
    // Align a bin edge with 0 so no bar mixes helpful and harmful examples.
    const below = Math.max(1, Math.ceil(-lo / width));
    const above = Math.max(1, Math.ceil(hi / width));
    count = below + above;
    width = Math.max(-lo / below, hi / above);
    start = -below * width;
  }
  const edges = Array.from({ length: count + 1 }, (_, k) => start + k * width);
  if (lo < 0 && hi > 0) edges[Math.round(-start / width)] = 0;
  const counts = new Array<number>(count).fill(0);
  let clipped = 0;
  for (const v of finite) {
    let k = Math.floor((v - start) / width);
    if (k < 0 || k >= count) clipped++;
    k = Math.min(count - 1, Math.max(0, k));
    // Exact 0 goes with the positive side's first bin; values on an edge go right.
    counts[k]++;
  }
  const centers = edges.slice(0, -1).map((e, k) => (e + edges[k + 1]) / 2);
  return {
    edges,
    centers,
    negative: counts.map((c, k) => (centers[k] < 0 ? c : null)),
    positive: counts.map((c, k) => (centers[k] >= 0 ? c : null)),
    clipped,
  };
}

export interface RemovalCurve {
  /** Fraction of training examples removed, most harmful first (0 … 1). */
  fraction: number[];
  /** Σ value of the examples that remain. */
  remaining: number[];
  /** What removing the same fraction at random leaves in expectation: total·(1 − fraction). */
  random: number[];
  total: number;
  /** The largest remaining total and the fraction removed there (= the negatives removed). */
  peak: { fraction: number; remaining: number };
  negatives: number;
}

/** Total value left as examples are removed from the most harmful up, at ≤ maxPoints fractions. */
export function removalCurve(values: number[], maxPoints = 400): RemovalCurve {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  const n = sorted.length;
  const total = sorted.reduce((a, b) => a + b, 0);
  const remainingAt = new Float64Array(n + 1);
  remainingAt[0] = total;
  let peakK = 0;
  for (let k = 1; k <= n; k++) {
    remainingAt[k] = remainingAt[k - 1] - sorted[k - 1];
    if (remainingAt[k] > remainingAt[peakK]) peakK = k;
  }
  remainingAt[n] = 0;
  const negatives = sorted.filter((v) => v < 0).length;
  const ks = new Set<number>([0, n, peakK]);
  const stride = Math.max(1, Math.ceil(n / maxPoints));
  for (let k = 0; k <= n; k += stride) ks.add(k);
  const order = [...ks].sort((a, b) => a - b);
  const fraction = order.map((k) => (n === 0 ? 0 : k / n));
  return {
    fraction,
    remaining: order.map((k) => remainingAt[k]),
    random: fraction.map((f) => total * (1 - f)),
    total,
    peak: { fraction: n === 0 ? 0 : peakK / n, remaining: remainingAt[peakK] },
    negatives,
  };
}

export interface GroupSummary {
  group: string;
  examples: number;
  timesSeen: number;
  total: number;
  mean: number;
  /** Examples with a negative value. */
  negatives: number;
  stages: number[];
}

/** Per-group totals (main value), largest |total| first. */
export function groupSummaries(values: ReportValue[], order: 1 | 2, stageCount: number): GroupSummary[] {
  const groups = new Map<string, GroupSummary>();
  for (const v of values) {
    const name = v.group ?? '(none)';
    let g = groups.get(name);
    if (!g) {
      g = {
        group: name,
        examples: 0,
        timesSeen: 0,
        total: 0,
        mean: 0,
        negatives: 0,
        stages: new Array(stageCount).fill(0),
      };
      groups.set(name, g);
    }
    const x = mainValue(v, order);
    g.examples++;
    g.timesSeen += v.timesSeen;
    if (Number.isFinite(x)) g.total += x;
    if (x < 0) g.negatives++;
    for (let s = 0; s < stageCount; s++) g.stages[s] += v.stages[s] ?? 0;
  }
  const list = [...groups.values()];
  for (const g of list) g.mean = g.total / g.examples;
  return list.sort((a, b) => Math.abs(b.total) - Math.abs(a.total) || a.group.localeCompare(b.group));
}

/** Bucket boundaries that cut `n` items into at most `maxBuckets` consecutive runs. */
function buckets(n: number, maxBuckets: number): [number, number][] {
  const size = Math.max(1, Math.ceil(n / maxBuckets));
  const out: [number, number][] = [];
  for (let a = 0; a < n; a += size) out.push([a, Math.min(n, a + size)]);
  return out;
}

export interface TraceSeries {
  /** Steps per point (1 unless the run is longer than the point budget; then points are bucket means). */
  stride: number;
  step: number[];
  valuesSum: number[];
  taylorUtility: number[];
  actualUtility: (number | null)[];
  /** Largest-magnitude residual / Taylor error within each bucket. */
  efficiencyResidual: number[];
  taylorError: (number | null)[];
  validationLoss: (number | null)[];
  trainLoss: number[];
  lr: number[];
}

export interface TraceStats {
  steps: number;
  maxAbsResidual: number;
  /** Σ|Taylor error| / Σ|actual utility| over the steps (how far the expansion is off, relatively). */
  relativeTaylorError: number;
  /** Pearson correlation of Σ values with the actual validation-loss decrease over steps. */
  correlation: number;
  sumValues: number;
  sumActual: number;
  initialValidationLoss: number;
  finalValidationLoss: number;
  /** Runs with a test set: the last evaluation (at the final weights); null otherwise. */
  finalTestLoss: number | null;
  /** Null too for regression and text runs. */
  finalTestAccuracy: number | null;
  /** How many test evaluations the run made (0 without a test set). */
  testEvaluations: number;
}

function finiteOrNull(x: number | null | undefined): number | null {
  return x === null || x === undefined || !Number.isFinite(x) ? null : x;
}

function sumOrder(t: ReportTraceRow, order: 1 | 2): { sum: number; utility: number } {
  return order === 2 && t.secondOrderSum !== null && t.secondOrderUtility !== null
    ? { sum: t.secondOrderSum, utility: t.secondOrderUtility }
    : { sum: t.firstOrderSum, utility: t.firstOrderUtility };
}

export function traceSeries(trace: ReportTraceRow[], order: 1 | 2, maxPoints = 1500): TraceSeries {
  const parts = buckets(trace.length, maxPoints);
  const mean = (a: number, b: number, get: (t: ReportTraceRow) => number | null) => {
    let s = 0;
    let c = 0;
    for (let i = a; i < b; i++) {
      const x = finiteOrNull(get(trace[i]));
      if (x !== null) {
        s += x;
        c++;
      }
    }
    return c > 0 ? s / c : null;
  };
  const extreme = (a: number, b: number, get: (t: ReportTraceRow) => number | null) => {
    let best: number | null = null;
    for (let i = a; i < b; i++) {
      const x = finiteOrNull(get(trace[i]));
      if (x !== null && (best === null || Math.abs(x) > Math.abs(best))) best = x;
    }
    return best;
  };
  return {
    stride: parts.length > 0 ? parts[0][1] - parts[0][0] : 1,
    step: parts.map(([a, b]) => (trace[a].step + trace[b - 1].step) / 2),
    valuesSum: parts.map(([a, b]) => mean(a, b, (t) => sumOrder(t, order).sum) ?? 0),
    taylorUtility: parts.map(([a, b]) => mean(a, b, (t) => sumOrder(t, order).utility) ?? 0),
    actualUtility: parts.map(([a, b]) => mean(a, b, (t) => t.actualUtility)),
    efficiencyResidual: parts.map(([a, b]) => extreme(a, b, (t) => t.efficiencyResidual) ?? 0),
    taylorError: parts.map(([a, b]) => extreme(a, b, (t) => t.taylorError)),
    validationLoss: parts.map(([a, b]) => mean(a, b, (t) => t.validationLossBefore)),
    trainLoss: parts.map(([a, b]) => mean(a, b, (t) => t.trainLoss) ?? 0),
    lr: parts.map(([a, b]) => mean(a, b, (t) => t.lr) ?? 0),
  };
}

export function traceStats(trace: ReportTraceRow[], order: 1 | 2): TraceStats {
  let maxAbsResidual = 0;
  let absErr = 0;
  let absActual = 0;
  let sumValues = 0;
  let sumActual = 0;
  const xs: number[] = [];
  const ys: number[] = [];
  for (const t of trace) {
    maxAbsResidual = Math.max(maxAbsResidual, Math.abs(t.efficiencyResidual));
    const { sum } = sumOrder(t, order);
    sumValues += sum;
    if (Number.isFinite(t.actualUtility)) {
      sumActual += t.actualUtility;
      absActual += Math.abs(t.actualUtility);
      xs.push(sum);
      ys.push(t.actualUtility);
    }
    if (Number.isFinite(t.taylorError)) absErr += Math.abs(t.taylorError);
  }
  const curve = validationLossCurve(trace);
  const test = testCurve(trace);
  return {
    steps: trace.length,
    maxAbsResidual,
    relativeTaylorError: absActual > 0 ? absErr / absActual : Number.NaN,
    correlation: pearson(xs, ys),
    sumValues,
    sumActual,
    initialValidationLoss: curve[0] ?? Number.NaN,
    finalValidationLoss: curve.at(-1) ?? Number.NaN,
    finalTestLoss: test?.loss.at(-1) ?? null,
    finalTestAccuracy: test?.accuracy.at(-1) ?? null,
    testEvaluations: test?.step.length ?? 0,
  };
}

function pearson(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return Number.NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : Number.NaN;
}

/** Σ values vs actual decrease per step as (x, y) pairs sorted by x, at most maxPoints of them. */
export function efficiencyScatter(
  trace: ReportTraceRow[],
  order: 1 | 2,
  maxPoints = 2000,
): { x: number[]; y: number[] } {
  const stride = Math.max(1, Math.ceil(trace.length / maxPoints));
  const pairs: [number, number][] = [];
  for (let i = 0; i < trace.length; i += stride) {
    const t = trace[i];
    if (Number.isFinite(t.actualUtility)) pairs.push([sumOrder(t, order).sum, t.actualUtility]);
  }
  pairs.sort((a, b) => a[0] - b[0]);
  return { x: pairs.map((p) => p[0]), y: pairs.map((p) => p[1]) };
}

/** Downsamples a validation-loss curve (index = steps) to ≤ maxPoints, always keeping the ends. */
export function downsampleCurve(curve: number[], maxPoints = 600): { step: number[]; loss: number[] } {
  const stride = Math.max(1, Math.ceil(curve.length / maxPoints));
  const step: number[] = [];
  for (let k = 0; k < curve.length; k += stride) step.push(k);
  if (curve.length > 0 && step.at(-1) !== curve.length - 1) step.push(curve.length - 1);
  return { step, loss: step.map((k) => curve[k]) };
}

/** 1-based ranks of `xs` in ascending order, tied values sharing the mean of their ranks. */
export function averageRanks(xs: number[]): number[] {
  const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
  const ranks = new Array<number>(xs.length);
  for (let start = 0; start < order.length; ) {
    let end = start + 1;
    while (end < order.length && xs[order[end]] === xs[order[start]]) end++;
    const mean = (start + 1 + end) / 2;
    for (let k = start; k < end; k++) ranks[order[k]] = mean;
    start = end;
  }
  return ranks;
}

/**
 * Spearman's rank correlation of paired samples: the Pearson correlation of their ranks, ties
 * sharing their mean rank. NaN for fewer than 2 pairs or a constant sample.
 */
export function spearman(xs: number[], ys: number[]): number {
  return pearson(averageRanks(xs), averageRanks(ys));
}

/** The per-example signals the report compares with the values, as ReportValue fields. */
export const REPORT_SIGNALS: readonly {
  key: 'aum' | 'selfInfluence' | 'meanLoss' | 'forgettingEvents' | 'timesCorrect' | 'classValue';
  /** The values-file column. */
  column: string;
  label: string;
  /** What a higher number means for the example. */
  higher: string;
}[] = [
  {
    key: 'aum',
    column: 'aum',
    label: 'area under the margin',
    higher: 'classified as its label with a wider margin',
  },
  {
    key: 'selfInfluence',
    column: 'self_influence',
    label: 'self-influence',
    higher: 'its own steps lowered its own loss more (hard to fit)',
  },
  { key: 'meanLoss', column: 'mean_loss', label: 'mean loss', higher: 'fitted worse while it trained' },
  {
    key: 'forgettingEvents',
    column: 'forgetting_events',
    label: 'forgetting events',
    higher: 'forgotten more often after being learnt',
  },
  {
    key: 'timesCorrect',
    column: 'times_correct',
    label: 'times correct',
    higher: 'classified correctly more often',
  },
  {
    key: 'classValue',
    column: 'class_value',
    label: 'class value',
    higher: 'helped the validation examples of its own label more',
  },
];

export interface SignalCorrelation {
  /** The values-file column (aum, self_influence, …). */
  signal: string;
  label: string;
  higher: string;
  /** Spearman's ρ between the main value and the signal over `examples` examples. */
  spearman: number;
  /** Examples with both a finite main value and the signal. */
  examples: number;
}

/**
 * Spearman's ρ between the main value and each signal the run measured (for at least one
 * example), over the examples that have both; empty for runs without signals.
 */
export function signalCorrelations(values: ReportValue[], order: 1 | 2): SignalCorrelation[] {
  const out: SignalCorrelation[] = [];
  for (const s of REPORT_SIGNALS) {
    const xs: number[] = [];
    const ys: number[] = [];
    for (const v of values) {
      const x = mainValue(v, order);
      const y = v[s.key];
      if (Number.isFinite(x) && typeof y === 'number' && Number.isFinite(y)) {
        xs.push(x);
        ys.push(y);
      }
    }
    if (xs.length === 0) continue;
    out.push({
      signal: s.column,
      label: s.label,
      higher: s.higher,
      spearman: spearman(xs, ys),
      examples: xs.length,
    });
  }
  return out;
}

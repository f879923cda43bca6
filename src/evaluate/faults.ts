/**
 * Planted bad data for the detection benchmark: known faults injected into a clean table, or junk
 * documents into a clean training text, so that a valuation method can be scored on how well its
 * lowest values find them.
 */
import { JUNK_KINDS, type JunkKind, junkText, junkVocabulary } from '../text/junk.js';
import { fail } from '../util/errors.js';
import { Rng } from '../util/rng.js';

/**
 * The kinds of fault planted in a table, in the order they are assigned rows (so a spec's order
 * does not matter):
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

export type TableFaultKind = (typeof FAULT_KINDS)[number];

/**
 * The kinds of fault planted in a text (model kind gpt) run, in the order they are assigned
 * documents: the junk of src/text/junk.ts, each replacing a document's text. `random-words`,
 * `boilerplate` and `shuffled` are made from the document itself (as many random words, as many
 * characters of boilerplate, its own words shuffled); `near-duplicate` copies another, clean,
 * document with a few words replaced.
 */
export const TEXT_FAULT_KINDS = JUNK_KINDS;

export type TextFaultKind = JunkKind;

export type FaultKind = TableFaultKind | TextFaultKind;

export interface FaultSpec {
  kind: FaultKind;
  /** Fraction of the table's rows (the text's documents) given this fault, in (0, MAX_FAULT_RATE]. */
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
  faults: (TableFaultKind | null)[];
  /** For duplicate and near-duplicate rows, the clean row they copy; null elsewhere. */
  sourceRow: (number | null)[];
}

/** What faults are planted in: a table's rows, or a text's documents (model kind gpt). */
interface FaultTarget {
  kinds: readonly FaultKind[];
  /** The kinds of the other target, named in the error when one of them is given. */
  otherKinds: readonly FaultKind[];
  example: string;
  one: string;
  many: string;
  whole: string;
  /** Kinds that copy a clean row (document), so at least one must stay clean; and what they are called. */
  copying: readonly FaultKind[];
  copies: string;
}

const TABLE_TARGET: FaultTarget = {
  kinds: FAULT_KINDS,
  otherKinds: TEXT_FAULT_KINDS,
  example: 'label-flip:0.1,duplicate:0.05',
  one: 'row',
  many: 'rows',
  whole: 'the table',
  copying: ['duplicate', 'near-duplicate'],
  copies: 'duplicates',
};

const TEXT_TARGET: FaultTarget = {
  kinds: TEXT_FAULT_KINDS,
  otherKinds: FAULT_KINDS,
  example: 'random-words:0.1,boilerplate:0.05',
  one: 'document',
  many: 'documents',
  whole: 'the training text',
  copying: ['near-duplicate'],
  copies: 'near-duplicates',
};

/** Model kind gpt trains on text, so its faults are text kinds; every other kind reads a table. */
function faultTarget(modelKind: string | undefined): FaultTarget {
  return modelKind === 'gpt' ? TEXT_TARGET : TABLE_TARGET;
}

/**
 * Throws a clear error unless `spec` lists known kinds, once each, with valid rates. The kinds are
 * those of the model kind's data: text kinds for `gpt`, table kinds for any other (or none given).
 */
export function checkFaultSpec(spec: readonly FaultSpec[], modelKind?: string): void {
  if (!Array.isArray(spec)) fail('fault spec must be an array of { kind, rate }');
  const target = faultTarget(modelKind);
  const seen = new Set<string>();
  let total = 0;
  for (const { kind, rate } of spec) {
    if (!target.kinds.includes(kind)) {
      if (target.otherKinds.includes(kind)) {
        const model = modelKind === undefined ? '' : `, but the config's model kind is ${modelKind}`;
        fail(
          target === TEXT_TARGET
            ? `fault kind ${kind} is for tables${model} (text); text kinds: ${TEXT_FAULT_KINDS.join(', ')}`
            : `fault kind ${kind} is for text (model kind gpt)${model}; table kinds: ${FAULT_KINDS.join(', ')}`,
        );
      }
      fail(`unknown fault kind ${JSON.stringify(kind)} (known: ${target.kinds.join(', ')})`);
    }
    if (seen.has(kind)) fail(`fault kind ${kind} is given twice; give each kind once`);
    seen.add(kind);
    if (typeof rate !== 'number' || !(rate > 0 && rate <= MAX_FAULT_RATE))
      fail(`fault rate of ${kind} must be a number in (0, ${MAX_FAULT_RATE}], got ${rate}`);
    total += rate;
  }
  // The tolerance forgives sums like 0.2 + 0.2 + 0.5 that land a rounding error above 0.9.
  if (total > MAX_TOTAL_FAULT_RATE + 1e-12)
    fail(
      `fault rates add up to ${Number(total.toPrecision(12))}; at most ${MAX_TOTAL_FAULT_RATE} of the ${target.many} can be faulted`,
    );
}

/**
 * Parses a CLI fault spec such as `label-flip:0.1,duplicate:0.05` (text, model kind gpt:
 * `random-words:0.1,boilerplate:0.05`) and checks it for the model kind (see checkFaultSpec).
 */
export function parseFaultSpec(text: string, modelKind?: string): FaultSpec[] {
  const { example, kinds } = faultTarget(modelKind);
  if (text.trim() === '') fail(`fault spec is empty; give kind:rate pairs such as ${example}`);
  const spec = text.split(',').map((entry): FaultSpec => {
    const parts = entry.split(':');
    if (parts.length !== 2)
      fail(
        `fault spec entry ${JSON.stringify(entry.trim())} is not kind:rate (e.g. ${example}; kinds: ${kinds.join(', ')})`,
      );
    const kind = parts[0].trim();
    const rateText = parts[1].trim();
    // Plain decimals only: Number() would also take "", "0x1" or "Infinity".
    if (!/^(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(rateText))
      fail(`fault rate ${JSON.stringify(rateText)} of ${kind} is not a number`);
    return { kind: kind as FaultKind, rate: Number(rateText) };
  });
  checkFaultSpec(spec, modelKind);
  return spec;
}

/**
 * Which rows get which fault: round(rate·n) per kind of the target, in the target's kind order,
 * the first ones of one seeded permutation (so the row sets of different kinds are disjoint); the
 * rest of the permutation are the clean rows, in permutation order.
 */
function assignFaults(
  n: number,
  spec: readonly FaultSpec[],
  target: FaultTarget,
  rng: Rng,
): { faults: (FaultKind | null)[]; rowsOf: Map<FaultKind, Int32Array>; cleanRows: Int32Array } {
  const rateOf = new Map(spec.map((s) => [s.kind, s.rate]));
  const counts = target.kinds.map((kind) => rowCount(rateOf.get(kind) ?? 0, n));
  const faulted = counts.reduce((a, b) => a + b, 0);
  if (faulted > n)
    fail(`the fault rates ask for ${faulted} faulted ${target.many} but ${target.whole} has only ${n}`);
  const copies = target.kinds.reduce((a, kind, k) => a + (target.copying.includes(kind) ? counts[k] : 0), 0);
  if (copies > 0 && faulted === n)
    fail(
      `${target.copies} need a clean ${target.one} to copy, but the fault rates fault all ${n} ${target.many}`,
    );
  const permutation = rng.permutation(n);
  const faults: (FaultKind | null)[] = new Array(n).fill(null);
  const rowsOf = new Map<FaultKind, Int32Array>();
  let cursor = 0;
  target.kinds.forEach((kind, k) => {
    const rows = permutation.subarray(cursor, cursor + counts[k]);
    for (const row of rows) faults[row] = kind;
    rowsOf.set(kind, rows);
    cursor += counts[k];
  });
  return { faults, rowsOf, cleanRows: permutation.subarray(cursor) };
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
  checkSeed(seed);
  const { n, d, classes } = table;
  if (classes < 2 && spec.some((s) => s.kind === 'label-flip'))
    fail(`label-flip needs at least 2 classes, the table has ${classes}`);

  const rng = new Rng(seed);
  const assigned = assignFaults(n, spec, TABLE_TARGET, rng);
  const faults = assigned.faults as (TableFaultKind | null)[];
  const { rowsOf, cleanRows } = assigned;

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

export interface InjectedTextFaults {
  /** Each document's text after planting: its junk, or its own text when it stays clean. */
  texts: string[];
  /** Each document's fault, or null for a clean document. */
  faults: (TextFaultKind | null)[];
  /** For near-duplicate documents, the clean document they copy; null elsewhere. */
  sourceDocument: (number | null)[];
}

/**
 * Plants the text faults of `spec` among documents (their texts): round(rate·n) documents per
 * kind, disjoint, drawn with `Rng(seed)` as injectFaults draws rows, each document's text replaced
 * by junk of its kind (see TEXT_FAULT_KINDS), so the corpus keeps its size. Random and replacement
 * words come from the vocabulary of all the input texts (src/text/junk.ts junkVocabulary).
 */
export function injectTextFaults(
  texts: readonly string[],
  spec: readonly FaultSpec[],
  seed: number,
): InjectedTextFaults {
  checkFaultSpec(spec, 'gpt');
  checkSeed(seed);
  const n = texts.length;
  if (n < 1) fail('fault injection: there are no documents to plant faults in');
  const rng = new Rng(seed);
  const { faults, rowsOf, cleanRows } = assignFaults(n, spec, TEXT_TARGET, rng);
  const vocabulary = junkVocabulary(texts);
  if (vocabulary.length === 0 && spec.some((s) => s.kind === 'random-words' || s.kind === 'near-duplicate'))
    fail(
      'fault injection: the documents have no words (runs of letters or digits) for random-words and near-duplicate to draw from',
    );
  const planted = texts.slice();
  const sourceDocument: (number | null)[] = new Array(n).fill(null);
  for (const kind of TEXT_FAULT_KINDS) {
    for (const row of rowsOf.get(kind)!) {
      let source = row;
      if (kind === 'near-duplicate') {
        source = cleanRows[rng.int(cleanRows.length)];
        sourceDocument[row] = source;
      }
      planted[row] = junkText(kind, texts[source], rng, { vocabulary });
    }
  }
  return { texts: planted, faults: faults as (TextFaultKind | null)[], sourceDocument };
}

function checkSeed(seed: number): void {
  if (!Number.isInteger(seed)) fail(`fault seed must be an integer, got ${seed}`);
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

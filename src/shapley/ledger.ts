import type { ExampleId } from '../data/dataset.js';
import { fail } from '../util/errors.js';

/** Accumulated values of one training example (one id) over a run. */
export interface LedgerEntry {
  id: ExampleId;
  group: string | undefined;
  /** Occurrences in training batches (a duplicate within one batch counts twice). */
  timesSeen: number;
  /** Σ over occurrences of the first-order value η_t⟨g_i, K_tᵀ g_V⟩. */
  firstOrder: number;
  /** Σ over occurrences of the second-order value (first-order term included); NaN if not computed. */
  secondOrder: number;
  /** The run's main value (second order when computed, else first order) split by training stage. */
  stages: number[];
  /** Σ over occurrences of value / Σ_j |value_j| of that step: a scale-free view across steps. */
  normalized: number;
  /**
   * First-order value split by validation column (a validation example, or a group of them such as
   * a query document): entry q is column q's share; the entries sum to firstOrder.
   */
  perValidation?: Float64Array;
  /** The same for second order (perValidationOrder 2); sums to secondOrder. */
  perValidationSecond?: Float64Array;
  /**
   * Per column, Σ over occurrences of the column's main value / Σ_r |its values| over the step's
   * batch: each step normalised per column, so no single step dominates a column's ranking.
   */
  perValidationNormalized?: Float64Array;
  /** Per column and stage (row-major [column, stage]), the main value; only with several stages. */
  perValidationStages?: Float64Array;
  /**
   * Σ over occurrences of η_t⟨g_i, K_t g_i⟩: how much the example's own share of each step lowered
   * its own loss, to first order (TracIn's self-influence, with the optimizer's K_t). Large for
   * examples the model finds hard to fit (mislabelled, atypical).
   */
  selfInfluence: number;
  /** Σ over occurrences of the example's training loss (at the weights it was trained at). */
  lossSum: number;
  /**
   * Classification: Σ over occurrences of the margin, the given label's logit minus the largest
   * other logit (Pleiss et al. 2020; area under the margin = marginSum / timesSeen). NaN otherwise.
   */
  marginSum: number;
  /**
   * Classification: occurrences at which the example was misclassified after being classified
   * correctly at its previous occurrence (Toneva et al. 2019). NaN otherwise.
   */
  forgettingEvents: number;
  /** Classification: occurrences at which it was classified correctly (at training time). NaN otherwise. */
  timesCorrect: number;
  /** Classification: whether its last occurrence was classified correctly (null: not yet seen). */
  lastCorrect: boolean | null;
  /**
   * Classification: Σ over occurrences of the first-order value against the validation examples
   * that share its label, η_t⟨g_i, K_tᵀ ḡ_{V_y}⟩ (mean gradient of that class); NaN otherwise, and
   * NaN once it meets a label that the validation set lacks.
   */
  classValue: number;
  /**
   * With a sampled validation set (valuation.validationBatch): Σ over occurrences of the estimated
   * sampling variance of the main value, so its standard error is √valueVariance. NaN otherwise.
   */
  valueVariance: number;
  /**
   * With valuation.momentumCredit: Σ over occurrences of the first-order utility that the momentum
   * buffer carried from this example into later steps (src/shapley/momentum-credit.ts); the value
   * with its momentum credit is firstOrder + momentumCredit. NaN otherwise.
   */
  momentumCredit: number;
}

/** The per-example signals of one step besides the values, position r for the r-th example. */
export interface StepSignals {
  selfInfluence: Float64Array;
  losses: Float64Array;
  /** Classification only. */
  margins: Float64Array | null;
  classValues: Float64Array | null;
}

export interface GroupTotal {
  group: string;
  examples: number;
  timesSeen: number;
  firstOrder: number;
  secondOrder: number;
  stages: number[];
}

export interface LedgerOptions {
  /** First steps of stages after the first, ascending (e.g. [100, 200] → 3 stages). */
  stageStarts?: number[];
  /** The number of validation columns when per-validation values are kept. */
  validationSize?: number;
  /** Per-validation values are kept in second order too. */
  perValidationSecondOrder?: boolean;
  hasSecondOrder: boolean;
  /** Momentum credit is added (addCredit) for every occurrence. */
  momentumCredit?: boolean;
}

/** The per-example sums a ledger keeps, one column each (see LedgerEntry for their meaning). */
const SUMS = [
  'timesSeen',
  'firstOrder',
  'secondOrder',
  'normalized',
  'selfInfluence',
  'lossSum',
  'marginSum',
  'forgettingEvents',
  'timesCorrect',
  'classValue',
  'valueVariance',
  'momentumCredit',
] as const;
type SumName = (typeof SUMS)[number];

/** The per-validation arrays an entry may have. */
const COLUMN_ARRAYS = [
  'perValidation',
  'perValidationSecond',
  'perValidationNormalized',
  'perValidationStages',
] as const;
type ColumnArrayName = (typeof COLUMN_ARRAYS)[number];

/** One Float64Array of `capacity` zeros per sum. */
function sumColumns(capacity: number): Record<SumName, Float64Array> {
  const sums = {} as Record<SumName, Float64Array>;
  for (const name of SUMS) sums[name] = new Float64Array(capacity);
  return sums;
}

/** lastCorrect as stored: null (not yet seen), false, true. */
const UNSEEN = -1;

/** Where a first-seen example's sum starts: 0 where the run measures it, NaN where not. */
function measured(on: boolean): number {
  return on ? 0 : Number.NaN;
}

/**
 * The value ledger: accumulates each step's per-example values under stable example ids, so a
 * value follows its example across steps, epochs and repeated occurrences.
 *
 * Examples get slots in first-seen order, and every sum is a column of one Float64Array: a step's
 * update writes numbers into typed arrays, never boxing them, and an example costs about a hundred
 * bytes however long the run. Entries (`all`, `get`, `snapshot`) are made from the columns when
 * asked for.
 */
export class ValueLedger {
  private readonly slots = new Map<ExampleId, number>();
  private readonly ids: ExampleId[] = [];
  private readonly groups: (string | undefined)[] = [];
  private capacity = 0;
  private sums = sumColumns(0);
  private lastCorrect = new Int8Array(0);
  /** [slot, stage], row-major. */
  private stageSums = new Float64Array(0);
  /** Per slot, its per-validation arrays (the ones it has). */
  private readonly columnArrays: Record<ColumnArrayName, (Float64Array | undefined)[]> = {
    perValidation: [],
    perValidationSecond: [],
    perValidationNormalized: [],
    perValidationStages: [],
  };
  readonly stageStarts: number[];

  constructor(readonly options: LedgerOptions) {
    this.stageStarts = options.stageStarts ?? [];
  }

  get stageCount(): number {
    return this.stageStarts.length + 1;
  }

  stageOf(step: number): number {
    let stage = 0;
    while (stage < this.stageStarts.length && step >= this.stageStarts[stage]) stage++;
    return stage;
  }

  /** Room for `needed` slots: the columns at least double when they grow. */
  private grow(needed: number): void {
    if (needed <= this.capacity) return;
    const capacity = Math.max(needed, 2 * this.capacity, 64);
    const count = this.ids.length;
    const S = this.stageCount;
    const sums = sumColumns(capacity);
    for (const name of SUMS) sums[name].set(this.sums[name].subarray(0, count));
    this.sums = sums;
    const lastCorrect = new Int8Array(capacity);
    lastCorrect.set(this.lastCorrect.subarray(0, count));
    this.lastCorrect = lastCorrect;
    const stageSums = new Float64Array(capacity * S);
    stageSums.set(this.stageSums.subarray(0, count * S));
    this.stageSums = stageSums;
    this.capacity = capacity;
  }

  /** A new slot for `id`, its sums 0 or NaN (not measured) as in `initial`. */
  private addSlot(id: ExampleId, group: string | undefined, initial: Record<SumName, number>): number {
    const k = this.ids.length;
    this.grow(k + 1);
    this.slots.set(id, k);
    this.ids.push(id);
    this.groups.push(group);
    for (const name of SUMS) this.sums[name][k] = initial[name];
    this.lastCorrect[k] = UNSEEN;
    // Columns keep their capacity across restore(), so a slot clears its own stage row.
    this.stageSums.fill(0, k * this.stageCount, (k + 1) * this.stageCount);
    for (const name of COLUMN_ARRAYS) this.columnArrays[name].push(undefined);
    return k;
  }

  /**
   * Adds one step's values. Position r of every array belongs to the r-th example of the batch;
   * `perValidation` (and `perValidationSecond`), if given, are row-major [batch, columns].
   */
  addStep(step: {
    step: number;
    ids: ExampleId[];
    groups: (string | undefined)[];
    firstOrder: Float64Array;
    secondOrder: Float64Array | null;
    perValidation?: Float64Array;
    perValidationSecond?: Float64Array;
    signals?: StepSignals;
    /** Per example, the sampling variance of its main value this step (sampled validation sets). */
    variance?: Float64Array;
  }): void {
    const main = step.secondOrder ?? step.firstOrder;
    let absTotal = 0;
    for (let r = 0; r < main.length; r++) absTotal += Math.abs(main[r]);
    const stage = this.stageOf(step.step);
    const m = this.options.validationSize ?? 0;
    const columnMain = step.perValidationSecond ?? step.perValidation;
    const columnAbs = columnMain ? new Float64Array(m) : null;
    if (columnMain && columnAbs)
      for (let e = 0; e < columnMain.length; e++) columnAbs[e % m] += Math.abs(columnMain[e]);
    if (step.perValidation && this.options.perValidationSecondOrder && !step.perValidationSecond)
      fail('internal: a step without second-order per-validation values');
    const stages = this.stageCount;
    const signals = step.signals;
    let initial: Record<SumName, number> | null = null;
    for (let r = 0; r < step.ids.length; r++) {
      const id = step.ids[r];
      let k = this.slots.get(id);
      if (k === undefined) {
        initial ??= {
          timesSeen: 0,
          firstOrder: 0,
          secondOrder: measured(this.options.hasSecondOrder),
          normalized: 0,
          selfInfluence: measured(signals !== undefined),
          lossSum: measured(signals !== undefined),
          marginSum: measured(!!signals?.margins),
          forgettingEvents: measured(!!signals?.margins),
          timesCorrect: measured(!!signals?.margins),
          classValue: measured(!!signals?.classValues),
          valueVariance: measured(step.variance !== undefined),
          momentumCredit: measured(!!this.options.momentumCredit),
        };
        k = this.addSlot(id, step.groups[r], initial);
        if (step.perValidation) {
          const columns = this.columnArrays;
          columns.perValidation[k] = new Float64Array(m);
          columns.perValidationNormalized[k] = new Float64Array(m);
          if (this.options.perValidationSecondOrder) columns.perValidationSecond[k] = new Float64Array(m);
          if (stages > 1) columns.perValidationStages[k] = new Float64Array(m * stages);
        }
      }
      const sums = this.sums;
      sums.timesSeen[k] += 1;
      sums.firstOrder[k] += step.firstOrder[r];
      if (step.secondOrder) sums.secondOrder[k] += step.secondOrder[r];
      this.stageSums[k * stages + stage] += main[r];
      if (absTotal > 0) sums.normalized[k] += main[r] / absTotal;
      if (signals) {
        sums.selfInfluence[k] += signals.selfInfluence[r];
        sums.lossSum[k] += signals.losses[r];
        if (signals.margins) {
          const margin = signals.margins[r];
          const correct = margin > 0;
          sums.marginSum[k] += margin;
          if (this.lastCorrect[k] === 1 && !correct) sums.forgettingEvents[k] += 1;
          if (correct) sums.timesCorrect[k] += 1;
          this.lastCorrect[k] = correct ? 1 : 0;
        }
        if (signals.classValues) sums.classValue[k] += signals.classValues[r];
      }
      if (step.variance) sums.valueVariance[k] += step.variance[r];
      const perValidation = this.columnArrays.perValidation[k];
      if (step.perValidation && columnMain && columnAbs && perValidation) {
        const second = this.columnArrays.perValidationSecond[k];
        const normalized = this.columnArrays.perValidationNormalized[k]!;
        const byStage = this.columnArrays.perValidationStages[k];
        for (let q = 0; q < m; q++) {
          perValidation[q] += step.perValidation[r * m + q];
          if (second) second[q] += step.perValidationSecond![r * m + q];
          const value = columnMain[r * m + q];
          if (columnAbs[q] > 0) normalized[q] += value / columnAbs[q];
          if (byStage) byStage[q * stages + stage] += value;
        }
      }
    }
  }

  /** Adds a settled step's momentum credit (position r: the r-th example of that step's batch). */
  addCredit(ids: ExampleId[], credit: Float64Array): void {
    for (let r = 0; r < ids.length; r++) {
      const k = this.slots.get(ids[r]);
      if (k === undefined)
        fail(`internal: momentum credit for ${JSON.stringify(ids[r])}, which was never valued`);
      this.sums.momentumCredit[k] += credit[r];
    }
  }

  /**
   * The entry of slot k. Its per-validation arrays are the ledger's own (later steps add to them)
   * unless `copyColumns`.
   */
  private entry(k: number, copyColumns: boolean): LedgerEntry {
    const sums = this.sums;
    const S = this.stageCount;
    const last = this.lastCorrect[k];
    const entry: LedgerEntry = {
      id: this.ids[k],
      group: this.groups[k],
      timesSeen: sums.timesSeen[k],
      firstOrder: sums.firstOrder[k],
      secondOrder: sums.secondOrder[k],
      stages: Array.from(this.stageSums.subarray(k * S, (k + 1) * S)),
      normalized: sums.normalized[k],
      selfInfluence: sums.selfInfluence[k],
      lossSum: sums.lossSum[k],
      marginSum: sums.marginSum[k],
      forgettingEvents: sums.forgettingEvents[k],
      timesCorrect: sums.timesCorrect[k],
      lastCorrect: last === UNSEEN ? null : last === 1,
      classValue: sums.classValue[k],
      valueVariance: sums.valueVariance[k],
      momentumCredit: sums.momentumCredit[k],
    };
    for (const name of COLUMN_ARRAYS) {
      const array = this.columnArrays[name][k];
      if (array) entry[name] = copyColumns ? array.slice() : array;
    }
    return entry;
  }

  /** Entries with their own copies of everything, in first-seen order (for checkpoints). */
  snapshot(): LedgerEntry[] {
    return this.ids.map((_, k) => this.entry(k, true));
  }

  /** Replaces the ledger's contents with a snapshot. */
  restore(entries: LedgerEntry[]): void {
    for (const entry of entries) {
      if (entry.stages.length !== this.stageCount)
        fail(
          `checkpoint: its values have ${entry.stages.length} training stages, this run has ${this.stageCount}`,
        );
      const columns = this.options.validationSize;
      if ((entry.perValidation?.length ?? undefined) !== columns)
        fail(
          `checkpoint: its values have ${entry.perValidation?.length ?? 'no'} per-validation columns, this run has ${columns ?? 'none'}`,
        );
      if (entry.perValidation && !!entry.perValidationSecond !== !!this.options.perValidationSecondOrder)
        fail(
          `checkpoint: its per-validation values are ${entry.perValidationSecond ? 'second' : 'first'} order, this run keeps ${this.options.perValidationSecondOrder ? 'second' : 'first'} order`,
        );
    }
    this.slots.clear();
    this.ids.length = 0;
    this.groups.length = 0;
    for (const name of COLUMN_ARRAYS) this.columnArrays[name].length = 0;
    this.grow(entries.length);
    for (const entry of entries) {
      const k = this.addSlot(entry.id, entry.group, entry);
      this.lastCorrect[k] = entry.lastCorrect === null ? UNSEEN : entry.lastCorrect ? 1 : 0;
      this.stageSums.set(entry.stages, k * this.stageCount);
      for (const name of COLUMN_ARRAYS) this.columnArrays[name][k] = entry[name]?.slice();
    }
  }

  get size(): number {
    return this.ids.length;
  }

  get(id: ExampleId): LedgerEntry | undefined {
    const k = this.slots.get(id);
    return k === undefined ? undefined : this.entry(k, false);
  }

  /** Entries in first-seen order (made when asked for: later steps do not change them). */
  all(): LedgerEntry[] {
    return this.ids.map((_, k) => this.entry(k, false));
  }

  /** The run's main value of an entry: second order when computed, else first order. */
  value(entry: LedgerEntry): number {
    return this.options.hasSecondOrder ? entry.secondOrder : entry.firstOrder;
  }

  /** Entries sorted by main value, most harmful (most negative) first. */
  ranked(): LedgerEntry[] {
    return this.all().sort((a, b) => this.value(a) - this.value(b));
  }

  groupTotals(): GroupTotal[] {
    const totals = new Map<string, GroupTotal>();
    const S = this.stageCount;
    for (let k = 0; k < this.ids.length; k++) {
      const group = this.groups[k] ?? '(none)';
      let total = totals.get(group);
      if (!total) {
        total = {
          group,
          examples: 0,
          timesSeen: 0,
          firstOrder: 0,
          secondOrder: 0,
          stages: new Array(S).fill(0),
        };
        totals.set(group, total);
      }
      total.examples += 1;
      total.timesSeen += this.sums.timesSeen[k];
      total.firstOrder += this.sums.firstOrder[k];
      total.secondOrder += this.sums.secondOrder[k];
      for (let s = 0; s < S; s++) total.stages[s] += this.stageSums[k * S + s];
    }
    return [...totals.values()];
  }
}

/** Entries' per-validation arrays stacked row by row (entry i is row i); see perValidationMatrices. */
export interface PerValidationMatrices {
  /** [n, columns] first-order and per-step normalised values. */
  firstOrder: Float64Array;
  normalized: Float64Array;
  /** [n, columns]; null when the entries keep first order only. */
  secondOrder: Float64Array | null;
  /** [n, columns·stages]; null with one stage. */
  stages: Float64Array | null;
}

/**
 * The per-validation arrays of `entries` as matrices (for checkpoints and per_validation
 * files). Which optional matrices exist follows the first entry; every entry has the same arrays.
 */
export function perValidationMatrices(
  entries: LedgerEntry[],
  columns: number,
  stageCount: number,
): PerValidationMatrices {
  const stack = (get: (e: LedgerEntry) => Float64Array | undefined, width: number) => {
    const data = new Float64Array(entries.length * width);
    entries.forEach((e, i) => {
      const row = get(e);
      if (!row) throw new Error(`internal: ledger entry ${JSON.stringify(e.id)} lacks per-validation values`);
      data.set(row, i * width);
    });
    return data;
  };
  const first = entries[0];
  return {
    firstOrder: stack((e) => e.perValidation, columns),
    normalized: stack((e) => e.perValidationNormalized, columns),
    secondOrder: first?.perValidationSecond ? stack((e) => e.perValidationSecond, columns) : null,
    stages: first?.perValidationStages ? stack((e) => e.perValidationStages, columns * stageCount) : null,
  };
}

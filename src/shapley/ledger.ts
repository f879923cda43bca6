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

/**
 * The value ledger: accumulates each step's per-example values under stable example ids, so a
 * value follows its example across steps, epochs and repeated occurrences.
 */
export class ValueLedger {
  private readonly entries = new Map<ExampleId, LedgerEntry>();
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
    const columnAbs = new Float64Array(columnMain ? m : 0);
    if (columnMain) for (let e = 0; e < columnMain.length; e++) columnAbs[e % m] += Math.abs(columnMain[e]);
    const stages = this.stageCount;
    // A plain loop: as a forEach callback, the update boxed a number per example.
    for (let r = 0; r < step.ids.length; r++) {
      const id = step.ids[r];
      let entry = this.entries.get(id);
      if (!entry) {
        entry = {
          id,
          group: step.groups[r],
          timesSeen: 0,
          firstOrder: 0,
          secondOrder: this.options.hasSecondOrder ? 0 : Number.NaN,
          stages: new Array(this.stageCount).fill(0),
          normalized: 0,
          selfInfluence: step.signals ? 0 : Number.NaN,
          lossSum: step.signals ? 0 : Number.NaN,
          marginSum: step.signals?.margins ? 0 : Number.NaN,
          forgettingEvents: step.signals?.margins ? 0 : Number.NaN,
          timesCorrect: step.signals?.margins ? 0 : Number.NaN,
          lastCorrect: null,
          classValue: step.signals?.classValues ? 0 : Number.NaN,
          valueVariance: step.variance ? 0 : Number.NaN,
          momentumCredit: this.options.momentumCredit ? 0 : Number.NaN,
        };
        if (step.perValidation) {
          entry.perValidation = new Float64Array(m);
          entry.perValidationNormalized = new Float64Array(m);
          if (this.options.perValidationSecondOrder) entry.perValidationSecond = new Float64Array(m);
          if (stages > 1) entry.perValidationStages = new Float64Array(m * stages);
        }
        this.entries.set(id, entry);
      }
      entry.timesSeen += 1;
      entry.firstOrder += step.firstOrder[r];
      if (step.secondOrder) entry.secondOrder += step.secondOrder[r];
      entry.stages[stage] += main[r];
      if (absTotal > 0) entry.normalized += main[r] / absTotal;
      const signals = step.signals;
      if (signals) {
        entry.selfInfluence += signals.selfInfluence[r];
        entry.lossSum += signals.losses[r];
        if (signals.margins) {
          const margin = signals.margins[r];
          const correct = margin > 0;
          entry.marginSum += margin;
          if (entry.lastCorrect === true && !correct) entry.forgettingEvents += 1;
          if (correct) entry.timesCorrect += 1;
          entry.lastCorrect = correct;
        }
        if (signals.classValues) entry.classValue += signals.classValues[r];
      }
      if (step.variance) entry.valueVariance += step.variance[r];
      if (step.perValidation && entry.perValidation) {
        if (this.options.perValidationSecondOrder && !step.perValidationSecond)
          fail('internal: a step without second-order per-validation values');
        for (let q = 0; q < m; q++) {
          entry.perValidation[q] += step.perValidation[r * m + q];
          if (entry.perValidationSecond) entry.perValidationSecond[q] += step.perValidationSecond![r * m + q];
          const value = columnMain![r * m + q];
          if (columnAbs[q] > 0) entry.perValidationNormalized![q] += value / columnAbs[q];
          if (entry.perValidationStages) entry.perValidationStages[q * stages + stage] += value;
        }
      }
    }
  }

  /** Adds a settled step's momentum credit (position r: the r-th example of that step's batch). */
  addCredit(ids: ExampleId[], credit: Float64Array): void {
    ids.forEach((id, r) => {
      const entry = this.entries.get(id);
      if (!entry) fail(`internal: momentum credit for ${JSON.stringify(id)}, which was never valued`);
      entry.momentumCredit += credit[r];
    });
  }

  /** Deep copies of all entries, in first-seen order (for checkpoints). */
  snapshot(): LedgerEntry[] {
    return this.all().map((entry) => ({
      ...entry,
      stages: entry.stages.slice(),
      ...copyColumns(entry),
    }));
  }

  /** Replaces the ledger's contents with a snapshot. */
  restore(entries: LedgerEntry[]): void {
    this.entries.clear();
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
      this.entries.set(entry.id, {
        ...entry,
        stages: entry.stages.slice(),
        ...copyColumns(entry),
      });
    }
  }

  get size(): number {
    return this.entries.size;
  }

  get(id: ExampleId): LedgerEntry | undefined {
    return this.entries.get(id);
  }

  /** Entries in first-seen order. */
  all(): LedgerEntry[] {
    return [...this.entries.values()];
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
    for (const entry of this.entries.values()) {
      const group = entry.group ?? '(none)';
      let total = totals.get(group);
      if (!total) {
        total = {
          group,
          examples: 0,
          timesSeen: 0,
          firstOrder: 0,
          secondOrder: 0,
          stages: new Array(this.stageCount).fill(0),
        };
        totals.set(group, total);
      }
      total.examples += 1;
      total.timesSeen += entry.timesSeen;
      total.firstOrder += entry.firstOrder;
      total.secondOrder += entry.secondOrder;
      entry.stages.forEach((v, s) => {
        total.stages[s] += v;
      });
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

/** Copies of an entry's per-validation arrays (the ones it has). */
function copyColumns(entry: LedgerEntry): Partial<LedgerEntry> {
  const out: Partial<LedgerEntry> = {};
  if (entry.perValidation) out.perValidation = entry.perValidation.slice();
  if (entry.perValidationSecond) out.perValidationSecond = entry.perValidationSecond.slice();
  if (entry.perValidationNormalized) out.perValidationNormalized = entry.perValidationNormalized.slice();
  if (entry.perValidationStages) out.perValidationStages = entry.perValidationStages.slice();
  return out;
}

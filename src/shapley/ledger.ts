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
  /** First-order value split by validation example (entry j: validation point j's share); sums to firstOrder. */
  perValidation?: Float64Array;
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
  /** Size of the validation set when per-validation values are kept. */
  validationSize?: number;
  hasSecondOrder: boolean;
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
   * `perValidation`, if given, is row-major [batch, |V|].
   */
  addStep(step: {
    step: number;
    ids: ExampleId[];
    groups: (string | undefined)[];
    firstOrder: Float64Array;
    secondOrder: Float64Array | null;
    perValidation?: Float64Array;
  }): void {
    const main = step.secondOrder ?? step.firstOrder;
    let absTotal = 0;
    for (const v of main) absTotal += Math.abs(v);
    const stage = this.stageOf(step.step);
    const m = this.options.validationSize ?? 0;
    step.ids.forEach((id, r) => {
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
        };
        if (step.perValidation) entry.perValidation = new Float64Array(m);
        this.entries.set(id, entry);
      }
      entry.timesSeen += 1;
      entry.firstOrder += step.firstOrder[r];
      if (step.secondOrder) entry.secondOrder += step.secondOrder[r];
      entry.stages[stage] += main[r];
      if (absTotal > 0) entry.normalized += main[r] / absTotal;
      if (step.perValidation && entry.perValidation) {
        for (let j = 0; j < m; j++) entry.perValidation[j] += step.perValidation[r * m + j];
      }
    });
  }

  /** Deep copies of all entries, in first-seen order (for checkpoints). */
  snapshot(): LedgerEntry[] {
    return this.all().map((entry) => ({
      ...entry,
      stages: entry.stages.slice(),
      ...(entry.perValidation ? { perValidation: entry.perValidation.slice() } : {}),
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
      this.entries.set(entry.id, {
        ...entry,
        stages: entry.stages.slice(),
        ...(entry.perValidation ? { perValidation: entry.perValidation.slice() } : {}),
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

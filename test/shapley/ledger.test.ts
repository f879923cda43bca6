import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type LedgerEntry, ValueLedger } from '../../src/shapley/ledger.js';
import { Rng } from '../../src/util/rng.js';

// The ledger keeps its sums in typed-array columns; the reference below keeps one plain object
// per example and adds each occurrence to it, straight from LedgerEntry's definitions.

const IDS = Array.from({ length: 9 }, (_, k) => (k % 3 === 0 ? k : `example-${k}`));
const GROUPS = ['a', 'b', undefined];

/** One step's values, as the valuer hands them to the ledger. */
type Step = Parameters<ValueLedger['addStep']>[0];

interface Options {
  stageStarts: number[];
  columns: number;
  secondOrder: boolean;
  perValidationSecond: boolean;
  signals: boolean;
  variance: boolean;
  momentumCredit: boolean;
}

/** Random steps: batches of 4 drawn with repeats (an example can occur twice in one batch). */
function randomSteps(o: Options, seed: number, count: number): Step[] {
  const rng = new Rng(seed);
  const values = (n: number) => Float64Array.from({ length: n }, () => rng.normal());
  return Array.from({ length: count }, (_, t) => {
    const ids = Array.from({ length: 4 }, () => IDS[rng.int(IDS.length)]);
    const n = ids.length;
    const margins = values(n);
    const classValues = values(n);
    // A label the validation set lacks makes the class value NaN from then on.
    if (t === 3) classValues[1] = Number.NaN;
    return {
      step: t,
      ids,
      groups: ids.map((id) => GROUPS[String(id).length % 3]),
      firstOrder: values(n),
      secondOrder: o.secondOrder ? values(n) : null,
      ...(o.columns > 0
        ? {
            perValidation: values(n * o.columns),
            ...(o.perValidationSecond ? { perValidationSecond: values(n * o.columns) } : {}),
          }
        : {}),
      ...(o.signals
        ? { signals: { selfInfluence: values(n), losses: values(n), margins, classValues } }
        : {}),
      ...(o.variance ? { variance: values(n).map(Math.abs) } : {}),
    };
  });
}

/** The slow reference: LedgerEntry's sums, one occurrence at a time. */
function reference(o: Options, steps: Step[], credits: { ids: (string | number)[]; credit: Float64Array }[]) {
  const entries = new Map<string | number, LedgerEntry>();
  const stages = o.stageStarts.length + 1;
  const m = o.columns;
  for (const s of steps) {
    const main = s.secondOrder ?? s.firstOrder;
    const absTotal = main.reduce((a, v) => a + Math.abs(v), 0);
    const stage = o.stageStarts.filter((start) => s.step >= start).length;
    const columnMain = s.perValidationSecond ?? s.perValidation;
    const columnAbs = Array.from({ length: m }, (_, q) =>
      s.ids.reduce<number>((a, _id, r) => a + Math.abs(columnMain ? columnMain[r * m + q] : 0), 0),
    );
    s.ids.forEach((id, r) => {
      let e = entries.get(id);
      if (!e) {
        const on = (x: boolean) => (x ? 0 : Number.NaN);
        e = {
          id,
          group: s.groups[r],
          timesSeen: 0,
          firstOrder: 0,
          secondOrder: on(o.secondOrder),
          stages: new Array(stages).fill(0),
          normalized: 0,
          selfInfluence: on(!!s.signals),
          lossSum: on(!!s.signals),
          marginSum: on(!!s.signals?.margins),
          forgettingEvents: on(!!s.signals?.margins),
          timesCorrect: on(!!s.signals?.margins),
          lastCorrect: null,
          classValue: on(!!s.signals?.classValues),
          valueVariance: on(!!s.variance),
          momentumCredit: on(o.momentumCredit),
        };
        if (s.perValidation) {
          e.perValidation = new Float64Array(m);
          e.perValidationNormalized = new Float64Array(m);
          if (o.perValidationSecond) e.perValidationSecond = new Float64Array(m);
          if (stages > 1) e.perValidationStages = new Float64Array(m * stages);
        }
        entries.set(id, e);
      }
      e.timesSeen++;
      e.firstOrder += s.firstOrder[r];
      if (s.secondOrder) e.secondOrder += s.secondOrder[r];
      e.stages[stage] += main[r];
      if (absTotal > 0) e.normalized += main[r] / absTotal;
      if (s.signals) {
        e.selfInfluence += s.signals.selfInfluence[r];
        e.lossSum += s.signals.losses[r];
        const margin = s.signals.margins![r];
        e.marginSum += margin;
        if (e.lastCorrect === true && margin <= 0) e.forgettingEvents++;
        if (margin > 0) e.timesCorrect++;
        e.lastCorrect = margin > 0;
        e.classValue += s.signals.classValues![r];
      }
      if (s.variance) e.valueVariance += s.variance[r];
      for (let q = 0; q < m; q++) {
        e.perValidation![q] += s.perValidation![r * m + q];
        if (e.perValidationSecond) e.perValidationSecond[q] += s.perValidationSecond![r * m + q];
        const value = columnMain![r * m + q];
        if (columnAbs[q] > 0) e.perValidationNormalized![q] += value / columnAbs[q];
        if (e.perValidationStages) e.perValidationStages[q * stages + stage] += value;
      }
    });
  }
  for (const { ids, credit } of credits)
    ids.forEach((id, r) => {
      entries.get(id)!.momentumCredit += credit[r];
    });
  return [...entries.values()];
}

function ledgerFor(o: Options): ValueLedger {
  return new ValueLedger({
    stageStarts: o.stageStarts,
    validationSize: o.columns > 0 ? o.columns : undefined,
    perValidationSecondOrder: o.perValidationSecond,
    hasSecondOrder: o.secondOrder,
    momentumCredit: o.momentumCredit,
  });
}

/** Entries equal up to float rounding of sums in another order (NaN equal to NaN). */
function assertEntries(got: LedgerEntry[], want: LedgerEntry[], where: string): void {
  assert.equal(got.length, want.length, `${where}: entry count`);
  const close = (a: number, b: number, what: string) =>
    assert.ok(
      (Number.isNaN(a) && Number.isNaN(b)) || Math.abs(a - b) <= 1e-12 * (1 + Math.abs(b)),
      `${where}: ${what}: ${a} vs ${b}`,
    );
  got.forEach((g, i) => {
    const w = want[i];
    assert.equal(g.id, w.id, `${where}: order of first occurrence`);
    assert.equal(g.group, w.group);
    assert.equal(g.lastCorrect, w.lastCorrect, `${where}: ${w.id} lastCorrect`);
    for (const key of Object.keys(w) as (keyof LedgerEntry)[]) {
      const a = g[key];
      const b = w[key];
      if (typeof b === 'number') close(a as number, b, `${w.id}.${key}`);
      else if (b instanceof Float64Array || Array.isArray(b)) {
        assert.ok(a !== undefined, `${where}: ${w.id}.${key} missing`);
        const av = Array.from(a as ArrayLike<number>);
        assert.equal(av.length, b.length, `${where}: ${w.id}.${key} length`);
        av.forEach((x, q) => {
          close(x, b[q], `${w.id}.${key}[${q}]`);
        });
      }
    }
    for (const key of Object.keys(g)) assert.ok(key in w, `${where}: ${w.id} has an extra field ${key}`);
  });
}

const CASES: [string, Options][] = [
  [
    'first order, one stage, nothing else',
    {
      stageStarts: [],
      columns: 0,
      secondOrder: false,
      perValidationSecond: false,
      signals: false,
      variance: false,
      momentumCredit: false,
    },
  ],
  [
    'second order, three stages, signals, variance, momentum credit',
    {
      stageStarts: [4, 9],
      columns: 0,
      secondOrder: true,
      perValidationSecond: false,
      signals: true,
      variance: true,
      momentumCredit: true,
    },
  ],
  [
    'per-validation columns in second order over two stages',
    {
      stageStarts: [6],
      columns: 3,
      secondOrder: true,
      perValidationSecond: true,
      signals: true,
      variance: false,
      momentumCredit: false,
    },
  ],
];

describe('ValueLedger', () => {
  for (const [name, o] of CASES) {
    test(`${name}: every sum as the per-occurrence reference adds it`, () => {
      const steps = randomSteps(o, 7, 14);
      const credits = o.momentumCredit
        ? steps.slice(0, 5).map((s, t) => ({ ids: s.ids, credit: Float64Array.from(s.ids, (_, r) => t - r) }))
        : [];
      const ledger = ledgerFor(o);
      for (const s of steps) ledger.addStep(s);
      for (const c of credits) ledger.addCredit(c.ids, c.credit);
      const want = reference(o, steps, credits);
      assertEntries(ledger.all(), want, 'all()');
      assert.equal(ledger.size, want.length);
      for (const w of want) assertEntries([ledger.get(w.id)!], [w], 'get()');
      assert.equal(ledger.get('never seen'), undefined);
      // Ranked by the main value, most negative first.
      const ranked = ledger.ranked().map((e) => ledger.value(e));
      assert.deepEqual(
        ranked,
        [...ranked].sort((a, b) => a - b),
      );
      // Group totals are the entries' sums per group.
      for (const total of ledger.groupTotals()) {
        const members = want.filter((e) => (e.group ?? '(none)') === total.group);
        assert.equal(total.examples, members.length);
        assert.equal(
          total.timesSeen,
          members.reduce((a, e) => a + e.timesSeen, 0),
        );
        assert.ok(Math.abs(total.firstOrder - members.reduce((a, e) => a + e.firstOrder, 0)) < 1e-12);
        total.stages.forEach((v, st) => {
          assert.ok(Math.abs(v - members.reduce((a, e) => a + e.stages[st], 0)) < 1e-12);
        });
      }
    });

    test(`${name}: a restored snapshot continues as if never interrupted`, () => {
      const steps = randomSteps(o, 11, 12);
      const whole = ledgerFor(o);
      for (const s of steps) whole.addStep(s);
      const first = ledgerFor(o);
      for (const s of steps.slice(0, 5)) first.addStep(s);
      const snapshot = first.snapshot();
      // The snapshot is a copy: later steps in the first ledger do not reach it.
      const frozen = JSON.stringify(snapshot, (_k, v) => (v instanceof Float64Array ? Array.from(v) : v));
      first.addStep(steps[5]);
      assert.equal(
        JSON.stringify(snapshot, (_k, v) => (v instanceof Float64Array ? Array.from(v) : v)),
        frozen,
      );
      const resumed = ledgerFor(o);
      resumed.restore(snapshot);
      for (const s of steps.slice(5)) resumed.addStep(s);
      assertEntries(resumed.all(), whole.all(), 'resumed');
      // Restored over a ledger that holds other values (more of them, so stale rows stay behind).
      const reused = ledgerFor(o);
      for (const s of steps) reused.addStep(s);
      reused.restore(snapshot);
      for (const s of steps.slice(5)) reused.addStep(s);
      assertEntries(reused.all(), whole.all(), 'restored over other values');
    });
  }

  test('grows past its first columns without losing a sum', () => {
    const o = CASES[1][1];
    const ledger = ledgerFor(o);
    const n = 1000;
    for (let t = 0; t < 3; t++)
      ledger.addStep({
        step: t,
        ids: Array.from({ length: n }, (_, i) => `x${i}`),
        groups: new Array(n).fill(undefined),
        firstOrder: Float64Array.from({ length: n }, (_, i) => i),
        secondOrder: Float64Array.from({ length: n }, (_, i) => -i),
      });
    assert.equal(ledger.size, n);
    const last = ledger.get(`x${n - 1}`)!;
    assert.deepEqual([last.timesSeen, last.firstOrder, last.secondOrder], [3, 3 * (n - 1), -3 * (n - 1)]);
    assert.deepEqual(last.stages, [-3 * (n - 1), 0, 0]);
  });

  test('refuses a snapshot of another shape, and momentum credit for an unseen example', () => {
    const o = CASES[2][1];
    const ledger = ledgerFor(o);
    ledger.addStep(randomSteps(o, 3, 1)[0]);
    const snapshot = ledger.snapshot();
    assert.throws(
      () => ledgerFor({ ...o, stageStarts: [] }).restore(snapshot),
      /2 training stages, this run has 1/,
    );
    assert.throws(
      () => ledgerFor({ ...o, columns: 2 }).restore(snapshot),
      /3 per-validation columns, this run has 2/,
    );
    assert.throws(
      () => ledgerFor({ ...o, perValidationSecond: false }).restore(snapshot),
      /are second order, this run keeps first order/,
    );
    assert.throws(() => ledger.addCredit(['nobody'], new Float64Array(1)), /never valued/);
  });
});

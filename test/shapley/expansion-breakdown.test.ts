// The trace's running Taylor correlation and per-step breakdown flag, and excludeBrokenSteps: each
// recomputed from the trace's own utilities, and the excluded values from each step's own values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TensorDataset } from '../../src/data/dataset.js';
import { mlp } from '../../src/models/builders.js';
import { adamw } from '../../src/optim/adam.js';
import { EXPANSION_BREAKDOWN, type StepValues, type TraceEntry } from '../../src/shapley/valuer.js';
import { Trainer } from '../../src/train/trainer.js';
import { Rng } from '../../src/util/rng.js';

function blobs(n: number, seed: number, prefix: string) {
  const rng = new Rng(seed);
  const d = 5;
  const features = new Float64Array(n * d);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = rng.int(3);
    labels.push(y);
    for (let k = 0; k < d; k++) features[i * d + k] = rng.normal() + (k === y ? 1.5 : 0);
  }
  const ids = labels.map((_, i) => `${prefix}${i}`);
  return new TensorDataset({ name: prefix, features, width: d, labels, labelKind: 'class', ids });
}

const DATA = blobs(96, 1, 'x');
const VALIDATION = blobs(24, 2, 'v');

/** Adam with a large rate: its first steps are far from their linearisation, so some break down. */
function makeTrainer(excludeBrokenSteps: boolean) {
  return new Trainer({
    model: mlp({ inputs: 5, hidden: [12], outputs: 3, seed: 3 }),
    optimizer: adamw({ lr: 0.05 }),
    data: DATA,
    batchSize: 12,
    epochs: 3,
    seed: 4,
    valuation: { validation: VALIDATION, order: 2, excludeBrokenSteps },
  });
}

function runAll(trainer: Trainer): StepValues[] {
  const values: StepValues[] = [];
  const ids: string[][] = [];
  while (!trainer.done) {
    const report = trainer.runStep();
    values.push(report.values!);
    ids.push(report.ids.map(String));
  }
  trainer.valuer!.finish();
  return values.map((v, t) => Object.assign(v, { ids: ids[t] }));
}

function pearson(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let k = 0; k < n; k++) {
    sxy += (xs[k] - mx) * (ys[k] - my);
    sxx += (xs[k] - mx) ** 2;
    syy += (ys[k] - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

function broken(row: TraceEntry): boolean {
  const predicted = row.secondOrderUtility ?? row.firstOrderUtility;
  const real = row.actualUtility - row.emptyUtility;
  const error = Math.abs(real - predicted);
  return (
    error > EXPANSION_BREAKDOWN * Math.max(Math.abs(real), Math.abs(predicted)) &&
    error > 1e-6 * row.validationLossBefore
  );
}

test('every row carries the running correlation of predicted and real change, and its breakdown flag', () => {
  const trainer = makeTrainer(false);
  runAll(trainer);
  const trace = trainer.valuer!.trace;
  const predicted = trace.map((r) => r.secondOrderUtility!);
  const real = trace.map((r) => r.actualUtility - r.emptyUtility);
  trace.forEach((row, t) => {
    if (t < 2) assert.equal(row.taylorCorrelation, null);
    else {
      const expected = pearson(predicted.slice(0, t + 1), real.slice(0, t + 1));
      assert.ok(
        Math.abs(row.taylorCorrelation! - expected) < 1e-9,
        `step ${t}: ${row.taylorCorrelation} vs ${expected}`,
      );
    }
    assert.equal(row.expansionBroken, broken(row) ? 1 : 0, `step ${t}`);
  });
  const flagged = trace.filter((r) => r.expansionBroken === 1).length;
  // The case means something only if some steps break down and most do not.
  assert.ok(flagged > 0 && flagged < trace.length / 2, `${flagged} of ${trace.length} flagged`);
});

test('excludeBrokenSteps: the values are the sums over the steps that did not break down', () => {
  const trainer = makeTrainer(true);
  const steps = runAll(trainer) as (StepValues & { ids: string[] })[];
  const trace = trainer.valuer!.trace;
  const expected = new Map<string, { first: number; second: number; seen: number }>();
  steps.forEach((values, t) => {
    if (trace[t].expansionBroken === 1) return;
    values.ids.forEach((id, r) => {
      const e = expected.get(id) ?? { first: 0, second: 0, seen: 0 };
      e.first += values.firstOrder[r];
      e.second += values.secondOrder![r];
      e.seen += 1;
      expected.set(id, e);
    });
  });
  const ledger = trainer.valuer!.ledger;
  assert.equal(ledger.size, expected.size);
  for (const [id, e] of expected) {
    const entry = ledger.get(id)!;
    assert.equal(entry.timesSeen, e.seen);
    assert.ok(Math.abs(entry.firstOrder - e.first) <= 1e-12 * Math.max(1, Math.abs(e.first)));
    assert.ok(Math.abs(entry.secondOrder - e.second) <= 1e-12 * Math.max(1, Math.abs(e.second)));
  }
  // The same trace as without exclusion: only the ledger differs.
  const plain = makeTrainer(false);
  runAll(plain);
  assert.deepEqual(trace, plain.valuer!.trace);
  assert.ok(plain.valuer!.ledger.size >= ledger.size);
});

test('excludeBrokenSteps: a run resumed from a checkpoint ends identical to an uninterrupted one', () => {
  const uninterrupted = makeTrainer(true);
  runAll(uninterrupted);
  const first = makeTrainer(true);
  for (let t = 0; t < 5; t++) first.runStep();
  const checkpoint = first.checkpoint();
  const resumed = makeTrainer(true);
  resumed.restore(checkpoint);
  runAll(resumed);
  assert.deepEqual(resumed.valuer!.ledger.snapshot(), uninterrupted.valuer!.ledger.snapshot());
  assert.deepEqual(resumed.valuer!.trace, uninterrupted.valuer!.trace);
});

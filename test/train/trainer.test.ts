import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TensorDataset } from '../../src/data/dataset.js';
import { mlp } from '../../src/models/builders.js';
import { adamw } from '../../src/optim/adam.js';
import { sgd } from '../../src/optim/sgd.js';
import type { TraceEntry } from '../../src/shapley/valuer.js';
import { Trainer, train } from '../../src/train/trainer.js';
import { DivergenceError, InrunError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

function blobs(n: number, seed: number, name: string, idPrefix = 'x') {
  const rng = new Rng(seed);
  const d = 6;
  const features = new Float64Array(n * d);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = rng.int(3);
    labels.push(y);
    for (let k = 0; k < d; k++) features[i * d + k] = rng.normal() + (k === y ? 2 : 0);
  }
  const ids = labels.map((_, i) => `${idPrefix}${i}`);
  const groups = labels.map((y) => `class-${y}`);
  return new TensorDataset({ name, features, width: d, labels, labelKind: 'class', ids, groups });
}

const DATA = blobs(120, 1, 'training data');
const VALIDATION = blobs(30, 2, 'validation data', 'v');

function makeTrainer(valued: boolean, order: 1 | 2 = 2, dtype: 'float32' | 'float64' = 'float32') {
  return new Trainer({
    model: mlp({ inputs: 6, hidden: [16, 8], outputs: 3, seed: 3, dtype }),
    optimizer: sgd({
      lr: 0.1,
      momentum: 0.9,
      weightDecay: 1e-3,
      clipNorm: 5,
      schedule: { kind: 'cosine', warmupSteps: 3 },
    }),
    data: DATA,
    batchSize: 16,
    epochs: 3,
    seed: 4,
    valuation: valued ? { validation: VALIDATION, order, stageStarts: [8, 16] } : undefined,
  });
}

function runAll(trainer: Trainer) {
  while (!trainer.done) trainer.runStep();
  return trainer;
}

describe('Trainer', () => {
  test('attaching the valuer does not change training: weights are bit-identical', () => {
    const plain = runAll(makeTrainer(false));
    const first = runAll(makeTrainer(true, 1));
    const second = runAll(makeTrainer(true, 2));
    assert.equal(plain.totalSteps, 24);
    assert.deepEqual(Buffer.from(first.model.params.buffer), Buffer.from(plain.model.params.buffer));
    assert.deepEqual(Buffer.from(second.model.params.buffer), Buffer.from(plain.model.params.buffer));
  });

  test('under AdamW the valuer leaves training bit-identical and traces the linearisation gap', () => {
    const make = (valued: boolean) =>
      new Trainer({
        model: mlp({ inputs: 6, hidden: [8], outputs: 3, seed: 3 }),
        optimizer: adamw({ lr: 0.01, clipNorm: 1 }),
        data: DATA,
        batchSize: 16,
        steps: 12,
        seed: 4,
        valuation: valued ? { validation: VALIDATION, order: 2 } : undefined,
      });
    const plain = runAll(make(false));
    const valued = runAll(make(true));
    assert.deepEqual(Buffer.from(valued.model.params.buffer), Buffer.from(plain.model.params.buffer));
    for (const row of valued.valuer!.trace) {
      assert.ok(
        row.linearisationGap !== null && row.linearisationGap >= 0 && Number.isFinite(row.linearisationGap),
      );
    }
    const sgdRun = runAll(makeTrainer(true, 1));
    assert.ok(sgdRun.valuer!.trace.every((row) => row.linearisationGap === null));
  });

  test('the ledger adds up each example’s per-step values, per stage and per group', () => {
    const trainer = makeTrainer(true, 2, 'float64');
    const perId = new Map<string | number, { first: number; second: number; seen: number }>();
    while (!trainer.done) {
      const report = trainer.runStep();
      report.ids.forEach((id, r) => {
        const acc = perId.get(id) ?? { first: 0, second: 0, seen: 0 };
        acc.first += report.values!.firstOrder[r];
        acc.second += report.values!.secondOrder![r];
        acc.seen += 1;
        perId.set(id, acc);
      });
    }
    const ledger = trainer.valuer!.ledger;
    assert.equal(ledger.size, DATA.size);
    for (const [id, acc] of perId) {
      const entry = ledger.get(id)!;
      assert.equal(entry.timesSeen, 3);
      assert.equal(entry.timesSeen, acc.seen);
      assert.ok(Math.abs(entry.firstOrder - acc.first) < 1e-15 + 1e-12 * Math.abs(acc.first));
      assert.ok(Math.abs(entry.secondOrder - acc.second) < 1e-15 + 1e-12 * Math.abs(acc.second));
      const stageSum = entry.stages.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(stageSum - entry.secondOrder) < 1e-12 + 1e-9 * Math.abs(entry.secondOrder));
    }
    const groups = ledger.groupTotals();
    const total = groups.reduce((a, g) => a + g.secondOrder, 0);
    const traceTotal = trainer.valuer!.trace.reduce((a, row) => a + (row.secondOrderSum ?? 0), 0);
    assert.ok(Math.abs(total - traceTotal) < 1e-10);
    assert.equal(
      groups.reduce((a, g) => a + g.examples, 0),
      DATA.size,
    );
  });

  test('the trace links each step’s validation loss after to the next step’s before', () => {
    const trainer = runAll(makeTrainer(true, 2, 'float64'));
    const trace = trainer.valuer!.trace;
    assert.equal(trace.length, 24);
    for (let t = 0; t + 1 < trace.length; t++) {
      assert.equal(trace[t].validationLossAfter, trace[t + 1].validationLossBefore);
      assert.equal(trace[t].actualUtility, trace[t].validationLossBefore - trace[t].validationLossAfter);
    }
    const last = trace[trace.length - 1];
    assert.ok(Math.abs(last.validationLossAfter - trainer.valuer!.validationLoss()) < 1e-15);
    for (const row of trace) assert.ok(Math.abs(row.efficiencyResidual) < 1e-12, `step ${row.step}`);
    assert.ok(trace[0].lr < trace[3].lr, 'warm-up raises the learning rate');
  });

  test('a run restored from a checkpoint ends bit-identical to an uninterrupted one', () => {
    const uninterrupted = runAll(makeTrainer(true, 2));
    const first = makeTrainer(true, 2);
    for (let k = 0; k < 11; k++) first.runStep(); // stop mid-epoch
    const checkpoint = first.checkpoint();
    for (let k = 0; k < 3; k++) first.runStep(); // what happens after the checkpoint is discarded
    const resumed = makeTrainer(true, 2);
    resumed.restore(checkpoint);
    runAll(resumed);
    assert.deepEqual(
      Buffer.from(resumed.model.params.buffer),
      Buffer.from(uninterrupted.model.params.buffer),
    );
    assert.deepEqual(resumed.valuer!.ledger.snapshot(), uninterrupted.valuer!.ledger.snapshot());
    assert.deepEqual(resumed.valuer!.trace, uninterrupted.valuer!.trace);
    assert.throws(() => makeTrainer(false).restore(checkpoint), /valuation must be on/);
  });

  test('keepTrace: false hands every completed row to onTraceRow and holds only the latest', () => {
    const full = runAll(makeTrainer(true, 2)).valuer!.trace;
    const make = (rows: TraceEntry[]) =>
      new Trainer({
        model: mlp({ inputs: 6, hidden: [16, 8], outputs: 3, seed: 3 }),
        optimizer: sgd({
          lr: 0.1,
          momentum: 0.9,
          weightDecay: 1e-3,
          clipNorm: 5,
          schedule: { kind: 'cosine', warmupSteps: 3 },
        }),
        data: DATA,
        batchSize: 16,
        epochs: 3,
        seed: 4,
        valuation: {
          validation: VALIDATION,
          order: 2,
          stageStarts: [8, 16],
          keepTrace: false,
          onTraceRow: (row) => rows.push(row),
        },
      });
    const rows: TraceEntry[] = [];
    const first = make(rows);
    for (let k = 0; k < 11; k++) {
      first.runStep();
      assert.equal(first.valuer!.trace.length, 1);
      assert.equal(first.valuer!.trace[0].step, k, 'the latest row is held (for progress)');
      assert.equal(rows.length, k, 'a row is handed on once the next step completes it');
    }
    const checkpoint = first.checkpoint();
    assert.equal(checkpoint.valuer!.trace.length, 1, 'the checkpoint holds the pending row only');
    for (let k = 0; k < 3; k++) first.runStep(); // discarded, as after a crash
    const resumedRows = rows.slice(0, checkpoint.step - 1);
    const resumed = make(resumedRows);
    resumed.restore(checkpoint);
    runAll(resumed);
    assert.deepEqual(resumedRows, full, 'rows before and after the resume make up the whole trace');
    assert.equal(resumed.valuer!.trace.length, 1);
    assert.deepEqual(resumed.valuer!.trace[0], full.at(-1));
    const uninterrupted = runAll(makeTrainer(true, 2));
    assert.deepEqual(
      Buffer.from(resumed.model.params.buffer),
      Buffer.from(uninterrupted.model.params.buffer),
    );
    assert.deepEqual(resumed.valuer!.ledger.snapshot(), uninterrupted.valuer!.ledger.snapshot());
  });

  test('onTraceRow also works with the whole trace kept, each row handed on exactly once', () => {
    const rows: TraceEntry[] = [];
    const trainer = new Trainer({
      model: mlp({ inputs: 6, hidden: [8], outputs: 3, seed: 3 }),
      optimizer: sgd({ lr: 0.1 }),
      data: DATA,
      batchSize: 16,
      steps: 9,
      seed: 4,
      valuation: { validation: VALIDATION, recordBatchIds: true, onTraceRow: (row) => rows.push(row) },
    });
    runAll(trainer);
    trainer.valuer!.finish(); // again: nothing more to hand on
    assert.deepEqual(rows, trainer.valuer!.trace);
    assert.equal(rows[8].batchIds!.length, 16);
    rows[0].trainLoss = -1; // the rows handed on are copies
    assert.notEqual(trainer.valuer!.trace[0].trainLoss, -1);
  });

  test('a non-finite loss stops the run naming the step, before the weights change', () => {
    const trainer = new Trainer({
      model: mlp({ inputs: 6, hidden: [8], outputs: 3, seed: 1 }),
      optimizer: sgd({ lr: 1e30 }),
      data: DATA,
      batchSize: 8,
      steps: 10,
    });
    let error: unknown;
    let weightsBefore = trainer.model.params.slice();
    try {
      for (;;) {
        weightsBefore = trainer.model.params.slice();
        trainer.runStep();
      }
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof DivergenceError, String(error));
    assert.match((error as Error).message, /diverged at step \d+/);
    assert.deepEqual(trainer.model.params, weightsBefore);
  });

  test('train() returns a finished trainer with values for every example seen', () => {
    const trainer = train({
      model: mlp({ inputs: 6, hidden: [8], outputs: 3, seed: 1 }),
      optimizer: sgd({ lr: 0.1 }),
      data: DATA,
      batchSize: 32,
      steps: 2,
      valuation: { validation: VALIDATION },
    });
    assert.ok(trainer.done);
    assert.equal(trainer.valuer!.ledger.size, 64);
  });
});

describe('bad input is refused before training starts', () => {
  const model = () => mlp({ inputs: 6, hidden: [4], outputs: 3 });
  const cases: [string, () => unknown, RegExp][] = [
    [
      'batch larger than the data',
      () => new Trainer({ model: model(), optimizer: sgd({ lr: 0.1 }), data: DATA, batchSize: 500 }),
      /batchSize \(500\) is larger than the training data \(120/,
    ],
    [
      'unknown trainer option',
      () =>
        new Trainer({
          model: model(),
          optimizer: sgd({ lr: 0.1 }),
          data: DATA,
          batchSize: 4,
          epoch: 2,
        } as never),
      /unknown option "epoch"/,
    ],
    [
      'unknown optimizer option',
      () => sgd({ lr: 0.1, momentun: 0.9 } as never),
      /sgd: unknown option "momentun"/,
    ],
    ['negative learning rate', () => sgd({ lr: -1 }), /sgd.lr must be ≥ 0, got -1/],
    [
      'keepTrace not a boolean',
      () =>
        new Trainer({
          model: model(),
          optimizer: sgd({ lr: 0.1 }),
          data: DATA,
          batchSize: 4,
          valuation: { validation: VALIDATION, keepTrace: 'no' as never },
        }),
      /valuation.keepTrace must be true or false, got "no"/,
    ],
    [
      'empty validation set',
      () =>
        new Trainer({
          model: model(),
          optimizer: sgd({ lr: 0.1 }),
          data: DATA,
          batchSize: 4,
          valuation: { validation: { ...VALIDATION, size: 0, name: 'validation data' } as never },
        }),
      /validation set is empty/,
    ],
    [
      'shape mismatch between data and model',
      () =>
        new Trainer({
          model: mlp({ inputs: 5, hidden: [4], outputs: 3 }),
          optimizer: sgd({ lr: 0.1 }),
          data: DATA,
          batchSize: 4,
        }),
      /training data: examples have shape \[1, 6\], the model expects \[1, 5\]/,
    ],
    [
      'label out of range',
      () =>
        new Trainer({
          model: mlp({ inputs: 6, hidden: [4], outputs: 2 }),
          optimizer: sgd({ lr: 0.1 }),
          data: DATA,
          batchSize: 4,
        }),
      /training data: example \d+ has label 2, outside the model's classes 0..1/,
    ],
    [
      'NaN feature',
      () =>
        new TensorDataset({
          name: 'train.csv',
          features: [1, Number.NaN, 3, 4],
          width: 2,
          labels: [0, 1],
          labelKind: 'class',
        }),
      /train.csv: example 0, feature 1 is NaN/,
    ],
    [
      'non-integer class label',
      () =>
        new TensorDataset({ name: 'd', features: [1, 2], width: 1, labels: [0, 1.5], labelKind: 'class' }),
      /example 1 has label 1.5/,
    ],
    [
      'duplicate ids',
      () =>
        new TensorDataset({
          name: 'd',
          features: [1, 2],
          width: 1,
          labels: [0, 1],
          labelKind: 'class',
          ids: ['a', 'a'],
        }),
      /id "a" is used by examples 0 and 1/,
    ],
    [
      'order 3',
      () =>
        new Trainer({
          model: model(),
          optimizer: sgd({ lr: 0.1 }),
          data: DATA,
          batchSize: 4,
          valuation: { validation: VALIDATION, order: 3 as never },
        }),
      /valuation.order must be 1 or 2, got 3/,
    ],
    ['bad schedule', () => sgd({ lr: 0.1, schedule: { kind: 'linear' } as never }), /schedule.kind must be/],
  ];
  for (const [name, make, message] of cases) {
    test(name, () => {
      assert.throws(make, (e: unknown) => e instanceof InrunError && message.test((e as Error).message));
    });
  }
});

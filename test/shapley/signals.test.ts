// The per-example signals kept beside the values (self-influence, training loss, margin,
// forgetting events, class-conditional value) and the per-validation columns, each against a
// replay that forms every per-example gradient at the weights of every step.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allocFloat } from '../../src/kernels/index.js';
import type { Sequential } from '../../src/models/sequential.js';
import { adam } from '../../src/optim/adam.js';
import { sgd } from '../../src/optim/sgd.js';
import type { Optimizer } from '../../src/optim/types.js';
import { InRunValuer } from '../../src/shapley/valuer.js';
import { ARCHITECTURES, type Architecture, asDataset, buildModel, randomBatch } from '../helpers/fixtures.js';
import { type Examples, perExampleGradients, relativeError, slice } from '../reference/brute-force.js';

const CLASSIFIER = ARCHITECTURES[0]; // linear → tanh → linear, softmax cross-entropy
const BINARY = ARCHITECTURES[3]; // logistic regression
const REGRESSION = ARCHITECTURES[2]; // MSE

/** Batches of a pool of 6 examples in which every example recurs (so sums and forgetting matter). */
const BATCHES = [
  [0, 1, 2, 3],
  [4, 5, 0, 1],
  [2, 3, 4, 5],
  [1, 0, 5, 2],
  [3, 4, 1, 0],
];

function pick(pool: Examples, indices: number[]): Examples {
  const parts = indices.map((i) => slice(pool, i));
  const { tokens, width } = pool.input;
  const data = new Float64Array(parts.length * tokens * width);
  parts.forEach((p, r) => {
    data.set(p.input.data, r * tokens * width);
  });
  const targetsPer = pool.targets.length / pool.input.n;
  const targets =
    pool.targets instanceof Int32Array
      ? new Int32Array(parts.length * targetsPer)
      : new Float64Array(parts.length * targetsPer);
  parts.forEach((p, r) => {
    targets.set(p.targets, r * targetsPer);
  });
  return { input: { data, n: parts.length, tokens, width }, targets };
}

interface Replayed {
  params: Float64Array;
  lr: number;
  kScale: number;
  kDiagonal: Float64Array | null;
  batch: number[];
}

/** Trains on BATCHES with the valuer attached; returns the valuer and each step's weights and K. */
function run(arch: Architecture, optimizer: Optimizer, pool: Examples, validation: Examples) {
  const model = buildModel(arch, 'float64', 3);
  const valuer = new InRunValuer(model, {
    validation: asDataset(arch, validation, 'validation'),
    perValidation: true,
    classValues: true,
  });
  const steps: Replayed[] = [];
  BATCHES.forEach((indices, step) => {
    const batch = pick(pool, indices);
    const pass = model.forward(batch.input, batch.targets);
    model.backward(pass);
    const gradSum = allocFloat('float64', model.parameterCount);
    model.addGrad(pass, 1, gradSum);
    const plan = optimizer.plan(step, BATCHES.length, model.params, gradSum, indices.length);
    steps.push({
      params: Float64Array.from(model.params),
      lr: plan.lr,
      kScale: plan.kScale,
      kDiagonal: plan.kDiagonal ? Float64Array.from(plan.kDiagonal) : null,
      batch: indices,
    });
    valuer.valueStep({
      pass,
      gradSum,
      plan,
      trainLoss: 0,
      ids: indices.map((i) => `ex${i}`),
      groups: indices.map(() => undefined),
    });
    optimizer.apply(plan, model.params, gradSum);
  });
  return { model, valuer, steps };
}

/** The replay: every quantity from per-example gradients formed at each step's weights. */
function replay(model: Sequential, steps: Replayed[], pool: Examples, validation: Examples) {
  const n = pool.input.n;
  const m = validation.input.n;
  const P = model.parameterCount;
  const classes = validation.targets instanceof Int32Array || model.loss.kind === 'binary-logistic';
  const label = (targets: Examples['targets'], i: number) => Math.round(targets[i]);
  const expected = Array.from({ length: n }, () => ({
    self: 0,
    loss: 0,
    margin: 0,
    forgetting: 0,
    correct: 0,
    lastCorrect: null as boolean | null,
    classValue: 0,
    perValidation: new Float64Array(m),
  }));
  for (const step of steps) {
    model.params.set(step.params);
    const gTrain = perExampleGradients(model, pool);
    const gVal = perExampleGradients(model, validation);
    const k = (e: number) => step.kScale * (step.kDiagonal ? step.kDiagonal[e] : 1);
    const forward = model.forward(pool.input, pool.targets);
    const logits = forward.lossTape.output.data;
    const width = forward.lossTape.output.width;
    for (const i of step.batch) {
      const x = expected[i];
      const g = gTrain[i];
      for (let e = 0; e < P; e++) x.self += step.lr * k(e) * g[e] * g[e];
      x.loss += forward.losses[i];
      for (let j = 0; j < m; j++) {
        let s = 0;
        for (let e = 0; e < P; e++) s += g[e] * k(e) * gVal[j][e];
        x.perValidation[j] += (step.lr * s) / m;
      }
      if (!classes) continue;
      const y = label(pool.targets, i);
      let margin: number;
      if (width === 1) margin = y === 1 ? logits[i] : -logits[i];
      else {
        const others = Array.from({ length: width }, (_, c) => c)
          .filter((c) => c !== y)
          .map((c) => logits[i * width + c]);
        margin = logits[i * width + y] - Math.max(...others);
      }
      x.margin += margin;
      if (x.lastCorrect === true && margin <= 0) x.forgetting += 1;
      x.lastCorrect = margin > 0;
      if (margin > 0) x.correct += 1;
      const same = Array.from({ length: m }, (_, j) => j).filter((j) => label(validation.targets, j) === y);
      if (same.length === 0) x.classValue = Number.NaN;
      for (const j of same) {
        let s = 0;
        for (let e = 0; e < P; e++) s += g[e] * k(e) * gVal[j][e];
        x.classValue += (step.lr * s) / same.length;
      }
    }
  }
  return expected;
}

function check(arch: Architecture, optimizer: () => Optimizer, poolSeed: number) {
  const pool = randomBatch(arch, 6, poolSeed);
  const validation = randomBatch(arch, 7, poolSeed + 1);
  const { model, valuer, steps } = run(arch, optimizer(), pool, validation);
  const expected = replay(model, steps, pool, validation);
  const classes = model.loss.kind !== 'mse';
  expected.forEach((x, i) => {
    const entry = valuer.ledger.get(`ex${i}`)!;
    const close = (got: number, want: number, what: string) =>
      assert.ok(
        Math.abs(got - want) <= 1e-9 * Math.max(1, Math.abs(want)),
        `example ${i} ${what}: ${got} vs ${want}`,
      );
    close(entry.selfInfluence, x.self, 'self-influence');
    close(entry.lossSum, x.loss, 'loss sum');
    assert.ok(relativeError(entry.perValidation!, x.perValidation) < 1e-9, `example ${i} per-validation`);
    if (!classes) {
      for (const v of [entry.marginSum, entry.forgettingEvents, entry.timesCorrect, entry.classValue])
        assert.ok(Number.isNaN(v));
      return;
    }
    close(entry.marginSum, x.margin, 'margin sum');
    assert.equal(entry.forgettingEvents, x.forgetting, `example ${i} forgetting events`);
    assert.equal(entry.timesCorrect, x.correct, `example ${i} times correct`);
    if (Number.isNaN(x.classValue)) assert.ok(Number.isNaN(entry.classValue));
    else close(entry.classValue, x.classValue, 'class value');
  });
  return { valuer, expected };
}

describe('per-example signals equal a replay with formed per-example gradients', () => {
  test('softmax classifier, SGD with momentum (scalar K)', () => {
    check(CLASSIFIER, () => sgd({ lr: 0.5, momentum: 0.9 }), 21);
  });
  test('softmax classifier, Adam (diagonal K)', () => {
    check(CLASSIFIER, () => adam({ lr: 0.05 }), 23);
  });
  test('binary logistic regression, SGD', () => {
    check(BINARY, () => sgd({ lr: 1 }), 25);
  });
  test('regression has no margin, forgetting or class value', () => {
    check(REGRESSION, () => sgd({ lr: 0.1 }), 27);
  });
  test('forgetting events are counted at all (a large step makes examples flip)', () => {
    const { expected } = check(CLASSIFIER, () => sgd({ lr: 8 }), 29);
    assert.ok(expected.some((x) => x.forgetting > 0));
  });
});

test('signals: false keeps the values and marks every signal as not measured', () => {
  const pool = randomBatch(CLASSIFIER, 6, 31);
  const model = buildModel(CLASSIFIER, 'float64', 3);
  const valuer = new InRunValuer(model, {
    validation: asDataset(CLASSIFIER, randomBatch(CLASSIFIER, 5, 32), 'validation'),
    signals: false,
  });
  const pass = model.forward(pool.input, pool.targets);
  model.backward(pass);
  const gradSum = allocFloat('float64', model.parameterCount);
  model.addGrad(pass, 1, gradSum);
  const plan = sgd({ lr: 0.1 }).plan(0, 1, model.params, gradSum, 6);
  const ids = Array.from({ length: 6 }, (_, i) => i);
  valuer.valueStep({ pass, gradSum, plan, trainLoss: 0, ids, groups: ids.map(() => undefined) });
  for (const entry of valuer.ledger.all()) {
    assert.ok(Number.isFinite(entry.firstOrder));
    for (const v of [entry.selfInfluence, entry.lossSum, entry.marginSum, entry.classValue])
      assert.ok(Number.isNaN(v));
  }
});

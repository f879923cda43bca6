// valuation.validationBatch: values against a random validation sample per step are unbiased for
// the full-V values, and the variance they report is unbiased for their real sampling variance.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allocFloat } from '../../src/kernels/index.js';
import { adam } from '../../src/optim/adam.js';
import { sgd } from '../../src/optim/sgd.js';
import type { Optimizer } from '../../src/optim/types.js';
import { InRunValuer, type ValuerOptions } from '../../src/shapley/valuer.js';
import { ARCHITECTURES, asDataset, buildModel, randomBatch } from '../helpers/fixtures.js';
import { meanLoss } from '../reference/brute-force.js';

const ARCH = ARCHITECTURES[0]; // softmax classifier
const N = 5;
const M = 12;
const K = 7; // odd: halves of 4 and 3

/** Values one step (after `warmup` steps, so momentum/Adam state is non-trivial) with the given valuation. */
function valueOneStep(make: () => Optimizer, valuation: Partial<ValuerOptions>, warmup = 2) {
  const model = buildModel(ARCH, 'float64', 5);
  const optimizer = make();
  const validation = randomBatch(ARCH, M, 41);
  const valuer = new InRunValuer(model, {
    validation: asDataset(ARCH, validation, 'validation'),
    order: 2,
    ...valuation,
  });
  const batches = Array.from({ length: warmup + 1 }, (_, t) => randomBatch(ARCH, N, 50 + t));
  let result: ReturnType<InRunValuer['valueStep']> | null = null;
  batches.forEach((batch, t) => {
    const pass = model.forward(batch.input, batch.targets);
    model.backward(pass);
    const gradSum = allocFloat('float64', model.parameterCount);
    model.addGrad(pass, 1, gradSum);
    const plan = optimizer.plan(t, 10, model.params, gradSum, N);
    if (t === warmup) {
      const ids = Array.from({ length: N }, (_, i) => i);
      result = valuer.valueStep({ pass, gradSum, plan, trainLoss: 0, ids, groups: ids.map(() => undefined) });
    }
    optimizer.apply(plan, model.params, gradSum);
  });
  return { valuer, values: result!, model, validation };
}

for (const [name, make] of [
  ['SGD with momentum', () => sgd({ lr: 0.3, momentum: 0.9 })],
  ['Adam', () => adam({ lr: 0.05 })],
] as const) {
  test(`sampled values are unbiased and their variance estimates are too (${name})`, () => {
    const full = valueOneStep(make, {}).values;
    const R = 1500;
    const sums = {
      first: new Float64Array(N),
      second: new Float64Array(N),
      sq: new Float64Array(N),
      variance: new Float64Array(N),
    };
    for (let seed = 0; seed < R; seed++) {
      const { valuer, values } = valueOneStep(make, { validationBatch: K, validationSeed: seed });
      for (let i = 0; i < N; i++) {
        sums.first[i] += values.firstOrder[i];
        sums.second[i] += values.secondOrder![i];
        sums.sq[i] += values.secondOrder![i] ** 2;
        sums.variance[i] += valuer.ledger.get(i)!.valueVariance;
      }
      // Efficiency holds for the sample's own utility.
      assert.ok(Math.abs(valuer.trace[0].efficiencyResidual) < 1e-12);
    }
    for (let i = 0; i < N; i++) {
      const reported = sums.variance[i] / R; // mean of the unbiased per-draw estimates
      const meanSecond = sums.second[i] / R;
      const empirical = sums.sq[i] / R - meanSecond ** 2;
      const se = Math.sqrt(empirical / R);
      assert.ok(
        Math.abs(meanSecond - full.secondOrder![i]) < 4 * se,
        `example ${i}: second order ${meanSecond} vs ${full.secondOrder![i]} (±${se})`,
      );
      assert.ok(
        Math.abs(sums.first[i] / R - full.firstOrder[i]) < 4 * se + 1e-12,
        `example ${i}: first order ${sums.first[i] / R} vs ${full.firstOrder[i]}`,
      );
      assert.ok(
        Math.abs(reported / empirical - 1) < 0.15,
        `example ${i}: reported variance ${reported} vs ${empirical}`,
      );
    }
  });
}

test('the trace reports the sample’s own loss before and after the step', () => {
  const model = buildModel(ARCH, 'float64', 5);
  const optimizer = sgd({ lr: 0.5 });
  const validation = randomBatch(ARCH, M, 41);
  const valuer = new InRunValuer(model, {
    validation: asDataset(ARCH, validation, 'validation'),
    validationBatch: K,
    validationSeed: 3,
  });
  const weights: Float64Array[] = [];
  for (let t = 0; t < 3; t++) {
    weights.push(Float64Array.from(model.params));
    const batch = randomBatch(ARCH, N, 60 + t);
    const pass = model.forward(batch.input, batch.targets);
    model.backward(pass);
    const gradSum = allocFloat('float64', model.parameterCount);
    model.addGrad(pass, 1, gradSum);
    const plan = optimizer.plan(t, 3, model.params, gradSum, N);
    const ids = Array.from({ length: N }, (_, i) => `s${t}-${i}`);
    valuer.valueStep({ pass, gradSum, plan, trainLoss: 0, ids, groups: ids.map(() => undefined) });
    optimizer.apply(plan, model.params, gradSum);
  }
  weights.push(Float64Array.from(model.params));
  valuer.finish();
  valuer.trace.forEach((row, t) => {
    const sample = Array.from(valuer.sampleHalves(t)).flatMap((half) => Array.from(half));
    assert.equal(new Set(sample).size, K);
    const subset = {
      input: {
        ...validation.input,
        n: K,
        data: Float64Array.from(
          sample.flatMap((j) =>
            Array.from(validation.input.data.subarray(j * ARCH.inputs, (j + 1) * ARCH.inputs)),
          ),
        ),
      },
      targets: Int32Array.from(sample, (j) => validation.targets[j]),
    };
    assert.ok(Math.abs(row.validationLossBefore - meanLoss(model, subset, weights[t])) < 1e-12);
    assert.ok(Math.abs(row.validationLossAfter - meanLoss(model, subset, weights[t + 1])) < 1e-12);
  });
});

test('validationBatch: clear errors', () => {
  const model = buildModel(ARCH, 'float64', 5);
  const validation = asDataset(ARCH, randomBatch(ARCH, M, 41), 'validation');
  assert.throws(() => new InRunValuer(model, { validation, validationBatch: 1 }), /validationBatch/);
  assert.throws(() => new InRunValuer(model, { validation, validationBatch: 2.5 }), /validationBatch/);
  assert.throws(
    () => new InRunValuer(model, { validation, validationBatch: 4, perValidation: true }),
    /per-validation values need every validation example/,
  );
});

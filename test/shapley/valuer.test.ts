import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allocFloat } from '../../src/kernels/index.js';
import type { FloatArray } from '../../src/kernels/types.js';
import { mlp } from '../../src/models/builders.js';
import type { Sequential } from '../../src/models/sequential.js';
import { type SgdOptions, sgd } from '../../src/optim/sgd.js';
import { InRunValuer, type ValuerOptions } from '../../src/shapley/valuer.js';
import { ARCHITECTURES, asDataset, buildModel, randomBatch } from '../helpers/fixtures.js';
import {
  add,
  denseHessian,
  dot,
  type Examples,
  matVec,
  meanLoss,
  perExampleGradients,
  relativeError,
  shapleyByEnumeration,
} from '../reference/brute-force.js';

const ARCH = ARCHITECTURES[0]; // linear → tanh → linear, softmax cross-entropy

/**
 * Values one SGD step with the real valuer. `warmup` first takes one optimizer step on another
 * batch so momentum has a buffer (c_t ≠ 0).
 */
function valueOneStep(
  model: Sequential,
  train: Examples,
  validation: Examples,
  optimizer: SgdOptions,
  valuation: Partial<ValuerOptions> = {},
  warmup?: Examples,
) {
  const opt = sgd(optimizer);
  const gradOf = (batch: Examples) => {
    const pass = model.forward(batch.input, batch.targets);
    model.backward(pass);
    const gradSum = allocFloat(model.dtype, model.parameterCount);
    model.addGrad(pass, 1, gradSum);
    return { pass, gradSum };
  };
  if (warmup) {
    const { gradSum } = gradOf(warmup);
    opt.apply(opt.plan(0, 10, model.params, gradSum, warmup.input.n), model.params, gradSum);
  }
  const valuer = new InRunValuer(model, {
    validation: asDataset(ARCH, validation, 'validation'),
    ...valuation,
  });
  const { pass, gradSum } = gradOf(train);
  const plan = opt.plan(1, 10, model.params, gradSum, train.input.n);
  const ids = Array.from({ length: train.input.n }, (_, i) => `ex${i}`);
  const values = valuer.valueStep({
    pass,
    gradSum,
    plan,
    trainLoss: 0,
    ids,
    groups: ids.map(() => undefined),
  });
  return { values, plan, valuer, gradSum };
}

/** w(S) − w for the linearised step: −η(c + K g_S). */
function stepDelta(
  plan: { lr: number; c: FloatArray | null; kScale: number },
  grads: Float64Array[],
  mask: number,
) {
  const P = grads[0].length;
  const delta = new Float64Array(P);
  grads.forEach((g, i) => {
    if (mask & (1 << i)) for (let e = 0; e < P; e++) delta[e] += plan.kScale * g[e];
  });
  for (let e = 0; e < P; e++) delta[e] = -plan.lr * ((plan.c ? plan.c[e] : 0) + delta[e]);
  return delta;
}

const OPTIMIZERS: [string, SgdOptions][] = [
  ['plain SGD, mean reduction', { lr: 0.3 }],
  [
    'momentum with L2 and decoupled weight decay',
    { lr: 0.3, momentum: 0.9, weightDecay: 0.01, decoupledWeightDecay: 0.05 },
  ],
  ['sum reduction', { lr: 0.05, reduction: 'sum' }],
  ['global-norm clipping that binds', { lr: 0.3, clipNorm: 0.05 }],
];

describe('closed-form values equal Shapley values by subset enumeration', () => {
  for (const [name, optimizer] of OPTIMIZERS) {
    test(name, () => {
      const model = buildModel(ARCH, 'float64', 3);
      const train = randomBatch(ARCH, 7, 21);
      const validation = randomBatch(ARCH, 5, 22);
      const { values, plan } = valueOneStep(
        model,
        train,
        validation,
        optimizer,
        { order: 2 },
        randomBatch(ARCH, 6, 23),
      );
      if (optimizer.clipNorm)
        assert.ok(plan.clipFactor < 0.5, 'the clip must bind for this case to mean anything');
      if (optimizer.momentum) assert.ok(plan.c !== null, 'momentum must contribute a c_t');
      const grads = perExampleGradients(model, train);
      const gV = perExampleGradients(model, validation).reduce(
        (acc, g) => add(acc, g, 1 / 5),
        new Float64Array(model.parameterCount),
      );
      const H = denseHessian(model, validation);
      const firstOrderUtility = (mask: number) => -dot(gV, stepDelta(plan, grads, mask));
      const secondOrderUtility = (mask: number) => {
        const delta = stepDelta(plan, grads, mask);
        return -dot(gV, delta) - 0.5 * dot(delta, matVec(H, delta));
      };
      const expected1 = shapleyByEnumeration(7, firstOrderUtility);
      const expected2 = shapleyByEnumeration(7, secondOrderUtility);
      assert.ok(
        relativeError(values.firstOrder, expected1) < 1e-9,
        `first order ${relativeError(values.firstOrder, expected1)}`,
      );
      assert.ok(
        relativeError(values.secondOrder!, expected2) < 1e-6,
        `second order ${relativeError(values.secondOrder!, expected2)}`,
      );
    });
  }
});

describe('Shapley axioms', () => {
  test('efficiency: values sum to the Taylor utility of the whole batch', () => {
    const model = buildModel(ARCH, 'float64', 4);
    const { values, valuer } = valueOneStep(
      model,
      randomBatch(ARCH, 9, 31),
      randomBatch(ARCH, 6, 32),
      { lr: 0.2, momentum: 0.5 },
      { order: 2 },
      randomBatch(ARCH, 4, 33),
    );
    const row = valuer.trace[0];
    const sum1 = values.firstOrder.reduce((a, b) => a + b, 0);
    const sum2 = values.secondOrder!.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum1 - row.firstOrderUtility) < 1e-12 * Math.abs(row.firstOrderUtility) + 1e-15);
    assert.ok(Math.abs(sum2 - row.secondOrderUtility!) < 1e-12 * Math.abs(row.secondOrderUtility!) + 1e-15);
    assert.ok(Math.abs(row.efficiencyResidual) < 1e-14);
  });

  test('symmetry: identical examples in one batch get identical values', () => {
    const model = buildModel(ARCH, 'float64', 5);
    const train = randomBatch(ARCH, 6, 41);
    const per = ARCH.inputs;
    train.input.data.copyWithin(4 * per, 1 * per, 2 * per); // example 4 := example 1
    (train.targets as Int32Array)[4] = (train.targets as Int32Array)[1];
    const { values } = valueOneStep(
      model,
      train,
      randomBatch(ARCH, 5, 42),
      { lr: 0.5, momentum: 0.9 },
      { order: 2 },
      randomBatch(ARCH, 4, 43),
    );
    assert.equal(values.firstOrder[4], values.firstOrder[1]);
    assert.ok(
      Math.abs(values.secondOrder![4] - values.secondOrder![1]) <= 1e-15 * Math.abs(values.secondOrder![1]),
    );
    assert.notEqual(values.firstOrder[4], values.firstOrder[0]);
  });

  test('null player: an example with zero gradient gets exactly 0', () => {
    const arch = ARCHITECTURES[2]; // MSE: a target equal to the prediction has zero gradient
    const model = buildModel(arch, 'float64', 6);
    const train = randomBatch(arch, 5, 51);
    const out = model.forward(train.input, train.targets).lossTape.output.data;
    const d = arch.outputs;
    for (let k = 0; k < d; k++) train.targets[2 * d + k] = out[2 * d + k];
    const validation = randomBatch(arch, 4, 52);
    const opt = sgd({ lr: 0.4, momentum: 0.9 });
    const pass = model.forward(train.input, train.targets);
    model.backward(pass);
    const gradSum = allocFloat('float64', model.parameterCount);
    model.addGrad(pass, 1, gradSum);
    const valuer = new InRunValuer(model, {
      validation: asDataset(arch, validation, 'validation'),
      order: 2,
    });
    const plan = opt.plan(0, 1, model.params, gradSum, 5);
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const values = valuer.valueStep({
      pass,
      gradSum,
      plan,
      trainLoss: 0,
      ids,
      groups: ids.map(() => undefined),
    });
    assert.equal(values.firstOrder[2], 0);
    assert.equal(values.secondOrder![2], 0);
    assert.notEqual(values.firstOrder[1], 0);
  });

  test('η = 0 gives all-zero values', () => {
    const model = buildModel(ARCH, 'float64', 7);
    const { values } = valueOneStep(
      model,
      randomBatch(ARCH, 5, 61),
      randomBatch(ARCH, 3, 62),
      { lr: 0, momentum: 0.9 },
      { order: 2 },
      randomBatch(ARCH, 3, 63),
    );
    assert.ok(values.firstOrder.every((v) => v === 0));
    assert.ok(values.secondOrder!.every((v) => v === 0));
  });
});

test('as η → 0, first-order error shrinks like η² and second-order like η³', () => {
  const train = randomBatch(ARCH, 6, 71);
  const validation = randomBatch(ARCH, 5, 72);
  const etas = [0.4, 0.2, 0.1, 0.05];
  const errors1: number[] = [];
  const errors2: number[] = [];
  for (const eta of etas) {
    const model = buildModel(ARCH, 'float64', 8);
    const { values, plan } = valueOneStep(model, train, validation, { lr: eta }, { order: 2 });
    const grads = perExampleGradients(model, train);
    const before = meanLoss(model, validation);
    const trueUtility = (mask: number) => {
      const w = add(model.params, stepDelta(plan, grads, mask));
      return before - meanLoss(model, validation, w);
    };
    const truth = shapleyByEnumeration(6, trueUtility);
    errors1.push(relativeError(values.firstOrder, truth));
    errors2.push(relativeError(values.secondOrder!, truth));
  }
  const slope = (errs: number[]) => {
    const xs = etas.map(Math.log);
    const ys = errs.map(Math.log);
    const mx = xs.reduce((a, b) => a + b) / xs.length;
    const my = ys.reduce((a, b) => a + b) / ys.length;
    let num = 0;
    let den = 0;
    xs.forEach((x, k) => {
      num += (x - mx) * (ys[k] - my);
      den += (x - mx) ** 2;
    });
    return num / den;
  };
  // Relative errors are error/‖φ‖ with ‖φ‖ ∝ η, so their slopes are one less than the orders.
  const s1 = slope(errors1) + 1;
  const s2 = slope(errors2) + 1;
  assert.ok(s1 > 1.8 && s1 < 2.2, `first-order slope ${s1} (errors ${errors1})`);
  assert.ok(s2 > 2.7 && s2 < 3.3, `second-order slope ${s2} (errors ${errors2})`);
  errors2.forEach((e, k) => {
    assert.ok(e < errors1[k], 'second order is closer to the truth at every η');
  });
});

describe('ghost routes', () => {
  test('pairwise and vector routes give the same first-order and per-validation values, which sum to them', () => {
    const arch = ARCH;
    const train = randomBatch(arch, 6, 81);
    const validation = randomBatch(arch, 4, 82);
    const run = (valuation: Partial<ValuerOptions>) =>
      valueOneStep(buildModel(arch, 'float64', 9), train, validation, { lr: 0.3 }, valuation).values;
    const viaVector = run({ route: 'vector' });
    const viaPairwise = run({ route: 'pairwise' });
    const withMatrix = run({ perValidation: true });
    const withVectors = run({ perValidation: true, route: 'vector' });
    assert.ok(relativeError(withVectors.perValidation!, withMatrix.perValidation!) < 1e-12);
    assert.ok(relativeError(viaPairwise.firstOrder, viaVector.firstOrder) < 1e-12);
    const m = 4;
    const rowSums = Float64Array.from({ length: 6 }, (_, i) =>
      withMatrix.perValidation!.subarray(i * m, (i + 1) * m).reduce((a, b) => a + b, 0),
    );
    assert.ok(relativeError(rowSums, viaVector.firstOrder) < 1e-12);
  });
});

describe('checkPairwiseLayers', () => {
  const train = randomBatch(ARCH, 6, 91);
  const validation = randomBatch(ARCH, 4, 92);
  /**
   * One step with the first layer on the pairwise route and the second on the vector route; `skew`
   * adds a constant to one route's products (a broken layer) so the check's reach shows.
   */
  const run = (valuation: Partial<ValuerOptions>, optimizer: SgdOptions, skew?: 'pairwise' | 'vector') => {
    const model = buildModel(ARCH, 'float64', 10);
    model.ghostRoutes = () => ['pairwise', 'vector'];
    const [first, second] = model.paramLayers;
    if (skew === 'pairwise') {
      const pairwise = first.ghostPairwise!.bind(first);
      first.ghostPairwise = (ctx, tape, valTape, out) => {
        pairwise(ctx, tape, valTape, out);
        out[0] += 1e-3;
      };
    } else if (skew === 'vector') {
      const ghostDot = second.ghostDot!.bind(second);
      second.ghostDot = (ctx, tape, us, outs) => {
        ghostDot(ctx, tape, us, outs);
        outs[0][0] += 1e-6;
      };
    }
    const warmup = optimizer.momentum ? randomBatch(ARCH, 4, 93) : undefined;
    return valueOneStep(model, train, validation, optimizer, { route: 'auto', ...valuation }, warmup);
  };

  test('off: the same values, and the Taylor utility of brute-force per-example gradients', () => {
    const checked = run({}, { lr: 0.3 });
    const unchecked = run({ checkPairwiseLayers: false }, { lr: 0.3 });
    assert.deepEqual(unchecked.values.firstOrder, checked.values.firstOrder);
    const model = buildModel(ARCH, 'float64', 10);
    const gB = perExampleGradients(model, train).reduce(
      (acc, g) => add(acc, g, 1),
      new Float64Array(model.parameterCount),
    );
    const gV = perExampleGradients(model, validation).reduce(
      (acc, g) => add(acc, g, 1 / 4),
      new Float64Array(model.parameterCount),
    );
    const expected = 0.3 * checked.plan.kScale * dot(gV, gB);
    for (const { valuer } of [checked, unchecked])
      assert.ok(Math.abs(valuer.trace[0].firstOrderUtility - expected) < 1e-12 * Math.abs(expected));
  });

  test('off: the residual still checks the vector-route layers, no longer the pairwise ones', () => {
    const residual = (check: boolean, skew: 'pairwise' | 'vector') =>
      Math.abs(run({ checkPairwiseLayers: check }, { lr: 0.3 }, skew).valuer.trace[0].efficiencyResidual);
    assert.ok(residual(true, 'pairwise') > 1e-5);
    assert.ok(residual(true, 'vector') > 1e-8);
    assert.ok(residual(false, 'vector') > 1e-8);
    assert.ok(residual(false, 'pairwise') < 1e-14);
  });

  test('off changes nothing where U(∅) needs the validation gradient anyway (momentum, weight decay)', () => {
    for (const optimizer of [
      { lr: 0.3, momentum: 0.5 },
      { lr: 0.3, weightDecay: 0.01 },
    ]) {
      const { valuer } = run({ checkPairwiseLayers: false }, optimizer, 'pairwise');
      assert.ok(Math.abs(valuer.trace[0].efficiencyResidual) > 1e-5);
    }
  });

  test('off, with per-validation values: each way to the columns keeps the whole utility', () => {
    // route 'vector' forms one gradient per column (no Gram matrix): no layer is pairwise, so the
    // utility stays the full ⟨u1, g_B⟩; the Gram way (route 'auto') takes pairwise layers' sums.
    const checked = run({ perValidation: true }, { lr: 0.3 }).valuer.trace[0];
    for (const route of ['vector', 'auto'] as const) {
      const row = run({ perValidation: true, route, checkPairwiseLayers: false }, { lr: 0.3 }).valuer
        .trace[0];
      assert.ok(
        Math.abs(row.firstOrderUtility - checked.firstOrderUtility) <
          1e-13 * Math.abs(checked.firstOrderUtility),
      );
      assert.ok(Math.abs(row.efficiencyResidual) < 1e-14, `${route}: residual ${row.efficiencyResidual}`);
    }
  });

  test('off, second order: the same values, its utility from the same parts', () => {
    const checked = run({ order: 2 }, { lr: 0.3 });
    const unchecked = run({ order: 2, checkPairwiseLayers: false }, { lr: 0.3 });
    assert.deepEqual(unchecked.values.secondOrder, checked.values.secondOrder);
    const [a, b] = [checked, unchecked].map(({ valuer }) => valuer.trace[0].secondOrderUtility!);
    assert.ok(Math.abs(a - b) < 1e-13 * Math.abs(a));
  });

  test('off: the vector route is charged the validation gradient that the pairwise route skips', () => {
    // Linear 8→8 (no bias cost counted), 6 training and 4 validation rows: pairwise 6·4·16 = 384
    // against vector 6·64 = 384 (a tie: vector), or 384 + 4·64 with the validation gradient.
    const model = mlp({ inputs: 8, hidden: [], outputs: 8, dtype: 'float64', seed: 1 });
    assert.deepEqual(model.ghostRoutes(6, 4), ['vector']);
    assert.deepEqual(model.ghostRoutes(6, 4, { validationGradient: true }), ['pairwise']);
    // The valuer asks for that rule exactly when it would skip the gradient.
    const asked = (valuation: Partial<ValuerOptions>, optimizer: SgdOptions) => {
      const model = buildModel(ARCH, 'float64', 10);
      const seen: ({ validationGradient?: boolean } | undefined)[] = [];
      const routes = model.ghostRoutes.bind(model);
      model.ghostRoutes = (n, m, options) => {
        seen.push(options);
        return routes(n, m, options);
      };
      valueOneStep(model, train, validation, optimizer, valuation, optimizer.momentum ? train : undefined);
      return seen.at(-1)?.validationGradient;
    };
    assert.equal(asked({ checkPairwiseLayers: false }, { lr: 0.3 }), true);
    assert.equal(asked({}, { lr: 0.3 }), false);
    assert.equal(asked({ checkPairwiseLayers: false }, { lr: 0.3, momentum: 0.5 }), false);
  });

  test('must be a boolean', () => {
    assert.throws(
      () => run({ checkPairwiseLayers: 'no' as unknown as boolean }, { lr: 0.3 }),
      /valuation.checkPairwiseLayers must be true or false, got "no"/,
    );
  });
});

describe('the empty coalition U(∅) and the whole step’s Taylor error', () => {
  /** U(∅) by brute force: the optimizer's own step with a zero batch gradient, L_V's gradient and Hessian in float64. */
  function emptyByBruteForce(optimizer: SgdOptions, order: 1 | 2) {
    const model = buildModel(ARCH, 'float64', 4);
    const validation = randomBatch(ARCH, 5, 32);
    const { valuer, plan, opt } = valueOneStepWith(model, optimizer, validation, order);
    const w = Float64Array.from(model.params);
    const after = Float64Array.from(w);
    opt.apply(plan, after, new Float64Array(w.length));
    const delta = add(after, w, -1);
    const gV = perExampleGradients(model, validation).reduce(
      (acc, g) => add(acc, g, 1 / 5),
      new Float64Array(model.parameterCount),
    );
    // First order at both orders: the curvature term would cost a second Hessian-vector product.
    const expected = -dot(gV, delta);
    return { row: valuer.trace[0], expected };
  }

  function valueOneStepWith(model: Sequential, optimizer: SgdOptions, validation: Examples, order: 1 | 2) {
    const opt = sgd(optimizer);
    const gradOf = (batch: Examples) => {
      const pass = model.forward(batch.input, batch.targets);
      model.backward(pass);
      const gradSum = allocFloat(model.dtype, model.parameterCount);
      model.addGrad(pass, 1, gradSum);
      return { pass, gradSum };
    };
    const warm = gradOf(randomBatch(ARCH, 6, 33));
    opt.apply(opt.plan(0, 10, model.params, warm.gradSum, 6), model.params, warm.gradSum);
    const valuer = new InRunValuer(model, { validation: asDataset(ARCH, validation, 'validation'), order });
    const train = randomBatch(ARCH, 7, 31);
    const { pass, gradSum } = gradOf(train);
    const plan = opt.plan(1, 10, model.params, gradSum, 7);
    const ids = Array.from({ length: 7 }, (_, i) => `ex${i}`);
    valuer.valueStep({ pass, gradSum, plan, trainLoss: 0, ids, groups: ids.map(() => undefined) });
    return { valuer, plan, opt };
  }

  test('plain SGD without decay: U(∅) = 0', () => {
    for (const order of [1, 2] as const)
      assert.equal(emptyByBruteForce({ lr: 0.3 }, order).row.emptyUtility, 0);
  });

  const cases: [string, SgdOptions][] = [
    ['momentum', { lr: 0.3, momentum: 0.9 }],
    ['decoupled weight decay', { lr: 0.3, decoupledWeightDecay: 0.05 }],
    [
      'momentum with L2 and decoupled decay',
      { lr: 0.3, momentum: 0.9, weightDecay: 0.01, decoupledWeightDecay: 0.05 },
    ],
  ];
  for (const [name, optimizer] of cases)
    test(`${name}: U(∅) equals the brute-force empty-batch step to first order, at both orders`, () => {
      for (const order of [1, 2] as const) {
        const { row, expected } = emptyByBruteForce(optimizer, order);
        assert.ok(
          expected !== 0 && Math.abs(row.emptyUtility - expected) < 1e-7 * Math.abs(expected),
          `order ${order}: ${row.emptyUtility} vs ${expected}`,
        );
      }
    });
});

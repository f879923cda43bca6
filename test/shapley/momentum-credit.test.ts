// Momentum credit against a replay that forms every per-example gradient, and against the Shapley
// value of the run's first-order utility by enumerating every coalition of occurrences.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allocFloat } from '../../src/kernels/index.js';
import { Dropout } from '../../src/layers/dropout.js';
import { ReLU } from '../../src/layers/elementwise.js';
import { Linear } from '../../src/layers/linear.js';
import { SoftmaxCrossEntropy } from '../../src/losses/softmax-cross-entropy.js';
import { type Pass, Sequential } from '../../src/models/sequential.js';
import { adam } from '../../src/optim/adam.js';
import { sgd } from '../../src/optim/sgd.js';
import type { Optimizer, StepPlan } from '../../src/optim/types.js';
import { MOMENTUM_CREDIT_TOLERANCE } from '../../src/shapley/momentum-credit.js';
import { InRunValuer } from '../../src/shapley/valuer.js';
import { ARCHITECTURES, asDataset, buildModel, randomBatch } from '../helpers/fixtures.js';
import { dot, meanGradient, perExampleGradients, shapleyByEnumeration } from '../reference/brute-force.js';

const ARCH = ARCHITECTURES[0];
const N = 2;

interface Replayed {
  plan: StepPlan;
  gTrain: Float64Array[];
  gV: Float64Array;
}

/** Trains `steps` steps of N fresh examples each (ids "t-i"), valued with momentum credit. */
function run(make: () => Optimizer, steps: number, options: { validationBatch?: number } = {}) {
  const model = buildModel(ARCH, 'float64', 7);
  const optimizer = make();
  const validation = randomBatch(ARCH, 6, 70);
  const valuer = new InRunValuer(model, {
    validation: asDataset(ARCH, validation, 'validation'),
    momentumCredit: true,
    signals: false,
    ...options,
  });
  const replay: Replayed[] = [];
  for (let t = 0; t < steps; t++) {
    const batch = randomBatch(ARCH, N, 100 + t);
    const gTrain = perExampleGradients(model, batch);
    const gVal = perExampleGradients(model, validation);
    const gV = new Float64Array(model.parameterCount);
    for (const g of gVal) for (let e = 0; e < gV.length; e++) gV[e] += g[e] / gVal.length;
    const pass = model.forward(batch.input, batch.targets);
    model.backward(pass);
    const gradSum = allocFloat('float64', model.parameterCount);
    model.addGrad(pass, 1, gradSum);
    const plan = optimizer.plan(t, steps, model.params, gradSum, N);
    replay.push({
      plan: {
        ...plan,
        kDiagonal: plan.kDiagonal?.slice() ?? null,
        momentum: plan.momentum && {
          ...plan.momentum,
          carryDiagonal: plan.momentum.carryDiagonal?.slice() ?? null,
        },
      },
      gTrain,
      gV,
    });
    const ids = Array.from({ length: N }, (_, i) => `${t}-${i}`);
    valuer.valueStep({ pass, gradSum, plan, trainLoss: 0, ids, groups: ids.map(() => undefined) });
    optimizer.apply(plan, model.params, gradSum);
  }
  valuer.finish();
  return { valuer, replay };
}

/** The coefficient vector with which occurrence (i, s) moves the update of step t ≥ s (per parameter). */
function coefficient(replay: Replayed[], s: number, t: number, e: number): number {
  const ps = replay[s].plan;
  const pt = replay[t].plan;
  if (t === s) return pt.lr * ps.kScale * (ps.kDiagonal ? ps.kDiagonal[e] : 1);
  const m = pt.momentum!;
  const ms = ps.momentum!;
  return (
    pt.lr * ms.rho ** (t - s) * ms.sourceScale * m.carryScale * (m.carryDiagonal ? m.carryDiagonal[e] : 1)
  );
}

/** First-order utility of the whole run if only the occurrences in `members` contributed. */
function runUtility(replay: Replayed[], members: [number, number][]): number {
  let total = 0;
  replay.forEach((step, t) => {
    for (const [s, i] of members) {
      if (s > t) continue;
      const g = replay[s].gTrain[i];
      for (let e = 0; e < g.length; e++) total += step.gV[e] * coefficient(replay, s, t, e) * g[e];
    }
  });
  return total;
}

describe('momentum credit is the Shapley value of the run’s first-order utility over occurrences', () => {
  for (const [name, make] of [
    ['SGD momentum', () => sgd({ lr: 0.3, momentum: 0.9 })],
    ['Adam', () => adam({ lr: 0.03 })],
  ] as const) {
    test(name, () => {
      const steps = 4;
      const { valuer, replay } = run(make, steps);
      const players: [number, number][] = [];
      for (let s = 0; s < steps; s++) for (let i = 0; i < N; i++) players.push([s, i]);
      const shapley = shapleyByEnumeration(players.length, (mask) =>
        runUtility(
          replay,
          players.filter((_, p) => mask & (1 << p)),
        ),
      );
      players.forEach(([s, i], p) => {
        const entry = valuer.ledger.get(`${s}-${i}`)!;
        const total = entry.firstOrder + entry.momentumCredit;
        assert.ok(
          Math.abs(total - shapley[p]) < 1e-10 * Math.max(1, Math.abs(shapley[p])),
          `${s}-${i}: ${total} vs ${shapley[p]}`,
        );
        // The credit alone: what later steps carried of it.
        let credit = 0;
        for (let t = s + 1; t < steps; t++) {
          const g = replay[s].gTrain[i];
          for (let e = 0; e < g.length; e++) credit += replay[t].gV[e] * coefficient(replay, s, t, e) * g[e];
        }
        assert.ok(Math.abs(entry.momentumCredit - credit) < 1e-10 * Math.max(1, Math.abs(credit)));
      });
      // The credits add up to the carried part of every step's empty-coalition utility (no decay).
      const credits = valuer.ledger.all().reduce((sum, e) => sum + e.momentumCredit, 0);
      const empty = valuer.trace.reduce((sum, row) => sum + row.emptyUtility, 0);
      assert.ok(Math.abs(credits - empty) < 1e-10 * Math.max(1, Math.abs(empty)), `${credits} vs ${empty}`);
      assert.ok(Math.abs(credits) > 0);
    });
  }
});

test('with a sampled validation set, the credits add up to the sampled empty-coalition utilities', () => {
  const { valuer } = run(() => sgd({ lr: 0.3, momentum: 0.9 }), 5, { validationBatch: 4 });
  const credits = valuer.ledger.all().reduce((sum, e) => sum + e.momentumCredit, 0);
  const empty = valuer.trace.reduce((sum, row) => sum + row.emptyUtility, 0);
  assert.ok(Math.abs(credits - empty) < 1e-10 * Math.abs(empty), `${credits} vs ${empty}`);
});

test('a long run settles credits step by step, dropping only what lies beyond the horizon', () => {
  const rho = 0.5; // horizon ⌈log 1e-6 / log 0.5⌉ = 20 steps: 70 steps settle mid-run several times
  const steps = 70;
  const { valuer, replay } = run(() => sgd({ lr: 0.2, momentum: rho }), steps);
  let worst = 0;
  for (let s = 0; s < steps; s++)
    for (let i = 0; i < N; i++) {
      let credit = 0;
      let scale = 0;
      for (let t = s + 1; t < steps; t++) {
        const c =
          replay[t].plan.lr *
          rho ** (t - s) *
          replay[s].plan.momentum!.sourceScale *
          dot(replay[t].gV, replay[s].gTrain[i]);
        credit += c;
        scale += Math.abs(c);
      }
      const got = valuer.ledger.get(`${s}-${i}`)!.momentumCredit;
      worst = Math.max(worst, Math.abs(got - credit) / Math.max(scale, 1e-300));
    }
  assert.ok(worst < 10 * MOMENTUM_CREDIT_TOLERANCE, `worst relative truncation ${worst}`);
});

test('momentum credit refuses checkpoints while steps wait for their credit', () => {
  const { valuer } = run(() => sgd({ lr: 0.3, momentum: 0.9 }), 1);
  assert.doesNotThrow(() => valuer.state()); // finish() settled everything
  const pending = run(() => sgd({ lr: 0.3, momentum: 0.9 }), 2);
  // A fresh step waits again.
  const model = pending.valuer.model;
  const batch = randomBatch(ARCH, N, 500);
  const pass = model.forward(batch.input, batch.targets);
  model.backward(pass);
  const gradSum = allocFloat('float64', model.parameterCount);
  model.addGrad(pass, 1, gradSum);
  const plan = sgd({ lr: 0.3, momentum: 0.9 }).plan(2, 3, model.params, gradSum, N);
  pending.valuer.valueStep({
    pass,
    gradSum,
    plan,
    trainLoss: 0,
    ids: ['x', 'y'],
    groups: [undefined, undefined],
  });
  assert.throws(() => pending.valuer.state(), /checkpoint cannot hold/);
});

test('a settled step is replayed exactly: its Dropout masks, weights and batch as the step had them', () => {
  // Dropout's masks depend on the step, so a replay that lost the pass's mode (or its weights, or a
  // batch refilled since) would give other gradients. Reference: the credit from each step's own
  // pass, kept, against R_s = Σ_{t>s} ρ^{t−s} η_t g_V(w_t) built from the steps' plans.
  const rho = 0.9;
  const steps = 4;
  const n = 3;
  const model = new Sequential(
    [new Linear(5, 8), ReLU(), new Dropout(0.5, { seed: 3 }), new Linear(8, 3)],
    new SoftmaxCrossEntropy(),
    { input: { tokens: 1, width: 5 }, dtype: 'float64', seed: 11 },
  );
  const arch = ARCHITECTURES[0];
  const validation = randomBatch(arch, 6, 70);
  const valuer = new InRunValuer(model, {
    validation: asDataset(arch, validation, 'validation'),
    momentumCredit: true,
    signals: false,
  });
  const optimizer = sgd({ lr: 0.2, momentum: rho });
  const kept: { pass: Pass; params: Float64Array; carry: Float64Array; sourceScale: number }[] = [];
  // One batch array, refilled every step, as the trainer's is.
  const batch = randomBatch(arch, n, 100);
  for (let t = 0; t < steps; t++) {
    batch.input.data.set(randomBatch(arch, n, 100 + t).input.data);
    const pass = model.forward(batch.input, batch.targets, model.params, { training: true, step: t });
    model.backward(pass);
    const gradSum = allocFloat('float64', model.parameterCount);
    model.addGrad(pass, 1, gradSum);
    const plan = optimizer.plan(t, steps, model.params, gradSum, n);
    const { carryScale, sourceScale } = plan.momentum!;
    const carry = Float64Array.from(
      meanGradient(model, validation, model.params),
      (g) => carryScale * plan.lr * g,
    );
    // The reference keeps its own copy of the pass (fresh arrays, never reused).
    const input = { ...batch.input, data: batch.input.data.slice() };
    const own = model.forward(input, batch.targets.slice(), model.params, { training: true, step: t });
    model.backward(own);
    kept.push({ pass: own, params: Float64Array.from(model.params), carry, sourceScale });
    const ids = Array.from({ length: n }, (_, i) => `${t}-${i}`);
    valuer.valueStep({ pass, gradSum, plan, trainLoss: 0, ids, groups: ids.map(() => undefined) });
    optimizer.apply(plan, model.params, gradSum);
  }
  valuer.finish();
  const masks = new Set(kept.map((k) => String((k.pass.tapes[2] as { mask?: Float64Array }).mask)));
  assert.equal(masks.size, steps, 'each step drew its own masks');
  for (let s = 0; s < steps - 1; s++) {
    const R = new Float64Array(model.parameterCount);
    for (let t = s + 1; t < steps; t++)
      for (let e = 0; e < R.length; e++) R[e] += rho ** (t - s) * kept[t].carry[e];
    const expected = new Float64Array(n);
    model.params.set(kept[s].params);
    model.ghostDot(kept[s].pass, [R], [expected]);
    for (let i = 0; i < n; i++) {
      const got = valuer.ledger.get(`${s}-${i}`)!.momentumCredit;
      const want = kept[s].sourceScale * expected[i];
      assert.ok(
        Math.abs(got - want) <= 1e-12 * Math.max(1e-6, Math.abs(want)),
        `${s}-${i}: ${got} vs ${want}`,
      );
      assert.ok(Math.abs(want) > 0);
    }
  }
});

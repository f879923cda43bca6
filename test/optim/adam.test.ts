import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allocFloat } from '../../src/kernels/index.js';
import type { FloatArray } from '../../src/kernels/types.js';
import type { Sequential } from '../../src/models/sequential.js';
import { type Adam, type AdamOptions, adam, adamw, subsetGradSumFromPass } from '../../src/optim/adam.js';
import { learningRate, type Schedule } from '../../src/optim/schedule.js';
import { sgd } from '../../src/optim/sgd.js';
import { applyK, type Optimizer, type StepPlan } from '../../src/optim/types.js';
import { InRunValuer } from '../../src/shapley/valuer.js';
import { InrunError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { ARCHITECTURES, asDataset, buildModel, randomBatch, randomVector } from '../helpers/fixtures.js';
import { nativeSet } from '../kernels/kernel-sets.js';
import {
  add,
  denseHessian,
  dot,
  type Examples,
  matVec,
  perExampleGradients,
  relativeError,
  shapleyByEnumeration,
} from '../reference/brute-force.js';

const ARCH = ARCHITECTURES[0]; // linear → tanh → linear, softmax cross-entropy

// ---------------------------------------------------------------------------------------------
// A naive reference, written from the PyTorch documentation's algorithm box.

interface ReferenceOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  decoupled: boolean;
  clipNorm: number | null;
  schedule: Schedule;
}

/** Runs the steps one after another; `grads[s]` is the already-reduced (mean or sum) gradient. */
function referenceAdam(opts: ReferenceOptions, w0: Float64Array, grads: Float64Array[]): Float64Array[] {
  const P = w0.length;
  let w = Array.from(w0);
  let m = new Array<number>(P).fill(0);
  let v = new Array<number>(P).fill(0);
  const history: Float64Array[] = [];
  grads.forEach((grad, s) => {
    const t = s + 1;
    const lr = learningRate(opts.lr, opts.schedule, s, grads.length);
    let g = Array.from(grad);
    if (opts.clipNorm !== null) {
      const norm = Math.sqrt(g.reduce((a, x) => a + x * x, 0));
      const coef = Math.min(1, opts.clipNorm / (norm + 1e-6));
      g = g.map((x) => x * coef);
    }
    if (!opts.decoupled && opts.weightDecay > 0) g = g.map((x, e) => x + opts.weightDecay * w[e]);
    if (opts.decoupled) w = w.map((x) => x - lr * opts.weightDecay * x);
    m = m.map((x, e) => opts.betas[0] * x + (1 - opts.betas[0]) * g[e]);
    v = v.map((x, e) => opts.betas[1] * x + (1 - opts.betas[1]) * g[e] * g[e]);
    const mHat = m.map((x) => x / (1 - opts.betas[0] ** t));
    const vHat = v.map((x) => x / (1 - opts.betas[1] ** t));
    w = w.map((x, e) => x - (lr * mHat[e]) / (Math.sqrt(vHat[e]) + opts.eps));
    history.push(Float64Array.from(w));
  });
  return history;
}

function referenceOptions(options: AdamOptions, decoupled: boolean): ReferenceOptions {
  return {
    lr: options.lr,
    betas: options.betas ?? [0.9, 0.999],
    eps: options.eps ?? 1e-8,
    weightDecay: options.weightDecay ?? (decoupled ? 0.01 : 0),
    decoupled,
    clipNorm: options.clipNorm ?? null,
    schedule: options.schedule ?? { kind: 'constant' },
  };
}

const P_TOY = 13;
const STEPS = 7;
const BATCH = 4;

/** Per-step summed gradients of varied size (so the clip binds on some steps only). */
function toyGradients(seed: number): Float64Array[] {
  return Array.from({ length: STEPS }, (_, s) =>
    randomVector(P_TOY, seed + s).map((x) => x * (s % 3 === 0 ? 3 : 0.4)),
  );
}

const CASES: [string, 'adam' | 'adamw', AdamOptions][] = [
  ['adam, defaults', 'adam', { lr: 0.01 }],
  [
    'adam, coupled L2, step schedule',
    'adam',
    { lr: 0.02, weightDecay: 0.1, schedule: { kind: 'step', every: 2, gamma: 0.5 } },
  ],
  ['adam, clipping that binds on some steps', 'adam', { lr: 0.01, clipNorm: 0.5, weightDecay: 0.05 }],
  ['adam, clipping that never binds, sum reduction', 'adam', { lr: 0.01, clipNorm: 1e6, reduction: 'sum' }],
  ['adamw, default decay', 'adamw', { lr: 0.01 }],
  [
    'adamw, clip binds, cosine schedule, own betas and eps',
    'adamw',
    {
      lr: 0.05,
      weightDecay: 0.2,
      clipNorm: 0.5,
      betas: [0.8, 0.95],
      eps: 1e-6,
      schedule: { kind: 'cosine', warmupSteps: 2, minFactor: 0.1 },
    },
  ],
];

function make(variant: 'adam' | 'adamw', options: AdamOptions): Adam {
  return variant === 'adam' ? adam(options) : adamw(options);
}

describe('matches a naive PyTorch-style reference', () => {
  for (const [name, variant, options] of CASES) {
    test(name, () => {
      const w0 = randomVector(P_TOY, 1);
      const grads = toyGradients(100);
      const reduce = options.reduction === 'sum' ? 1 : 1 / BATCH;
      const expected = referenceAdam(
        referenceOptions(options, variant === 'adamw'),
        w0,
        grads.map((g) => g.map((x) => x * reduce)),
      );
      const opt = make(variant, options);
      const w = w0.slice();
      // The same steps taken from `scale` alone (how a step nobody values is taken).
      const scaled = make(variant, options);
      const ws = w0.slice();
      const clipFactors: number[] = [];
      grads.forEach((g, s) => {
        const plan = opt.plan(s, STEPS, w, g, BATCH);
        const scale = scaled.scale(s, STEPS, ws, g, BATCH);
        const { step, lr, kScale, clipFactor } = plan;
        assert.deepEqual(scale, { step, lr, kScale, clipFactor });
        clipFactors.push(plan.clipFactor);
        opt.apply(plan, w, g);
        scaled.apply(scale, ws, g);
        const err = relativeError(w, expected[s]);
        assert.ok(err <= 1e-12, `step ${s}: relative error ${err}`);
        assert.deepEqual(ws, w, `step ${s}: the scaled step differs from the planned one`);
      });
      if (options.clipNorm === 0.5) {
        assert.ok(
          clipFactors.some((k) => k < 0.5),
          'the clip must bind on some step',
        );
        assert.ok(
          clipFactors.some((k) => k === 1),
          'and not on others',
        );
      } else if (options.clipNorm !== undefined) {
        assert.ok(clipFactors.every((k) => k === 1));
      }
      assert.equal(opt.state().step[0], STEPS);
    });
  }

  test('float32 parameters keep float32 state and stay close to the float64 run', () => {
    const w0 = randomVector(P_TOY, 2);
    const grads = toyGradients(200);
    const run = (w: FloatArray) => {
      const opt = adamw({ lr: 0.01 });
      grads.forEach((g, s) => {
        const gs = w instanceof Float32Array ? Float32Array.from(g) : g;
        opt.apply(opt.plan(s, STEPS, w, gs, BATCH), w, gs);
      });
      return opt;
    };
    const w64 = w0.slice();
    const w32 = Float32Array.from(w0);
    run(w64);
    const opt32 = run(w32);
    assert.ok(opt32.state().m instanceof Float32Array);
    assert.ok(relativeError(w32, w64) < 1e-5);
  });

  test('a checkpoint (m, v, step) resumes bit-identically', () => {
    const w0 = randomVector(P_TOY, 3);
    const grads = toyGradients(300);
    const options: AdamOptions = { lr: 0.03, weightDecay: 0.1, clipNorm: 0.5 };
    const straight = adam(options);
    const w = w0.slice();
    grads.forEach((g, s) => {
      straight.apply(straight.plan(s, STEPS, w, g, BATCH), w, g);
    });

    const first = adam(options);
    const w2 = w0.slice();
    grads.slice(0, 3).forEach((g, s) => {
      first.apply(first.plan(s, STEPS, w2, g, BATCH), w2, g);
    });
    const saved = Object.fromEntries(Object.entries(first.state()).map(([k, a]) => [k, a.slice()]));
    assert.deepEqual(Object.keys(saved).sort(), ['m', 'step', 'v']);
    assert.deepEqual(Array.from(saved.step), [3]);
    const resumed = adam(options);
    resumed.loadState(saved);
    grads.slice(3).forEach((g, k) => {
      resumed.apply(resumed.plan(3 + k, STEPS, w2, g, BATCH), w2, g);
    });
    assert.deepEqual(Array.from(w2), Array.from(w));

    const fresh = adam(options);
    assert.deepEqual(fresh.state(), {});
    fresh.loadState({});
    assert.throws(() => fresh.loadState({ m: saved.m }), /needs all of m, v and step/);
  });
});

// ---------------------------------------------------------------------------------------------
// The linearisation.

/** −η(c + K g) for a plan. */
function linearStep(plan: StepPlan, g: ArrayLike<number>): Float64Array {
  return Float64Array.from(
    { length: g.length },
    (_, e) =>
      -plan.lr * ((plan.c ? plan.c[e] : 0) + plan.kScale * (plan.kDiagonal ? plan.kDiagonal[e] : 1) * g[e]),
  );
}

describe('plans made with the native kernels', () => {
  for (const [name, variant, options] of CASES) {
    for (const dtype of ['float32', 'float64'] as const) {
      test(`${name} (${dtype}): c, K and K·x bit-identical with the portable loops`, (t) => {
        const native = nativeSet.kernels;
        if (!native) {
          t.skip(`native kernels unavailable: ${nativeSet.missing}`);
          return;
        }
        const cast = (a: Float64Array) => (dtype === 'float32' ? Float32Array.from(a) : a.slice());
        const bits = (a: FloatArray | null) => (a ? Buffer.from(a.buffer, a.byteOffset, a.byteLength) : null);
        const w0 = randomVector(P_TOY, 3);
        const [mine, theirs] = [make(variant, options), make(variant, options)];
        const [wMine, wTheirs] = [cast(w0), cast(w0)];
        toyGradients(300).forEach((g64, s) => {
          const g = cast(g64);
          const plan = mine.plan(s, STEPS, wMine, g, BATCH, native);
          const ref = theirs.plan(s, STEPS, wTheirs, g, BATCH);
          assert.deepEqual(bits(plan.c), bits(ref.c), `step ${s}: c`);
          assert.deepEqual(bits(plan.kDiagonal), bits(ref.kDiagonal), `step ${s}: K's diagonal`);
          const kx = applyK(plan, g, allocFloat(dtype, P_TOY), native);
          assert.deepEqual(bits(kx), bits(applyK(ref, g, allocFloat(dtype, P_TOY))), `step ${s}: K·g`);
          mine.apply(plan, wMine, g, native);
          theirs.apply(ref, wTheirs, g);
        });
        assert.deepEqual(bits(wMine), bits(wTheirs));
      });
    }
  }
});

describe('full-batch linearised step equals the real Adam step', () => {
  for (const [name, variant, options] of CASES) {
    test(name, () => {
      const w = randomVector(P_TOY, 4);
      const grads = toyGradients(400);
      const opt = make(variant, options);
      let worst = 0;
      grads.forEach((g, s) => {
        const plan = opt.plan(s, STEPS, w, g, BATCH);
        assert.ok(plan.kDiagonal !== null);
        if (s > 0 || (options.weightDecay ?? (variant === 'adamw' ? 0.01 : 0)) > 0)
          assert.ok(plan.c !== null);
        const lin = linearStep(plan, g);
        const before = w.slice();
        opt.apply(plan, w, g);
        const real = Float64Array.from(w, (x, e) => x - before[e]);
        worst = Math.max(worst, relativeError(lin, real));
      });
      assert.ok(worst <= 1e-12, `worst relative gap ${worst}`);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Values under Adam, against exact subset enumeration.

function gradOf(model: Sequential, batch: Examples) {
  const pass = model.forward(batch.input, batch.targets);
  model.backward(pass);
  const gradSum = allocFloat(model.dtype, model.parameterCount);
  model.addGrad(pass, 1, gradSum);
  return { pass, gradSum };
}

/** A few optimizer steps on other batches so m and v are not zero. */
function warmUp(model: Sequential, opt: Optimizer, steps: number, seed: number) {
  for (let s = 0; s < steps; s++) {
    const batch = randomBatch(ARCH, 6, seed + s);
    const { gradSum } = gradOf(model, batch);
    opt.apply(opt.plan(s, 10, model.params, gradSum, 6), model.params, gradSum);
  }
}

function valueWith(model: Sequential, plan: StepPlan, train: Examples, validation: Examples) {
  const valuer = new InRunValuer(model, { validation: asDataset(ARCH, validation, 'validation'), order: 2 });
  const { pass, gradSum } = gradOf(model, train);
  const ids = Array.from({ length: train.input.n }, (_, i) => `ex${i}`);
  const values = valuer.valueStep({
    pass,
    gradSum,
    plan,
    trainLoss: 0,
    ids,
    groups: ids.map(() => undefined),
  });
  return { values, valuer, pass, gradSum };
}

const VALUE_CASES: [string, 'adam' | 'adamw', AdamOptions][] = [
  ['adam with coupled L2', 'adam', { lr: 0.02, weightDecay: 0.05 }],
  ['adamw, clipping that binds', 'adamw', { lr: 0.02, weightDecay: 0.1, clipNorm: 0.05 }],
  [
    'adam, sum reduction, cosine schedule',
    'adam',
    { lr: 0.01, reduction: 'sum', schedule: { kind: 'cosine' } },
  ],
];

describe('values under Adam are exact Shapley values of the linearised step', () => {
  for (const [name, variant, options] of VALUE_CASES) {
    test(name, () => {
      const model = buildModel(ARCH, 'float64', 3);
      const opt = make(variant, options);
      warmUp(model, opt, 3, 500);
      const train = randomBatch(ARCH, 7, 21);
      const validation = randomBatch(ARCH, 5, 22);
      const { gradSum } = gradOf(model, train);
      const plan = opt.plan(3, 10, model.params, gradSum, 7);
      if (options.clipNorm) assert.ok(plan.clipFactor < 0.5, 'the clip must bind');
      assert.ok(plan.c !== null && plan.kDiagonal !== null);
      const { values, valuer } = valueWith(model, plan, train, validation);

      const grads = perExampleGradients(model, train);
      const gV = perExampleGradients(model, validation).reduce(
        (acc, g) => add(acc, g, 1 / 5),
        new Float64Array(model.parameterCount),
      );
      const H = denseHessian(model, validation);
      const delta = (mask: number) => {
        const gS = new Float64Array(model.parameterCount);
        grads.forEach((g, i) => {
          if (mask & (1 << i)) for (let e = 0; e < gS.length; e++) gS[e] += g[e];
        });
        return linearStep(plan, gS);
      };
      const u1 = (mask: number) => -dot(gV, delta(mask));
      const u2 = (mask: number) => {
        const d = delta(mask);
        return -dot(gV, d) - 0.5 * dot(d, matVec(H, d));
      };
      const expected1 = shapleyByEnumeration(7, u1);
      const expected2 = shapleyByEnumeration(7, u2);
      const err1 = relativeError(values.firstOrder, expected1);
      const err2 = relativeError(values.secondOrder!, expected2);
      assert.ok(err1 < 1e-9, `first order ${err1}`);
      assert.ok(err2 < 1e-6, `second order ${err2}`);

      // Efficiency against the step Adam really takes: Σφ = U(B) − U(∅) with Δ(B) the real step.
      const before = model.params.slice();
      opt.apply(plan, model.params, gradSum);
      const realStep = Float64Array.from(model.params, (x, e) => x - before[e]);
      const empty = delta(0);
      const sum = (a: Float64Array) => a.reduce((x, y) => x + y, 0);
      const first = -dot(gV, realStep) + dot(gV, empty);
      const second = first - 0.5 * (dot(realStep, matVec(H, realStep)) - dot(empty, matVec(H, empty)));
      assert.ok(
        Math.abs(sum(values.firstOrder) - first) <= 1e-10 * Math.abs(first),
        'first-order efficiency',
      );
      assert.ok(
        Math.abs(sum(values.secondOrder!) - second) <= 1e-6 * Math.abs(second),
        'second-order efficiency',
      );
      assert.ok(Math.abs(valuer.trace[0].efficiencyResidual) < 1e-14);
    });
  }
});

describe('reduction to SGD', () => {
  const PAIRS: [string, 'adam' | 'adamw', AdamOptions, Parameters<typeof sgd>[0]][] = [
    [
      'adam (β1 = 0, P = 1) with coupled L2 = SGD with weightDecay',
      'adam',
      { lr: 0.3, betas: [0, 0.999], weightDecay: 0.05, clipNorm: 0.05 },
      { lr: 0.3, weightDecay: 0.05, clipNorm: 0.05 },
    ],
    [
      'adamw (β1 = 0, P = 1) = SGD with decoupledWeightDecay, sum reduction',
      'adamw',
      { lr: 0.05, betas: [0, 0.9], weightDecay: 0.1, reduction: 'sum' },
      { lr: 0.05, decoupledWeightDecay: 0.1, reduction: 'sum' },
    ],
  ];
  for (const [name, variant, adamOptions, sgdOptions] of PAIRS) {
    test(name, () => {
      const model = buildModel(ARCH, 'float64', 4);
      const opt = make(variant, adamOptions);
      warmUp(model, opt, 2, 600); // m exists, but β1 = 0 must ignore it
      const train = randomBatch(ARCH, 7, 31);
      const validation = randomBatch(ARCH, 5, 32);
      const { gradSum } = gradOf(model, train);
      const ones = new Float64Array(model.parameterCount).fill(1);
      const adamPlan = opt.planWithPreconditioner(2, 10, model.params, gradSum, 7, ones);
      const sgdPlan = sgd(sgdOptions).plan(2, 10, model.params, gradSum, 7);
      assert.equal(adamPlan.lr, sgdPlan.lr);
      assert.equal(adamPlan.clipFactor, sgdPlan.clipFactor);
      assert.ok(relativeError(adamPlan.c!, sgdPlan.c!) < 1e-15);
      const kAdam = Float64Array.from(adamPlan.kDiagonal!, (d) => adamPlan.kScale * d);
      assert.ok(kAdam.every((k) => Math.abs(k - sgdPlan.kScale) <= 1e-15 * sgdPlan.kScale));

      const a = valueWith(model, adamPlan, train, validation).values;
      const s = valueWith(model, sgdPlan, train, validation).values;
      assert.ok(relativeError(a.firstOrder, s.firstOrder) < 1e-12, 'first order');
      assert.ok(relativeError(a.secondOrder!, s.secondOrder!) < 1e-12, 'second order');

      // The real preconditioner differs, so the real plan does not reduce to SGD.
      const real = opt.plan(2, 10, model.params, gradSum, 7);
      assert.ok(relativeError(real.kDiagonal!, adamPlan.kDiagonal!) > 0.1);
    });
  }
});

describe('linearisation gap for sub-batches', () => {
  test('equals a direct computation of the real sub-batch steps', () => {
    const model = buildModel(ARCH, 'float64', 5);
    const opt = adam({ lr: 0.02, weightDecay: 0.05, clipNorm: 0.05 });
    warmUp(model, opt, 3, 700);
    const train = randomBatch(ARCH, 8, 41);
    const { pass, gradSum } = gradOf(model, train);
    const plan = opt.plan(3, 10, model.params, gradSum, 8);
    const savedState = Object.fromEntries(Object.entries(opt.state()).map(([k, a]) => [k, a.slice()]));
    const seen: Int32Array[] = [];
    const fromPass = subsetGradSumFromPass(model, pass);
    const gap = opt.linearisationGap(
      plan,
      model.params,
      gradSum,
      8,
      new Rng(9),
      (members, out) => {
        seen.push(members.slice());
        fromPass(members, out);
      },
      3,
    );
    assert.equal(seen.length, 3);
    const grads = perExampleGradients(model, train);
    let total = 0;
    for (const members of seen) {
      assert.equal(members.length, 4);
      const inS = new Set(members);
      for (const side of [true, false]) {
        const gS = new Float64Array(model.parameterCount);
        grads.forEach((g, i) => {
          if (inS.has(i) === side) for (let e = 0; e < gS.length; e++) gS[e] += g[e];
        });
        // The real Adam step from the same state with gradient κ/|B|·g_S: a clone applies it.
        const clone = adam({ lr: 0.02, weightDecay: 0.05, clipNorm: 0.05 });
        clone.loadState(savedState);
        const w = model.params.slice();
        clone.apply({ ...plan }, w, gS);
        const real = Float64Array.from(w, (x, e) => x - model.params[e]);
        total += relativeError(linearStep(plan, gS), real);
      }
    }
    const expected = total / 6;
    assert.ok(Math.abs(gap - expected) <= 1e-12 * expected, `gap ${gap} vs ${expected}`);
    assert.ok(gap > 1e-3, 'half-batches really do change Adam’s preconditioner');
    // The optimizer is untouched: the step it then takes is the planned one.
    assert.deepEqual(Array.from(opt.state().step), [3]);
    opt.apply(plan, model.params, gradSum);
  });

  test('vanishes when ε dominates √v̂ (the preconditioner is then constant)', () => {
    const model = buildModel(ARCH, 'float64', 6);
    const train = randomBatch(ARCH, 6, 51);
    const { pass, gradSum } = gradOf(model, train);
    const gapFor = (eps: number) => {
      const opt = adamw({ lr: 0.01, eps });
      const plan = opt.plan(0, 1, model.params, gradSum, 6);
      return opt.linearisationGap(
        plan,
        model.params,
        gradSum,
        6,
        new Rng(1),
        subsetGradSumFromPass(model, pass),
      );
    };
    const usual = gapFor(1e-8);
    const flat = gapFor(1e4);
    assert.ok(usual > 0.05, `usual gap ${usual}`);
    assert.ok(flat < 1e-6, `flat gap ${flat}`);
  });

  test('a stale plan is refused', () => {
    const w = randomVector(P_TOY, 7);
    const g = randomVector(P_TOY, 8);
    const opt = adam({ lr: 0.01 });
    const plan = opt.plan(0, 2, w, g, 1);
    opt.apply(plan, w, g);
    assert.throws(() => opt.apply(plan, w, g), /plan was made for Adam step 1.*call plan\(\) again/);
    const scale = opt.scale(1, 2, w, g, 1);
    opt.apply(scale, w, g);
    assert.throws(() => opt.apply(scale, w, g), /plan was made for Adam step 2/);
    assert.throws(
      () => opt.linearisationGap(plan, w, g, 1, new Rng(1), () => {}),
      /linearisationGap: this plan was made for Adam step 1/,
    );
  });
});

describe('bad options', () => {
  const expectError = (make: () => unknown, pattern: RegExp) =>
    assert.throws(make, (err: unknown) => {
      assert.ok(err instanceof InrunError, `expected an InrunError, got ${err}`);
      assert.match(err.message, pattern);
      return true;
    });

  test('betas outside [0, 1)', () => {
    expectError(() => adam({ lr: 0.1, betas: [1, 0.999] }), /adam\.betas\[0\] must be in \[0, 1\), got 1/);
    expectError(() => adam({ lr: 0.1, betas: [0.9, -0.1] }), /adam\.betas\[1\] must be in \[0, 1\]/);
    expectError(() => adamw({ lr: 0.1, betas: [0.9, 1.5] }), /adamw\.betas\[1\]/);
    expectError(
      () => adam({ lr: 0.1, betas: [0.9] as unknown as [number, number] }),
      /adam\.betas must be a pair/,
    );
    expectError(
      () => adam({ lr: 0.1, betas: [0.9, Number.NaN] }),
      /adam\.betas\[1\] must be a finite number/,
    );
  });

  test('negative eps, lr, weight decay, clip norm', () => {
    expectError(() => adam({ lr: 0.1, eps: -1e-8 }), /adam\.eps must be ≥ 0/);
    expectError(() => adamw({ lr: -0.1 }), /adamw\.lr must be ≥ 0/);
    expectError(() => adamw({ lr: 0.1, weightDecay: -0.01 }), /adamw\.weightDecay must be ≥ 0/);
    expectError(() => adam({ lr: 0.1, clipNorm: -1 }), /adam\.clipNorm must be ≥ 0/);
    expectError(() => adam({} as AdamOptions), /adam\.lr must be a finite number, got undefined/);
  });

  test('unknown keys, bad reduction, bad schedule', () => {
    expectError(
      () => adam({ lr: 0.1, momentum: 0.9 } as unknown as AdamOptions),
      /adam: unknown option "momentum"/,
    );
    expectError(
      () => adamw({ lr: 0.1, beta1: 0.9 } as unknown as AdamOptions),
      /adamw: unknown option "beta1"/,
    );
    expectError(
      () => adam({ lr: 0.1, reduction: 'avg' as 'mean' }),
      /adam\.reduction must be "mean" or "sum", got "avg"/,
    );
    expectError(() => adam({ lr: 0.1, schedule: { kind: 'step', every: 0, gamma: 0.5 } }), /schedule\.every/);
  });

  test('mismatched state or gradient length', () => {
    const opt = adam({ lr: 0.1 });
    opt.loadState({ m: new Float64Array(3), v: new Float64Array(3), step: Float64Array.of(2) });
    expectError(() => opt.plan(0, 1, new Float64Array(4), new Float64Array(4), 1), /state has 3 entries/);
    expectError(
      () => opt.loadState({ m: new Float64Array(3), v: new Float64Array(3), step: Float64Array.of(0.5) }),
      /step must hold one positive integer/,
    );
    expectError(
      () => adam({ lr: 0.1 }).plan(0, 1, new Float64Array(4), new Float64Array(5), 1),
      /gradient has 5 entries/,
    );
  });
});

// Weighted validation sets and per-validation columns (groups of validation examples, such as the
// sequences of one query document): every closed-form value against Shapley values by subset
// enumeration of the matching Taylor utility, built from brute-force per-example gradients and
// finite-difference Hessians.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Dataset } from '../../src/data/dataset.js';
import { allocFloat } from '../../src/kernels/index.js';
import { IGNORE_INDEX } from '../../src/losses/softmax-cross-entropy.js';
import { gpt } from '../../src/models/gpt.js';
import type { Sequential } from '../../src/models/sequential.js';
import { type SgdOptions, sgd } from '../../src/optim/sgd.js';
import { InRunValuer, type ValuerOptions } from '../../src/shapley/valuer.js';
import { type TextSequence, TextSequenceDataset } from '../../src/text/sequences.js';
import { Rng } from '../../src/util/rng.js';
import { ARCHITECTURES, asDataset, buildModel, randomBatch } from '../helpers/fixtures.js';
import {
  add,
  denseHessian,
  dot,
  type Examples,
  matVec,
  perExampleGradients,
  relativeError,
  shapleyByEnumeration,
  slice,
} from '../reference/brute-force.js';

const N_TRAIN = 6;
const N_VALIDATION = 5;
const WEIGHTS = Float64Array.from([1, 2.5, 0.5, 3, 1.5]);
/** Column of each validation example: not contiguous, so the runs logic is exercised. */
const COLUMNS = Int32Array.from([0, 1, 0, 2, 1]);
const OPTIMIZER: SgdOptions = { lr: 0.3, momentum: 0.9, weightDecay: 0.01 };

interface Case {
  name: string;
  model: () => Sequential;
  train: Dataset;
  validation: Dataset;
}

const dense = ARCHITECTURES[0];
const TINY_GPT = { vocabSize: 7, context: 4, layers: 1, heads: 2, width: 8 };

/** Sequences of random tokens; the k-th of each set has its last `k % 3` targets masked (shorter tails). */
function randomSequences(count: number, seed: number, prefix: string): TextSequence[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, k) => {
    const tokens = Int32Array.from({ length: TINY_GPT.context + 1 }, () => rng.int(TINY_GPT.vocabSize));
    const targets = tokens.slice(1);
    targets.fill(IGNORE_INDEX, TINY_GPT.context - (k % 3));
    return {
      id: `${prefix}${k}#0`,
      documentId: `${prefix}${k}`,
      source: 'random',
      index: 0,
      offset: 0,
      tokens,
      inputs: tokens.slice(0, -1),
      targets,
      length: targets.filter((t) => t !== IGNORE_INDEX).length,
    };
  });
}

const CASES: Case[] = [
  {
    name: dense.name,
    model: () => buildModel(dense, 'float64', 5),
    train: asDataset(dense, randomBatch(dense, N_TRAIN, 41), 'train'),
    validation: asDataset(dense, randomBatch(dense, N_VALIDATION, 42), 'validation'),
  },
  {
    name: 'tiny GPT, validation sequences of different lengths',
    model: () => gpt({ ...TINY_GPT, dtype: 'float64', seed: 5 }),
    train: new TextSequenceDataset('train', randomSequences(N_TRAIN, 41, 't'), TINY_GPT.context),
    validation: new TextSequenceDataset(
      'validation',
      randomSequences(N_VALIDATION, 42, 'v'),
      TINY_GPT.context,
    ),
  },
];

function everything(data: Dataset): Examples {
  return data.batch(
    Array.from({ length: data.size }, (_, i) => i),
    'float64',
  );
}

function valueOneStep(c: Case, valuation: Partial<ValuerOptions>) {
  const model = c.model();
  const train = everything(c.train);
  const validation = everything(c.validation);
  const opt = sgd(OPTIMIZER);
  const gradOf = (batch: Examples) => {
    const pass = model.forward(batch.input, batch.targets);
    model.backward(pass);
    const gradSum = allocFloat(model.dtype, model.parameterCount);
    model.addGrad(pass, 1, gradSum);
    return { pass, gradSum };
  };
  // A first step on the validation examples gives momentum a buffer (c_t ≠ 0).
  const first = gradOf(validation);
  opt.apply(opt.plan(0, 10, model.params, first.gradSum, N_VALIDATION), model.params, first.gradSum);
  const valuer = new InRunValuer(model, { validation: c.validation, order: 2, ...valuation });
  const { pass, gradSum } = gradOf(train);
  const plan = opt.plan(1, 10, model.params, gradSum, N_TRAIN);
  const ids = Array.from({ length: N_TRAIN }, (_, i) => `t${i}`);
  const values = valuer.valueStep({
    pass,
    gradSum,
    plan,
    trainLoss: 0,
    ids,
    groups: ids.map(() => undefined),
  });
  return { model, train, validation, plan, values, valuer };
}

/**
 * Exact Shapley values, first and second order, of the weighted validation loss restricted to the
 * validation examples `members`: U(S) = −Σ_{j∈members} ω_j (g_jᵀδ(S) + ½ δ(S)ᵀH_j δ(S)) / |V|, with ω
 * the weights scaled to mean 1 and δ(S) the linearised step of the coalition S.
 */
function enumerated(run: ReturnType<typeof valueOneStep>, members: number[], weights: Float64Array | null) {
  const { model, train, validation, plan } = run;
  const P = model.parameterCount;
  const total = weights ? weights.reduce((a, b) => a + b, 0) : N_VALIDATION;
  const omega = (j: number) => (weights ? (weights[j] * N_VALIDATION) / total : 1);
  const trainGrads = perExampleGradients(model, train);
  const validationGrads = perExampleGradients(model, validation);
  let g: Float64Array = new Float64Array(P);
  const hessians = members.map((j) => ({ j, H: denseHessian(model, slice(validation, j)) }));
  for (const j of members) g = add(g, validationGrads[j], omega(j) / N_VALIDATION);
  const delta = (mask: number) => {
    const d = new Float64Array(P);
    trainGrads.forEach((gi, i) => {
      if (mask & (1 << i)) for (let e = 0; e < P; e++) d[e] += plan.kScale * gi[e];
    });
    for (let e = 0; e < P; e++) d[e] = -plan.lr * ((plan.c ? plan.c[e] : 0) + d[e]);
    return d;
  };
  const curvature = (d: Float64Array) =>
    hessians.reduce((acc, { j, H }) => acc + (omega(j) / N_VALIDATION) * dot(d, matVec(H, d)), 0);
  return {
    first: shapleyByEnumeration(N_TRAIN, (mask) => -dot(g, delta(mask))),
    second: shapleyByEnumeration(N_TRAIN, (mask) => {
      const d = delta(mask);
      return -dot(g, d) - 0.5 * curvature(d);
    }),
  };
}

function column(matrix: Float64Array, q: number, count: number): Float64Array {
  return Float64Array.from({ length: N_TRAIN }, (_, i) => matrix[i * count + q]);
}

for (const c of CASES) {
  describe(`validation weights and columns: ${c.name}`, () => {
    test('weighted validation: values are the Shapley values of the weighted loss, and the trace uses it', () => {
      const run = valueOneStep(c, { validationWeights: WEIGHTS });
      const expected = enumerated(run, [0, 1, 2, 3, 4], WEIGHTS);
      assert.ok(relativeError(run.values.firstOrder, expected.first) < 1e-9);
      assert.ok(relativeError(run.values.secondOrder!, expected.second) < 1e-6);
      const losses = Array.from({ length: N_VALIDATION }, (_, j) => {
        const one = slice(run.validation, j);
        return run.model.lossAndGradient(one.input, one.targets).loss;
      });
      const weighted =
        losses.reduce((acc, l, j) => acc + WEIGHTS[j] * l, 0) / WEIGHTS.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(run.valuer.trace[0].validationLossBefore - weighted) < 1e-12);
    });

    for (const route of ['pairwise', 'vector'] as const) {
      test(`per-column values of both orders by enumeration (${route} route)`, () => {
        const run = valueOneStep(c, {
          validationWeights: WEIGHTS,
          perValidation: true,
          validationColumns: COLUMNS,
          perValidationOrder: 2,
          route,
        });
        const { perValidation, perValidationSecond } = run.values;
        for (let q = 0; q < 3; q++) {
          const members = [0, 1, 2, 3, 4].filter((j) => COLUMNS[j] === q);
          const expected = enumerated(run, members, WEIGHTS);
          assert.ok(relativeError(column(perValidation!, q, 3), expected.first) < 1e-9, `column ${q} first`);
          assert.ok(
            relativeError(column(perValidationSecond!, q, 3), expected.second) < 1e-6,
            `column ${q} second`,
          );
        }
        // The columns add up to the values themselves.
        const sums = (matrix: Float64Array) =>
          Float64Array.from(
            { length: N_TRAIN },
            (_, i) => matrix[i * 3] + matrix[i * 3 + 1] + matrix[i * 3 + 2],
          );
        assert.ok(relativeError(sums(perValidation!), run.values.firstOrder) < 1e-12);
        assert.ok(relativeError(sums(perValidationSecond!), run.values.secondOrder!) < 1e-12);
      });
    }
  });
}

describe('the ledger keeps per-column values', () => {
  test('second order, per-step normalised and per stage, accumulated over steps', () => {
    const arch = ARCHITECTURES[0];
    const model = buildModel(arch, 'float64', 7);
    const validation = randomBatch(arch, N_VALIDATION, 52);
    const valuer = new InRunValuer(model, {
      validation: asDataset(arch, validation, 'validation'),
      order: 2,
      perValidation: true,
      validationColumns: COLUMNS,
      perValidationOrder: 2,
      stageStarts: [2],
    });
    const opt = sgd({ lr: 0.2 });
    const steps: { ids: string[]; second: Float64Array }[] = [];
    for (let t = 0; t < 3; t++) {
      const batch = randomBatch(arch, 4, 60 + t);
      const pass = model.forward(batch.input, batch.targets);
      model.backward(pass);
      const gradSum = allocFloat(model.dtype, model.parameterCount);
      model.addGrad(pass, 1, gradSum);
      const plan = opt.plan(t, 3, model.params, gradSum, 4);
      // Example "a" is in every batch; the others once.
      const ids = ['a', `b${t}`, `c${t}`, `d${t}`];
      const values = valuer.valueStep({
        pass,
        gradSum,
        plan,
        trainLoss: 0,
        ids,
        groups: ids.map(() => undefined),
      });
      steps.push({ ids, second: values.perValidationSecond! });
      opt.apply(plan, model.params, gradSum);
    }
    const entry = valuer.ledger.get('a')!;
    for (let q = 0; q < 3; q++) {
      let total = 0;
      let normalized = 0;
      const stages = [0, 0];
      steps.forEach(({ second }, t) => {
        const v = second[q];
        let abs = 0;
        for (let r = 0; r < 4; r++) abs += Math.abs(second[r * 3 + q]);
        total += v;
        normalized += v / abs;
        stages[t < 2 ? 0 : 1] += v;
      });
      assert.ok(Math.abs(entry.perValidationSecond![q] - total) < 1e-15);
      assert.ok(Math.abs(entry.perValidationNormalized![q] - normalized) < 1e-12);
      assert.ok(Math.abs(entry.perValidationStages![q * 2] - stages[0]) < 1e-15);
      assert.ok(Math.abs(entry.perValidationStages![q * 2 + 1] - stages[1]) < 1e-15);
    }
    const sum = entry.perValidationSecond!.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - entry.secondOrder) < 1e-12);
  });

  test('bad columns and weights are refused with the position named', () => {
    const arch = ARCHITECTURES[0];
    const model = buildModel(arch, 'float64', 7);
    const validation = asDataset(arch, randomBatch(arch, 3, 52), 'validation');
    const make = (options: Partial<ValuerOptions>) => () =>
      new InRunValuer(model, { validation, ...options });
    assert.throws(
      make({ perValidation: true, validationColumns: Int32Array.from([0, 2, 0]) }),
      /only 2 of them/,
    );
    assert.throws(
      make({ perValidation: true, validationColumns: Int32Array.from([0, -1, 0]) }),
      /\[1\] is -1/,
    );
    assert.throws(make({ validationColumns: Int32Array.from([0, 0, 0]) }), /needs perValidation/);
    assert.throws(make({ perValidation: true, perValidationOrder: 2 }), /needs order 2/);
    assert.throws(make({ validationWeights: Float64Array.from([1, -1, 1]) }), /validationWeights\[1\]/);
    assert.throws(make({ validationWeights: Float64Array.from([0, 0, 0]) }), /all 0/);
    assert.throws(make({ validationWeights: Float64Array.from([1, 1]) }), /3 weights/);
  });
});

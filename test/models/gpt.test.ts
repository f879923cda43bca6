import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allocFloat } from '../../src/kernels/index.js';
import { IGNORE_INDEX, SoftmaxCrossEntropy } from '../../src/losses/softmax-cross-entropy.js';
import { gpt } from '../../src/models/gpt.js';
import { sgd } from '../../src/optim/sgd.js';
import { InRunValuer } from '../../src/shapley/valuer.js';
import { type TextSequence, TextSequenceDataset } from '../../src/text/sequences.js';
import { InrunError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import type { Architecture } from '../helpers/fixtures.js';
import { checkArchitecture } from '../helpers/layer-checks.js';

// The tiny GPT of the issue: 2 layers, width 16, context 8.
const TINY = { vocabSize: 11, context: 8, layers: 2, heads: 2, width: 16 };

for (const norm of ['layernorm', 'rmsnorm'] as const) {
  const arch: Architecture = {
    name: `tiny GPT (2 layers, width 16, context 8, tied head, ${norm}, padded targets)`,
    tokens: TINY.context,
    inputs: 1,
    vocab: TINY.vocabSize,
    maskFraction: 0.2,
    layers: () => gpt({ ...TINY, norm }).layers,
    loss: () => new SoftmaxCrossEntropy({ tokenReduction: 'mean' }),
    outputs: TINY.vocabSize,
  };
  checkArchitecture(arch);
}

function sequence(id: string, source: string, inputs: number[], targets: number[]): TextSequence {
  const documentId = id.split('#')[0];
  return {
    id,
    documentId,
    source,
    index: Number(id.split('#')[1] ?? 0),
    offset: 0,
    tokens: Int32Array.from([...inputs, targets[targets.length - 1]]),
    inputs: Int32Array.from(inputs),
    targets: Int32Array.from(targets),
    length: targets.filter((t) => t !== IGNORE_INDEX).length,
  };
}

function randomSequences(count: number, seed: number, prefix: string): TextSequence[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, k) => {
    const tokens = Array.from({ length: TINY.context + 1 }, () => rng.int(TINY.vocabSize));
    return sequence(`${prefix}${k}#0`, 'random', tokens.slice(0, -1), tokens.slice(1));
  });
}

/** Values one training batch at the model's current weights (float64). */
function valueBatch(
  train: TextSequence[],
  validation: TextSequence[],
  order: 1 | 2 = 2,
  perValidation = false,
) {
  const model = gpt({ ...TINY, dtype: 'float64', seed: 5 });
  const data = new TextSequenceDataset('train', train, TINY.context);
  const valuer = new InRunValuer(model, {
    validation: new TextSequenceDataset('validation', validation, TINY.context),
    order,
    perValidation,
  });
  const { input, targets } = data.batch(
    train.map((_, i) => i),
    'float64',
  );
  const pass = model.forward(input, targets);
  model.backward(pass);
  const gradSum = allocFloat('float64', model.parameterCount);
  model.addGrad(pass, 1, gradSum);
  const opt = sgd({ lr: 0.5, momentum: 0.9 });
  const plan = opt.plan(0, 1, model.params, gradSum, train.length);
  const ids = train.map((s) => s.id);
  const values = valuer.valueStep({
    pass,
    gradSum,
    plan,
    trainLoss: 0,
    ids,
    groups: ids.map(() => undefined),
  });
  return { values, valuer };
}

describe('GPT values', () => {
  const validation = randomSequences(3, 2, 'v');

  test('efficiency and symmetry on a GPT batch: two identical sequences get identical values', () => {
    const train = randomSequences(5, 1, 't');
    train.push({ ...train[1], id: 'copy#0', documentId: 'copy' });
    const { values, valuer } = valueBatch(train, validation);
    const row = valuer.trace[0];
    const sum = values.secondOrder!.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - row.secondOrderUtility!) <= 1e-12 * Math.abs(row.secondOrderUtility!));
    assert.ok(
      Math.abs(values.secondOrder![5] - values.secondOrder![1]) <= 1e-12 * Math.abs(values.secondOrder![1]),
    );
    assert.ok(
      Math.abs(values.firstOrder[5] - values.firstOrder[1]) <= 1e-12 * Math.abs(values.firstOrder[1]),
    );
  });

  test('values per validation passage (tied weights: one vector per passage) sum to the total', () => {
    const train = randomSequences(4, 6, 't');
    const { values } = valueBatch(train, validation, 2, true);
    const m = validation.length;
    for (let i = 0; i < train.length; i++) {
      let sum = 0;
      for (let j = 0; j < m; j++) sum += values.perValidation![i * m + j];
      assert.ok(Math.abs(sum - values.firstOrder[i]) <= 1e-12 * Math.abs(values.firstOrder[i]));
    }
    // Each passage's share is its own gradient's dot with the example's: check one against a
    // run whose validation set is that passage alone (values scale with 1/|V|).
    const alone = valueBatch(train, [validation[1]], 1).values.firstOrder;
    for (let i = 0; i < train.length; i++) {
      assert.ok(Math.abs(values.perValidation![i * m + 1] * m - alone[i]) <= 1e-10 * Math.abs(alone[i]));
    }
  });

  test('padding tokens contribute exactly 0 and a fully masked sequence is worth exactly 0', () => {
    const base = randomSequences(4, 3, 't');
    const padded = base.map((s) => ({ ...s, inputs: s.inputs.slice(), targets: s.targets.slice() }));
    // Sequence 0: last three positions are padding. What sits in padded inputs must not matter.
    padded[0].targets.fill(IGNORE_INDEX, 5);
    padded[0].inputs.fill(0, 5);
    const otherPadding = padded.map((s) => ({ ...s, inputs: s.inputs.slice() }));
    otherPadding[0].inputs.fill(7, 5);
    // Sequence 2: every target ignored.
    padded[2].targets.fill(IGNORE_INDEX);
    otherPadding[2].targets.fill(IGNORE_INDEX);
    const a = valueBatch(padded, validation).values;
    const b = valueBatch(otherPadding, validation).values;
    assert.equal(a.firstOrder[2], 0);
    assert.equal(a.secondOrder![2], 0);
    assert.ok(Math.abs(a.secondOrder![0] - b.secondOrder![0]) <= 1e-12 * Math.abs(a.secondOrder![0]));
    assert.ok(Math.abs(a.firstOrder[0] - b.firstOrder[0]) <= 1e-12 * Math.abs(a.firstOrder[0]));
  });

  test('bad input: tokens outside the vocabulary and sequences longer than the context', () => {
    const model = gpt({ ...TINY, dtype: 'float64' });
    const bad = randomSequences(2, 4, 'b');
    bad[1].inputs[3] = TINY.vocabSize;
    const data = new TextSequenceDataset('corpus.txt', bad, TINY.context);
    assert.throws(
      () => model.checkDataset(data),
      (e: unknown) =>
        e instanceof InrunError &&
        /corpus.txt: sequence 1, token 3 has id 11, outside the vocabulary 0..10/.test((e as Error).message),
    );
    const long = new TextSequenceDataset('long', randomSequences(1, 5, 'l'), TINY.context);
    assert.throws(
      () => gpt({ ...TINY, context: 4 }).checkDataset(long),
      /long: examples have shape \[8, 1\], the model expects \[4, 1\] \(sequences longer than the context of 4 tokens\)/,
    );
    assert.throws(() => gpt({ ...TINY, width: 15 }), /divisible by gpt.heads/);
  });
});

describe('Sequential.parameterRanges', () => {
  test('every layer covers the whole vector once; a subset gives exactly its slots, the tied one once', () => {
    const model = gpt({ ...TINY, dtype: 'float64', seed: 5 });
    const layers = model.paramLayers;
    assert.deepEqual(model.parameterRanges(layers.map((_, l) => l)), [[0, model.parameterCount]]);
    // The token embedding and the tied head share a slot: asking for both counts it once.
    const head = layers.length - 1;
    const embedding = layers.findIndex((layer) => layer.params.includes(layers[head].params[0]));
    assert.ok(embedding >= 0 && embedding !== head, 'the head is tied to an earlier layer');
    const expected = (only: number[]) => {
      const slots = [...new Set(only.flatMap((l) => layers[l].params))];
      const covered = new Set<number>();
      for (const { offset, size } of slots) for (let e = offset; e < offset + size; e++) covered.add(e);
      return covered;
    };
    for (const only of [[head], [embedding, head], [1, 3], [0, 2, head]]) {
      const ranges = model.parameterRanges(only);
      const covered = new Set<number>();
      ranges.forEach(([start, end], k) => {
        assert.ok(start < end, 'no empty span');
        if (k > 0) assert.ok(start > ranges[k - 1][1], 'spans are sorted, disjoint and not adjacent');
        for (let e = start; e < end; e++) covered.add(e);
      });
      assert.deepEqual(
        [...covered].sort((a, b) => a - b),
        [...expected(only)].sort((a, b) => a - b),
      );
    }
  });
});

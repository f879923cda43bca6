import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TensorDataset } from '../../src/data/dataset.js';
import { Linear } from '../../src/layers/linear.js';
import { SoftmaxCrossEntropy } from '../../src/losses/softmax-cross-entropy.js';
import { Sequential } from '../../src/models/sequential.js';
import { suspectsCsv, suspicionRanks } from '../../src/run/suspects.js';
import { ValueLedger } from '../../src/shapley/ledger.js';

test('suspicionRanks: highest score first, ties in given order, NaN last', () => {
  assert.deepEqual([...suspicionRanks([0.5, 2, Number.NaN, 2, -1])], [3, 1, 5, 2, 4]);
});

test('suspects.csv: predictions at the given weights, every signal ranked, rows by the area under the margin', () => {
  // A 2-feature, 3-class linear model whose logits are the features and a constant 0.
  const model = new Sequential([new Linear(2, 3)], new SoftmaxCrossEntropy(), {
    input: { width: 2 },
    dtype: 'float64',
  });
  const params = Float64Array.of(1, 0, 0, 1, 0, 0, 0, 0, 0); // W = [[1,0],[0,1],[0,0]], b = 0
  const features = [
    [2, 0],
    [0, 3],
    [0, 0],
  ];
  const train = new TensorDataset({
    features: features.flat(),
    width: 2,
    labels: [0, 0, 2],
    labelKind: 'class',
    ids: ['a', 'b', 'c'],
  });
  const ledger = new ValueLedger({ hasSecondOrder: false });
  ledger.addStep({
    step: 0,
    ids: ['c', 'a', 'b'],
    groups: [undefined, undefined, undefined],
    firstOrder: Float64Array.of(0.1, 0.3, -0.2),
    secondOrder: null,
    signals: {
      selfInfluence: Float64Array.of(1, 2, 3),
      losses: Float64Array.of(0.5, 0.2, 3),
      margins: Float64Array.of(0.4, 2, -3),
      classValues: Float64Array.of(0, 0, 0),
    },
  });
  const csv = suspectsCsv({ model, params, train, ledger, classNames: ['zero', 'one', 'two'] });
  const lines = csv.trim().split('\n');
  assert.equal(
    lines[0],
    'rank,id,label,predicted,confidence,rank_aum,rank_mean_loss,rank_self_influence,rank_value,rank_normalized,rank_forgetting_events',
  );
  const softmaxMax = (z: number[]) => 1 / z.reduce((s, x) => s + Math.exp(x - Math.max(...z)), 0);
  // b (margin −3) is the prime suspect, then c (0.4), then a (2). No forgetting events, but b was
  // never classified correctly, which ranks it first there; c and a tie in the ledger's order.
  assert.deepEqual(lines.slice(1), [
    `1,b,zero,one,${softmaxMax([0, 3, 0])},1,1,1,1,1,1`,
    `2,c,two,zero,${1 / 3},2,2,3,2,2,2`,
    `3,a,zero,zero,${softmaxMax([2, 0, 0])},3,3,2,3,3,3`,
  ]);
});

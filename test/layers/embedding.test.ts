import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GELU, Tanh } from '../../src/layers/elementwise.js';
import { PositionalEmbedding, TokenEmbedding } from '../../src/layers/embedding.js';
import { Linear } from '../../src/layers/linear.js';
import { Residual } from '../../src/layers/residual.js';
import { SoftmaxCrossEntropy } from '../../src/losses/softmax-cross-entropy.js';
import type { Architecture } from '../helpers/fixtures.js';
import { buildModel, randomBatch } from '../helpers/fixtures.js';
import { checkArchitecture } from '../helpers/layer-checks.js';
import { perExampleGradients } from '../reference/brute-force.js';

const UNTIED: Architecture = {
  name: 'token + positional embedding, residual block, padded targets',
  tokens: 3,
  inputs: 1,
  vocab: 7,
  maskFraction: 0.3,
  layers: () => [
    new TokenEmbedding(7, 4, 0.5),
    new PositionalEmbedding(3, 4, 0.5),
    new Residual([new Linear(4, 4), Tanh()]),
    new Linear(4, 5),
  ],
  loss: () => new SoftmaxCrossEntropy(),
  outputs: 5,
};

function tiedLayers() {
  const embedding = new TokenEmbedding(6, 4, 0.5);
  return [
    embedding,
    new PositionalEmbedding(4, 4, 0.5),
    new Residual([new Linear(4, 4), GELU()]),
    new Linear(4, 6, { bias: false, tiedWeight: { layer: embedding, index: 0 } }),
  ];
}

const TIED: Architecture = {
  name: 'output head tied to the token embedding (sum-reduced tokens)',
  tokens: 4,
  inputs: 1,
  vocab: 6,
  maskFraction: 0.2,
  layers: tiedLayers,
  loss: () => new SoftmaxCrossEntropy({ tokenReduction: 'sum' }),
  outputs: 6,
};

checkArchitecture(UNTIED);
checkArchitecture(TIED);

test('a tied parameter is laid out once and its gradient sums both uses', () => {
  const model = buildModel(TIED, 'float64');
  assert.equal(model.sharedSlots.size, 1);
  const embeddingSize = 6 * 4;
  assert.equal(model.slots.filter((s) => s.name.endsWith('weight') && s.size === embeddingSize).length, 1);
  // The head's weight slot is the embedding's slot: same offset.
  const [embedding] = model.layers;
  const head = model.layers[3];
  assert.equal(head.params[0], embedding.params[0]);
});

test('a fully masked sequence has zero loss, zero gradient and so zero value', () => {
  const model = buildModel(UNTIED, 'float64');
  const batch = randomBatch(UNTIED, 3, 5);
  batch.targets.fill(-1, 3, 6); // sequence 1: every target ignored
  const losses = model.forward(batch.input, batch.targets).losses;
  assert.equal(losses[1], 0);
  const grads = perExampleGradients(model, batch);
  assert.ok(grads[1].every((g) => g === 0));
  assert.ok(grads[0].some((g) => g !== 0));
});

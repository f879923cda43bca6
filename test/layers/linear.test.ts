// Linear on token sequences where the ghost self product takes its Gram form
// (T·(in + out) < in·out: per-example T×T Gram matrices instead of formed gradients), and where
// it forms the gradients in batched chunks; the battery checks both against brute force.
import { GELU } from '../../src/layers/elementwise.js';
import { Linear } from '../../src/layers/linear.js';
import { SoftmaxCrossEntropy } from '../../src/losses/softmax-cross-entropy.js';
import type { Architecture } from '../helpers/fixtures.js';
import { checkArchitecture } from '../helpers/layer-checks.js';

const ARCHITECTURES: Architecture[] = [
  {
    name: 'linear(6→8) → gelu → linear(8→3) on 2-token sequences (Gram-form self products)',
    tokens: 2,
    inputs: 6,
    layers: () => [new Linear(6, 8), GELU(), new Linear(8, 3)],
    loss: () => new SoftmaxCrossEntropy(),
    outputs: 3,
  },
  {
    name: 'linear(3→4, no bias) → gelu → linear(4→3) on 5-token sequences (formed self products)',
    tokens: 5,
    inputs: 3,
    layers: () => [new Linear(3, 4, { bias: false }), GELU(), new Linear(4, 3)],
    loss: () => new SoftmaxCrossEntropy(),
    outputs: 3,
  },
];

for (const arch of ARCHITECTURES) checkArchitecture(arch);

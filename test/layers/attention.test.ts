import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getKernels } from '../../src/kernels/index.js';
import type { DType } from '../../src/kernels/types.js';
import { CausalSelfAttention } from '../../src/layers/attention.js';
import { GELU } from '../../src/layers/elementwise.js';
import { Linear } from '../../src/layers/linear.js';
import type { Activation, LayerTape, PassContext } from '../../src/layers/types.js';
import { MeanSquaredError } from '../../src/losses/mse.js';
import { SoftmaxCrossEntropy } from '../../src/losses/softmax-cross-entropy.js';
import { Sequential } from '../../src/models/sequential.js';
import { InrunError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import type { Architecture } from '../helpers/fixtures.js';
import { checkArchitecture } from '../helpers/layer-checks.js';
import { relativeError } from '../reference/brute-force.js';

const ARCHITECTURES: Architecture[] = [
  {
    name: 'linear → 2-head causal attention → linear on 4-token sequences, softmax cross-entropy',
    tokens: 4,
    inputs: 5,
    layers: () => [new Linear(5, 12), new CausalSelfAttention(2), new Linear(4, 3)],
    loss: () => new SoftmaxCrossEntropy(),
    outputs: 3,
  },
  {
    name: 'linear → 1-head causal attention → linear on 3-token sequences, MSE',
    tokens: 3,
    inputs: 4,
    layers: () => [new Linear(4, 6), new CausalSelfAttention(1), new Linear(2, 3)],
    loss: () => new MeanSquaredError(),
    outputs: 3,
  },
  {
    name: 'linear → 2-head causal attention → gelu → linear on 3-token sequences, softmax cross-entropy',
    tokens: 3,
    inputs: 3,
    layers: () => [new Linear(3, 12), new CausalSelfAttention(2), GELU(), new Linear(4, 3)],
    loss: () => new SoftmaxCrossEntropy(),
    outputs: 3,
  },
];

for (const arch of ARCHITECTURES) checkArchitecture(arch);

function context(dtype: DType = 'float64'): PassContext {
  return { kernels: getKernels(), dtype, params: new Float64Array(0) };
}

function randomInput(n: number, T: number, width: number, seed: number): Activation {
  const rng = new Rng(seed);
  const data = Float64Array.from({ length: n * T * width }, () => rng.normal());
  return { data, n, tokens: T, width };
}

function run(layer: CausalSelfAttention, x: Activation, dtype: DType = 'float64'): Activation {
  return layer.forward(context(dtype), x, {} as LayerTape);
}

/** Naive attention, loop by loop, straight from the definition. */
function reference(x: Activation, heads: number): Float64Array {
  const { n, tokens: T, width: w } = x;
  const d = w / 3;
  const dh = d / heads;
  const y = new Float64Array(n * T * d);
  const at = (i: number, t: number, c: number) => x.data[(i * T + t) * w + c];
  for (let i = 0; i < n; i++)
    for (let h = 0; h < heads; h++)
      for (let t = 0; t < T; t++) {
        const scores: number[] = [];
        for (let s = 0; s <= t; s++) {
          let dotqk = 0;
          for (let c = 0; c < dh; c++) dotqk += at(i, t, h * dh + c) * at(i, s, d + h * dh + c);
          scores.push(dotqk / Math.sqrt(dh));
        }
        const max = Math.max(...scores);
        const exps = scores.map((z) => Math.exp(z - max));
        const sum = exps.reduce((a, b) => a + b, 0);
        for (let c = 0; c < dh; c++) {
          let o = 0;
          for (let s = 0; s <= t; s++) o += (exps[s] / sum) * at(i, s, 2 * d + h * dh + c);
          y[(i * T + t) * d + h * dh + c] = o;
        }
      }
  return y;
}

describe('CausalSelfAttention forward', () => {
  test('matches a naive loop reference (float64)', () => {
    for (const [heads, d, T] of [
      [1, 3, 1],
      [2, 4, 5],
      [3, 6, 4],
    ]) {
      const x = randomInput(3, T, 3 * d, 7 + heads);
      const y = run(new CausalSelfAttention(heads), x);
      assert.equal(y.width, d);
      assert.equal(y.tokens, T);
      const want = reference(x, heads);
      const err = relativeError(y.data as Float64Array, want);
      assert.ok(err < 1e-12, `heads ${heads}: rel err ${err}`);
    }
  });

  test('float32 agrees with the float64 reference', () => {
    const x = randomInput(2, 5, 12, 3);
    const x32 = { ...x, data: Float32Array.from(x.data) };
    const y = run(new CausalSelfAttention(2), x32, 'float32');
    assert.ok(y.data instanceof Float32Array);
    const err = relativeError(Float64Array.from(y.data), reference(x, 2));
    assert.ok(err < 1e-5, `rel err ${err}`);
  });

  test('causal: changing token t leaves every output before t exactly unchanged', () => {
    const n = 2;
    const T = 5;
    const d = 4;
    const layer = new CausalSelfAttention(2);
    const x = randomInput(n, T, 3 * d, 21);
    const y = run(layer, x);
    for (let t = 0; t < T; t++) {
      const changed = { ...x, data: x.data.slice() };
      for (let i = 0; i < n; i++)
        for (let c = 0; c < 3 * d; c++) changed.data[(i * T + t) * 3 * d + c] += 1 + c;
      const y2 = run(layer, changed);
      for (let i = 0; i < n; i++) {
        for (let s = 0; s < T; s++) {
          const a = y.data.subarray((i * T + s) * d, (i * T + s + 1) * d);
          const b = y2.data.subarray((i * T + s) * d, (i * T + s + 1) * d);
          if (s < t) assert.deepEqual(b, a, `example ${i}, token ${s} changed when token ${t} did`);
          else if (s === t) assert.notDeepEqual(b, a, `token ${t}'s own output did not change`);
        }
      }
    }
  });

  test('masked probabilities are exactly zero and large scores give no NaN', () => {
    const x = randomInput(1, 4, 6, 5);
    for (let e = 0; e < x.data.length; e++) x.data[e] *= 300;
    const tape = {} as LayerTape & { probs?: Float64Array };
    const y = new CausalSelfAttention(1).forward(context(), x, tape);
    assert.ok(y.data.every(Number.isFinite));
    const p = tape.probs;
    assert.ok(p);
    for (let t = 0; t < 4; t++) for (let s = t + 1; s < 4; s++) assert.equal(p[t * 4 + s], 0);
  });

  test('has no parameters', () => {
    const layer = new CausalSelfAttention(2);
    assert.equal(layer.kind, 'causal-self-attention');
    assert.deepEqual(layer.params, []);
    assert.deepEqual(layer.paramSpecs(), []);
    assert.deepEqual(layer.outputShape({ tokens: 7, width: 12 }), { tokens: 7, width: 4 });
  });

  test('bad widths and head counts are user errors', () => {
    assert.throws(() => new CausalSelfAttention(2).outputShape({ tokens: 3, width: 9 }), InrunError);
    assert.throws(() => new CausalSelfAttention(2).outputShape({ tokens: 3, width: 9 }), /width 9/);
    assert.throws(() => new CausalSelfAttention(3).outputShape({ tokens: 3, width: 12 }), InrunError);
    assert.throws(() => new CausalSelfAttention(1).outputShape({ tokens: 3, width: 0 }), InrunError);
    assert.throws(() => new CausalSelfAttention(0), InrunError);
    assert.throws(() => new CausalSelfAttention(1.5), InrunError);
    assert.throws(
      () =>
        new Sequential([new Linear(4, 10), new CausalSelfAttention(2)], new MeanSquaredError(), {
          input: { tokens: 2, width: 4 },
          dtype: 'float64',
        }),
      /CausalSelfAttention/,
    );
  });
});

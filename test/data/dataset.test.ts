import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TensorDataset } from '../../src/data/dataset.js';
import type { DType } from '../../src/kernels/types.js';
import { Rng } from '../../src/util/rng.js';
import { ALL_SETS, kernelsOrSkip } from '../kernels/kernel-sets.js';

const N = 9;
const TOKENS = 2;
const WIDTH = 3;
const PER = TOKENS * WIDTH;

function dataset(featureType: DType): TensorDataset {
  const rng = new Rng(4);
  const features = featureType === 'float32' ? new Float32Array(N * PER) : new Float64Array(N * PER);
  for (let e = 0; e < features.length; e++) features[e] = rng.normal();
  return new TensorDataset({
    name: 'rows',
    features,
    width: WIDTH,
    tokens: TOKENS,
    labels: Array.from({ length: N }, (_, i) => i % 4),
    labelKind: 'class',
  });
}

/** Example i's features as the batch dtype stores them (rounded once to float32 where it is float32). */
function expectedRow(data: TensorDataset, i: number, dtype: DType): number[] {
  const whole = data.batch([i], 'float64').input.data;
  return Array.from(dtype === 'float32' ? Float32Array.from(whole) : whole);
}

for (const set of ALL_SETS) {
  test(`TensorDataset.batch copies the same rows with ${set.kind} kernels as without, any types, into reused`, (t) => {
    const loaded = kernelsOrSkip(t, set);
    if (!loaded) return;
    // The kernels copy the rows where the element types agree (the other pairs take views).
    let gathers = 0;
    const kernels = {
      ...loaded,
      gatherRows: (...args: Parameters<typeof loaded.gatherRows>) => {
        gathers++;
        loaded.gatherRows(...args);
      },
    };
    // Repeated and out-of-order indices, as a shuffled epoch's tail can hold.
    const indices = Int32Array.from([7, 0, 3, 3, 8, 1]);
    for (const featureType of ['float32', 'float64'] as const) {
      const data = dataset(featureType);
      for (const dtype of ['float32', 'float64'] as const) {
        const plain = data.batch(indices, dtype);
        const first = data.batch(indices, dtype, undefined, kernels);
        // A second batch into the first one's arrays: every row is overwritten.
        first.input.data.fill(Number.NaN);
        const reused = data.batch(indices, dtype, first, kernels);
        assert.equal(reused.input.data, first.input.data, 'into is reused');
        for (const batch of [plain, reused]) {
          assert.deepEqual(
            { n: batch.input.n, tokens: batch.input.tokens, width: batch.input.width },
            { n: indices.length, tokens: TOKENS, width: WIDTH },
          );
          assert.deepEqual(
            Array.from(batch.targets),
            Array.from(indices, (i) => i % 4),
          );
          for (let r = 0; r < indices.length; r++)
            assert.deepEqual(
              Array.from(batch.input.data.subarray(r * PER, (r + 1) * PER)),
              expectedRow(data, indices[r], dtype),
              `${featureType} features as ${dtype}, row ${r} (example ${indices[r]})`,
            );
        }
      }
    }
    assert.equal(gathers, 4, 'two batches each for float32 → float32 and float64 → float64');
  });
}

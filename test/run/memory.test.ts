import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type Dataset, TensorDataset } from '../../src/data/dataset.js';
import { saveCheckpoint } from '../../src/io/checkpoint.js';
import { encodeSafetensors, modelTensors } from '../../src/io/safetensors.js';
import type { Sequential } from '../../src/models/sequential.js';
import { buildOptimizer, MODEL_BUILDERS, type ModelContext, runLength } from '../../src/run/build.js';
import { type ModelConfig, parseTrainConfig, type TrainConfig } from '../../src/run/config.js';
import {
  type AvailableMemory,
  availableMemory,
  type BufferLimits,
  cgroupMemory,
  checkRunMemory,
  estimateRunMemory,
  type MemoryEstimate,
  type RunShape,
} from '../../src/run/memory.js';
import { TextSequenceDataset } from '../../src/text/sequences.js';
import { Trainer } from '../../src/train/trainer.js';
import { InrunError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function config(value: Record<string, unknown>): TrainConfig {
  return parseTrainConfig(
    { value: { data: { train: 'train.csv', validationSplit: 0.2 }, ...value }, flagPaths: new Map() },
    '/',
  );
}

function build(c: TrainConfig, shape: RunShape): Sequential {
  const ctx: ModelContext = {
    inputs: shape.inputs,
    image: shape.image ?? null,
    outputs: shape.outputs,
    loss: 'softmax-cross-entropy',
    seed: 1,
    kernels: 'portable',
  };
  return (MODEL_BUILDERS[c.model.kind] as (m: ModelConfig, ctx: ModelContext) => Sequential)(c.model, ctx);
}

function part(estimate: MemoryEstimate, name: string): number {
  return estimate.parts.find((p) => p.name === name)?.bytes ?? 0;
}

/** The estimate without the data (loaded before the check) and the fixed runtime allowance. */
function arraysEstimate(estimate: MemoryEstimate): number {
  return estimate.parts.filter((p) => !p.loaded && p.name !== 'runtime').reduce((sum, p) => sum + p.bytes, 0);
}

function tabular(n: number, width: number, classes: number, seed: number, prefix: string): TensorDataset {
  const rng = new Rng(seed);
  const features = new Float64Array(n * width);
  for (let e = 0; e < features.length; e++) features[e] = rng.normal();
  const labels = Array.from({ length: n }, () => rng.int(classes));
  const ids = labels.map((_, i) => `${prefix}${i}`);
  return new TensorDataset({ name: prefix, features, width, labels, labelKind: 'class', ids });
}

function text(n: number, context: number, vocab: number, seed: number, prefix: string): TextSequenceDataset {
  const rng = new Rng(seed);
  const sequences = Array.from({ length: n }, (_, i) => {
    const inputs = new Int32Array(context);
    const targets = new Int32Array(context);
    for (let t = 0; t < context; t++) {
      inputs[t] = rng.int(vocab);
      targets[t] = rng.int(vocab);
    }
    return { id: `${prefix}${i}`, documentId: `${prefix}${i}`, source: 's', offset: 0, inputs, targets };
  });
  return new TextSequenceDataset(prefix, sequences, context);
}

/**
 * Growth of process.memoryUsage().arrayBuffers from "data loaded" over building the model, a few
 * steps, the initial weights' encoding and a checkpoint, as `inrun train` does them: the largest
 * value seen between phases (garbage included, so a pass's activations count until collected).
 */
async function measure(c: TrainConfig, shape: RunShape, train: Dataset, validation: Dataset) {
  gc();
  gc();
  const base = process.memoryUsage().arrayBuffers;
  let peak = 0;
  const sample = () => {
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
  };
  const model = build(c, shape);
  const { totalSteps, stageStarts } = runLength(c, train.size);
  const trainer = new Trainer({
    model,
    optimizer: buildOptimizer(c),
    data: train,
    batchSize: c.batchSize,
    steps: totalSteps,
    seed: 2,
    valuation: {
      validation,
      order: c.order,
      perValidation: c.perValidation,
      stageStarts,
      gapSamples: c.gapSamples,
    },
  });
  const initial = encodeSafetensors(modelTensors(model));
  sample();
  while (!trainer.done) {
    trainer.runStep();
    sample();
  }
  const dir = mkdtempSync(join(tmpdir(), 'inrun-memory-'));
  try {
    await saveCheckpoint(dir, trainer.checkpoint());
    sample();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(initial.length > 0);
  return { peak, parameters: model.parameterCount };
}

describe('estimateRunMemory', () => {
  test('the parameter term is the real parameter count × 4 bytes (float32)', () => {
    const cases: [Record<string, unknown>, RunShape][] = [
      [{ model: { kind: 'logreg' } }, { inputs: 7, outputs: 3, trainExamples: 10, validationExamples: 5 }],
      [
        { model: { kind: 'mlp', hidden: [16, 8] } },
        { inputs: 6, outputs: 3, trainExamples: 10, validationExamples: 5 },
      ],
      [
        { model: { kind: 'gpt', layers: 2, heads: 2, width: 16, context: 8 } },
        { inputs: 1, outputs: 37, trainExamples: 10, validationExamples: 5 },
      ],
      [
        {
          model: {
            kind: 'gpt',
            layers: 3,
            heads: 4,
            width: 24,
            context: 12,
            tieWeights: false,
            norm: 'rmsnorm',
          },
        },
        { inputs: 1, outputs: 50, trainExamples: 10, validationExamples: 5 },
      ],
      [
        { model: { kind: 'cnn', architecture: 'lenet' } },
        {
          inputs: 784,
          outputs: 10,
          trainExamples: 10,
          validationExamples: 5,
          image: { channels: 1, height: 28, width: 28 },
        },
      ],
      // Projection blocks: the shortcut starts from the block's input, not the main branch's output.
      [
        { model: { kind: 'cnn', architecture: 'resnet', width: 4, stages: 2, groups: 2, image: '8x8x3' } },
        { inputs: 192, outputs: 4, trainExamples: 10, validationExamples: 5 },
      ],
    ];
    for (const [value, shape] of cases) {
      const c = config(value);
      const model = build(c, shape);
      const estimate = estimateRunMemory(c, shape);
      assert.equal(estimate.parameters, model.parameterCount, c.model.kind);
      assert.equal(part(estimate, 'parameters'), model.parameterCount * 4, c.model.kind);
    }
  });

  test('is never below the measured growth of typed arrays, and not far above it', async (t) => {
    const cases: { value: Record<string, unknown>; shape: RunShape; data: () => [Dataset, Dataset] }[] = [
      {
        // Parameter-sized vectors: gradient, u1, x, u2, checkpoint copies.
        value: { model: { kind: 'mlp', hidden: [512, 512] }, order: 2, batchSize: 32, steps: 2 },
        shape: { inputs: 100, outputs: 10, trainExamples: 256, validationExamples: 200 },
        data: () => [tabular(256, 100, 10, 1, 't'), tabular(200, 100, 10, 2, 'v')],
      },
      {
        // Adam with per-validation values: one parameter vector per validation example.
        value: {
          model: { kind: 'mlp', hidden: [256] },
          optimizer: { kind: 'adamw' },
          perValidation: true,
          batchSize: 32,
          steps: 2,
        },
        shape: { inputs: 100, outputs: 10, trainExamples: 256, validationExamples: 200 },
        data: () => [tabular(256, 100, 10, 3, 't'), tabular(200, 100, 10, 4, 'v')],
      },
      {
        // Attention probabilities and vocabulary-wide logits dominate.
        value: {
          model: { kind: 'gpt', layers: 1, heads: 2, width: 32, context: 32 },
          optimizer: { kind: 'adamw' },
          batchSize: 8,
          steps: 2,
        },
        shape: { inputs: 1, outputs: 300, trainExamples: 64, validationExamples: 24 },
        data: () => [text(64, 32, 300, 5, 't'), text(24, 32, 300, 6, 'v')],
      },
    ];
    for (const { value, shape, data } of cases) {
      const c = config(value);
      const [train, validation] = data();
      const { peak, parameters } = await measure(c, shape, train, validation);
      const estimate = estimateRunMemory(c, shape);
      assert.equal(estimate.parameters, parameters);
      const arrays = arraysEstimate(estimate);
      const label = `${c.model.kind} ${JSON.stringify(value)}: estimate ${arrays}, measured ${peak}`;
      t.diagnostic(label);
      assert.ok(peak <= arrays, label);
      // Garbage may be collected mid-step, so the measurement can fall short; not by 4×.
      assert.ok(arrays <= 4 * peak, label);
    }
  });

  test('per-validation values are train × column float64s, and only when asked for', () => {
    const shape = { inputs: 10, outputs: 2, trainExamples: 1000, validationExamples: 300 };
    // First order and the per-step normalised values; second order and stages add their own.
    assert.equal(
      part(estimateRunMemory(config({ perValidation: true }), shape), 'per-validation values'),
      1000 * 300 * 8 * 2,
    );
    assert.equal(
      part(
        estimateRunMemory(config({ perValidation: true, perValidationOrder: 2, stages: 3 }), shape),
        'per-validation values',
      ),
      1000 * 300 * 8 * (2 + 1 + 3),
    );
    // Text runs: one column per validation document.
    assert.equal(
      part(
        estimateRunMemory(config({ perValidation: true }), { ...shape, validationColumns: 4 }),
        'per-validation values',
      ),
      1000 * 4 * 8 * 2,
    );
    assert.equal(part(estimateRunMemory(config({}), shape), 'per-validation values'), 0);
  });

  test('order 2 and adam cost parameter vectors that order 1 and sgd do not', () => {
    const shape = { inputs: 100, outputs: 10, trainExamples: 100, validationExamples: 10 };
    const base = config({ model: { kind: 'mlp', hidden: [100] }, order: 1 });
    const P = estimateRunMemory(base, shape).parameters;
    const valuer = (c: TrainConfig) => part(estimateRunMemory(c, shape), 'valuer buffers');
    assert.ok(
      valuer(config({ model: { kind: 'mlp', hidden: [100] }, order: 2 })) - valuer(base) >= 2 * P * 4,
    );
    const optimizer = (c: TrainConfig) => part(estimateRunMemory(c, shape), 'optimizer state');
    assert.equal(optimizer(base), 0);
    assert.ok(
      optimizer(config({ model: { kind: 'mlp', hidden: [100] }, optimizer: { kind: 'adam' } })) >= 4 * P * 4,
    );
  });

  test('rejects shapes that are not positive integers', () => {
    assert.throws(
      () => estimateRunMemory(config({}), { inputs: 0, outputs: 2, trainExamples: 1, validationExamples: 1 }),
      /shape\.inputs must be a positive integer, got 0/,
    );
  });
});

describe('checkRunMemory', () => {
  // `inrun train --hidden 100000000` on 4 features and 3 classes: 800M parameters.
  const huge = config({ model: { kind: 'mlp', hidden: [100_000_000] } });
  const hugeShape = { inputs: 4, outputs: 3, trainExamples: 120, validationExamples: 30 };
  const limits: BufferLimits = {
    maxElements: 2 ** 32,
    maxBytes: Number.MAX_SAFE_INTEGER,
    maxReadBytes: 2 ** 31 - 1,
  };

  test('refuses the 800M-parameter run in one line naming the estimate and what is available', () => {
    const estimate = estimateRunMemory(huge, hugeShape);
    assert.equal(estimate.parameters, 800_000_003);
    const available: AvailableMemory = { bytes: 5.1e9, source: 'cgroup memory limit 8.0 GB, 2.9 GB in use' };
    assert.throws(
      () => checkRunMemory(estimate, available, { limits }),
      (error: unknown) => {
        assert.ok(error instanceof InrunError);
        const message = error.message;
        assert.doesNotMatch(message, /\n/);
        const need = estimate.parts.filter((p) => !p.loaded).reduce((s, p) => s + p.bytes, 0);
        assert.ok(
          message.startsWith(`this run needs about ${(need / 1e9).toFixed(1)} GB of memory (`),
          message,
        );
        assert.match(message, /parameters 3\.2 GB/);
        assert.match(message, /gradients 3\.2 GB/);
        assert.match(
          message,
          /but only 5\.1 GB is available \(cgroup memory limit 8\.0 GB, 2\.9 GB in use\)/,
        );
        assert.match(message, /use a smaller model\.hidden/);
        return true;
      },
    );
    // And with this machine's own memory (the run needs over 100 GB).
    assert.ok(estimate.bytes > 100e9);
    const here = availableMemory();
    if (here.bytes < estimate.bytes)
      assert.throws(
        () => checkRunMemory(estimate, here),
        new RegExp(`is available \\(${escapeRegExp(here.source)}\\)`),
      );
  });

  test('refuses files that Node could not read back, even with memory to spare', () => {
    const estimate = estimateRunMemory(huge, hugeShape);
    assert.throws(
      () => checkRunMemory(estimate, { bytes: 1e15, source: 'plenty' }, { limits }),
      /cannot save the initial and final weights: weights\.\*\.safetensors would be 3\.2 GB, more than the 2 GiB Node can read back/,
    );
  });

  test('refuses a parameter vector longer than one typed array may be, not with a RangeError', () => {
    const estimate = estimateRunMemory(
      config({ model: { kind: 'mlp', hidden: [1_000_000_000] } }),
      hugeShape,
    );
    assert.throws(
      () => checkRunMemory(estimate, { bytes: 1e18, source: 'plenty' }, { limits }),
      /cannot allocate the parameters: one array of 8,000,000,003 values \(32\.0 GB\), more than the 4,294,967,296 values one typed array may hold/,
    );
  });

  test('refuses a per-validation matrix past the typed-array limit', () => {
    const c = config({ perValidation: true, model: { kind: 'logreg' } });
    const estimate = estimateRunMemory(c, {
      inputs: 2,
      outputs: 2,
      trainExamples: 100_000,
      validationExamples: 50_000,
    });
    assert.throws(
      () => checkRunMemory(estimate, { bytes: 1e18, source: 'plenty' }, { limits }),
      /per-validation matrix: one array of 5,000,000,000 values .*; use perValidation: false/,
    );
  });

  test('lets a small run through, with this machine and the data already loaded', () => {
    const c = config({ model: { kind: 'mlp', hidden: [32] } });
    const estimate = estimateRunMemory(c, {
      inputs: 20,
      outputs: 3,
      trainExamples: 500,
      validationExamples: 100,
    });
    checkRunMemory(estimate, availableMemory());
    // The loaded data is not counted again, unless the caller says it is not loaded yet.
    const data = estimate.parts.find((p) => p.loaded)!;
    const need = estimate.bytes - data.bytes;
    checkRunMemory(estimate, { bytes: need, source: 'exact' }, { limits });
    assert.throws(
      () => checkRunMemory(estimate, { bytes: need, source: 'exact' }, { limits, dataLoaded: false }),
      /needs about/,
    );
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('availableMemory', () => {
  const files = (entries: Record<string, string>) => (path: string) => entries[path] ?? null;

  test('takes the tightest cgroup v2 limit from the process cgroup up to the root, less usage', () => {
    const read = files({
      '/proc/self/cgroup': '0::/user.slice/job\n',
      '/proc/self/mountinfo': '31 23 0:28 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n',
      '/sys/fs/cgroup/user.slice/job/memory.max': 'max\n',
      '/sys/fs/cgroup/user.slice/job/memory.current': '1000000000\n',
      '/sys/fs/cgroup/user.slice/memory.max': '8000000000\n',
      '/sys/fs/cgroup/user.slice/memory.current': '3000000000\n',
      '/sys/fs/cgroup/user.slice/memory.stat': 'anon 2000000000\ninactive_file 100000000\n',
    });
    assert.deepEqual(cgroupMemory(read), {
      bytes: 8e9 - 2.9e9,
      source: 'cgroup memory limit 8.0 GB, 2.9 GB in use',
    });
  });

  test('reads cgroup v1 limits, relative to where the hierarchy is mounted', () => {
    const read = files({
      '/proc/self/cgroup': '5:cpu:/\n4:memory:/docker/abc\n',
      '/proc/self/mountinfo': '35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n',
      '/sys/fs/cgroup/memory/memory.limit_in_bytes': '4000000000\n',
      '/sys/fs/cgroup/memory/memory.usage_in_bytes': '1500000000\n',
      '/sys/fs/cgroup/memory/memory.stat': 'cache 600000000\ntotal_inactive_file 500000000\n',
    });
    assert.deepEqual(cgroupMemory(read), { bytes: 3e9, source: 'cgroup memory limit 4.0 GB, 1.0 GB in use' });
  });

  test('no limit set (v2 "max", v1 near 2^63) means no cgroup bound', () => {
    const v2 = files({
      '/proc/self/cgroup': '0::/\n',
      '/sys/fs/cgroup/memory.max': 'max\n',
    });
    const v1 = files({
      '/proc/self/cgroup': '4:memory:/\n',
      '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n',
    });
    assert.equal(cgroupMemory(v2), null);
    assert.equal(cgroupMemory(v1), null);
    assert.equal(cgroupMemory(files({})), null);
  });

  test('is the smaller of the system and the cgroup', () => {
    const tight = files({
      '/proc/self/cgroup': '0::/\n',
      '/sys/fs/cgroup/memory.max': '1000000\n',
      '/sys/fs/cgroup/memory.current': '0\n',
    });
    const available = availableMemory(tight);
    if (process.platform === 'linux')
      assert.deepEqual(available, { bytes: 1e6, source: 'cgroup memory limit 1 MB, 0 kB in use' });
    else assert.ok(available.bytes > 1e6);
    const loose = availableMemory(files({}));
    assert.ok(loose.bytes > 0);
    assert.match(loose.source, /memory/);
  });
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { allocFloat } from '../../src/kernels/alloc.js';
import { PassArena } from '../../src/layers/scratch.js';
import { cnn } from '../../src/models/cnn.js';
import type { ForwardMode, Sequential } from '../../src/models/sequential.js';
import type { StepReport, Trainer } from '../../src/train/trainer.js';
import { ARCHITECTURES, buildModel, randomBatch } from '../helpers/fixtures.js';
import { fingerprint, RUNS, runToEnd, STEPS } from './buffer-reuse-runs.js';

// Training reuses its buffers from step to step (PassArena, layer Scratch, the optimizer's and
// valuer's vectors). These tests check that nothing leaks through them: between steps, between
// the passes of one step, or between models.

/** The same model, but every pass gets fresh zero-filled arrays (what the engine did before arenas). */
function allocating(model: Sequential): Sequential {
  const forward = model.forward.bind(model);
  model.forward = (input, targets, params, mode: ForwardMode = {}) =>
    forward(input, targets, params, { ...mode, arena: undefined });
  return model;
}

const NAMES = Object.keys(RUNS);

/** Runs the trainers in turns, one step each, until all are done; returns each run's fingerprint. */
function interleaved(trainers: Record<string, Trainer>): Record<string, string> {
  const reports = new Map<string, StepReport[]>(Object.keys(trainers).map((name) => [name, []]));
  while (Object.values(trainers).some((trainer) => !trainer.done))
    for (const [name, trainer] of Object.entries(trainers))
      if (!trainer.done) reports.get(name)!.push(trainer.runStep());
  return Object.fromEntries(
    Object.entries(trainers).map(([name, trainer]) => [name, fingerprint(trainer, reports.get(name)!)]),
  );
}

describe('buffer reuse across steps, passes and models', () => {
  test(`${STEPS} steps of each run are bit-identical with reused buffers and with fresh arrays, interleaved`, () => {
    // Both sets in one round-robin, so every model's steps run between other models' steps.
    const trainers = Object.fromEntries(
      NAMES.flatMap((name) => [
        [`${name} reused`, RUNS[name]()],
        [`${name} fresh`, RUNS[name](allocating)],
      ]),
    );
    const got = interleaved(trainers);
    for (const name of NAMES) assert.equal(got[`${name} reused`], got[`${name} fresh`], name);
  });

  test('a run alone in a fresh process gives the bits it gives after other runs, interleaved', () => {
    const runs = fileURLToPath(new URL('./buffer-reuse-runs.ts', import.meta.url));
    const child = spawnSync(process.execPath, ['--import', 'tsx', runs, ...NAMES], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    assert.equal(child.status, 0, child.stderr);
    const alone = JSON.parse(child.stdout) as Record<string, string>;
    // Here: after the test above, with every run interleaved with the others and with itself.
    const trainers = Object.fromEntries(
      NAMES.flatMap((name) => [
        [name, RUNS[name]()],
        [`${name} again`, RUNS[name]()],
      ]),
    );
    const got = interleaved(trainers);
    for (const name of NAMES) {
      assert.equal(got[name], alone[name], name);
      assert.equal(got[`${name} again`], alone[name], `${name} (second copy)`);
    }
    // And a run on its own after all that.
    assert.equal(runToEnd(RUNS.gpt()), alone.gpt);
  });
});

describe('a pass whose arena has moved on', () => {
  const arch = ARCHITECTURES[0];

  test('is refused by everything that reads its tapes, and its losses were overwritten', () => {
    const model = buildModel(arch, 'float64', 1);
    const arena = new PassArena();
    const first = randomBatch(arch, 5, 2);
    const second = randomBatch(arch, 5, 3);
    const pass = model.forward(first.input, first.targets, model.params, { arena });
    model.backward(pass);
    const losses = pass.losses;
    const lossesBefore = losses.slice();
    // The hazard: keeping a pass (or what it returned) across the next pass in the same arena.
    const next = model.forward(second.input, second.targets, model.params, { arena });
    assert.notDeepEqual(losses, lossesBefore, 'the next pass reuses the losses array');
    assert.equal(losses, next.losses);
    const grad = allocFloat('float64', model.parameterCount);
    const stale = /stale/;
    assert.throws(() => model.backward(pass), stale);
    assert.throws(() => model.addGrad(pass, 1, grad), stale);
    assert.throws(() => model.hessianVectorProduct(pass, grad, grad), stale);
    assert.throws(() => model.ghostDot(pass, [grad], [new Float64Array(5)]), stale);
    assert.throws(() => model.ghostSelfDot(pass, null, new Float64Array(5)), stale);
    // The current pass is fine and equals one run on fresh arrays.
    model.backward(next);
    const fresh = model.forward(second.input, second.targets);
    model.backward(fresh);
    assert.deepEqual(next.losses, fresh.losses);
    const a = allocFloat('float64', model.parameterCount);
    const b = allocFloat('float64', model.parameterCount);
    model.addGrad(next, 1, a);
    model.addGrad(fresh, 1, b);
    assert.deepEqual(a, b);
  });

  test('passes in different arenas live side by side', () => {
    const model = buildModel(arch, 'float64', 1);
    const arenas = [new PassArena(), new PassArena()];
    const batches = [randomBatch(arch, 4, 5), randomBatch(arch, 6, 6)];
    const passes = batches.map((batch, k) => {
      const pass = model.forward(batch.input, batch.targets, model.params, { arena: arenas[k] });
      model.backward(pass);
      return pass;
    });
    batches.forEach((batch, k) => {
      const fresh = model.forward(batch.input, batch.targets);
      model.backward(fresh);
      const got = new Float64Array(batch.input.n);
      const want = new Float64Array(batch.input.n);
      model.ghostSelfDot(passes[k], null, got);
      model.ghostSelfDot(fresh, null, want);
      assert.deepEqual(got, want);
    });
  });

  test('a convolution forms each pass’s per-example gradients anew, though the arena hands it the same arrays', () => {
    // Conv2d keeps formed per-example gradients on a tape, keyed by the identity of the patch and
    // output-gradient arrays; the next pass in the arena gets those very arrays back.
    const model = cnn({
      input: { channels: 1, height: 8, width: 8 },
      classes: 2,
      kind: 'lenet',
      width: 2,
      kernel: 3,
      hidden: [4],
      dtype: 'float64',
      seed: 3,
    });
    const arena = new PassArena();
    const u = Float64Array.from({ length: model.parameterCount }, (_, e) => Math.sin(e));
    for (const seed of [1, 2, 3]) {
      const n = 3;
      const input = {
        data: Float64Array.from({ length: n * 64 }, (_, e) => Math.cos(e * seed)),
        n,
        tokens: 1,
        width: 64,
      };
      const targets = Int32Array.from({ length: n }, (_, i) => (i + seed) % 2);
      const pass = model.forward(input, targets, model.params, { arena });
      model.backward(pass);
      const fresh = model.forward(input, targets);
      model.backward(fresh);
      const got = [new Float64Array(n)];
      const want = [new Float64Array(n)];
      model.ghostDot(pass, [u], got);
      model.ghostDot(fresh, [u], want);
      assert.deepEqual(got, want, `batch ${seed}`);
    }
  });
});

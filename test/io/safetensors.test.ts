import assert from 'node:assert/strict';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  decodeSafetensors,
  encodeSafetensors,
  loadModelTensors,
  modelTensors,
  readSafetensors,
  writeSafetensors,
} from '../../src/io/safetensors.js';
import { mlp } from '../../src/models/builders.js';
import { InrunError } from '../../src/util/errors.js';

test('a model written as safetensors reads back bit-identical, in a fresh model too', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'inrun-st-'));
  const model = mlp({ inputs: 7, hidden: [5, 3], outputs: 2, seed: 9 });
  const path = join(dir, 'weights.safetensors');
  await writeSafetensors(path, modelTensors(model), { format: 'pt' });
  const { tensors, metadata } = await readSafetensors(path);
  assert.deepEqual(metadata, { format: 'pt' });
  assert.deepEqual(
    tensors.map((t) => [t.name, t.shape]),
    model.slots.map((s) => [s.name, s.shape]),
  );
  const fresh = mlp({ inputs: 7, hidden: [5, 3], outputs: 2, seed: 1 });
  assert.notDeepEqual(fresh.params, model.params);
  loadModelTensors(fresh, tensors, path);
  assert.deepEqual(Buffer.from(fresh.params.buffer), Buffer.from(model.params.buffer));
  assert.deepEqual(await readdir(dir), ['weights.safetensors']);
});

test('the file layout follows the safetensors format', () => {
  const bytes = encodeSafetensors([{ name: 'a', shape: [2], data: new Float32Array([1.5, -2]) }]);
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + headerLength) % 8, 0, 'data is 8-byte aligned');
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString());
  assert.deepEqual(header.a, { dtype: 'F32', shape: [2], data_offsets: [0, 8] });
  assert.deepEqual(Array.from(new Float32Array(bytes.slice(8 + headerLength).buffer)), [1.5, -2]);
});

test('malformed files are refused with the file name and the problem', async () => {
  const good = encodeSafetensors([{ name: 'w', shape: [2, 2], data: new Float64Array([1, 2, 3, 4]) }]);
  const cases: [string, Uint8Array, RegExp][] = [
    ['too short', new Uint8Array(3), /shorter than its 8-byte header/],
    ['truncated data', good.subarray(0, good.length - 4), /truncated: tensor "w"/],
    ['truncated header', good.subarray(0, 12), /truncated safetensors file/],
  ];
  const badJson = new Uint8Array(good);
  badJson[8] = 0x7b + 1; // corrupt the opening brace
  cases.push(['invalid JSON', badJson, /not valid JSON/]);
  for (const [name, bytes, message] of cases) {
    assert.throws(
      () => decodeSafetensors(bytes, 'w.safetensors'),
      (e: unknown) =>
        e instanceof InrunError &&
        /^w\.safetensors: /.test((e as Error).message) &&
        message.test((e as Error).message),
      name,
    );
  }
  const model = mlp({ inputs: 2, hidden: [], outputs: 2 });
  const tensors = modelTensors(model).map((t) => ({ ...t, data: t.data.slice() }));
  assert.throws(
    () => loadModelTensors(model, tensors.slice(1), 'x'),
    /no tensor "layers.0.bias"|no tensor "layers.0.weight"/,
  );
  assert.throws(
    () =>
      loadModelTensors(model, [...tensors, { name: 'extra', shape: [1], data: new Float32Array(1) }], 'x'),
    /does not have: extra/,
  );
  tensors[0].data[1] = Number.NaN;
  const before = model.params.slice();
  assert.throws(() => loadModelTensors(model, tensors, 'x'), /non-finite value at index 1/);
  assert.deepEqual(model.params, before, 'a refused load leaves the model untouched');
  const dir = await mkdtemp(join(tmpdir(), 'inrun-st-'));
  await writeFile(join(dir, 'bad'), 'nope');
  await assert.rejects(readSafetensors(join(dir, 'missing')), /cannot read \(ENOENT\)/);
});

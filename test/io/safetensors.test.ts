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
  await assert.rejects(
    readSafetensors(join(dir, 'missing')),
    /missing: cannot read \(no such file or directory\)$/,
  );
});

/** A safetensors image with a hand-written header over `dataBytes` bytes of data (value k at byte k). */
function craft(header: Record<string, unknown>, dataBytes: number): Uint8Array {
  const json = Buffer.from(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  for (let k = 0; k < dataBytes; k++) out[8 + json.length + k] = k;
  return out;
}

const f32 = (begin: number, end: number, shape = [(end - begin) / 4]) => ({
  dtype: 'F32',
  shape,
  data_offsets: [begin, end],
});

test('the data section must be covered exactly by the tensors: no overlap, hole or trailing bytes', () => {
  // Well-formed, listed out of offset order and with an empty tensor: accepted, in header order.
  const ok = decodeSafetensors(
    craft({ b: f32(8, 16), empty: f32(0, 0, [0, 3]), a: f32(0, 8), __metadata__: { k: 'v' } }, 16),
    'ok.safetensors',
  );
  assert.deepEqual(
    ok.tensors.map((t) => [t.name, t.shape, t.data.length]),
    [
      ['b', [2], 2],
      ['empty', [0, 3], 0],
      ['a', [2], 2],
    ],
  );
  assert.deepEqual(ok.metadata, { k: 'v' });
  assert.deepEqual([...new Uint8Array(ok.tensors[0].data.buffer)], [8, 9, 10, 11, 12, 13, 14, 15]);

  const cases: [string, Uint8Array, RegExp][] = [
    [
      'overlap',
      craft({ a: f32(0, 8), b: f32(4, 12) }, 12),
      /tensor "b" \(bytes 4–12\) overlaps tensor "a" \(bytes 0–8\)/,
    ],
    ['same range twice', craft({ a: f32(0, 8), b: f32(0, 8) }, 8), /tensor "b" .*overlaps tensor "a"/],
    ['trailing bytes', craft({ a: f32(0, 8) }, 12), /4 bytes after the last tensor "a" belong to no tensor/],
    ['data but no tensor', craft({}, 4), /4 bytes after the header \(no tensor\) belong to no tensor/],
    [
      'hole between tensors',
      craft({ a: f32(0, 4), b: f32(8, 12) }, 12),
      /bytes 4–8 of the data belong to no tensor \(a hole after tensor "a", before tensor "b"\)/,
    ],
    ['hole at the start', craft({ a: f32(4, 8) }, 8), /bytes 0–4 .*hole at the start, before tensor "a"/],
    [
      'end before begin',
      craft({ a: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, 8),
      /tensor "a" has data_offsets out of order: it ends \(4\) before it begins \(8\)/,
    ],
    [
      'beyond the buffer',
      craft({ a: f32(0, 8), b: f32(8, 16) }, 12),
      /truncated: tensor "b" ends at byte 16 of 12/,
    ],
    [
      'shape and size disagree',
      craft({ a: f32(0, 8, [3]) }, 8),
      /tensor "a" has 8 bytes but shape \[3\] of F32 needs 12/,
    ],
    [
      'dtype and size disagree',
      craft({ a: { dtype: 'F64', shape: [2], data_offsets: [0, 8] } }, 8),
      /tensor "a" has 8 bytes but shape \[2\] of F64 needs 16/,
    ],
    [
      'unknown dtype',
      craft({ a: { dtype: 'BF16', shape: [4], data_offsets: [0, 8] } }, 8),
      /tensor "a" has dtype "BF16"/,
    ],
    [
      'bad shape',
      craft({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4),
      /tensor "a" has an invalid shape/,
    ],
    [
      'fractional offsets',
      craft({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4.5] } }, 4),
      /tensor "a" has invalid data_offsets \[0,4\.5\]/,
    ],
    ['entry not an object', craft({ a: 3 }, 0), /tensor "a" is not described by a JSON object/],
    [
      'metadata not strings',
      craft({ __metadata__: { n: 1 } }, 0),
      /"__metadata__" entry "n" is not a string/,
    ],
    ['header an array', craft([] as unknown as Record<string, unknown>, 0), /header is not a JSON object/],
  ];
  const badUtf8 = craft({ a: f32(0, 4) }, 4);
  badUtf8[10] = 0xff;
  cases.push(['header not UTF-8', badUtf8, /header is not valid UTF-8/]);
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 2n ** 63n, true);
  cases.push(['header length beyond the file', huge, /truncated safetensors file/]);
  for (const [name, bytes, message] of cases) {
    assert.throws(
      () => decodeSafetensors(bytes, 'bad.safetensors'),
      (e: unknown) =>
        e instanceof InrunError &&
        /^bad\.safetensors: /.test(e.message) &&
        !e.message.includes('\n') &&
        message.test(e.message),
      name,
    );
  }
});

test('files written by encodeSafetensors always pass the strict reader', () => {
  const tensors = [
    { name: 'x', shape: [3], data: new Float32Array([1, 2, 3]) },
    { name: 'none', shape: [0], data: new Float64Array(0) },
    { name: 'y', shape: [1, 2], data: new Float64Array([4, 5]) },
  ];
  const back = decodeSafetensors(encodeSafetensors(tensors, { a: 'b' }), 'x.safetensors');
  assert.deepEqual(back.tensors, tensors);
});

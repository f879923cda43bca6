// The browser-safe pieces the web page is built from, checked against their Node counterparts.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { extname, join, posix, relative, win32 } from 'node:path';
import { test } from 'node:test';
import { bundleForBrowser } from '../../scripts/build-web.mjs';
import { getKernels } from '../../src/browser/node-kernels.js';
import { PAGE_DIGITS_SETTINGS, pageRunInputs } from '../../src/browser/page-run.js';
import { DIGIT_PIXELS, digitImages, loadDigits } from '../../src/data/digits.js';
import { decodeDigitsAsset, encodeDigitsAsset } from '../../src/data/digits-asset.js';
import { displayPath, pathInside } from '../../src/data/readers/table.js';
import { tableFormat } from '../../src/data/readers/table-bytes.js';
import { digitsCsv } from '../../src/demo/digits-data.js';
import { CHECKPOINT_DIR } from '../../src/io/checkpoint.js';
import { RUN_FILES } from '../../src/io/run-files.js';
import { runSeeds } from '../../src/run/data.js';
import { InrunError } from '../../src/util/errors.js';
import { sha256Hex } from '../../src/util/sha256.js';

const root = join(import.meta.dirname, '..', '..');

test('sha256Hex gives node:crypto’s digest at every padding boundary, for bytes and text', () => {
  for (const n of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 65_537]) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 255);
    // A view into a larger buffer, as a parsed file's bytes may be.
    const view = new Uint8Array(n + 5).subarray(5);
    view.set(bytes);
    const want = createHash('sha256').update(bytes).digest('hex');
    assert.equal(sha256Hex(bytes), want, `${n} bytes`);
    assert.equal(sha256Hex(view), want, `${n} bytes at an offset`);
  }
  assert.equal(sha256Hex('naïve 😀'), createHash('sha256').update('naïve 😀').digest('hex'));
});

test('displayPath shows what node:path.relative shows, without node:path', () => {
  const cwd = process.cwd();
  const nodeDisplay = (p: string) => {
    const rel = relative(cwd, p);
    return rel !== '' && !rel.startsWith('..') && !rel.startsWith('/') ? rel : p;
  };
  for (const p of [
    join(cwd, 'data', 'x.csv'),
    cwd,
    `${cwd}/`,
    `${cwd}//data/./y.csv`,
    `${cwd}/data/../z.csv`,
    `${cwd}/..foo`,
    `${cwd}x/sibling.csv`,
    '/elsewhere/x.csv',
    'x.csv',
    'data/../x.csv',
    '../x.csv',
    'a/../../x.csv',
  ])
    assert.equal(displayPath(p), nodeDisplay(p), p);
  const cases: [string, string][] = [
    ['/a/b', '/a/b/c/d.csv'],
    ['/a/b', '/a/bc/d.csv'],
    ['/', '/x/y'],
    ['/a/b', 'c/../d'],
  ];
  for (const [dir, p] of cases) {
    const rel = posix.relative(dir, posix.resolve(dir, p));
    assert.equal(pathInside(dir, p, false), rel.startsWith('..') ? undefined : rel, `${dir} ${p}`);
  }
  const windows: [string, string][] = [
    ['C:\\Users\\me', 'c:\\users\\ME\\data\\x.csv'],
    ['C:\\Users\\me', 'C:/Users/me/y.csv'],
    ['C:\\Users\\me', 'D:\\x.csv'],
    ['C:\\Users\\me', '\\Users\\me\\z.csv'],
    ['C:\\Users\\me', 'sub\\w.csv'],
  ];
  for (const [dir, p] of windows) {
    const rel = win32.relative(dir, win32.resolve(dir, p));
    const inside = rel.startsWith('..') || win32.isAbsolute(rel) ? undefined : rel;
    assert.equal(pathInside(dir, p, true)?.toLowerCase(), inside?.toLowerCase(), `${dir} ${p}`);
  }
});

test('tableFormat reads the extension as node:path.extname does', () => {
  for (const name of [
    'a.csv',
    'A.CSV',
    'a.b.jsonl',
    'x.ndjson',
    'dir.v2/x.parquet',
    'C:\\data\\x.csv',
    'x.csv/',
  ])
    assert.equal(
      tableFormat(name),
      { '.csv': 'csv', '.jsonl': 'jsonl', '.ndjson': 'jsonl', '.parquet': 'parquet' }[
        extname(name.replaceAll('\\', '/')).toLowerCase()
      ],
    );
  assert.throws(() => tableFormat('.csv'), /\.csv: no file extension to tell the data file type/);
  assert.throws(() => tableFormat('notes'), /notes: no file extension/);
  assert.throws(
    () => tableFormat('table.xlsx'),
    /table\.xlsx: unknown data file type "\.xlsx" \(inrun reads \.csv, \.jsonl, \.ndjson and \.parquet\)/,
  );
});

test('the digits asset holds exactly the mnist package’s float32 pixels, a byte each', () => {
  const images = digitImages();
  const perClass = 30;
  const asset = encodeDigitsAsset(images, perClass, DIGIT_PIXELS);
  assert.ok(asset.length < (perClass * DIGIT_PIXELS * images.length) / 2, 'a byte per pixel, then deflated');
  const decoded = decodeDigitsAsset(asset, 'digits.bin');
  assert.equal(decoded.length, images.length);
  decoded.forEach((pixels, c) => {
    assert.deepEqual(pixels, images[c].subarray(0, perClass * DIGIT_PIXELS), `class ${c}`);
  });
  assert.throws(
    () => decodeDigitsAsset(asset.subarray(0, asset.length >> 1), 'digits.bin'),
    /digits\.bin: not a digits asset/,
  );
  assert.throws(
    () => decodeDigitsAsset(new TextEncoder().encode('<html>'), 'digits.bin'),
    /digits\.bin: not a digits asset/,
  );
});

test('the page’s digits are `inrun demo`’s: the same images, flips and CSV files', () => {
  const { files, flipped, config } = pageRunInputs(PAGE_DIGITS_SETTINGS, digitImages());
  const demo = loadDigits({ seed: runSeeds(PAGE_DIGITS_SETTINGS.seed).split });
  const text = (name: string) => new TextDecoder().decode(files[name].bytes);
  assert.equal(text('data/train.csv'), digitsCsv(demo.train));
  assert.equal(text('data/validation.csv'), digitsCsv(demo.validation));
  assert.equal(flipped?.size, demo.flipped.filter(Boolean).length);
  assert.deepEqual((config.data as Record<string, unknown>).train, 'data/train.csv');
});

test('the page’s settings are checked, each problem named as the page labels it', () => {
  const digits = digitImages();
  const bad: [Partial<typeof PAGE_DIGITS_SETTINGS>, RegExp][] = [
    [{ lr: 0 }, /learning rate must be greater than 0, got 0/],
    [{ epochs: 1.5 }, /epochs must be an integer, got 1.5/],
    [{ hidden: [] }, /hidden sizes: an MLP needs at least one hidden layer/],
    [{ hidden: [64, 0] }, /hidden size 2 must be in \[1, 4096\], got 0/],
    [{ batchSize: 0 }, /batch size must be ≥ 1, got 0/],
  ];
  for (const [change, message] of bad)
    assert.throws(() => pageRunInputs({ ...PAGE_DIGITS_SETTINGS, ...change }, digits), message);
});

test('RUN_FILES names the checkpoint folder the checkpoint code writes', () => {
  assert.equal(RUN_FILES.checkpoint, CHECKPOINT_DIR);
});

test('the browser build keeps Node out: the kernel selector is swapped, a Node import fails the build', async () => {
  const result = await bundleForBrowser({
    entryPoints: { page: join(root, 'web/src/page.ts'), worker: join(root, 'web/src/worker.ts') },
    outdir: join(root, 'build', 'tmp-bundle'),
    write: false,
  });
  const inputs = Object.keys(result.metafile.inputs);
  for (const nodeOnly of ['src/kernels/index.ts', 'src/kernels/native.ts', 'src/kernels/wasm-node.ts'])
    assert.ok(!inputs.includes(nodeOnly), `${nodeOnly} is in the bundle`);
  for (const used of ['src/browser/node-kernels.ts', 'src/kernels/wasm.ts', 'src/models/sequential.ts'])
    assert.ok(inputs.includes(used), `${used} is not in the bundle`);
  assert.ok(!inputs.some((path) => path.startsWith('node:')));
  // The Node side of the wasm kernels reads the module with node:fs: it must not build for a page.
  await assert.rejects(
    bundleForBrowser({
      entryPoints: [join(root, 'src/kernels/wasm-node.ts')],
      outdir: join(root, 'build', 'tmp-bundle'),
      write: false,
    }),
    (error: { errors: { text: string }[] }) => {
      assert.match(
        error.errors.map((e) => e.text).join('\n'),
        /the Node module "node:fs" would reach the browser bundle \(imported by src\/kernels\/wasm-node\.ts\)/,
      );
      return true;
    },
  );
});

test('in a browser, choosing kernels by name fails with what to do instead', () => {
  assert.throws(
    () => getKernels(),
    (error: Error) => {
      assert.ok(error instanceof InrunError);
      assert.match(error.message, /in a browser pass a Kernels object as the model's `kernels`/);
      return true;
    },
  );
});

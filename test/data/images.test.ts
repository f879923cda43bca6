// Image folders, read through pngjs and jpeg-js, against files written by independent encoders:
// PNGs by a minimal encoder (test/helpers/png.ts: zlib + CRC-32 from the PNG specification), JPEGs by Pillow
// (committed fixtures with the pixels Pillow decodes them to). The fixtures came from Pillow 9.4:
//   img = Image.new('RGB', (8, 6)); img.putdata([(255*x//7, 255*y//5, 128) …]); img.save('gradient.jpg', quality=90, subsampling=0)
//   checker.jpg: ((40 if (x//2 + y//2) % 2 else 200), 90, 30x % 256), quality 95
//   jpeg-pixels.json: Image.open(name).convert('RGB').getdata() for each.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readImageFolder } from '../../src/data/readers/images.js';
import { tempDir } from '../cli/fixtures/train-data.js';
import { encodePng } from '../helpers/png.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');

function writeFolder(files: Record<string, Buffer | string>): string {
  const root = tempDir('inrun-images-');
  for (const [path, data] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), data);
  }
  return root;
}

test('grey PNGs: one channel, pixels / 255, classes from the sorted folder names, ids by path', async () => {
  const a = [0, 51, 102, 153, 204, 255];
  const b = [255, 0, 17, 34, 68, 136];
  const root = writeFolder({
    'zebra/1.png': encodePng(3, 2, 0, a),
    'ant/x.png': encodePng(3, 2, 0, b),
    'ant/.DS_Store': 'ignored',
  });
  const set = await readImageFolder(root);
  assert.deepEqual(set.classNames, ['ant', 'zebra']);
  assert.deepEqual(set.ids, ['ant/x.png', 'zebra/1.png']);
  assert.deepEqual([...set.labels], [0, 1]);
  assert.equal(set.channels, 1);
  assert.deepEqual([set.height, set.width], [2, 3]);
  assert.deepEqual(
    [...set.features],
    [...b, ...a].map((v) => Math.fround(v / 255)),
  );
});

test('RGB and RGBA PNGs: channels-first planes; alpha ignored; grey on request by luminance', async () => {
  const rgb = [10, 20, 30, 40, 50, 60];
  const rgba = [200, 100, 0, 7, 1, 2, 3, 255];
  const root = writeFolder({ 'c/rgb.png': encodePng(2, 1, 2, rgb), 'c/rgba.png': encodePng(2, 1, 6, rgba) });
  const set = await readImageFolder(root);
  assert.equal(set.channels, 3);
  const f = (v: number) => Math.fround(v / 255);
  // [R plane, G plane, B plane] per image.
  assert.deepEqual([...set.features.subarray(0, 6)], [10, 40, 20, 50, 30, 60].map(f));
  assert.deepEqual([...set.features.subarray(6)], [200, 1, 100, 2, 0, 3].map(f));
  const grey = await readImageFolder(root, { channels: 1 });
  assert.ok(Math.abs(grey.features[0] - (0.299 * 10 + 0.587 * 20 + 0.114 * 30) / 255) < 1e-7);
});

test('JPEGs decode within 3 levels of Pillow’s decoding of the same files (IDCTs round differently)', async () => {
  const expected = JSON.parse(readFileSync(join(FIXTURES, 'jpeg-pixels.json'), 'utf8')) as Record<
    string,
    { width: number; height: number; rgb: number[] }
  >;
  const root = writeFolder(
    Object.fromEntries(
      Object.keys(expected).map((name) => [`k/${name}`, readFileSync(join(FIXTURES, name))]),
    ),
  );
  const set = await readImageFolder(root, { channels: 3 });
  const names = Object.keys(expected).sort();
  names.forEach((name, i) => {
    const { width, height, rgb } = expected[name];
    assert.deepEqual([set.width, set.height], [width, height]);
    const plane = width * height;
    for (let p = 0; p < plane; p++)
      for (let c = 0; c < 3; c++) {
        const got = set.features[i * 3 * plane + c * plane + p] * 255;
        assert.ok(
          Math.abs(got - rgb[3 * p + c]) <= 3 + 1e-4,
          `${name} pixel ${p} channel ${c}: ${got} vs ${rgb[3 * p + c]}`,
        );
      }
  });
});

test('image folders: clear errors naming the file', async () => {
  const png = encodePng(2, 2, 0, [1, 2, 3, 4]);
  const cases: [Record<string, Buffer | string>, RegExp][] = [
    [
      { 'a/1.png': png, 'a/2.png': encodePng(3, 2, 0, [1, 2, 3, 4, 5, 6]) },
      /a\/2\.png: 3×2 pixels, but .*a\/1\.png is 2×2; all images must have one size/,
    ],
    [{ 'a/1.png': Buffer.from('not a png') }, /a\/1\.png: not a readable PNG image/],
    [{ 'a/1.jpg': Buffer.from('not a jpeg') }, /a\/1\.jpg: not a readable JPG image/],
    [{ 'a/notes.txt': 'hello' }, /a\/notes\.txt: not an image inrun reads/],
    [{ 'loose.png': png }, /loose\.png: a file at the top of an image folder/],
    [{ 'a/b/1.png': png }, /a\/b: a folder inside a class folder/],
  ];
  for (const [files, pattern] of cases) await assert.rejects(readImageFolder(writeFolder(files)), pattern);
  await assert.rejects(
    readImageFolder(writeFolder({ 'a/.hidden': 'x' })),
    /the class folders hold no images/,
  );
  await assert.rejects(
    readImageFolder(writeFolder({ 'a/1.png': png, 'dog/1.png': png }), { classNames: ['a', 'b'] }),
    /class "dog" is not among the training classes \(a, b\)/,
  );
});

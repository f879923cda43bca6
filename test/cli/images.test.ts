// `inrun train`, `report` and `curate` on image folders (one sub-folder per class).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { PNG } from 'pngjs';
import { loadRun } from '../../src/io/run-dir.js';
import { parseTrainConfig } from '../../src/run/config.js';
import { loadTrainingData } from '../../src/run/data.js';
import { Rng } from '../../src/util/rng.js';
import { encodePng } from '../helpers/png.js';
import { runCli, tempDir } from './fixtures/train-data.js';

/** side×side grey images: bright squares (class "square") and bright rings ("ring"), with noise. */
function writeImages(root: string, perClass: number, seed: number, side = 6): void {
  const rng = new Rng(seed);
  const last = side - 1;
  for (const cls of ['ring', 'square']) {
    mkdirSync(join(root, cls), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const pixels: number[] = [];
      for (let y = 0; y < side; y++)
        for (let x = 0; x < side; x++) {
          const edge = x === 0 || y === 0 || x === last || y === last;
          const on =
            cls === 'square' ? !edge : (x === 1 || x === last - 1 || y === 1 || y === last - 1) && !edge;
          pixels.push(Math.max(0, Math.min(255, (on ? 200 : 30) + rng.int(41) - 20)));
        }
      writeFileSync(join(root, cls, `${String(i).padStart(3, '0')}.png`), encodePng(side, side, 0, pixels));
    }
  }
}

test('image folders: train (ids are paths, labels the class folders), report with images, curate writes an image folder', async () => {
  const dir = tempDir('inrun-image-run-');
  writeImages(join(dir, 'train'), 20, 1);
  writeImages(join(dir, 'val'), 6, 2);
  const out = join(dir, 'run');
  const train = await runCli(
    'train',
    '--train',
    join(dir, 'train'),
    '--validation',
    join(dir, 'val'),
    '--model',
    'mlp',
    '--hidden',
    '8',
    '--epochs',
    '3',
    '--batch-size',
    '8',
    '--lr',
    '0.1',
    '--out',
    out,
    '--quiet',
  );
  assert.equal(train.code, 0, train.err);
  const run = await loadRun(out);
  assert.equal(run.values.length, 40);
  assert.ok(run.values.every((v) => /^(ring|square)\/0\d\d\.png$/.test(String(v.id))));
  assert.deepEqual(run.manifest.data.classNames, ['ring', 'square']);
  assert.equal(run.manifest.data.features.length, 36);
  assert.equal(run.manifest.data.train.format, 'images');

  const report = await runCli('report', out, '--image', '6x6');
  assert.equal(report.code, 0, report.err);

  const curate = await runCli('curate', out, '--percentile', '10');
  assert.equal(curate.code, 0, curate.err);
  const curated = join(out, 'curation', 'train.curated');
  const files = ['ring', 'square'].flatMap((cls) => readdirSync(join(curated, cls)).map((f) => join(cls, f)));
  assert.equal(files.length, 36);
  // Hard links to the original images (same inode) where the file system allows.
  for (const file of files)
    assert.equal(statSync(join(curated, file)).ino, statSync(join(dir, 'train', file)).ino);
});

test('image folders: an image of another size is one clear error naming it; nothing is written', async () => {
  const dir = tempDir('inrun-image-bad-');
  writeImages(join(dir, 'train'), 4, 1);
  writeFileSync(join(dir, 'train', 'ring', 'odd.png'), encodePng(5, 6, 0, new Array(30).fill(9)));
  const result = await runCli(
    'train',
    '--train',
    join(dir, 'train'),
    '--validation-split',
    '0.25',
    '--out',
    join(dir, 'run'),
  );
  assert.equal(result.code, 1);
  assert.match(
    result.err,
    /^inrun: error: .*train\/ring\/odd\.png: 5×6 pixels, but .*000\.png is 6×6; all images must have one size/,
  );
  assert.ok(!existsSync(join(dir, 'run')));
});

test('model.kind cnn: a LeNet on an image folder, its shape from the images; a table needs model.image', async () => {
  const dir = tempDir('inrun-image-cnn-');
  writeImages(join(dir, 'train'), 12, 3, 12);
  writeImages(join(dir, 'val'), 4, 4, 12);
  const config = join(dir, 'cnn.yaml');
  writeFileSync(
    config,
    `data: { train: train, validation: val }
model: { kind: cnn, architecture: lenet, kernel: 3, width: 2, hidden: [8] }
optimizer: { kind: sgd, lr: 0.05, momentum: 0.9 }
batchSize: 8
epochs: 2
`,
  );
  const out = join(dir, 'run');
  const result = await runCli('train', '--config', config, '--out', out, '--quiet');
  assert.equal(result.code, 0, result.err);
  const run = await loadRun(out);
  assert.equal(run.values.length, 24);
  assert.ok(run.manifest.model.parameters > 0);
  // Σ values = the step's Taylor utility: the convolutions' ghost products add up.
  for (const row of run.trace)
    assert.ok(
      Math.abs(row.efficiencyResidual) <= 1e-5 * (Math.abs(row.secondOrderUtility!) + 1e-9),
      `step ${row.step}`,
    );

  // The same images as a table of pixel columns need the shape named.
  writeFileSync(
    join(dir, 'pixels.csv'),
    `id,label,${Array.from({ length: 144 }, (_, k) => `p${k}`).join(',')}\n` +
      Array.from({ length: 8 }, (_, i) => `r${i},${i % 2},${new Array(144).fill(0.5).join(',')}`).join('\n') +
      '\n',
  );
  const table = await runCli(
    'train',
    '--train',
    join(dir, 'pixels.csv'),
    '--validation-split',
    '0.25',
    '--model',
    'cnn',
    '--out',
    join(dir, 't'),
  );
  assert.equal(table.code, 1);
  assert.match(
    table.err,
    /model\.image: a cnn on a table needs the image shape of its pixel columns, e\.g\. model\.image: 28x28x1/,
  );
  const wrong = await runCli(
    'train',
    '--train',
    join(dir, 'pixels.csv'),
    '--validation-split',
    '0.25',
    '--model',
    'cnn',
    '--set',
    'model.image=10x10x1',
    '--out',
    join(dir, 't'),
  );
  assert.equal(wrong.code, 1);
  assert.match(
    wrong.err,
    /model\.image: 10x10x1 is 100 values per example, but the data has 144 feature columns/,
  );
});

test('data.standardize: channels fits one mean and std per channel on the training images', async () => {
  const dir = tempDir('inrun-image-norm-');
  writeImages(join(dir, 'train'), 5, 5);
  writeImages(join(dir, 'val'), 3, 6);
  const config = parseTrainConfig({
    value: { data: { train: join(dir, 'train'), validation: join(dir, 'val'), standardize: 'channels' } },
    flagPaths: new Map(),
  });
  const data = await loadTrainingData(config);
  const train = data.train.dataset;
  const pixels = train.batch(
    Array.from({ length: train.size }, (_, i) => i),
    'float64',
  ).input.data;
  let sum = 0;
  let squares = 0;
  for (const x of pixels) {
    sum += x;
    squares += x * x;
  }
  const n = pixels.length;
  assert.ok(Math.abs(sum / n) < 1e-6, `mean ${sum / n}`);
  assert.ok(Math.abs(squares / n - 1) < 1e-5, `variance ${squares / n}`);
  const stats = data.standardization!;
  assert.equal(new Set(stats.mean).size, 1, 'one grey channel: one mean for every pixel');
  // A table of numbers has no channels.
  writeFileSync(join(dir, 't.csv'), 'a,label\n1,0\n2,1\n3,0\n4,1\n');
  const table = parseTrainConfig({
    value: { data: { train: join(dir, 't.csv'), validationSplit: 0.5, standardize: 'channels' } },
    flagPaths: new Map(),
  });
  await assert.rejects(
    loadTrainingData(table),
    /data\.standardize: channels needs images \(an image folder\)/,
  );
});

test('RGB image folders: the report shows each listed example as its colour image, without --image', async () => {
  const dir = tempDir('inrun-image-rgb-');
  const colours = { blue: [0, 64, 255], red: [255, 0, 128] } as const;
  for (const [cls, [r, g, b]] of Object.entries(colours)) {
    mkdirSync(join(dir, 'train', cls), { recursive: true });
    mkdirSync(join(dir, 'val', cls), { recursive: true });
    for (let i = 0; i < 6; i++) {
      const png = encodePng(4, 3, 2, new Array(12).fill([r, g, b]).flat());
      writeFileSync(join(dir, i < 4 ? 'train' : 'val', cls, `${i}.png`), png);
    }
  }
  const out = join(dir, 'run');
  const train = await runCli(
    'train',
    '--train',
    join(dir, 'train'),
    '--validation',
    join(dir, 'val'),
    '--model',
    'logreg',
    '--epochs',
    '2',
    '--batch-size',
    '4',
    '--out',
    out,
    '--quiet',
  );
  assert.equal(train.code, 0, train.err);
  const report = await runCli('report', out);
  assert.equal(report.code, 0, report.err);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  const urls = [...html.matchAll(/<img class="px" alt="" src="data:image\/png;base64,([^"]+)"/g)].map(
    (m) => m[1],
  );
  assert.ok(urls.length >= 8, `${urls.length} images`);
  const seen = new Set<string>();
  for (const url of urls) {
    const png = PNG.sync.read(Buffer.from(url, 'base64'));
    assert.deepEqual([png.width, png.height], [4, 3]);
    seen.add([...png.data.subarray(0, 3)].join(','));
  }
  // Drawn with the image's own range (0 to 255 here), so the colours come back exactly.
  assert.deepEqual([...seen].sort(), ['0,64,255', '255,0,128']);
  // --image with another shape is refused by name.
  const wrong = await runCli('report', out, '--image', '4x3', '--out', join(dir, 'r.html'));
  assert.equal(wrong.code, 1);
  assert.match(wrong.err, /--image 4x3 needs 12 features; the run has 36/);
});

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { unzipSync, zipSync } from 'fflate';
import { type PageSettings, startPageRun } from '../../src/browser/page-run.js';
import { ARCHIVE_DATA_DIR, unzipRunArchive, zipRunFiles } from '../../src/io/run-archive.js';
import { type LoadedRun, loadRun, loadRunArchive, RUN_FILES } from '../../src/io/run-dir.js';
import { createPortableKernels } from '../../src/kernels/portable.js';
import { reportInputFromRun } from '../../src/report/inputs.js';
import { parseTrainConfig } from '../../src/run/config.js';
import { trainRun } from '../../src/run/train-run.js';
import { InrunError } from '../../src/util/errors.js';
import { packageVersion } from '../../src/util/version.js';
import { blobs, runCli, tempDir, toCsv } from '../cli/fixtures/train-data.js';

/** The page's settings for a small table of three classes with 15% of labels flipped. */
const SETTINGS: PageSettings = {
  data: {
    kind: 'table',
    name: 'blobs.csv',
    bytes: new TextEncoder().encode(toCsv(blobs(90, { seed: 5, flip: 0.15 }))),
    label: 'label',
    id: 'id',
    task: 'classification',
    validationSplit: 0.25,
    standardize: false,
    dropMissing: false,
  },
  model: 'mlp',
  hidden: [8],
  optimizer: 'momentum',
  lr: 0.1,
  epochs: 3,
  batchSize: 16,
  order: 2,
  seed: 7,
};

/** The archive the page's code produces for SETTINGS (on the portable kernels, as a page without wasm). */
async function pageArchive(): Promise<Uint8Array> {
  const { run } = await startPageRun(SETTINGS, {
    kernels: createPortableKernels(),
    digitImages: null,
    inrunVersion: packageVersion(),
    runtime: process.version,
  });
  while (!run.done) run.step();
  return run.archive();
}

const archive = pageArchive();

/** Writes the archive's entries under `dir`: the run directory it holds. */
function extract(bytes: Uint8Array, dir: string): string {
  for (const [name, content] of Object.entries(unzipSync(bytes))) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

/** A loaded run without what names its place (its folder or archive path). */
function placeless(run: LoadedRun): Omit<LoadedRun, 'dir'> {
  const { dir: _dir, ...rest } = run;
  return rest;
}

test('a page run archive holds the files trainRun writes for its config: values, trace, suspects and weights byte for byte', async () => {
  const bytes = await archive;
  const dir = extract(bytes, tempDir('inrun-archive-'));
  const entries = unzipSync(bytes);
  assert.ok(entries[`${ARCHIVE_DATA_DIR}/blobs.csv`], 'the archive carries the data file its config names');
  // The archive's own config, run by `inrun train` on the same data on the same kernels.
  const value = JSON.parse(readFileSync(join(dir, RUN_FILES.config), 'utf8'));
  const config = parseTrainConfig(
    { value: { ...value, out: join(dir, 'cli'), kernels: 'portable' }, flagPaths: new Map() },
    dir,
  );
  await trainRun({ config });
  for (const name of [
    RUN_FILES.valuesCsv,
    RUN_FILES.valuesJsonl,
    RUN_FILES.valuesParquet,
    RUN_FILES.traceCsv,
    RUN_FILES.traceJsonl,
    RUN_FILES.suspects,
    RUN_FILES.weightsInitial,
    RUN_FILES.weightsFinal,
  ])
    assert.ok(
      Buffer.from(entries[name]).equals(readFileSync(join(dir, 'cli', name))),
      `${name} differs from trainRun's`,
    );
  const page = JSON.parse(new TextDecoder().decode(entries[RUN_FILES.manifest]));
  const cli = JSON.parse(readFileSync(join(dir, 'cli', RUN_FILES.manifest), 'utf8'));
  assert.equal(page.status, 'complete');
  assert.equal(page.kernels, 'portable (TypeScript)');
  assert.equal(page.data.train.sha256, cli.data.train.sha256);
  for (const key of ['model', 'totalSteps', 'stageStarts', 'stepsDone', 'seed'])
    assert.deepEqual(page[key], cli[key], `manifest.${key}`);
  assert.deepEqual({ ...page.data, train: null }, { ...cli.data, train: null });
});

test('inrun report reads a run archive as the run directory it holds: the same report inputs', async () => {
  const bytes = await archive;
  const dir = tempDir('inrun-archive-');
  const zip = join(dir, 'run.zip');
  writeFileSync(zip, bytes);
  const fromArchive = await loadRunArchive(zip);
  const fromDirectory = await loadRun(extract(bytes, join(dir, 'run')));
  assert.deepEqual(placeless(fromArchive), placeless(fromDirectory));
  const options = { subtitle: 'run', topCount: 5 };
  assert.deepEqual(reportInputFromRun(fromArchive, options), reportInputFromRun(fromDirectory, options));
  // 90 rows less round(0.25 · 90) = 23 for validation: every training example is valued.
  assert.equal(fromArchive.values.length, 67);
});

test('`inrun report run.zip` writes report.html beside the archive, the examples read from the data inside it', async () => {
  const dir = tempDir('inrun-archive-');
  const zip = join(dir, 'run.zip');
  writeFileSync(zip, await archive);
  const r = await runCli('report', zip, '--top', '5');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /report: .*report\.html/);
  const html = readFileSync(join(dir, 'report.html'), 'utf8');
  assert.doesNotMatch(html, /Example contents are not shown/);
  // Listed examples show their cells (label first), as for a run directory.
  assert.match(html, /label=\d, x1=-?\d/);
  const out = join(dir, 'elsewhere.html');
  assert.equal((await runCli('report', zip, '--out', out)).code, 0);
  assert.ok(existsSync(out));
});

test('a broken run archive is refused with what is wrong with it', async () => {
  const bytes = await archive;
  const dir = tempDir('inrun-archive-');
  const entries = unzipSync(bytes);
  const without = (...names: string[]) =>
    zipSync(Object.fromEntries(Object.entries(entries).filter(([name]) => !names.includes(name))));
  const cases: [string, Uint8Array, RegExp][] = [
    [
      'truncated.zip',
      bytes.subarray(0, bytes.length >> 1),
      /truncated\.zip: corrupt zip archive \(.+\); download or copy the run again$/,
    ],
    [
      'text.zip',
      new TextEncoder().encode('not a zip'),
      /text\.zip: not a zip archive; give a run directory, or the run\.zip/,
    ],
    [
      'partial.zip',
      without(RUN_FILES.valuesJsonl, RUN_FILES.weightsFinal),
      /partial\.zip: incomplete run archive: values\.jsonl and weights\.final\.safetensors are missing \(a run archive holds manifest\.json, config\.json, values\.jsonl, trace\.jsonl, weights\.initial\.safetensors and weights\.final\.safetensors\)$/,
    ],
    [
      'nomanifest.zip',
      without(RUN_FILES.manifest),
      /nomanifest\.zip: not a run archive \(no manifest\.json in it\)$/,
    ],
    [
      'foreign.zip',
      zipSync({ ...entries, [RUN_FILES.manifest]: new TextEncoder().encode('{"format":"other"}') }),
      /foreign\.zip: not a run archive \(its manifest\.json is not an inrun run manifest\)$/,
    ],
    [
      'escape.zip',
      zipSync({ ...entries, '../evil.txt': new Uint8Array(1) }),
      /escape\.zip: entry "\.\.\/evil\.txt" is not a plain relative path inside the archive$/,
    ],
  ];
  for (const [name, content, message] of cases) {
    const path = join(dir, name);
    writeFileSync(path, content);
    await assert.rejects(loadRunArchive(path), (error: Error) => {
      assert.ok(error instanceof InrunError, `${name}: ${error.stack}`);
      assert.match(error.message, message);
      return true;
    });
    const r = await runCli('report', path);
    assert.equal(r.code, 1, name);
    assert.match(r.err, new RegExp(message.source.replace(/\$$/, '')));
  }
  // A value file that does not parse is named inside the archive.
  const bad = join(dir, 'bad-values.zip');
  writeFileSync(bad, zipSync({ ...entries, [RUN_FILES.valuesJsonl]: new TextEncoder().encode('{\n') }));
  await assert.rejects(loadRunArchive(bad), /bad-values\.zip\/values\.jsonl: line 1 is not valid JSON/);
});

test('an archive of the folder holding a run reads as that run', async () => {
  const bytes = await archive;
  const nested = zipSync(
    Object.fromEntries(
      Object.entries(unzipSync(bytes)).map(([name, content]) => [`my-run/${name}`, content]),
    ),
  );
  const dir = tempDir('inrun-archive-');
  writeFileSync(join(dir, 'nested.zip'), nested);
  writeFileSync(join(dir, 'flat.zip'), bytes);
  const a = await loadRunArchive(join(dir, 'nested.zip'));
  const b = await loadRunArchive(join(dir, 'flat.zip'));
  assert.deepEqual(placeless(a), placeless(b));
});

test('zipRunFiles gives equal bytes for equal files and keeps entries inside the archive', () => {
  const files = { 'manifest.json': '{}\n', 'data/x.csv': new Uint8Array([1, 2, 3]) };
  assert.deepEqual(zipRunFiles(files), zipRunFiles(files));
  assert.deepEqual([...unzipRunArchive(zipRunFiles(files), 'x.zip').keys()], ['manifest.json', 'data/x.csv']);
  for (const name of ['../x', '/abs', 'a//b', 'a\\b', ''])
    assert.throws(
      () => zipRunFiles({ [name]: 'x' }),
      /is not a plain relative path inside the archive/,
      name,
    );
});

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { escapeHtml } from '../../src/report/index.js';
import { blobs, runCli, tempDir, toCsv } from './fixtures/train-data.js';

const HOSTILE_ID = '<img src=x onerror=alert(1)>';

/** A finished run on a small CSV whose first id is hostile markup. */
async function trainedRun(): Promise<string> {
  const rows = blobs(60, { seed: 3, flip: 0.15 });
  rows[0].id = HOSTILE_ID;
  const dir = tempDir('inrun-report-');
  writeFileSync(join(dir, 'train.csv'), toCsv(rows));
  writeFileSync(join(dir, 'val.csv'), toCsv(blobs(20, { seed: 4, prefix: 'v' })));
  const run = join(dir, 'run');
  const r = await runCli(
    'train',
    '--train',
    join(dir, 'train.csv'),
    '--validation',
    join(dir, 'val.csv'),
    '--id-column',
    'id',
    '--group-column',
    'src',
    '--model',
    'mlp',
    '--hidden',
    '8',
    '--lr',
    '0.1',
    '--batch-size',
    '12',
    '--epochs',
    '2',
    '--stages',
    '2',
    '--out',
    run,
    '--quiet',
  );
  assert.equal(r.code, 0, r.err);
  return run;
}

const runDir = trainedRun();

test('inrun report: writes <run-dir>/report.html with every section, the data and escaped ids', async () => {
  const run = await runDir;
  const r = await runCli('report', run, '--top', '60');
  assert.equal(r.code, 0, r.err);
  const path = join(run, 'report.html');
  assert.match(r.out, /report: .*report\.html/);
  const html = readFileSync(path, 'utf8');
  for (const id of [
    'summary',
    'distribution',
    'examples',
    'groups',
    'stages',
    'efficiency',
    'removal',
    'curation',
  ])
    assert.match(html, new RegExp(`<section id="${id}">`), id);
  assert.match(html, /id="inrun-report-data"/);
  assert.match(html, /data-chart="groups-stages"/);
  assert.doesNotMatch(html, /\s(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i);
  assert.doesNotMatch(html, /<script[^>]*\ssrc\s*=/i);
  // Contents come from the CSV: label first, id and group left out.
  assert.match(html, /<span class="snippet">label=\d, x1=/);
  // The hostile id is listed (all 60 are) and escaped.
  assert.ok(!html.includes(HOSTILE_ID));
  assert.ok(html.includes(escapeHtml(HOSTILE_ID)));
  assert.ok(!readdirSync(run).some((f) => f.endsWith('.tmp')), 'no temporary files left');
});

test('inrun report: --out and --image draw features as images', async () => {
  const run = await runDir;
  const out = join(tempDir('inrun-report-out-'), 'r.html');
  const r = await runCli('report', run, '--out', out, '--image', '2x2');
  assert.equal(r.code, 0, r.err);
  const html = readFileSync(out, 'utf8');
  assert.match(html, /<img class="px" alt="" src="data:image\/png;base64,/);
});

test('inrun report: bad input is one clear error line, exit 1, and writes nothing', async () => {
  const run = await runDir;
  const scratch = tempDir('inrun-report-bad-');
  const cases: [string[], RegExp][] = [
    [['report', join(scratch, 'nope')], /nope: no such run directory/],
    [
      ['report', run, '--out', join(scratch, 'missing', 'r.html')],
      /--out .*r\.html: the folder .*missing does not exist/,
    ],
    [['report', run, '--out', scratch], /is a directory/],
    [
      ['report', run, '--image', '3x3', '--out', join(scratch, 'a.html')],
      /--image 3x3 needs 9 features; the run has 4/,
    ],
    [['report', run, '--image', 'big', '--out', join(scratch, 'b.html')], /--image must be WIDTHxHEIGHT/],
    [
      ['report', run, '--top', '0', '--out', join(scratch, 'c.html')],
      /--top must be an integer from 1 to 1000/,
    ],
    [
      ['report', run, '--curation', join(scratch, 'none.json'), '--out', join(scratch, 'd.html')],
      /none\.json: cannot read the curation comparison \(no such file\)/,
    ],
  ];
  for (const [args, expected] of cases) {
    const r = await runCli(...args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.err}`);
    assert.equal(r.out, '');
    const lines = r.err.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.err);
    assert.match(lines[0], /^inrun: error: /);
    assert.match(lines[0], expected);
  }
  assert.deepEqual(readdirSync(scratch), [], 'nothing written');
});

test('inrun report: a changed training file is noted instead of showing stale contents', async () => {
  const rows = blobs(30, { seed: 5 });
  const dir = tempDir('inrun-report-changed-');
  writeFileSync(join(dir, 'train.csv'), toCsv(rows));
  const run = join(dir, 'run');
  const t = await runCli(
    'train',
    '--train',
    join(dir, 'train.csv'),
    '--validation-split',
    '0.3',
    '--batch-size',
    '8',
    '--steps',
    '3',
    '--out',
    run,
    '--quiet',
  );
  assert.equal(t.code, 0, t.err);
  writeFileSync(join(dir, 'train.csv'), toCsv(blobs(30, { seed: 6 })));
  const r = await runCli('report', run);
  assert.equal(r.code, 0, r.err);
  const html = readFileSync(join(run, 'report.html'), 'utf8');
  assert.match(html, /Example contents are not shown: .*train\.csv changed since the run/);
  assert.doesNotMatch(html, /class="snippet"/);
  assert.ok(existsSync(join(run, 'report.html')));
});

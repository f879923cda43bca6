// `inrun report` and `inrun curate` on a text (gpt) run: decoded snippets in the report, and
// curation by document on a folder corpus.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from './fixtures/train-data.js';

const CORPUS: Record<string, string> = {
  'corpus/a.txt': 'The cat sat on the mat. The cat was happy and the mat was warm.',
  'corpus/b.txt': 'A dog ran in the park; the dog chased a ball all afternoon long.',
  'corpus/c.txt': 'Zq xv 9 !! ~~ @@ ## qqq zzz vvv kkk jjj 000 ;;; ,,, ...',
  'corpus/poems/d.md': 'Roses are red,\nviolets are blue,\nsugar is sweet,\nand so are you.',
  'corpus/poems/e.txt': 'Twinkle twinkle little star, how I wonder what you are.',
  'corpus/poems/f.txt': '%%% &&& *** ((( ))) ___ +++ === ||| ``` ^^^ $$$',
  'val/v.txt': 'The cat and the dog sat in the park on a warm afternoon.',
};

const CONFIG = `data:
  train: corpus
  validation: val
model:
  kind: gpt
  layers: 1
  heads: 2
  width: 16
  context: 16
  tokenizer: bytes
optimizer:
  kind: adam
  lr: 0.05
batchSize: 4
steps: 40
kernels: portable
`;

test('report and curate --negatives on a gpt run over a text folder', async () => {
  const dir = tempDir('inrun-text-rc-');
  for (const [name, content] of Object.entries(CORPUS)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  writeFileSync(join(dir, 'run.yaml'), CONFIG);
  const run = join(dir, 'run');
  const t = await runCli('train', '--config', join(dir, 'run.yaml'), '--out', run, '--quiet');
  assert.equal(t.code, 0, t.err);

  const r = await runCli('report', run);
  assert.equal(r.code, 0, r.err);
  const html = readFileSync(join(run, 'report.html'), 'utf8');
  // A decoded snippet of some sequence (its document id first, then its text).
  assert.match(html, /(a\.txt|b\.txt|c\.txt|poems\/d\.md|poems\/e\.txt|poems\/f\.txt) \((corpus|poems)\): /);
  assert.ok(/cat|dog|Roses|Twinkle|Zq|%%%|mat|park|star|blue/.test(html), 'decoded text in the report');
  assert.doesNotMatch(html, /Example contents are not shown/);

  const c = await runCli('curate', run, '--negatives', '--quiet');
  assert.equal(c.code, 0, c.err);
  const curation = join(run, 'curation');
  assert.ok(existsSync(join(curation, 'comparison.json')));
  const comparison = JSON.parse(readFileSync(join(curation, 'comparison.json'), 'utf8'));
  assert.equal(comparison.totalExamples, 6);
  const count = (folder: string): number =>
    readdirSync(folder, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
  const curated = join(curation, 'train.curated', 'corpus');
  assert.equal(count(curated), 6 - comparison.removed);
  assert.ok(count(curated) < 6);
  assert.equal(count(join(curation, 'train.random', 'corpus')), 6 - comparison.removed);
  assert.ok(existsSync(join(curation, 'report.html')));
});

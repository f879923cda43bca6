import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { firstPassages, runLanguageDemo } from '../../src/demo/lm-demo.js';
import { loadRun } from '../../src/io/run-dir.js';
import { writeRunReport } from '../../src/report/write.js';
import { loadBundledCorpus } from '../../src/text/corpora.js';
import { splitIntoSequences } from '../../src/text/sequences.js';
import { getTokenizer } from '../../src/text/tokenizer.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});
const tempDir = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'inrun-demo-lm-'));
  dirs.push(dir);
  return dir;
};
const chapter = (id: string) => loadBundledCorpus('moby-dick').find((doc) => doc.id === id)!;
/** Settings for a run that only has to work, not to learn. */
const TINY = {
  steps: 4,
  batchSize: 4,
  context: 16,
  layers: 1,
  width: 16,
  heads: 2,
  validationSequences: 2,
  quiet: true,
};

test('a training document that copies the validation text verbatim is ranked first of the mixture', async () => {
  // Validation text: a short held-out chapter, evaluated whole; the mixture gets an exact copy of it.
  const validation = chapter('moby-dick/chapter-001');
  const copy = { id: 'planted/copy-of-validation', source: 'planted', text: validation.text };
  const result = await runLanguageDemo(
    {
      steps: 72,
      batchSize: 16,
      context: 32,
      layers: 2,
      width: 32,
      heads: 2,
      lr: 3e-3,
      documentsPerSource: 2,
      validation: [validation],
      validationSequences: 1000,
      extraTraining: [copy],
      out: await tempDir(),
      quiet: true,
    },
    () => {},
  );
  const ranking = result.documents.map((doc) => doc.documentId);
  // Document ids are the files' paths below data/train: <source>/<name>.txt.
  assert.equal(
    ranking[0],
    'planted/copy-of-validation.txt',
    `ranking starts ${ranking.slice(0, 5).join(', ')}`,
  );
  assert.ok(result.validationLoss.last < result.validationLoss.first, 'training lowered the validation loss');
  // Per-source stage values add up to the source totals.
  assert.deepEqual(
    result.sources.map((row) => row.source),
    ['speeches', 'moby-dick', 'kjv', 'planted'],
  );
  for (const row of result.sources) {
    const sum = row.stages.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - row.total) <= 1e-9 * Math.max(1, Math.abs(row.total)));
  }
  // The whole chapter was the validation text, written unchanged.
  assert.equal(
    await readFile(join(result.dataDir, 'validation', 'moby-dick', 'chapter-001.txt'), 'utf8'),
    validation.text,
  );
});

test('the validation passages are written as the text of exactly those passages', () => {
  const tokenizer = getTokenizer('gpt2');
  const docs = [chapter('moby-dick/chapter-001'), chapter('moby-dick/chapter-002')];
  const context = 32;
  const original = splitIntoSequences(docs, tokenizer, { context }).sequences;
  const first = original.filter((s) => s.documentId === docs[0].id).length;

  // Cut inside the first chapter: its first 5 passages, as the start of its text.
  const cut = firstPassages(docs, tokenizer, context, 5);
  assert.equal(cut.documents.length, 1);
  assert.ok(docs[0].text.startsWith(cut.documents[0].text));
  const passages = splitIntoSequences(cut.documents, tokenizer, { context }).sequences;
  assert.equal(passages.length, 5);
  passages.forEach((s, k) => {
    assert.deepEqual(s.inputs, original[k].inputs, `passage ${k} inputs`);
    // The last passage predicts the end of the text where the chapter went on.
    const targets = Array.from(original[k].targets);
    if (k === 4) targets[context - 1] = tokenizer.eotToken!;
    assert.deepEqual(Array.from(s.targets), targets, `passage ${k} targets`);
  });

  // All of the first chapter and 2 passages of the second: the first is kept whole.
  const more = firstPassages(docs, tokenizer, context, first + 2);
  assert.equal(more.documents[0].text, docs[0].text);
  assert.equal(splitIntoSequences(more.documents, tokenizer, { context }).sequences.length, first + 2);
  // More passages than the text has: all of it, unchanged.
  const all = firstPassages(docs, tokenizer, context, 100000);
  assert.deepEqual(
    all.documents.map((doc) => doc.text),
    docs.map((doc) => doc.text),
  );
});

test('demo-lm writes a run directory that report accepts; a second run replaces the first and its documents', async () => {
  const out = await tempDir();
  await runLanguageDemo({ ...TINY, documentsPerSource: 2, out }, () => {});
  const lines: string[] = [];
  const result = await runLanguageDemo({ ...TINY, documentsPerSource: 1, out, quiet: false }, (line) =>
    lines.push(line),
  );
  assert.equal(result.runDir, join(out, 'run'));
  const run = await loadRun(result.runDir);
  assert.equal(run.manifest.status, 'complete');
  // Only this run's documents: those of the first run do not linger in the data folder.
  assert.equal(run.manifest.data.text?.trainDocuments, 3);
  assert.deepEqual((await readdir(join(out, 'data', 'train', 'kjv'))).length, 1);
  assert.equal(run.manifest.data.validationExamples, 2);
  assert.deepEqual(run.manifest.stageStarts, [1, 2, 3]);
  assert.ok(lines.some((l) => l.includes(`inrun report ${result.runDir}`)));
  const report = await writeRunReport({ runDir: result.runDir });
  assert.ok((await readFile(report, 'utf8')).includes(result.runDir));
});

test('demo-lm refuses a data folder it did not write', async () => {
  const out = await tempDir();
  await mkdir(join(out, 'data', 'train'), { recursive: true });
  await writeFile(join(out, 'data', 'train', 'notes.txt'), 'mine\n');
  await assert.rejects(
    runLanguageDemo({ ...TINY, out }, () => {}),
    /did not write it/,
  );
  assert.equal(await readFile(join(out, 'data', 'train', 'notes.txt'), 'utf8'), 'mine\n');
});

// `inrun evaluate` on a text (gpt) run, end to end on a tiny corpus: junk documents planted,
// one run, every signal scored per document and checked against the written files, removal
// curves of whole documents; and its errors.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { evaluationTable } from '../../src/cli/evaluate.js';
import type { TextEvaluation } from '../../src/evaluate/evaluate.js';
import { TEXT_SIGNALS } from '../../src/evaluate/text.js';
import { loadBundledCorpus } from '../../src/text/corpora.js';
import { BOILERPLATE } from '../../src/text/junk.js';
import { blobs, runCli, tempDir, toCsv, writeFiles } from '../cli/fixtures/train-data.js';
import { aurocByPairs } from '../reference/metrics.js';

const KINDS = ['random-words', 'boilerplate', 'shuffled', 'near-duplicate'];

/** 30 training, 6 validation and 6 test passages of about 300 characters, one .txt file each. */
function setUp(config: Record<string, unknown> = {}): string {
  const dir = tempDir('inrun-evaluate-text-');
  const speeches = loadBundledCorpus('speeches');
  const passage = (text: string) => {
    const start = text.indexOf(' ', Math.floor(text.length / 2)) + 1;
    return text.slice(start, text.lastIndexOf(' ', start + 300));
  };
  const parts: [string, number, number][] = [
    ['train', 0, 30],
    ['validation', 30, 6],
    ['test', 36, 6],
  ];
  for (const [part, first, count] of parts) {
    mkdirSync(join(dir, part));
    for (let k = first; k < first + count; k++)
      writeFileSync(join(dir, part, `${speeches[k].id.split('/')[1]}.txt`), passage(speeches[k].text));
  }
  writeFiles(dir, {
    'config.json': JSON.stringify({
      data: { train: 'train', validation: 'validation', test: 'test' },
      model: { kind: 'gpt', layers: 1, heads: 2, width: 16, context: 16 },
      optimizer: { kind: 'adamw', lr: 0.01 },
      batchSize: 16,
      epochs: 1,
      ...config,
    }),
  });
  return dir;
}

function csvRows(path: string): string[][] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(','));
}

const words = (text: string) => text.split(/\s+/);

test('evaluate on text: junk planted among the documents, every signal scored, removal curves by retraining', async () => {
  const dir = setUp();
  const out = join(dir, 'eval');
  const result = await runCli(
    'evaluate',
    '--config',
    join(dir, 'config.json'),
    '--faults',
    KINDS.map((kind) => `${kind}:0.1`).join(','),
    '--out',
    out,
    '--removal',
    '0.1,0.2',
    '--curves',
    'value,tfidf,random',
    '--json',
  );
  assert.equal(result.code, 0, result.err);
  const printed = JSON.parse(result.out.slice(0, result.out.lastIndexOf('}') + 1)) as TextEvaluation;
  const saved = JSON.parse(readFileSync(join(out, 'evaluation.json'), 'utf8')) as TextEvaluation;
  assert.deepEqual(printed, saved);
  assert.equal(saved.task, 'text');
  assert.equal(saved.trainSize, 30);
  assert.deepEqual(
    saved.faults.map((f) => [f.kind, f.rows]),
    KINDS.map((kind) => [kind, 3]),
  );

  // faults.csv lists the 12 planted documents by id; each one's text in train.jsonl is its junk,
  // every other document's text is the input file's.
  const faults = csvRows(join(out, 'data', 'faults.csv'));
  assert.equal(faults.length, 12);
  const faultOf = new Map(faults.map(([id, kind, source]) => [id, { kind, source }]));
  const planted = (
    readFileSync(join(out, 'data', 'train.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line)) as { id: string; text: string }[]
  ).map((d) => ({ ...d, original: readFileSync(join(dir, 'train', d.id), 'utf8') }));
  assert.equal(planted.length, 30);
  const byId = new Map(planted.map((d) => [d.id, d]));
  for (const d of planted) {
    const fault = faultOf.get(d.id);
    if (!fault) assert.equal(d.text, d.original, d.id);
    else if (fault.kind === 'boilerplate') assert.ok(d.text.startsWith(BOILERPLATE), d.id);
    else if (fault.kind === 'shuffled')
      assert.deepEqual([...words(d.text)].sort(), [...words(d.original)].sort(), d.id);
    else if (fault.kind === 'random-words') assert.equal(words(d.text).length, words(d.original).length);
    else {
      assert.equal(fault.kind, 'near-duplicate');
      assert.ok(!faultOf.has(fault.source), 'copies a clean document');
      const source = words(byId.get(fault.source)!.text);
      assert.ok(words(d.text).filter((w, k) => w !== source[k]).length <= 3, d.id);
    }
    if (fault?.kind !== 'near-duplicate') assert.equal(fault?.source ?? '', '');
  }

  // Every signal, finite, with an AUROC per planted kind.
  assert.deepEqual(saved.signals.map((s) => s.name).sort(), [...TEXT_SIGNALS].sort());
  for (const s of saved.signals) {
    for (const x of [s.auroc, s.averagePrecision, s.precisionAtK[12]])
      assert.ok(Number.isFinite(x) && x >= 0 && x <= 1, `${s.name}: ${x}`);
    assert.deepEqual(Object.keys(s.aurocByFault).sort(), [...KINDS].sort());
  }
  // The value's AUROC and P@12 again, from documents.csv and faults.csv alone.
  const documents = csvRows(join(out, 'run', 'documents.csv'));
  assert.equal(documents.length, 30);
  const score = documents.map((cells) => -Number(cells[4])); // −second_order
  const isPlanted = documents.map(([id]) => faultOf.has(id));
  const value = saved.signals.find((s) => s.name === 'value')!;
  assert.ok(Math.abs(value.auroc - aurocByPairs(score, isPlanted)) < 1e-12);
  const top = documents.map((_, i) => i).sort((a, b) => score[b] - score[a]);
  assert.equal(value.precisionAtK[12], top.slice(0, 12).filter((i) => isPlanted[i]).length / 12);

  // Removal curves drop ⌈fraction · 30⌉ whole documents and measure the test loss after retraining.
  assert.deepEqual(
    saved.removal.curves.map((c) => [c.name, c.points.map((p) => [p.fraction, p.removed])]),
    ['value', 'tfidf', 'random'].map((name) => [
      name,
      [
        [0.1, 3],
        [0.2, 6],
      ],
    ]),
  );
  assert.ok(Number.isFinite(saved.removal.baseline.testLoss));
  for (const curve of saved.removal.curves)
    for (const p of curve.points) {
      assert.ok(Number.isFinite(p.testLoss) && p.testLoss > 0);
      assert.ok(p.faultsRemoved <= p.removed);
      assert.ok(!('testAccuracy' in p), 'text runs have no accuracy');
    }
  // The run's sequences and steps (every retraining's too), and the outputs a reader sees.
  const sequences =
    readFileSync(join(out, 'run', 'values.csv'), 'utf8')
      .trim()
      .split('\n').length - 1;
  assert.equal(saved.text.sequences, sequences, 'one epoch: every sequence valued');
  assert.equal(saved.text.steps, Math.ceil(sequences / 16));
  assert.match(
    evaluationTable(saved),
    /^30 training documents \(\d+ sequences, \d+ optimizer steps\), planted:/,
  );
  assert.match(readFileSync(join(out, 'evaluation.html'), 'utf8'), /30 training documents/);
});

test('evaluate on text: bad input is one clear line, and nothing is written', async () => {
  const text = setUp();
  const table = tempDir('inrun-evaluate-table-');
  writeFiles(table, {
    'train.csv': toCsv(blobs(40, { seed: 3 })),
    'val.csv': toCsv(blobs(20, { seed: 4, prefix: 'v' })),
    'test.csv': toCsv(blobs(20, { seed: 5, prefix: 't' })),
    'config.json': JSON.stringify({
      data: { train: 'train.csv', validation: 'val.csv', test: 'test.csv' },
      columns: { id: 'id', label: 'label', features: ['x1', 'x2', 'x3', 'x4'] },
      model: { kind: 'mlp', hidden: [8] },
    }),
  });
  const noTest = setUp({ data: { train: 'train', validation: 'validation' } });
  const cases: [string, string[], RegExp][] = [
    [
      join(table, 'config.json'),
      ['--faults', 'random-words:0.1'],
      /fault kind random-words is for text \(model kind gpt\), but the config's model kind is mlp; table kinds: label-flip/,
    ],
    [
      join(text, 'config.json'),
      ['--faults', 'label-flip:0.1'],
      /fault kind label-flip is for tables, but the config's model kind is gpt \(text\); text kinds: random-words/,
    ],
    [join(text, 'config.json'), ['--faults', 'boilerplate:0.6'], /fault rate of boilerplate must be/],
    [
      join(text, 'config.json'),
      ['--curves', 'knn_shapley_raw'],
      /no signal "knn_shapley_raw"; the signals are value,/,
    ],
    [join(noTest, 'config.json'), [], /the config has no test set; add data.test/],
  ];
  for (const [config, args, pattern] of cases) {
    const out = join(table, `out-${cases.findIndex((c) => c[1] === args)}`);
    const result = await runCli('evaluate', '--config', config, '--out', out, ...args);
    assert.equal(result.code, 1, args.join(' '));
    assert.match(result.err, /^inrun: error: [^\n]*\n$/, 'one line');
    assert.match(result.err, pattern);
    assert.ok(!existsSync(out), `${args.join(' ')}: nothing written`);
  }
  // Two steps leave most documents untrained, so they have no values: the run cannot be scored.
  const short = setUp({ epochs: undefined, steps: 2 });
  const result = await runCli('evaluate', '--config', join(short, 'config.json'), '--out', join(short, 'o'));
  assert.equal(result.code, 1);
  // After the progress line of the run, the error.
  assert.match(
    result.err,
    /\ninrun: error: inrun evaluate: \d+ training documents were never in a batch, so they have no values; train at least one epoch \(set epochs, not steps\)\n$/,
  );
  assert.doesNotMatch(result.err, /\n {4}at /);
});

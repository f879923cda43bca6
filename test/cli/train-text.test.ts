// `inrun train` with model kind gpt on text: a folder corpus end to end (files, document and
// source totals, efficiency), JSONL text, resume, and malformed text inputs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseCsv } from '../../src/data/readers/csv.js';
import { loadRun, RUN_FILES, readManifest } from '../../src/io/run-dir.js';
import { runCli, tempDir } from './fixtures/train-data.js';

/** Writes files given by relative path (folders created). */
function write(dir: string, files: Record<string, string | Uint8Array>): string {
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, name);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, content);
  }
  return dir;
}

const CORPUS = {
  'corpus/a.txt': 'The cat sat on the mat. The cat was happy and the mat was warm.',
  'corpus/b.txt': 'A dog ran in the park; the dog chased a ball all afternoon long.',
  'corpus/poems/c.md': 'Roses are red,\nviolets are blue,\nsugar is sweet,\nand so are you.',
  'corpus/poems/d.txt': 'Twinkle twinkle little star, how I wonder what you are.',
  'corpus/empty.txt': '',
  'corpus/x.txt': 'x',
  'corpus/.hidden.txt': 'ignored',
  'corpus/notes.csv': 'not text data',
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
  lr: 0.01
batchSize: 4
steps: 6
stages: 2
checkpointEvery: 2
kernels: portable
`;

function setup(config = CONFIG, files: Record<string, string | Uint8Array> = CORPUS) {
  const dir = write(tempDir('inrun-text-'), files);
  const path = join(dir, 'run.yaml');
  writeFileSync(path, config);
  return { dir, config: path };
}

const RUN_CLI = fileURLToPath(new URL('./fixtures/run-cli.ts', import.meta.url));

const csvRows = (path: string) => parseCsv(readFileSync(path, 'utf8'), path).rows.map((r) => r.cells);

test('train gpt on a text folder: files, document and source totals, efficiency, skipped documents', async () => {
  const { dir, config } = setup();
  const out = join(dir, 'run');
  const r = await runCli('train', '--config', config, '--out', out, '--quiet');
  assert.equal(r.code, 0, r.err);
  // Skipped documents: one line each, on stderr and in the manifest.
  const skips = r.err.split('\n').filter((l) => l.includes('skipped document'));
  assert.equal(skips.length, 2, r.err);
  assert.match(r.err, /skipped document "empty\.txt" \(corpus\): its text is empty/);
  assert.match(r.err, /skipped document "x\.txt" \(corpus\): its text encodes to 1 token/);
  for (const name of [
    RUN_FILES.config,
    RUN_FILES.manifest,
    RUN_FILES.valuesCsv,
    RUN_FILES.valuesJsonl,
    RUN_FILES.valuesParquet,
    RUN_FILES.traceCsv,
    RUN_FILES.traceJsonl,
    RUN_FILES.weightsInitial,
    RUN_FILES.weightsFinal,
    RUN_FILES.vocabulary,
    RUN_FILES.documents,
    RUN_FILES.sources,
  ])
    assert.ok(existsSync(join(out, name)), name);
  assert.ok(!existsSync(join(out, RUN_FILES.checkpoint)));

  const run = await loadRun(out);
  assert.equal(run.manifest.data.text?.tokenizer, 'bytes');
  assert.equal(run.manifest.data.text?.trainDocuments, 6);
  assert.equal(run.manifest.data.text?.skipped.length, 2);
  assert.equal(run.manifest.data.train.format, 'folder');
  assert.ok(run.text);
  // bytes tokenizer: no compaction by default; the vocabulary is the tokenizer's.
  assert.deepEqual(run.text.vocabulary, {
    tokenizer: 'bytes',
    size: 257,
    tokenizerSize: 257,
    original: null,
  });

  // Sequence ids `${documentId}#${k}`, group = source (first sub-folder or the folder's name).
  for (const v of run.values) {
    assert.match(String(v.id), /^(a\.txt|b\.txt|poems\/c\.md|poems\/d\.txt)#\d+$/);
    assert.equal(v.group, String(v.id).startsWith('poems/') ? 'poems' : 'corpus');
  }
  // documents.csv: each document's values are the sums of its sequences' values.
  const documents = csvRows(join(out, RUN_FILES.documents));
  assert.equal(documents.length, 4);
  for (const doc of documents) {
    const seqs = run.values.filter((v) => String(v.id).startsWith(`${doc.document_id}#`));
    assert.equal(Number(doc.sequences), seqs.length);
    for (const [col, key] of [
      ['first_order', 'firstOrder'],
      ['second_order', 'secondOrder'],
    ] as const) {
      const sum = seqs.reduce((s, v) => s + (v[key] as number), 0);
      assert.ok(Math.abs(Number(doc[col]) - sum) <= 1e-12 * (1 + Math.abs(sum)), `${doc.document_id} ${col}`);
    }
    const stageSum = seqs.reduce((s, v) => s + v.stages[1], 0);
    assert.ok(Math.abs(Number(doc.stage_1) - stageSum) <= 1e-12 * (1 + Math.abs(stageSum)));
  }
  // sources.csv: per-source totals per stage.
  const { sources, documents: documentRows } = run.text;
  assert.deepEqual(sources.map((s) => s.id).sort(), ['corpus', 'poems']);
  for (const s of sources) {
    const docs = documentRows.filter((d) => d.source === s.id);
    assert.equal(s.documents, docs.length);
    const total = docs.reduce((t, d) => t + d.firstOrder, 0);
    assert.ok(Math.abs(s.firstOrder - total) <= 1e-12 * (1 + Math.abs(total)));
    assert.equal(s.stages.length, 2);
  }
  // Coverage is always stated for text runs.
  const sequences = run.manifest.data.trainExamples;
  if (run.values.length === sequences)
    assert.match(
      r.out,
      new RegExp(
        `^coverage: every training sequence valued \\(${sequences} sequences of 4 documents\\)$`,
        'm',
      ),
    );
  else
    assert.match(
      r.out,
      new RegExp(`^coverage: ${run.values.length} of ${sequences} training sequences valued`, 'm'),
    );
  // Efficiency: Σ sequence values match the Taylor utility each step.
  for (const row of run.trace) {
    const scale = Math.abs(row.firstOrderUtility) + Math.abs(row.secondOrderUtility ?? 0) + 1e-12;
    assert.ok(
      Math.abs(row.efficiencyResidual) <= 1e-6 * scale + 1e-12,
      `step ${row.step}: ${row.efficiencyResidual}`,
    );
  }
});

test('train gpt: SIGTERM part-way, then --resume gives byte-identical files to an uninterrupted run', async () => {
  const config40 = CONFIG.replace('steps: 6', 'steps: 40').replace(
    'checkpointEvery: 2',
    'checkpointEvery: 3',
  );
  const { dir, config } = setup(config40);
  const reference = join(dir, 'reference');
  const r = await runCli('train', '--config', config, '--out', reference, '--quiet');
  assert.equal(r.code, 0, r.err);
  const out = join(dir, 'stopped');
  const child = await new Promise<{ code: number | null; err: string }>((done, reject) => {
    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', RUN_CLI, 'train', '--config', config, '--out', out, '--json'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let buffer = '';
    let err = '';
    let sent = false;
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      buffer += chunk;
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        const event = JSON.parse(line) as { event: string; step?: number };
        if (!sent && event.event === 'step' && event.step! >= 5) {
          sent = true;
          proc.kill('SIGTERM');
        }
      }
    });
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk: string) => {
      err += chunk;
    });
    proc.on('error', reject);
    proc.on('close', (code) => done({ code, err }));
  });
  assert.equal(child.code, 1, child.err);
  assert.match(child.err, /interrupted by SIGTERM after step \d+ of 40; checkpoint saved/);
  assert.equal((await readManifest(out)).status, 'interrupted');
  const resumed = await runCli('train', '--resume', out, '--quiet');
  assert.equal(resumed.code, 0, resumed.err);
  for (const name of [
    RUN_FILES.valuesCsv,
    RUN_FILES.valuesParquet,
    RUN_FILES.traceCsv,
    RUN_FILES.weightsFinal,
    RUN_FILES.documents,
    RUN_FILES.sources,
    RUN_FILES.vocabulary,
  ])
    assert.ok(readFileSync(join(out, name)).equals(readFileSync(join(reference, name))), `${name} differs`);
  // A changed corpus is refused on resume (sha256 of the folder's files).
  writeFileSync(
    join(out, 'manifest.json'),
    readFileSync(join(out, 'manifest.json'), 'utf8').replace('"complete"', '"interrupted"'),
  );
  writeFileSync(join(dir, 'corpus/b.txt'), 'changed');
  const changed = await runCli('train', '--resume', out, '--quiet');
  assert.equal(changed.code, 1);
  assert.match(changed.err, /corpus: the training data changed since the run started/);
});

test('train gpt on JSONL with text, id and group columns; gpt2 tokenizer with a compact vocabulary', async () => {
  const rows = [
    { doc: 'd1', body: 'Call me Ishmael. Some years ago, never mind how long.', corpus: 'moby' },
    { doc: 'd2', body: 'In the beginning God created the heaven and the earth.', corpus: 'kjv' },
    { doc: 'd3', body: 'Four score and seven years ago our fathers brought forth.', corpus: 'speeches' },
    { doc: 'd4', body: 'And the earth was without form, and void.', corpus: 'kjv' },
  ];
  const jsonl = rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  const config = CONFIG.replace('train: corpus', 'train: docs.jsonl')
    .replace('validation: val', 'validationSplit: 0.25')
    .replace('tokenizer: bytes', 'tokenizer: gpt2')
    .replace('batchSize: 4', 'batchSize: 2')
    .concat('columns: { text: body, id: doc, group: corpus }\n');
  const { dir, config: path } = setup(config, { 'docs.jsonl': jsonl });
  const out = join(dir, 'run');
  const r = await runCli('train', '--config', path, '--out', out, '--quiet');
  assert.equal(r.code, 0, r.err);
  const run = await loadRun(out);
  assert.ok(run.text);
  assert.equal(run.text.vocabulary.tokenizer, 'gpt2');
  assert.ok(run.text.vocabulary.original !== null);
  assert.equal(run.text.vocabulary.size, run.text.vocabulary.original.length);
  assert.ok(run.text.vocabulary.original.includes(50256));
  assert.equal(run.manifest.data.text?.validationDocuments, 1);
  assert.equal(run.text.documents.length, 3);
  for (const d of run.text.documents) assert.equal(d.source, rows.find((x) => x.doc === d.id)?.corpus);
});

interface BadCase {
  name: string;
  files: Record<string, string | Uint8Array>;
  config?: string;
  expect: RegExp;
}

const BAD: BadCase[] = [
  {
    name: 'empty folder',
    files: { 'corpus/notes.csv': 'a,b\n', 'val/v.txt': 'hello there' },
    expect: /corpus: the training folder holds no text files \(\.txt, \.md\)/,
  },
  {
    name: 'invalid UTF-8',
    files: {
      'corpus/a.txt': 'fine text here',
      'corpus/bad.txt': new Uint8Array([0x68, 0x69, 0x0a, 0x61, 0xff, 0x62]),
      'val/v.txt': 'hello there',
    },
    expect: /bad\.txt: not valid UTF-8: invalid byte sequence at byte offset 4 \(line 2\)/,
  },
  {
    name: 'validation text that tokenizes to nothing',
    files: { 'corpus/a.txt': 'fine text here', 'val/v.txt': 'x', 'val/w.txt': '' },
    expect: /val: the validation text tokenizes to nothing \(2 documents/,
  },
  {
    name: 'training text that tokenizes to nothing',
    files: { 'corpus/a.txt': '', 'val/v.txt': 'hello there' },
    expect: /corpus: the training text tokenizes to nothing/,
  },
  {
    name: 'unknown tokenizer',
    files: { 'corpus/a.txt': 'fine text here', 'val/v.txt': 'hello there' },
    config: CONFIG.replace('tokenizer: bytes', 'tokenizer: sentencepiece'),
    expect: /line \d+: model\.tokenizer: expected "gpt2" or "bytes", got the string "sentencepiece"/,
  },
  {
    name: 'context too small',
    files: { 'corpus/a.txt': 'fine text here', 'val/v.txt': 'hello there' },
    config: CONFIG.replace('context: 16', 'context: 1'),
    expect: /line \d+: model\.context: must be ≥ 2, got number 1/,
  },
  {
    name: 'width not divisible by heads',
    files: { 'corpus/a.txt': 'fine text here', 'val/v.txt': 'hello there' },
    config: CONFIG.replace('heads: 2', 'heads: 3'),
    expect: /model\.width \(16\) must be divisible by model\.heads \(3\)/,
  },
  {
    name: 'columns.features with gpt',
    files: { 'corpus/a.txt': 'fine text here', 'val/v.txt': 'hello there' },
    config: `${CONFIG}columns: { features: [a] }\n`,
    expect: /columns\.features applies to tabular models \(logreg, mlp\), not gpt/,
  },
  {
    name: 'unknown text file type',
    files: { 'corpus.docx': 'x', 'val/v.txt': 'hello there' },
    config: CONFIG.replace('train: corpus', 'train: corpus.docx'),
    expect: /corpus\.docx: unknown text data type "\.docx"/,
  },
  {
    name: 'missing text folder',
    files: { 'val/v.txt': 'hello there' },
    expect: /corpus: cannot read the training text \(no such file or folder\)/,
  },
  {
    name: 'JSONL without the text column',
    files: { 'docs.jsonl': '{"body":"hello there"}\n', 'val/v.txt': 'hello there' },
    config: CONFIG.replace('train: corpus', 'train: docs.jsonl'),
    expect: /docs\.jsonl: no text column "text" \(columns: body\); set columns\.text/,
  },
  {
    name: 'JSONL text that is not a string',
    files: { 'docs.jsonl': '{"text":"hello there"}\n{"text":5}\n', 'val/v.txt': 'hello there' },
    config: CONFIG.replace('train: corpus', 'train: docs.jsonl'),
    expect: /docs\.jsonl: line 2, column "text": text must be a string, got number/,
  },
];

for (const c of BAD) {
  test(`train gpt, malformed: ${c.name} → one clear error line, no output`, async () => {
    const { dir, config } = setup(c.config ?? CONFIG, c.files);
    const out = join(dir, 'run');
    const r = await runCli('train', '--config', config, '--out', out, '--quiet');
    assert.notEqual(r.code, 0);
    const lines = r.err.trim().split('\n');
    assert.equal(lines.length, 1, r.err);
    assert.match(lines[0], /^inrun: error: /);
    assert.match(lines[0], c.expect);
    assert.ok(!existsSync(out), 'no run directory');
  });
}

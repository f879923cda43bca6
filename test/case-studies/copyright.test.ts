// The copyright case study's data and its rank table (the run itself is the study: see
// docs/case-studies.md). Verbatim queries must be verbatim, and rewrites must not be.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { copyrightRanks, LEVELS, SOURCES, writeCopyrightData } from '../../case-studies/copyright.js';
import { RUN_FILES } from '../../src/io/run-dir.js';
import { tempDir } from '../cli/fixtures/train-data.js';

const squash = (text: string) => text.replace(/\s+/g, ' ').trim();

test('the study writes the three source speeches and the shortest others, and every query', () => {
  const root = tempDir('inrun-copyright-');
  writeCopyrightData(root, 10);
  const train = readdirSync(join(root, 'train'));
  assert.equal(train.length, 10);
  for (const source of Object.values(SOURCES)) assert.ok(train.includes(`${source}.txt`), source);
  const queries = readdirSync(join(root, 'queries')).sort();
  assert.deepEqual(
    queries,
    Object.keys(SOURCES)
      .flatMap((family) => LEVELS.map((level) => `${family}-${level}.txt`))
      .sort(),
  );
  for (const family of Object.keys(SOURCES)) {
    const speech = squash(readFileSync(join(root, 'train', `${SOURCES[family]}.txt`), 'utf8'));
    const query = (level: string) =>
      squash(readFileSync(join(root, 'queries', `${family}-${level}.txt`), 'utf8'));
    assert.ok(speech.includes(query('verbatim')), `${family}: the verbatim passage is in its speech`);
    for (const level of ['paraphrase', 'heavy', 'control'])
      assert.ok(!speech.includes(query(level)), `${family}-${level} is not a copy`);
  }
});

test('copyrightRanks reads each source’s ranks from attribution.csv', () => {
  const dir = tempDir('inrun-copyright-ranks-');
  mkdirSync(dir, { recursive: true });
  const header =
    'query_id,query_source,rank,document_id,source,sequences,sequences_valued,times_seen,first_order,second_order,normalized,best_sequence,best_normalized,rank_tfidf,rank_bm25,stage_0';
  const lines = [
    // lbj-verbatim: the source is second by best sequence, first by its value sum.
    'lbj-verbatim.txt,q,1,a.txt,t,2,2,2,0.1,0.1,0.5,a.txt#0,0.4,2,2,0.1',
    'lbj-verbatim.txt,q,2,1964-lyndon-b-johnson.txt,t,2,2,2,0.3,0.3,0.2,1964-lyndon-b-johnson.txt#1,0.3,1,1,0.3',
    'lbj-verbatim.txt,q,3,b.txt,t,2,0,0,0,0,0,,,,3,0',
  ];
  writeFileSync(join(dir, RUN_FILES.attribution), `${[header, ...lines].join('\n')}\n`);
  assert.deepEqual(copyrightRanks(dir), [
    {
      query: 'lbj-verbatim.txt',
      family: 'lbj',
      level: 'verbatim',
      source: '1964-lyndon-b-johnson.txt',
      inrun: 2,
      valueSum: 1,
      tfidf: 1,
      bm25: 1,
      documents: 3,
    },
  ]);
});

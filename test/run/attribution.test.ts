// Queries as documents: a text run with per-validation values writes attribution.csv, whose
// per-query document values add up to documents.csv (values are additive over queries and over a
// document's sequences), ranked by the documented rule, with the lexical ranks beside them.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseCsv } from '../../src/data/readers/csv.js';
import { RUN_FILES } from '../../src/io/run-dir.js';
import { writeRunReport } from '../../src/report/write.js';
import { parseTrainConfig } from '../../src/run/config.js';
import { trainRun } from '../../src/run/train-run.js';
import type { DocumentQueryValue } from '../../src/text/aggregate.js';
import { attribution, rankingKey } from '../../src/text/attribution.js';
import { tempDir } from '../cli/fixtures/train-data.js';

const TRAINING = {
  'sea/log.txt': 'The ship sailed west over the grey sea, and the sailors watched the waves all day long.',
  'sea/whale.txt': 'At dawn the whale rose beside the ship, and the sailors lowered the boats into the sea.',
  'kitchen/bread.txt': 'Mix the flour with water and salt, knead the dough, and bake the bread until brown.',
  'kitchen/soup.txt': 'Chop the onions, warm the pot, pour in the water and let the soup simmer slowly.',
};
const QUERIES = {
  'copy.txt': 'Mix the flour with water and salt, knead the dough, and bake the bread until brown.',
  'sea.txt': 'The sailors watched the grey waves while the ship sailed west.',
};

function write(dir: string, files: Record<string, string>): string {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

function readCsv(path: string): Record<string, string>[] {
  return parseCsv(readFileSync(path, 'utf8'), path).rows.map((r) => r.cells as Record<string, string>);
}

describe('attribution.csv of a text run with per-validation values', async () => {
  const root = tempDir('inrun-attribution-');
  const config = parseTrainConfig({
    value: {
      data: {
        train: write(join(root, 'train'), TRAINING),
        validation: write(join(root, 'queries'), QUERIES),
      },
      model: { kind: 'gpt', layers: 1, heads: 2, width: 16, context: 8 },
      optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
      batchSize: 4,
      steps: 8,
      stages: 2,
      order: 2,
      perValidation: true,
      out: join(root, 'run'),
    },
    flagPaths: new Map(),
  });
  const result = await trainRun({ config });
  const rows = readCsv(join(result.runDir, RUN_FILES.attribution));
  const documents = readCsv(join(result.runDir, RUN_FILES.documents));
  const documentIds = documents.map((d) => d.document_id);

  test('every query ranks every training document once, ranks 1..D', () => {
    for (const query of ['copy.txt', 'sea.txt']) {
      const own = rows.filter((r) => r.query_id === query);
      assert.deepEqual(
        own.map((r) => Number(r.rank)),
        [1, 2, 3, 4],
      );
      assert.deepEqual(own.map((r) => r.document_id).sort(), [...documentIds].sort());
    }
    assert.equal(rows.length, 8);
  });

  test('per-query values add up to the documents’ values, in both orders and per stage', () => {
    for (const doc of documents) {
      const own = rows.filter((r) => r.document_id === doc.document_id);
      for (const column of ['first_order', 'second_order', 'stage_0', 'stage_1']) {
        const total = own.reduce((acc, r) => acc + Number(r[column]), 0);
        const expected = Number(doc[column]);
        assert.ok(
          Math.abs(total - expected) <= 1e-6 * Math.max(1e-6, Math.abs(expected)),
          `${doc.document_id} ${column}: ${total} vs ${expected}`,
        );
      }
      for (const r of own) assert.equal(Number(r.sequences_valued), Number(doc.sequences));
    }
  });

  test('rows are ranked by the best sequence’s normalised value; the copied passage is TF-IDF’s first', () => {
    for (const query of ['copy.txt', 'sea.txt']) {
      const keys = rows
        .filter((r) => r.query_id === query && Number(r.sequences_valued) > 0)
        .map((r) => Number(r.best_normalized));
      assert.ok(keys.length > 0);
      for (let k = 1; k < keys.length; k++) assert.ok(keys[k - 1] >= keys[k]);
    }
    const copy = rows.find((r) => r.query_id === 'copy.txt' && r.rank_tfidf === '1');
    assert.equal(copy?.document_id, 'kitchen/bread.txt');
    assert.equal(
      rows.find((r) => r.query_id === 'copy.txt' && r.rank_bm25 === '1')?.document_id,
      'kitchen/bread.txt',
    );
  });
});

describe('the report shows the attribution of a text run', async () => {
  const root = tempDir('inrun-attribution-report-');
  const config = parseTrainConfig({
    value: {
      data: {
        train: write(join(root, 'train'), TRAINING),
        validation: write(join(root, 'queries'), QUERIES),
      },
      model: { kind: 'gpt', layers: 1, heads: 2, width: 16, context: 8 },
      optimizer: { kind: 'sgd', lr: 0.1 },
      batchSize: 4,
      steps: 4,
      order: 1,
      perValidation: true,
      out: join(root, 'run'),
    },
    flagPaths: new Map(),
  });
  const result = await trainRun({ config });
  const out = await writeRunReport({ runDir: result.runDir, top: 2 });
  const html = readFileSync(out, 'utf8');
  const section = html.slice(
    html.indexOf('<section id="attribution">'),
    html.indexOf('</section>', html.indexOf('<section id="attribution">')),
  );
  const rows = readCsv(join(result.runDir, RUN_FILES.attribution));

  test('per query: its text and its first documents with coverage, ranks and best sequence', () => {
    assert.ok(section.length > 0, 'no attribution section');
    assert.match(html, /href="#attribution"/);
    for (const query of ['copy.txt', 'sea.txt']) {
      assert.ok(section.includes(`<h3>${query} `), query);
      const first = rows.find((r) => r.query_id === query && r.rank === '1')!;
      assert.ok(section.includes(first.document_id));
    }
    assert.ok(section.includes(QUERIES['sea.txt']), 'the query text');
    assert.match(section, /The first 2 of 4 training documents/);
    // The best sequence's text is decoded from the training data.
    assert.match(section, /class="snippet">(sea|kitchen)\/\w+\.txt \(\w+\): /);
  });
});

describe('attribution rankings', () => {
  const row = (documentId: string, values: Partial<DocumentQueryValue>): DocumentQueryValue => ({
    query: 0,
    documentId,
    source: 's',
    sequences: 2,
    sequencesValued: 1,
    timesSeen: 1,
    firstOrder: 0,
    secondOrder: Number.NaN,
    normalized: 0,
    bestSequence: `${documentId}#0`,
    bestNormalized: 0,
    stages: [0],
    ...values,
  });
  const rowsOf = () => [
    row('a', { firstOrder: 5, normalized: 0.1, bestNormalized: 0.1 }),
    row('b', { firstOrder: 1, normalized: 0.9, bestNormalized: 0.2 }),
    row('c', { sequencesValued: 0, bestSequence: null, bestNormalized: Number.NaN }),
    row('d', { firstOrder: -1, secondOrder: 7, normalized: 0.3, bestNormalized: 0.3 }),
  ];
  const texts = new Map([
    ['a', 'red apples'],
    ['b', 'green pears'],
    ['c', 'red red apples'],
    ['d', 'blue plums'],
  ]);
  const query = [{ documentId: 'q', source: 'v', text: 'red apples' }];
  const order = (ranking: 'best' | 'normalized' | 'value') =>
    attribution([rowsOf()], query, texts, ranking)[0].map((r) => r.documentId);

  test('each ranking sorts by its key, second order before first, unvalued last', () => {
    assert.deepEqual(order('best'), ['d', 'b', 'a', 'c']);
    assert.deepEqual(order('normalized'), ['b', 'd', 'a', 'c']);
    assert.deepEqual(order('value'), ['d', 'a', 'b', 'c']);
    assert.equal(rankingKey(rowsOf()[2], 'value'), Number.NaN);
  });

  test('lexical ranks come with every row; a query without words has none', () => {
    const ranked = attribution([rowsOf()], query, texts)[0];
    const tfidf = new Map(ranked.map((r) => [r.documentId, r.rankTfidf]));
    // "red apples" against itself (a) ranks first; b and d share no word and keep document order.
    assert.equal(tfidf.get('a'), 1);
    assert.equal(tfidf.get('c'), 2);
    const none = attribution([rowsOf()], [{ documentId: 'q', source: 'v', text: '…' }], texts)[0];
    assert.ok(none.every((r) => r.rankTfidf === null && r.rankBm25 === null));
    assert.throws(() => attribution([rowsOf()], query, texts, 'loudest' as never), /must be one of best/);
  });
});

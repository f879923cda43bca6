import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ValueLedger } from '../../src/shapley/ledger.js';
import { documentValues } from '../../src/text/aggregate.js';
import { splitIntoSequences } from '../../src/text/sequences.js';
import { getTokenizer } from '../../src/text/tokenizer.js';

test('a document split into several sequences is worth the sum of its sequences', () => {
  const { sequences } = splitIntoSequences(
    [
      { id: 'long', source: 'a', text: 'one two three four five six seven eight nine ten eleven twelve' },
      { id: 'short', source: 'b', text: 'hello there' },
    ],
    getTokenizer('bytes'),
    { context: 8 },
  );
  const ledger = new ValueLedger({ hasSecondOrder: true, stageStarts: [1] });
  const ids = sequences.map((s) => s.id);
  const first = Float64Array.from(ids, (_, k) => 0.5 * k - 1);
  const second = Float64Array.from(ids, (_, k) => k * k * 0.01 - 0.2);
  ledger.addStep({
    step: 0,
    ids,
    groups: sequences.map((s) => s.source),
    firstOrder: first,
    secondOrder: second,
  });
  ledger.addStep({
    step: 3,
    ids: ids.slice(0, 2),
    groups: ['a', 'a'],
    firstOrder: first.slice(0, 2),
    secondOrder: second.slice(0, 2),
  });
  const docs = documentValues(ledger, sequences);
  const long = docs.find((d) => d.documentId === 'long')!;
  const parts = sequences.map((s, k) => ({ s, k })).filter(({ s }) => s.documentId === 'long');
  assert.ok(parts.length > 2);
  let expectedSecond = 0;
  for (const { k } of parts) expectedSecond += second[k] + (k < 2 ? second[k] : 0);
  assert.equal(long.sequences, parts.length);
  assert.ok(Math.abs(long.secondOrder - expectedSecond) < 1e-12);
  assert.ok(Math.abs(long.stages[0] + long.stages[1] - long.secondOrder) < 1e-12);
  assert.equal(docs.find((d) => d.documentId === 'short')!.source, 'b');
});

test('TextSequenceDataset accessors and aggregate: per-document and per-source sums', async () => {
  const { TextSequenceDataset } = await import('../../src/text/sequences.js');
  const { sequences } = splitIntoSequences(
    [
      { id: 'd1', source: 'a', text: 'abcdefghijklmnopq' },
      { id: 'd2', source: 'a', text: 'xyz' },
      { id: 'd3', source: 'b', text: 'hello world' },
    ],
    getTokenizer('bytes'),
    { context: 4 },
  );
  const data = new TextSequenceDataset('train', sequences, 4);
  for (let i = 0; i < data.size; i++) {
    assert.equal(data.documentOf(i), sequences[i].documentId);
    assert.equal(data.sourceOf(i), sequences[i].source);
    assert.equal(data.offsetOf(i), sequences[i].offset);
    assert.equal(data.offsetOf(i), 4 * sequences[i].index);
  }
  assert.throws(() => data.documentOf(data.size), /no sequence at index/);

  const values = new Map<string, number>(sequences.map((s, k) => [s.id, k + 1]));
  values.delete(sequences[0].id); // never trained on: counts as 0
  values.set('nope#0', 5);
  const result = data.aggregate(values);
  const expectDoc = (id: string) =>
    sequences.reduce((sum, s, k) => sum + (s.documentId === id && k > 0 ? k + 1 : 0), 0);
  for (const doc of result.documents) assert.equal(doc.value, expectDoc(doc.documentId));
  const d1 = result.documents.find((d) => d.documentId === 'd1')!;
  assert.equal(d1.sequences, sequences.filter((s) => s.documentId === 'd1').length);
  assert.equal(d1.valued, d1.sequences - 1);
  const a = result.sources.find((s) => s.source === 'a')!;
  assert.equal(a.documents, 2);
  assert.equal(a.value, expectDoc('d1') + expectDoc('d2'));
  assert.equal(result.sources.find((s) => s.source === 'b')!.value, expectDoc('d3'));
  assert.deepEqual(result.unknownIds, ['nope#0']);

  // From a ledger: its main value (second order here); from bare entries: a chosen number.
  const ledger = new ValueLedger({ hasSecondOrder: true });
  ledger.addStep({
    step: 0,
    ids: sequences.map((s) => s.id),
    groups: sequences.map((s) => s.source),
    firstOrder: Float64Array.from(sequences, () => 1),
    secondOrder: Float64Array.from(sequences, () => 2),
  });
  const fromLedger = data.aggregate(ledger);
  assert.equal(
    fromLedger.sources.reduce((s, t) => s + t.value, 0),
    2 * sequences.length,
  );
  const fromEntries = data.aggregate(ledger.all(), { pick: (e) => e.firstOrder });
  assert.equal(
    fromEntries.sources.reduce((s, t) => s + t.value, 0),
    sequences.length,
  );
  assert.deepEqual(fromEntries.unknownIds, []);
});

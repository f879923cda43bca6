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

test('TextSequenceDataset names the document, source and offset of each sequence', async () => {
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
});

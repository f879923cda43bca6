import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseQuoted, splitUnquoted } from '../../src/data/readers/csv.js';
import { isMissing } from '../../src/data/readers/to-dataset.js';
import { Rng } from '../../src/util/rng.js';

// The quote-free fast path must read every text exactly as csv-parse does (records and lines).
test('CSV without quotes: the split fast path equals csv-parse on random texts', () => {
  const rng = new Rng(7);
  const pieces = ['1', '-2.5e3', 'abc', ' ', '  x ', '', 'NA', '\t', 'é', '1e39'];
  const breaks = ['\n', '\r\n', '\r', '\n\n', '\r\n\r\n', '\n \n'];
  for (let trial = 0; trial < 500; trial++) {
    let text = '';
    const lines = 1 + rng.int(6);
    for (let l = 0; l < lines; l++) {
      const fields = 1 + rng.int(4);
      text += Array.from({ length: fields }, () => pieces[rng.int(pieces.length)]).join(',');
      if (l < lines - 1 || rng.uniform() < 0.5) text += breaks[rng.int(breaks.length)];
    }
    assert.deepEqual(splitUnquoted(text), parseQuoted(text, 'x.csv'), JSON.stringify(text));
  }
});

test('isMissing: the untrimmed fast check agrees with trimming', () => {
  const csv = { format: 'csv' as const };
  const jsonl = { format: 'jsonl' as const };
  for (const cell of [
    '',
    ' ',
    '\t',
    '\u00a0',
    '\u3000',
    'NA',
    ' NA ',
    '\u2003NA',
    'na',
    '1',
    ' 1',
    'x\u0001',
    '\u0001',
  ])
    for (const table of [csv, jsonl])
      assert.equal(
        isMissing(table, cell),
        cell.trim() === '' || (table.format === 'csv' && cell.trim() === 'NA'),
        `${JSON.stringify(cell)} in ${table.format}`,
      );
});

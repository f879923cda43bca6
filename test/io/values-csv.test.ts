import assert from 'node:assert/strict';
import { test } from 'node:test';
import { csvField, valuesToCsv } from '../../src/io/values-csv.js';
import { ValueLedger } from '../../src/shapley/ledger.js';

/** RFC 4180 parser for the tests: quoted fields may hold commas, doubled quotes and newlines. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  assert.equal(quoted, false, 'unterminated quote');
  assert.equal(field === '' && row.length === 0, true, 'the CSV must end with a newline');
  return rows;
}

const awkwardIds = ['plain', 'has,comma', 'has "quotes"', 'multi\nline', 'cr\rhere', '', ' spaced '];

function ledgerWith(secondOrder: boolean): ValueLedger {
  const ledger = new ValueLedger({ stageStarts: [1, 2], hasSecondOrder: secondOrder });
  const n = awkwardIds.length;
  const values = (scale: number) =>
    Float64Array.from({ length: n }, (_, i) => scale * (i - 2.5) * Math.PI * 1e-7);
  for (let step = 0; step < 3; step++) {
    ledger.addStep({
      step,
      ids: awkwardIds,
      groups: awkwardIds.map((id, i) => (i === 0 ? undefined : `g,${id}`)),
      firstOrder: values(step + 1),
      secondOrder: secondOrder ? values(step + 1.5) : null,
      signals: {
        selfInfluence: values(step + 2),
        losses: values(-step - 1),
        margins: values(step - 1),
        classValues: values(step + 3),
      },
    });
  }
  ledger.addStep({
    step: 2,
    ids: [7],
    groups: ['numeric id'],
    firstOrder: new Float64Array([1 / 3]),
    secondOrder: secondOrder ? new Float64Array([2 / 3]) : null,
  });
  return ledger;
}

test('valuesToCsv round-trips ids, groups and full-precision numbers', () => {
  for (const secondOrder of [true, false]) {
    const ledger = ledgerWith(secondOrder);
    const rows = parseCsv(valuesToCsv(ledger));
    assert.deepEqual(rows[0], [
      'id',
      'group',
      'times_seen',
      'first_order',
      'second_order',
      'normalized',
      'stage_0',
      'stage_1',
      'stage_2',
      'self_influence',
      'mean_loss',
      'aum',
      'forgetting_events',
      'times_correct',
      'class_value',
      'standard_error',
      'momentum_credit',
    ]);
    const entries = ledger.all();
    assert.equal(rows.length, entries.length + 1);
    entries.forEach((entry, r) => {
      const row = rows[r + 1];
      assert.equal(row.length, 17);
      // Signals: the sums kept, the means per occurrence; id 7 came without signals (empty cells).
      const signal = (x: number) => (Number.isNaN(x) ? '' : String(x));
      assert.deepEqual(row.slice(9), [
        signal(entry.selfInfluence),
        signal(entry.lossSum / entry.timesSeen),
        signal(entry.marginSum / entry.timesSeen),
        signal(entry.forgettingEvents),
        signal(entry.timesCorrect),
        signal(entry.classValue),
        '', // no sampled validation set: no standard error
        '', // no momentum credit
      ]);
      assert.equal(row[9] === '', entry.id === 7);
      assert.equal(row[0], String(entry.id));
      assert.equal(row[1], entry.group ?? '');
      assert.equal(Number(row[2]), entry.timesSeen);
      assert.equal(Number(row[3]), entry.firstOrder);
      if (secondOrder) assert.equal(Number(row[4]), entry.secondOrder);
      else assert.equal(row[4], '');
      assert.equal(Number(row[5]), entry.normalized);
      entry.stages.forEach((v, s) => {
        assert.equal(Number(row[6 + s]), v);
      });
    });
  }
});

test('valuesToCsv appends extra columns and rejects duplicate names', () => {
  const ledger = ledgerWith(false);
  const rows = parseCsv(
    valuesToCsv(ledger, {
      note: (e) => `n"${String(e.id)}"`,
      flag: (e) => e.id === 'plain',
      missing: () => undefined,
    }),
  );
  assert.deepEqual(rows[0].slice(-3), ['note', 'flag', 'missing']);
  assert.deepEqual(rows[1].slice(-3), ['n"plain"', 'true', '']);
  assert.deepEqual(rows[2].slice(-3), ['n"has,comma"', 'false', '']);
  assert.throws(() => valuesToCsv(ledger, { id: () => 1 }), /column "id" appears twice/);
});

test('csvField quotes only what needs quoting', () => {
  assert.equal(csvField('abc'), 'abc');
  assert.equal(csvField('a,b'), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField('x\ny'), '"x\ny"');
  assert.equal(csvField(Number.NaN), '');
  assert.equal(csvField(0.1 + 0.2), '0.30000000000000004');
  assert.equal(csvField(null), '');
});

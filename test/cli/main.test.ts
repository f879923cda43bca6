import assert from 'node:assert/strict';
import { test } from 'node:test';
import { main } from '../../src/cli/main.js';

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['node', 'inrun', ...args], {
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
  });
  return { code, out, err };
}

test('cli: --version and help exit 0', async () => {
  const version = await run('--version');
  assert.equal(version.code, 0);
  assert.match(version.out, /^\d+\.\d+\.\d+/);
  const help = await run('demo', '--help');
  assert.equal(help.code, 0);
  assert.match(help.out, /--batch-size <n>/);
});

test('cli: usage errors exit 2 with "inrun: error:"', async () => {
  for (const args of [['demo', '--bogus'], ['nonsense'], ['demo', '--epochs']]) {
    const r = await run(...args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, /^inrun: error: /, args.join(' '));
    assert.doesNotMatch(r.err, /\n\s+at /);
  }
});

test('cli: bad flag values are user errors naming the flag (exit 1, no stack)', async () => {
  const cases: [string[], RegExp][] = [
    [['--order', '3'], /--order must be 1 or 2/],
    [['--epochs', '0'], /--epochs must be an integer ≥ 1/],
    [['--batch-size', '1.5'], /--batch-size must be an integer/],
    [['--lr', 'fast'], /--lr must be a positive number/],
    [['--seed', '-1'], /--seed must be an integer ≥ 0/],
    [['--kernels', 'gpu'], /--kernels must be auto, native, portable or wasm/],
    [['--batch-size', '4000'], /batch size \(4000\) is larger than the training data/],
  ];
  for (const [args, message] of cases) {
    const r = await run('demo', ...args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.err, /^inrun: error: /);
    assert.match(r.err, message);
    assert.doesNotMatch(r.err, /\n\s+at /);
  }
});

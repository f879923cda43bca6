// What the CLI says when a path is not what it should be (a folder, a pipe, a device, a file
// where a run directory belongs, an unreadable path), for contradicting flags and for hostile
// configs: one `inrun: error:` line in words, never a raw error code such as ENOENT or EACCES.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { blobs, runCli, tempDir, toCsv, writeFiles } from './fixtures/train-data.js';

const dir = writeFiles(tempDir('inrun-messages-'), {
  'train.csv': toCsv(blobs(30, { seed: 1 })),
  'val.csv': toCsv(blobs(10, { seed: 2, prefix: 'v' })),
  'run.yaml': 'data: { train: train.csv, validation: val.csv }\nsteps: 2\n',
  noext: toCsv(blobs(10, { seed: 3 })),
  'foreign.json': '{"name": "not a comparison"}\n',
});
const at = (...parts: string[]) => join(dir, ...parts);
mkdirSync(at('folder.csv'));
mkdirSync(at('folder.yaml'));
mkdirSync(at('empty-run'));
mkdirSync(at('foreign-run'));
writeFileSync(at('foreign-run', 'manifest.json'), '{"name": "some other tool"}\n');
mkdirSync(at('null-run'));
writeFileSync(at('null-run', 'manifest.json'), 'null\n');
execFileSync('mkfifo', [at('pipe.csv'), at('pipe.yaml'), at('pipe.txt')]);
symlinkSync('loop.yaml', at('loop.yaml'));
const out = at('out');
const train = ['train', '--out', out, '--steps', '2'];
const data = ['--train', at('train.csv'), '--validation', at('val.csv')];

/** Runs the CLI; asserts exit 1, one `inrun: error:` line, no error code; returns the line. */
async function errorLine(args: string[]): Promise<string> {
  const r = await runCli(...args);
  const label = `inrun ${args.join(' ')}: ${r.err}`;
  assert.equal(r.code, 1, label);
  assert.equal(r.out, '', label);
  assert.match(r.err, /^inrun: error: [^\n]+\n$/, label);
  assert.doesNotMatch(r.err, /\bE[A-Z]{2,}\b/, `${label}: a raw error code`);
  assert.doesNotMatch(r.err, /\n\s+at |unexpected error/, label);
  assert.ok(!existsSync(out), `${label}: wrote ${out}`);
  return r.err.trim();
}

const cases: [string, string[], RegExp][] = [
  [
    'a folder as the data file',
    [...train, '--train', at('folder.csv'), '--validation', at('val.csv')],
    /folder\.csv: is a directory; give a file \(\.csv, \.jsonl, \.ndjson or \.parquet\)$/,
  ],
  [
    'a folder as the validation file',
    [...train, '--train', at('train.csv'), '--validation', at('folder.csv')],
    /folder\.csv: is a directory; give a file/,
  ],
  [
    'a folder as the config file',
    [...train, '--config', at('folder.yaml')],
    /folder\.yaml: is a directory; give a file \(\.yaml, \.yml or \.json\)$/,
  ],
  [
    'a named pipe as the data file',
    [...train, '--train', at('pipe.csv'), '--validation', at('val.csv')],
    /pipe\.csv: is not a regular file \(a named pipe\); give a file/,
  ],
  [
    'a named pipe as the config file',
    [...train, '--config', at('pipe.yaml')],
    /pipe\.yaml: is not a regular file \(a named pipe\)/,
  ],
  [
    'a named pipe as gpt text',
    [
      ...train,
      '--model',
      'gpt',
      '--tokenizer',
      'bytes',
      '--train',
      at('pipe.txt'),
      '--validation-split',
      '0.5',
    ],
    /pipe\.txt: is not a regular file \(a named pipe\)/,
  ],
  [
    'a character device as the config file',
    [...train, '--config', '/dev/null'],
    /\/dev\/null: is not a regular file \(a character device\)/,
  ],
  [
    'a character device as the data file',
    [...train, '--train', '/dev/zero', '--validation', at('val.csv')],
    /\/dev\/zero: is not a regular file \(a character device\)/,
  ],
  [
    'a data file without an extension',
    [...train, '--train', at('noext'), '--validation', at('val.csv')],
    /noext: no file extension to tell the data file type \(inrun reads \.csv, \.jsonl, \.ndjson and \.parquet\)/,
  ],
  [
    'a path through a file',
    [...train, '--config', at('train.csv', 'run.yaml')],
    /train\.csv\/run\.yaml: cannot read the config file \(a part of the path is not a directory\)/,
  ],
  [
    'a path through a file as data',
    [...train, '--train', at('train.csv', 'x.csv'), '--validation', at('val.csv')],
    /train\.csv\/x\.csv: cannot read the data file \(a part of the path is not a directory\)/,
  ],
  [
    'a symbolic link loop',
    [...train, '--config', at('loop.yaml')],
    /loop\.yaml: cannot read the config file \(too many levels of symbolic links\)/,
  ],
  [
    'report on a data file',
    ['report', at('train.csv')],
    /train\.csv: not a run directory \(no manifest\.json\)$/,
  ],
  [
    'report on an empty folder',
    ['report', at('empty-run')],
    /empty-run: not a run directory \(no manifest\.json\)$/,
  ],
  [
    'report on a folder with another tool’s manifest',
    ['report', at('foreign-run')],
    /foreign-run: not a run directory \(its manifest\.json is not an inrun run manifest\)$/,
  ],
  [
    'report on a manifest of null',
    ['report', at('null-run')],
    /null-run: not a run directory \(its manifest\.json is not an inrun run manifest\)$/,
  ],
  [
    'report through a file',
    ['report', at('train.csv', 'run')],
    /train\.csv\/run: cannot read the run directory \(a part of the path is not a directory\)/,
  ],
  ['curate on a data file', ['curate', at('train.csv'), '--negatives'], /train\.csv: not a run directory/],
  [
    'resume of a data file',
    ['train', '--resume', at('train.csv')],
    /train\.csv: not a run directory \(no manifest\.json\)/,
  ],
  ['resume of a missing run', ['train', '--resume', at('nowhere')], /nowhere: no such run directory/],
  [
    '--steps with --epochs',
    [...train, ...data, '--epochs', '2'],
    /--steps and --epochs exclude each other \(steps or epochs\); give one of them$/,
  ],
  [
    '--validation with --validation-split',
    [
      'train',
      '--out',
      out,
      '--train',
      at('train.csv'),
      '--validation',
      at('val.csv'),
      '--validation-split',
      '0.2',
    ],
    /--validation and --validation-split exclude each other/,
  ],
  [
    '--set data.validation with --validation-split',
    [
      'train',
      '--out',
      out,
      '--train',
      at('train.csv'),
      '--validation-split',
      '0.2',
      '--set',
      `data.validation=${at('val.csv')}`,
    ],
    /--validation-split and --set data\.validation exclude each other/,
  ],
  [
    '--set epochs with --steps',
    [...train, ...data, '--set', 'epochs=3'],
    /--steps and --set epochs exclude each other/,
  ],
  [
    '--validation with --set data',
    ['train', '--out', out, '--validation', at('val.csv'), '--set', `data={train: ${at('train.csv')}}`],
    /--validation and --set data both set data\.validation; give one of them$/,
  ],
];

test('inrun: wrong kinds of paths and contradicting flags are one clear line without error codes', async () => {
  const failures: string[] = [];
  for (const [name, args, expected] of cases) {
    try {
      assert.match(await errorLine(args), expected);
    } catch (error) {
      failures.push(`${name}: ${(error as Error).message}`);
    }
  }
  assert.deepEqual(failures, []);
});

test('inrun train: /dev/stdin as the config is refused unless it is a redirected file', async (t) => {
  const info = statSync('/dev/stdin', { throwIfNoEntry: false });
  if (!info || info.isFile()) {
    t.skip('stdin is a regular file here');
    return;
  }
  assert.match(await errorLine([...train, '--config', '/dev/stdin']), /\/dev\/stdin: is not a regular file/);
});

test('inrun train: a YAML alias bomb or deep nesting in the config is an error naming the line', async () => {
  const bomb = [
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ...'bcdefghi'.split('').map((x, k) => `${x}: &${x} [${Array(9).fill(`*${'abcdefghi'[k]}`).join(',')}]`),
  ].join('\n');
  writeFileSync(at('bomb.yaml'), `${bomb}\n`);
  assert.match(
    await errorLine([...train, '--config', at('bomb.yaml')]),
    /bomb\.yaml: line 6: invalid YAML \(the alias \*e expands the config to more than 100000 values\)$/,
  );
  writeFileSync(at('deep.json'), `{"data": ${'['.repeat(30000)}${']'.repeat(30000)}}\n`);
  assert.match(
    await errorLine([...train, '--config', at('deep.json')]),
    /deep\.json: line 1: invalid JSON \(nested too deeply/,
  );
  assert.match(
    await errorLine([...train, ...data, '--set', `model.hidden=${'['.repeat(30000)}`]),
    /--set model\.hidden: the value is nested too deeply/,
  );
});

test('inrun report: a folder as --curation or a device as --out says so', async () => {
  const scratch = tempDir('inrun-messages-report-');
  const run = join(scratch, 'run');
  const r = await runCli('train', ...data, '--steps', '2', '--batch-size', '8', '--out', run, '--quiet');
  assert.equal(r.code, 0, r.err);
  const check = async (args: string[], expected: RegExp) => {
    const result = await runCli('report', run, ...args);
    assert.equal(result.code, 1, result.err);
    assert.match(result.err, /^inrun: error: [^\n]+\n$/);
    assert.doesNotMatch(result.err, /\bE[A-Z]{2,}\b/);
    assert.match(result.err, expected);
  };
  await check(['--curation', scratch], /is a directory; give a file/);
  await check(['--curation', at('foreign.json')], /foreign\.json: not a curation comparison of inrun curate/);
  await check(['--out', '/dev/null'], /--out \/dev\/null: is not a regular file/);
  await check(['--out', at('train.csv', 'r.html')], /--out .*r\.html: .*train\.csv is not a folder/);
  assert.ok(statSync('/dev/null').isCharacterDevice(), '/dev/null was replaced');
});

test('inrun: a permission problem is said in words', async (t) => {
  if (process.getuid?.() === 0) {
    t.skip('running as root: permissions are not enforced');
    return;
  }
  const locked = at('locked.yaml');
  writeFileSync(locked, 'steps: 2\n');
  chmodSync(locked, 0o000);
  const folder = at('locked-corpus');
  mkdirSync(join(folder, 'inner'), { recursive: true });
  writeFileSync(join(folder, 'inner', 'a.txt'), 'some text here');
  chmodSync(join(folder, 'inner'), 0o000);
  try {
    assert.match(
      await errorLine([...train, '--config', locked]),
      /locked\.yaml: cannot read the config file \(permission denied\)/,
    );
    assert.match(
      await errorLine([
        ...train,
        '--model',
        'gpt',
        '--tokenizer',
        'bytes',
        '--train',
        folder,
        '--validation-split',
        '0.5',
      ]),
      /inner: cannot read the folder \(permission denied\)/,
    );
  } finally {
    chmodSync(locked, 0o644);
    chmodSync(join(folder, 'inner'), 0o755);
  }
});

// The config loader and flag merging: hostile or broken files (alias bombs, deep nesting, huge
// files, folders, pipes, devices) and contradicting flags are one-line InrunErrors naming the file
// and line or both flags.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  applyOverrides,
  loadConfigFile,
  MAX_CONFIG_BYTES,
  type Override,
  parseSetFlag,
  parseTrainConfig,
  type RawConfig,
} from '../../src/run/config.js';
import { InrunError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'inrun-config-'));
const VALID = 'data:\n  train: train.csv\n  validation: val.csv\nsteps: 3\n';

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Asserts an InrunError whose one-line message matches every pattern. */
async function rejectsWith(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(promise, (error: Error) => {
    assert.ok(error instanceof InrunError, `not an InrunError: ${error.stack}`);
    assert.doesNotMatch(error.message, /\n/);
    assert.doesNotMatch(error.message, /\bE[A-Z]{2,}\b/, 'a raw error code');
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  });
}

// Each level aliases the one above nine times: 9^9 values from nine lines.
const BOMB = [
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...'bcdefghi'.split('').map((x, k) => `${x}: &${x} [${Array(9).fill(`*${'abcdefghi'[k]}`).join(',')}]`),
].join('\n');

test('a YAML alias bomb is an invalid-config error naming the file and line, and fails fast', async () => {
  const path = file('bomb.yaml', `${BOMB}\n`);
  const start = performance.now();
  // 9^5 = 59049 values by line 5, 9^6 by line 6: the alias on line 6 passes 100000.
  await rejectsWith(
    loadConfigFile(path),
    /bomb\.yaml: line 6: invalid YAML \(the alias \*e expands the config to more than 100000 values\)/,
  );
  assert.ok(performance.now() - start < 5000, 'took too long');
});

test('aliases that stand for themselves or for nothing are errors with their line', async () => {
  await rejectsWith(
    loadConfigFile(file('self.yaml', `${VALID}x: &x [1, *x]\n`)),
    /self\.yaml: line 5: invalid YAML \(the alias \*x is inside the value it stands for\)/,
  );
  await rejectsWith(
    loadConfigFile(file('dangling.yaml', `${VALID}x: *nothing\n`)),
    /dangling\.yaml: line 5: invalid YAML \(the alias \*nothing has no anchor &nothing before it\)/,
  );
});

test('ordinary aliases still load, even more than the yaml package allows by default', async () => {
  // 150 uses of one anchor: the yaml package's default guard (100) would refuse this.
  const text = `${VALID}model: &m {kind: mlp, hidden: [4]}\nx: [${Array(150).fill('*m').join(', ')}]\n`;
  const raw = await loadConfigFile(file('aliases.yaml', text));
  assert.equal((raw.value.x as unknown[]).length, 150);
  assert.deepEqual((raw.value.x as unknown[])[149], { kind: 'mlp', hidden: [4] });
});

test('deeply nested YAML and JSON are "nested too deeply" with the line, before the parser recurses', async () => {
  // Deep enough to exhaust the parser's stack, which can abort the process outright.
  const depth = 20000;
  const nested = `${'['.repeat(depth)}${']'.repeat(depth)}`;
  await rejectsWith(
    loadConfigFile(file('deep.yaml', `steps: 3\ndata: ${nested}\n`)),
    /deep\.yaml: line 2: invalid YAML \(nested too deeply: more than 64 levels\)/,
  );
  await rejectsWith(
    loadConfigFile(file('deep.json', `{\n"data": ${nested}}\n`)),
    /deep\.json: line 2: invalid JSON \(nested too deeply: more than 64 levels\)/,
  );
  const maps = `${'{a: '.repeat(depth)}1${'}'.repeat(depth)}`;
  await rejectsWith(
    loadConfigFile(file('deep-map.yaml', `data: ${maps}\n`)),
    /deep-map\.yaml: line 1: .*nested too deeply/,
  );
  const block = Array.from({ length: 70 }, (_, i) => `${'  '.repeat(i)}k:`).join('\n');
  await rejectsWith(
    loadConfigFile(file('deep-block.yaml', `${block}\n`)),
    /deep-block\.yaml: line 65: .*nested too deeply/,
  );
  const items = `x:\n  ${'- '.repeat(70)}1\n`;
  await rejectsWith(
    loadConfigFile(file('deep-items.yaml', items)),
    /deep-items\.yaml: line 2: .*nested too deeply/,
  );
  assert.throws(
    () => parseSetFlag(`model.hidden=${nested}`),
    (error: Error) =>
      error instanceof InrunError &&
      /^--set model\.hidden: the value is nested too deeply/.test(error.message),
  );
});

test('brackets inside quotes and comments do not count as nesting', async () => {
  const many = '['.repeat(100);
  const text = `${VALID}# ${many}\ncolumns:\n  id: "${many}"\n  label: '${many}it''s'\n  group: a${many}\n`;
  const raw = await loadConfigFile(file('brackets.yaml', text));
  assert.deepEqual(raw.value.columns, { id: many, label: `${many}it's`, group: `a${many}` });
  const json = await loadConfigFile(file('brackets.json', JSON.stringify({ data: { train: many } })));
  assert.deepEqual(json.value.data, { train: many });
  // A quote inside a block scalar or a plain scalar's next line opens nothing: the brackets after
  // them still count.
  const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
  await rejectsWith(
    loadConfigFile(file('hidden.yaml', `a: |\n  'open\n  ${many}\nb: plain\n  'text\nc: ${deep}\n`)),
    /hidden\.yaml: line 6: invalid YAML \(nested too deeply/,
  );
});

test('a config file over 1 MiB is refused before it is parsed', async () => {
  const features = Array.from({ length: 120_000 }, (_, i) => `column_${i}`).join(', ');
  const text = `${VALID}columns:\n  features: [${features}]\n`;
  assert.ok(text.length > MAX_CONFIG_BYTES);
  await rejectsWith(
    loadConfigFile(file('huge.yaml', text)),
    /huge\.yaml: the config file is 1\.\d MiB; config files over 1 MiB are refused/,
  );
});

test('a folder, a named pipe or a device as the config file says what it is', async () => {
  const folder = join(dir, 'folder.yaml');
  mkdirSync(folder);
  await rejectsWith(
    loadConfigFile(folder),
    /folder\.yaml: is a directory; give a file \(\.yaml, \.yml or \.json\)/,
  );
  await rejectsWith(loadConfigFile('/dev/null'), /\/dev\/null: is not a regular file \(a character device\)/);
  const fifo = join(dir, 'pipe.yaml');
  execFileSync('mkfifo', [fifo]);
  // Reading a pipe nobody writes to would wait forever; the check comes first.
  await rejectsWith(loadConfigFile(fifo), /pipe\.yaml: is not a regular file \(a named pipe\); give a file/);
  await rejectsWith(
    loadConfigFile(file('settings', VALID)),
    /settings: no file extension to tell the config type \(use \.yaml, \.yml or \.json\)/,
  );
  await rejectsWith(
    loadConfigFile(join(dir, 'settings', 'run.yaml')),
    /settings\/run\.yaml: cannot read the config file \(a part of the path is not a directory\)/,
  );
  await rejectsWith(
    loadConfigFile(join(dir, 'none.yaml')),
    /none\.yaml: cannot read the config file \(no such file\)/,
  );
});

// ------------------------------------------------------------------------------ flags

function raw(value: Record<string, unknown> = {}): RawConfig {
  return { value, flagPaths: new Map() };
}

function flag(flagName: string, path: string, value: unknown): Override {
  return { flag: flagName, path, value };
}

function set(text: string): Override {
  const { path, value } = parseSetFlag(text);
  return { path, value, flag: `--set ${path}` };
}

const base = () => ({ data: { train: 't.csv' } });

test('contradicting flags are an error naming both', () => {
  const cases: [Override[], RegExp][] = [
    [
      [flag('--steps', 'steps', 5), flag('--epochs', 'epochs', 2)],
      /^--steps and --epochs exclude each other \(steps or epochs\); give one of them$/,
    ],
    [
      [
        flag('--validation', 'data.validation', 'v.csv'),
        flag('--validation-split', 'data.validationSplit', 0.2),
      ],
      /^--validation and --validation-split exclude each other/,
    ],
    [
      [flag('--validation-split', 'data.validationSplit', 0.2), set('data.validation=v.csv')],
      /^--validation-split and --set data\.validation exclude each other/,
    ],
    [[flag('--epochs', 'epochs', 2), set('steps=9')], /^--epochs and --set steps exclude each other/],
    [
      [flag('--validation', 'data.validation', 'v.csv'), set('data={train: t.csv}')],
      /^--validation and --set data both set data\.validation; give one of them$/,
    ],
    [[flag('--steps', 'steps', 5), set('steps=6')], /^--steps and --set steps both set steps/],
    [
      [flag('--hidden', 'model.hidden', [8]), set('model={kind: mlp}')],
      /^--hidden and --set model both set model\.hidden/,
    ],
  ];
  for (const [overrides, expected] of cases) {
    const config = raw(base());
    assert.throws(
      () => applyOverrides(config, overrides),
      (error: Error) => error instanceof InrunError && expected.test(error.message),
      overrides.map((o) => o.flag).join(' '),
    );
  }
});

test('a flag still replaces its alternative from the config file, and a repeated --set keeps the last', () => {
  const fromFile = raw({ data: { train: 't.csv', validationSplit: 0.2 }, epochs: 3 });
  applyOverrides(fromFile, [
    flag('--validation', 'data.validation', 'v.csv'),
    flag('--steps', 'steps', 7),
    set('optimizer.lr=0.1'),
    set('optimizer.lr=0.2'),
  ]);
  const config = parseTrainConfig(fromFile, '/work');
  assert.equal(config.steps, 7);
  assert.equal(config.epochs, undefined);
  assert.equal(config.data.validation, '/work/v.csv');
  assert.equal(config.data.validationSplit, undefined);
  assert.equal(config.optimizer.lr, 0.2);
});

test('--set cannot reach Object.prototype', () => {
  for (const text of ['__proto__.polluted=1', 'constructor.prototype.polluted=1']) {
    assert.throws(
      () => applyOverrides(raw(base()), [set(text)]),
      (error: Error) => error instanceof InrunError && /is not a config key/.test(error.message),
    );
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

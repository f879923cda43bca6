// `inrun train --force` (src/run/directory.ts): it replaces only a real inrun run directory and
// deletes only what inrun wrote there. Every refusal is one line naming why, and changes nothing.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadRun, RUN_FILES, readManifest } from '../../src/io/run-dir.js';
import { LOCK_FILE } from '../../src/run/lock.js';
import {
  assertOneLineError,
  copyRun,
  dataDir,
  deadPid,
  esc,
  finishedRun,
  interruptedRun,
  makeFormat1,
  snapshot,
} from '../cli/fixtures/run-dirs.js';
import { runCli, tempDir } from '../cli/fixtures/train-data.js';

/** Flags of a new small run on `data` (train.csv, val.csv there unless given). */
function trainArgs(data: string, out: string, extra: string[] = []): string[] {
  return [
    'train',
    '--train',
    join(data, 'train.csv'),
    '--validation',
    join(data, 'val.csv'),
    '--id-column',
    'id',
    '--group-column',
    'src',
    '--model',
    'mlp',
    '--hidden',
    '8',
    '--batch-size',
    '16',
    '--epochs',
    '2',
    '--quiet',
    '--out',
    out,
    ...extra,
  ];
}

const assets = (async () => {
  const data = dataDir('inrun-force-');
  const finished = await finishedRun(data, join(data, 'finished'));
  const interrupted = await interruptedRun(data, join(data, 'interrupted'));
  return { data, finished, interrupted };
})();

interface Situation {
  /** The command line (after `inrun`). */
  argv: string[];
  /** The folder that must stay exactly as it was. */
  watch: string;
  /** Working directory of the command. */
  cwd?: string;
}

interface ForceCase {
  name: string;
  /** Builds the situation in `base` (a fresh folder with train.csv and val.csv). */
  setup: (base: string, a: Awaited<typeof assets>) => Situation;
  expect: (base: string) => RegExp;
}

const withFinished = (base: string, a: Awaited<typeof assets>, extra: Record<string, string> = {}) => {
  const run = copyRun(a.finished, join(base, 'run'));
  for (const [name, content] of Object.entries(extra)) {
    if (name.endsWith('/')) mkdirSync(join(run, name), { recursive: true });
    else writeFileSync(join(run, name), content);
  }
  return run;
};
const forceOver = (base: string, out: string): Situation => ({
  argv: trainArgs(base, out, ['--force']),
  watch: out,
});
const foreignLock = (patch: Record<string, unknown>) =>
  JSON.stringify({
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    purpose: 'inrun train',
    ...patch,
  });

const CASES: ForceCase[] = [
  {
    name: 'a project folder with config.json, thesis.tex and the training data',
    setup: (base) => {
      const project = join(base, 'thesis');
      mkdirSync(project);
      writeFileSync(join(project, 'config.json'), '{"lr": 0.1}\n');
      writeFileSync(join(project, 'thesis.tex'), '\\documentclass{article}\n');
      writeFileSync(join(project, 'train.csv'), readFileSync(join(base, 'train.csv')));
      writeFileSync(join(project, 'val.csv'), readFileSync(join(base, 'val.csv')));
      return { argv: trainArgs(project, project, ['--force']), watch: project };
    },
    expect: () =>
      /thesis: --force replaces only inrun run directories, and this folder has no manifest\.json$/,
  },
  {
    name: 'a folder of documents (data elsewhere)',
    setup: (base) => {
      const docs = join(base, 'docs');
      mkdirSync(docs);
      writeFileSync(join(docs, 'notes.md'), '# notes\n');
      return forceOver(base, docs);
    },
    expect: () => /docs: --force replaces only inrun run directories, and this folder has no manifest\.json$/,
  },
  ...(
    [
      ['another program’s manifest.json', '{"name": "my-app", "version": "1.0.0"}\n'],
      ['a manifest.json that is not JSON', 'name: my-app\n'],
      ['a manifest.json holding null', 'null\n'],
      ['a manifest.json holding a list', '[1, 2]\n'],
      ['a manifest.json of another inrun format', '{"format": "inrun-curation", "formatVersion": 1}\n'],
      ['an empty manifest.json', ''],
    ] as const
  ).map(
    ([name, text]): ForceCase => ({
      name,
      setup: (base) => {
        const folder = join(base, 'app');
        mkdirSync(folder);
        writeFileSync(join(folder, 'manifest.json'), text);
        writeFileSync(join(folder, 'index.js'), 'export {};\n');
        return forceOver(base, folder);
      },
      expect: () =>
        /app: --force replaces only inrun run directories, and its manifest\.json is not one inrun wrote$/,
    }),
  ),
  ...(
    [
      ['a user file', { 'notes.txt': 'mine' }, 'notes.txt'],
      ['a user folder', { 'analysis/': '' }, 'analysis'],
      ['a hidden user file', { '.env': 'TOKEN=1' }, '.env'],
      [
        'a file that looks like a temporary file but is not inrun’s',
        { '.values.csv.tmp': 'x' },
        '.values.csv.tmp',
      ],
      ['a backup of the checkpoint', { 'checkpoint.bak': 'x' }, 'checkpoint.bak'],
      ['a values file of another tool', { 'values.xlsx': 'x' }, 'values.xlsx'],
    ] as const
  ).map(
    ([name, files, shown]): ForceCase => ({
      name: `a finished run with ${name}`,
      setup: (base, a) => forceOver(base, withFinished(base, a, files)),
      expect: () =>
        new RegExp(
          `run: --force deletes only what inrun wrote, and this run directory also holds (?!\\.\\./)\\S*${esc(shown)}; move it away or choose another --out$`,
        ),
    }),
  ),
  {
    name: 'a finished run with seven user files (five named, then a count)',
    setup: (base, a) =>
      forceOver(
        base,
        withFinished(base, a, Object.fromEntries(Array.from({ length: 7 }, (_, k) => [`fig${k}.png`, 'x']))),
      ),
    expect: () => /also holds (\S*fig\d\.png, ){4}\S*fig\d\.png and 2 more; move them away/,
  },
  {
    name: 'a finished run with a symbolic link the user made',
    setup: (base, a) => {
      const run = withFinished(base, a);
      symlinkSync(base, join(run, 'latest'));
      return forceOver(base, run);
    },
    expect: () => /also holds \S*latest; move it away/,
  },
  {
    name: 'a run directory that holds its training data',
    setup: (base, a) => {
      const run = withFinished(base, a);
      writeFileSync(join(run, 'train.csv'), readFileSync(join(base, 'train.csv')));
      return {
        argv: [...trainArgs(base, run, ['--force']), '--train', join(run, 'train.csv')],
        watch: run,
      };
    },
    expect: (base) =>
      new RegExp(
        `run: --force would delete the run's own input ${esc(join(base, 'run', 'train.csv'))}; move it out of the run directory first$`,
      ),
  },
  {
    name: 'a run directory that holds its validation data',
    setup: (base, a) => {
      const run = withFinished(base, a);
      writeFileSync(join(run, 'val.csv'), readFileSync(join(base, 'val.csv')));
      return {
        argv: [...trainArgs(base, run, ['--force']), '--validation', join(run, 'val.csv')],
        watch: run,
      };
    },
    expect: () => /--force would delete the run's own input \S+val\.csv/,
  },
  {
    name: 'a run directory with the training data in a subfolder',
    setup: (base, a) => {
      const run = withFinished(base, a);
      mkdirSync(join(run, 'data'));
      writeFileSync(join(run, 'data', 'train.csv'), readFileSync(join(base, 'train.csv')));
      return {
        argv: [...trainArgs(base, run, ['--force']), '--train', join(run, 'data', 'train.csv')],
        watch: run,
      };
    },
    expect: () => /--force would delete the run's own input \S+data\/train\.csv/,
  },
  {
    name: 'initial weights from the run directory being replaced',
    setup: (base, a) => {
      const run = withFinished(base, a);
      return {
        argv: [...trainArgs(base, run, ['--force']), '--init-weights', join(run, RUN_FILES.weightsFinal)],
        watch: run,
      };
    },
    expect: () => /--force would delete the run's own input \S+weights\.final\.safetensors/,
  },
  {
    name: '--out . from inside the run directory',
    setup: (base, a) => {
      const run = withFinished(base, a);
      return { argv: trainArgs(base, '.', ['--force']), watch: run, cwd: run };
    },
    expect: (base) =>
      new RegExp(
        `^inrun: error: ${esc(join(base, 'run'))}: --force would delete the working directory; choose another --out$`,
      ),
  },
  {
    name: '--out .. from a folder inside the run directory',
    setup: (base, a) => {
      const run = withFinished(base, a, { 'curation/': '' });
      return { argv: trainArgs(base, '..', ['--force']), watch: run, cwd: join(run, 'curation') };
    },
    expect: (base) =>
      new RegExp(
        `^inrun: error: ${esc(join(base, 'run'))}: --force would delete the working directory \\(or a folder above it\\)`,
      ),
  },
  {
    name: '--out naming the working directory by its full path',
    setup: (base, a) => {
      const run = withFinished(base, a);
      return { argv: trainArgs(base, run, ['--force']), watch: run, cwd: run };
    },
    expect: () => /--force would delete the working directory; choose another --out$/,
  },
  {
    name: 'a format-1 run directory with a user file',
    setup: (base, a) => {
      const run = withFinished(base, a, { 'plot.py': 'print(1)\n' });
      makeFormat1(run);
      return forceOver(base, run);
    },
    expect: () => /this run directory also holds \S*plot\.py; move it away/,
  },
  {
    name: 'an interrupted run with a values.csv it did not write',
    setup: (base, a) => {
      const run = copyRun(a.interrupted, join(base, 'run'));
      writeFileSync(join(run, RUN_FILES.valuesCsv), 'id,value\nmine,1\n');
      return forceOver(base, run);
    },
    expect: () => /this run directory also holds \S*values\.csv; move it away/,
  },
  {
    name: 'a finished run without --force',
    setup: (base, a) => ({ argv: trainArgs(base, withFinished(base, a)), watch: join(base, 'run') }),
    expect: () => /run: the run directory already exists; choose another --out or add --force to replace it$/,
  },
  {
    name: 'a project folder without --force',
    setup: (base) => {
      mkdirSync(join(base, 'project'));
      writeFileSync(join(base, 'project', 'thesis.tex'), 'x');
      return { argv: trainArgs(base, join(base, 'project')), watch: join(base, 'project') };
    },
    expect: () => /project: the run directory already exists; choose another --out or add --force/,
  },
  {
    name: 'a finished run still locked by a live process',
    setup: (base, a) => forceOver(base, withFinished(base, a, { [LOCK_FILE]: foreignLock({}) })),
    expect: () =>
      new RegExp(`run: in use by inrun train \\(pid ${process.pid} on ${esc(hostname())}, since `),
  },
  {
    name: 'a finished run locked from another machine',
    setup: (base, a) =>
      forceOver(
        base,
        withFinished(base, a, { [LOCK_FILE]: foreignLock({ host: 'node-3.cluster', pid: 4242 }) }),
      ),
    expect: () => /in use by inrun train \(pid 4242 on node-3\.cluster, since .*delete \S+\.inrun\.lock\)$/,
  },
  {
    name: 'a finished run with a lock file inrun did not write',
    setup: (base, a) => forceOver(base, withFinished(base, a, { [LOCK_FILE]: 'locked by me\n' })),
    expect: () => /\.inrun\.lock: not an inrun lock file; delete it if no inrun process is using /,
  },
  {
    name: 'an empty folder locked by a live process (no --force needed to be refused)',
    setup: (base) => {
      mkdirSync(join(base, 'fresh'));
      writeFileSync(join(base, 'fresh', LOCK_FILE), foreignLock({ purpose: 'inrun train --resume' }));
      return { argv: trainArgs(base, join(base, 'fresh')), watch: join(base, 'fresh') };
    },
    expect: () => /fresh: in use by inrun train --resume \(pid /,
  },
];

test('--force: table of refusals — one line, nothing deleted, no lock left behind', async () => {
  const a = await assets;
  const failures: string[] = [];
  for (const c of CASES) {
    const base = tempDir('inrun-force-case-');
    writeFileSync(join(base, 'train.csv'), readFileSync(join(a.data, 'train.csv')));
    writeFileSync(join(base, 'val.csv'), readFileSync(join(a.data, 'val.csv')));
    try {
      const situation = c.setup(base, a);
      const before = snapshot(situation.watch);
      const cwd = process.cwd();
      if (situation.cwd) process.chdir(situation.cwd);
      let r: Awaited<ReturnType<typeof runCli>>;
      try {
        r = await runCli(...situation.argv);
      } finally {
        process.chdir(cwd);
      }
      assertOneLineError(r, c.expect(base));
      assert.deepEqual(snapshot(situation.watch), before, 'the folder changed');
    } catch (error) {
      failures.push(`${c.name}: ${(error as Error).message}`);
    }
  }
  assert.deepEqual(failures, []);
});

test('--force replaces a finished run: its files, report, curation, leftovers and stale lock are gone', async () => {
  const a = await assets;
  const base = tempDir('inrun-force-ok-');
  const old = await finishedRun(a.data, join(base, 'run'), { perValidation: true, recordBatchIds: true });
  assert.ok(existsSync(join(old, RUN_FILES.perValidation)));
  writeFileSync(join(old, 'report.html'), '<html></html>');
  mkdirSync(join(old, 'curation', 'curated'), { recursive: true });
  writeFileSync(join(old, 'curation', 'removed.jsonl'), '{}\n');
  writeFileSync(join(old, `.${RUN_FILES.valuesCsv}.999999.0123456789ab.tmp`), 'partial');
  mkdirSync(join(old, '.checkpoint.old'));
  const dead = deadPid();
  writeFileSync(join(old, LOCK_FILE), foreignLock({ pid: dead, startedAt: '2020-01-01T00:00:00.000Z' }));
  const oldManifest = await readManifest(old);

  const r = await runCli(...trainArgs(a.data, old, ['--force', '--lr', '0.05']));
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, new RegExp(`^inrun: took over the stale lock of \\S+ \\(pid ${dead} on `));
  const run = await loadRun(old);
  assert.equal(run.manifest.status, 'complete');
  assert.notEqual(run.manifest.times.startedAt, oldManifest.times.startedAt);
  assert.equal((run.config.optimizer as { lr: number }).lr, 0.05);
  for (const gone of [
    RUN_FILES.perValidation,
    'report.html',
    'curation',
    '.checkpoint.old',
    LOCK_FILE,
    `.${RUN_FILES.valuesCsv}.999999.0123456789ab.tmp`,
  ])
    assert.ok(!existsSync(join(old, gone)), `${gone} is still there`);
  assert.deepEqual(Object.keys(snapshot(old)).sort(), [...run.manifest.files!].sort());
});

test('--force replaces a format-1 run directory (no file list) that holds only inrun’s names', async () => {
  const a = await assets;
  const base = tempDir('inrun-force-v1-');
  const run = copyRun(a.interrupted, join(base, 'run'));
  makeFormat1(run);
  // Files a format-1 run could have had, written by the old version.
  writeFileSync(join(run, RUN_FILES.perValidation), 'old');
  writeFileSync(join(run, RUN_FILES.traceCsv), 'old');
  const r = await runCli(...trainArgs(a.data, run, ['--force']));
  assert.equal(r.code, 0, r.err);
  const manifest = await readManifest(run);
  assert.equal(manifest.status, 'complete');
  assert.equal(manifest.formatVersion, 2);
  assert.ok(!existsSync(join(run, RUN_FILES.perValidation)));
  assert.notEqual(readFileSync(join(run, RUN_FILES.traceCsv), 'utf8'), 'old');
});

test('--force replaces an interrupted run; an empty folder and one holding only a stale lock need no --force', async () => {
  const a = await assets;
  const base = tempDir('inrun-force-more-');
  const run = copyRun(a.interrupted, join(base, 'run'));
  const r = await runCli(...trainArgs(a.data, run, ['--force']));
  assert.equal(r.code, 0, r.err);
  assert.equal((await readManifest(run)).status, 'complete');
  assert.ok(!existsSync(join(run, RUN_FILES.checkpoint)));

  mkdirSync(join(base, 'empty'));
  assert.equal((await runCli(...trainArgs(a.data, join(base, 'empty')))).code, 0);

  mkdirSync(join(base, 'locked'));
  writeFileSync(join(base, 'locked', LOCK_FILE), foreignLock({ pid: deadPid() }));
  const s = await runCli(...trainArgs(a.data, join(base, 'locked')));
  assert.equal(s.code, 0, s.err);
  assert.match(s.err, /^inrun: took over the stale lock of /);
  assert.ok(!existsSync(join(base, 'locked', LOCK_FILE)));
});

test('--force: the refusal table covers every rule', () => {
  assert.ok(CASES.length >= 30, `${CASES.length} cases`);
});

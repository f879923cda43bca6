// File-system failures while writing a run, a report or a curation: a path below a file, through a
// dangling symbolic link, without permission, on a read-only mount, on a full disk. Each is one
// line naming the path and the cause in words; a run that fails midway keeps its last checkpoint and
// says so in its manifest, and resumes to the same values once the cause is gone.
//
// Read-only and full file systems are small tmpfs mounts, which need root; as root, where file
// permissions do not bind, "permission denied" is checked in a child process running as nobody.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statfsSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { main } from '../../src/cli/main.js';
import { loadCheckpoint } from '../../src/io/checkpoint.js';
import { RUN_FILES, readManifest } from '../../src/io/run-dir.js';
import { LOCK_FILE } from '../../src/run/lock.js';
import {
  assertOneLineError,
  copyRun,
  dataDir,
  esc,
  finishedRun,
  interruptedRun,
  snapshot,
  spawnCli,
  waitChild,
} from './fixtures/run-dirs.js';
import { blobs, type CliResult, runCli, tempDir, toCsv, writeFiles } from './fixtures/train-data.js';

const ROOT = process.getuid?.() === 0;
const mounted: string[] = [];

after(() => {
  for (const dir of mounted.reverse()) {
    const r = spawnSync('umount', [dir], { encoding: 'utf8' });
    if (r.status !== 0) spawnSync('umount', ['-l', dir]);
  }
});

/** Mounts a tmpfs at `dir` (created); returns why not when it cannot (not root, no mount). */
function mountTmpfs(dir: string, options: string): string | null {
  mkdirSync(dir, { recursive: true });
  if (!ROOT) return 'mounting a tmpfs needs root';
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) return `cannot mount a tmpfs here (${(r.stderr || r.error?.message || '').trim()})`;
  mounted.push(dir);
  return null;
}

function remount(dir: string, options: string): void {
  const r = spawnSync('mount', ['-o', `remount,${options}`, dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

/** Fills the file system of `dir` up to `leave` bytes free. */
function fill(dir: string, leave: number): void {
  const fs = statfsSync(dir);
  const free = Number(fs.bavail) * Number(fs.bsize);
  if (free > leave) writeFileSync(join(dir, 'filler.bin'), Buffer.alloc(free - leave));
}

const readOnly = /\(read-only file system\)/;
const noSpace = /\(no space left on device\)/;

const assets = (async () => {
  const data = dataDir('inrun-io-');
  chmodSync(data, 0o755);
  const finished = await finishedRun(data, join(data, 'finished'));
  const interrupted = await interruptedRun(data, join(data, 'interrupted'));
  return { data, finished, interrupted };
})();

/** `inrun train` of a new small run into `out`. */
const trainInto = (data: string, out: string, ...extra: string[]) => [
  'train',
  '--train',
  join(data, 'train.csv'),
  '--validation',
  join(data, 'val.csv'),
  '--id-column',
  'id',
  '--model',
  'mlp',
  '--hidden',
  '8',
  '--epochs',
  '2',
  '--quiet',
  '--out',
  out,
  ...extra,
];

interface FaultCase {
  name: string;
  /** Builds the situation under `base`; returns the command line. */
  setup: (base: string, a: Awaited<typeof assets>) => string[];
  expect: (base: string) => RegExp;
}

async function runTable(cases: FaultCase[], base: (k: number) => string, watch: string[]): Promise<string[]> {
  const a = await assets;
  const failures: string[] = [];
  for (const [k, c] of cases.entries()) {
    try {
      const at = base(k);
      const argv = c.setup(at, a);
      const before = watch.map((dir) => snapshot(dir));
      const r = await runCli(...argv);
      assertOneLineError(r, c.expect(at));
      assert.deepEqual(
        watch.map((dir) => snapshot(dir)),
        before,
        'files changed',
      );
    } catch (error) {
      failures.push(`${c.name}: ${(error as Error).message}`);
    }
  }
  return failures;
}

const PATH_CASES: FaultCase[] = [
  {
    name: '--out below a regular file',
    setup: (base, a) => {
      writeFileSync(join(base, 'notes'), 'x');
      return trainInto(a.data, join(base, 'notes', 'run'));
    },
    expect: (base) =>
      new RegExp(
        `^inrun: error: ${esc(join(base, 'notes', 'run'))}: cannot create the run directory \\(${esc(join(base, 'notes'))} is not a directory\\)$`,
      ),
  },
  {
    name: '--out two levels below a regular file',
    setup: (base, a) => {
      writeFileSync(join(base, 'notes'), 'x');
      return trainInto(a.data, join(base, 'notes', 'a', 'b'));
    },
    expect: (base) =>
      new RegExp(
        `notes/a/b: cannot create the run directory \\(${esc(join(base, 'notes'))} is not a directory\\)$`,
      ),
  },
  {
    name: '--out a dangling symbolic link',
    setup: (base, a) => {
      symlinkSync(join(base, 'gone'), join(base, 'latest'));
      return trainInto(a.data, join(base, 'latest'));
    },
    expect: (base) =>
      new RegExp(
        `${esc(join(base, 'latest'))}: cannot create the run directory \\(${esc(join(base, 'latest'))} is a symbolic link to ${esc(join(base, 'gone'))}, which does not exist\\)$`,
      ),
  },
  {
    name: '--out below a dangling symbolic link',
    setup: (base, a) => {
      symlinkSync(join(base, 'mnt', 'disk'), join(base, 'scratch'));
      return trainInto(a.data, join(base, 'scratch', 'runs', 'r1'));
    },
    expect: (base) =>
      new RegExp(
        `\\(${esc(join(base, 'scratch'))} is a symbolic link to ${esc(join(base, 'mnt', 'disk'))}, which does not exist\\)$`,
      ),
  },
  {
    name: '--out through a loop of symbolic links',
    setup: (base, a) => {
      symlinkSync(join(base, 'b'), join(base, 'a'));
      symlinkSync(join(base, 'a'), join(base, 'b'));
      return trainInto(a.data, join(base, 'a', 'run'));
    },
    expect: () => /a\/run: cannot .*\(too many levels of symbolic links\)$/,
  },
  {
    name: '--out with a name too long for the file system',
    setup: (base, a) => trainInto(a.data, join(base, 'r'.repeat(300))),
    expect: () => /r{300}: cannot .*\(file name too long\)$/,
  },
  {
    name: 'curate --out below a regular file',
    setup: (base, a) => {
      writeFileSync(join(base, 'notes'), 'x');
      return ['curate', a.finished, '--negatives', '--out', join(base, 'notes', 'cur')];
    },
    expect: (base) => new RegExp(`--out \\S*notes/cur: ${esc(join(base, 'notes'))} is not a folder$`),
  },
  {
    name: 'report --out below a regular file',
    setup: (base, a) => {
      writeFileSync(join(base, 'notes'), 'x');
      return ['report', a.finished, '--out', join(base, 'notes', 'report.html')];
    },
    expect: (base) =>
      new RegExp(`--out \\S*notes/report\\.html: ${esc(join(base, 'notes'))} is not a folder$`),
  },
];

test('I/O faults: --out below a file, through dangling or looping links, too long — one line, nothing written', async () => {
  const root = tempDir('inrun-io-paths-');
  const a = await assets;
  const failures = await runTable(
    PATH_CASES,
    (k) => {
      const dir = join(root, String(k));
      mkdirSync(dir);
      return dir;
    },
    [root, a.finished],
  );
  assert.deepEqual(failures, []);
});

test('I/O faults: --out where writing is not permitted', async (t) => {
  const a = await assets;
  const base = tempDir('inrun-io-perm-');
  chmodSync(base, 0o755);
  const parent = join(base, 'shared');
  mkdirSync(parent);
  chmodSync(parent, 0o555);
  const out = join(parent, 'run');
  let r: CliResult;
  if (!ROOT) r = await runCli(...trainInto(a.data, out));
  else {
    // Root may write anywhere; an ordinary user may not.
    const child = await waitChild(spawnCli(trainInto(a.data, out), { uid: 65534, gid: 65534 }));
    if (child.code !== 1 || !/^inrun: error: /.test(child.err)) {
      t.skip(
        `cannot run inrun as the user nobody here (exit ${child.code}: ${child.err.trim().split('\n')[0]})`,
      );
      return;
    }
    r = { code: child.code, out: child.out, err: child.err };
  }
  assertOneLineError(
    r,
    new RegExp(
      `^inrun: error: ${esc(out)}: cannot create the run directory \\(${esc(out)}: permission denied\\)$`,
    ),
  );
  assert.deepEqual(readdirSync(parent), []);
});

test('I/O faults: a read-only file system — train, --force, --resume and curate refuse in one line', async (t) => {
  const a = await assets;
  const ro = join(tempDir('inrun-io-ro-'), 'mnt');
  const why = mountTmpfs(ro, 'size=4m');
  if (why) {
    t.skip(why);
    return;
  }
  copyRun(a.finished, join(ro, 'finished'));
  copyRun(a.interrupted, join(ro, 'interrupted'));
  mkdirSync(join(ro, 'empty'));
  remount(ro, 'ro');
  const cases: FaultCase[] = [
    {
      name: 'train --out a new folder',
      setup: (_b, x) => trainInto(x.data, join(ro, 'run')),
      expect: () =>
        new RegExp(
          `${esc(join(ro, 'run'))}: cannot create the run directory \\(${esc(join(ro, 'run'))}: read-only file system\\)$`,
        ),
    },
    {
      name: 'train --out a new folder three levels down',
      setup: (_b, x) => trainInto(x.data, join(ro, 'a', 'b', 'c')),
      expect: () => new RegExp(`\\(${esc(join(ro, 'a'))}: read-only file system\\)$`),
    },
    {
      name: 'train --out an existing empty folder',
      setup: (_b, x) => trainInto(x.data, join(ro, 'empty')),
      expect: () =>
        new RegExp(
          `${esc(join(ro, 'empty', LOCK_FILE))}: cannot create the lock file \\(read-only file system\\)$`,
        ),
    },
    {
      name: 'train --force over a finished run',
      setup: (_b, x) => trainInto(x.data, join(ro, 'finished'), '--force'),
      expect: () =>
        new RegExp(
          `${esc(join(ro, 'finished', LOCK_FILE))}: cannot create the lock file \\(read-only file system\\)$`,
        ),
    },
    {
      name: 'train --resume',
      setup: () => ['train', '--resume', join(ro, 'interrupted')],
      expect: () =>
        new RegExp(
          `${esc(join(ro, 'interrupted', LOCK_FILE))}: cannot create the lock file \\(read-only file system\\)$`,
        ),
    },
    {
      name: 'curate into the run directory',
      setup: () => ['curate', join(ro, 'finished'), '--negatives'],
      expect: () =>
        new RegExp(
          `${esc(join(ro, 'finished', 'curation'))}: cannot create the curation folder \\(read-only file system\\)$`,
        ),
    },
    {
      name: 'curate --out on the read-only file system',
      setup: (_b, x) => ['curate', x.finished, '--negatives', '--out', join(ro, 'cur')],
      expect: () =>
        new RegExp(`${esc(join(ro, 'cur'))}: cannot create the curation folder \\(read-only file system\\)$`),
    },
  ];
  const failures = await runTable(cases, () => ro, [ro, a.finished]);
  assert.deepEqual(failures, []);
});

test('I/O faults: report into a read-only file system is one line naming the file', {}, async (t) => {
  const a = await assets;
  const ro = join(tempDir('inrun-io-ro-report-'), 'mnt');
  const why = mountTmpfs(ro, 'size=4m');
  if (why) {
    t.skip(why);
    return;
  }
  copyRun(a.finished, join(ro, 'finished'));
  remount(ro, 'ro');
  const before = snapshot(ro);
  for (const [argv, file] of [
    [['report', join(ro, 'finished')], join(ro, 'finished', 'report.html')],
    [['report', a.finished, '--out', join(ro, 'report.html')], join(ro, 'report.html')],
  ] as const) {
    const r = await runCli(...argv);
    assertOneLineError(r, new RegExp(`${esc(file)}: cannot write[^(]*${readOnly.source}$`), argv.join(' '));
  }
  assert.deepEqual(snapshot(ro), before);
});

/** The medium run of the full-disk test: 640 examples, 60 steps, a checkpoint every 10. */
function mediumData(): { data: string; args: (out: string) => string[] } {
  const data = writeFiles(tempDir('inrun-io-full-'), {
    'train.csv': toCsv(blobs(640, { seed: 8, features: 16, flip: 0.1 })),
    'val.csv': toCsv(blobs(64, { seed: 9, features: 16, prefix: 'v' })),
  });
  const args = (out: string) => [
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
    '32',
    '--batch-size',
    '32',
    '--epochs',
    '3',
    '--checkpoint-every',
    '10',
    '--out',
    out,
  ];
  return { data, args };
}

test('I/O faults: the disk fills up after the first checkpoint — one line, run marked failed, checkpoint kept, resume identical', async (t) => {
  const disk = join(tempDir('inrun-io-disk-'), 'mnt');
  const why = mountTmpfs(disk, 'size=4m');
  if (why) {
    t.skip(why);
    return;
  }
  const { args } = mediumData();
  const reference = join(tempDir('inrun-io-ref-'), 'run');
  const ref = await runCli(...args(reference), '--quiet');
  assert.equal(ref.code, 0, ref.err);

  // The run goes onto the small disk; as its first checkpoint is saved, something else fills the
  // disk up to a few pages: enough for the manifest, not for the run's next outputs.
  const out = join(disk, 'run');
  let out1 = '';
  let err1 = '';
  let filled = false;
  const code = await main(['node', 'inrun', ...args(out), '--json'], {
    stdout: (text) => {
      out1 += text;
      if (!filled && text.includes('"event":"checkpoint"')) {
        filled = true;
        fill(disk, 48 * 1024);
      }
    },
    stderr: (text) => {
      err1 += text;
    },
  });
  assert.ok(filled, 'the run saved no checkpoint');
  assert.equal(code, 1, err1);
  const lines = err1.trimEnd().split('\n');
  assert.equal(lines.length, 1, err1);
  assert.doesNotMatch(err1, /\bE[A-Z]{3,}\b|\n\s+at /);
  const match = new RegExp(
    `^inrun: error: ${esc(out)}/\\S+: cannot [a-z ]+ ${noSpace.source}; the checkpoint of step (\\d+) is kept; after fixing the cause, continue with: inrun train --resume \\S+$`,
  ).exec(lines[0]);
  assert.ok(match, lines[0]);
  t.diagnostic(lines[0]);
  const kept = Number(match[1]);
  assert.ok(kept >= 10, `kept step ${kept}`);
  assert.ok(out1.includes('"event":"step"'));

  const manifest = await readManifest(out);
  assert.equal(manifest.status, 'failed');
  assert.match(manifest.message!, noSpace);
  assert.equal(manifest.stepsDone >= kept, true);
  const checkpoint = await loadCheckpoint(out, 'float64');
  assert.equal(checkpoint?.step, kept, 'the last good checkpoint is intact');
  assert.deepEqual(
    readdirSync(out).filter((name) => name.endsWith('.tmp') || name.startsWith('.checkpoint.')),
    [],
    'no partial files',
  );

  // Space again: the run resumes from that checkpoint to the values of an uninterrupted run.
  remount(disk, 'size=64m');
  const resumed = await runCli('train', '--resume', out, '--quiet');
  assert.equal(resumed.code, 0, resumed.err);
  assert.equal((await readManifest(out)).status, 'complete');
  for (const name of [
    RUN_FILES.valuesCsv,
    RUN_FILES.valuesParquet,
    RUN_FILES.traceCsv,
    RUN_FILES.weightsFinal,
  ])
    assert.ok(readFileSync(join(out, name)).equals(readFileSync(join(reference, name))), `${name} differs`);
});

test('I/O faults: report and curate onto a full disk are one line naming the path, and leave nothing', {}, async (t) => {
  const a = await assets;
  const disk = join(tempDir('inrun-io-full2-'), 'mnt');
  const why = mountTmpfs(disk, 'size=1m');
  if (why) {
    t.skip(why);
    return;
  }
  mkdirSync(join(disk, 'reports'));
  fill(disk, 16 * 1024);
  const cases: [string[], RegExp][] = [
    [
      ['report', a.finished, '--out', join(disk, 'reports', 'report.html')],
      new RegExp(`${esc(join(disk, 'reports', 'report.html'))}: cannot write[^(]*${noSpace.source}$`),
    ],
    [
      ['curate', a.finished, '--negatives', '--out', join(disk, 'cur')],
      new RegExp(`${esc(join(disk, 'cur'))}\\S*: cannot [^(]*${noSpace.source}`),
    ],
  ];
  const failures: string[] = [];
  for (const [argv, expect] of cases) {
    try {
      const before = snapshot(disk);
      assertOneLineError(await runCli(...argv), expect);
      assert.deepEqual(snapshot(disk), before, 'files left behind');
    } catch (error) {
      failures.push(`${argv.join(' ')}: ${(error as Error).message}`);
    }
  }
  assert.deepEqual(failures, []);
});

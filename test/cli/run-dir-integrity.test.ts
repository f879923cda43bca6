// A run directory stays trustworthy across interruptions: `inrun train --resume` refuses a run whose
// config, initial weights, checkpoint, manifest or data changed (naming what and how, changing
// nothing); a run killed with SIGKILL resumes to byte-identical results with no leftovers, even when
// two resumes race for it; and an `inrun curate` killed part-way is detected and redone.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
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
import { blobs, runCli, tempDir, toCsv, writeFiles } from './fixtures/train-data.js';

// biome-ignore lint/suspicious/noExplicitAny: the tests edit JSON files of any shape
type Json = Record<string, unknown> & { [key: string]: any };

const readJson = (path: string): Json => JSON.parse(readFileSync(path, 'utf8')) as Json;
/** Rewrites a JSON file the way inrun writes it (2-space indent, final newline). */
function editJson(path: string, edit: (value: Json) => void): void {
  const value = readJson(path);
  edit(value);
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}
function flipByte(path: string, at: number): void {
  const bytes = readFileSync(path);
  const k = at < 0 ? bytes.length + at : at;
  bytes[k] ^= 0x01;
  writeFileSync(path, bytes);
}
const editConfig = (run: string, edit: (c: Json) => void) => editJson(join(run, RUN_FILES.config), edit);
const editManifest = (run: string, edit: (m: Json) => void) => editJson(join(run, RUN_FILES.manifest), edit);
const checkpointFile = (run: string, name: string) => join(run, RUN_FILES.checkpoint, name);
const lockText = (patch: Record<string, unknown>) =>
  JSON.stringify({
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    purpose: 'inrun train',
    ...patch,
  });

interface TamperCase {
  name: string;
  /** The case changes the data files: it gets a run on data of its own. */
  ownData?: boolean;
  tamper: (run: string, data: string) => void;
  /** The command line (default: train --resume <run>). */
  argv?: (run: string, data: string) => string[];
  expect: (run: string, data: string) => RegExp;
}

const configChanged = (what: string) =>
  new RegExp(
    `config\\.json: the config was changed since the run started \\(${what}\\); resume needs the run's own config — start a new run for new settings$`,
  );
const weightsChanged =
  /weights\.initial\.safetensors: changed since the run started \(sha256 differs from manifest\.json\); resume needs the original$/;
const checkpointCorrupt = (file: string) =>
  new RegExp(`checkpoint \\S+/checkpoint/${esc(file)} is corrupt or was modified`);

const CASES: TamperCase[] = [
  // config.json edited before --resume: refused naming the key path and both values.
  ...(
    [
      ['the learning rate', (c: Json) => (c.optimizer.lr = 0.5), 'optimizer\\.lr 0\\.1 → 0\\.5'],
      ['the momentum', (c: Json) => (c.optimizer.momentum = 0), 'optimizer\\.momentum 0\\.9 → 0'],
      ['the optimizer', (c: Json) => (c.optimizer.kind = 'adam'), 'optimizer\\.kind "sgd" → "adam"'],
      [
        'the schedule',
        (c: Json) => (c.optimizer.schedule = { kind: 'cosine' }),
        'optimizer\\.schedule\\.kind "constant" → "cosine"',
      ],
      [
        'the weight decay',
        (c: Json) => (c.optimizer.weightDecay = 0.01),
        'optimizer\\.weightDecay 0 → 0\\.01',
      ],
      ['the seed', (c: Json) => (c.seed = 7), 'seed 0 → 7'],
      ['the batch size', (c: Json) => (c.batchSize = 8), 'batchSize 16 → 8'],
      ['the epochs', (c: Json) => (c.epochs = 3), 'epochs 2 → 3'],
      ['the hidden width', (c: Json) => (c.model.hidden = [16]), 'model\\.hidden\\.0 8 → 16'],
      ['the activation', (c: Json) => (c.model.activation = 'tanh'), 'model\\.activation "relu" → "tanh"'],
      ['the value order', (c: Json) => (c.order = 1), 'order 2 → 1'],
      ['the stages', (c: Json) => (c.stages = 4), 'stages 2 → 4'],
      ['the checkpoint interval', (c: Json) => (c.checkpointEvery = 2), 'checkpointEvery 4 → 2'],
      ['the label column', (c: Json) => (c.columns.label = 'src'), 'columns\\.label "label" → "src"'],
      ['the output folder', (c: Json) => (c.out = '/tmp/elsewhere'), 'out "[^"]+" → "/tmp/elsewhere"'],
      ['a setting added', (c: Json) => (c.optimizer.clipNorm = 5), 'optimizer\\.clipNorm null → 5'],
      ['a setting removed', (c: Json) => delete c.optimizer.momentum, 'optimizer\\.momentum 0\\.9 → unset'],
      ['an unknown key added', (c: Json) => (c.notes = 'try 2'), 'notes unset → "try 2"'],
      [
        'the training file',
        (c: Json) => (c.data.train = c.data.validation),
        'data\\.train "[^"]+train\\.csv" → "[^"]+val\\.csv"',
      ],
      [
        'four settings (three named)',
        (c: Json) => Object.assign(c, { batchSize: 8, epochs: 3, seed: 1, order: 1 }),
        '[^;]+; [^;]+; [^;)]+',
      ],
    ] as [string, (c: Json) => unknown, string][]
  ).map(
    ([name, edit, what]): TamperCase => ({
      name: `config.json: ${name} changed`,
      tamper: (run) => editConfig(run, edit),
      expect: () => configChanged(what),
    }),
  ),
  {
    name: 'config.json: reformatted (same settings, other bytes)',
    tamper: (run) =>
      writeFileSync(join(run, RUN_FILES.config), JSON.stringify(readJson(join(run, RUN_FILES.config)))),
    expect: () =>
      /config\.json: changed since the run started \(sha256 differs from manifest\.json\); resume needs the original$/,
  },
  {
    name: 'config.json: not JSON any more',
    tamper: (run) => writeFileSync(join(run, RUN_FILES.config), '{"optimizer": {"lr": 0.1,}\n'),
    expect: () => /config\.json: not valid JSON/,
  },
  {
    name: 'config.json: deleted',
    tamper: (run) => unlinkSync(join(run, RUN_FILES.config)),
    expect: () => /config\.json: cannot read the config file \(no such file/,
  },
  {
    name: 'config.json: emptied',
    tamper: (run) => writeFileSync(join(run, RUN_FILES.config), ''),
    expect: () => /config\.json: the config file is empty$/,
  },
  // weights.initial.safetensors: one byte anywhere, truncated, gone.
  {
    name: 'weights.initial: one byte of a weight changed',
    tamper: (run) => flipByte(join(run, RUN_FILES.weightsInitial), -1),
    expect: () => weightsChanged,
  },
  {
    name: 'weights.initial: one byte of the header changed',
    tamper: (run) => flipByte(join(run, RUN_FILES.weightsInitial), 12),
    expect: () => weightsChanged,
  },
  {
    name: 'weights.initial: truncated',
    tamper: (run) => {
      const path = join(run, RUN_FILES.weightsInitial);
      writeFileSync(path, readFileSync(path).subarray(0, 100));
    },
    expect: () => weightsChanged,
  },
  {
    name: 'weights.initial: replaced by other weights of the same shape',
    tamper: (run) => {
      const path = join(run, RUN_FILES.weightsInitial);
      const bytes = readFileSync(path);
      bytes.fill(0, bytes.length - 64);
      writeFileSync(path, bytes);
    },
    expect: () => weightsChanged,
  },
  {
    name: 'weights.initial: deleted',
    tamper: (run) => unlinkSync(join(run, RUN_FILES.weightsInitial)),
    expect: () => /weights\.initial\.safetensors: cannot read \(no such file or directory\)$/,
  },
  // The checkpoint.
  {
    name: 'checkpoint: one byte of the tensors changed',
    tamper: (run) => flipByte(checkpointFile(run, 'tensors.safetensors'), -3),
    expect: () => checkpointCorrupt('tensors.safetensors'),
  },
  {
    name: 'checkpoint: its step edited in state.json',
    tamper: (run) => {
      const path = checkpointFile(run, 'state.json');
      writeFileSync(path, readFileSync(path, 'utf8').replace('"step":6', '"step":2'));
    },
    expect: () => checkpointCorrupt('state.json'),
  },
  {
    name: 'checkpoint: SHA256SUMS deleted',
    tamper: (run) => unlinkSync(checkpointFile(run, 'SHA256SUMS')),
    expect: () => /checkpoint \S+SHA256SUMS is missing: the checkpoint is corrupt or incomplete$/,
  },
  {
    name: 'checkpoint: SHA256SUMS garbled',
    tamper: (run) => writeFileSync(checkpointFile(run, 'SHA256SUMS'), 'not a checksum\n'),
    expect: () => /SHA256SUMS is corrupt or was modified: a line is not "<sha256> {2}<file>"$/,
  },
  {
    name: 'checkpoint: tensors deleted',
    tamper: (run) => unlinkSync(checkpointFile(run, 'tensors.safetensors')),
    expect: () => /checkpoint \S+tensors\.safetensors is missing: the checkpoint is incomplete$/,
  },
  // manifest.json.
  {
    name: 'manifest: marked complete',
    tamper: (run) => editManifest(run, (m) => (m.status = 'complete')),
    expect: () => /: the run is already complete; nothing to resume$/,
  },
  {
    name: 'manifest: the recorded learning rate edited',
    tamper: (run) => editManifest(run, (m) => (m.config.optimizer.lr = 0.01)),
    expect: () => configChanged('optimizer\\.lr 0\\.01 → 0\\.1'),
  },
  {
    name: 'manifest: the checksum of config.json edited',
    tamper: (run) => editManifest(run, (m) => (m.checksums['config.json'] = '0'.repeat(64))),
    expect: () => /config\.json: changed since the run started \(sha256 differs from manifest\.json\)/,
  },
  {
    name: 'manifest: the sha256 of the training data edited',
    tamper: (run) => editManifest(run, (m) => (m.data.train.sha256 = 'f'.repeat(64))),
    expect: () =>
      /train\.csv: the training data changed since the run started \(sha256 differs\); resume needs the same data$/,
  },
  {
    name: 'manifest: not JSON',
    tamper: (run) => writeFileSync(join(run, RUN_FILES.manifest), '{"format": "inrun-run",'),
    expect: () => /manifest\.json: not valid JSON/,
  },
  {
    name: 'manifest: of another format',
    tamper: (run) => editManifest(run, (m) => (m.format = 'something-else')),
    expect: () => /: not a run directory \(its manifest\.json is not an inrun run manifest\)$/,
  },
  {
    name: 'manifest: deleted',
    tamper: (run) => unlinkSync(join(run, RUN_FILES.manifest)),
    expect: () => /: not a run directory \(no manifest\.json\)$/,
  },
  // The data.
  {
    name: 'training data: one cell edited',
    ownData: true,
    tamper: (_run, data) => {
      const path = join(data, 'train.csv');
      const lines = readFileSync(path, 'utf8').split('\n');
      lines[5] = lines[5].replace(/,(\d)$/, (_m, d: string) => `,${(Number(d) + 1) % 3}`);
      writeFileSync(path, lines.join('\n'));
    },
    expect: (_run, data) =>
      new RegExp(
        `${esc(join(data, 'train.csv'))}: the training data changed since the run started \\(sha256 differs\\); resume needs the same data$`,
      ),
  },
  {
    name: 'training data: a row appended',
    ownData: true,
    tamper: (_run, data) =>
      writeFileSync(
        join(data, 'train.csv'),
        `${readFileSync(join(data, 'train.csv'), 'utf8')}extra,0,0,0,0,a,1\n`,
      ),
    expect: () => /train\.csv: the training data changed since the run started/,
  },
  {
    name: 'validation data: edited',
    ownData: true,
    tamper: (_run, data) =>
      writeFileSync(
        join(data, 'val.csv'),
        readFileSync(join(data, 'val.csv'), 'utf8').replace('v0,', 'v0x,'),
      ),
    expect: () => /val\.csv: the validation data changed since the run started \(sha256 differs\)/,
  },
  {
    name: 'training data: deleted',
    ownData: true,
    tamper: (_run, data) => unlinkSync(join(data, 'train.csv')),
    expect: (_run, data) => new RegExp(`${esc(join(data, 'train.csv'))}: .*no such file`),
  },
  // What --resume is given.
  {
    name: '--resume of a folder that does not exist',
    tamper: (run) => rmSync(run, { recursive: true }),
    expect: () => /run: no such run directory$/,
  },
  {
    name: '--resume of a file',
    tamper: (run) => {
      rmSync(run, { recursive: true });
      writeFileSync(run, 'x');
    },
    expect: () => /run: not a run directory \(no manifest\.json\)$/,
  },
  {
    name: '--resume of an empty folder',
    tamper: (run) => {
      for (const name of readdirSync(run)) rmSync(join(run, name), { recursive: true });
    },
    expect: () => /run: not a run directory \(no manifest\.json\)$/,
  },
  {
    name: '--resume with other settings',
    tamper: () => {},
    argv: (run) => ['train', '--resume', run, '--lr', '0.5', '--seed', '3'],
    expect: () => /^inrun: error: --resume continues with the run's saved config; drop --lr, --seed$/,
  },
  {
    name: '--resume with --force',
    tamper: () => {},
    argv: (run) => ['train', '--resume', run, '--force'],
    expect: () => /drop --force$/,
  },
  // Locks.
  {
    name: 'lock: the run is being resumed by a live process',
    tamper: (run) => writeFileSync(join(run, LOCK_FILE), lockText({ purpose: 'inrun train --resume' })),
    expect: () =>
      new RegExp(
        `run: in use by inrun train --resume \\(pid ${process.pid} on ${esc(hostname())}, since [^)]+\\); wait for it to finish or stop it`,
      ),
  },
  {
    name: 'lock: held on another machine',
    tamper: (run) => writeFileSync(join(run, LOCK_FILE), lockText({ host: 'node-9.cluster', pid: 31337 })),
    expect: () =>
      /in use by inrun train \(pid 31337 on node-9\.cluster, since [^)]+\); .*delete \S+\.inrun\.lock\)$/,
  },
  {
    name: 'lock: a lock file inrun did not write',
    tamper: (run) => writeFileSync(join(run, LOCK_FILE), 'mine\n'),
    expect: () => /\.inrun\.lock: not an inrun lock file; delete it if no inrun process is using /,
  },
  {
    name: 'lock: being created this moment by another process',
    tamper: (run) => writeFileSync(join(run, LOCK_FILE), ''),
    expect: () => /run: being locked by another inrun process; try again in a moment$/,
  },
];

const shared = (async () => {
  const data = dataDir('inrun-tamper-');
  return { data, run: await interruptedRun(data, join(data, 'interrupted')) };
})();

test('--resume refuses a changed run: table of tampering, one line each, nothing changed', async () => {
  const { data: sharedData, run: sharedRun } = await shared;
  const failures: string[] = [];
  for (const c of CASES) {
    const base = tempDir('inrun-tamper-case-');
    let data = sharedData;
    let run = join(base, 'run');
    if (c.ownData) {
      data = dataDir('inrun-tamper-data-');
      run = await interruptedRun(data, join(data, 'run'));
    } else copyRun(sharedRun, run);
    try {
      c.tamper(run, data);
      const before = existsSync(run) ? snapshot(base) : null;
      const dataBefore = snapshot(data);
      const r = await runCli(...(c.argv?.(run, data) ?? ['train', '--resume', run]));
      assertOneLineError(r, c.expect(run, data));
      if (before) assert.deepEqual(snapshot(base), before, 'the run directory changed');
      assert.deepEqual(snapshot(data), dataBefore, 'the data changed');
    } catch (error) {
      failures.push(`${c.name}: ${(error as Error).message}`);
    }
  }
  assert.deepEqual(failures, []);
});

test('--resume: the tampering table is complete', () => {
  assert.ok(CASES.length >= 45, `${CASES.length} cases`);
});

test('--resume of an untouched copy completes (the table’s refusals come from the tampering)', async () => {
  const { run } = await shared;
  const copy = copyRun(run, join(tempDir('inrun-tamper-ok-'), 'run'));
  const r = await runCli('train', '--resume', copy, '--quiet');
  assert.equal(r.code, 0, r.err);
  assert.equal((await readManifest(copy)).status, 'complete');
});

// ---------------------------------------------------------------------------------------------
// SIGKILL, then two resumes at once.

const COMPARED = [
  RUN_FILES.valuesCsv,
  RUN_FILES.valuesJsonl,
  RUN_FILES.valuesParquet,
  RUN_FILES.traceCsv,
  RUN_FILES.traceJsonl,
  RUN_FILES.weightsFinal,
];

/** A run of 200 steps of some 30 ms: long enough that a resume outlasts a second one's start. */
function longRun(): { dir: string; config: string } {
  const dir = writeFiles(tempDir('inrun-kill-'), {
    'train.csv': toCsv(blobs(640, { seed: 3, features: 16, flip: 0.1 })),
    'val.csv': toCsv(blobs(64, { seed: 4, features: 16, prefix: 'v' })),
  });
  const config = join(dir, 'run.yaml');
  writeFileSync(
    config,
    `data: { train: train.csv, validation: val.csv }
columns: { id: id, group: src }
model: { kind: mlp, hidden: [32, 32] }
optimizer: { kind: sgd, lr: 0.05, momentum: 0.9 }
batchSize: 32
epochs: 10
stages: 3
checkpointEvery: 7
`,
  );
  return { dir, config };
}

const lastStep = (out: string) => Math.max(0, ...[...out.matchAll(/"step":(\d+)/g)].map((m) => Number(m[1])));
const LEFTOVER = /^\.(.+\.\d+\.[0-9a-f]+\.tmp|checkpoint\..+)$/;

test('SIGKILL mid-run, then two --resume at once: one resumes, the other names it; results identical, no leftovers', async () => {
  const { dir, config } = longRun();
  const out = join(dir, 'killed');
  const victim = spawnCli(['train', '--config', config, '--out', out, '--json']);
  let killedAt = 0;
  const killing = waitChild(victim, (text) => {
    if (killedAt === 0 && lastStep(text) >= 20) {
      killedAt = lastStep(text);
      victim.kill('SIGKILL');
    }
  });
  // The uninterrupted run to compare with, meanwhile (it yields between steps, so the kill is prompt).
  const reference = join(dir, 'reference');
  const ref = await runCli('train', '--config', config, '--out', reference, '--quiet');
  assert.equal(ref.code, 0, ref.err);
  const killed = await killing;
  assert.equal(killed.signal, 'SIGKILL', `the run ended before the kill: ${killed.err}`);
  const stale = JSON.parse(readFileSync(join(out, LOCK_FILE), 'utf8')) as { pid: number };
  assert.equal(stale.pid, victim.pid, 'the killed run leaves its lock behind');
  assert.equal((await readManifest(out)).status, 'running');
  // What a kill in the middle of a write leaves: temporary files of the atomic writers.
  writeFileSync(join(out, `.${RUN_FILES.manifest}.${victim.pid}.0123456789ab.tmp`), '{"format":');
  writeFileSync(join(out, `.${RUN_FILES.valuesCsv}.${victim.pid}.ba9876543210.tmp`), 'id,gr');
  mkdirSync(join(out, `.checkpoint.tmp-${victim.pid}-89abcdef`));
  writeFileSync(join(out, `.checkpoint.tmp-${victim.pid}-89abcdef`, 'state.json'), '{');

  const racers = [
    spawnCli(['train', '--resume', out, '--quiet']),
    spawnCli(['train', '--resume', out, '--quiet']),
  ];
  const results = await Promise.all(racers.map((child) => waitChild(child)));
  const context = results.map((r, k) => `resume ${k}: exit ${r.code}: ${r.err.trim()}`).join('\n');
  const winner = results.findIndex((r) => r.code === 0);
  assert.ok(winner >= 0, context);
  const loser = results[1 - winner];
  assert.equal(loser.code, 1, context);
  assert.match(
    loser.err,
    new RegExp(
      `^inrun: error: ${esc(out)}: in use by inrun train --resume \\(pid ${racers[winner].pid} on ${esc(hostname())}, since [^)]+\\); wait for it to finish or stop it[^\\n]*\\n$`,
    ),
    context,
  );
  assert.match(
    results[winner].err,
    new RegExp(`inrun: took over the stale lock of ${esc(out)} \\(pid ${victim.pid} on `),
    context,
  );

  for (const name of COMPARED)
    assert.ok(
      readFileSync(join(reference, name)).equals(readFileSync(join(out, name))),
      `${name} differs from the uninterrupted run (killed after step ${killedAt})`,
    );
  const manifest = await readManifest(out);
  assert.equal(manifest.status, 'complete');
  assert.equal(manifest.times.resumedAt.length, 1, 'exactly one resume ran');
  const names = readdirSync(out);
  assert.deepEqual(
    names.filter((name) => LEFTOVER.test(name) || name === LOCK_FILE || name === RUN_FILES.checkpoint),
    [],
    'leftovers in the finished run directory',
  );
  assert.deepEqual(names.sort(), [...manifest.files!].sort());
});

// ---------------------------------------------------------------------------------------------
// inrun curate: an interrupted curation is detected and redone; one in progress is named.

/** A finished run of 60 steps (a retraining takes a second or two: long enough to be killed in). */
async function curateRun(): Promise<{ dir: string; run: string }> {
  const dir = writeFiles(tempDir('inrun-curate-kill-'), {
    'train.csv': toCsv(blobs(640, { seed: 5, features: 16, flip: 0.2 })),
    'val.csv': toCsv(blobs(64, { seed: 6, features: 16, prefix: 'v' })),
  });
  const run = join(dir, 'run');
  const r = await runCli(
    'train',
    '--train',
    join(dir, 'train.csv'),
    '--validation',
    join(dir, 'val.csv'),
    '--id-column',
    'id',
    '--model',
    'mlp',
    '--hidden',
    '16',
    '--batch-size',
    '32',
    '--epochs',
    '3',
    '--out',
    run,
    '--quiet',
  );
  assert.equal(r.code, 0, r.err);
  return { dir, run };
}

test('curate: a SIGKILLed curation is detected and redone without --force; one in progress is named', async () => {
  const { run } = await curateRun();
  const out = join(run, 'curation');
  const victim = spawnCli(['curate', run, '--negatives']);
  let sent = false;
  const killed = await waitChild(victim, (text) => {
    if (!sent && text.includes('retraining on the curated data')) {
      sent = true;
      victim.kill('SIGKILL');
    }
  });
  assert.equal(killed.signal, 'SIGKILL', `the curation ended before the kill: ${killed.out}${killed.err}`);
  const left = readdirSync(out);
  assert.ok(!left.includes('comparison.json') && left.includes('train.curated.csv'), left.join(', '));
  assert.equal(JSON.parse(readFileSync(join(out, LOCK_FILE), 'utf8')).pid, victim.pid);

  // While a curation runs there (a live lock), another is refused, naming it, and deletes nothing.
  const staleLock = readFileSync(join(out, LOCK_FILE));
  writeFileSync(join(out, LOCK_FILE), lockText({ purpose: 'inrun curate' }));
  const before = snapshot(out);
  for (const extra of [[], ['--force']]) {
    const busy = await runCli('curate', run, '--negatives', ...extra);
    assertOneLineError(
      busy,
      new RegExp(`curation: in use by inrun curate \\(pid ${process.pid} on ${esc(hostname())}, since `),
    );
    assert.deepEqual(snapshot(out), before);
  }
  writeFileSync(join(out, LOCK_FILE), staleLock);

  const again = await runCli('curate', run, '--negatives');
  assert.equal(again.code, 0, again.err);
  const said = again.out + again.err;
  assert.match(
    said,
    /curation: an earlier inrun curate was interrupted there \(no comparison\.json\); starting it again/,
  );
  assert.match(said, new RegExp(`took over the stale lock of \\S+curation \\(pid ${victim.pid} on `));
  const comparison = JSON.parse(readFileSync(join(out, 'comparison.json'), 'utf8'));
  assert.equal(comparison.format, 'inrun-curation');
  const names = readdirSync(out);
  assert.deepEqual(
    names.filter((name) => name === LOCK_FILE || LEFTOVER.test(name)),
    [],
  );
  for (const sub of ['curated', 'random']) {
    assert.equal((await readManifest(join(out, sub))).status, 'complete');
    assert.ok(!existsSync(join(out, sub, LOCK_FILE)));
  }
});

interface CurateCase {
  name: string;
  /** Builds the curation folder `out` (inside a scratch folder). */
  setup: (out: string) => void;
  args?: string[];
  expect: RegExp;
}

const finishedCuration = (out: string, extra: Record<string, string> = {}) => {
  mkdirSync(join(out, 'curated'), { recursive: true });
  for (const [name, text] of Object.entries({
    'comparison.json': '{"format":"inrun-curation"}',
    'removed.jsonl': '{}\n',
    'train.curated.csv': 'id\n',
    ...extra,
  }))
    writeFileSync(join(out, name), text);
};

const CURATE_CASES: CurateCase[] = [
  {
    name: 'a finished curation without --force',
    setup: (out) => finishedCuration(out),
    expect: /cur: already exists; choose another --out or add --force to replace it$/,
  },
  {
    name: 'a finished curation holding a user file, with --force',
    setup: (out) => finishedCuration(out, { 'notes.txt': 'mine' }),
    args: ['--force'],
    expect:
      /cur: --force replaces only folders of an earlier inrun curate, and this one holds \S*notes\.txt$/,
  },
  {
    name: 'an interrupted curation holding a user file',
    setup: (out) => {
      mkdirSync(out);
      writeFileSync(join(out, 'train.curated.csv'), 'id\n');
      writeFileSync(join(out, 'draft.docx'), 'x');
    },
    expect: /cur: already exists; choose another --out or add --force to replace it$/,
  },
  {
    name: 'a folder of only validation-like files, with --force',
    setup: (out) => {
      mkdirSync(out);
      writeFileSync(join(out, 'validation.csv'), 'id\n');
    },
    args: ['--force'],
    expect:
      /cur: --force replaces only folders of an earlier inrun curate, and this one holds no comparison\.json$/,
  },
  {
    name: 'a finished curation in use, with --force',
    setup: (out) => finishedCuration(out, { [LOCK_FILE]: lockText({ purpose: 'inrun curate' }) }),
    args: ['--force'],
    expect: /cur: in use by inrun curate \(pid \d+ on /,
  },
  {
    name: 'an empty folder in use by another machine’s curation',
    setup: (out) => {
      mkdirSync(out);
      writeFileSync(join(out, LOCK_FILE), lockText({ purpose: 'inrun curate', host: 'node-2.cluster' }));
    },
    expect: /cur: in use by inrun curate \(pid \d+ on node-2\.cluster, since /,
  },
  {
    name: 'an interrupted curation with a lock file inrun did not write',
    setup: (out) => {
      mkdirSync(out);
      writeFileSync(join(out, 'train.curated.csv'), 'id\n');
      writeFileSync(join(out, LOCK_FILE), 'held\n');
    },
    expect: /cur\/\.inrun\.lock: not an inrun lock file; delete it if no inrun process is using /,
  },
  {
    name: '--out is a file',
    setup: (out) => writeFileSync(out, 'x'),
    expect: /--out \S*cur: exists and is not a directory$/,
  },
];

test('curate: table of output folders it must not replace — one line, nothing changed', async () => {
  const data = dataDir('inrun-curate-out-');
  const run = await finishedRun(data, join(data, 'run'));
  const failures: string[] = [];
  for (const c of CURATE_CASES) {
    const scratch = tempDir('inrun-curate-case-');
    const out = join(scratch, 'cur');
    try {
      c.setup(out);
      const before = snapshot(scratch);
      const result = await runCli('curate', run, '--negatives', '--out', out, ...(c.args ?? []));
      assertOneLineError(result, c.expect);
      assert.deepEqual(snapshot(scratch), before, 'the folder changed');
    } catch (error) {
      failures.push(`${c.name}: ${(error as Error).message}`);
    }
  }
  assert.deepEqual(failures, []);
});

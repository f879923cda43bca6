// The exclusive lock of a run directory (src/run/lock.ts): a live holder is named and never
// displaced, a stale lock (dead process, reused pid, writer died before writing) is taken over
// with a notice, and of many processes racing for one lock exactly one gets it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  LOCK_FILE,
  LOCK_TAKEOVER_FILE,
  type LockOwner,
  lockRunDir,
  type RunLock,
} from '../../src/run/lock.js';
import { InrunError } from '../../src/util/errors.js';
import {
  assertOneLineError,
  dataDir,
  finishedRun,
  interruptedRun,
  snapshot,
} from '../cli/fixtures/run-dirs.js';
import { runCli } from '../cli/fixtures/train-data.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'inrun-lock-'));
}

/** The pid of a process that has certainly exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  assert.equal(child.status, 0);
  return child.pid!;
}

const DEAD_PID = deadPid();

function owner(patch: Partial<LockOwner> = {}): string {
  return `${JSON.stringify({
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    purpose: 'inrun train',
    ...patch,
  })}\n`;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface LockCase {
  name: string;
  /** Content of an existing lock file (or a function writing the situation into dir). */
  lock?: string | ((dir: string) => void);
  /** What lockRunDir must fail with; absent: it must take the lock. */
  error?: (dir: string) => RegExp;
  /** A notice it must give when it takes the lock. */
  notice?: (dir: string) => RegExp;
}

const CASES: LockCase[] = [
  { name: 'free directory: taken, no notice' },
  {
    name: 'held by this (live) process',
    lock: owner(),
    error: (dir) =>
      new RegExp(
        `^${esc(dir)}: in use by inrun train \\(pid ${process.pid} on ${esc(hostname())}, since .+\\); wait for it to finish or stop it`,
      ),
  },
  {
    name: 'held by a live process that started before the lock (pid 1)',
    lock: owner({ pid: 1, purpose: 'inrun train --resume' }),
    error: () => new RegExp(`in use by inrun train --resume \\(pid 1 on ${esc(hostname())}`),
  },
  {
    name: 'held on another host (cannot be checked: never taken over)',
    lock: owner({ pid: DEAD_PID, host: 'gpu-node-17.example' }),
    error: (dir) =>
      new RegExp(
        `\\(pid ${DEAD_PID} on gpu-node-17\\.example, since .+\\); .*delete ${esc(join(dir, LOCK_FILE))}\\)$`,
      ),
  },
  {
    name: 'held by a lock without a purpose',
    lock: owner({ purpose: undefined }),
    error: () => /in use by another inrun process \(pid /,
  },
  {
    name: 'stale: its process is gone',
    lock: owner({ pid: DEAD_PID }),
    notice: (dir) =>
      new RegExp(
        `^took over the stale lock of ${esc(dir)} \\(pid ${DEAD_PID} on .+, is no longer running\\)$`,
      ),
  },
  // Process start times come from /proc (Linux); elsewhere a live pid is always taken as the owner.
  ...(existsSync('/proc/self/stat')
    ? [
        {
          name: 'stale: its pid was reused by a process that started later',
          lock: owner({ startedAt: '2001-02-03T04:05:06.000Z' }),
          notice: () => new RegExp(`stale lock .*pid ${process.pid} .*since 2001-02-03T04:05:06\\.000Z`),
        },
      ]
    : []),
  {
    name: 'stale, with the takeover guard of a process that died while taking it over',
    lock: (dir) => {
      writeFileSync(join(dir, LOCK_FILE), owner({ pid: DEAD_PID }));
      writeFileSync(join(dir, LOCK_TAKEOVER_FILE), owner({ pid: DEAD_PID }));
      const old = new Date(Date.now() - 60_000);
      utimesSync(join(dir, LOCK_TAKEOVER_FILE), old, old);
    },
    notice: () => new RegExp(`stale lock .*\\(pid ${DEAD_PID} on `),
  },
  {
    name: 'empty lock file of a writer that died long ago',
    lock: (dir) => {
      writeFileSync(join(dir, LOCK_FILE), '');
      const old = new Date(Date.now() - 60_000);
      utimesSync(join(dir, LOCK_FILE), old, old);
    },
    notice: (dir) =>
      new RegExp(`^took over the empty lock file of ${esc(dir)} \\(its writer did not finish\\)$`),
  },
  {
    name: 'empty lock file just created (another process is writing it)',
    lock: '',
    error: (dir) => new RegExp(`^${esc(dir)}: being locked by another inrun process; try again`),
  },
  {
    name: 'not a lock: text',
    lock: 'do not delete\n',
    error: (dir) =>
      new RegExp(
        `^${esc(join(dir, LOCK_FILE))}: not an inrun lock file; delete it if no inrun process is using`,
      ),
  },
  {
    name: 'not a lock: JSON of another shape',
    lock: '{"pid":"12","host":1}\n',
    error: () => /: not an inrun lock file/,
  },
  {
    name: 'not a lock: JSON list',
    lock: '[1,2,3]\n',
    error: () => /: not an inrun lock file/,
  },
  {
    name: 'the lock path is a folder',
    lock: (dir) => mkdirSync(join(dir, LOCK_FILE)),
    error: (dir) =>
      new RegExp(`^${esc(join(dir, LOCK_FILE))}: cannot read the lock file \\(is a directory\\)$`),
  },
  {
    name: 'the run directory does not exist',
    lock: (dir) => mkdirSync(join(dir, 'unused')),
    error: (dir) =>
      new RegExp(
        `^${esc(join(dir, LOCK_FILE))}: cannot create the lock file \\(no such file or directory\\)$`,
      ),
  },
];

test('lock: table of lock situations', async () => {
  const failures: string[] = [];
  for (const c of CASES) {
    const dir = tempDir();
    if (typeof c.lock === 'string') writeFileSync(join(dir, LOCK_FILE), c.lock);
    else c.lock?.(dir);
    const target = c.name === 'the run directory does not exist' ? join(dir, 'missing') : dir;
    const before = typeof c.lock === 'string' ? c.lock : null;
    const notices: string[] = [];
    try {
      let lock: RunLock | null = null;
      let error: unknown = null;
      try {
        lock = await lockRunDir(target, 'inrun train', (m) => notices.push(m));
      } catch (e) {
        error = e;
      }
      if (c.error) {
        assert.ok(
          error instanceof InrunError,
          `expected a refusal, got ${lock ? 'the lock' : String(error)}`,
        );
        assert.match(error.message, c.error(target));
        assert.doesNotMatch(error.message, /\n|\bE[A-Z]{3,}\b/);
        // A refused lock leaves the holder's lock exactly as it was.
        if (before !== null) assert.equal(readFileSync(join(dir, LOCK_FILE), 'utf8'), before);
        continue;
      }
      assert.ok(lock, `expected the lock, got ${String(error)}`);
      const held = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as LockOwner;
      assert.equal(held.pid, process.pid);
      assert.equal(held.host, hostname());
      assert.equal(held.purpose, 'inrun train');
      assert.ok(Number.isFinite(Date.parse(held.startedAt)));
      if (c.notice) {
        assert.equal(notices.length, 1, notices.join(' | '));
        assert.match(notices[0], c.notice(dir));
      } else assert.deepEqual(notices, []);
      await lock.release();
      assert.ok(!existsSync(join(dir, LOCK_FILE)), 'release removes the lock');
      assert.ok(!existsSync(join(dir, LOCK_TAKEOVER_FILE)), 'no takeover guard is left');
    } catch (e) {
      failures.push(`${c.name}: ${(e as Error).message}`);
    }
  }
  assert.deepEqual(failures, []);
});

test('lock: release removes only its own lock, never one that replaced it', async () => {
  const dir = tempDir();
  const lock = await lockRunDir(dir, 'inrun train');
  const other = owner({ pid: 1, purpose: 'inrun curate' });
  writeFileSync(join(dir, LOCK_FILE), other);
  await lock.release();
  assert.equal(readFileSync(join(dir, LOCK_FILE), 'utf8'), other);
});

test('lock: a released lock can be taken again; a held one cannot be taken twice by one process', async () => {
  const dir = tempDir();
  const first = await lockRunDir(dir, 'inrun train');
  await assert.rejects(lockRunDir(dir, 'inrun train --resume'), /in use by inrun train \(pid/);
  await first.release();
  const second = await lockRunDir(dir, 'inrun train --resume');
  assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).purpose, 'inrun train --resume');
  await second.release();
});

/** Races `n` lockRunDir calls on `dir`; returns the winners and the refusals. */
async function race(
  dir: string,
  n: number,
): Promise<{ won: RunLock[]; refused: string[]; notices: string[] }> {
  const notices: string[] = [];
  const results = await Promise.allSettled(
    Array.from({ length: n }, (_, k) => lockRunDir(dir, `racer ${k}`, (m) => notices.push(m))),
  );
  const won = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  const refused = results
    .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    .map((r) => (r.reason as Error).message);
  return { won, refused, notices };
}

test('lock: of many racing for a free lock, exactly one gets it; the others name it', async () => {
  const dir = tempDir();
  const { won, refused } = await race(dir, 8);
  assert.equal(won.length, 1, refused.join('\n'));
  assert.equal(refused.length, 7);
  const holder = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as LockOwner;
  assert.equal(holder.purpose, won[0].owner.purpose);
  for (const message of refused) assert.match(message, /in use by racer \d \(pid \d+ on /);
  await won[0].release();
});

test('lock: of many racing to take over one stale lock, exactly one gets it', async () => {
  for (let round = 0; round < 5; round++) {
    const dir = tempDir();
    writeFileSync(join(dir, LOCK_FILE), owner({ pid: DEAD_PID }));
    const { won, refused, notices } = await race(dir, 8);
    assert.equal(
      won.length,
      1,
      `round ${round}: ${won.length} holders at once; refused: ${refused.join(' | ')}`,
    );
    // The winner took the stale lock over (a notice), or created it afresh in the moment between
    // another's removing the stale lock and creating its own.
    assert.ok(notices.length <= 1, notices.join(' | '));
    const holder = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as LockOwner;
    assert.equal(holder.purpose, won[0].owner.purpose, 'the lock on disk is the winner’s');
    for (const message of refused)
      assert.match(message, /in use by racer \d \(pid \d+ on |being locked by another inrun process/);
    await won[0].release();
    assert.ok(!existsSync(join(dir, LOCK_FILE)));
  }
});

test('lock: train --force and train --resume on a run in use exit at once, naming the holder', async () => {
  const data = dataDir('inrun-lock-cli-');
  const finished = await finishedRun(data, join(data, 'finished'));
  const interrupted = await interruptedRun(data, join(data, 'interrupted'));
  for (const run of [finished, interrupted])
    writeFileSync(join(run, LOCK_FILE), owner({ purpose: 'inrun train' }));
  const holder = new RegExp(
    `in use by inrun train \\(pid ${process.pid} on ${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, since `,
  );
  for (const argv of [
    ['train', '--config', join(finished, 'config.json'), '--out', finished, '--force', '--quiet'],
    ['train', '--resume', interrupted, '--quiet'],
  ]) {
    const before = [snapshot(finished), snapshot(interrupted)];
    const started = performance.now();
    const r = await runCli(...argv);
    const seconds = (performance.now() - started) / 1000;
    assertOneLineError(r, holder, argv.slice(0, 4).join(' '));
    assert.ok(seconds < 3, `took ${seconds.toFixed(1)} s: it must not wait for the holder`);
    assert.deepEqual([snapshot(finished), snapshot(interrupted)], before);
  }
});

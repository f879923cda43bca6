// An exclusive lock on a run directory, so that two processes never write one run at once (a
// `--force` over a run that is still training, two `--resume` of one run). The lock is a file
// created with O_EXCL holding the owner's pid, host and start time. A lock whose process is gone
// (same host, no such pid, or a pid reused by a process that started later) is stale: it is taken
// over with a notice.
import { readFileSync } from 'node:fs';
import { open, readFile, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fail } from '../util/errors.js';
import { errorCode, failFileError } from '../util/fs-errors.js';

export const LOCK_FILE = '.inrun.lock';
/** Held for a moment while a stale lock is replaced (see takeOver). */
export const LOCK_TAKEOVER_FILE = `${LOCK_FILE}.takeover`;

export interface LockOwner {
  pid: number;
  host: string;
  /** ISO 8601. */
  startedAt: string;
  /** What the owner is doing, e.g. "inrun train". */
  purpose: string;
}

export interface RunLock {
  path: string;
  owner: LockOwner;
  release(): Promise<void>;
}

/** When the process started (ms since the epoch), from /proc on Linux; null where unknown. */
function processStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime, clock ticks since boot) follows the command name in parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    if (!Number.isFinite(ticks) || !Number.isFinite(uptime)) return null;
    // Linux reports in USER_HZ, 100 on every mainstream platform.
    return Date.now() - uptime * 1000 + (ticks / 100) * 1000;
  } catch {
    return null;
  }
}

/** True when the owner of a lock on this host is certainly gone. */
function isStale(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return false;
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    return errorCode(error) === 'ESRCH';
  }
  // The pid is alive; it is the owner unless it started after the lock was taken (pid reuse).
  const started = processStartTime(owner.pid);
  const locked = Date.parse(owner.startedAt);
  return started !== null && Number.isFinite(locked) && started > locked + 2000;
}

function parseOwner(text: string): LockOwner | null {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (
      typeof value.pid === 'number' &&
      typeof value.host === 'string' &&
      typeof value.startedAt === 'string'
    )
      return {
        pid: value.pid,
        host: value.host,
        startedAt: value.startedAt,
        purpose: String(value.purpose ?? ''),
      };
  } catch {
    // An unreadable lock (e.g. its writer died between create and write) is treated as below.
  }
  return null;
}

async function tryCreate(path: string, owner: LockOwner): Promise<boolean> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'wx');
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    return failFileError(error, path, 'create the lock file');
  }
  try {
    await handle.writeFile(`${JSON.stringify(owner)}\n`);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(path, { force: true }).catch(() => {});
    return failFileError(error, path, 'write the lock file');
  }
  await handle.close();
  return true;
}

/**
 * Replaces the stale lock at `path`, whose content was `seen`, by `owner`'s, holding the takeover
 * lock meanwhile: 'taken', 'busy' (another process holds the takeover lock) or 'changed' (the lock
 * is no longer the stale one: released, or taken over by another process).
 */
async function takeOver(path: string, seen: string, owner: LockOwner): Promise<'taken' | 'busy' | 'changed'> {
  const guard = join(dirname(path), LOCK_TAKEOVER_FILE);
  if (!(await tryCreate(guard, owner))) {
    // Its maker holds it for a moment only; an old one was left by a process that died then.
    const made = (await stat(guard).catch(() => null))?.mtimeMs ?? Date.now();
    if (Date.now() - made > 10_000) await rm(guard, { force: true }).catch(() => {});
    return 'busy';
  }
  try {
    const now = await readFile(path, 'utf8').catch(() => null);
    if (now !== seen) return 'changed';
    await rm(path, { force: true });
    return (await tryCreate(path, owner)) ? 'taken' : 'changed';
  } finally {
    await rm(guard, { force: true }).catch(() => {});
  }
}

/**
 * Takes the lock of `dir` (which must exist) or fails at once naming its holder. A stale lock is
 * taken over; `notice` is told so.
 */
export async function lockRunDir(
  dir: string,
  purpose: string,
  notice: (message: string) => void = () => {},
): Promise<RunLock> {
  const path = join(dir, LOCK_FILE);
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    purpose,
  };
  const lock: RunLock = {
    path,
    owner,
    async release() {
      // Remove only our own lock: a stale-lock takeover by another process may have replaced it.
      const now = parseOwner(await readFile(path, 'utf8').catch(() => ''));
      if (now && now.pid === owner.pid && now.host === owner.host && now.startedAt === owner.startedAt)
        await rm(path, { force: true }).catch(() => {});
    },
  };
  // A stale lock is replaced under a second lock (LOCK_TAKEOVER_FILE), so that of several
  // processes finding it stale at once only one takes it over; the others then find its lock.
  const deadline = Date.now() + 5000;
  for (let attempt = 0; attempt < 100 && Date.now() < deadline; attempt++) {
    if (await tryCreate(path, owner)) return lock;
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') continue; // released meanwhile: try again
      failFileError(error, path, 'read the lock file');
    }
    const holder = parseOwner(text);
    if (holder && !isStale(holder))
      fail(
        `${dir}: in use by ${holder.purpose || 'another inrun process'} (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt}); ` +
          `wait for it to finish or stop it (if that process is gone on another machine, delete ${path})`,
      );
    if (!holder && text.trim() !== '')
      fail(`${path}: not an inrun lock file; delete it if no inrun process is using ${dir}`);
    // An empty lock may be another process between creating and writing it: give it time.
    if (!holder && Date.now() - (await stat(path).catch(() => ({ mtimeMs: 0 }))).mtimeMs < 10_000)
      fail(`${dir}: being locked by another inrun process; try again in a moment`);
    // Stale (or empty: its writer died between creating and writing it). Take it over.
    const outcome = await takeOver(path, text, owner);
    if (outcome === 'taken') {
      notice(
        holder
          ? `took over the stale lock of ${dir} (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt}, is no longer running)`
          : `took over the empty lock file of ${dir} (its writer did not finish)`,
      );
      return lock;
    }
    // Another process is taking it over right now (or just did): look again in a moment.
    if (outcome === 'busy') await new Promise((r) => setTimeout(r, 20));
  }
  return fail(`${dir}: could not take the run directory's lock (${path}); another process keeps taking it`);
}

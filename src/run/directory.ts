// Making a run directory ready for a new run, safely. `--force` replaces only a real inrun run
// directory and deletes only what inrun wrote there (the manifest lists it); it refuses the working
// directory, a folder holding the run's own input data, and any file it does not know, naming them.
import { lstat, mkdir, readdir, readlink, realpath, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { displayPath } from '../data/readers/table.js';
import { isAtomicTempName } from '../io/atomic.js';
import { CHECKPOINT_DIR, isCheckpointTempName } from '../io/checkpoint.js';
import { RUN_FILES, readManifest } from '../io/run-dir.js';
import { STEP_VALUES_SIDE_FILE } from '../io/step-values.js';
import { CURATION_DIR, REPORT_FILE } from '../report/write.js';
import { fail, InrunError } from '../util/errors.js';
import { errorCode, failFileError, fileErrorCause } from '../util/fs-errors.js';
import { LOCK_FILE, LOCK_TAKEOVER_FILE, lockRunDir, type RunLock } from './lock.js';

/** Files a version-1 manifest (which did not list its files) may have next to it. */
const FORMAT_1_FILES: string[] = Object.values(RUN_FILES);

/** Outputs of other commands that live in a run directory by default. */
const DERIVED_OUTPUTS = [REPORT_FILE, CURATION_DIR];

/** Temporary names of inrun's atomic writers (src/io/atomic.ts, src/io/checkpoint.ts). */
export function isTemporaryName(name: string): boolean {
  return isAtomicTempName(name) || isCheckpointTempName(name);
}

const within = (child: string, parent: string) => child === parent || child.startsWith(`${parent}${sep}`);

async function realOrResolved(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return resolve(path);
  }
}

/**
 * Creates `dir` and its missing parents one level at a time, so that the error names the level
 * that failed and its real cause (a recursive mkdir reports a read-only mount as ENOENT).
 */
async function createDirectory(dir: string): Promise<void> {
  const missing: string[] = [];
  let at = resolve(dir);
  for (;;) {
    try {
      const info = await stat(at);
      if (!info.isDirectory()) fail(`${dir}: cannot create the run directory (${at} is not a directory)`);
      break;
    } catch (error) {
      const code = errorCode(error);
      // ENOTDIR: a part of the path is a file; going up finds which (it is named above).
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        // A dangling symbolic link looks missing to stat but exists to mkdir.
        const link = await lstat(at).catch(() => null);
        if (link?.isSymbolicLink())
          fail(
            `${dir}: cannot create the run directory (${at} is a symbolic link to ${await readlink(at).catch(() => 'a missing target')}, which does not exist)`,
          );
        missing.push(at);
        const parent = dirname(at);
        if (parent === at) break;
        at = parent;
        continue;
      }
      failFileError(error, at, 'read');
    }
  }
  for (const path of missing.reverse()) {
    try {
      await mkdir(path);
    } catch (error) {
      if (errorCode(error) === 'EEXIST') continue;
      fail(`${dir}: cannot create the run directory (${path}: ${fileErrorCause(error)})`);
    }
  }
}

/**
 * Makes `dir` ready for a new run and locks it: creates it, or accepts it empty. A non-empty
 * folder needs `force`, and then must be a run directory inrun wrote, whose run is not in use,
 * holding none of `inputs` and nothing inrun did not write there.
 */
export async function prepareNewRunDir(
  dir: string,
  options: { force: boolean; inputs: string[]; notice?: (message: string) => void },
): Promise<RunLock> {
  const purpose = 'inrun train';
  let entries: string[] | null = null;
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) fail(`${dir}: exists and is not a directory; choose another --out`);
    entries = await readdir(dir);
  } catch (error) {
    const code = errorCode(error);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') failFileError(error, dir, 'read the run directory');
  }
  if (entries === null) {
    await createDirectory(dir);
    return lockRunDir(dir, purpose, options.notice);
  }
  const foreign = entries.filter((name) => name !== LOCK_FILE);
  if (foreign.length > 0 && !options.force)
    fail(`${dir}: the run directory already exists; choose another --out or add --force to replace it`);
  if (foreign.length > 0) await checkReplaceable(dir, entries, options.inputs);
  const lock = await lockRunDir(dir, purpose, options.notice);
  try {
    for (const name of foreign) await rm(join(dir, name), { recursive: true, force: true });
  } catch (error) {
    await lock.release();
    failFileError(error, dir, 'clear the old run');
  }
  return lock;
}

/** Refuses (naming why) unless `dir` is an old run that --force may replace. */
async function checkReplaceable(dir: string, entries: string[], inputs: string[]): Promise<void> {
  const real = await realOrResolved(dir);
  const cwd = await realOrResolved(process.cwd());
  if (within(cwd, real))
    fail(
      `${dir}: --force would delete the working directory${real === cwd ? '' : ' (or a folder above it)'}; choose another --out`,
    );
  if (!entries.includes(RUN_FILES.manifest))
    fail(`${dir}: --force replaces only inrun run directories, and this folder has no ${RUN_FILES.manifest}`);
  let manifest: Awaited<ReturnType<typeof readManifest>>;
  try {
    manifest = await readManifest(dir);
  } catch (error) {
    // "Not a run directory" becomes the --force wording; a newer format or a read error stays as it is.
    if (error instanceof InrunError && /not a run directory|not valid JSON/.test(error.message))
      return fail(
        `${dir}: --force replaces only inrun run directories, and its ${RUN_FILES.manifest} is not one inrun wrote`,
      );
    throw error;
  }
  for (const input of inputs) {
    if (within(await realOrResolved(input), real))
      fail(
        `${dir}: --force would delete the run's own input ${input}; move it out of the run directory first`,
      );
  }
  const known = new Set([
    ...(manifest.files ?? FORMAT_1_FILES),
    RUN_FILES.manifest,
    CHECKPOINT_DIR,
    // Listed while the run goes; a completed run removes it after its manifest no longer lists it.
    STEP_VALUES_SIDE_FILE,
    LOCK_FILE,
    LOCK_TAKEOVER_FILE,
    ...DERIVED_OUTPUTS,
  ]);
  const unknown = entries.filter((name) => !known.has(name) && !isTemporaryName(name));
  if (unknown.length > 0) {
    const shown = unknown.slice(0, 5).map((name) => displayPath(join(dir, name)));
    fail(
      `${dir}: --force deletes only what inrun wrote, and this run directory also holds ${shown.join(', ')}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''}; move ${unknown.length === 1 ? 'it' : 'them'} away or choose another --out`,
    );
  }
}

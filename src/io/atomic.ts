import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A name for writeFileAtomic's temporary file for `name`: `.<name>.<pid>.<12 hex digits>.tmp`. */
export function atomicTempName(name: string): string {
  return `.${name}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
}

/** Whether `name` has the form of writeFileAtomic's temporary files (left behind by a killed process). */
export function isAtomicTempName(name: string): boolean {
  return /^\..+\.\d+\.[0-9a-f]{12}\.tmp$/.test(name);
}

/**
 * Writes `data` to `path` so that readers see either the old file or the complete new one, never a
 * partial write: the data goes to a temporary file in the same directory (same file system), is
 * flushed to disk, then renamed over `path`. On any error the temporary file is removed.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, atomicTempName(basename(path)));
  let created = false;
  try {
    const handle = await open(temp, 'wx');
    created = true;
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    created = false;
  } catch (error) {
    if (created) await rm(temp, { force: true }).catch(() => {});
    throw error;
  }
  await syncDirectory(dir);
}

/** Flushes the directory entry of the rename (best effort: not every platform allows it). */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Windows and some file systems refuse fsync on a directory; the rename itself has happened.
  }
}

// A run directory as one zip file: what the web page downloads (its run has no folder to write),
// and what `inrun report run.zip` reads back (loadRunArchive in ./run-dir.ts). The files inside are
// a run directory's own, formatted by the same functions; the data files a run trained on sit in
// data/, where the archive's config.json points. No Node imports.
import { unzipSync, zipSync } from 'fflate';
import { fail } from '../util/errors.js';
import { RUN_FILES } from './run-files.js';

/** The archive's folder of data files (config.json names them as data/<file>). */
export const ARCHIVE_DATA_DIR = 'data';

/** The files loadRun reads from every run, whatever its kind. */
export const ARCHIVE_REQUIRED = [
  RUN_FILES.manifest,
  RUN_FILES.config,
  RUN_FILES.valuesJsonl,
  RUN_FILES.traceJsonl,
  RUN_FILES.weightsInitial,
  RUN_FILES.weightsFinal,
] as const;

/** Every entry gets this time, so equal runs give byte-identical archives (zip cannot store times before 1980). */
const ENTRY_TIME = new Date(Date.UTC(1980, 0, 1));

/** Zips a run's files (name → content; names may hold folders, e.g. data/train.csv). */
export function zipRunFiles(files: Record<string, string | Uint8Array>): Uint8Array {
  const encoder = new TextEncoder();
  const entries: Record<string, Uint8Array> = {};
  for (const [name, content] of Object.entries(files)) {
    checkEntryName(name, 'zipRunFiles');
    entries[name] = typeof content === 'string' ? encoder.encode(content) : content;
  }
  return zipSync(entries, { level: 6, mtime: ENTRY_TIME });
}

/** Entry names stay inside the archive: relative, forward slashes, no "." or ".." parts. */
function checkEntryName(name: string, where: string): void {
  const parts = name.split('/');
  if (name === '' || name.includes('\\') || parts.some((p) => p === '' || p === '.' || p === '..'))
    fail(`${where}: entry ${JSON.stringify(name)} is not a plain relative path inside the archive`);
}

/**
 * The files of a run archive by name (folders dropped). An archive of a folder holding the run
 * (`zip -r run.zip run/`) is read as that folder. `shown` names the archive in messages.
 */
export function unzipRunArchive(bytes: Uint8Array, shown: string): Map<string, Uint8Array> {
  const magic = bytes.length >= 4 ? (bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3] : 0;
  // Local file header, or the end record of an empty archive.
  if (magic !== 0x504b0304 && magic !== 0x504b0506)
    fail(`${shown}: not a zip archive; give a run directory, or the run.zip the inrun page downloads`);
  let unzipped: Record<string, Uint8Array>;
  try {
    unzipped = unzipSync(bytes);
  } catch (error) {
    return fail(
      `${shown}: corrupt zip archive (${(error as Error).message}); download or copy the run again`,
    );
  }
  const entries = new Map<string, Uint8Array>();
  for (const [name, content] of Object.entries(unzipped)) {
    if (name.endsWith('/')) continue;
    checkEntryName(name, shown);
    entries.set(name, content);
  }
  if (entries.has(RUN_FILES.manifest)) return entries;
  const folders = new Set([...entries.keys()].map((name) => name.split('/')[0]));
  const [folder] = folders;
  if (folders.size === 1 && entries.has(`${folder}/${RUN_FILES.manifest}`))
    return new Map(
      [...entries].map(([name, content]) => [name.slice(folder.length + 1), content] as [string, Uint8Array]),
    );
  return fail(
    `${shown}: not a run archive (no ${RUN_FILES.manifest} in it${entries.size === 0 ? '; the archive is empty' : ''})`,
  );
}

/** Fails, listing every file missing, unless the archive has the files every run has. */
export function checkArchiveComplete(entries: Map<string, Uint8Array>, shown: string): void {
  const missing = ARCHIVE_REQUIRED.filter((name) => !entries.has(name));
  if (missing.length === 0) return;
  const list = (names: readonly string[]) =>
    names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
  fail(
    `${shown}: incomplete run archive: ${list(missing)} ${missing.length === 1 ? 'is' : 'are'} missing (a run archive holds ${list(ARCHIVE_REQUIRED)})`,
  );
}

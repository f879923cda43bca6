// What both demos share: how they name their folders and the commands they suggest next.
import { displayPath } from '../data/readers/table.js';

/** The demo's data files go under <out>/data, the run directory is <out>/run (outside the data). */
export const DEMO_DATA_DIR = 'data';
export const DEMO_RUN_DIR = 'run';

/** A path for a command line to copy: relative to the working directory when inside it, quoted when needed. */
export function shellPath(path: string): string {
  const shown = displayPath(path);
  return /^[\w./@%+=:,-]+$/.test(shown) ? shown : `'${shown.replaceAll("'", "'\\''")}'`;
}

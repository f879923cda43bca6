// `inrun report <run-dir>`: one self-contained HTML file about a finished run (src/report/). The run
// may also be a run archive, the run.zip the web page downloads.
import { type FileHandle, open, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { displayPath } from '../data/readers/table.js';
import {
  COMPARISON_FILE,
  CURATION_DIR,
  REPORT_FILE,
  type RunReportOptions,
  writeArchiveReport,
  writeRunReport,
} from '../report/write.js';
import { describe, fail } from '../util/errors.js';
import type { CliIo } from './io.js';

interface RawReportFlags {
  out?: string;
  curation?: string;
  image?: string;
  top?: string;
}

/** Adds `inrun report` to the program. */
export function registerReportCommand(program: Command, io: CliIo): void {
  program
    .command('report')
    .description(
      'write a self-contained HTML report of a finished run: value histogram, most harmful and most ' +
        'helpful examples, groups and stages, efficiency, removal curve and curation results',
    )
    .argument('<run-dir>', 'run directory of inrun train, or a run archive (run.zip of the web page)')
    .option(
      '--out <file>',
      `the HTML file (default: <run-dir>/${REPORT_FILE}; for an archive, ${REPORT_FILE} beside it)`,
    )
    .option(
      '--curation <file>',
      `comparison of inrun curate (default: <run-dir>/${CURATION_DIR}/${COMPARISON_FILE} if present)`,
    )
    .option(
      '--image <WxH[xC]>',
      'show each example as a W×H image of its features, grey or (xC = x3) RGB channels-first, e.g. 28x28 (image folders: automatic)',
    )
    .option('--top <n>', 'how many of the most harmful and most helpful examples to list (default: 12)')
    .action(async (runDir: string, flags: RawReportFlags) => {
      const options: Omit<RunReportOptions, 'runDir'> = {
        out: flags.out === undefined ? undefined : resolve(flags.out),
        curationFile: flags.curation === undefined ? undefined : resolve(flags.curation),
        image: flags.image === undefined ? undefined : parseImageFlag(flags.image),
        top: parseTopFlag(flags.top ?? '12'),
      };
      if (flags.out === '') fail('--out must be a file path, got an empty string');
      const archive = await isRunArchive(runDir);
      const path = archive
        ? await writeArchiveReport({ ...options, archive: resolve(runDir) })
        : await writeRunReport({ ...options, runDir: resolve(runDir) });
      io.stdout(`report: ${displayPath(path)}\n`);
    });
}

export function parseImageFlag(text: string): { width: number; height: number; channels: 1 | 3 } {
  const m = /^\s*(\d+)\s*[x×]\s*(\d+)\s*(?:[x×]\s*(\d+)\s*)?$/i.exec(text);
  const width = m ? Number(m[1]) : Number.NaN;
  const height = m ? Number(m[2]) : Number.NaN;
  const channels = m?.[3] === undefined ? 1 : Number(m[3]);
  if (!m || width < 1 || height < 1 || width > 4096 || height > 4096 || (channels !== 1 && channels !== 3))
    fail(
      `--image must be WIDTHxHEIGHT or WIDTHxHEIGHTxCHANNELS (1 or 3), e.g. 28x28 or 32x32x3, got ${describe(text)}`,
    );
  return { width, height, channels };
}

function parseTopFlag(text: string): number {
  const n = Number(text.trim());
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n) || n < 1 || n > 1000)
    fail(`--top must be an integer from 1 to 1000, got ${describe(text)}`);
  return n;
}

/**
 * Whether `path` names a run archive: a file that starts like a zip, or is named *.zip (its
 * errors then say what is wrong with it). Anything else is read as a run directory, whose errors
 * say what it lacks ("not a run directory (no manifest.json)" for a data file).
 */
async function isRunArchive(path: string): Promise<boolean> {
  const named = /\.zip$/i.test(path);
  let file: FileHandle | undefined;
  try {
    if (!(await stat(path)).isFile()) return false;
    file = await open(path, 'r');
    const { bytesRead, buffer } = await file.read(Buffer.alloc(4), 0, 4, 0);
    return named || (bytesRead === 4 && buffer.readUInt32BE(0) === 0x504b0304);
  } catch {
    return named;
  } finally {
    await file?.close();
  }
}

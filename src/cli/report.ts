// `inrun report <run-dir>`: one self-contained HTML file about a finished run (src/report/).
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { displayPath } from '../data/readers/table.js';
import {
  COMPARISON_FILE,
  CURATION_DIR,
  REPORT_FILE,
  type RunReportOptions,
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
    .argument('<run-dir>', 'run directory of inrun train')
    .option('--out <file>', `the HTML file (default: <run-dir>/${REPORT_FILE})`)
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
      const options: RunReportOptions = {
        runDir: resolve(runDir),
        out: flags.out === undefined ? undefined : resolve(flags.out),
        curationFile: flags.curation === undefined ? undefined : resolve(flags.curation),
        image: flags.image === undefined ? undefined : parseImageFlag(flags.image),
        top: parseTopFlag(flags.top ?? '12'),
      };
      if (flags.out === '') fail('--out must be a file path, got an empty string');
      const path = await writeRunReport(options);
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

// Runs one of the case studies (docs/case-studies.md): npm run case-study -- <name> [options].
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { InrunError } from '../src/util/errors.js';
import { copyright } from './copyright.js';
import { curation } from './curation.js';

export interface CaseStudyOptions {
  /** Folder for the study's data, run directory and results (replaced pieces only). */
  out: string;
  /** Training documents to use (each study has its default). */
  documents?: number;
  /** Curation: the share of junk documents in the training mixture. */
  junk?: number;
}

const STUDIES: Record<string, (options: CaseStudyOptions) => Promise<number>> = { copyright, curation };

function positiveInteger(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < 4) throw new InvalidArgumentError('must be an integer ≥ 4');
  return n;
}

function share(text: string): number {
  const x = Number(text);
  if (text.trim() === '' || !(x >= 0 && x < 1)) throw new InvalidArgumentError('must be a number in [0, 1)');
  return x;
}

const program = new Command('case-study')
  .argument('<name>', `the case study: ${Object.keys(STUDIES).join(', ')}`)
  .option('--out <dir>', 'folder for its data, run and results (default runs/case-studies/<name>)')
  .option('--documents <n>', 'training documents', positiveInteger)
  .option('--junk <share>', 'curation: share of junk documents in the mixture (default 0.5)', share)
  .action(async (name: string, flags: { out?: string; documents?: number; junk?: number }) => {
    const study = STUDIES[name];
    if (!study)
      throw new InrunError(
        `unknown case study ${JSON.stringify(name)} (known: ${Object.keys(STUDIES).join(', ')})`,
      );
    process.exitCode = await study({
      out: resolve(flags.out ?? `runs/case-studies/${name}`),
      documents: flags.documents,
      junk: flags.junk,
    });
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (!(error instanceof InrunError)) throw error;
  console.error(`case-study: ${error.message}`);
  process.exitCode = 1;
}

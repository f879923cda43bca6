import { Command, CommanderError } from 'commander';
import { InrunError } from '../util/errors.js';
import { packageVersion } from '../util/version.js';
import { registerCurateCommand } from './curate.js';
import { registerDemoCommand } from './demo.js';
import { registerLanguageDemoCommand } from './demo-lm.js';
import { registerEvaluateCommand } from './evaluate.js';
import { type CliIo, processIo } from './io.js';
import { registerReportCommand } from './report.js';
import { registerTrainCommand } from './train.js';

export type { CliIo } from './io.js';

/** Exit codes: 0 success, 1 error (user error or bug), 2 command-line usage error. */
export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

/** The `inrun` program; a fresh one per call, so main() can run many times in one process. */
export function createProgram(io: CliIo = processIo): Command {
  const program = new Command('inrun')
    .description('In-Run Data Shapley: per-example data values computed while a model trains')
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({
      writeOut: io.stdout,
      writeErr: io.stderr,
      // Commander's messages read "error: …"; prefix the program name.
      outputError: (text, write) => write(`inrun: error: ${text.replace(/^error:\s*/, '')}`),
    })
    .exitOverride();
  // Subcommands made with .command() inherit the output and exit settings above.
  registerDemoCommand(program, io);
  registerLanguageDemoCommand(program, io);
  registerTrainCommand(program, io);
  registerReportCommand(program, io);
  registerCurateCommand(program, io);
  registerEvaluateCommand(program, io);
  return program;
}

/**
 * Runs the CLI on `argv` (process.argv: node, script, arguments…) and resolves to the exit code.
 * User errors print `inrun: error: <message>` without a stack trace; bugs print the stack.
 */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  try {
    await createProgram(io).parseAsync(argv, { from: 'node' });
    return EXIT_OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; anything else commander reports (already printed) is usage.
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (error instanceof InrunError) {
      io.stderr(`inrun: error: ${error.message}\n`);
      return EXIT_ERROR;
    }
    const detail = error instanceof Error ? (error.stack ?? String(error)) : String(error);
    io.stderr(`inrun: unexpected error (this is a bug in inrun):\n${detail}\n`);
    return EXIT_ERROR;
  }
}

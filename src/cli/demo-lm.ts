import type { Command } from 'commander';
import { LANGUAGE_DEMO_DEFAULTS, runLanguageDemo } from '../demo/lm-demo.js';
import type { KernelChoice } from '../kernels/index.js';
import { describe, fail } from '../util/errors.js';
import type { CliIo } from './io.js';

interface RawFlags {
  steps: string;
  order: string;
  seed: string;
  out: string;
  kernels: string;
  quiet?: boolean;
}

/** Adds `inrun demo-lm`: the language-model demo (a small GPT on bundled corpora). */
export function registerLanguageDemoCommand(program: Command, io: CliIo): void {
  const d = LANGUAGE_DEMO_DEFAULTS;
  program
    .command('demo-lm')
    .description(
      `train a small GPT (${d.layers} layers, width ${d.width}, context ${d.context}, GPT-2 BPE) on bundled speeches, ` +
        'Moby-Dick and the King James Bible, value every training sequence against held-out Moby-Dick text, and ' +
        'print per-source values over training stages and the most helpful documents; writes a run directory ' +
        'for inrun report (a few minutes)',
    )
    .option('--steps <n>', 'training steps', String(d.steps))
    .option('--order <1|2>', 'first- or second-order values', String(d.order))
    .option('--seed <n>', 'seed of the initial weights and data order', String(d.seed))
    .option(
      '--out <dir>',
      'folder for the documents as text files (<dir>/data) and the run directory (<dir>/run, replaced on each run)',
      d.out,
    )
    .option(
      '--kernels <auto|native|portable|wasm>',
      'OpenBLAS addon, portable TypeScript or WebAssembly kernels',
      d.kernels,
    )
    .option('--quiet', 'print only the results')
    .action(async (flags: RawFlags) => {
      const steps = Number(flags.steps);
      if (!/^\d+$/.test(flags.steps) || steps < 4)
        fail(`--steps must be an integer ≥ 4, got ${describe(flags.steps)}`);
      if (flags.order !== '1' && flags.order !== '2')
        fail(`--order must be 1 or 2, got ${describe(flags.order)}`);
      if (!/^\d+$/.test(flags.seed) || Number(flags.seed) > 0xffffffff)
        fail(`--seed must be an integer from 0 to 4294967295, got ${describe(flags.seed)}`);
      if (!['auto', 'native', 'portable', 'wasm'].includes(flags.kernels))
        fail(`--kernels must be auto, native, portable or wasm, got ${describe(flags.kernels)}`);
      if (flags.out === '') fail('--out must be a folder path, got an empty string');
      await runLanguageDemo(
        {
          steps,
          order: flags.order === '1' ? 1 : 2,
          seed: Number(flags.seed),
          out: flags.out,
          kernels: flags.kernels as KernelChoice,
          quiet: flags.quiet ?? false,
        },
        (line) => io.stdout(`${line}\n`),
      );
    });
}

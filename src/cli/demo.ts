import { type Command, Option } from 'commander';
import { DIGITS_DEMO_DEFAULTS, type DigitsDemoOptions, runDigitsDemo } from '../demo/digits-demo.js';
import type { KernelChoice } from '../kernels/index.js';
import { describe, fail } from '../util/errors.js';
import type { CliIo } from './io.js';

interface RawDemoFlags {
  model: string;
  order?: string;
  epochs?: string;
  batchSize: string;
  lr?: string;
  seed: string;
  out: string;
  kernels: string;
  quiet?: boolean;
}

/** Adds `inrun demo` to the program (settings such as error handling are inherited from it). */
export function registerDemoCommand(program: Command, io: CliIo): void {
  const d = DIGITS_DEMO_DEFAULTS;
  program
    .command('demo')
    .description(
      'train a small MLP (or, with --model cnn, a LeNet-5) on bundled handwritten digits with 10% flipped labels, value every training ' +
        'example in-run, and check that the negative values find the flipped labels (a run directory for ' +
        'inrun report and inrun curate)',
    )
    .addOption(flag('--model <mlp|cnn>', 'an MLP, or a LeNet-5 CNN on the 28×28 images (slower)', 'mlp'))
    .option('--order <1|2>', `first- or second-order values (default: ${d.order}; cnn: ${d.cnn.order})`)
    .option('--epochs <n>', `passes over the training data (default: ${d.epochs}; cnn: ${d.cnn.epochs})`)
    .addOption(flag('--batch-size <n>', 'examples per step', d.batchSize))
    .option(
      '--lr <rate>',
      `learning rate: SGD with momentum 0.9 (default: ${d.lr}); cnn: Adam (default: ${d.cnn.lr})`,
    )
    .addOption(flag('--seed <n>', 'seed of the flipped labels, initial weights and data order', d.seed))
    .addOption(
      flag(
        '--out <dir>',
        'folder for the digits as CSV files (<dir>/data) and the run directory (<dir>/run, replaced on each run)',
        d.out,
      ),
    )
    .addOption(
      flag(
        '--kernels <auto|native|portable|wasm>',
        'OpenBLAS addon, portable TypeScript or WebAssembly kernels',
        d.kernels,
      ),
    )
    .option('--quiet', 'print only the results')
    .action(async (flags: RawDemoFlags) => {
      await runDigitsDemo(parseDemoFlags(flags), (line) => io.stdout(`${line}\n`));
    });
}

/** A flag whose raw default is the string form of the demo's default, shown unquoted in --help. */
function flag(flags: string, description: string, fallback: string | number): Option {
  return new Option(flags, description).default(String(fallback), String(fallback));
}

/** Turns the raw flag strings into demo options; throws an InrunError naming the bad flag. */
export function parseDemoFlags(flags: RawDemoFlags): DigitsDemoOptions {
  const model = flags.model.trim().toLowerCase();
  if (model !== 'mlp' && model !== 'cnn') fail(`--model must be mlp or cnn, got ${describe(flags.model)}`);
  const order = flags.order?.trim();
  if (order !== undefined && order !== '1' && order !== '2')
    fail(`--order must be 1 or 2, got ${describe(flags.order)}`);
  if (flags.out === '') fail('--out must be a folder path, got an empty string');
  const kernels = flags.kernels.trim().toLowerCase();
  if (!['auto', 'native', 'portable', 'wasm'].includes(kernels))
    fail(`--kernels must be auto, native, portable or wasm, got ${describe(flags.kernels)}`);
  return {
    model,
    order: order === undefined ? undefined : order === '1' ? 1 : 2,
    epochs: flags.epochs === undefined ? undefined : integerFlag('--epochs', flags.epochs, 1),
    batchSize: integerFlag('--batch-size', flags.batchSize, 1),
    lr: flags.lr === undefined ? undefined : positiveFlag('--lr', flags.lr),
    seed: integerFlag('--seed', flags.seed, 0, 0xffffffff),
    out: flags.out,
    kernels: kernels as KernelChoice,
    quiet: flags.quiet ?? false,
  };
}

function integerFlag(flag: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text.trim());
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(value) || value < min)
    fail(`${flag} must be an integer ≥ ${min}, got ${describe(text)}`);
  if (value > max) fail(`${flag} must be at most ${max}, got ${describe(text)}`);
  return value;
}

function positiveFlag(flag: string, text: string): number {
  const value = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0)
    fail(`${flag} must be a positive number, got ${describe(text)}`);
  return value;
}

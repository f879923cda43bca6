// `inrun curate <run-dir>`: drop examples by value, retrain, and compare with random removal.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { curate } from '../curate/curate.js';
import type { SelectionRule } from '../curate/select.js';
import { displayPath } from '../data/readers/table.js';
import { formatNumber } from '../report/escape.js';
import { CURATION_DIR } from '../report/write.js';
import { describe, fail } from '../util/errors.js';
import type { CliIo } from './io.js';
import { withStopSignal } from './signals.js';

interface RawCurateFlags {
  below?: string;
  percentile?: string;
  negatives?: boolean;
  out?: string;
  force?: boolean;
  seed?: string;
  quiet?: boolean;
}

/** Adds `inrun curate` to the program. */
export function registerCurateCommand(program: Command, io: CliIo): void {
  program
    .command('curate')
    .description(
      'drop training examples by value, retrain with the same settings and seed, retrain with as many ' +
        'examples removed at random, and compare test-loss curves on the held-out test set, or validation-loss ' +
        'curves without one (comparison.json and an HTML report)',
    )
    .argument('<run-dir>', 'run directory of inrun train')
    .option('--below <value>', 'drop examples whose value is below this')
    .option('--percentile <p>', 'drop the lowest p% of values (0 < p < 100)')
    .option('--negatives', 'drop examples with a negative value')
    .option('--out <dir>', `output folder (default: <run-dir>/${CURATION_DIR})`)
    .option('--force', 'replace the output folder of an earlier inrun curate')
    .option('--seed <n>', "seed of the random removal (default: the run's seed)")
    .option('--quiet', 'print only where the results went')
    .addHelpText(
      'after',
      '\nThe retrainings run as many optimizer steps as the original run, with its config and seed;\n' +
        'the curated and random training files are written in the format of the original.\n',
    )
    .action(async (runDir: string, flags: RawCurateFlags) => {
      const rule = parseRule(flags);
      if (flags.out === '') fail('--out must be a folder path, got an empty string');
      const randomSeed = flags.seed === undefined ? undefined : parseSeed(flags.seed);
      const say = (line: string) => {
        if (!flags.quiet) io.stdout(`${line}\n`);
      };
      const result = await withStopSignal((signal) =>
        curate({
          signal,
          runDir: resolve(runDir),
          rule,
          out: flags.out === undefined ? undefined : resolve(flags.out),
          force: flags.force ?? false,
          randomSeed,
          log: say,
          notice: (message) => io.stderr(`inrun: ${message}\n`),
        }),
      );
      const c = result.comparison;
      const runs = [c.runs.original, c.runs.curated, c.runs.random];
      const reached = (steps: number | null, target: string) =>
        steps === null ? `never reaches ${target}` : `reaches ${target} at step ${steps}`;
      if (c.judgedOn === 'test' && c.test && runs.every((r) => r.test)) {
        const target = formatNumber(c.test.targetLoss);
        say(`judged on the held-out test set (${c.test.examples} examples, the same in every run):`);
        for (const r of runs) {
          const t = r.test!;
          const accuracy =
            t.finalAccuracy === null ? '' : `, accuracy ${(100 * t.finalAccuracy).toFixed(1)}%`;
          say(
            `${`${r.name}:`.padEnd(10)}${String(r.examples).padStart(6)} examples, final test loss ${formatNumber(t.finalLoss)}${accuracy}, ${reached(t.stepsToTarget, target)}`,
          );
        }
        say('validation loss (secondary: the set the values were computed against):');
      } else if (c.notice) io.stderr(`inrun: ${c.notice}\n`);
      const target = formatNumber(c.targetValidationLoss);
      for (const r of runs)
        say(
          `${`${r.name}:`.padEnd(10)}${String(r.examples).padStart(6)} examples, final validation loss ${formatNumber(r.finalValidationLoss)}, ${reached(r.stepsToTarget, target)}`,
        );
      io.stdout(`comparison: ${displayPath(result.comparisonPath)}\n`);
      io.stdout(`report: ${displayPath(result.reportPath)}\n`);
    });
}

export function parseRule(flags: Pick<RawCurateFlags, 'below' | 'percentile' | 'negatives'>): SelectionRule {
  const given = [
    flags.below !== undefined && '--below',
    flags.percentile !== undefined && '--percentile',
    flags.negatives && '--negatives',
  ].filter(Boolean);
  if (given.length === 0)
    fail('choose the examples to drop: --below <value>, --percentile <p> or --negatives');
  if (given.length > 1) fail(`give one of --below, --percentile and --negatives, not ${given.join(' and ')}`);
  if (flags.negatives) return { kind: 'negatives' };
  if (flags.below !== undefined) {
    const text = flags.below.trim();
    const threshold = Number(text);
    if (text === '' || !Number.isFinite(threshold))
      fail(`--below must be a number, got ${describe(flags.below)}`);
    return { kind: 'below', threshold };
  }
  const text = flags.percentile!.trim();
  const percentile = Number(text.replace(/%$/, ''));
  if (text === '' || !Number.isFinite(percentile) || percentile <= 0 || percentile >= 100)
    fail(`--percentile must be a number between 0 and 100 (exclusive), got ${describe(flags.percentile)}`);
  return { kind: 'percentile', percentile };
}

function parseSeed(text: string): number {
  const n = Number(text.trim());
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n) || n > 0xffffffff)
    fail(`--seed must be an integer from 0 to 4294967295, got ${describe(text)}`);
  return n;
}

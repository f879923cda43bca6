// `inrun evaluate`: plant known faults, train once, and score every in-run signal and every
// baseline at finding them (src/evaluate/evaluate.ts; text runs src/evaluate/text.ts).
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { displayPath } from '../data/readers/table.js';
import { type Evaluation, evaluate, isTextEvaluation, type TextEvaluation } from '../evaluate/evaluate.js';
import { parseFaultSpec } from '../evaluate/faults.js';
import { writeEvaluationReport } from '../evaluate/report.js';
import { loadConfigFile, parseTrainConfig } from '../run/config.js';
import { describe, fail } from '../util/errors.js';
import type { CliIo } from './io.js';

interface RawEvaluateFlags {
  config?: string;
  faults?: string;
  seed?: string;
  out: string;
  force?: boolean;
  removal: string;
  curves?: string;
  knnK: string;
  json?: boolean;
}

/** Adds `inrun evaluate` to the program. */
export function registerEvaluateCommand(program: Command, io: CliIo): void {
  program
    .command('evaluate')
    .description(
      'plant known faults (flipped labels, noise, duplicates, outliers; text: junk documents) in the ' +
        'training data, train once, and show which signal finds them best: in-run values and signals next ' +
        'to KNN-Shapley, final-model loss, TracIn-CP and random (text: TF-IDF, BM25, final-model loss and ' +
        'random), with removal curves measured by retraining',
    )
    .option(
      '--config <file>',
      'the run to evaluate on (classification or text (gpt), with a test set); default: the bundled digits',
    )
    .option(
      '--faults <spec>',
      'kind:rate,… of label-flip, feature-noise, duplicate, near-duplicate, out-of-distribution ' +
        '(default label-flip:0.1); text (gpt) configs: of random-words, boilerplate, shuffled, ' +
        'near-duplicate (default 0.05 of each)',
    )
    .option('--seed <n>', "seed of the planted faults (default: the config's seed)")
    .option('--out <dir>', 'output folder (data/, run/, evaluation.json, evaluation.html)', 'runs/evaluate')
    .option('--force', "replace an earlier evaluation's run directory")
    .option(
      '--removal <fractions>',
      'fractions of the training data (text: documents) each removal curve drops',
      '0.1,0.2,0.3',
    )
    .option(
      '--curves <signals>',
      'signals to measure removal curves for (default: the main ones; "none" for none)',
    )
    .option('--knn-k <k>', 'K of KNN-Shapley (tables)', '10')
    .option('--json', 'print evaluation.json instead of the table')
    .action(async (flags: RawEvaluateFlags) => {
      const config =
        flags.config === undefined
          ? undefined
          : parseTrainConfig(await loadConfigFile(flags.config), process.cwd());
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      let evaluation: Evaluation | TextEvaluation;
      try {
        evaluation = await evaluate({
          config,
          faults: flags.faults === undefined ? undefined : parseFaultSpec(flags.faults, config?.model.kind),
          faultSeed: flags.seed === undefined ? undefined : parseInteger('--seed', flags.seed),
          out: resolve(flags.out),
          force: flags.force ?? false,
          removal: parseFractions(flags.removal),
          curves:
            flags.curves === undefined ? undefined : flags.curves === 'none' ? [] : flags.curves.split(','),
          knnK: parseInteger('--knn-k', flags.knnK),
          log: (line) => io.stderr(`${line}\n`),
          signal: controller.signal,
        });
      } finally {
        process.removeListener('SIGINT', stop);
      }
      const reportPath = await writeEvaluationReport(evaluation);
      if (flags.json) io.stdout(`${JSON.stringify(evaluation, null, 2)}\n`);
      else io.stdout(evaluationTable(evaluation));
      io.stdout(
        `evaluation: ${displayPath(join(evaluation.out, 'evaluation.json'))}, report: ${displayPath(reportPath)}, run: ${displayPath(evaluation.runDir)}\n`,
      );
    });
}

function parseInteger(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n))
    fail(`${flag} must be a non-negative integer, got ${describe(text)}`);
  return n;
}

function parseFractions(text: string): number[] {
  const parts = text.split(',').map((p) => p.trim());
  return parts.map((p) => {
    const x = Number(p);
    if (p === '' || !(x > 0 && x < 1))
      fail(`--removal: ${describe(p)} is not a fraction between 0 and 1 (exclusive)`);
    return x;
  });
}

/** The results as a plain-text table: detection scores, then the removal curves. */
export function evaluationTable(e: Evaluation | TextEvaluation): string {
  const faults = e.faults.map((f) => `${f.kind} ${f.rows}`).join(', ');
  const text = isTextEvaluation(e);
  const trained = text
    ? `${e.trainSize} training documents (${e.text.sequences} sequences, ${e.text.steps} optimizer steps)`
    : `${e.trainSize} training examples`;
  const lines = [`${trained}, planted: ${faults}`, ''];
  const k = Object.keys(e.signals[0]?.precisionAtK ?? {})[0];
  const rows = [...e.signals].sort((a, b) => b.auroc - a.auroc);
  const name = Math.max(...rows.map((s) => s.name.length), 6);
  // Text runs plant several kinds by default, and the signals differ most by kind: one column each.
  const kinds = text
    ? e.faults.map((f) => f.kind).filter((kind) => kind in (e.signals[0]?.aurocByFault ?? {}))
    : [];
  const kindHeads = kinds.map((kind) => `  ${kind.padStart(Math.max(kind.length, 5))}`).join('');
  lines.push(`${'signal'.padEnd(name)}  kind      AUROC    AP   P@${k}${kindHeads}`);
  for (const s of rows)
    lines.push(
      `${s.name.padEnd(name)}  ${s.kind.padEnd(8)}  ${s.auroc.toFixed(3)}  ${s.averagePrecision.toFixed(3)}  ${s.precisionAtK[Number(k)].toFixed(3)}` +
        kinds
          .map((kind) => `  ${(s.aurocByFault[kind]?.toFixed(3) ?? '').padStart(Math.max(kind.length, 5))}`)
          .join(''),
    );
  if (kinds.length > 0)
    lines.push('', `(the last ${kinds.length} columns: AUROC for that kind against the clean documents)`);
  if (text) {
    if (e.removal.curves.length > 0) {
      const fractions = e.removal.curves[0].points.map((p) => p.fraction);
      lines.push(
        '',
        `test loss after removing the most suspicious training documents and retraining ${e.text.steps} steps (none removed: ${e.removal.baseline.testLoss.toFixed(4)})`,
        `${'signal'.padEnd(name)}  ${fractions.map((f) => `${Math.round(f * 100)}%`.padStart(8)).join('')}`,
      );
      for (const curve of e.removal.curves)
        lines.push(
          `${curve.name.padEnd(name)}  ${curve.points.map((p) => p.testLoss.toFixed(4).padStart(8)).join('')}`,
        );
    }
    return `${lines.join('\n')}\n`;
  }
  if (e.removal.curves.length > 0) {
    const fractions = e.removal.curves[0].points.map((p) => p.fraction);
    lines.push(
      '',
      `test loss / accuracy after removing the most suspicious rows and retraining (none removed: ${e.removal.baseline.testLoss.toFixed(4)} / ${e.removal.baseline.testAccuracy.toFixed(3)})`,
      `${'signal'.padEnd(name)}  ${fractions.map((f) => `${Math.round(f * 100)}%`.padStart(15)).join('')}`,
    );
    for (const curve of e.removal.curves)
      lines.push(
        `${curve.name.padEnd(name)}  ${curve.points.map((p) => `${p.testLoss.toFixed(4)} / ${p.testAccuracy.toFixed(3)}`.padStart(15)).join('')}`,
      );
  }
  return `${lines.join('\n')}\n`;
}

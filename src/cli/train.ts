// `inrun train`: train a model on a data file while valuing every training example (In-Run Data
// Shapley), with checkpoints, exact resume and a run directory of results (src/io/run-dir.ts).
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { displayPath } from '../data/readers/table.js';
import { RUN_FILES } from '../io/run-dir.js';
import {
  applyOverrides,
  fieldsHelp,
  loadConfigFile,
  parseSetFlag,
  parseTrainConfig,
  type RawConfig,
} from '../run/config.js';
import {
  type RunEvent,
  RunFailedError,
  type TrainRunOptions,
  type TrainRunResult,
  trainRun,
} from '../run/train-run.js';
import { Progress, type ProgressMode } from '../train/progress.js';
import { fail, InrunError } from '../util/errors.js';
import { type CliIo, processIo } from './io.js';
import { withStopSignal } from './signals.js';

// ---------------------------------------------------------------------------------------------
// Flags

type FlagKind = 'string' | 'number' | 'list' | 'numberList' | 'boolean';

/** Flags that set one config field each: flag, config key path, value kind, help. */
const CONFIG_FLAGS: [string, string, FlagKind, string][] = [
  [
    '--train <path>',
    'data.train',
    'string',
    'training data (.csv, .jsonl, .parquet; gpt: .txt/.md, a folder of them, or a text column)',
  ],
  ['--validation <path>', 'data.validation', 'string', 'validation data'],
  [
    '--validation-split <fraction>',
    'data.validationSplit',
    'number',
    'or: hold out this fraction of --train',
  ],
  ['--test <path>', 'data.test', 'string', 'held-out test data (curation is judged on it)'],
  [
    '--test-split <fraction>',
    'data.testSplit',
    'number',
    'or: hold out this fraction of --train as the test set',
  ],
  [
    '--test-every <n>',
    'testEvery',
    'number',
    'evaluate the test set every n steps (default: about 20 times)',
  ],
  ['--id-column <name>', 'columns.id', 'string', 'column of unique example ids'],
  ['--label-column <name>', 'columns.label', 'string', 'label column'],
  ['--features <a,b,...>', 'columns.features', 'list', 'feature columns (default: all numeric)'],
  ['--group-column <name>', 'columns.group', 'string', 'group column'],
  ['--text-column <name>', 'columns.text', 'string', 'gpt: text column of a JSONL/CSV/Parquet file'],
  ['--task <kind>', 'task', 'string', 'classification, binary or regression'],
  ['--classes <n>', 'classes', 'number', 'number of classes (classification)'],
  ['--class-names <a,b,...>', 'classNames', 'list', 'class names in label order (pins the mapping)'],
  ['--missing <policy>', 'data.missing', 'string', 'rows with missing cells: error or drop'],
  ['--standardize', 'data.standardize', 'boolean', 'standardize features (fitted on the training split)'],
  ['--model <kind>', 'model.kind', 'string', 'logreg, mlp, gpt or cnn'],
  ['--hidden <n,n,...>', 'model.hidden', 'numberList', 'mlp hidden widths'],
  ['--activation <name>', 'model.activation', 'string', 'mlp activation'],
  ['--layers <n>', 'model.layers', 'number', 'gpt: transformer blocks'],
  ['--heads <n>', 'model.heads', 'number', 'gpt: attention heads'],
  ['--width <n>', 'model.width', 'number', 'gpt: embedding width'],
  ['--context <n>', 'model.context', 'number', 'gpt: tokens per training sequence'],
  ['--tokenizer <name>', 'model.tokenizer', 'string', 'gpt: gpt2 or bytes'],
  ['--optimizer <kind>', 'optimizer.kind', 'string', 'sgd, adam or adamw'],
  ['--lr <rate>', 'optimizer.lr', 'number', 'learning rate'],
  ['--momentum <m>', 'optimizer.momentum', 'number', 'sgd momentum'],
  ['--weight-decay <l>', 'optimizer.weightDecay', 'number', 'weight decay'],
  ['--clip-norm <n>', 'optimizer.clipNorm', 'number', 'gradient clipping norm'],
  ['--batch-size <n>', 'batchSize', 'number', 'examples per step'],
  ['--steps <n>', 'steps', 'number', 'optimizer steps'],
  ['--epochs <n>', 'epochs', 'number', 'passes over the data'],
  ['--order <1|2>', 'order', 'number', 'first- or second-order values'],
  ['--seed <n>', 'seed', 'number', 'seed of weights, data order and split'],
  ['--stages <n>', 'stages', 'number', 'equal training stages'],
  ['--per-validation', 'perValidation', 'boolean', 'keep values per validation example'],
  [
    '--validation-batch <k>',
    'validationBatch',
    'number',
    'value against k random validation examples per step',
  ],
  [
    '--momentum-credit',
    'momentumCredit',
    'boolean',
    'credit what momentum carries (with --checkpoint-every 0)',
  ],
  ['--value-from <step>', 'valueFrom', 'number', 'first step whose values count'],
  ['--out <dir>', 'out', 'string', 'run directory'],
  ['--checkpoint-every <n>', 'checkpointEvery', 'number', 'checkpoint every n steps (0: on signals only)'],
  ['--record-batch-ids', 'recordBatchIds', 'boolean', "record each step's batch ids in the trace"],
  ['--step-values', 'stepValues', 'boolean', "write step-values.parquet: each step's per-example values"],
  ['--kernels <kind>', 'kernels', 'string', 'auto, native, portable or wasm'],
  ['--init-weights <file>', 'initWeights', 'string', 'initial weights (.safetensors)'],
];

function camel(flag: string): string {
  return flag
    .replace(/^--/, '')
    .split(' ')[0]
    .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function flagValue(text: string | boolean, kind: FlagKind): unknown {
  if (typeof text === 'boolean') return text;
  const num = (t: string) => (t.trim() !== '' && Number.isFinite(Number(t)) ? Number(t) : t);
  switch (kind) {
    case 'string':
      return text;
    case 'number':
      return num(text);
    case 'list':
      return text.split(',').map((s) => s.trim());
    case 'numberList':
      return text.trim() === '' ? [] : text.split(',').map((s) => num(s.trim()));
    case 'boolean':
      return true;
  }
}

type RawFlags = Record<string, unknown> & {
  config?: string;
  resume?: string;
  force?: boolean;
  quiet?: boolean;
  json?: boolean;
  set?: string[];
};

/** Adds `inrun train` to the program. */
export function registerTrainCommand(program: Command, io: CliIo): void {
  const command = program
    .command('train')
    .description(
      'train a model on a CSV, JSONL or Parquet file (or a GPT on text) and value every training example in-run; ' +
        'results go to a run directory',
    )
    .option('--config <file>', 'YAML or JSON config (flags override its fields)');
  for (const [flags, , , help] of CONFIG_FLAGS) command.option(flags, help);
  command
    .addOption(
      new Option(
        '--set <key.path=value>',
        'set any config field, e.g. optimizer.schedule.kind=cosine (repeatable)',
      ).argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]),
    )
    .option('--resume <dir>', 'continue an interrupted run from its checkpoint (uses its saved config)')
    .option('--force', 'replace an existing run directory')
    .option('--quiet', 'print only the final summary')
    .option('--json', 'print progress and results as JSON lines on stdout')
    .addHelpText('after', `\n${fieldsHelp()}\nRun-directory layout and examples: docs/cli.md\n`)
    .action(async (flags: RawFlags) => {
      await runTrainCommand(flags, io);
    });
}

async function runTrainCommand(flags: RawFlags, io: CliIo): Promise<void> {
  if (flags.quiet && flags.json) fail('--quiet and --json exclude each other');
  const mode: ProgressMode = flags.json
    ? 'json'
    : flags.quiet
      ? 'quiet'
      : io === processIo && process.stderr.isTTY
        ? 'bar'
        : 'plain';
  if (flags.resume !== undefined) {
    const extra = Object.keys(flags).filter(
      (k) => !['resume', 'quiet', 'json'].includes(k) && flags[k] !== undefined,
    );
    if (extra.length > 0)
      fail(
        `--resume continues with the run's saved config; drop ${extra.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}`,
      );
    await trainCommandRun({ resume: resolve(flags.resume) }, mode, io);
    return;
  }
  const raw: RawConfig = flags.config
    ? await loadConfigFile(flags.config)
    : { value: {}, flagPaths: new Map() };
  const overrides: { path: string; value: unknown; flag: string }[] = [];
  for (const [flagSpec, path, kind] of CONFIG_FLAGS) {
    const value = flags[camel(flagSpec)];
    if (value === undefined) continue;
    overrides.push({ path, value: flagValue(value as string | boolean, kind), flag: flagSpec.split(' ')[0] });
  }
  for (const text of flags.set ?? []) {
    const { path, value } = parseSetFlag(text);
    overrides.push({ path, value, flag: `--set ${path}` });
  }
  applyOverrides(raw, overrides);
  if (!flags.config && raw.value.data === undefined)
    fail('no training data: give --config run.yaml or --train data.csv (see inrun train --help)');
  const config = parseTrainConfig(raw);
  await trainCommandRun({ config, force: flags.force ?? false }, mode, io);
}

// ---------------------------------------------------------------------------------------------
// The run (src/run/train-run.ts), shown as progress

async function trainCommandRun(
  options: Pick<TrainRunOptions, 'config' | 'resume' | 'force'>,
  mode: ProgressMode,
  io: CliIo,
): Promise<void> {
  const say = (line: string) => {
    if (mode === 'plain' || mode === 'bar') io.stdout(`${line}\n`);
  };
  let progress: Progress | null = null;
  const onEvent = (event: RunEvent) => {
    switch (event.type) {
      case 'notice':
        if (progress) progress.note(`inrun: ${event.message}`);
        else io.stderr(`inrun: ${event.message}\n`);
        return;
      case 'start':
        say(`kernels: ${event.kernels}`);
        say(event.dataSummary);
        say(event.modelSummary);
        if (event.resumed) say(`resuming ${displayPath(event.runDir)} at step ${event.step}`);
        progress = new Progress({
          mode,
          totalSteps: event.totalSteps,
          startStep: event.step,
          writeText: io.stderr,
          writeJson: io.stdout,
          stream: process.stderr,
        });
        progress.event(event.resumed ? 'resume' : 'start', {
          runDir: event.runDir,
          step: event.step,
          totalSteps: event.totalSteps,
          trainExamples: event.trainExamples,
          validationExamples: event.validationExamples,
          ...(event.testExamples !== null ? { testExamples: event.testExamples } : {}),
          parameters: event.parameters,
          kernels: event.kernels.split(' ')[0],
        });
        progress.start();
        return;
      case 'step':
        progress?.step(event);
        return;
      case 'checkpoint':
        progress?.event('checkpoint', { step: event.step });
        return;
      case 'warning':
        // Warnings show in every mode (--quiet too): the values of this run need a second look.
        io.stderr(`${mode === 'bar' ? '\r\x1b[2K' : ''}inrun: warning: ${event.warning.message}\n`);
        progress?.event('warning', { ...event.warning });
        return;
    }
  };
  let result: TrainRunResult;
  try {
    result = await withStopSignal((signal) => trainRun({ ...options, onEvent, signal }));
  } catch (error) {
    (progress as Progress | null)?.stop();
    const runDir = options.resume ?? options.config?.out;
    // A run that failed midway keeps its last checkpoint: say how to continue.
    if (error instanceof RunFailedError && error.resumable && runDir !== undefined)
      throw new InrunError(
        `${error.message}; after fixing the cause, continue with: inrun train --resume ${displayPath(runDir)}`,
      );
    throw error;
  }
  (progress as Progress | null)?.stop();
  const shownDir = displayPath(result.runDir);
  if (result.status === 'interrupted') {
    (progress as Progress | null)?.event('interrupted', {
      signal: result.manifest.message?.match(/by (SIG[A-Z]+)/)?.[1] ?? null,
      step: result.stepsDone,
      runDir: result.runDir,
    });
    fail(`${result.message}; continue with: inrun train --resume ${shownDir}`);
  }
  const summary = result.summary!;
  if (mode === 'json') {
    (progress as Progress | null)?.event('done', {
      runDir: result.runDir,
      steps: result.totalSteps,
      ...summary,
    });
    return;
  }
  io.stdout(
    `done: ${result.totalSteps} steps, validation loss ${summary.initialValidationLoss.toPrecision(4)} → ${summary.finalValidationLoss.toPrecision(4)}, ` +
      `max |efficiency residual| ${summary.maxEfficiencyResidual.toExponential(1)}\n`,
  );
  if (summary.brokenSteps > 0)
    io.stdout(
      `expansion: in ${summary.brokenSteps} of ${result.totalSteps} steps the Taylor expansion broke down (trace expansionBroken)` +
        (summary.brokenStepsExcluded
          ? '; their values are left out (excludeBrokenSteps)\n'
          : '; excludeBrokenSteps: true leaves them out of the values\n'),
    );
  if (summary.finalTestLoss !== null)
    io.stdout(
      `test: loss ${summary.finalTestLoss.toPrecision(4)}` +
        (summary.finalTestAccuracy !== null
          ? `, accuracy ${(100 * summary.finalTestAccuracy).toFixed(1)}%`
          : '') +
        ` on ${summary.testExamples} held-out ${summary.trainDocuments !== null ? 'sequences' : 'examples'} (final weights)\n`,
    );
  io.stdout(
    `values: ${join(shownDir, RUN_FILES.valuesCsv)} (${summary.examplesValued} examples; also .jsonl, .parquet)\n`,
  );
  // An example the run never saw has no value: say so when the run did not cover the data; text
  // runs always state their coverage, since sampled sequences decide which documents get values.
  const unit = summary.trainDocuments !== null ? 'sequences' : 'examples';
  const percent = (part: number, whole: number) => `${((100 * part) / whole).toFixed(1)}%`;
  const covered =
    summary.examplesValued === summary.trainExamples &&
    (summary.documentsValued ?? 0) === (summary.trainDocuments ?? 0);
  if (covered && summary.trainDocuments !== null)
    io.stdout(
      `coverage: every training sequence valued (${summary.trainExamples} sequences of ${summary.trainDocuments} documents)\n`,
    );
  if (!covered)
    io.stdout(
      `coverage: ${summary.examplesValued} of ${summary.trainExamples} training ${unit} valued (${percent(summary.examplesValued, summary.trainExamples)})` +
        (summary.trainDocuments !== null
          ? `, ${summary.documentsValued} of ${summary.trainDocuments} documents (${percent(summary.documentsValued!, summary.trainDocuments)})`
          : '') +
        (summary.brokenStepsExcluded && summary.brokenSteps > 0
          ? `; the rest were never in a batch, or only in the ${summary.brokenSteps} steps left out as broken (excludeBrokenSteps), and have no value\n`
          : `; the rest were never in a batch and have no value — give more steps, or epochs to cover every one\n`),
    );
  const warnings = result.manifest.warnings?.length ?? 0;
  if (warnings > 0)
    io.stdout(
      `warnings: ${warnings} (printed above; kept in manifest.json and shown in inrun report) — these values need a second look\n`,
    );
  io.stdout(`run: ${shownDir}\n`);
}

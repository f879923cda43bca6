// `inrun train`: train a model on a data file while valuing every training example (In-Run Data
// Shapley), with checkpoints, exact resume and a run directory of results (src/io/run-dir.ts).
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { displayPath } from '../data/readers/table.js';
import { writeFileAtomic } from '../io/atomic.js';
import { hasCheckpoint, loadCheckpoint, removeCheckpoint, saveCheckpoint } from '../io/checkpoint.js';
import {
  type DataFileInfo,
  prepareRunDir,
  RUN_FILES,
  type RunManifest,
  readManifest,
  writeJsonFile,
} from '../io/run-dir.js';
import { encodeSafetensors, loadModelTensors, modelTensors, readSafetensors } from '../io/safetensors.js';
import {
  traceToCsv,
  traceToJsonl,
  valuesToCsv,
  valuesToJsonl,
  valuesToParquet,
} from '../io/values-writers.js';
import type { NativeKernels } from '../kernels/index.js';
import { buildModel, buildOptimizer, buildTextModel, runLength } from '../run/build.js';
import {
  applyOverrides,
  fieldsHelp,
  loadConfigFile,
  parseSetFlag,
  parseTrainConfig,
  type RawConfig,
  type TrainConfig,
} from '../run/config.js';
import { loadTrainingData, runSeeds, tableInputs, textInputs } from '../run/data.js';
import { loadTextTrainingData } from '../run/text-data.js';
import { checkRecordedVocabulary, textRunOutputs } from '../run/text-outputs.js';
import { Progress, type ProgressMode } from '../train/progress.js';
import { Trainer } from '../train/trainer.js';
import { DivergenceError, fail } from '../util/errors.js';
import { type CliIo, processIo } from './io.js';

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
  ['--id-column <name>', 'columns.id', 'string', 'column of unique example ids'],
  ['--label-column <name>', 'columns.label', 'string', 'label column'],
  ['--features <a,b,...>', 'columns.features', 'list', 'feature columns (default: all numeric)'],
  ['--group-column <name>', 'columns.group', 'string', 'group column'],
  ['--text-column <name>', 'columns.text', 'string', 'gpt: text column of a JSONL/CSV/Parquet file'],
  ['--task <kind>', 'task', 'string', 'classification, binary or regression'],
  ['--classes <n>', 'classes', 'number', 'number of classes (classification)'],
  ['--model <kind>', 'model.kind', 'string', 'logreg, mlp or gpt'],
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
  ['--out <dir>', 'out', 'string', 'run directory'],
  ['--checkpoint-every <n>', 'checkpointEvery', 'number', 'checkpoint every n steps (0: on signals only)'],
  ['--record-batch-ids', 'recordBatchIds', 'boolean', "record each step's batch ids in the trace"],
  ['--kernels <kind>', 'kernels', 'string', 'auto, native or portable'],
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
    await trainRun({ resumeDir: resolve(flags.resume), mode, io });
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
  await trainRun({ config, force: flags.force ?? false, mode, io });
}

// ---------------------------------------------------------------------------------------------
// The run

function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

interface TrainRunArgs {
  config?: TrainConfig;
  resumeDir?: string;
  force?: boolean;
  mode: ProgressMode;
  io: CliIo;
}

async function trainRun(args: TrainRunArgs): Promise<void> {
  const { io, mode } = args;
  const resuming = args.resumeDir !== undefined;
  let config: TrainConfig;
  let previous: RunManifest | null = null;
  if (resuming) {
    const dir = args.resumeDir!;
    previous = await readManifest(dir);
    if (previous.status === 'complete') fail(`${dir}: the run is already complete; nothing to resume`);
    const raw = await loadConfigFile(join(dir, RUN_FILES.config));
    config = parseTrainConfig(raw);
  } else config = args.config!;
  const runDir = resuming ? args.resumeDir! : config.out;

  // Everything that can be wrong with the input is checked before anything is written.
  const text = config.model.kind === 'gpt' ? await loadTextTrainingData(config) : null;
  const table = text ? null : await loadTrainingData(config);
  const data = text ? textInputs(text) : tableInputs(table!);
  if (previous) {
    const check = (info: DataFileInfo | null, now: DataFileInfo | null, role: string) => {
      if (info && now && info.sha256 !== now.sha256)
        fail(
          `${displayPath(now.path)}: the ${role} data changed since the run started (sha256 differs); resume needs the same data`,
        );
    };
    check(previous.data.train, data.trainInfo, 'training');
    check(previous.data.validation, data.validationInfo, 'validation');
    if (text) await checkRecordedVocabulary(runDir, text.vocabulary);
  }
  if (text) for (const skip of text.skipped) io.stderr(`inrun: ${skip.message}\n`);
  const model = text ? buildTextModel(config, text) : buildModel(config, table!);
  const optimizer = buildOptimizer(config);
  const { totalSteps, stageStarts } = runLength(config, data.train.size);
  const trainer = new Trainer({
    model,
    optimizer,
    data: data.train,
    batchSize: config.batchSize,
    steps: totalSteps,
    seed: runSeeds(config.seed).order,
    valuation: {
      validation: data.validation,
      order: config.order,
      perValidation: config.perValidation,
      stageStarts,
      recordBatchIds: config.recordBatchIds,
      gapSamples: config.gapSamples,
    },
  });
  if (resuming) {
    const initial = await readSafetensors(join(runDir, RUN_FILES.weightsInitial));
    loadModelTensors(model, initial.tensors, join(runDir, RUN_FILES.weightsInitial));
  } else if (config.initWeights !== undefined) {
    if (!existsSync(config.initWeights))
      fail(`${displayPath(config.initWeights)}: cannot read the initial weights (no such file)`);
    const init = await readSafetensors(config.initWeights);
    loadModelTensors(model, init.tensors, displayPath(config.initWeights));
  }
  const kernels =
    model.kernels.kind === 'native'
      ? `native (OpenBLAS, ${(model.kernels as NativeKernels).getThreads()} threads)`
      : 'portable (TypeScript)';

  const now = () => new Date().toISOString();
  let manifest: RunManifest;
  if (previous) {
    manifest = {
      ...previous,
      status: 'running',
      times: { ...previous.times, resumedAt: [...previous.times.resumedAt, now()] },
    };
    delete manifest.message;
    const checkpoint = (await hasCheckpoint(runDir)) ? await loadCheckpoint(runDir, model.dtype) : null;
    if (checkpoint) trainer.restore(checkpoint);
  } else {
    await prepareRunDir(runDir, args.force ?? false);
    await writeJsonFile(join(runDir, RUN_FILES.config), config);
    if (text) await writeJsonFile(join(runDir, RUN_FILES.vocabulary), text.vocabulary);
    await writeFileAtomic(
      join(runDir, RUN_FILES.weightsInitial),
      encodeSafetensors(modelTensors(model), { format: 'pt' }),
    );
    manifest = {
      format: 'inrun-run',
      formatVersion: 1,
      status: 'running',
      inrunVersion: packageVersion(),
      nodeVersion: process.version,
      kernels,
      seed: config.seed,
      config: config as unknown as Record<string, unknown>,
      data: data.manifestData,
      model: {
        parameters: model.parameterCount,
        tensors: model.slots.map((s) => ({ name: s.name, shape: s.shape })),
      },
      totalSteps,
      stageStarts,
      stepsDone: 0,
      times: { startedAt: now(), finishedAt: null, resumedAt: [], trainingSeconds: 0 },
    };
  }
  manifest.stepsDone = trainer.step;
  await writeJsonFile(join(runDir, RUN_FILES.manifest), manifest);

  const say = (line: string) => {
    if (mode === 'plain' || mode === 'bar') io.stdout(`${line}\n`);
  };
  const shownDir = displayPath(runDir);
  say(`kernels: ${kernels}`);
  say(data.summary);
  say(
    `model: ${config.model.kind}, ${model.parameterCount} parameters; ${totalSteps} steps, order-${config.order} values`,
  );
  if (resuming) say(`resuming ${shownDir} at step ${trainer.step}`);

  const progress = new Progress({
    mode,
    totalSteps,
    startStep: trainer.step,
    writeText: io.stderr,
    writeJson: io.stdout,
    stream: process.stderr,
  });
  progress.event(resuming ? 'resume' : 'start', {
    runDir,
    step: trainer.step,
    totalSteps,
    trainExamples: data.train.size,
    validationExamples: data.validation.size,
    parameters: model.parameterCount,
    kernels: model.kernels.kind,
  });

  // Signals: the first SIGINT/SIGTERM asks for a checkpoint and a clean stop after this step;
  // a second one gives the signal its default meaning.
  let stopSignal: NodeJS.Signals | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopSignal) {
      removeHandlers();
      process.kill(process.pid, signal);
      return;
    }
    stopSignal = signal;
  };
  const removeHandlers = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const sessionStart = performance.now();
  const baseSeconds = manifest.times.trainingSeconds;
  const writeManifest = async (status: RunManifest['status'], message?: string) => {
    manifest.status = status;
    manifest.stepsDone = trainer.step;
    manifest.times.trainingSeconds = baseSeconds + (performance.now() - sessionStart) / 1000;
    if (message !== undefined) manifest.message = message;
    if (status === 'complete') manifest.times.finishedAt = now();
    await writeJsonFile(join(runDir, RUN_FILES.manifest), manifest);
  };
  const checkpoint = async () => {
    await saveCheckpoint(runDir, trainer.checkpoint());
    await writeManifest('running');
    progress.event('checkpoint', { step: trainer.step });
  };

  progress.start();
  try {
    while (!trainer.done) {
      const report = trainer.runStep();
      const row = trainer.valuer?.trace.at(-1);
      progress.step({
        step: trainer.step,
        totalSteps,
        lr: report.lr,
        trainLoss: report.trainLoss,
        validationLoss: row?.validationLossBefore ?? null,
        efficiencyResidual: row?.efficiencyResidual ?? null,
      });
      if (config.checkpointEvery > 0 && trainer.step % config.checkpointEvery === 0 && !trainer.done)
        await checkpoint();
      // Let signals in: they are delivered only between turns of the event loop.
      await new Promise((r) => setImmediate(r));
      if (stopSignal && !trainer.done) {
        await saveCheckpoint(runDir, trainer.checkpoint());
        const message = `interrupted by ${stopSignal} after step ${trainer.step} of ${totalSteps}; checkpoint saved`;
        await writeManifest('interrupted', message);
        progress.stop();
        progress.event('interrupted', { signal: stopSignal, step: trainer.step, runDir });
        fail(`${message}; continue with: inrun train --resume ${shownDir}`);
      }
    }
  } catch (error) {
    progress.stop();
    if (error instanceof DivergenceError) {
      await writeManifest('failed', error.message);
    }
    throw error;
  } finally {
    removeHandlers();
  }
  progress.stop();

  const valuer = trainer.valuer!;
  const ledger = valuer.ledger;
  await writeFileAtomic(join(runDir, RUN_FILES.valuesCsv), valuesToCsv(ledger));
  await writeFileAtomic(join(runDir, RUN_FILES.valuesJsonl), valuesToJsonl(ledger));
  await writeFileAtomic(join(runDir, RUN_FILES.valuesParquet), valuesToParquet(ledger));
  if (config.perValidation) {
    const entries = ledger.all();
    const m = data.validation.size;
    const matrix = new Float64Array(entries.length * m);
    entries.forEach((e, i) => {
      if (e.perValidation) matrix.set(e.perValidation, i * m);
    });
    await writeFileAtomic(
      join(runDir, RUN_FILES.perValidation),
      encodeSafetensors([{ name: 'values', shape: [entries.length, m], data: matrix }], {
        train_ids: JSON.stringify(entries.map((e) => e.id)),
        validation_ids: JSON.stringify(data.validationIds),
      }),
    );
  }
  if (text) await textRunOutputs(runDir, ledger, text, config.order);
  await writeFileAtomic(join(runDir, RUN_FILES.traceCsv), traceToCsv(valuer.trace));
  await writeFileAtomic(join(runDir, RUN_FILES.traceJsonl), traceToJsonl(valuer.trace));
  await writeFileAtomic(
    join(runDir, RUN_FILES.weightsFinal),
    encodeSafetensors(modelTensors(model), { format: 'pt' }),
  );
  await writeManifest('complete');
  await removeCheckpoint(runDir);

  const trace = valuer.trace;
  let maxResidual = 0;
  for (const row of trace) maxResidual = Math.max(maxResidual, Math.abs(row.efficiencyResidual));
  const first = trace[0];
  const last = trace[trace.length - 1];
  const summary = {
    runDir,
    steps: totalSteps,
    examplesValued: ledger.size,
    initialValidationLoss: first.validationLossBefore,
    finalValidationLoss: last.validationLossAfter,
    maxEfficiencyResidual: maxResidual,
  };
  if (mode === 'json') {
    progress.event('done', summary);
    return;
  }
  io.stdout(
    `done: ${totalSteps} steps, validation loss ${first.validationLossBefore.toPrecision(4)} → ${last.validationLossAfter.toPrecision(4)}, ` +
      `max |efficiency residual| ${maxResidual.toExponential(1)}\n`,
  );
  io.stdout(
    `values: ${join(shownDir, RUN_FILES.valuesCsv)} (${ledger.size} examples; also .jsonl, .parquet)\n`,
  );
  io.stdout(`run: ${shownDir}\n`);
}

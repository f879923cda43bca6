// A training job into a run directory: the library call under `inrun train`, `inrun curate` and
// the demos. It loads and checks the data a config names, trains while valuing every example,
// checkpoints, resumes exactly, and writes the run directory (src/io/run-dir.ts). It prints
// nothing: progress, notices and warnings go to `onEvent`; an AbortSignal stops it cleanly after
// the current step with a checkpoint.

import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import {
  hasCheckpoint,
  loadCheckpoint,
  removeCheckpoint,
  removeTemporaryFiles,
  saveCheckpoint,
} from '../io/checkpoint.js';
import {
  type DataFileInfo,
  RUN_FILES,
  type RunManifest,
  readManifest,
  readTraceRows,
} from '../io/run-dir.js';
import { jsonFileText } from '../io/run-files.js';
import { encodeSafetensors, loadModelTensors, modelTensors, readSafetensors } from '../io/safetensors.js';
import { STEP_VALUES_SIDE_FILE, StepValuesLog, writeStepValuesParquet } from '../io/step-values.js';
import { TraceLog } from '../io/trace-log.js';
import { type RunTraceEntry, valuesToCsv, valuesToJsonl, valuesToParquet } from '../io/values-writers.js';
import type { FloatArray } from '../kernels/types.js';
import type { Sequential } from '../models/sequential.js';
import { perValidationMatrices, type ValueLedger } from '../shapley/ledger.js';
import type { TraceEntry } from '../shapley/valuer.js';
import type { ProgressStep } from '../train/progress.js';
import type { Trainer } from '../train/trainer.js';
import { DivergenceError, fail, InrunError } from '../util/errors.js';
import { failFileError, fileErrorCause, isFileSystemError } from '../util/fs-errors.js';
import { sha256Hex } from '../util/hash.js';
import { packageVersion } from '../util/version.js';
import { buildModel, buildTextModel, buildTrainer, runLength } from './build.js';
import { loadConfigFile, parseTrainConfig, type TrainConfig } from './config.js';
import { loadTrainingData, type RunInputs, tableInputs, textInputs } from './data.js';
import { RunDiagnostics, type RunWarning } from './diagnostics.js';
import { prepareNewRunDir } from './directory.js';
import { lockRunDir, type RunLock } from './lock.js';
import { describeKernels, newRunManifest } from './manifest.js';
import { checkRunFits } from './memory.js';
import { suspectsCsv } from './suspects.js';
import { isTestStep, TestEvaluator, type TestMetrics, testInterval } from './test-set.js';
import { loadTextTrainingData, type TextTrainingData } from './text-data.js';
import { checkRecordedVocabulary, textRunOutputs } from './text-outputs.js';

/** What a run reports while it goes. */
export type RunEvent =
  | {
      type: 'start';
      runDir: string;
      resumed: boolean;
      step: number;
      totalSteps: number;
      /** e.g. "native (OpenBLAS, 2 threads)". */
      kernels: string;
      /** One line about the data, one about the model. */
      dataSummary: string;
      modelSummary: string;
      parameters: number;
      trainExamples: number;
      validationExamples: number;
      /** Examples of the held-out test set; null without one. */
      testExamples: number | null;
    }
  | ({ type: 'step' } & ProgressStep)
  | { type: 'checkpoint'; step: number }
  /** Something is wrong with the run that makes its values doubtful; says what to change (src/run/diagnostics.ts). */
  | { type: 'warning'; warning: RunWarning }
  /** Something the user should know that changes nothing (a skipped document, a stale lock taken over). */
  | { type: 'notice'; message: string };

export interface TrainRunOptions {
  /** A new run with this config (see parseTrainConfig); its `out` is the run directory. */
  config?: TrainConfig;
  /** Or: continue the interrupted (or failed) run in this directory from its last checkpoint. */
  resume?: string;
  /** New runs: replace an existing run directory (only one inrun wrote, and only its files). */
  force?: boolean;
  onEvent?: (event: RunEvent) => void;
  /**
   * Called after every step with the weights after it (a view of the model's own: copy what you
   * keep) and the step's learning rate; `inrun evaluate` keeps a few for TracIn-CP.
   */
  onStepWeights?: (step: number, lr: number, params: FloatArray) => void;
  /** Aborting stops the run after the current step, with a checkpoint (status "interrupted"). */
  signal?: AbortSignal;
}

export interface RunSummary {
  /** Training examples (text: sequences) the run saw at least once, so valued; of `trainExamples`. */
  examplesValued: number;
  trainExamples: number;
  /**
   * Text runs: training documents with at least one sequence valued, of `trainDocuments` (the
   * documents that gave sequences; skipped ones are in the manifest's data.text.skipped).
   */
  documentsValued: number | null;
  trainDocuments: number | null;
  initialValidationLoss: number;
  finalValidationLoss: number;
  maxEfficiencyResidual: number;
  /** Steps whose Taylor expansion broke down (trace expansionBroken), and whether their values were left out. */
  brokenSteps: number;
  brokenStepsExcluded: boolean;
  /** Runs with a test set: its examples, and the mean test loss (and accuracy) at the final weights; else null. */
  testExamples: number | null;
  finalTestLoss: number | null;
  /** Null for regression and text runs too. */
  finalTestAccuracy: number | null;
}

export interface TrainRunResult {
  runDir: string;
  status: 'complete' | 'interrupted';
  stepsDone: number;
  totalSteps: number;
  manifest: RunManifest;
  /** Complete runs only. */
  summary: RunSummary | null;
  /** Interrupted runs: why and where it stopped. */
  message?: string;
}

/** The run's data, loaded and checked before anything is written. */
async function loadInputs(
  config: TrainConfig,
): Promise<{ inputs: RunInputs; text: TextTrainingData | null }> {
  if (config.model.kind === 'gpt') {
    const text = await loadTextTrainingData(config);
    return { inputs: textInputs(text), text };
  }
  return { inputs: tableInputs(await loadTrainingData(config)), text: null };
}

/** Dotted key paths where two JSON values differ (at most `limit`), with both values. */
function differences(before: unknown, after: unknown, path = '', out: string[] = [], limit = 3): string[] {
  if (out.length >= limit) return out;
  const isObject = (v: unknown) => v !== null && typeof v === 'object';
  if (isObject(before) && isObject(after) && Array.isArray(before) === Array.isArray(after)) {
    const keys = new Set([...Object.keys(before as object), ...Object.keys(after as object)]);
    for (const key of keys)
      differences(
        (before as Record<string, unknown>)[key],
        (after as Record<string, unknown>)[key],
        path === '' ? key : `${path}.${key}`,
        out,
        limit,
      );
    return out;
  }
  if (JSON.stringify(before) !== JSON.stringify(after))
    out.push(
      `${path || 'config'} ${JSON.stringify(before) ?? 'unset'} → ${JSON.stringify(after) ?? 'unset'}`,
    );
  return out;
}

/** The resumed run's config, checked against what its manifest recorded when it started. */
async function resumedConfig(dir: string, manifest: RunManifest): Promise<TrainConfig> {
  const configPath = join(dir, RUN_FILES.config);
  const raw = await loadConfigFile(configPath);
  const changed = differences(manifest.config, raw.value);
  if (changed.length > 0)
    fail(
      `${configPath}: the config was changed since the run started (${changed.join('; ')}); resume needs the run's own config — start a new run for new settings`,
    );
  // Paths in config.json are absolute, so the working directory does not matter.
  return parseTrainConfig(raw);
}

async function checkRecordedFile(dir: string, name: string, manifest: RunManifest): Promise<void> {
  const expected = manifest.checksums?.[name];
  if (expected === undefined) return;
  const path = join(dir, name);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    return failFileError(error, path, 'read');
  }
  if (sha256Hex(bytes) !== expected)
    fail(
      `${path}: changed since the run started (sha256 differs from manifest.json); resume needs the original`,
    );
}

function checkSameData(info: DataFileInfo | null, now: DataFileInfo | null, role: string): void {
  if (info && now && info.sha256 !== now.sha256)
    fail(
      `${now.path}: the ${role} data changed since the run started (sha256 differs); resume needs the same data`,
    );
}

/**
 * A run that stopped on an error after its directory was written: its manifest says `failed` with
 * this message. `resumable` runs continue with `trainRun({ resume })` from `checkpointStep` (or
 * from the start) once the cause is fixed; a run that failed while its directory was being set up
 * must start again.
 */
export class RunFailedError extends InrunError {
  constructor(
    /** What went wrong, in one line. */
    readonly reason: string,
    readonly checkpointStep: number | null,
    readonly resumable: boolean,
    /** Said in parentheses, e.g. that the manifest itself could not be updated. */
    note?: string,
  ) {
    const kept = !resumable
      ? 'the run directory was not fully set up: start the run again (--force replaces it)'
      : checkpointStep !== null
        ? `the checkpoint of step ${checkpointStep} is kept`
        : 'no checkpoint yet: a resume starts again from step 0';
    super(`${reason}; ${kept}${note ? ` (${note})` : ''}`);
  }
}

/** " by SIGINT" when the signal was aborted with a signal's name as its reason. */
export function abortReason(signal: AbortSignal | undefined): string {
  return typeof signal?.reason === 'string' ? ` by ${signal.reason}` : '';
}

function checkNotAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) fail(`interrupted${abortReason(signal)} before training started; ${what}`);
}

/**
 * Runs (or resumes) a training job into its run directory. Every input problem is reported (as an
 * InrunError) before anything is written; a failure during the run marks the run failed and keeps
 * its last checkpoint, so that `resume` continues from there.
 */
export async function trainRun(options: TrainRunOptions): Promise<TrainRunResult> {
  if ((options.config === undefined) === (options.resume === undefined))
    fail('trainRun: give exactly one of config (a new run) and resume (a run directory)');
  checkNotAborted(options.signal, 'nothing was written');
  const emit = options.onEvent ?? (() => {});
  const notice = (message: string) => emit({ type: 'notice', message });
  const resuming = options.resume !== undefined;

  let config: TrainConfig;
  let previous: RunManifest | null = null;
  let lock: RunLock | null = null;
  let runDir: string;
  if (resuming) {
    runDir = options.resume!;
    previous = await readManifest(runDir);
    lock = await lockRunDir(runDir, 'inrun train --resume', notice);
  } else {
    config = options.config!;
    runDir = config.out;
  }
  try {
    if (previous) {
      // Again under the lock: another resume may have finished the run in the meantime.
      previous = await readManifest(runDir);
      if (previous.status === 'complete') fail(`${runDir}: the run is already complete; nothing to resume`);
      if (previous.formatVersion === 1)
        fail(
          `${runDir}: the run was written by inrun 0.1 (run directory format 1), whose checkpoints this version cannot resume; start it again with its config: inrun train --config ${join(runDir, RUN_FILES.config)} --out <new folder>`,
        );
      // Without its initial weights and before any step, a run stopped while being set up.
      if (previous.stepsDone === 0 && !existsSync(join(runDir, RUN_FILES.weightsInitial)))
        fail(
          `${runDir}: the run stopped before its directory was set up (no ${RUN_FILES.weightsInitial}); start it again (--force replaces it)`,
        );
      config = await resumedConfig(runDir, previous);
    }
    const { inputs, text } = await loadInputs(config!);
    if (previous) {
      checkSameData(previous.data.train, inputs.trainInfo, 'training');
      checkSameData(previous.data.validation, inputs.validationInfo, 'validation');
      checkSameData(previous.data.test ?? null, inputs.testInfo, 'test');
      for (const name of [RUN_FILES.config, RUN_FILES.vocabulary, RUN_FILES.weightsInitial])
        await checkRecordedFile(runDir, name, previous);
      if (text) await checkRecordedVocabulary(runDir, text.vocabulary);
    }
    if (text) for (const skip of text.skipped) notice(skip.message);
    // Refuse, before allocating, a run that cannot fit in memory.
    checkRunFits(config!, {
      inputs: text ? 1 : inputs.features.length,
      outputs: text ? text.vocabulary.size : config!.task === 'classification' ? inputs.classes! : 1,
      image: inputs.image,
      trainExamples: inputs.train.size,
      validationExamples: inputs.validation.size,
      ...(text ? { validationColumns: text.validation.queries.length } : {}),
      ...(inputs.test ? { testExamples: inputs.test.size } : {}),
    });
    // Warnings are given once per run: a resumed run knows those it gave before.
    const diagnostics = RunDiagnostics.fromConfig(config!, { previous: previous?.warnings });
    const warn = (found: RunWarning[]) => {
      for (const warning of found) emit({ type: 'warning', warning });
    };
    // The model, the optimizer and the initial weights are checked before anything is written too.
    const training = await buildTraining(config!, inputs, text, (row) => warn(diagnostics.checkRow(row)));
    warn(diagnostics.checkData(inputs));
    checkNotAborted(options.signal, previous ? 'nothing was changed' : 'nothing was written');
    if (!lock) {
      const inputsOnDisk = [
        config!.data.train,
        config!.data.validation,
        config!.data.test,
        config!.initWeights,
      ].filter((p): p is string => p !== undefined);
      lock = await prepareNewRunDir(runDir, { force: options.force ?? false, inputs: inputsOnDisk, notice });
    }
    // What a process killed mid-write left behind (temporary files, half-written checkpoints).
    if (previous) await removeTemporaryFiles(runDir);
    return await runInDirectory({
      ...training,
      diagnostics,
      warn,
      config: config!,
      runDir,
      inputs,
      text,
      previous,
      emit,
      signal: options.signal,
      onStepWeights: options.onStepWeights,
    });
  } finally {
    await lock?.release();
  }
}

interface Training {
  model: Sequential;
  trainer: Trainer;
  totalSteps: number;
  stageStarts: number[];
  /** Where the valuer's trace rows go: set once the run directory is ready. */
  traceRows: { log: TraceLog | null };
  /** Runs with a test set: the latest test evaluation (the last step's once the run is done). */
  test: { last: TestMetrics | null } | null;
}

async function buildTraining(
  config: TrainConfig,
  inputs: RunInputs,
  text: TextTrainingData | null,
  /** Called with every completed trace row, after it went to the trace files. */
  onRow: (row: RunTraceEntry) => void,
): Promise<Training> {
  const model = text ? buildTextModel(config, text) : buildModel(config, inputs);
  const { totalSteps, stageStarts } = runLength(config, inputs.train.size);
  const traceRows: Training['traceRows'] = { log: null };
  const test: Training['test'] = inputs.test ? { last: null } : null;
  const withTest = testRows(config, inputs, model, totalSteps, test, text?.test?.weights ?? null);
  const trainer = buildTrainer(
    config,
    inputs,
    model,
    { totalSteps, stageStarts },
    // Rows go to the trace files as the run goes, so memory and checkpoints stay constant in size.
    (row) => {
      const full = withTest(row);
      traceRows.log!.append(full);
      onRow(full);
    },
    {
      // Text: the validation loss is the mean over validation tokens, and per-validation values
      // are per query document (its sequences' columns summed).
      validationWeights: text?.validation.weights,
      validationColumns: text && config.perValidation ? text.validation.columns : undefined,
      perValidationOrder: config.perValidation ? perValidationOrder(config, text) : undefined,
    },
  );
  if (config.initWeights !== undefined) {
    const init = await readSafetensors(config.initWeights);
    loadModelTensors(model, init.tensors, config.initWeights);
  }
  return { model, trainer, totalSteps, stageStarts, traceRows, test };
}

/**
 * Adds the test evaluation to a completed trace row (runs with a test set; others pass rows on
 * unchanged). The valuer completes step t's row once the weights are w_{t+1} — while valuing step
 * t + 1, before its update, or in finish() at the final weights — so `model.params` are the
 * weights after step t here, on a first run and after a resume alike. Rows of steps not due get
 * nulls, so every row of the run has the same fields.
 */
function testRows(
  config: TrainConfig,
  inputs: RunInputs,
  model: Sequential,
  totalSteps: number,
  test: Training['test'],
  /** Text runs: each test sequence's scored tokens, so the test loss is the mean over tokens. */
  weights: Float64Array | null,
): (row: TraceEntry) => RunTraceEntry {
  if (!inputs.test || !test) return (row) => row;
  const every = testInterval(config, totalSteps);
  const task = config.model.kind === 'gpt' || config.task === 'regression' ? null : config.task;
  // At most as many examples at once as the larger of the validation pass and a training batch.
  const chunk = Math.max(1, Math.min(inputs.test.size, Math.max(inputs.validation.size, config.batchSize)));
  const evaluator = new TestEvaluator(model, inputs.test, task, chunk, weights);
  return (row) => {
    if (!isTestStep(row.step, every, totalSteps)) return { ...row, testLoss: null, testAccuracy: null };
    const metrics = evaluator.evaluate();
    test.last = metrics;
    return { ...row, testLoss: metrics.loss, testAccuracy: metrics.accuracy };
  };
}

interface RunContext extends Training {
  diagnostics: RunDiagnostics;
  warn: (found: RunWarning[]) => void;
  config: TrainConfig;
  runDir: string;
  inputs: RunInputs;
  text: TextTrainingData | null;
  previous: RunManifest | null;
  emit: (event: RunEvent) => void;
  signal: AbortSignal | undefined;
  onStepWeights: TrainRunOptions['onStepWeights'];
}

async function runInDirectory(context: RunContext): Promise<TrainRunResult> {
  const { config, runDir, inputs, text, previous, emit, signal } = context;
  const { model, trainer, totalSteps, stageStarts, diagnostics, warn } = context;
  const kernels = describeKernels(model.kernels);
  const path = (name: string) => join(runDir, name);
  const now = () => new Date().toISOString();
  const traceOptions = { batchIds: config.recordBatchIds, test: inputs.test !== null };
  let traceLog: TraceLog | undefined;
  // With stepValues: every step's values per example, appended as the run goes (src/io/step-values.ts).
  let stepLog: StepValuesLog | undefined;

  // Set in both branches below (a new run's, or the resumed run's own).
  let manifest!: RunManifest;
  // The manifest is rewritten at every checkpoint and at the end; each write is atomic.
  const writeManifest = async () => {
    manifest.stepsDone = trainer.step;
    const warnings = diagnostics.warnings;
    if (warnings.length > 0) manifest.warnings = warnings;
    await writeFileAtomic(path(RUN_FILES.manifest), jsonFileText(manifest)).catch((error) =>
      failFileError(error, path(RUN_FILES.manifest), 'write'),
    );
  };
  const writeRunFile = async (name: string, data: string | Uint8Array) => {
    await writeFileAtomic(path(name), data).catch((error) => failFileError(error, path(name), 'write'));
    if (manifest && !manifest.files!.includes(name)) manifest.files!.push(name);
  };

  if (previous) {
    // Byte-identical resumes need the kernels the run started with (their sums round differently).
    const kindOf = (text: string) =>
      text.startsWith('native') ? 'native' : text.startsWith('wasm') ? 'wasm' : 'portable';
    if (kindOf(previous.kernels) !== kindOf(kernels))
      emit({
        type: 'notice',
        message: `the run started on ${kindOf(previous.kernels)} kernels and continues on ${kindOf(kernels)} ones: its values will differ from an uninterrupted run's in the last digits (resume with INRUN_KERNELS=${kindOf(previous.kernels)} to avoid it)`,
      });
    const initialPath = path(RUN_FILES.weightsInitial);
    loadModelTensors(model, (await readSafetensors(initialPath)).tensors, initialPath);
    manifest = {
      ...previous,
      status: 'running',
      times: { ...previous.times, resumedAt: [...previous.times.resumedAt, now()] },
    };
    delete manifest.message;
    const saved = (await hasCheckpoint(runDir)) ? await loadCheckpoint(runDir, model.dtype) : null;
    if (saved) {
      if (!saved.traceLog)
        fail(`${path(RUN_FILES.checkpoint)}: saved without the trace position; start the run again`);
      traceLog = await TraceLog.resume(runDir, saved.traceLog, traceOptions);
      if (config.stepValues) {
        const { stepValuesBytes: bytes, stepValuesSha256: sha256 } = saved.traceLog;
        try {
          if (bytes === undefined || sha256 === undefined)
            fail(
              `${path(RUN_FILES.checkpoint)}: saved without the position of ${STEP_VALUES_SIDE_FILE} (the step values); start the run again`,
            );
          stepLog = StepValuesLog.resume(runDir, { bytes, sha256 }, saved.step);
        } catch (error) {
          await traceLog.close().catch(() => {});
          throw error;
        }
      }
      trainer.restore(saved);
      // The checks over a window of steps continue where they were: replay the rows kept.
      for await (const row of readTraceRows(path(RUN_FILES.traceJsonl))) warn(diagnostics.checkRow(row));
    } else {
      // Drops rows of a run killed before its first checkpoint.
      traceLog = await TraceLog.create(runDir, traceOptions);
      if (config.stepValues) stepLog = StepValuesLog.create(runDir);
    }
    context.traceRows.log = traceLog;
  }
  let configText = '';
  let initialWeights: Uint8Array = new Uint8Array(0);
  let vocabularyText: string | null = null;
  if (!previous) {
    configText = jsonFileText(config);
    initialWeights = encodeSafetensors(modelTensors(model), { format: 'pt' });
    vocabularyText = text ? jsonFileText(text.vocabulary) : null;
    manifest = newRunManifest({
      config,
      inputs,
      model,
      kernels,
      totalSteps,
      stageStarts,
      // Every file the set-up writes is listed before it is written, so --force can replace a run
      // that stopped half-way through it.
      files: [
        RUN_FILES.manifest,
        RUN_FILES.config,
        ...(vocabularyText ? [RUN_FILES.vocabulary] : []),
        RUN_FILES.weightsInitial,
        RUN_FILES.traceCsv,
        RUN_FILES.traceJsonl,
        ...(config.stepValues ? [STEP_VALUES_SIDE_FILE] : []),
      ],
      checksums: {
        [RUN_FILES.config]: sha256Hex(configText),
        [RUN_FILES.weightsInitial]: sha256Hex(initialWeights),
        ...(vocabularyText ? { [RUN_FILES.vocabulary]: sha256Hex(vocabularyText) } : {}),
      },
      inrunVersion: packageVersion(),
      runtime: process.version,
      startedAt: now(),
    });
  }

  const resumeStart = performance.now();
  const baseSeconds = manifest.times.trainingSeconds;
  const setStatus = (status: RunManifest['status'], message?: string) => {
    manifest.status = status;
    manifest.times.trainingSeconds = baseSeconds + (performance.now() - resumeStart) / 1000;
    if (message === undefined) delete manifest.message;
    else manifest.message = message;
    if (status === 'complete') manifest.times.finishedAt = now();
  };
  let checkpointStep: number | null = previous && trainer.step > 0 ? trainer.step : null;
  let setUp = previous !== null;
  const checkpoint = async () => {
    // The trainer's state first: with excludeBrokenSteps it completes the last trace row, which
    // then goes to the trace files before their position is taken.
    const state = trainer.checkpoint();
    const position = await traceLog!.flush();
    if (stepLog) {
      const side = stepLog.flush();
      position.stepValuesBytes = side.bytes;
      position.stepValuesSha256 = side.sha256;
    }
    await saveCheckpoint(runDir, state, position).catch((error) =>
      failFileError(error, path(RUN_FILES.checkpoint), 'save the checkpoint'),
    );
    checkpointStep = trainer.step;
    if (!manifest.files!.includes(RUN_FILES.checkpoint)) manifest.files!.push(RUN_FILES.checkpoint);
    setStatus('running');
    await writeManifest();
    emit({ type: 'checkpoint', step: trainer.step });
  };

  try {
    if (!previous) {
      // The manifest goes first: from here on the folder is a run directory --force may replace.
      await writeManifest();
      await writeRunFile(RUN_FILES.config, configText);
      if (vocabularyText) await writeRunFile(RUN_FILES.vocabulary, vocabularyText);
      await writeRunFile(RUN_FILES.weightsInitial, initialWeights);
      traceLog = await TraceLog.create(runDir, traceOptions);
      context.traceRows.log = traceLog;
      if (config.stepValues) stepLog = StepValuesLog.create(runDir);
      setUp = true;
    }
    setStatus('running');
    await writeManifest();
    emit({
      type: 'start',
      runDir,
      resumed: previous !== null,
      step: trainer.step,
      totalSteps,
      kernels,
      dataSummary: inputs.summary,
      modelSummary: `model: ${config.model.kind}, ${model.parameterCount} parameters; ${totalSteps} steps, order-${config.order} values`,
      parameters: model.parameterCount,
      trainExamples: inputs.train.size,
      validationExamples: inputs.validation.size,
      testExamples: inputs.test?.size ?? null,
    });
    while (!trainer.done) {
      const report = trainer.runStep();
      if (stepLog) {
        if (!report.values) throw new Error(`step ${report.step} was not valued`);
        stepLog.append({
          step: report.step,
          ids: report.ids,
          firstOrder: report.values.firstOrder,
          secondOrder: report.values.secondOrder,
          plan: report.plan!,
        });
      }
      context.onStepWeights?.(trainer.step, report.lr, trainer.model.params);
      const row = trainer.valuer?.trace.at(-1);
      emit({
        type: 'step',
        step: trainer.step,
        totalSteps,
        lr: report.lr,
        trainLoss: report.trainLoss,
        validationLoss: row?.validationLossBefore ?? null,
        efficiencyResidual: row?.efficiencyResidual ?? null,
      });
      if (config.checkpointEvery > 0 && trainer.step % config.checkpointEvery === 0 && !trainer.done)
        await checkpoint();
      // Let aborts in: signal handlers run only between turns of the event loop.
      await new Promise((r) => setImmediate(r));
      if (signal?.aborted && !trainer.done) {
        if (config.momentumCredit)
          fail(
            `interrupted${abortReason(signal)} after step ${trainer.step} of ${totalSteps}; momentum credit keeps the last steps' batches and weights in memory, which a checkpoint cannot hold, so this run cannot resume: start it again`,
          );
        if (checkpointStep !== trainer.step) await checkpoint();
        const message = `interrupted${abortReason(signal)} after step ${trainer.step} of ${totalSteps}; checkpoint saved`;
        setStatus('interrupted', message);
        await writeManifest();
        await traceLog!.close();
        stepLog?.close();
        return {
          runDir,
          status: 'interrupted',
          stepsDone: trainer.step,
          totalSteps,
          manifest,
          summary: null,
          message,
        };
      }
    }

    const valuer = trainer.valuer!;
    const ledger = valuer.ledger;
    await writeRunFile(RUN_FILES.valuesCsv, valuesToCsv(ledger));
    await writeRunFile(RUN_FILES.valuesJsonl, valuesToJsonl(ledger));
    await writeRunFile(RUN_FILES.valuesParquet, valuesToParquet(ledger));
    if (config.perValidation)
      await writeRunFile(
        RUN_FILES.perValidation,
        text
          ? perValidationFile(
              ledger,
              text.validation.queries.map((q) => q.documentId),
              text.validation.queries.map((q) => q.tokens),
            )
          : perValidationFile(
              ledger,
              inputs.validationIds,
              inputs.validationIds.map(() => 1),
            ),
      );
    if (!text && config.task !== 'regression')
      await writeRunFile(
        RUN_FILES.suspects,
        suspectsCsv({
          model,
          params: model.params,
          train: inputs.train,
          ledger,
          classNames: inputs.classNames,
        }),
      );
    if (text) {
      await textRunOutputs(runDir, ledger, text, config.order).catch((error) =>
        failFileError(error, runDir, 'write the document and source values'),
      );
      for (const name of [
        RUN_FILES.documents,
        RUN_FILES.sources,
        ...(config.perValidation ? [RUN_FILES.attribution] : []),
      ])
        if (!manifest.files!.includes(name)) manifest.files!.push(name);
    }
    await traceLog!.close();
    if (stepLog) {
      stepLog.close();
      // Listed first, as the set-up's files are: the parquet's temporary name is cleanup's anyway.
      if (!manifest.files!.includes(RUN_FILES.stepValues)) manifest.files!.push(RUN_FILES.stepValues);
      await writeStepValuesParquet(path(STEP_VALUES_SIDE_FILE), path(RUN_FILES.stepValues));
    }
    await writeRunFile(RUN_FILES.weightsFinal, encodeSafetensors(modelTensors(model), { format: 'pt' }));
    setStatus('complete');
    // The side file goes once the manifest says complete; until then a resume needs it.
    manifest.files = manifest.files!.filter(
      (name) => name !== RUN_FILES.checkpoint && name !== STEP_VALUES_SIDE_FILE,
    );
    await writeManifest();
    await removeCheckpoint(runDir).catch(() => {});
    if (stepLog) await rm(path(STEP_VALUES_SIDE_FILE), { force: true }).catch(() => {});
    await removeTemporaryFiles(runDir).catch(() => {});

    const stats = traceLog!.summary;
    return {
      runDir,
      status: 'complete',
      stepsDone: trainer.step,
      totalSteps,
      manifest,
      summary: {
        examplesValued: ledger.size,
        trainExamples: inputs.train.size,
        ...documentCoverage(ledger, text),
        initialValidationLoss: stats.initialValidationLoss!,
        finalValidationLoss: stats.finalValidationLoss ?? Number.NaN,
        maxEfficiencyResidual: stats.maxAbsEfficiencyResidual,
        brokenSteps: stats.brokenSteps,
        brokenStepsExcluded: config.excludeBrokenSteps,
        testExamples: inputs.test?.size ?? null,
        finalTestLoss: context.test?.last?.loss ?? null,
        finalTestAccuracy: context.test?.last?.accuracy ?? null,
      },
    };
  } catch (error) {
    await traceLog?.close().catch(() => {});
    try {
      stepLog?.close();
    } catch {
      // The error being handled is the one to report.
    }
    if (error instanceof DivergenceError) {
      // Resuming would diverge again: the message is the advice (a lower learning rate).
      setStatus('failed', error.message);
      await writeManifest().catch(() => {});
      throw error;
    }
    const reason =
      error instanceof InrunError
        ? error.message
        : isFileSystemError(error)
          ? `${(error as NodeJS.ErrnoException).path ?? runDir}: ${fileErrorCause(error)}`
          : null;
    // A bug stays a bug (its stack is printed), but the run is still marked failed.
    const failure = new RunFailedError(
      reason ?? `internal error: ${error instanceof Error ? error.message : String(error)}`,
      checkpointStep,
      setUp,
    );
    setStatus('failed', failure.message);
    try {
      await writeManifest();
    } catch (manifestError) {
      // A full disk may refuse the manifest too; the checkpoint is still intact.
      if (reason === null) throw error;
      throw new RunFailedError(
        reason,
        checkpointStep,
        setUp,
        `and ${(manifestError as Error).message}: the manifest still says running`,
      );
    }
    if (reason === null) throw error;
    throw failure;
  }
}

/** How many training documents of a text run had at least one sequence valued. */
function documentCoverage(
  ledger: { all(): { id: string | number }[] },
  text: TextTrainingData | null,
): { documentsValued: number | null; trainDocuments: number | null } {
  if (!text) return { documentsValued: null, trainDocuments: null };
  const documentOf = new Map(text.train.sequences.map((s) => [s.id, s.documentId]));
  const valued = new Set<string>();
  for (const entry of ledger.all()) {
    const document = documentOf.get(String(entry.id));
    if (document !== undefined) valued.add(document);
  }
  // Documents that gave no sequence (empty, too short) are reported as skipped, not as uncovered.
  const withSequences = new Set(documentOf.values()).size;
  return { documentsValued: valued.size, trainDocuments: withSequences };
}

/**
 * The order of per-validation values: the config's `perValidationOrder`, else the run's order for
 * text runs (a few query documents, one HVP each per step) and first order for tables (one
 * column per validation example, where an HVP each would multiply the step's cost).
 */
export function perValidationOrder(config: TrainConfig, text: TextTrainingData | null): 1 | 2 {
  return config.perValidationOrder ?? (text ? config.order : 1);
}

/**
 * per_validation.safetensors: [train examples, columns] tensors `values` (first order),
 * `normalized`, `second_order` (when kept) and, with several stages, `stages` [train, columns,
 * stages]; rows in values order. Columns are validation examples, or query documents in text runs.
 * Metadata `column_weights`: each column's share of the validation loss (text: its scored tokens
 * over all), so a column divided by its share is the value for that column's own mean loss.
 */
function perValidationFile(ledger: ValueLedger, columnIds: string[], columnWeights: number[]): Uint8Array {
  const entries = ledger.all();
  const n = entries.length;
  const q = columnIds.length;
  const stages = ledger.stageCount;
  const matrices = perValidationMatrices(entries, q, stages);
  return encodeSafetensors(
    [
      { name: 'values', shape: [n, q], data: matrices.firstOrder },
      { name: 'normalized', shape: [n, q], data: matrices.normalized },
      ...(matrices.secondOrder ? [{ name: 'second_order', shape: [n, q], data: matrices.secondOrder }] : []),
      ...(matrices.stages ? [{ name: 'stages', shape: [n, q, stages], data: matrices.stages }] : []),
    ],
    {
      train_ids: JSON.stringify(entries.map((e) => e.id)),
      validation_ids: JSON.stringify(columnIds),
      column_weights: JSON.stringify(columnWeights.map((w) => w / columnWeights.reduce((a, b) => a + b, 0))),
    },
  );
}

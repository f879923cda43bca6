// A run held in memory and handed out as a run archive: the same config schema, data checks, model,
// trainer and output files as trainRun (src/run/train-run.ts), with no file system. The web page's
// worker runs it a step at a time between messages; Node runs the same code to check the page.
// No Node imports.
import { tableFormat, tableFromBytes } from '../data/readers/table-bytes.js';
import { zipRunFiles } from '../io/run-archive.js';
import type { RunManifest, RunWarning } from '../io/run-dir.js';
import { jsonFileText, RUN_FILES } from '../io/run-files.js';
import { encodeSafetensors, modelTensors } from '../io/safetensors-format.js';
import {
  type RunTraceEntry,
  traceToCsv,
  traceToJsonl,
  valuesToCsv,
  valuesToJsonl,
  valuesToParquet,
} from '../io/values-writers.js';
import type { Kernels } from '../kernels/types.js';
import type { Sequential } from '../models/sequential.js';
import type { ValueLedger } from '../shapley/ledger.js';
import type { StepReport, Trainer } from '../train/trainer.js';
import { fail } from '../util/errors.js';
import { sha256Hex } from '../util/sha256.js';
import { buildModel, buildTrainer, runLength } from './build.js';
import { fillDependentDefaults, type TrainConfig, TrainConfigSchema } from './config-schema.js';
import { RunDiagnostics } from './diagnostics.js';
import { describeKernels, newRunManifest } from './manifest.js';
import { suspectsCsv } from './suspects.js';
import { loadTrainingDataFrom, type RunInputs, type TrainingData, tableInputs } from './table-data.js';

/** A data file given to a run in memory. */
export interface DataFile {
  /** How messages name it: the file's own name, as its user knows it. */
  name: string;
  bytes: Uint8Array;
}

export interface ArchiveRunOptions {
  /**
   * The run's config, as for `inrun train` (defaults are filled in). Its data paths are keys of
   * `files`, relative to the run (data/<file>), so the archive's config.json finds them inside it.
   */
  config: Record<string, unknown>;
  /** The data files by the path the config names them with. */
  files: Record<string, DataFile>;
  /** The kernels to compute with (a browser has no native ones to choose). */
  kernels: Kernels;
  /** The inrun version for the manifest. */
  inrunVersion: string;
  /** The runtime for the manifest (its `nodeVersion`): e.g. "browser: Mozilla/5.0 …". */
  runtime: string;
  /** Each trace row as it completes (a step's row completes once the next step has run). */
  onTraceRow?: (row: RunTraceEntry) => void;
  /** Warnings about the run's values, each at most once (src/run/diagnostics.ts). */
  onWarning?: (warning: RunWarning) => void;
  /** The clock for the manifest's times (default: the real one). */
  now?: () => Date;
}

/** Config fields a run in memory cannot honour: they need files on disk or a test set. */
const UNSUPPORTED = [
  ['initWeights', 'initial weights from a file'],
  ['stepValues', 'per-step values (step-values.parquet)'],
] as const;

/**
 * A tabular run (logreg, mlp or cnn on a table) in memory. `ArchiveRun.start` checks everything
 * and builds the model; `step` trains one step; once `done`, `files` holds the run directory's files
 * and `archive` them zipped, which `inrun report run.zip` reads like the run directory.
 */
export class ArchiveRun {
  readonly trace: RunTraceEntry[] = [];
  /** Seconds spent inside `step` (pauses between steps do not count). */
  trainingSeconds = 0;
  private readonly diagnostics: RunDiagnostics;
  private finished: Record<string, string | Uint8Array> | null = null;

  private constructor(
    readonly config: TrainConfig,
    /** The tables and datasets as loaded (rows kept, e.g. to show an example's cells). */
    readonly data: TrainingData,
    readonly inputs: RunInputs,
    readonly model: Sequential,
    readonly trainer: Trainer,
    readonly manifest: RunManifest,
    private readonly setUpFiles: Record<string, string | Uint8Array>,
    private readonly options: ArchiveRunOptions,
    diagnostics: RunDiagnostics,
  ) {
    this.diagnostics = diagnostics;
  }

  /** Checks the config and the data, builds the model and the trainer; nothing has trained yet. */
  static async start(options: ArchiveRunOptions): Promise<ArchiveRun> {
    const config = archiveRunConfig(options.config);
    const read = async (path: string) => {
      const file = options.files[path];
      if (!file)
        fail(
          `data file ${JSON.stringify(path)} of the config is not among the run's files (${Object.keys(options.files).join(', ') || 'none'})`,
        );
      return tableFromBytes(file.name, tableFormat(file.name), file.bytes, sha256Hex);
    };
    const data = await loadTrainingDataFrom(config, read);
    const inputs = tableInputs(data);
    const model = buildModel(config, inputs, options.kernels);
    const length = runLength(config, inputs.train.size);
    const diagnostics = RunDiagnostics.fromConfig(config);
    let run: ArchiveRun | undefined;
    const trainer = buildTrainer(config, inputs, model, length, (row) => run!.traceRow(row));
    const configText = jsonFileText(config);
    const initialWeights = encodeSafetensors(modelTensors(model), { format: 'pt' });
    const now = options.now ?? (() => new Date());
    const manifest = newRunManifest({
      config,
      inputs,
      model,
      kernels: describeKernels(model.kernels),
      ...length,
      files: archiveFileNames(config),
      checksums: {
        [RUN_FILES.config]: sha256Hex(configText),
        [RUN_FILES.weightsInitial]: sha256Hex(initialWeights),
      },
      inrunVersion: options.inrunVersion,
      runtime: options.runtime,
      startedAt: now().toISOString(),
    });
    // The data files go into the archive as given, where config.json names them.
    const dataFiles = Object.fromEntries(Object.entries(options.files).map(([path, f]) => [path, f.bytes]));
    const setUpFiles = {
      [RUN_FILES.config]: configText,
      [RUN_FILES.weightsInitial]: initialWeights,
      ...dataFiles,
    };
    run = new ArchiveRun(config, data, inputs, model, trainer, manifest, setUpFiles, options, diagnostics);
    run.warn(diagnostics.checkData(inputs));
    return run;
  }

  get done(): boolean {
    return this.trainer.done;
  }

  get totalSteps(): number {
    return this.trainer.totalSteps;
  }

  get ledger(): ValueLedger {
    return this.trainer.valuer!.ledger;
  }

  /** Warnings so far. */
  get warnings(): RunWarning[] {
    return this.diagnostics.warnings;
  }

  /** Trains and values one step; throws DivergenceError on a non-finite loss, like trainRun. */
  step(): StepReport {
    const start = performance.now();
    try {
      return this.trainer.runStep();
    } finally {
      this.trainingSeconds += (performance.now() - start) / 1000;
    }
  }

  private traceRow(row: RunTraceEntry): void {
    this.trace.push(row);
    this.warn(this.diagnostics.checkRow(row));
    this.options.onTraceRow?.(row);
  }

  private warn(found: RunWarning[]): void {
    for (const warning of found) this.options.onWarning?.(warning);
  }

  /**
   * The run directory's files of the finished run, by name (data files under data/): what
   * trainRun writes, formatted by the same functions, with this run's manifest.
   */
  files(): Record<string, string | Uint8Array> {
    if (!this.done)
      fail(`the run has done ${this.trainer.step} of ${this.totalSteps} steps; it is not finished`);
    if (this.finished) return this.finished;
    const { config, inputs, model, ledger, manifest } = this;
    const out: Record<string, string | Uint8Array> = {
      [RUN_FILES.valuesCsv]: valuesToCsv(ledger),
      [RUN_FILES.valuesJsonl]: valuesToJsonl(ledger),
      [RUN_FILES.valuesParquet]: valuesToParquet(ledger),
      [RUN_FILES.traceCsv]: traceToCsv(this.trace),
      [RUN_FILES.traceJsonl]: traceToJsonl(this.trace),
    };
    if (config.task !== 'regression')
      out[RUN_FILES.suspects] = suspectsCsv({
        model,
        params: model.params,
        train: inputs.train,
        ledger,
        classNames: inputs.classNames,
      });
    out[RUN_FILES.weightsFinal] = encodeSafetensors(modelTensors(model), { format: 'pt' });
    const now = this.options.now ?? (() => new Date());
    const complete: RunManifest = {
      ...manifest,
      status: 'complete',
      stepsDone: this.trainer.step,
      ...(this.warnings.length > 0 ? { warnings: this.warnings } : {}),
      times: { ...manifest.times, finishedAt: now().toISOString(), trainingSeconds: this.trainingSeconds },
    };
    // The manifest first, as in a run directory, which is a run directory from its manifest on.
    this.finished = { [RUN_FILES.manifest]: jsonFileText(complete), ...this.setUpFiles, ...out };
    return this.finished;
  }

  /** The finished run as a zip of its files. */
  archive(): Uint8Array {
    return zipRunFiles(this.files());
  }
}

/** The files of the run (not the data), for the manifest's list. */
function archiveFileNames(config: TrainConfig): string[] {
  return [
    RUN_FILES.manifest,
    RUN_FILES.config,
    RUN_FILES.weightsInitial,
    RUN_FILES.traceCsv,
    RUN_FILES.traceJsonl,
    RUN_FILES.valuesCsv,
    RUN_FILES.valuesJsonl,
    RUN_FILES.valuesParquet,
    ...(config.task !== 'regression' ? [RUN_FILES.suspects] : []),
    RUN_FILES.weightsFinal,
  ];
}

/** The config with its defaults, checked; a problem names the field. */
export function archiveRunConfig(value: Record<string, unknown>): TrainConfig {
  const result = TrainConfigSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue.path.length > 0 ? issue.path.join('.') : 'config';
    fail(`${where}: ${issue.message}`);
  }
  const config = fillDependentDefaults(result.data);
  if (config.model.kind === 'gpt') fail('model.kind gpt trains on text; a run in memory reads tables');
  if (config.data.test !== undefined || config.data.testSplit !== undefined)
    fail('data.test and data.testSplit: a run in memory has no test set');
  if (config.perValidation) fail('perValidation: a run in memory writes no per-validation values');
  for (const [field, what] of UNSUPPORTED)
    if (config[field]) fail(`${field}: a run in memory cannot use ${what}`);
  return config;
}

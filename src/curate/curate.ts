// Curation by data value: drop the examples a rule selects, retrain with the run's own settings and
// seed (through `inrun train` itself), retrain again with as many examples removed at random, and
// compare the runs on the original's held-out test set (the same rows for all three), with the
// validation-loss curves as secondary information: the values were computed to lower exactly that
// loss, so judging on it alone is circular. Runs without a test set are compared on validation
// loss, and the comparison says so.
import { existsSync, statSync } from 'node:fs';
import { copyFile, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve, sep } from 'node:path';
import { readTable, tableIds, writeRowsLike } from '../data/readers/index.js';
import { displayPath } from '../data/readers/table.js';
import { writeFileAtomic } from '../io/atomic.js';
import { type LoadedRun, loadRun, type ValueRow, writeJsonFile } from '../io/run-dir.js';
import { stepsToReach, stepsToReachAt, testCurve, validationLossCurve } from '../report/analysis.js';
import { VALIDATION_JUDGED_NOTICE } from '../report/render.js';
import type { CurationComparison, CurationRun, CurationTestRun } from '../report/types.js';
import { COMPARISON_FILE, CURATION_DIR, writeRunReport } from '../report/write.js';
import { loadConfigFile, parseTrainConfig, type TrainConfig } from '../run/config.js';
import { loadTrainingData } from '../run/data.js';
import { isTemporaryName } from '../run/directory.js';
import { LOCK_FILE, LOCK_TAKEOVER_FILE, lockRunDir, type RunLock } from '../run/lock.js';
import { loadTextTrainingData } from '../run/text-data.js';
import { abortReason, RunFailedError, trainRun } from '../run/train-run.js';
import { fail, InrunError } from '../util/errors.js';
import { errorCode, failFileError, isFileSystemError } from '../util/fs-errors.js';
import { describeRule, randomSelection, rowValue, type SelectionRule, selectForRemoval } from './select.js';

export interface CurateOptions {
  /** A finished run directory of `inrun train`. */
  runDir: string;
  rule: SelectionRule;
  /** Output folder (default <runDir>/curation). */
  out?: string;
  /** Replace an existing output folder of an earlier `inrun curate`. */
  force?: boolean;
  /** Seed of the random removal (default: the run's seed). */
  randomSeed?: number;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Things the user should know that change nothing (an interrupted curation redone); default: log. */
  notice?: (message: string) => void;
  /** Aborting stops the retraining after its current step; the curation folder is removed. */
  signal?: AbortSignal;
}

export interface CurateResult {
  out: string;
  comparison: CurationComparison;
  comparisonPath: string;
  reportPath: string;
}

/** Files of the curation folder. */
export const CURATION_FILES = {
  comparison: COMPARISON_FILE,
  report: 'report.html',
  removed: 'removed.jsonl',
  randomRemoved: 'random-removed.jsonl',
  curatedConfig: 'curated.config.json',
  randomConfig: 'random.config.json',
  curatedRun: 'curated',
  randomRun: 'random',
} as const;

/** Names `inrun curate` writes into its folder (a curated/random training file may be a folder). */
function isCurationName(name: string): boolean {
  return (
    (Object.values(CURATION_FILES) as string[]).includes(name) ||
    /^(train\.(curated|random)|validation|test)(\..+)?$/.test(name) ||
    name === LOCK_FILE ||
    name === LOCK_TAKEOVER_FILE ||
    isTemporaryName(name)
  );
}

/**
 * Makes `out` ready and locks it for the curation (the caller releases the lock): creates it, or
 * accepts it empty. An earlier curation's folder is replaced when it was interrupted (no
 * comparison.json; its lock, if any, is stale: taken over with a notice), or with `force` when it
 * is finished; a curation still running there is named. A folder holding anything `inrun curate`
 * does not write is never replaced.
 */
async function prepareOutDir(
  out: string,
  runDir: string,
  force: boolean,
  notice: (message: string) => void,
): Promise<RunLock> {
  const shown = displayPath(out);
  if (out === runDir || runDir.startsWith(`${out}${sep}`))
    fail(`--out ${shown}: would replace the run directory itself; choose another folder`);
  let entries: string[] | null = null;
  try {
    if (!(await stat(out)).isDirectory()) fail(`--out ${shown}: exists and is not a directory`);
    entries = await readdir(out);
  } catch (error) {
    const code = errorCode(error);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') failFileError(error, shown, 'read the curation folder');
  }
  if (entries === null) {
    const parent = dirname(out);
    if (!existsSync(parent)) fail(`--out ${shown}: the folder ${displayPath(parent)} does not exist`);
    if (!statSync(parent).isDirectory()) fail(`--out ${shown}: ${displayPath(parent)} is not a folder`);
    try {
      await mkdir(out);
    } catch (error) {
      failFileError(error, shown, 'create the curation folder');
    }
    return lockRunDir(out, 'inrun curate', notice);
  }
  const earlier = entries.filter((name) => name !== LOCK_FILE && name !== LOCK_TAKEOVER_FILE);
  // Empty, or holding only the lock of a curation that stopped before writing anything.
  if (earlier.length === 0) return lockRunDir(out, 'inrun curate', notice);
  const finished = entries.includes(CURATION_FILES.comparison);
  const foreign = earlier.filter((name) => !isCurationName(name));
  const started = entries.some(
    (name) =>
      name === LOCK_FILE ||
      name === CURATION_FILES.curatedConfig ||
      name === CURATION_FILES.removed ||
      /^train\.curated/.test(name),
  );
  if (foreign.length > 0 || (!finished && !started)) {
    if (!force) fail(`${shown}: already exists; choose another --out or add --force to replace it`);
    const named = foreign.slice(0, 3).map((name) => displayPath(join(out, name)));
    fail(
      `${shown}: --force replaces only folders of an earlier inrun curate, and this one holds ${
        foreign.length > 0
          ? `${named.join(', ')}${foreign.length > 3 ? ` and ${foreign.length - 3} more` : ''}`
          : `no ${CURATION_FILES.comparison}`
      }`,
    );
  }
  if (finished && !force) fail(`${shown}: already exists; choose another --out or add --force to replace it`);
  // A curation still running there holds the lock: it is named, not deleted.
  const lock = await lockRunDir(out, 'inrun curate', notice);
  if (!finished)
    notice(
      `${shown}: an earlier inrun curate was interrupted there (no ${CURATION_FILES.comparison}); starting it again`,
    );
  try {
    for (const name of earlier) await rm(join(out, name), { recursive: true, force: true });
  } catch (error) {
    await lock.release();
    failFileError(error, shown, 'remove the earlier curation');
  }
  return lock;
}

/**
 * The config of a retraining: the original's, on other training data, for the original's step
 * count. Validation and test sets are files: the original's, or the rows it split off its training
 * file written out — a split of the curated file would draw other rows.
 */
function retrainConfig(
  run: LoadedRun,
  files: { train: string; validation: string; test: string | null },
  out: string,
): Record<string, unknown> {
  const config = structuredClone(run.config) as Record<string, unknown> & {
    columns?: Record<string, unknown>;
  };
  // The original's data options (missing-value policy, standardization) apply to the new files.
  const {
    validationSplit: _split,
    test: _test,
    testSplit: _testSplit,
    ...options
  } = (config.data ?? {}) as Record<string, unknown>;
  const { train, validation, test } = files;
  config.data = { ...options, train, validation, ...(test !== null ? { test } : {}) };
  // The same optimizer steps (and so the same schedule) as the original, whatever the data size.
  config.steps = run.manifest.totalSteps;
  delete config.epochs;
  // Pin what the original inferred from its data, so removing rows cannot change the model.
  if (run.text) {
    config.out = out;
    return config;
  }
  config.columns = { ...(config.columns ?? {}), features: run.manifest.data.features };
  if (config.task === 'classification' && run.manifest.data.classes !== null)
    config.classes = run.manifest.data.classes;
  // Class names keep their indices even when the curated data lose every example of a class.
  if (run.manifest.data.classNames) config.classNames = run.manifest.data.classNames;
  config.out = out;
  return config;
}

/** Trains a curation config with the run API (the code path of `inrun train`). */
async function retrain(configPath: string, what: string, signal?: AbortSignal): Promise<void> {
  let result: Awaited<ReturnType<typeof trainRun>>;
  try {
    const config = parseTrainConfig(await loadConfigFile(configPath));
    result = await trainRun({ config, signal });
  } catch (error) {
    // The run's advice on resuming does not apply: curation removes the retraining's folder.
    if (error instanceof InrunError)
      throw new InrunError(
        `retraining ${what} failed: ${error instanceof RunFailedError ? error.reason : error.message}`,
      );
    throw error;
  }
  // Curation keeps nothing of an interrupted retraining (its folder is removed).
  if (result.status === 'interrupted')
    throw new InrunError(`interrupted${abortReason(signal)} while retraining ${what}; nothing was kept`);
}

function curationRun(
  name: string,
  run: LoadedRun,
  removed: number,
  target: { validation: number; test: number | null },
  dataFile?: string,
): CurationRun {
  const curve = validationLossCurve(run.trace);
  const test = target.test !== null ? testRun(run, target.test) : null;
  return {
    name,
    examples: run.manifest.data.trainExamples,
    removed,
    validationLoss: curve,
    finalValidationLoss: curve[curve.length - 1],
    bestValidationLoss: Math.min(...curve),
    stepsToTarget: stepsToReach(curve, target.validation),
    ...(test ? { test } : {}),
    runDir: run.dir,
    ...(dataFile ? { dataFile } : {}),
  };
}

/** A run's test evaluations for the comparison; null when its trace has none. */
function testRun(run: LoadedRun, target: number): CurationTestRun | null {
  const curve = testCurve(run.trace);
  if (!curve || curve.loss.length === 0) return null;
  const accuracies = curve.accuracy.filter((a): a is number => a !== null);
  return {
    step: curve.step,
    loss: curve.loss,
    accuracy: curve.accuracy,
    finalLoss: curve.loss[curve.loss.length - 1],
    bestLoss: Math.min(...curve.loss),
    finalAccuracy: curve.accuracy[curve.accuracy.length - 1] ?? null,
    bestAccuracy: accuracies.length > 0 ? Math.max(...accuracies) : null,
    stepsToTarget: stepsToReachAt(curve.step, curve.loss, target),
  };
}

/** What curation removes from and how it writes the kept part, in the training data's format. */
interface CurationSource {
  /** Ids of the removable units (examples, or documents of a text run), in `values` order. */
  ids: string[];
  values: ValueRow[];
  /** Writes the kept units as `train.<name>…`; returns the path to train on. */
  write(out: string, name: string, keep: (id: string, position: number) => boolean): Promise<string>;
  /** Writes the validation part split off the training data; returns its path. */
  writeValidation(out: string): Promise<string>;
  /** Writes the test part split off the training data (data.testSplit); returns its path. */
  writeTest(out: string): Promise<string>;
}

function checkSame(role: string, now: string, then: string | undefined, path: string): void {
  if (then !== undefined && now !== then)
    fail(
      `${displayPath(path)}: the ${role} data changed since the run (sha256 differs); curation needs the same data`,
    );
}

/** Tabular runs: examples are rows, written with writeRowsLike. */
async function tableSource(run: LoadedRun, config: TrainConfig): Promise<CurationSource> {
  const runDir = run.dir;
  const data = await loadTrainingData(config);
  checkSame('training', data.train.table.sha256, run.manifest.data.train.sha256, data.train.table.path);
  if (data.validationTable)
    checkSame(
      'validation',
      data.validationTable.sha256,
      run.manifest.data.validation?.sha256,
      data.validationTable.path,
    );
  if (data.testTable)
    checkSame('test', data.testTable.sha256, run.manifest.data.test?.sha256, data.testTable.path);
  const trainIds = data.train.ids.map(String);
  const position = new Map(trainIds.map((id, i) => [id, i]));
  if (trainIds.length !== run.values.length)
    fail(
      `${displayPath(runDir)}: values.jsonl has ${run.values.length} examples but the training data has ${trainIds.length}`,
    );
  for (const row of run.values)
    if (!position.has(String(row.id)))
      fail(
        `${displayPath(runDir)}: example ${JSON.stringify(row.id)} of the values is not in the training data`,
      );
  const ext = extname(config.data.train);
  return {
    ids: trainIds,
    values: run.values,
    async write(out, name, keep) {
      const file = join(out, `train.${name}${ext}`);
      await writeRowsLike(
        config.data.train,
        data.train.rows.filter((_, i) => keep(trainIds[i], i)),
        file,
      );
      return file;
    },
    async writeValidation(out) {
      // The original split its validation set off the training file: keep exactly those rows.
      const file = join(out, `validation${ext}`);
      await writeRowsLike(config.data.train, data.validation.rows, file);
      return file;
    },
    async writeTest(out) {
      // The original's test rows exactly, so every retraining is tested on them.
      if (!data.test) throw new Error('internal: writeTest on a run without a test set');
      const file = join(out, `test${ext}`);
      await writeRowsLike(config.data.train, data.test.rows, file);
      return file;
    },
  };
}

/**
 * Text (gpt) runs: curation removes whole documents, valued by documents.csv (the sum of their
 * sequences' values), and writes the kept ones in the input's format: a folder of the kept files
 * (under the original folder's name, so sources stay the same), or the kept rows of a table.
 */
async function textSource(run: LoadedRun, config: TrainConfig): Promise<CurationSource> {
  const data = await loadTextTrainingData(config);
  const train = config.data.train;
  checkSame('training', data.trainInfo.sha256, run.manifest.data.train.sha256, train);
  if (data.validationInfo)
    checkSame(
      'validation',
      data.validationInfo.sha256,
      run.manifest.data.validation?.sha256,
      data.validationInfo.path,
    );
  if (data.testInfo)
    checkSame('test', data.testInfo.sha256, run.manifest.data.test?.sha256, data.testInfo.path);
  const format = data.trainInfo.format;
  if (format === 'text')
    fail(
      `${displayPath(train)}: a single text file is one document; curation of text runs removes documents, so it needs a folder of files or a table with a text column`,
    );
  const documents = run.text!.documents;
  const known = new Set(data.train.documents.map((d) => d.id));
  for (const d of documents)
    if (!known.has(d.id))
      fail(
        `${displayPath(run.dir)}: document ${JSON.stringify(d.id)} of documents.csv is not in the training data`,
      );
  const values: ValueRow[] = documents.map((d) => ({
    id: d.id,
    group: d.source,
    timesSeen: d.sequences,
    firstOrder: d.firstOrder,
    secondOrder: d.secondOrder,
    normalized: 0,
    stages: d.stages,
    selfInfluence: null,
    meanLoss: null,
    aum: null,
    forgettingEvents: null,
    timesCorrect: null,
    classValue: null,
    standardError: null,
    momentumCredit: null,
  }));
  const ids = documents.map((d) => d.id);
  const position = new Map(ids.map((id, i) => [id, i]));
  // Documents documents.csv does not list (skipped: empty or too short) are always kept.
  const keepDoc = (keep: (id: string, position: number) => boolean) => (id: string) => {
    const i = position.get(id);
    return i === undefined || keep(id, i);
  };
  const writeDocs = async (target: string, docIds: (id: string) => boolean): Promise<string> => {
    if (format === 'folder') {
      const folder = join(target, basename(train));
      const heldOut = [...data.validation.documents, ...(data.test?.documents ?? [])].map((d) => d.id);
      for (const id of [...known, ...heldOut]) {
        if (!docIds(id)) continue;
        const to = join(folder, id);
        await mkdir(dirname(to), { recursive: true });
        await copyFile(join(train, id), to);
      }
      return folder;
    }
    const table = await readTable(train);
    const tableDocIds = tableIds(table, table.rows, config.columns.id).map(String);
    const file = `${target}${extname(train)}`;
    await writeRowsLike(
      train,
      table.rows.filter((_, i) => docIds(tableDocIds[i])),
      file,
    );
    return file;
  };
  const validationIds = new Set(data.validation.documents.map((d) => d.id));
  const testIds = new Set(data.test?.documents.map((d) => d.id) ?? []);
  return {
    ids,
    values,
    write: (out, name, keep) => {
      const k = keepDoc(keep);
      return writeDocs(join(out, `train.${name}`), (id) => known.has(id) && k(id));
    },
    writeValidation: (out) => writeDocs(join(out, 'validation'), (id) => validationIds.has(id)),
    writeTest: (out) => writeDocs(join(out, 'test'), (id) => testIds.has(id)),
  };
}

function jsonl(rows: unknown[]): string {
  return rows.map((row) => `${JSON.stringify(row)}\n`).join('');
}

/** Runs the curation; every input problem is reported before anything is written. */
export async function curate(options: CurateOptions): Promise<CurateResult> {
  const log = options.log ?? (() => {});
  const runDir = resolve(options.runDir);
  const out = resolve(options.out ?? join(runDir, CURATION_DIR));
  const run = await loadRun(runDir);
  let config: TrainConfig;
  try {
    config = parseTrainConfig({ value: structuredClone(run.config), flagPaths: new Map() });
  } catch (error) {
    if (error instanceof InrunError) fail(`${displayPath(runDir)}: config.json: ${error.message}`);
    throw error;
  }
  const source = run.text ? await textSource(run, config) : await tableSource(run, config);
  const trainIds = source.ids;
  const values = source.values;
  const picked = selectForRemoval(values, options.rule);
  const removedIds = new Set(picked.map((i) => String(values[i].id)));
  const count = removedIds.size;
  const randomSeed = options.randomSeed ?? config.seed;
  const randomPositions = new Set(randomSelection(trainIds.length, count, randomSeed));
  const description = describeRule(options.rule);
  const steps = run.manifest.totalSteps;

  const lock = await prepareOutDir(out, runDir, options.force ?? false, options.notice ?? log);
  try {
    const curatedFile = await source.write(out, 'curated', (id) => !removedIds.has(id));
    const randomFile = await source.write(out, 'random', (_id, i) => !randomPositions.has(i));
    const validationFile = config.data.validation ?? (await source.writeValidation(out));
    // A test split becomes a file of the original's test rows; a test file is used as it is.
    const testFile =
      config.data.test ?? (config.data.testSplit !== undefined ? await source.writeTest(out) : null);
    await writeFileAtomic(
      join(out, CURATION_FILES.removed),
      jsonl(picked.map((i) => ({ id: values[i].id, value: rowValue(values[i]) }))),
    );
    const byId = new Map(values.map((row) => [String(row.id), row]));
    await writeFileAtomic(
      join(out, CURATION_FILES.randomRemoved),
      jsonl(
        [...randomPositions]
          .sort((a, b) => a - b)
          .map((i) => {
            const row = byId.get(trainIds[i])!;
            return { id: row.id, value: rowValue(row) };
          }),
      ),
    );

    log(
      `curate: removing ${count} of ${trainIds.length} training examples (${description}); retraining ${steps} steps, then again with ${count} removed at random (seed ${randomSeed})`,
    );
    const runs: Record<'curated' | 'random', { file: string; dir: string; config: string }> = {
      curated: {
        file: curatedFile,
        dir: join(out, CURATION_FILES.curatedRun),
        config: join(out, CURATION_FILES.curatedConfig),
      },
      random: {
        file: randomFile,
        dir: join(out, CURATION_FILES.randomRun),
        config: join(out, CURATION_FILES.randomConfig),
      },
    };
    for (const [name, r] of Object.entries(runs)) {
      log(`retraining ${name === 'curated' ? 'on the curated data' : 'with random removal'} …`);
      await writeJsonFile(
        r.config,
        retrainConfig(run, { train: r.file, validation: validationFile, test: testFile }, r.dir),
      );
      await retrain(
        r.config,
        name === 'curated' ? 'the curated data' : 'with random removal',
        options.signal,
      );
    }
    const curatedRun = await loadRun(runs.curated.dir);
    const randomRun = await loadRun(runs.random.dir);

    const originalCurve = validationLossCurve(run.trace);
    const target = originalCurve[originalCurve.length - 1];
    const originalTest = testFile !== null ? testCurve(run.trace) : null;
    const testTarget = originalTest?.loss.at(-1) ?? null;
    const targets = { validation: target, test: testTarget };
    const judgedOn = testTarget !== null ? 'test' : 'validation';
    const comparison: CurationComparison = {
      format: 'inrun-curation',
      formatVersion: 1,
      runDir,
      rule: {
        kind: options.rule.kind,
        ...(options.rule.kind === 'below' ? { threshold: options.rule.threshold } : {}),
        ...(options.rule.kind === 'percentile' ? { threshold: options.rule.percentile } : {}),
        description,
      },
      valueColumn: values.some((row) => row.secondOrder !== null) ? 'second_order' : 'first_order',
      totalExamples: trainIds.length,
      removed: count,
      removedValue: picked.reduce((a, i) => a + rowValue(values[i]), 0),
      randomSeed,
      steps,
      targetValidationLoss: target,
      judgedOn,
      ...(testFile !== null && testTarget !== null
        ? {
            test: {
              file: testFile,
              source: config.data.test !== undefined ? ('file' as const) : ('split' as const),
              examples: run.manifest.data.testExamples ?? 0,
              targetLoss: testTarget,
              targetAccuracy: originalTest?.accuracy.at(-1) ?? null,
            },
          }
        : { notice: VALIDATION_JUDGED_NOTICE }),
      runs: {
        original: curationRun('original', run, 0, targets),
        curated: curationRun('curated', curatedRun, count, targets, curatedFile),
        random: curationRun('random', randomRun, count, targets, randomFile),
      },
    };
    const comparisonPath = join(out, CURATION_FILES.comparison);
    await writeJsonFile(comparisonPath, comparison);
    const reportPath = await writeRunReport({
      runDir,
      out: join(out, CURATION_FILES.report),
      curation: comparison,
    });
    return { out, comparison, comparisonPath, reportPath };
  } catch (error) {
    // No partial results: the folder was made (or emptied) for this curation.
    await rm(out, { recursive: true, force: true }).catch(() => {});
    if (isFileSystemError(error)) failFileError(error, out, 'write the curation');
    throw error;
  } finally {
    await lock.release();
  }
}

// The library's run API: what `inrun train`, `report`, `curate` and the demos do, as calls.
// A config (a file, or an object checked by parseTrainConfig) names the data; trainRun trains
// into a run directory and resumes it; loadRun reads a finished one back.
export {
  type LoadedRun,
  loadRun,
  loadRunArchive,
  parseSuspectsCsv,
  RUN_FILES,
  type RunManifest,
  type RunStatus,
  type RunTraceEntry,
  readSuspects,
  type SuspectRow,
  type SuspectsTable,
} from '../io/run-dir.js';
export { readStepValues, STEP_VALUE_COLUMNS, type StepValueRow } from '../io/step-values.js';
export { ArchiveRun, type ArchiveRunOptions, type DataFile } from './archive-run.js';
export { buildModel, buildOptimizer, buildTextModel, buildTrainer, runLength } from './build.js';
export { FIELDS, loadConfigFile, parseTrainConfig, type TrainConfig, TrainConfigSchema } from './config.js';
export { loadTrainingData, type RunInputs, runSeeds, type TrainingData } from './data.js';
export {
  EFFICIENCY_TOLERANCE_UNITS,
  FEATURE_RMS_LIMIT,
  FEATURE_SPREAD_LIMIT,
  LOSS_GROWTH_LIMIT,
  RunDiagnostics,
  type RunWarning,
  TARGET_RMS_LIMIT,
  TAYLOR_ERROR_LIMIT,
} from './diagnostics.js';
export { LOCK_FILE, type LockOwner, lockRunDir, type RunLock } from './lock.js';
export {
  type AvailableMemory,
  availableMemory,
  checkRunMemory,
  estimateRunMemory,
  type MemoryEstimate,
  type RunShape,
} from './memory.js';
export {
  DEFAULT_SUSPECT_SIGNAL,
  predictions,
  SUSPECT_SIGNALS,
  type SuspectSignal,
  suspectsCsv,
  suspicionRanks,
} from './suspects.js';
export { loadTextTrainingData, type TextTrainingData } from './text-data.js';
export {
  abortReason,
  type RunEvent,
  RunFailedError,
  type RunSummary,
  type TrainRunOptions,
  type TrainRunResult,
  trainRun,
} from './train-run.js';

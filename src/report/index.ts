// The HTML report of a run's data values (see render.ts).
export {
  averageRanks,
  groupSummaries,
  histogram,
  mainValue,
  REPORT_SIGNALS,
  removalCurve,
  type SignalCorrelation,
  signalCorrelations,
  spearman,
  stepsToReach,
  traceStats,
  validationLossCurve,
} from './analysis.js';
export { escapeHtml, jsonForScript } from './escape.js';
export {
  attachContent,
  type ReportOptions,
  reportInputFromRun,
  reportInputFromTrainer,
  topSuspects,
} from './inputs.js';
export { grayscalePng, grayscalePngDataUrl } from './png.js';
export { renderReport } from './render.js';
export type {
  CurationComparison,
  CurationRun,
  ReportContent,
  ReportInput,
  ReportSuspect,
  ReportSuspects,
  ReportTraceRow,
  ReportValue,
} from './types.js';
export {
  type ArchiveReportOptions,
  COMPARISON_FILE,
  CURATION_DIR,
  checkWritableFile,
  REPORT_FILE,
  type RunReportOptions,
  readComparison,
  writeArchiveReport,
  writeRunReport,
} from './write.js';

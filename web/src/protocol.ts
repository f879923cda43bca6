// The messages between the page (page.ts) and the training worker (worker.ts). Typed arrays and
// ArrayBuffers travel by structured clone; the archive's buffer is transferred.
import type { PageResults } from '../../src/browser/page-run.js';
import type { PageSettings } from '../../src/browser/page-settings.js';
import type { Histogram } from '../../src/report/analysis.js';

/** Page → worker. */
export type ToWorker =
  /** Parse a chosen file and report its columns (or what is wrong with it). */
  | { type: 'inspect'; name: string; bytes: ArrayBuffer }
  | { type: 'start'; settings: PageSettings }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'stop' };

/** One completed step, as the charts plot it. */
export interface StepPoint {
  step: number;
  /** Mean training loss of the step's batch. */
  trainLoss: number;
  /** Validation loss at the weights before the step. */
  validationLoss: number;
  /** Σ of the step's values (main order) and the Taylor utility they share. */
  valueSum: number;
  utility: number;
}

/** Worker → page. */
export type FromWorker =
  /** The kernels are loaded; `note` says why they are not the WebAssembly ones, when not. */
  | { type: 'ready'; kernels: string; note: string | null }
  | { type: 'inspected'; name: string; columns: string[]; rows: number }
  | {
      type: 'started';
      totalSteps: number;
      trainExamples: number;
      validationExamples: number;
      parameters: number;
      kernels: string;
      seconds: number;
    }
  | { type: 'progress'; step: number; totalSteps: number; points: StepPoint[]; histogram: Histogram | null }
  | { type: 'warning'; message: string }
  | { type: 'paused'; step: number }
  | { type: 'resumed' }
  | { type: 'stopped'; step: number; totalSteps: number }
  | {
      type: 'done';
      results: PageResults;
      histogram: Histogram;
      valuesCsv: string;
      archive: ArrayBuffer;
    }
  /** `phase` file: the chosen file could not be read; run: the run could not start or failed. */
  | { type: 'error'; phase: 'file' | 'run'; message: string };

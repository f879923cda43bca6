// Training progress for the CLI: a progress bar on a terminal, plain periodic lines otherwise,
// JSON lines for machines, or nothing.
import cliProgress from 'cli-progress';

export type ProgressMode = 'bar' | 'plain' | 'json' | 'quiet';

export interface ProgressStep {
  /** Steps done so far (1-based: 1 after the first step). */
  step: number;
  totalSteps: number;
  lr: number;
  trainLoss: number;
  /** Validation loss before this step (null without valuation). */
  validationLoss: number | null;
  /** Σ values − Taylor utility of this step (zero up to rounding). */
  efficiencyResidual: number | null;
}

export interface ProgressOptions {
  mode: ProgressMode;
  totalSteps: number;
  /** Steps already done (a resumed run). */
  startStep?: number;
  /** Plain lines (mode plain), e.g. stderr. */
  writeText: (text: string) => void;
  /** JSON lines (mode json), e.g. stdout. */
  writeJson: (text: string) => void;
  /** The terminal for the bar (mode bar). */
  stream?: NodeJS.WritableStream;
  /** Plain mode: print at least every this many seconds (default 30), besides every 5% of the run. */
  plainEverySeconds?: number;
  now?: () => number;
}

function fmt(x: number | null, digits = 4): string {
  if (x === null || Number.isNaN(x)) return '-';
  return Math.abs(x) !== 0 && (Math.abs(x) < 1e-3 || Math.abs(x) >= 1e5)
    ? x.toExponential(2)
    : x.toFixed(digits);
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(h > 0 ? 2 : 1, '0');
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(sec).padStart(2, '0')}`;
}

/** Reports training progress in one of the four modes. */
export class Progress {
  private readonly options: ProgressOptions;
  private readonly now: () => number;
  private bar: cliProgress.SingleBar | null = null;
  private startTime = 0;
  private startStep: number;
  private lastPrintStep = -1;
  private lastPrintTime = 0;

  constructor(options: ProgressOptions) {
    this.options = options;
    this.now = options.now ?? (() => performance.now() / 1000);
    this.startStep = options.startStep ?? 0;
  }

  get mode(): ProgressMode {
    return this.options.mode;
  }

  /** A JSON-lines event (json mode only). */
  event(name: string, fields: Record<string, unknown> = {}): void {
    if (this.options.mode === 'json')
      this.options.writeJson(`${JSON.stringify({ event: name, ...fields })}\n`);
  }

  /** A human-readable note (plain mode; bar mode prints it after the bar stops). */
  note(text: string): void {
    if (this.options.mode === 'plain') this.options.writeText(`${text}\n`);
    else if (this.options.mode === 'bar') this.pendingNotes.push(text);
  }

  private readonly pendingNotes: string[] = [];

  start(): void {
    this.startTime = this.now();
    this.lastPrintTime = this.startTime;
    const { mode, totalSteps } = this.options;
    if (mode === 'bar') {
      this.bar = new cliProgress.SingleBar(
        {
          stream: this.options.stream,
          format:
            'train |{bar}| {percentage}% | step {value}/{total} | ETA {eta_formatted} | loss {train} | val {val} | resid {resid}',
          hideCursor: true,
          clearOnComplete: false,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(totalSteps, this.startStep, { train: '-', val: '-', resid: '-' });
    }
  }

  step(s: ProgressStep): void {
    const { mode } = this.options;
    if (mode === 'quiet') return;
    if (mode === 'json') {
      this.event('step', { ...s });
      return;
    }
    if (mode === 'bar') {
      this.bar?.update(s.step, {
        train: fmt(s.trainLoss),
        val: fmt(s.validationLoss),
        resid: fmt(s.efficiencyResidual, 2),
      });
      return;
    }
    const t = this.now();
    const every = Math.max(1, Math.floor(s.totalSteps / 20));
    const due =
      s.step === s.totalSteps ||
      this.lastPrintStep < 0 ||
      s.step - this.lastPrintStep >= every ||
      t - this.lastPrintTime >= (this.options.plainEverySeconds ?? 30);
    if (!due) return;
    this.lastPrintStep = s.step;
    this.lastPrintTime = t;
    const done = s.step - this.startStep;
    const eta = done > 0 ? ((t - this.startTime) / done) * (s.totalSteps - s.step) : Number.NaN;
    const pct = Math.floor((100 * s.step) / s.totalSteps);
    this.options.writeText(
      `step ${s.step}/${s.totalSteps} (${pct}%)  train loss ${fmt(s.trainLoss)}  validation loss ${fmt(s.validationLoss)}  ` +
        `efficiency residual ${fmt(s.efficiencyResidual, 2)}  eta ${formatDuration(eta)}\n`,
    );
  }

  stop(): void {
    if (this.bar) {
      this.bar.stop();
      this.bar = null;
    }
    for (const text of this.pendingNotes.splice(0)) this.options.writeText(`${text}\n`);
  }
}

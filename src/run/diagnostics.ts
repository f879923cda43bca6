// Warnings for runs whose values are not worth reading: a diverging validation loss, a Taylor
// expansion that no longer describes the steps, values that do not add up, and input data on scales
// no single learning rate suits. Each check warns at most once per run and says what to change.
//
// The thresholds were set from runs of the library (float32 models, order 2 unless noted) that
// train well — the digits demo (MLP 128, sgd 0.005, momentum 0.9), digits with sgd 0.05 and momentum
// 0.9 for 4 and 20 epochs (overfitting), adam 1e-3, sgd 1e-6 and sgd 0.5 with momentum 0.9;
// three-class blobs as in the CLI tests (logreg sgd 0.05; MLP 8 sgd 0.1 momentum 0.9 for 5 and 60
// epochs; adamw 0.01); a small regression (MLP 16 sgd 0.05, sgd 0.01 momentum 0.9 for 40 epochs,
// adam 0.01; linear sgd 0.05); GPTs of 2 layers, width 64, context 32 on Moby-Dick chapters (adamw
// 3e-3 with clipNorm 1, adam 0.01 on bytes, sgd 0.1 momentum 0.9) — and from runs that do not:
// digits, blobs MLP and blobs logreg at sgd lr 5, blobs MLP at lr 1 with momentum 0.9, a GPT at adamw
// lr 0.3, blobs features scaled by 1000 and 50 with an offset of 5000, regression targets near 1e20.
// Each doc comment below gives the measured numbers on both sides.
import type { Dataset } from '../data/dataset.js';
import type { RunWarning } from '../io/run-dir.js';
import type { DType } from '../kernels/types.js';
import type { TraceEntry } from '../shapley/valuer.js';
import type { TrainConfig } from './config.js';

export type { RunWarning };

export type RunWarningCode =
  | 'exploding-loss'
  | 'taylor-error'
  | 'efficiency-residual'
  | 'feature-scale'
  | 'target-scale'
  | 'linearisation-gap';

/**
 * Linearisation gap: a valued step whose linearised Adam step is this many times its own size away
 * from Adam's real step (the trace's linearisationGap, over random half batches). Measured on the
 * digits MLP (Adam lr 1e-3, batch 128): 62 at the first step, whose values then carry 11% of the
 * run's Σ|values|, and 0.81, 0.29, 0.21 at the next steps; healthy later steps stay below 1.
 */
export const LINEARISATION_GAP_LIMIT = 5;

/**
 * Exploding loss: the validation loss after a step is above its value before training AND more than
 * this many times the lowest value seen so far. Healthy runs never rose above their starting loss
 * and rose at most 2.58× over their lowest (regression, momentum 0.9, 40 epochs: overfitting, which
 * is slow and stays below the start); diverging runs rose 9.1× (digits, lr 5), 1.1e3× (blobs, lr 1
 * with momentum), 1.2e3× and 7e4× (unscaled features) and 7.7e4× (blobs, lr 5).
 */
export const LOSS_GROWTH_LIMIT = 5;

/**
 * Taylor error: over the last TAYLOR_WINDOW completed steps (all of them until there are that many,
 * and only once there are TAYLOR_MIN_STEPS), Σ|batchTaylorError| / Σ(|actual| + floor) above this
 * limit: the error of the expansion of the whole step, U(∅) (momentum carried in, weight decay)
 * included, so the momentum part no longer reads as error. A ratio of sums, not a mean of per-step
 * ratios, so steps where the loss barely moves (actual ≈ 0) do not dominate; the floor (TAYLOR_FLOOR
 * × the validation loss per step) keeps float32 rounding of the loss from reading as error when a
 * run has stopped moving.
 * Measured with batchTaylorError (taylorError, which still held U(∅), in brackets), the tests'
 * runs: healthy runs with momentum 0.9 or Adam reached 0.004–0.24 (0.77–1.3), plain SGD
 * 0.009–0.035 (the same), digits sgd 0.5 with momentum 1.3 (2.4), a 1-layer GPT on adam 0.01 2.3
 * (3.2), a 2-layer GPT on Moby-Dick (adamw 3e-3, batch 8, order 2) 0.18 (0.80). Runs whose values
 * had lost touch with training reached 22 (blobs MLP, lr 5), 63 (GPT, adamw 0.3), 3.2e3 (digits,
 * lr 5: Σ values far beyond a real change of 0.009) and 1.5e4 (unscaled features); blobs at lr 1
 * with momentum (2.4) is caught by the exploding loss. Healthy runs stay a factor of 9 under the
 * limit; the mildest broken run (22) is just over it.
 */
export const TAYLOR_ERROR_LIMIT = 20;
/** Steps in the Taylor-error window: long enough to average out single outliers, short enough that late trouble in a long run is not diluted. */
export const TAYLOR_WINDOW = 50;
/** Completed steps before the Taylor error is judged (the first steps alone are too few). */
export const TAYLOR_MIN_STEPS = 10;
/** Per-step floor of |actual|, relative to the validation loss: below it, a change is float32 rounding of two loss evaluations. */
export const TAYLOR_FLOOR = 1e-6;

/**
 * Efficiency residual: |Σ values − Taylor utility| beyond this many units of rounding (2^-24 for
 * float32, 2^-53 for float64) of the step's magnitude, the sum of |Σ first-order values|,
 * |first-order utility| and, for order 2, the second-order parts |Σ₂ − Σ₁| and |U₂ − U₁|. Values are
 * per-example dots of float32 (or float64) gradients with a float32 u, accumulated in float64; the
 * utility is one dot of u with the batch gradient; both round at a few units of the model's
 * precision times the number of terms. Healthy runs measured at most 7.4e-6 = 124 units (float32;
 * blobs MLP, 60 epochs) and 1.9e-14 = 170 units (float64); 2^14 units (9.8e-4 in float32) is a wide
 * margin. The pathological runs above stay at rounding too (values near 1e39 with targets near 1e20
 * had a residual of 1.6e31, a relative 8e-8): a residual beyond it means a layer whose ghost
 * products disagree with its backward pass, or numbers beyond float range.
 */
export const EFFICIENCY_TOLERANCE_UNITS = 2 ** 14;
/** The magnitude is at least this fraction of the validation loss, so steps whose values all but vanish are not judged on rounding noise. */
export const EFFICIENCY_FLOOR = 1e-4;

/**
 * Feature scale: a feature's root mean square (sqrt of the mean of x², spread and offset together)
 * above this. Standardized and image data measure 0.7–1.8; blobs scaled up train as well at RMS 3,
 * oscillate at 10 (logreg at sgd 0.05: loss 0.32 at best, 0.59 at the end) and diverge by 100.
 */
export const FEATURE_RMS_LIMIT = 10;
/**
 * Feature spread: largest feature RMS over the (lower) median of the non-zero ones above this. The
 * smallest feature is not used: image borders are all but constant (digits: RMS 6e-4 against a
 * largest of 0.70, a ratio of 1,167, in data that trains well). Digits measure 2.9, blobs 1.3.
 */
export const FEATURE_SPREAD_LIMIT = 100;
/**
 * Regression targets: their root mean square above this. Losses and values are in squared target
 * units. An MLP 64 at sgd 0.05 trained well on targets of RMS 3.2 and 9.5, degraded at 16 (loss
 * 0.26 at best, 1.35 at the end), failed at 22 and diverged at 32; targets near 1e20 gave losses
 * of 1e40, beyond float32's range.
 */
export const TARGET_RMS_LIMIT = 10;

/** Examples read per batch while measuring the data. */
const DATA_CHUNK = 4096;
/** Features named in a feature-scale warning. */
const NAMED_FEATURES = 3;

export interface RunDiagnosticsOptions {
  /** The base learning rate (optimizer.lr), named in the advice. */
  lr: number;
  /** Regression runs also get the target-scale check. */
  task?: 'classification' | 'binary' | 'regression';
  /** The model's float type, which sets the efficiency tolerance (default float32). */
  dtype?: DType;
  /** Warnings the run already has (its manifest's, when resuming): kept and not repeated. */
  previous?: readonly RunWarning[];
  /** The first valued step (valuation's valueFrom); earlier rows are not judged by the gap check. */
  valueFrom?: number;
}

/**
 * Watches one run. Call `checkData` once before training and `checkRow` with every completed trace
 * row (a resumed run replays the rows of its trace file first): each returns only warnings not given before, and `warnings`
 * holds all of them for the manifest. Every check looks only at the data and the trace, so a resumed
 * run that replays its restored trace into a diagnostics built with its previous warnings ends with
 * the same warnings as an uninterrupted run.
 */
export class RunDiagnostics {
  private readonly options: Required<Omit<RunDiagnosticsOptions, 'previous'>>;
  private readonly list: RunWarning[] = [];
  private readonly codes = new Set<string>();
  /** Completed trace rows checked so far. */
  private rowsChecked = 0;
  private initialLoss = Number.NaN;
  private lowestLoss = Number.NaN;
  /** The completed rows' |Taylor error| and |actual| + floor, for the Taylor-error window. */
  private readonly errors: number[] = [];
  private readonly actuals: number[] = [];
  /** The rows of that window. */
  private readonly window: TraceEntry[] = [];

  constructor(options: RunDiagnosticsOptions) {
    this.options = {
      lr: options.lr,
      task: options.task ?? 'classification',
      dtype: options.dtype ?? 'float32',
      valueFrom: options.valueFrom ?? 0,
    };
    for (const warning of options.previous ?? []) this.add({ ...warning });
  }

  /** Diagnostics for a run of `config`. */
  static fromConfig(
    config: TrainConfig,
    options: { dtype?: DType; previous?: readonly RunWarning[] } = {},
  ): RunDiagnostics {
    return new RunDiagnostics({
      lr: config.optimizer.lr,
      task: config.task,
      valueFrom: config.valueFrom,
      ...options,
    });
  }

  /** Every warning so far, oldest first (copies). */
  get warnings(): RunWarning[] {
    return this.list.map((w) => ({ ...w }));
  }

  /**
   * Checks the training data before training: feature scales (not of token inputs, whose ids are
   * no scale), and target scale for regression. `features` names the columns (RunInputs has
   * them); unnamed ones are called "feature k".
   */
  checkData(inputs: { train: Dataset; features?: readonly string[] }): RunWarning[] {
    const found: RunWarning[] = [];
    const { features, targets } = measureData(inputs.train, this.options.task === 'regression');
    const names = inputs.features ?? [];
    const name = (k: number) => (names[k] === undefined ? `feature ${k}` : quote(names[k]));
    const nonZero = features.map((rms, k) => ({ rms, k })).filter((f) => f.rms > 0);
    if (nonZero.length > 0) {
      const sorted = nonZero.slice().sort((a, b) => b.rms - a.rms);
      const largest = sorted[0].rms;
      const median = sorted[Math.floor(sorted.length / 2)].rms;
      const spread = largest / median;
      if (largest > FEATURE_RMS_LIMIT || spread > FEATURE_SPREAD_LIMIT) {
        const big = sorted.filter((f) => f.rms > FEATURE_RMS_LIMIT || f.rms / median > FEATURE_SPREAD_LIMIT);
        const listed = big
          .slice(0, NAMED_FEATURES)
          .map((f) => `${name(f.k)} ${num(f.rms)}`)
          .join(', ');
        const more = big.length > NAMED_FEATURES ? ` and ${big.length - NAMED_FEATURES} more` : '';
        this.push(found, {
          code: 'feature-scale',
          step: null,
          message:
            `features are far from unit scale: root mean square ${listed}${more}, while the median feature has ${num(median)} ` +
            `(limits: ${FEATURE_RMS_LIMIT}, and ${FEATURE_SPREAD_LIMIT}× the median). The curvature of the loss, and so the learning rate that suits it, ` +
            'scales with the square of each input, so no one learning rate suits these features: training diverges or stalls, and the values with it. ' +
            'Set data.standardize: true (or rescale these columns).',
        });
      }
    }
    if (this.options.task === 'regression' && targets.rms > TARGET_RMS_LIMIT) {
      this.push(found, {
        code: 'target-scale',
        step: null,
        message:
          `regression targets are large: root mean square ${num(targets.rms)} (mean ${num(targets.mean)}, std ${num(targets.std)}; limit ${TARGET_RMS_LIMIT}). ` +
          `The loss, its gradients and every value are in squared target units (here about ${num(targets.rms ** 2)}), ` +
          'so a learning rate that suits unit-scale data diverges or the numbers leave float range. ' +
          'Rescale the label column in the data file (subtract its mean, divide by its standard deviation; data.standardize scales features only).',
      });
    }
    return found;
  }

  /**
   * Checks one completed trace row (its validation loss after the step known); rows must come in
   * step order, each once — e.g. from the valuer's `onTraceRow`. Returns only new warnings.
   */
  checkRow(row: TraceEntry): RunWarning[] {
    const found: RunWarning[] = [];
    if (this.rowsChecked === 0) {
      this.initialLoss = row.validationLossBefore;
      this.lowestLoss = row.validationLossBefore;
    }
    this.checkEfficiency(found, row);
    // Each row's loss after is the next row's loss before: checking it covers every loss once.
    if (!Number.isNaN(row.validationLossAfter)) this.checkLoss(found, row.step, row.validationLossAfter);
    this.rowsChecked += 1;
    this.checkTaylor(found, row);
    this.checkLinearisation(found, row);
    return found;
  }

  /**
   * Checks the completed rows of a whole trace (the valuer's `trace` with the default `keepTrace`)
   * not checked before; call after every step.
   */
  checkTrace(trace: readonly TraceEntry[]): RunWarning[] {
    const found: RunWarning[] = [];
    while (this.rowsChecked < trace.length) {
      const row = trace[this.rowsChecked];
      if (Number.isNaN(row.validationLossAfter)) break;
      found.push(...this.checkRow(row));
    }
    return found;
  }

  private checkLoss(found: RunWarning[], step: number, loss: number): void {
    const lowest = this.lowestLoss;
    if (loss > this.initialLoss && loss > LOSS_GROWTH_LIMIT * lowest)
      this.push(found, {
        code: 'exploding-loss',
        step,
        message:
          `the validation loss rose to ${num(loss)} after step ${step}: above its starting value ${num(this.initialLoss)} and ` +
          `${num(loss / lowest)}× its lowest so far, ${num(lowest)} (limit ${LOSS_GROWTH_LIMIT}×). Training is diverging, and the values of a ` +
          `diverging run measure the divergence, not the data. Lower optimizer.lr (now ${num(this.options.lr)}), e.g. to ${num(this.options.lr / 10)}, or set optimizer.clipNorm; ` +
          'with large features or targets, rescale them first.',
      });
    if (loss < lowest) this.lowestLoss = loss;
  }

  private checkEfficiency(found: RunWarning[], row: TraceEntry): void {
    const residual = row.efficiencyResidual;
    const parts = [row.firstOrderSum, row.firstOrderUtility];
    if (row.secondOrderSum !== null && row.secondOrderUtility !== null)
      parts.push(row.secondOrderSum - row.firstOrderSum, row.secondOrderUtility - row.firstOrderUtility);
    const magnitude = Math.max(
      parts.reduce((s, x) => s + Math.abs(x), 0),
      EFFICIENCY_FLOOR * Math.abs(row.validationLossBefore),
    );
    const advice =
      'A layer whose ghost products disagree with its backward pass (check a custom layer against brute-force per-example gradients) ' +
      'or numbers beyond float range (set data.standardize: true, rescale large targets) do this; otherwise report it with the run’s config.';
    if (!Number.isFinite(residual) || !Number.isFinite(magnitude)) {
      this.push(found, {
        code: 'efficiency-residual',
        step: row.step,
        message: `at step ${row.step} the values or the Taylor utility are not finite (Σ values ${num(row.secondOrderSum ?? row.firstOrderSum)}, Taylor utility ${num(row.secondOrderUtility ?? row.firstOrderUtility)}). ${advice}`,
      });
      return;
    }
    const tolerance = EFFICIENCY_TOLERANCE_UNITS * unitRoundoff(this.options.dtype);
    const relative = Math.abs(residual) / magnitude;
    if (relative > tolerance)
      this.push(found, {
        code: 'efficiency-residual',
        step: row.step,
        message:
          `at step ${row.step} the values do not add up: Σ values − Taylor utility = ${num(residual)}, ${num(relative)} of the step's values ` +
          `(${this.options.dtype} rounding leaves about 1e${Math.round(Math.log10(100 * unitRoundoff(this.options.dtype)))}; limit ${num(tolerance)}). ${advice}`,
      });
  }

  private checkLinearisation(found: RunWarning[], row: TraceEntry): void {
    const gap = row.linearisationGap;
    if (gap === null || !(gap > LINEARISATION_GAP_LIMIT) || row.step < this.options.valueFrom) return;
    this.push(found, {
      code: 'linearisation-gap',
      step: row.step,
      message:
        `at step ${row.step} the step the values are exact for is ${num(gap)}× its own size away from the optimizer's real step ` +
        `(linearisationGap; limit ${LINEARISATION_GAP_LIMIT}), as in Adam's first steps, where the second moment is still one gradient's square. ` +
        `That step's values describe a different update and can dominate the totals: start the values after it (valueFrom: ${row.step + 1} or later) ` +
        'or warm the learning rate up (optimizer.schedule: {kind: cosine, warmupSteps: …}).',
    });
  }

  private checkTaylor(found: RunWarning[], row: TraceEntry): void {
    // The whole step's expansion error; rows of runs from before 0.2.0 have only taylorError.
    const taylorError = Number.isNaN(row.batchTaylorError) ? row.taylorError : row.batchTaylorError;
    if (!Number.isFinite(taylorError) || !Number.isFinite(row.actualUtility)) return;
    this.window.push(row);
    this.errors.push(Math.abs(taylorError));
    this.actuals.push(Math.abs(row.actualUtility) + TAYLOR_FLOOR * Math.abs(row.validationLossBefore));
    if (this.errors.length > TAYLOR_WINDOW) {
      this.window.shift();
      this.errors.shift();
      this.actuals.shift();
    }
    if (this.rowsChecked < TAYLOR_MIN_STEPS || this.codes.has('taylor-error')) return;
    const error = sumOf(this.errors);
    const actual = sumOf(this.actuals);
    const ratio = error / actual;
    if (!(ratio > TAYLOR_ERROR_LIMIT)) return;
    const first = this.window[0];
    let values = 0;
    let change = 0;
    for (const r of this.window) {
      values += r.secondOrderSum ?? r.firstOrderSum;
      change += r.actualUtility;
    }
    this.push(found, {
      code: 'taylor-error',
      step: row.step,
      message:
        `the values stopped describing the training steps: over steps ${first.step}–${row.step} the Taylor error is ${num(ratio)}× ` +
        `the actual validation-loss change (Σ|error| / Σ|change|; limit ${TAYLOR_ERROR_LIMIT}×), and Σ values ${num(values)} stand against a real decrease of ${num(change)}. ` +
        `The steps are too long for the Taylor expansion the values come from. Lower optimizer.lr (now ${num(this.options.lr)}), e.g. to ${num(this.options.lr / 10)}.`,
    });
  }

  private push(found: RunWarning[], warning: RunWarning & { code: RunWarningCode }): void {
    if (this.add(warning)) found.push({ ...warning });
  }

  private add(warning: RunWarning): boolean {
    if (this.codes.has(warning.code)) return false;
    this.codes.add(warning.code);
    this.list.push(warning);
    return true;
  }
}

/** Root mean square of each feature (over every token position; none for token ids) and of the targets. */
function measureData(
  data: Dataset,
  withTargets: boolean,
): {
  features: number[];
  targets: { rms: number; mean: number; std: number };
} {
  const width = data.example.width;
  const squares = new Float64Array(width);
  let samples = 0;
  // Welford's running mean and sum of squared deviations: no cancellation for targets far from 0.
  let targetCount = 0;
  let targetMean = 0;
  let targetDeviations = 0;
  for (let start = 0; start < data.size; start += DATA_CHUNK) {
    const end = Math.min(data.size, start + DATA_CHUNK);
    const indices = Int32Array.from({ length: end - start }, (_, i) => start + i);
    const { input, targets } = data.batch(indices, 'float64');
    // Token ids carry no scale; without a target check there is nothing more to read.
    if (input.ids && !withTargets) break;
    const rows = input.ids ? 0 : input.data.length / width;
    for (let r = 0; r < rows; r++)
      for (let k = 0; k < width; k++) {
        const x = input.data[r * width + k];
        squares[k] += x * x;
      }
    samples += rows;
    for (const y of targets) {
      targetCount += 1;
      const delta = y - targetMean;
      targetMean += delta / targetCount;
      targetDeviations += delta * (y - targetMean);
    }
  }
  const features = samples > 0 ? Array.from(squares, (s) => Math.sqrt(s / samples)) : [];
  const variance = targetCount > 0 ? targetDeviations / targetCount : 0;
  return {
    features,
    targets: { rms: Math.hypot(targetMean, Math.sqrt(variance)), mean: targetMean, std: Math.sqrt(variance) },
  };
}

function unitRoundoff(dtype: DType): number {
  return dtype === 'float64' ? 2 ** -53 : 2 ** -24;
}

function sumOf(xs: number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}

function quote(name: string): string {
  return /^[\w.-]+$/.test(name) ? name : JSON.stringify(name);
}

/** 3 significant digits; exponent form outside [1e-3, 1e4). */
function num(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e4 || a < 1e-3) return x.toExponential(2).replace(/\.?0+e/, 'e');
  return String(Number(x.toPrecision(3)));
}

// The page's three live charts (uPlot), each inside a role="img" element whose text summary
// (aria-describedby) page.ts keeps up to date: loss per step, Σ values against the Taylor utility
// per step, and the histogram of the values so far.
import uPlot from 'uplot';
import type { Histogram } from '../../src/report/analysis.js';
import type { StepPoint } from './protocol.js';

const RED = '#b3261e';
const BLUE = '#1f5fa8';
const GRAY = '#555';

/** Numbers on axes and in legends: 3 significant digits, exponent for very small or large. */
export function formatNumber(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  const a = Math.abs(v);
  return (a < 1e-3 || a >= 1e6 ? v.toExponential(1) : String(Number(v.toPrecision(3)))).replaceAll('-', '−');
}

const ticks = (_u: uPlot, splits: number[]) => splits.map(formatNumber);

function axes(x: string, y: string): uPlot.Axis[] {
  return [
    { label: x, values: ticks, grid: { stroke: '#eee' }, ticks: { stroke: '#ccc' } },
    { label: y, values: ticks, size: 64, grid: { stroke: '#eee' }, ticks: { stroke: '#ccc' } },
  ];
}

function line(label: string, stroke: string, extra: Partial<uPlot.Series> = {}): uPlot.Series {
  return { label, stroke, width: 2, value: (_u, v) => formatNumber(v), ...extra };
}

/** A chart that fills its element's width and follows it when the window is resized. */
class Chart {
  private readonly plot: uPlot;

  constructor(
    private readonly element: HTMLElement,
    options: Omit<uPlot.Options, 'width' | 'height'>,
  ) {
    this.plot = new uPlot({ ...options, ...this.size() }, [[]], element);
    new ResizeObserver(() => this.plot.setSize(this.size())).observe(element);
  }

  private size(): { width: number; height: number } {
    const width = Math.max(240, this.element.clientWidth);
    return { width, height: width < 500 ? 200 : 260 };
  }

  set(data: uPlot.AlignedData): void {
    this.plot.setData(data);
  }
}

/** Loss per step: the batch's training loss and the validation loss before the step. */
export class LossChart {
  private readonly chart: Chart;
  private steps: number[] = [];
  private train: number[] = [];
  private validation: number[] = [];

  constructor(element: HTMLElement) {
    this.chart = new Chart(element, {
      scales: { x: { time: false } },
      axes: axes('step', 'loss'),
      series: [{ label: 'step' }, line('training loss (batch)', GRAY), line('validation loss', BLUE)],
    });
  }

  clear(): void {
    this.steps = [];
    this.train = [];
    this.validation = [];
    this.chart.set([[], [], []]);
  }

  add(points: StepPoint[]): void {
    for (const p of points) {
      this.steps.push(p.step);
      this.train.push(p.trainLoss);
      this.validation.push(p.validationLoss);
    }
    this.chart.set([this.steps, this.train, this.validation]);
  }

  /** The chart in words, for its description. */
  describe(): string {
    const n = this.steps.length;
    if (n === 0) return 'No steps yet.';
    return (
      `After ${n} step${n === 1 ? '' : 's'}: validation loss ${formatNumber(this.validation[0])} at the start, ` +
      `${formatNumber(this.validation[n - 1])} before step ${this.steps[n - 1]}; training loss of the last batch ${formatNumber(this.train[n - 1])}.`
    );
  }
}

/** Per step, Σ values (dots) on the Taylor utility they share (line): they agree to rounding. */
export class UtilityChart {
  private readonly chart: Chart;
  private steps: number[] = [];
  private sums: number[] = [];
  private utilities: number[] = [];

  constructor(element: HTMLElement) {
    this.chart = new Chart(element, {
      scales: { x: { time: false } },
      axes: axes('step', 'validation-loss drop'),
      series: [
        { label: 'step' },
        line('Taylor utility', BLUE),
        line('Σ values', RED, { width: 0, paths: () => null, points: { show: true, size: 5, fill: RED } }),
      ],
    });
  }

  clear(): void {
    this.steps = [];
    this.sums = [];
    this.utilities = [];
    this.chart.set([[], [], []]);
  }

  add(points: StepPoint[]): void {
    for (const p of points) {
      this.steps.push(p.step);
      this.utilities.push(p.utility);
      this.sums.push(p.valueSum);
    }
    this.chart.set([this.steps, this.utilities, this.sums]);
  }

  describe(): string {
    const n = this.steps.length;
    if (n === 0)
      return "Each step's values add up to its Taylor utility (its predicted drop in validation loss).";
    let worst = 0;
    for (let k = 0; k < n; k++) worst = Math.max(worst, Math.abs(this.sums[k] - this.utilities[k]));
    return (
      `Over ${n} step${n === 1 ? '' : 's'} the values of each step add up to its Taylor utility: the largest ` +
      `difference is ${formatNumber(worst)}; the last step's utility is ${formatNumber(this.utilities[n - 1])}.`
    );
  }
}

/** The values' histogram: harmful bins red, helpful bins blue, 0 on a bin edge. */
export class HistogramChart {
  private readonly chart: Chart;
  private last: Histogram | null = null;

  constructor(element: HTMLElement) {
    const bars = uPlot.paths.bars!({ size: [0.9, 40] });
    this.chart = new Chart(element, {
      scales: { x: { time: false } },
      axes: axes('value', 'examples'),
      series: [
        { label: 'value', value: (_u, v) => formatNumber(v) },
        { label: 'harmful', stroke: RED, fill: `${RED}99`, paths: bars, points: { show: false } },
        { label: 'helpful', stroke: BLUE, fill: `${BLUE}99`, paths: bars, points: { show: false } },
      ],
    });
  }

  clear(): void {
    this.last = null;
    this.chart.set([[], [], []]);
  }

  show(histogram: Histogram): void {
    this.last = histogram;
    this.chart.set([histogram.centers, histogram.negative, histogram.positive]);
  }

  describe(): string {
    const h = this.last;
    if (!h || h.centers.length === 0) return 'No values yet.';
    const total = (xs: (number | null)[]) => xs.reduce<number>((s, c) => s + (c ?? 0), 0);
    return (
      `${total(h.negative)} examples have negative values (harmful) and ${total(h.positive)} positive or zero ` +
      `(helpful), in bins from ${formatNumber(h.edges[0])} to ${formatNumber(h.edges[h.edges.length - 1])}.`
    );
  }
}

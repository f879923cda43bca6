// The digits demo's data and settings, shared by `inrun demo` (./digits-demo.ts) and the web page:
// the tuned defaults, the pixel columns and the CSV form of a digits dataset. No Node imports.
import type { TensorDataset } from '../data/dataset.js';
import { DIGIT_PIXELS } from '../data/digit-sets.js';
import type { KernelChoice } from '../kernels/index.js';

/**
 * The defaults the demo was tuned with. The values find flipped labels best while the model is
 * still learning the clean signal (validation accuracy up to ~80%): once it fits further, each
 * flipped example's (large) gradient meets a small, step-to-step fluctuating validation gradient
 * and its per-step values turn noisy. A small rate, large batches and 8 epochs give AUROC ≈ 0.93–0.96
 * over seeds 0–4 in a few seconds; lr 0.05 with batch 32 fits faster and gives AUROC ≈ 0.7.
 */
export const DIGITS_DEMO_DEFAULTS = {
  order: 2 as 1 | 2,
  epochs: 8,
  batchSize: 128,
  lr: 0.005,
  /**
   * The CNN's settings. LeNet-5 sits on a plateau for dozens of SGD steps and then, at the rates
   * that get it off the plateau (SGD 0.05, momentum 0.9), diverges for a few steps before it learns;
   * those steps carry three quarters of all |value| and bury the flipped labels (AUROC 0.70). Adam
   * learns from the first step without a spike. Adam's first moment moves the weights mostly by
   * what earlier batches left in it, so the demo credits that back (momentumCredit) and ranks by
   * first-order value + momentum credit, the Shapley value of the run's first-order utility
   * (seed 0: AUROC 0.95 credited, 0.92 without; 12 epochs 0.91, 24 epochs 0.89 as it overfits).
   */
  cnn: { lr: 0.003, epochs: 16, order: 1 as 1 | 2 },
  momentum: 0.9,
  hidden: 128,
  seed: 0,
  out: 'runs/demo',
  kernels: 'auto' as KernelChoice,
  trainPerClass: 200,
  validationPerClass: 50,
  flipFraction: 0.1,
};

/** The data files the demo writes into <out>/data. */
export const DIGITS_DEMO_FILES = {
  train: 'train.csv',
  validation: 'validation.csv',
  flipped: 'flipped.csv',
};

export const PIXEL_COLUMNS = Array.from({ length: DIGIT_PIXELS }, (_, k) => `pixel_${k}`);

/**
 * The columns of a digits run: id, label, the pixels by name (which spares the reader a scan of
 * every cell for numeric columns), grouped by the observed label (per-class totals).
 */
export const DIGITS_COLUMNS = { id: 'id', label: 'label', group: 'label', features: PIXEL_COLUMNS };

/**
 * A digits dataset as CSV: id, label, then the 784 pixels. Each pixel is written as the shortest
 * decimal that reads back as the same float32, so the run trains on exactly the bundled images.
 */
export function digitsCsv(dataset: TensorDataset): string {
  const all = Array.from({ length: dataset.size }, (_, i) => i);
  const pixels = dataset.batch(all, 'float32').input.data;
  // The images use a few hundred distinct intensities; each is formatted once.
  const texts = new Map<number, string>();
  const text = (x: number) => {
    let s = texts.get(x);
    if (s === undefined) {
      for (let digits = 1; digits <= 9; digits++) {
        s = String(Number(x.toPrecision(digits)));
        if (Math.fround(Number(s)) === x) break;
      }
      texts.set(x, s!);
    }
    return s!;
  };
  const lines = [['id', 'label', ...PIXEL_COLUMNS].join(',')];
  const row: string[] = new Array(DIGIT_PIXELS + 2);
  for (let i = 0; i < dataset.size; i++) {
    row[0] = String(dataset.id(i));
    row[1] = String(dataset.label(i));
    for (let k = 0; k < DIGIT_PIXELS; k++) row[k + 2] = text(pixels[i * DIGIT_PIXELS + k]);
    lines.push(row.join(','));
  }
  return `${lines.join('\n')}\n`;
}

